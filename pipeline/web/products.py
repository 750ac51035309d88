"""Products for the web page: search the catalog, and say whether a product is in the feed or why not.

The verdict comes from the feed's own rules (`pipeline.feed.rules.build_offer`) applied to the product
as the catalog source reads it now, so the page and the feed can never disagree about a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.model import Product

#: What each feed rule's reason means to a shop administrator: (Russian, English).
REASONS = {
    "deleted": ("товар удалён в Торгсофт", "the product is deleted in Torgsoft"),
    "hidden_on_site": ("в Торгсофт снят флажок «показывать на сайте»", "“show on site” is off in Torgsoft"),
    "no_section": ("у товара нет раздела", "the product has no section"),
    "unknown_section": ("раздел товара не найден", "the product's section does not exist"),
    "section_cycle": ("разделы образуют цикл", "the sections form a cycle"),
    "dangling_parent": ("родительский раздел не найден", "a parent section is missing"),
    "no_name": ("у товара нет названия", "the product has no name"),
    "long_name": ("название длиннее 100 знаков", "the name is longer than 100 characters"),
    "no_price": ("нет розничной цены", "there is no retail price"),
    "long_articul": ("артикул длиннее 25 знаков", "the article is longer than 25 characters"),
    "no_photo": (
        "нет фото, а выгружаются только товары с фото",
        "no photo, and only products with photos go out",
    ),
    "out_of_stock": (
        "нет в наличии, а такие товары скрываются",
        "out of stock, and such products are hidden",
    ),
}


@dataclass
class Verdict:
    """A product and what the feed rules make of it."""

    product: Product
    offer: Any = None  # rules.Offer when it goes out
    reason: str = ""  # a rules skip reason otherwise
    detail: str = ""
    section_path: list[str] = field(default_factory=list)


def _matches(p: Product, q: str) -> bool:
    if q.isdigit() and str(p.good_id) == q:
        return True
    return q in p.articul.casefold() or q in p.name.casefold() or q in p.barcode.casefold()


def search(settings: Any, query: str, limit: int = 100) -> list[Product]:
    """Catalog products whose GoodID equals, or article, name or barcode contains, the query."""
    from pipeline.torgsoft.catalog import open_catalog

    q = query.strip().casefold()
    out: list[Product] = []
    with open_catalog(settings, check=False) as source:
        for p in source.products():
            if not q or _matches(p, q):
                out.append(p)
                if len(out) >= limit:
                    break
    return out


def _fallback(settings: Any, tree: Any) -> Any:
    """The `[feed] fallback_category` section, exactly as the feed adds it."""
    from pipeline.feed.rules import Section
    from pipeline.feed.slug import slugify

    f = settings.feed
    if not f.fallback_category:
        return None
    slug = slugify(f.fallback_category)
    url = (
        f.category_url.format(url=f.url.rstrip("/"), slug=slug, id=f.fallback_category_id)
        if f.category_url
        else ""
    )
    section = Section(f.fallback_category_id, None, f.fallback_category, slug, url, (f.fallback_category_id,))
    tree.sections.setdefault(section.id, section)
    return section


def verdict(settings: Any, state: Any, good_id: int) -> Verdict | None:
    """The product with this GoodID and the feed rules' verdict on it; None when the catalog lacks it."""
    from pipeline.contracts.photo_urls import PhotoIndex
    from pipeline.feed.rules import CategoryTree, Offer, RuleSettings, build_offer
    from pipeline.torgsoft.catalog import open_catalog

    f = settings.feed
    with open_catalog(settings, check=False) as source:
        tree = CategoryTree(source.sections(), f.category_url, f.url)
        product = next((p for p in source.products() if p.good_id == good_id), None)
    if product is None:
        return None
    fallback = _fallback(settings, tree)
    photos = PhotoIndex(state, settings.publish.public_base_url)
    result = build_offer(product, RuleSettings.from_settings(settings), tree, photos.url_for, fallback)
    v = Verdict(product)
    if isinstance(result, Offer):
        v.offer = result
    else:
        v.reason, v.detail = result.reason, result.detail
    section = tree.sections.get(product.section_id) if product.section_id is not None else None
    if section is not None:
        v.section_path = [tree.sections[i].name for i in section.path if i in tree.sections]
    return v


def reason_text(reason: str, lang: str) -> str:
    """The reason in the page's language (the rule's code when it is new to this table)."""
    ru, en = REASONS.get(reason, (reason, reason))
    return ru if lang == "ru" else en


def photo_file(settings: Any, name: str) -> Path | None:
    """A photo of the photo folder by its catalog name; None for anything outside that folder."""
    root = Path(settings.photos.source_dir).resolve()
    path = (root / name).resolve()
    if not path.is_file() or root not in path.parents:
        return None
    return path


def thumbnail(path: Path, size: int = 160) -> bytes:
    """A small JPEG of a photo, for the product page."""
    import io

    from PIL import Image

    with Image.open(path) as im:
        im.thumbnail((size, size))
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()
