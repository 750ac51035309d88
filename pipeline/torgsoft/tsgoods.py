"""The vendor's export file `TSGoods.trs` as a catalog source (see docs/setup.md).

The file is CSV with `;` between fields, fields in double quotes with `""` inside, windows-1251 by
default, an optional header row (else a positional column map from settings, or the vendor's default
column order), decimal commas (`"1958,36"`), and a section path per row in `SynchronizationSectionFull`
(`"2=Волосся;31=Маска"`). Columns are matched by name, case-insensitively; unknown columns become
characteristics, so an install's own characteristic columns reach the feed.

A broken row (wrong number of fields, unbalanced quotes, a GoodID or number that does not parse, a
repeated GoodID) is recorded in `.problems` as (line number, reason), logged, and skipped; the rest are
read. Line numbers are physical lines of the file (1 = the first line), so a row whose description
spans several lines is reported at its first line.

Products stream in file order (not sorted by GoodID: the file is read once, never held in memory).
Row → Product conversion is the pure function `map_row`.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import deque
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from pipeline.errors import Problem, SettingsError
from pipeline.model import Category, Characteristic, Photo, Product, Stock
from pipeline.numbers import parse_decimal as read_decimal
from pipeline.settings import Settings

log = logging.getLogger(__name__)

# The vendor's default column order (docs/setup.md), used when the file has no header row and
# `[torgsoft] tsgoods_columns` is empty.
DEFAULT_COLUMNS: tuple[str, ...] = (
    "GoodID",
    "GoodName",
    "Description",
    "Country",
    "Articul",
    "RetailPrice",
    "WholesalePrice",
    "RetailPriceWithDiscount",
    "MinQuantityForOrder",
    "Height",
    "Width",
    "Category",
    "WarehouseQuantity",
    "Display",
    "TheSize",
    "Color",
    "Material",
    "FashionName",
    "Sex",
    "ShortName",
    "GoodTypeFull",
    "ProducerCollectionFull",
    "Season",
    "Barcode",
    "Pack",
    "PackSize",
    "PowerSupply",
    "CountUnitsPerBox",
    "Age",
    "Measure",
    "MeasureUnit",
    "Closeout",
    "RetailPricePerUnit",
    "WholesalePricePerUnit",
    "EqualSalePrice",
    "EqualWholesalePrice",
    "EqualCurrencyName",
    "PrimeCost",
    "SupplierCode",
    "Analogs",
)

# Known columns that describe the good to a buyer: they become characteristics (column → label).
CHARACTERISTIC_COLUMNS: dict[str, str] = {
    "thesize": "Размер",
    "color": "Цвет",
    "material": "Материал",
    "season": "Сезон",
    "sex": "Пол",
    "age": "Возраст",
    "fashionname": "Модель",
    "pack": "Упаковка",
    "packsize": "Размер упаковки",
    "powersupply": "Питание",
    "countunitsperbox": "Количество в упаковке",
    "measure": "Фасовка",
}

# Known columns read into Product fields, or internal ones that must never reach the shop (cost price,
# supplier code, per-unit and currency-equivalent prices, the internal product-type tree).
HANDLED_COLUMNS = frozenset(
    {
        "goodid",
        "goodname",
        "description",
        "country",
        "articul",
        "retailprice",
        "wholesaleprice",
        "retailpricewithdiscount",
        "minquantityfororder",
        "height",
        "width",
        "length",
        "category",
        "warehousequantity",
        "display",
        "shortname",
        "producercollectionfull",
        "barcode",
        "measureunit",
        "modelgoodid",
        "productiondate",
        "wholesalecount",
        "synchronizationsection",
        "synchronizationsectionfull",
        "goodphotolist",
        "goodphotolistwithlinks",
        "weight",
        # internal: never published
        "goodtypefull",
        "closeout",
        "retailpriceperunit",
        "wholesalepriceperunit",
        "equalsaleprice",
        "equalwholesaleprice",
        "equalcurrencyname",
        "primecost",
        "suppliercode",
        "analogs",
        "warehousequantityforpartner",
    }
)

MAX_RECORD_LINES = 2000  # a quoted field longer than this is taken for an unclosed quote
_PHOTO_NAME = re.compile(r"^(\d+)(?:_(\d+))?\.(?:jpe?g|png|webp|gif|bmp)$", re.IGNORECASE)
_PHOTO_SPLIT = re.compile(r"\s*[,;|\n]\s*")


class RowError(ValueError):
    """A row cannot be read; the message says which column and why."""


# --- pure helpers ---------------------------------------------------------------------------------------


def parse_decimal(text: str, column: str) -> Decimal | None:
    """`"1958,36"`, `"1 958.36"`, `""` → Decimal or None; anything else raises RowError."""
    try:
        return read_decimal(text)
    except ValueError:
        raise RowError(f"{column} {text!r} is not a number") from None


def parse_int(text: str, column: str) -> int | None:
    """A whole number (`"38280"`, `"38280,0"`) or None when empty; anything else raises RowError."""
    value = parse_decimal(text, column)
    if value is None:
        return None
    if value != value.to_integral_value():
        raise RowError(f"{column} {text!r} is not a whole number")
    return int(value)


def parse_date(text: str) -> date | None:
    """`dd.mm.yyyy`, `yyyy-mm-dd` (optionally with a time) → date; unreadable → None (not fatal)."""
    s = text.strip()
    if not s:
        return None
    for fmt in (
        "%d.%m.%Y",
        "%Y-%m-%d",
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%d/%m/%Y",
        "%d.%m.%y",
    ):
        try:
            return datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    return None


def parse_section_path(text: str) -> list[tuple[int, str]]:
    """`"2=Волосся;31=Маска"` → [(2, "Волосся"), (31, "Маска")]; parts without a number are dropped."""
    out: list[tuple[int, str]] = []
    for part in text.split(";"):
        sid, sep, name = part.partition("=")
        if not sep:
            continue
        try:
            number = int(sid.strip())
        except ValueError:
            continue
        if number > 0:
            out.append((number, name.strip()))
    return out


def _path_names(text: str) -> list[str]:
    """Names of a `;`-joined path whose parts may carry an `id=` prefix."""
    names = []
    for part in text.split(";"):
        sid, sep, name = part.partition("=")
        names.append((name if sep and sid.strip().lstrip("-").isdigit() else part).strip())
    return [n for n in names if n]


def split_photos(text: str) -> list[str]:
    """A GoodPhotoList value (names or URLs separated by `,` `;` `|` or new lines) → list."""
    return [p for p in _PHOTO_SPLIT.split(text.strip()) if p]


def _flag(text: str, default: bool) -> bool:
    s = text.strip().lower()
    if not s:
        return default
    return s not in ("0", "false", "no", "ні", "нет", "жоқ", "-1")


def map_row(
    row: dict[str, str], labels: dict[str, str] | None = None, photo_index: dict[int, list[str]] | None = None
) -> Product:
    """One TSGoods row (lower-case column name → text) → Product; raises RowError when it cannot.

    Prices: `RetailPrice` is the price; a `RetailPriceWithDiscount` below it becomes the price and the
    retail price becomes `old_price` (shown crossed out). `WarehouseQuantity` is one Stock at center 0.
    `labels` gives the original spelling of unknown columns (they become characteristics).
    """
    get = row.get
    good_id = parse_int(get("goodid", ""), "GoodID")
    if good_id is None:
        raise RowError("GoodID is empty")
    name = get("goodname", "").strip()
    retail = parse_decimal(get("retailprice", ""), "RetailPrice")
    discounted = parse_decimal(get("retailpricewithdiscount", ""), "RetailPriceWithDiscount")
    old_price = None
    if discounted is not None and discounted > 0 and (retail is None or discounted < retail):
        old_price, retail = retail, discounted
    wholesale = parse_decimal(get("wholesaleprice", ""), "WholesalePrice")
    path = parse_section_path(get("synchronizationsectionfull", ""))
    if path:
        section_id: int | None = path[-1][0]
    else:
        section_id = parse_int(get("category", ""), "Category")
        if section_id is None or section_id <= 0:
            sync = get("synchronizationsection", "").strip()
            section_id = int(sync) if sync.isdigit() and int(sync) > 0 else None
    qty = parse_decimal(get("warehousequantity", ""), "WarehouseQuantity")
    photos_text = get("goodphotolist", "").strip() or get("goodphotolistwithlinks", "").strip()
    if photos_text:
        files = split_photos(photos_text)
    elif photo_index is not None:
        files = photo_index.get(good_id, [])
    else:
        files = []
    chars: list[Characteristic] = []
    for key, value in row.items():
        value = value.strip()
        if not value or key in HANDLED_COLUMNS:
            continue
        label = CHARACTERISTIC_COLUMNS.get(key) or (labels or {}).get(key, key)
        unit = get("measureunit", "").strip() if key == "measure" else ""
        chars.append(Characteristic(name=label, value=value, unit=unit))
    producer = _path_names(get("producercollectionfull", ""))
    return Product(
        good_id=good_id,
        name=name,
        section_id=section_id,
        model_id=parse_int(get("modelgoodid", ""), "ModelGoodID"),
        short_name=get("shortname", "").strip(),
        description_html=get("description", "").strip(),
        articul=get("articul", "").strip(),
        barcode=get("barcode", "").strip(),
        producer=producer[0] if producer else "",
        country=get("country", "").strip(),
        unit=get("measureunit", "").strip(),
        length_cm=parse_decimal(get("length", ""), "Length"),
        width_cm=parse_decimal(get("width", ""), "Width"),
        height_cm=parse_decimal(get("height", ""), "Height"),
        weight_kg=parse_decimal(get("weight", ""), "Weight"),
        production_date=parse_date(get("productiondate", "")),
        min_order_qty=parse_decimal(get("minquantityfororder", ""), "MinQuantityForOrder"),
        wholesale_min_qty=parse_decimal(get("wholesalecount", ""), "WholesaleCount"),
        display_on_site=_flag(get("display", ""), True),
        deleted=False,
        retail_price=retail,
        wholesale_price=wholesale,
        old_price=old_price,
        stocks=[Stock(center_id=0, qty=qty)] if qty is not None else [],
        photos=[Photo(position=i, file_name=f) for i, f in enumerate(files)],
        characteristics=chars,
    )


# --- the file -------------------------------------------------------------------------------------------


class TSGoodsCatalog:
    """Catalog source reading a TSGoods.trs file (same interface as the database reader)."""

    def __init__(
        self,
        path: Path,
        encoding: str = "cp1251",
        header: bool = True,
        columns: list[str] | tuple[str, ...] | None = None,
        photo_dir: Path | None = None,
    ):
        self.path = Path(path)
        self.encoding = encoding
        self.header = header
        self.columns = tuple(columns) if columns else DEFAULT_COLUMNS
        self.photo_dir = Path(photo_dir) if photo_dir else None
        self._problems: dict[int, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TSGoodsCatalog:
        """Build from `[torgsoft] tsgoods_*`; a missing file or unknown encoding is a settings error."""
        t = settings.torgsoft
        problems = []
        if t.tsgoods_file is None or not Path(t.tsgoods_file).is_file():
            problems.append(
                Problem(
                    "torgsoft.tsgoods_file",
                    f"file {t.tsgoods_file} not found",
                    "point it at the TSGoods.trs that Torgsoft exports",
                )
            )
        import codecs

        try:
            codecs.lookup(t.tsgoods_encoding)
        except LookupError:
            problems.append(
                Problem(
                    "torgsoft.tsgoods_encoding",
                    f"unknown encoding {t.tsgoods_encoding!r}",
                    "use cp1251 (Torgsoft's default) or utf-8",
                )
            )
        if problems or t.tsgoods_file is None:
            raise SettingsError(problems)
        return cls(
            Path(t.tsgoods_file),
            t.tsgoods_encoding,
            t.tsgoods_header,
            t.tsgoods_columns or None,
            settings.photos.source_dir,
        )

    @property
    def problems(self) -> list[tuple[int, str]]:
        """Skipped rows so far: (line number, reason), by line."""
        return sorted(self._problems.items())

    def _problem(self, line: int, reason: str) -> None:
        if line not in self._problems:
            log.warning("%s line %d skipped: %s", self.path.name, line, reason)
        self._problems[line] = reason

    def _open(self) -> TextIO:
        encoding = (
            "utf-8-sig" if self.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else self.encoding
        )
        # errors="replace": one undecodable byte must not lose the whole file; the row still reads.
        return open(self.path, encoding=encoding, errors="replace", newline="")

    def _records(self, f: TextIO) -> Iterator[tuple[int, list[str] | None, int]]:
        """Yield (first line number, fields or None when broken, number of physical lines).

        Physical lines are gathered until the double quotes balance (a quoted field may hold new
        lines), then parsed with the csv module. A record that never balances is reported and its
        lines after the first are scanned again, so one stray quote costs one row, not the file.
        """
        lines = enumerate(f, 1)
        pending: deque[tuple[int, str]] = deque()
        while True:
            first = pending.popleft() if pending else next(lines, None)
            if first is None:
                return
            if not first[1].strip():
                continue
            buf = [first]
            quotes = first[1].count('"')
            while quotes % 2 and len(buf) < MAX_RECORD_LINES:
                nxt = pending.popleft() if pending else next(lines, None)
                if nxt is None:
                    break
                buf.append(nxt)
                quotes += nxt[1].count('"')
            if quotes % 2:
                self._problem(first[0], 'a quoted field is never closed (unbalanced ")')
                pending.extendleft(reversed(buf[1:]))
                continue
            try:
                fields = next(
                    csv.reader(
                        [ln for _, ln in buf], delimiter=";", quotechar='"', doublequote=True, strict=True
                    )
                )
            except csv.Error as exc:
                self._problem(first[0], f"malformed CSV: {exc}")
                pending.extendleft(reversed(buf[1:]))
                continue
            yield first[0], fields, len(buf)
            if len(buf) > 1 and self._width_mismatch(fields):
                # The quotes balanced across lines but the fields don't fit: most likely a stray quote
                # swallowed the following rows; give them their own chance.
                pending.extendleft(reversed(buf[1:]))

    def _width_mismatch(self, fields: list[str]) -> bool:
        width = getattr(self, "_width", None)
        return width is not None and len(_trim(fields, width)) != width

    def _rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """(line number, lower-case column → text) for every well-formed row; records the rest."""
        with self._open() as f:
            records = self._records(f)
            if self.header:
                head = next(records, None)
                if head is None or head[1] is None:
                    return
                names = [n.strip().lstrip("\ufeff") for n in head[1]]
            else:
                names = list(self.columns)
            keys = [n.lower() for n in names]
            if "goodid" not in keys:
                raise SettingsError(
                    Problem(
                        "torgsoft.tsgoods_header" if self.header else "torgsoft.tsgoods_columns",
                        f"{self.path.name} has no GoodID column (columns: {', '.join(names)})",
                        "check tsgoods_header / tsgoods_columns against the file",
                    )
                )
            self._labels = dict(zip(keys, names, strict=True))
            self._width = width = len(keys)
            for line, fields, _ in records:
                if fields is None:
                    continue
                fields = _trim(fields, width)
                if len(fields) != width:
                    self._problem(line, f"expected {width} fields, found {len(fields)}")
                    continue
                yield line, dict(zip(keys, fields, strict=True))

    def _photo_index(self) -> dict[int, list[str]] | None:
        """`<GoodID>.jpg`, `<GoodID>_<n>.jpg` in the photo folder, for files without a photo column."""
        if self.photo_dir is None or not self.photo_dir.is_dir():
            return None
        found: dict[int, list[tuple[int, str]]] = {}
        for entry in self.photo_dir.iterdir():
            m = _PHOTO_NAME.match(entry.name)
            if m:
                found.setdefault(int(m.group(1)), []).append((int(m.group(2) or 0), entry.name))
        return {gid: [name for _, name in sorted(items)] for gid, items in found.items()}

    def sections(self) -> list[Category]:
        """Sections named by the rows' `SynchronizationSectionFull` paths (or `Category` numbers)."""
        seen: dict[int, Category] = {}
        for _, row in self._rows():
            path = parse_section_path(row.get("synchronizationsectionfull", ""))
            parent: int | None = None
            for sid, name in path:
                if sid not in seen:
                    seen[sid] = Category(id=sid, parent_id=parent, name=name or f"Раздел {sid}")
                parent = sid
            if not path:
                try:
                    cat_id = parse_int(row.get("category", ""), "Category")
                except RowError:
                    continue
                if cat_id is not None and cat_id > 0 and cat_id not in seen:
                    sync = row.get("synchronizationsection", "").strip()
                    name = sync if sync and not sync.isdigit() else f"Раздел {cat_id}"
                    seen[cat_id] = Category(id=cat_id, parent_id=None, name=name)
        return list(seen.values())

    def products(self) -> Iterator[Product]:
        """Every readable row as a Product, in file order; broken rows go to `.problems`."""
        first_line: dict[int, int] = {}
        index = None
        checked_photos = False
        for line, row in self._rows():
            if not checked_photos:
                checked_photos = True
                if "goodphotolist" not in row and "goodphotolistwithlinks" not in row:
                    index = self._photo_index()
            try:
                product = map_row(row, self._labels, index)
            except RowError as exc:
                self._problem(line, str(exc))
                continue
            if product.good_id in first_line:
                self._problem(
                    line, f"GoodID {product.good_id} repeats the row on line {first_line[product.good_id]}"
                )
                continue
            first_line[product.good_id] = line
            yield product


def _trim(fields: list[str], width: int) -> list[str]:
    """Drop the empty field a trailing `;` leaves behind."""
    if len(fields) == width + 1 and fields[-1] == "":
        return fields[:-1]
    return fields
