"""Deterministic Latin slugs for products and sections (Russian and Kazakh Cyrillic).

No common transliteration library covers the Kazakh letters (ә ғ қ ң ө ұ ү һ і), so the whole table
is explicit here. The same text always gives the same slug; product slugs end in the offer id, which
makes them unique by construction and stable when other products come and go.
"""

from __future__ import annotations

import re
import unicodedata

# Russian (GOST 7.79 B style, simplified for URLs) and Kazakh Cyrillic letters, lower case.
TABLE: dict[str, str] = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ё": "yo",
    "ж": "zh",
    "з": "z",
    "и": "i",
    "й": "y",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ъ": "",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "yu",
    "я": "ya",
    # Kazakh letters (2021 Latin alphabet spirit, ASCII-only for URLs)
    "ә": "a",
    "ғ": "g",
    "қ": "q",
    "ң": "ng",
    "ө": "o",
    "ұ": "u",
    "ү": "u",
    "һ": "h",
    "і": "i",
    # Ukrainian/Belarusian letters that turn up in catalogs
    "є": "ye",
    "ї": "yi",
    "ў": "u",
    "ґ": "g",
}

_SEP = re.compile(r"[^a-z0-9]+")


_TRANSLATE = {ord(k): v for k, v in TABLE.items()}


def _fold(ch: str) -> str:
    # Latin letters with accents: drop the combining marks; anything else becomes a separator.
    ascii_part = "".join(c for c in unicodedata.normalize("NFKD", ch) if c.isascii()).lower()
    return ascii_part or " "


def transliterate(text: str) -> str:
    """Lower-case Latin transliteration; other scripts' accents are stripped (é → e)."""
    out = text.lower().translate(_TRANSLATE)
    if not out.isascii():
        out = "".join(ch if ch.isascii() else _fold(ch) for ch in out)
    return out


def slugify(text: str, max_length: int = 80) -> str:
    """`Қызыл кресло №5` → `qyzyl-kreslo-5`; never empty (falls back to `item`)."""
    slug = _SEP.sub("-", transliterate(text)).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] if "-" in slug[:max_length] else slug[:max_length]
    return slug or "item"


def product_slug(name: str, offer_id: str) -> str:
    """Slug of a product: the name's slug plus the offer id (unique, and stable for ever)."""
    return f"{slugify(name, 70)}-{slugify(offer_id, 30)}"


class SlugRegistry:
    """Unique slugs within one feed for a small set (sections): a clash gets the id appended."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def take(self, text: str, ident: str) -> str:
        """A slug for `text` not handed out before in this registry."""
        slug = slugify(text)
        if slug in self._used:
            slug = f"{slug}-{slugify(ident)}"
            n = 2
            while slug in self._used:
                slug = f"{slugify(text)}-{slugify(ident)}-{n}"
                n += 1
        self._used.add(slug)
        return slug
