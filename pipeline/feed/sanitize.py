"""Text made safe for the feed: XML-forbidden characters removed, HTML sanitised, CDATA-safe.

Descriptions are seller-written HTML from the accounting system: they may hold `<script>`,
`<iframe>`, `on*=` handlers, `javascript:` links, control characters pasted from Word, and even
the text `]]>`. nh3 (ammonia, a maintained allow-list sanitizer) keeps the harmless formatting.

Satu's moderation refuses descriptions that link to other sites (YouTube is allowed): `LinkPolicy`
says which `<a href>` hosts stay (the shop's own and the allowed ones, subdomains included); every
other link loses its `<a>` and keeps its text, and the number of links taken out is returned.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3

DESCRIPTION_MAX = 12000

# XML 1.0 allows #x9 #xA #xD, #x20-#xD7FF, #xE000-#xFFFD, #x10000-#x10FFFF: everything else goes.
# C1 controls are allowed by XML but are never intended in a catalog (mis-decoded cp1252 text).
_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

ALLOWED_TAGS = {
    "a",
    "b",
    "br",
    "blockquote",
    "caption",
    "code",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "*": {"class"},
}


def xml_text(value: object) -> str:
    """Plain text safe for XML 1.0: forbidden and C1 control characters dropped, outer space trimmed."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if _BAD.search(text) is not None:  # rare: one scan in the common case, a rewrite only when needed
        text = _BAD.sub("", text)
    return text.strip()


#: hosts whose links Satu allows in descriptions (videos), subdomains included
YOUTUBE_HOSTS = ("youtube.com", "www.youtube.com", "youtu.be", "m.youtube.com")
_STRIPPED = "#satu-link-stripped"  # what a refused href becomes inside one clean, before unwrapping
_STRIPPED_A = re.compile(r'<a\b[^>]*\shref="' + re.escape(_STRIPPED) + r'"[^>]*>')


@dataclass(frozen=True)
class LinkPolicy:
    """Which description links stay: those to the shop's own site (`shop_url`'s host) and to
    `allowed_hosts`, subdomains included. Relative links are resolved against `shop_url`; with no
    shop URL they would point into Satu's own site, so they are taken out."""

    shop_url: str = ""
    allowed_hosts: tuple[str, ...] = YOUTUBE_HOSTS

    @classmethod
    def from_settings(cls, feed: Any) -> LinkPolicy:
        """The policy of `[feed] url` and `[feed] allowed_link_hosts`."""
        return cls(feed.url.strip(), tuple(feed.allowed_link_hosts))

    @functools.cached_property
    def _hosts(self) -> tuple[str, ...]:
        hosts = {h.strip().lower().rstrip(".") for h in self.allowed_hosts if h.strip()}
        shop = _host(self.shop_url)
        if shop:
            hosts.add(shop.removeprefix("www."))
        return tuple(sorted(hosts))

    def allows(self, host: str) -> bool:
        """True for an allowed host or a subdomain of one."""
        host = host.lower().rstrip(".")
        return any(host == h or host.endswith("." + h) for h in self._hosts)

    def href(self, value: str) -> str | None:
        """The href to keep (absolute), or None when the link must go."""
        value = value.strip()
        if not value or value.startswith("#"):
            return None  # a jump inside the page: Satu's page has no such anchor
        parts = urlsplit(value)
        if not parts.scheme and not parts.netloc:  # relative: only meaningful on the shop's site
            if not _host(self.shop_url):
                return None
            value = urljoin(self.shop_url.rstrip("/") + "/", value)
            parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https", "") or not parts.hostname:
            return None  # mailto:, tel: and the like are contacts, not a site Satu allows
        return value if self.allows(parts.hostname) else None


def _host(url: str) -> str:
    try:
        return (urlsplit(url.strip()).hostname or "") if url.strip() else ""
    except ValueError:
        return ""


def clean_html(html: str, max_length: int = DESCRIPTION_MAX, links: LinkPolicy | None = None) -> str:
    """Sanitised HTML (no scripts, frames, event handlers, javascript: URLs) of at most max_length chars;
    with `links`, only the links that policy allows stay (see `clean_description`)."""
    return clean_description(html, links, max_length)[0]


def clean_description(
    html: str, links: LinkPolicy | None, max_length: int = DESCRIPTION_MAX
) -> tuple[str, int]:
    """(sanitised HTML of at most max_length chars, links taken out by the policy — their text kept).
    `links=None` keeps every link the sanitizer allows."""
    text = xml_text(html)
    if not text:
        return "", 0
    cleaner = _cleaner(links)
    cleaned, stripped = _clean(text, cleaner)
    if len(cleaned) <= max_length:
        return cleaned, stripped
    # Too long: cut the source (at a space or tag end) and sanitise again, which also closes any tag
    # the cut left open; closing tags and escapes add a little, so shrink until it fits.
    cut = max_length
    while cut > 0:
        edge = max(text.rfind(" ", 0, cut), text.rfind(">", 0, cut) + 1)
        piece = text[:edge] if edge > cut * 0.8 else text[:cut]
        cleaned, stripped = _clean(piece, cleaner)
        if len(cleaned) <= max_length:
            return cleaned, stripped
        cut -= max(100, len(cleaned) - max_length)
    return "", 0


_OPTIONS: dict[str, Any] = {
    "tags": ALLOWED_TAGS,
    "attributes": ALLOWED_ATTRIBUTES,
    "url_schemes": {"http", "https", "mailto", "tel"},
    "link_rel": "noopener nofollow",
}


@functools.lru_cache(maxsize=16)
def _cleaner(links: LinkPolicy | None) -> Any:
    """A reusable Cleaner (nh3 ≥ 0.3) for one link policy: it saves converting the allow-lists on
    every call. The filter sees only URLs whose scheme nh3 already allowed."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if links is not None and tag == "a" and attribute == "href":
            return links.href(value) or _STRIPPED
        return value

    options = {**_OPTIONS, "attribute_filter": keep} if links is not None else dict(_OPTIONS)
    if hasattr(nh3, "Cleaner"):
        return nh3.Cleaner(**options)
    return functools.partial(nh3.clean, **options)


def _clean(text: str, cleaner: Any) -> tuple[str, int]:
    cleaned = cleaner.clean(text) if hasattr(cleaner, "clean") else cleaner(text)
    cleaned, stripped = _unwrap_stripped(cleaned)
    return xml_text(cleaned), stripped  # the sanitizer may decode entities back into forbidden characters


def _unwrap_stripped(html: str) -> tuple[str, int]:
    """Take out the `<a>` tags whose href the policy refused, keeping what they hold. The sanitizer's
    output is serialised HTML: attributes double-quoted with `>` escaped, and no `<a>` inside an `<a>`,
    so the first `</a>` after a refused opening tag is its own."""
    out: list[str] = []
    pos = stripped = 0
    for m in _STRIPPED_A.finditer(html):
        if m.start() < pos:
            continue
        close = html.find("</a>", m.end())
        end = close if close >= 0 else len(html)
        out.append(html[pos : m.start()])
        out.append(html[m.end() : end])
        pos = end + 4 if close >= 0 else end
        stripped += 1
    if not stripped:
        return html, 0
    out.append(html[pos:])
    return "".join(out), stripped


def cdata(text: str) -> str:
    """`<![CDATA[…]]>` holding text exactly, even when the text contains `]]>` (split in two sections)."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
