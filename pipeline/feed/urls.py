"""Pure URL rules of the feed: one URL per `<picture>`, and which hosts Satu can never reach.

Sellers paste several photo links into one field ("a.jpg;b.jpg", "a.jpg b.jpg", "a.jpg,https://…b.jpg");
Satu takes one absolute http(s) URL per `<picture>`. And a picture (or feed) URL on a loopback, private,
link-local, `localhost` or `.local` host works on the shop's own machine or network only: Satu, on the
internet, cannot download it. No I/O here (no name resolution: a host is judged by how it is written).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from urllib.parse import urlsplit

# Where one field holds several URLs: whitespace, `;`, or a comma that starts another http(s) URL (a
# comma alone is legal in a URL, e.g. image-CDN transforms `w_100,h_100`).
_LIST_SEPARATOR = re.compile(r"[\s;]+|,\s*(?=https?://)", re.I)
_JOINED = re.compile(r"[\s;]|,\s*https?://", re.I)


_HTTP_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?", re.I)


def is_http_url(text: str) -> bool:
    """An absolute http(s) URL with a host and no whitespace (a pattern, not a parse: it runs for every
    picture of every offer)."""
    return _HTTP_URL.fullmatch(text) is not None


def joined(text: str) -> bool:
    """True when a picture value holds whitespace, a `;` or a comma-joined second URL."""
    return _JOINED.search(text) is not None


def split_picture(text: str) -> list[str] | None:
    """The picture URLs one photo field holds: [the URL] normally; each part of a whitespace-, `;`- or
    `,`-joined list when every part is an http(s) URL; None when it cannot be used as it stands."""
    value = text.strip()
    if ";" not in value and "," not in value and is_http_url(value):
        return [value]  # the common case, in two substring tests and one match
    if not joined(value):
        return [value] if is_http_url(value) else None
    parts = [p for p in _LIST_SEPARATOR.split(value) if p]
    if parts and all(is_http_url(p) for p in parts):
        return parts
    return None


_HOST = re.compile(r"https?://(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)", re.I)


def private_picture(url: str) -> bool:
    """`private_url` for the feed's own picture URLs: the host read by a pattern and judged once per
    host (every picture of every offer passes here)."""
    m = _HOST.match(url)
    return m is not None and _private_host_cached(m.group(1))


@functools.lru_cache(maxsize=256)
def _private_host_cached(host: str) -> bool:
    return private_host(host)


def private_host(host: str) -> bool:
    """A host Satu cannot reach from the internet: loopback, private (RFC 1918, unique-local), link-local,
    unspecified, `localhost`, or a `.local` / `.localhost` name."""
    h = host.strip().lower().rstrip(".").strip("[]")
    if not h:
        return False
    if h == "localhost" or h.endswith((".localhost", ".local")):
        return True
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def private_url(url: str) -> bool:
    """True when the URL's host is one Satu cannot reach (see `private_host`)."""
    try:
        return private_host(urlsplit(url.strip()).hostname or "")
    except ValueError:
        return False
