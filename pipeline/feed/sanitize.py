"""Text made safe for the feed: XML-forbidden characters removed, HTML sanitised, CDATA-safe.

Descriptions are seller-written HTML from the accounting system: they may hold `<script>`,
`<iframe>`, `on*=` handlers, `javascript:` links, control characters pasted from Word, and even
the text `]]>`. nh3 (ammonia, a maintained allow-list sanitizer) keeps the harmless formatting.
"""

from __future__ import annotations

import re
from typing import Any

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


def clean_html(html: str, max_length: int = DESCRIPTION_MAX) -> str:
    """Sanitised HTML (no scripts, frames, event handlers, javascript: URLs) of at most max_length chars."""
    text = xml_text(html)
    if not text:
        return ""
    cleaned = _clean(text)
    if len(cleaned) <= max_length:
        return cleaned
    # Too long: cut the source (at a space or tag end) and sanitise again, which also closes any tag
    # the cut left open; closing tags and escapes add a little, so shrink until it fits.
    cut = max_length
    while cut > 0:
        edge = max(text.rfind(" ", 0, cut), text.rfind(">", 0, cut) + 1)
        piece = text[:edge] if edge > cut * 0.8 else text[:cut]
        cleaned = _clean(piece)
        if len(cleaned) <= max_length:
            return cleaned
        cut -= max(100, len(cleaned) - max_length)
    return ""


_OPTIONS: dict[str, Any] = {
    "tags": ALLOWED_TAGS,
    "attributes": ALLOWED_ATTRIBUTES,
    "url_schemes": {"http", "https", "mailto", "tel"},
    "link_rel": "noopener nofollow",
}
# A reusable Cleaner (nh3 ≥ 0.3) saves converting the allow-lists on every call.
_CLEANER = nh3.Cleaner(**_OPTIONS) if hasattr(nh3, "Cleaner") else None


def _clean(text: str) -> str:
    cleaned = _CLEANER.clean(text) if _CLEANER is not None else nh3.clean(text, **_OPTIONS)
    return xml_text(cleaned)  # the sanitizer may decode entities back into forbidden characters


def cdata(text: str) -> str:
    """`<![CDATA[…]]>` holding text exactly, even when the text contains `]]>` (split in two sections)."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
