"""The catalog reader: sections and a stream of products from the database through the SQL mapping.

Products, stock, photos and characteristics are four queries ordered by good_id; the reader walks
them side by side (a merge join), so memory stays flat whatever the catalog size. Row → dataclass
conversion lives in pure mapper functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from pipeline.model import Category, Characteristic, Photo, Product, Stock
from pipeline.settings import Settings
from pipeline.torgsoft import db
from pipeline.torgsoft.connection import connect
from pipeline.torgsoft.mapping import CATALOG_QUERIES, Mapping

FETCH_SIZE = 2000


class CatalogSource(Protocol):
    """What a catalog source offers the feed: the section tree and a product stream."""

    def sections(self) -> list[Category]: ...

    def products(self) -> Iterator[Product]: ...


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "read"):  # a BLOB stream (only for very large BLOBs)
        data = value.read()
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return str(value).strip() if not isinstance(value, str) else value.strip()


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "t", "y", "yes")
    return bool(value)


def map_section(row: dict[str, Any]) -> Category:
    """Row of sections.sql → Category (a parent of 0 or itself means root)."""
    sid = int(row["id"])
    parent = _int(row.get("parent_id"))
    return Category(
        id=sid,
        parent_id=None if parent in (None, 0) or parent == sid else parent,
        name=_text(row.get("name")),
        text_before=_text(row.get("text_before")),
        text_after=_text(row.get("text_after")),
        image_file=_text(row.get("image_file")),
    )


def map_product(row: dict[str, Any]) -> Product:
    """Row of products.sql → Product (without stock, photos and characteristics).

    The description is `description_html`, or the optional `description_text` (the same text as a
    VARCHAR, which is much quicker to fetch) when the former is empty.
    """
    return Product(
        good_id=int(row["good_id"]),
        name=_text(row.get("name")),
        section_id=_int(row.get("section_id")),
        model_id=_int(row.get("model_id")),
        short_name=_text(row.get("short_name")),
        description_html=_text(row.get("description_html")) or _text(row.get("description_text")),
        articul=_text(row.get("articul")),
        barcode=_text(row.get("barcode")),
        producer=_text(row.get("producer")),
        country=_text(row.get("country")),
        unit=_text(row.get("unit")),
        keywords=_text(row.get("keywords")),
        length_cm=_dec(row.get("length_cm")),
        width_cm=_dec(row.get("width_cm")),
        height_cm=_dec(row.get("height_cm")),
        weight_kg=_dec(row.get("weight_kg")),
        production_date=_date(row.get("production_date")),
        min_order_qty=_dec(row.get("min_order_qty")),
        wholesale_min_qty=_dec(row.get("wholesale_min_qty")),
        display_on_site=_flag(row.get("display_on_site"), True),
        deleted=_flag(row.get("deleted"), False),
        retail_price=_dec(row.get("retail_price")),
        wholesale_price=_dec(row.get("wholesale_price")),
        old_price=_dec(row.get("old_price")),
        changed_at=row.get("changed_at") if isinstance(row.get("changed_at"), datetime) else None,
    )


def map_stock(row: dict[str, Any]) -> Stock:
    """Row of stock.sql → Stock."""
    return Stock(
        center_id=int(row["center_id"]),
        qty=_dec(row.get("qty")) or Decimal(0),
        reserved=_dec(row.get("reserved")) or Decimal(0),
    )


def map_photo(row: dict[str, Any]) -> Photo:
    """Row of photos.sql → Photo."""
    return Photo(position=int(row.get("pos") or 0), file_name=_text(row.get("file_name")))


def map_characteristic(row: dict[str, Any]) -> Characteristic:
    """Row of characteristics.sql → Characteristic."""
    return Characteristic(
        name=_text(row.get("name")),
        value=_text(row.get("value")),
        unit=_text(row.get("unit")),
        dynamic=_flag(row.get("dynamic"), False),
    )


def _rows(cur: Any, sql: str, args: tuple = ()) -> Iterator[dict[str, Any]]:
    """Stream rows of a query as dicts keyed by lower-case column name."""
    cur.execute(sql, args)
    names = [d[0].lower() for d in cur.description]
    while True:
        batch = cur.fetchmany(FETCH_SIZE)
        if not batch:
            return
        for values in batch:
            yield dict(zip(names, values, strict=True))


class _Side:
    """One ordered side stream of the merge join (stock, photos or characteristics)."""

    def __init__(self, rows: Iterable[dict[str, Any]], mapper: Any, keep: Any = None):
        self._it = iter(rows)
        self._mapper = mapper
        self._keep = keep
        self._head: dict[str, Any] | None = next(self._it, None)

    def take(self, good_id: int) -> list[Any]:
        out: list[Any] = []
        while self._head is not None and int(self._head["good_id"]) <= good_id:
            row = self._head
            self._head = next(self._it, None)
            if int(row["good_id"]) == good_id and (self._keep is None or self._keep(row)):
                out.append(self._mapper(row))
        return out


class DatabaseCatalog:
    """Catalog read from a Torgsoft database through the SQL mapping."""

    def __init__(
        self, con: Any, mapping: Mapping, accounting_centers: list[int] | None = None, price_center: int = 0
    ):
        self.con = con
        self.mapping = mapping
        self.centers = set(accounting_centers or [])
        self.price_center = price_center

    def _cursor_rows(self, name: str) -> Iterator[dict[str, Any]]:
        q = self.mapping.query(name)
        cur = self.con.cursor()
        try:
            yield from _rows(cur, q.sql, q.args({"price_center": self.price_center}))
        except db.driver_errors() as exc:
            raise db.translate(exc, f"query {q.path.name} failed") from None
        finally:
            with contextlib.suppress(*db.driver_errors()):
                cur.close()

    def accounting_centers(self) -> list[dict[str, Any]]:
        """Accounting centers as dicts (id, name, kind)."""
        return list(self._cursor_rows("accounting_centers"))

    def sections(self) -> list[Category]:
        """The whole synchronization section tree."""
        return [map_section(r) for r in self._cursor_rows("sections")]

    def products(self) -> Iterator[Product]:
        """Every good with prices, stock (configured centers), photos and characteristics, by good_id."""
        keep_stock = (lambda r: int(r["center_id"]) in self.centers) if self.centers else None
        stock = _Side(self._cursor_rows("stock"), map_stock, keep_stock)
        photos = _Side(self._cursor_rows("photos"), map_photo)
        chars = _Side(self._cursor_rows("characteristics"), map_characteristic)
        for row in self._cursor_rows("products"):
            product = map_product(row)
            product.stocks = stock.take(product.good_id)
            product.photos = photos.take(product.good_id)
            product.characteristics = chars.take(product.good_id)
            yield product


@contextlib.contextmanager
def open_catalog(settings: Settings, check: bool = True) -> Iterator[CatalogSource]:
    """Open the configured catalog source (database via the mapping, or a TSGoods.trs file)."""
    t = settings.torgsoft
    if t.source == "tsgoods":
        from pipeline.torgsoft.tsgoods import TSGoodsCatalog

        yield TSGoodsCatalog.from_settings(settings)
        return
    mapping = Mapping(t.mapping_dir)
    con = connect(settings)
    try:
        if check:
            mapping.check(con, list(CATALOG_QUERIES))
        yield DatabaseCatalog(con, mapping, t.accounting_centers, t.price_center)
    finally:
        with contextlib.suppress(*db.driver_errors()):
            con.close()
