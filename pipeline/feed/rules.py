"""Pure rules: a Product (plus settings and the section tree) becomes an Offer, or a skip reason.

Nothing here reads files or databases; `run()` feeds products in and collects the results. Every
product that does not go out gets exactly one reason, so the summary can say why.
"""

from __future__ import annotations

import dataclasses
import functools
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from pipeline.feed import portal
from pipeline.feed.countries import country_name
from pipeline.feed.sanitize import LinkPolicy, clean_description, xml_text
from pipeline.feed.slug import SlugRegistry, product_slug
from pipeline.feed.urls import split_picture
from pipeline.model import Category, Product
from pipeline.stock.levels import HIDDEN, available_units, zero_stock_presence

NAME_MAX = 110  # Satu's card rule (Prom's own exports carry 101–110-char names)
VENDOR_CODE_MAX = 25
PICTURES_MAX = 10
KEYWORDS_MAX = 1024
PARAM_VALUE_MAX = 255  # Satu's limit for a <param> value
GROUP_ID_MAX = 999_999_999  # Satu's range for group_id (1..999999999)

# Skip reasons (stable strings: they appear in summaries, JSON output and the journal).
DELETED = "deleted"
NOT_ON_SITE = "hidden_on_site"
NO_SECTION = "no_section"
UNKNOWN_SECTION = "unknown_section"
SECTION_CYCLE = "section_cycle"
DANGLING_PARENT = "dangling_parent"
NO_NAME = "no_name"
LONG_NAME = "long_name"
NO_PRICE = "no_price"
LONG_ARTICUL = "long_articul"
NO_PHOTO = "no_photo"
OUT_OF_STOCK = "out_of_stock"  # counted as "hidden" in the summary, not as skipped


@dataclass(slots=True)
class Param:
    """One `<param name unit>value</param>`."""

    name: str
    value: str
    unit: str = ""
    cut: bool = False  # the value was cut to Satu's 255 characters


@dataclass(slots=True)
class Offer:
    """Everything the template needs for one `<offer>`; all text already XML-safe."""

    id: str
    slug: str
    url: str
    name: str
    description: str
    price: str
    category_id: int
    available: bool
    presence: str  # available | not_available | waiting (what the API push should set)
    quantity: str
    selling_type: str = "r"
    group_id: int | None = None
    oldprice: str | None = None
    currency: str = "KZT"
    pictures: list[str] = field(default_factory=list)
    vendor: str = ""
    vendor_code: str = ""
    barcode: str = ""
    country: str = ""
    keywords: str = ""
    params: list[Param] = field(default_factory=list)
    minimum_order_quantity: str | None = None
    portal_category_id: int | None = None
    in_stock_flag: bool = False  # write in_stock="true" ("ready to ship")
    wholesale: list[tuple[str, str]] = field(default_factory=list)  # (price, from quantity)
    pictures_dropped: int = 0
    pictures_missing: int = 0
    name_truncated: bool = False
    articul_changed: bool = False
    params_cut: int = 0  # <param> values cut to 255 characters
    vendor_omitted: bool = False  # a producer left out by [feed] vendor
    group_id_dropped: bool = False  # the model id was outside 1..999999999
    pictures_invalid: tuple[str, ...] = ()  # photo values that are no usable http(s) URL (left out)
    links_stripped: int = 0  # description links to other sites taken out (their text kept)
    country_unknown: str = ""  # a country value not in Satu's dictionary table (written unchanged)


@dataclass(frozen=True, slots=True)
class Skip:
    """Why a product is left out of the feed."""

    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """A section as the feed sees it: path from the root, slug, URL, and its problem if any."""

    id: int
    parent_id: int | None
    name: str
    slug: str
    url: str
    path: tuple[int, ...]  # root … self; empty when broken
    problem: str = ""  # SECTION_CYCLE / DANGLING_PARENT
    text_before: str = ""
    text_after: str = ""
    image_file: str = ""
    portal_id: int | None = None  # Satu's category of this section by its own map row (`portal_id=`)
    portal_category_id: int | None = None  # own row or nearest mapped ancestor (offers' tag)

    @property
    def depth(self) -> int:
        """1 for a root section."""
        return len(self.path)


class CategoryTree:
    """The section tree, checked once: cycles and dangling parents are found and named."""

    def __init__(self, categories: Iterable[Category], url_pattern: str = "", base_url: str = ""):
        cats = {c.id: c for c in categories}
        self.problems: list[str] = []
        self.sections: dict[int, Section] = {}
        registry = SlugRegistry()
        slugs = {cid: registry.take(xml_text(cats[cid].name), str(cid)) for cid in sorted(cats)}
        broken: dict[int, str] = {}
        reported: set[frozenset[int]] = set()
        for cid in sorted(cats):
            chain: list[int] = []
            seen: set[int] = set()
            cur: int | None = cid
            problem = ""
            while cur is not None:
                if cur in seen:
                    cycle = chain[chain.index(cur) :]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        names = ", ".join(f"{i} «{xml_text(cats[i].name)}»" for i in cycle)
                        self.problems.append(
                            f"section cycle: {names} (each is its own ancestor); their products are skipped"
                        )
                    problem = SECTION_CYCLE
                    break
                if cur not in cats:
                    child = chain[-1]
                    key = frozenset({child, -cur})
                    if key not in reported:
                        reported.add(key)
                        self.problems.append(
                            f"dangling parent: section {child} «{xml_text(cats[child].name)}» "
                            f"names parent {cur}, which does not exist; "
                            "its products (and those of its subsections) are skipped"
                        )
                    problem = DANGLING_PARENT
                    break
                seen.add(cur)
                chain.append(cur)
                cur = cats[cur].parent_id
            if problem:
                broken[cid] = problem
            c = cats[cid]
            path = () if problem else tuple(reversed(chain))
            url = section_url(url_pattern, base_url, slugs[cid], cid)
            self.sections[cid] = Section(
                cid,
                c.parent_id,
                xml_text(c.name) or f"Раздел {cid}",
                slugs[cid],
                url,
                path,
                problem,
                c.text_before,
                c.text_after,
                c.image_file,
            )
        self.used: set[int] = set()

    def apply_portal_map(self, mapping: Mapping[int, portal.PortalCategory]) -> None:
        """Give every section its Satu portal category: its own map row, else its nearest mapped ancestor."""
        if not mapping:
            return
        for sid, sec in list(self.sections.items()):
            own = mapping.get(sid)
            path = sec.path or (sid,)
            inherited = portal.resolve(path, mapping)
            self.sections[sid] = dataclasses.replace(
                sec, portal_id=own.portal_id if own is not None else None, portal_category_id=inherited
            )

    def resolve(self, section_id: int | None) -> Section | Skip:
        """The section an offer goes to, or why it cannot go anywhere."""
        if section_id is None:
            return Skip(NO_SECTION)
        section = self.sections.get(section_id)
        if section is None:
            return Skip(UNKNOWN_SECTION, f"section {section_id} does not exist")
        if section.problem:
            return Skip(section.problem, f"section {section_id} «{section.name}»")
        return section

    def use(self, section: Section) -> None:
        """Mark a section and all its ancestors as needed in the feed."""
        if section.id not in self.used:
            self.used.update(section.path)

    def used_sections(self) -> list[Section]:
        """The used sections with all ancestors, parents before children (stable order)."""
        return sorted((self.sections[i] for i in self.used), key=lambda s: (s.depth, s.id))


def section_url(pattern: str, base_url: str, slug: str, section_id: int) -> str:
    """`[feed] category_url` filled in; nothing when the pattern or the shop's site (`[feed] url`) is empty."""
    if not pattern or not base_url.strip():
        return ""
    return pattern.format(url=base_url.strip().rstrip("/"), slug=slug, id=section_id)


@functools.lru_cache(maxsize=8192)
def fmt_number(value: Decimal | int | float) -> str:
    """`1500.00` → `1500`, `650.50` → `650.5` (plain digits, never an exponent)."""
    text = format(value if isinstance(value, Decimal) else Decimal(str(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("", "-0"):
        return "0"
    return text


def cut_words(text: str, limit: int) -> str:
    """Cut text to at most limit chars, at a word boundary when one is near."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-–—")


def cut_keywords(text: str) -> str:
    """Keywords within Satu's 1024 chars, cut at a comma."""
    if len(text) <= KEYWORDS_MAX:
        return text
    cut = text[:KEYWORDS_MAX]
    return cut[: cut.rfind(",")] if "," in cut else cut


@dataclass(frozen=True)
class RuleSettings:
    """The settings the rules read, flattened once per run (cheaper than attribute chains per product)."""

    zero_stock: str = "hide"
    only_in_stock: bool = False
    only_with_photos: bool = False
    wholesale: bool = True
    long_articul: str = "skip"
    long_name: str = "truncate"
    currency: str = "KZT"
    product_url: str = "{url}/p/{slug}"
    base_url: str = ""  # [feed] url; empty = no offer <url>
    param_release_date: str = "Дата выпуска"
    release_date_format: str = "%d.%m.%Y"
    param_length: str = "Длина"
    param_width: str = "Ширина"
    param_height: str = "Высота"
    dimension_unit: str = "см"
    param_weight: str = "Вес"
    weight_unit: str = "кг"
    in_stock_flag: bool = False
    vendor: str = "emit"  # emit | omit | allowlist
    vendor_allowlist: frozenset[str] = frozenset()  # casefolded brand names
    links: LinkPolicy = LinkPolicy()  # which description links stay
    allow_private_urls: bool = False  # [publish] allow_private_urls: loopback/private pictures are meant

    @classmethod
    def from_settings(cls, settings: Any, vendor_allowlist: frozenset[str] = frozenset()) -> RuleSettings:
        """Take the relevant keys of `[feed]` (the allow-list file is read by the caller)."""
        f = settings.feed
        return cls(
            zero_stock=f.zero_stock,
            only_in_stock=f.only_in_stock,
            only_with_photos=f.only_with_photos,
            wholesale=f.wholesale,
            long_articul=f.long_articul,
            long_name=f.long_name,
            currency=f.currency,
            product_url=f.product_url,
            base_url=f.url.rstrip("/"),
            param_release_date=f.param_release_date,
            release_date_format=f.release_date_format,
            param_length=f.param_length,
            param_width=f.param_width,
            param_height=f.param_height,
            dimension_unit=f.dimension_unit,
            param_weight=f.param_weight,
            weight_unit=f.weight_unit,
            in_stock_flag=f.in_stock_flag,
            vendor=f.vendor,
            vendor_allowlist=vendor_allowlist,
            links=LinkPolicy.from_settings(f),
            allow_private_urls=settings.publish.allow_private_urls,
        )


@functools.lru_cache(maxsize=8192)
def _clean_characteristic(name: str, value: str, unit: str) -> tuple[str, str, str]:
    # Catalogs repeat the same characteristic values over and over: clean each once.
    return xml_text(name), xml_text(value), xml_text(unit)


@functools.lru_cache(maxsize=4096)
def _date_text(day: date, fmt: str) -> str:
    return day.strftime(fmt)


def _param(name: str, values: list[str], unit: str) -> Param:
    """Several values joined with `|`, within Satu's 255 characters (cut at a word, marked `cut`)."""
    value = "|".join(values)
    if len(value) <= PARAM_VALUE_MAX:
        return Param(name, value, unit)
    return Param(name, cut_words(value, PARAM_VALUE_MAX).rstrip("|"), unit, cut=True)


def build_params(product: Product, rs: RuleSettings) -> list[Param]:
    """Characteristics (several values of one joined with `|`) plus dimensions, weight, release date."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for ch in product.characteristics:
        name, value, unit = _clean_characteristic(ch.name, ch.value, ch.unit)
        if name and value:
            values = grouped.setdefault((name, unit), [])
            if value not in values:
                values.append(value)
    params = [_param(name, values, unit) for (name, unit), values in grouped.items()]
    taken = {p.name for p in params}
    extra: tuple[tuple[str, Decimal | None, str], ...] = (
        (rs.param_length, product.length_cm, rs.dimension_unit),
        (rs.param_width, product.width_cm, rs.dimension_unit),
        (rs.param_height, product.height_cm, rs.dimension_unit),
        (rs.param_weight, product.weight_kg, rs.weight_unit),
    )
    for pname, amount, punit in extra:
        if pname and amount is not None and amount > 0 and pname not in taken:
            params.append(Param(pname, fmt_number(amount), punit))
    if rs.param_release_date and product.production_date and rs.param_release_date not in taken:
        params.append(
            Param(rs.param_release_date, _date_text(product.production_date, rs.release_date_format))
        )
    return params


def _check_identity(product: Product, rs: RuleSettings) -> tuple[str, bool, str, bool] | Skip:
    """Name and article within Satu's limits: (name, name_truncated, articul, articul_changed) or a Skip."""
    name = xml_text(product.name) or xml_text(product.short_name)
    if not name:
        return Skip(NO_NAME)
    truncated = False
    if len(name) > NAME_MAX:
        if rs.long_name == "skip":
            return Skip(LONG_NAME, f"{len(name)} chars")
        name, truncated = cut_words(name, NAME_MAX), True
    articul = xml_text(product.articul)
    if len(articul) <= VENDOR_CODE_MAX:
        return name, truncated, articul, False
    if rs.long_articul == "skip":
        return Skip(LONG_ARTICUL, f"article {articul!r} has {len(articul)} chars (Satu allows 25)")
    articul = "" if rs.long_articul == "omit" else articul[:VENDOR_CODE_MAX]
    return name, truncated, articul, True


def _pictures(product: Product, photo_url: Any) -> tuple[list[str], int, int, tuple[str, ...]]:
    """Up to 10 distinct public picture URLs; how many were missing / dropped over the limit; and the
    values that were no usable URL. A field holding several URLs (`a.jpg;b.jpg`) gives each its own
    picture when every part is an http(s) URL; otherwise it is left out (Satu takes one per tag)."""
    pictures: list[str] = []
    missing = dropped = 0
    invalid: list[str] = []
    for photo in product.photos:
        url = photo_url(photo)
        if url is None:
            missing += 1
            continue
        urls = split_picture(url)
        if urls is None:
            invalid.append(url)
            continue
        for one in urls:
            if one in pictures:
                continue
            if len(pictures) >= PICTURES_MAX:
                dropped += 1
            else:
                pictures.append(one)
    return pictures, missing, dropped, tuple(invalid)


def _wholesale(product: Product, rs: RuleSettings) -> list[tuple[str, str]]:
    wp, wq = product.wholesale_price, product.wholesale_min_qty
    if rs.wholesale and wq is not None and wq > 0 and wp is not None and wp > 0:
        return [(fmt_number(wp), fmt_number(wq))]
    return []


def _vendor(product: Product, rs: RuleSettings) -> tuple[str, bool]:
    """The `<vendor>` to write and whether a producer was left out ([feed] vendor)."""
    brand = xml_text(product.producer)
    if not brand or rs.vendor == "emit":
        return brand, False
    if rs.vendor == "allowlist" and brand.casefold() in rs.vendor_allowlist:
        return brand, False
    return "", True


def _offer_url(rs: RuleSettings, slug: str, offer_id: str) -> str:
    """`[feed] product_url` filled in; nothing without the shop's own site (`[feed] url`): a placeholder
    address must never reach Satu."""
    if not rs.product_url or not rs.base_url:
        return ""
    return rs.product_url.format(url=rs.base_url, slug=slug, id=offer_id)


def _section(product: Product, tree: CategoryTree, fallback: Section | None) -> Section | Skip:
    if product.deleted:
        return Skip(DELETED)
    if not product.display_on_site:
        return Skip(NOT_ON_SITE)
    section = tree.resolve(product.section_id)
    if isinstance(section, Skip) and section.reason == NO_SECTION and fallback is not None:
        return fallback
    return section


def build_offer(
    product: Product, rs: RuleSettings, tree: CategoryTree, photo_url: Any, fallback: Section | None = None
) -> Offer | Skip:
    """Apply every feed rule to one product. `photo_url(photo)` gives a public URL or None."""
    section = _section(product, tree, fallback)
    if isinstance(section, Skip):
        return section
    identity = _check_identity(product, rs)
    if isinstance(identity, Skip):
        return identity
    name, truncated, articul, articul_changed = identity
    price = product.retail_price
    if price is None or price <= 0:
        return Skip(NO_PRICE)

    # Satu counts stock in whole units: the one rule the stock watcher applies too (pipeline.stock.levels).
    qty = available_units(product.stocks)
    presence = zero_stock_presence(qty, zero_stock=rs.zero_stock, only_in_stock=rs.only_in_stock)
    if presence == HIDDEN:
        return Skip(OUT_OF_STOCK)
    in_stock = qty > 0
    pictures, missing, dropped, bad_pictures = _pictures(product, photo_url)
    if rs.only_with_photos and not pictures:
        return Skip(NO_PHOTO)

    description, links_stripped = clean_description(product.description_html, rs.links)
    description = description or html.escape(name, quote=False)
    wholesale = _wholesale(product, rs)
    old = product.old_price
    moq = product.min_order_qty
    offer_id = product.offer_id
    slug = product_slug(name, offer_id)
    tree.use(section)
    params = build_params(product, rs)
    vendor, vendor_omitted = _vendor(product, rs)
    country, country_known = country_name(xml_text(product.country))
    group_id = product.model_id or None
    group_dropped = group_id is not None and not 0 < group_id <= GROUP_ID_MAX
    return Offer(
        id=offer_id,
        slug=slug,
        url=_offer_url(rs, slug, offer_id),
        name=name,
        description=description,
        price=fmt_number(price),
        category_id=section.id,
        available=in_stock,
        presence=presence,
        quantity=str(qty),
        selling_type="u" if wholesale else "r",
        group_id=None if group_dropped else group_id,
        oldprice=fmt_number(old) if old is not None and old > price else None,
        currency=rs.currency,
        pictures=pictures,
        vendor=vendor,
        vendor_code=articul,
        barcode=xml_text(product.barcode),
        country=country,
        keywords=cut_keywords(xml_text(product.keywords)),
        params=params,
        minimum_order_quantity=fmt_number(moq) if moq is not None and moq > 1 and wholesale else None,
        portal_category_id=section.portal_category_id,
        in_stock_flag=rs.in_stock_flag and in_stock,
        wholesale=wholesale,
        pictures_dropped=dropped,
        pictures_missing=missing,
        name_truncated=truncated,
        articul_changed=articul_changed,
        params_cut=sum(p.cut for p in params),
        group_id_dropped=group_dropped,
        vendor_omitted=vendor_omitted,
        country_unknown="" if country_known else country,
        links_stripped=links_stripped,
        pictures_invalid=bad_pictures,
    )
