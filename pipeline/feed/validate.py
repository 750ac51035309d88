"""`check-feed`: validate any YML feed against the Satu dialect, streaming, listing every problem.

The file is read once with lxml `iterparse`. Each `<category>` and `<offer>` is validated against
the project's schema (`satu_yml.xsd`) as soon as it ends, then checked for what a schema cannot say
(unique ids, existing categoryId/parentId, ≤ 10 pictures, vendorCode ≤ 25, oldprice vs discount,
non-empty name/price, declared currencies), and then freed. Memory holds only the ids (for uniqueness and
references), so a feed of a million offers validates in bounded memory. `OffersStreamCheck` (below)
runs the same checks on the offers while the feed is being rendered.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from array import array
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from lxml import etree

from pipeline.feed.problems import (  # noqa: F401 (re-exported)
    ERROR,
    HINTS,
    MAX_PROBLEMS,
    QUIET_OFFER_TAGS,
    WARNING,
    FeedProblem,
    FeedReport,
)

# The problem types and the tables of tags real feeds carry live in `problems` (re-exported here).
from pipeline.feed.urls import joined

try:
    import fcntl
except ImportError:  # not on every OS: the pipe just keeps its default size
    fcntl = None  # type: ignore[assignment]

SCHEMA_PATH = Path(__file__).with_name("satu_yml.xsd")
PICTURES_MAX = 10
VENDOR_CODE_MAX = 25
NAME_MAX = 110  # Satu's card rule (Prom's own exports carry 101–110-char names)
DESCRIPTION_MAX = 12000
SHOP_REQUIRED = ("name", "company", "url", "currencies", "categories", "offers")
PARAM_MAX = 255  # Satu's limit for a <param> value
VENDOR_CODE_SIGNS = frozenset("-_./ ")  # Prom/Satu's article: digits, Cyrillic, Latin, these signs


_schemas: dict[bool, etree.XMLSchema] = {}
# The characters of most articles, for the summary's quick test (the detail also takes other letters).
_ARTICLE_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./ "
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
    "әғқңөұүһіїєґӘҒҚҢӨҰҮҺІЇЄҐ"
)
_SUMMARY = etree.XPath(
    "concat(count(name), '|', count(description), '|', count(price), '|', count(categoryId), '|', count(picture),"
    " '|', count(oldprice), '|', count(discount), '|', count(prices[not(price)]), '|',"
    " string-length(normalize-space(name[1])), '|', string-length(normalize-space(description[1])), '|',"
    " string-length(normalize-space(vendorCode[1])), '|', string-length(description[1]), '|',"
    f" count(param[string-length(normalize-space(.)) > {PARAM_MAX}]), '|',"
    " count(quantity_in_stock[normalize-space(.) = '' or contains(., '.')]), '|',"
    " string-length(normalize-space(portal_category_id[1])), '|',"
    f" string-length(translate(normalize-space(vendorCode[1]), '{_ARTICLE_CHARS}', '')), '|',"
    " translate(normalize-space(categoryId[1]), '|', ''), '|', normalize-space(currencyId[1]))"  # (last: the rest of the split, whatever it holds)
)


def _known(path: str) -> frozenset[str]:
    doc = etree.parse(str(SCHEMA_PATH))
    return frozenset(doc.xpath(path, namespaces={"xs": "http://www.w3.org/2001/XMLSchema"}))


_OFFER = "//xs:element[@name='offer']/xs:complexType"
OFFER_TAGS = _known(f"{_OFFER}/xs:choice/xs:element/@name | {_OFFER}/xs:choice/xs:element/@ref")
OFFER_ATTRIBUTES = _known(f"{_OFFER}/xs:attribute/@name")
CATEGORY_ATTRIBUTES = _known("//xs:element[@name='category']//xs:attribute/@name")


def schema(whole: bool = False) -> etree.XMLSchema:
    """The project's XSD for the Satu dialect (loaded once). An XMLSchema object is not thread-safe,
    so the streaming pass gets its own instance."""
    if whole not in _schemas:
        _schemas[whole] = etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))
    return _schemas[whole]


def _decimal(text: str | None) -> Decimal | None:
    try:
        return Decimal((text or "").strip())
    except InvalidOperation:
        return None


class _IdSet:
    """Offer ids seen so far, compactly: while ids are numbers in rising order (as this project writes
    them) only 8 bytes each are kept and uniqueness is just "greater than the last"; the first id out
    of order switches to an ordinary set."""

    def __init__(self) -> None:
        self._rising: array | None = array("q")
        self._set: set[str] | None = None

    def add(self, oid: str) -> bool:
        """Record an id; False when it was seen before."""
        rising = self._rising
        if rising is not None:
            if oid.isdigit() and len(oid) < 19 and (oid[0] != "0" or oid == "0"):
                n = int(oid)
                if not rising or n > rising[-1]:
                    rising.append(n)
                    return True
            self._set = {str(n) for n in rising}
            self._rising = None
        assert self._set is not None
        if oid in self._set:
            return False
        self._set.add(oid)
        return True


class _Checker:
    def __init__(self, per_element: bool) -> None:
        self.per_element = per_element
        self.problems: list[FeedProblem] = []
        self.truncated = False
        self.offer_ids = _IdSet()
        self.categories: dict[str, tuple[str | None, int]] = {}  # id → (parentId, line)
        self.unknown_refs: dict[str, tuple[int, str]] = {}  # categoryId used before/without definition
        self.offers = 0
        self.schema = schema()
        self.currencies_used: dict[str, tuple[int, str]] = {}  # currencyId → first (line, where)
        self.currencies_declared: set[str] | None = None  # from <currencies>, once the skeleton is read
        self.portal_ids: set[str] = set()  # categories carrying portal_id=
        self.no_portal: dict[str, tuple[int, int, str]] = {}  # categoryId → (offers, first line, where)
        self.no_picture: tuple[int, int, str] = (0, 0, "")  # (offers, first line, where)

    def add(self, line: int, message: str, where: str = "") -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.truncated = True
            return
        self.problems.append(FeedProblem(line, message, where))

    def warn(self, line: int, message: str, where: str = "") -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.truncated = True
            return
        self.problems.append(FeedProblem(line, message, where, WARNING))

    def strip_unknown(
        self, elem: etree._Element, tags: frozenset[str], attributes: frozenset[str], where: str
    ) -> None:
        """Warn about (and take out, so the schema judges the rest) tags and attributes Satu's dialect
        does not have; real feeds carry several of them and Satu ignores what it does not know."""
        line = elem.sourceline or 0
        for name in [a for a in elem.attrib if a not in attributes]:
            hint = " (Satu's dialect has available=, selling_type=, group_id=, in_stock=)"
            self.warn(line, f"unknown attribute {name}= (ignored by Satu){hint}", where)
            del elem.attrib[name]
        if not tags:
            return
        for child in list(elem):
            tag = child.tag
            if not isinstance(tag, str) or tag in tags:
                continue
            if tag not in QUIET_OFFER_TAGS:
                tag_hint = HINTS.get(tag) or HINTS.get(tag.lower())
                self.warn(
                    child.sourceline or line,
                    f"unknown tag <{tag}>" + (f": {tag_hint}" if tag_hint else " (ignored by Satu)"),
                    where,
                )
            elem.remove(child)

    def validate_schema(self, elem: etree._Element, where: str) -> None:
        if self.per_element and not self.schema.validate(elem):
            for err in self.schema.error_log:
                message = err.message.replace("Element '", "'")
                self.add(err.line or elem.sourceline or 0, message, where)

    def category(self, elem: etree._Element) -> None:
        cid = elem.get("id") or ""
        line = elem.sourceline or 0
        where = f"category {cid}"
        if self.per_element:
            self.strip_unknown(elem, frozenset(), CATEGORY_ATTRIBUTES, where)
        self.validate_schema(elem, where)
        if not (elem.text or "").strip():
            self.add(line, "category name is empty", where)
        if cid in self.categories:
            self.add(line, f"duplicate category id {cid} (first on line {self.categories[cid][1]})", where)
        else:
            parent = elem.get("parentId")
            if (elem.get("portal_id") or "").strip():
                self.portal_ids.add(cid)
            self.categories[cid] = (None if parent in ("0", "") else parent, line)  # parentId="0": a root

    def offer(self, elem: etree._Element) -> None:
        self.offers += 1
        oid = elem.get("id") or ""
        line = elem.sourceline or 0
        where = f"offer {oid}"
        if self.per_element:
            self.strip_unknown(elem, OFFER_TAGS, OFFER_ATTRIBUTES, where)
        # One XPath call summarises the offer; only an offer that breaks a rule gets the detailed
        # (slower) walk that names the line of each child at fault.
        n = _SUMMARY(elem).split("|", 17)
        if n[12] != "0" or n[13] != "0" or n[15] != "0":
            self.soft(elem, where)
        self.validate_schema(elem, where)
        self.account(elem, n, line, where)
        if oid and not self.offer_ids.add(oid):
            self.add(line, f"duplicate offer id {oid}", where)
        for pic in elem.iterfind("picture"):
            url = (pic.text or "").strip()
            if joined(url):  # (whitespace is also a schema error; this says what to do)
                self.add(
                    pic.sourceline or line,
                    f"<picture> {url[:120]!r} holds several URLs or whitespace: one URL per <picture>",
                    where,
                )
        price = _decimal(elem.findtext("price"))
        old_text = elem.findtext("oldprice")
        old = _decimal(old_text) if old_text is not None else None
        if (
            n[0] != "1"
            or n[1] != "1"
            or n[2] != "1"
            or n[3] != "1"
            or int(n[4]) > PICTURES_MAX
            or (n[5] != "0" and n[6] != "0")
            or n[7] != "0"
            or not 0 < int(n[8]) <= NAME_MAX
            or n[9] == "0"
            or int(n[10]) > VENDOR_CODE_MAX
            or int(n[11]) > DESCRIPTION_MAX
            or (price is not None and price <= 0)
            or (old is not None and price is not None and old <= price)
        ):
            self.offer_detail(elem, oid, line, where)
            return
        cid = n[16]
        if cid not in self.categories and cid not in self.unknown_refs:
            self.unknown_refs[cid] = (line, where)

    def soft(self, elem: etree._Element, where: str) -> None:
        """The warnings about one offer's children (what Satu takes, though it may not be what was meant)."""
        self.stock(elem, where)
        self.vendor_code(elem, where)
        for param in elem.iterfind("param"):
            size = len((param.text or "").strip())
            if size > PARAM_MAX:
                name = param.get("name") or ""
                message = f"<param> {name!r} has {size} chars (Satu keeps ≤ {PARAM_MAX})"
                self.warn(param.sourceline or 0, message, where)

    def stock(self, elem: etree._Element, where: str) -> None:
        """An empty `<quantity_in_stock/>` (Prom's own exports write it) or fractional stock: Satu takes
        the offer, so a warning; the empty tag is taken out so the schema judges the rest."""
        for q in elem.findall("quantity_in_stock"):
            text = (q.text or "").strip()
            value = _decimal(text)
            if not text:
                self.warn(q.sourceline or 0, "<quantity_in_stock> is empty (no stock count for Satu)", where)
                if self.per_element:
                    elem.remove(q)
            elif value is not None and value >= 0 and value != value.to_integral_value():
                self.warn(q.sourceline or 0, f"<quantity_in_stock> {text} is not a whole number", where)

    def vendor_code(self, elem: etree._Element, where: str) -> None:
        """Characters Satu's article field does not take: a warning (what Satu does with them is unknown)."""
        code = elem.find("vendorCode")
        text = (code.text or "").strip() if code is not None else ""
        bad = sorted({ch for ch in text if not (ch.isalnum() or ch in VENDOR_CODE_SIGNS)})
        if code is not None and bad:
            self.warn(
                code.sourceline or 0,
                f"<vendorCode> {text!r} has {''.join(bad)!r}: Satu's article takes digits, letters, - _ . / and space",
                where,
            )

    def account(self, elem: etree._Element, summary: list[str], line: int, where: str) -> None:
        """What the end of the check judges over all offers: currencies used, offers without a picture
        and without a Satu category (neither `<portal_category_id>` nor `portal_id` on its category)."""
        currency = summary[17]
        if currency and currency not in self.currencies_used:
            cur = elem.find("currencyId")
            self.currencies_used[currency] = ((cur.sourceline if cur is not None else 0) or line, where)
        if summary[4] == "0":
            n, first, at = self.no_picture
            self.no_picture = (n + 1, first or line, at or where)
        if summary[14] == "0":
            cid = summary[16]
            seen = self.no_portal.get(cid)
            self.no_portal[cid] = (seen[0] + 1, seen[1], seen[2]) if seen else (1, line, where)

    def offer_detail(self, elem: etree._Element, oid: str, line: int, where: str) -> None:
        """Every rule with the exact line of the child at fault (slow: only for offers with problems)."""
        counts: dict[str, int] = {}
        first: dict[str, etree._Element] = {}
        for child in elem:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            counts[tag] = counts.get(tag, 0) + 1
            first.setdefault(tag, child)
        self._detail_required(counts, first, line, where)
        self._detail_lengths(counts, first, line, where)
        self._detail_prices(counts, first, line, where)
        cat = first.get("categoryId")
        if cat is not None:
            cid = (cat.text or "").strip()
            if cid and cid not in self.categories and cid not in self.unknown_refs:
                self.unknown_refs[cid] = (cat.sourceline or line, where)

    def _detail_required(
        self, counts: dict[str, int], first: dict[str, etree._Element], line: int, where: str
    ) -> None:
        for tag in ("name", "description", "price", "categoryId"):
            # Satu takes an offer without a description (Prom's own exports carry empty ones): a warning
            report = self.warn if tag == "description" else self.add
            if tag not in counts:
                report(line, f"<{tag}> is missing", where)
            elif counts[tag] > 1:
                self.add(line, f"<{tag}> appears {counts[tag]} times (exactly one allowed)", where)
        for tag in ("name", "description"):
            if tag in first and not (first[tag].text or "").strip():
                report = self.warn if tag == "description" else self.add
                report(first[tag].sourceline or line, f"<{tag}> is empty", where)

    def _detail_lengths(
        self, counts: dict[str, int], first: dict[str, etree._Element], line: int, where: str
    ) -> None:
        name = first.get("name")
        if name is not None and len((name.text or "").strip()) > NAME_MAX:
            self.add(
                name.sourceline or line,
                f"<name> has {len((name.text or '').strip())} chars (keep ≤ {NAME_MAX})",
                where,
            )
        desc = first.get("description")
        if desc is not None and len(desc.text or "") > DESCRIPTION_MAX:
            self.add(
                desc.sourceline or line,
                f"<description> has {len(desc.text or '')} chars (max {DESCRIPTION_MAX})",
                where,
            )
        if counts.get("picture", 0) > PICTURES_MAX:
            self.add(line, f"{counts['picture']} <picture> tags (Satu takes at most {PICTURES_MAX})", where)
        code = first.get("vendorCode")
        text = (code.text or "").strip() if code is not None else ""
        if code is not None and len(text) > VENDOR_CODE_MAX:
            self.add(
                code.sourceline or line,
                f"<vendorCode> {text!r} has {len(text)} chars (max {VENDOR_CODE_MAX})",
                where,
            )

    def _detail_prices(
        self, counts: dict[str, int], first: dict[str, etree._Element], line: int, where: str
    ) -> None:
        price_el = first.get("price")
        price = _decimal(price_el.text) if price_el is not None else None
        if price_el is not None and price is not None and price <= 0:
            self.add(price_el.sourceline or line, "<price> must be greater than 0", where)
        if "oldprice" in counts and "discount" in counts:
            self.add(
                first["oldprice"].sourceline or line,
                "<oldprice> and <discount> must not both be given",
                where,
            )
        if "oldprice" in first and price is not None:
            old = _decimal(first["oldprice"].text)
            if old is not None and old <= price:
                self.add(
                    first["oldprice"].sourceline or line,
                    f"<oldprice> {old} is not above <price> {price}",
                    where,
                )
        prices = first.get("prices")
        if prices is not None and len(prices) == 0:
            self.add(prices.sourceline or line, "<prices> without <price> puts the product 'on order'", where)

    def finish(self) -> None:
        for cid, (parent, line) in self.categories.items():
            if parent and parent not in self.categories:
                self.add(line, f"parentId {parent} names no category in the feed", f"category {cid}")
        for cid in sorted(self.categories):
            seen: list[str] = []
            cur: str | None = cid
            while cur and cur in self.categories and cur not in seen:
                seen.append(cur)
                cur = self.categories[cur][0]
            if cur == cid:
                self.add(
                    self.categories[cid][1], f"category cycle: {' → '.join(seen + [cid])}", f"category {cid}"
                )
        for cid, (line, where) in self.unknown_refs.items():
            if cid not in self.categories:  # Satu takes it (a Horoshop Prom export has such offers)
                self.warn(line, f"categoryId {cid} names no category in the feed", where)
        self.finish_offers()
        self.problems.sort(key=lambda p: p.line)

    def finish_offers(self) -> None:
        """The judgements over all offers: undeclared currencies (an error), and one warning each for
        the offers without a picture and without a Satu category."""
        if self.currencies_declared is not None:
            for currency, (line, where) in self.currencies_used.items():
                if currency not in self.currencies_declared:
                    self.add(line, f"currencyId {currency} is not declared in <currencies>", where)
        n, line, where = self.no_picture
        if n:
            self.warn(line, f"{n} offer(s) without a <picture> (Satu shows 1–10), first: {where}")
        unmapped = [v for cid, v in self.no_portal.items() if cid not in self.portal_ids]
        if unmapped:
            first = min(unmapped, key=lambda v: v[1])
            self.warn(
                first[1],
                f"{sum(v[0] for v in unmapped)} offer(s) without a Satu category (no <portal_category_id>,"
                f" no portal_id= on their category; Satu guesses from the name), first: {first[2]}",
            )


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(200).split(b"\n", 1)[0]


SHOP_OPTIONAL = frozenset({"name", "company", "url"})  # Satu takes a feed without them
SHOP_KNOWN = frozenset(SHOP_REQUIRED + ("platform", "version", "agency", "email"))


def _scan(
    path: Path | IO[bytes], c: _Checker, whole_schema: etree.XMLSchema | None, skeleton: bool = True
) -> None:
    """One streaming pass: offers and categories are checked as they end, then freed; then (unless
    `skeleton` is off) the document skeleton around them."""
    it = etree.iterparse(
        path if not isinstance(path, Path) else str(path),
        events=("end",),
        tag=("offer", "category"),
        huge_tree=True,
        remove_comments=True,
        no_network=True,
        load_dtd=False,  # (`resolve_entities=False` would make lxml drop well-formedness errors here)
        schema=whole_schema,
    )
    for _, elem in it:
        _scan_element(elem, c)
    root = it.root
    if root is not None and skeleton:
        _check_skeleton(root, c)


def _scan_element(elem: etree._Element, c: _Checker) -> None:
    """Check one ended `<offer>`/`<category>`, then free it and the siblings already handled."""
    parent = elem.getparent()
    parent_tag = parent.tag if parent is not None else None
    if elem.tag == "offer":
        if parent_tag == "offers":
            c.offer(elem)
        else:
            c.add(elem.sourceline or 0, "<offer> outside <offers>")
    elif parent_tag == "categories":
        c.category(elem)
    elif parent_tag != "offer":  # <category> inside an offer is checked with the offer
        c.add(elem.sourceline or 0, "<category> outside <categories>")
    if parent is not None and parent_tag in ("offers", "categories"):
        # Free what was checked: the element and the already-handled siblings before it.
        elem.clear(keep_tail=False)
        while elem.getprevious() is not None:
            del parent[0]


def _check_skeleton(root: etree._Element, c: _Checker) -> None:
    """The document around the offers and categories: root, date, one shop, its known children."""
    # (A DOCTYPE declaring anything was refused before parsing: `_doctype_line`.)
    if root.tag != "yml_catalog":
        c.add(root.sourceline or 1, f"root element is <{root.tag}>, expected <yml_catalog>")
        return
    if not root.get("date"):  # (Prom's own exports come without one)
        c.warn(root.sourceline or 1, "<yml_catalog> has no date attribute")
    for e in root:
        if isinstance(e.tag, str) and e.tag != "shop":
            c.add(e.sourceline or 0, f"unexpected <{e.tag}> under <yml_catalog> (expected <shop>)")
    shop = root.find("shop")
    if shop is None:
        c.add(root.sourceline or 1, "<yml_catalog> has no <shop>")
        return
    c.currencies_declared = {(x.get("id") or "").strip() for x in shop.iterfind("currencies/currency")}
    present = set()
    for e in shop:
        if isinstance(e.tag, str):
            present.add(e.tag)
            if e.tag not in SHOP_KNOWN:
                c.warn(e.sourceline or 0, f"unknown tag <{e.tag}> in <shop> (ignored by Satu)")
    for tag in SHOP_REQUIRED:
        if tag not in present:
            report = c.warn if tag in SHOP_OPTIONAL else c.add
            report(shop.sourceline or 0, f"<shop> has no <{tag}>")


DOCTYPE_SCAN = 1 << 16
# The DOCTYPE Prom's own exports and real Satu feeds carry: a name and an external id, nothing declared
# inside. It is never read (`load_dtd=False`, no network), so it changes nothing and passes quietly.
_PLAIN_DOCTYPE = re.compile(
    rb"""<!DOCTYPE\s+yml_catalog(\s+(SYSTEM|PUBLIC\s+("[^"]*"|'[^']*'))\s+("[^"]*"|'[^']*'))?\s*>""",
    re.IGNORECASE,
)


def _doctype_line(path: Path) -> int:
    """The line of a `<!DOCTYPE` before the root element that declares anything inside (0 when there is
    none, or only the plain external one), found without parsing, so that no entity it declares is ever
    expanded and nothing it names is fetched."""
    with open(path, "rb") as fh:
        start = fh.read(DOCTYPE_SCAN)
    at = start.upper().find(b"<!DOCTYPE")
    if at < 0:
        return 0
    before = start[:at]
    # only the prolog counts: a "<!DOCTYPE" after the root element starts is text, not a declaration
    tags = [t for t in before.split(b"<")[1:] if not t.startswith((b"?", b"!"))]
    if tags or _PLAIN_DOCTYPE.match(start, at):
        return 0
    return before.count(b"\n") + 1


def check_feed(path: Path | str) -> FeedReport:
    """Validate a feed file; every problem comes with its line number."""
    path = Path(path)
    head = _first_line(path) if path.exists() else b""
    try:
        doctype = _doctype_line(path)
    except OSError as exc:
        return FeedReport(0, 0, [FeedProblem(0, f"cannot read the feed: {exc}")])
    if doctype:
        message = "the feed's DOCTYPE declares entities or defaults: refused unread (Satu's feeds have none)"
        return FeedReport(0, 0, [FeedProblem(doctype, message)])
    try:
        c = _check(lambda: path, head)
    except OSError as exc:
        return FeedReport(0, 0, [FeedProblem(0, f"cannot read the feed: {exc}")])
    return FeedReport(c.offers, len(c.categories), c.problems, c.truncated)


def _check(source: Callable[[], Path | IO[bytes]], head: bytes) -> _Checker:
    """The whole check of one document (`source()` opens it afresh for each pass; `head` is its first line)."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    c = _Checker(per_element=False)
    try:
        # Fast pass: libxml2 validates the whole document against the schema while streaming.
        _scan(source(), c, schema(whole=True))
    except etree.XMLSyntaxError:
        # Something is wrong: stream again, validating element by element to list every problem.
        c = _Checker(per_element=True)
        try:
            _scan(source(), c, None)
        except etree.XMLSyntaxError as exc:
            line = exc.lineno or (exc.position[0] if exc.position else 0)
            c.add(line, f"not well-formed XML: {exc.msg}")
    if not head.startswith(b"<?xml"):
        c.add(1, 'no XML declaration (<?xml version="1.0" encoding="UTF-8"?>)')
    elif b"utf-8" not in head.lower():
        c.warn(1, "the feed is not UTF-8 (read as declared); UTF-8 avoids mass rejections on import")
    c.finish()
    return c


# --- Validation while rendering -------------------------------------------------------------------
# The feed is rendered offers first (into a spool), then the head with the used categories, and the
# parts are joined. `OffersStreamCheck` hands the offer bytes, as they are rendered, to a second
# process that checks them (schema + rules) inside a minimal wrapper document; after the render only
# the small head + tail document is left to check here. The two checks together cover what
# `check_feed` covers on the joined file, given that the offers sit inside the file's only <offers>
# element (verified from the layout); any doubt — a problem found, the helper failed, a layout that
# does not match — falls back to `check_feed` on the file itself, which also gives the exact report.

PIPE_SIZE = 1 << 20
_WRAP_HEAD = b'<?xml version="1.0" encoding="UTF-8"?><yml_catalog><shop><offers>'
_WRAP_TAIL = b"</offers></shop></yml_catalog>\n"


def _check_offers_stream(source: IO[bytes]) -> dict:
    """Check a wrapped offers stream (the helper process's work); returns what the joined check needs."""
    c = _Checker(per_element=False)
    try:
        _scan(source, c, schema(whole=True), skeleton=False)
        ok = not c.problems
    except etree.XMLSyntaxError:
        ok = False
    refs, currencies = (sorted(c.unknown_refs), sorted(c.currencies_used)) if ok else ([], [])
    return {"ok": ok, "offers": c.offers, "refs": refs, "currencies": currencies}


class OffersStreamCheck:
    """Checks the offers part of a feed in a helper process while it is rendered (see above).

    Use: `write()` each chunk of offer bytes (the render's tee), then `report(path, layout)` once the
    file is complete; `close()` always (stops the helper if the render failed).
    """

    def __init__(self) -> None:
        self.sent = 0
        self.failed = False
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        try:
            self.proc: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-m", "pipeline.feed.validate"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            if fcntl is not None and hasattr(fcntl, "F_SETPIPE_SZ") and self.proc.stdin is not None:
                with contextlib.suppress(OSError):  # room for a few chunks: the render rarely waits
                    fcntl.fcntl(self.proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            self._send(_WRAP_HEAD)
        except OSError:
            self.proc, self.failed = None, True

    def _send(self, data: bytes) -> None:
        if self.failed or self.proc is None or self.proc.stdin is None:
            return
        try:
            self.proc.stdin.write(data)
        except (OSError, ValueError):  # the helper is gone: the full check will run instead
            self.failed = True

    def write(self, data: bytes) -> None:
        """Take the next chunk of offer bytes."""
        self.sent += len(data)
        self._send(data)

    def _result(self) -> dict | None:
        if self.proc is None:
            return None
        self._send(_WRAP_TAIL)
        try:
            out, _ = self.proc.communicate()
            data = json.loads(out.decode("utf-8").strip().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            return None
        finally:
            self.close()
        return data if not self.failed and self.proc.returncode == 0 else None

    def report(self, path: Path | str, layout: tuple[int, int, int]) -> FeedReport:
        """The check of the complete file at `path` whose parts are `layout` (head, offers, tail bytes)."""
        path = Path(path)
        helper = self._result()
        fast = self._joined(path, layout, helper) if helper is not None and helper.get("ok") else None
        return fast if fast is not None else check_feed(path)

    def _joined(self, path: Path, layout: tuple[int, int, int], helper: dict) -> FeedReport | None:
        head_size, offers_size, tail_size = layout
        try:
            if path.stat().st_size != head_size + offers_size + tail_size or offers_size != self.sent:
                return None
            with open(path, "rb") as fh:
                head = fh.read(head_size)
                fh.seek(head_size + offers_size)
                tail = fh.read()
        except OSError:
            return None
        # The offers must land in the content of the one and only <offers> element.
        skeleton = head + tail
        # (No DOCTYPE: its entities or attribute defaults could make the offers mean something else there.)
        if (
            not head.rstrip().endswith(b"<offers>")
            or not tail.lstrip().startswith(b"</offers>")
            or skeleton.count(b"<offers") != 1
            or skeleton.count(b"</offers") != 1
            or b"<!DOCTYPE" in skeleton.upper()
        ):
            return None
        c = _check(lambda: io.BytesIO(skeleton), skeleton[:200].split(b"\n", 1)[0])
        if c.problems or c.offers or any(cid not in c.categories for cid in helper["refs"]):
            return None
        if any(cur not in (c.currencies_declared or ()) for cur in helper.get("currencies", ())):
            return None  # a currency the head does not declare: the full check names the offer
        return FeedReport(int(helper["offers"]), len(c.categories), [], False)

    def close(self) -> None:
        """Stop the helper (if still running) and release its pipes."""
        proc = self.proc
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(OSError):
            proc.wait()


if __name__ == "__main__":
    print(json.dumps(_check_offers_stream(sys.stdin.buffer)))
