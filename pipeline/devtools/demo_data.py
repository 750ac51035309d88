"""Deterministic demo data for the reference schema: sections, goods, prices, stock, photos.

`generate(con, photo_dir, products=N, seed=S)` fills an empty reference database. The same seed
gives the same rows and the same image files. Rows are bulk-loaded with EXECUTE BLOCK batches (about
ten times faster than executemany on Firebird). Images come from a small shared pool (a few hundred
files), so a 100k-product database stays small and quick to build. Every 25th good is a model
whose next goods are its variants (sizes, colours or both; see `variant_of`).

The demo's own statements (what a shop manager does to an imported order, the report's counts) live
in demo_queries/, apart from the production query folder; `demo_mapping` loads them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.progress import Progress

if TYPE_CHECKING:
    from pipeline.torgsoft.mapping import Mapping

DEMO_QUERIES = Path(__file__).with_name("demo_queries")
BATCH_BYTES = 60_000  # the legacy prepare API that fdb uses takes at most 64 kB of SQL text
MAX_STATEMENTS = 250  # a block may touch at most 256 relation contexts
BASE_TIME = datetime(2026, 1, 1, 9, 0, 0)

CENTERS = [(1, "Магазин Алматы", 0), (2, "Склад Астана", 1), (3, "Дүкен Шымкент", 0)]

ROOT_SECTIONS = [
    "Жиһаз / Мебель",
    "Киім / Одежда",
    "Электроника",
    "Үй тауарлары / Товары для дома",
    "Спорт",
    "Балаларға / Детям",
]
SECTION_WORDS = [
    "Кресла",
    "Үстелдер",
    "Шкафы",
    "Диваны",
    "Көйлектер",
    "Куртки",
    "Аяқ киім",
    "Смартфоны",
    "Наушники",
    "Кабели",
    "Ыдыс-аяқ",
    "Текстиль",
    "Шамдар",
    "Велосипеды",
    "Доптар",
    "Ойыншықтар",
    "Коляски",
    "Кітаптар",
    "Сөмкелер",
    "Часы",
    "Сағаттар",
    "Зарядтағыштар",
    "Кілемдер",
    "Полки",
]
ADJECTIVES = [
    "Қызыл",
    "Көк",
    "Ақ",
    "Қара",
    "Жасыл",
    "Сары",
    "Удобный",
    "Мягкий",
    "Прочный",
    "Лёгкий",
    "Үлкен",
    "Кішкентай",
    "Жаңа",
    "Классический",
    "Премиум",
    "Әдемі",
    "Ыңғайлы",
    "Өнімді",
]
NOUNS = [
    "кресло",
    "үстел",
    "шкаф",
    "диван",
    "көйлек",
    "куртка",
    "етік",
    "смартфон",
    "құлаққап",
    "кабель",
    "кесе",
    "қасық",
    "шам",
    "велосипед",
    "доп",
    "ойыншық",
    "коляска",
    "кітап",
    "сөмке",
    "сағат",
    "рюкзак",
    "табақ",
    "кілем",
    "сөре",
    "пальто",
    "шарф",
    "қолғап",
    "жейде",
]
MATERIALS = ["Ағаш / дерево", "Металл", "Пластик", "Мақта / хлопок", "Былғары / кожа", "Шыны / стекло"]
COLORS = ["қызыл", "көк", "ақ", "қара", "жасыл", "сұр", "бежевый", "күміс"]
SIZES = ["XS", "S", "M", "L", "XL", "XXL", "42", "44", "46"]
PRODUCERS = ["Qazaq Home", "Алтын Жиһаз", "Steppe Wear", "Nomad Tech", "Өнер", "Samsung", "Xiaomi", "IKEA"]
COUNTRIES = ["Қазақстан", "Россия", "Китай", "Түркия", "Германия", "Өзбекстан"]
UNITS = ["шт", "дана", "м", "кг", "комплект"]
# (id, name, unit, dynamic)
CHARACTERISTICS = [
    (1, "Материал", "", 0),
    (2, "Түсі / Цвет", "", 0),
    (3, "Размер", "", 1),
    (4, "Кепілдік / Гарантия", "ай", 0),
    (5, "Қуаты / Мощность", "Вт", 0),
    (6, "Көлемі / Объём", "л", 1),
    (7, "Жасы / Возраст", "жас", 0),
]


# Variant groups (Satu's group_id): every GROUP_EVERY goods, a model good and the goods after it are
# one product in several sizes, colours or both. They share the model's section and name and differ
# in the param they vary by, as Satu requires (variants of one group must differ in a <param>).
GROUP_EVERY = 25
SIZE, COLOR = 3, 2  # CHARACTERISTICS ids of "Размер" and "Түсі / Цвет"
VARIANT_KINDS: list[list[dict[int, str]]] = [
    [{SIZE: v} for v in ("S", "M", "L", "XL")],
    [{COLOR: v} for v in ("қара", "ақ", "көк")],
    [{SIZE: sz, COLOR: c} for sz in ("M", "L") for c in ("қара", "ақ")],
]


def variant_of(good_id: int) -> tuple[int, dict[int, str]] | None:
    """(model good id, the characteristics this variant has) for a good in a variant group, else None."""
    head = good_id - (good_id - 1) % GROUP_EVERY
    kind = VARIANT_KINDS[(head // GROUP_EVERY) % len(VARIANT_KINDS)]
    offset = good_id - head
    return (head, kind[offset]) if offset < len(kind) else None


@dataclass
class DemoSummary:
    """What the generator created."""

    products: int
    sections: int
    max_depth: int
    photos: int
    image_files: int
    seconds: float = 0.0


def _q(value: Any) -> str:
    """A SQL literal (the generator writes EXECUTE BLOCK text; values are its own, not user input)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'"
    if isinstance(value, date):
        return f"DATE '{value:%Y-%m-%d}'"
    return "'" + str(value).replace("'", "''") + "'"


def _insert(table: str, columns: tuple[str, ...], row: tuple) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(_q(v) for v in row)});"


def _literal_blocks(cur: Any, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    """EXECUTE BLOCK with literal INSERTs: handles any value, but each block is compiled anew."""
    batch: list[str] = []
    size = 0
    for row in rows:
        stmt = _insert(table, columns, row)
        batch.append(stmt)
        size += len(stmt.encode("utf-8"))
        if size >= BATCH_BYTES or len(batch) >= MAX_STATEMENTS:
            cur.execute("EXECUTE BLOCK AS BEGIN\n" + "\n".join(batch) + "\nEND")
            batch, size = [], 0
    if batch:
        cur.execute("EXECUTE BLOCK AS BEGIN\n" + "\n".join(batch) + "\nEND")


# The packed loader: one EXECUTE BLOCK per table, prepared once, takes a batch of rows as one string
# parameter (fields ended by \x1f, NULL written as \x1e) and splits it in PSQL. Compiling a block of
# 250 literal INSERTs costs more than inserting the rows; this way nothing is compiled per batch and
# Python only joins strings. Byte positions: the parameter is CHARACTER SET NONE (UTF-8 bytes as they
# are); each field is converted to the column type on INSERT.
_SEP, _NULL = "\x1f", "\x1e"
PACKED_BYTES = 32_000  # VARCHAR parameter limit is 32 765 bytes
PACKED_FIELD = 8_000  # longest field the packed loader takes; longer rows go the literal way


def _packed_sql(table: str, columns: tuple[str, ...]) -> str:
    names = [f"v{i}" for i in range(len(columns))]
    declare = "\n".join(f"DECLARE {n} VARCHAR({PACKED_FIELD}) CHARACTER SET NONE;" for n in names)
    split = "\n".join(
        f"    q = POSITION(ASCII_CHAR(31), d, p); {n} = SUBSTRING(d FROM p FOR q - p); p = q + 1;"
        for n in names
    )
    values = ", ".join(f"NULLIF(:{n}, ASCII_CHAR(30))" for n in names)
    return (
        f"EXECUTE BLOCK (d VARCHAR({PACKED_BYTES}) CHARACTER SET NONE = ?) AS\n"
        f"DECLARE p INTEGER = 1; DECLARE q INTEGER; DECLARE n INTEGER;\n{declare}\nBEGIN\n"
        f"  n = OCTET_LENGTH(d);\n  WHILE (p <= n) DO BEGIN\n{split}\n"
        f"    INSERT INTO {table} ({', '.join(columns)}) VALUES ({values});\n  END\nEND"
    )


def _packed(value: Any) -> str:
    if value is None:
        return _NULL
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, date):
        return f"{value:%Y-%m-%d}"
    return str(value)


def bulk_insert(con: Any, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> int:
    """Insert rows in EXECUTE BLOCK batches (within the engine's 64 kB / 255-statement limits), commit,
    and return the count.

    Rows go through the packed loader; a row holding the separator characters or a very long field
    goes through literal INSERT blocks instead, so any value is accepted.
    """
    cur = con.cursor()
    stmt = cur.prep(_packed_sql(table, columns))
    count = 0
    batch: list[bytes] = []
    size = 0
    odd: list[tuple] = []
    for row in rows:
        count += 1
        text = _SEP.join([_packed(v) for v in row]) + _SEP
        data = text.encode("utf-8")
        if (
            len(data) > PACKED_FIELD
            or text.count(_SEP) != len(columns)
            or text.count(_NULL) != row.count(None)
        ):  # a value holds a separator: go literal
            odd.append(row)
            continue
        if size + len(data) > PACKED_BYTES:
            cur.execute(stmt, (b"".join(batch),))
            batch, size = [], 0
        batch.append(data)
        size += len(data)
    if batch:
        cur.execute(stmt, (b"".join(batch),))
    if odd:
        _literal_blocks(cur, table, columns, odd)
    con.commit()
    return count


def _sections(rng: random.Random, count: int) -> list[tuple[int, int | None, str, str, str, str]]:
    """A tree with several roots and a guaranteed chain at least 5 levels deep."""
    count = max(count, 8)
    rows: list[tuple[int, int | None, str, str, str, str]] = []
    depth: dict[int, int] = {}
    next_id = 1
    for name in ROOT_SECTIONS[: max(2, min(len(ROOT_SECTIONS), count // 4))]:
        rows.append((next_id, None, name, "", "", ""))
        depth[next_id] = 1
        next_id += 1
    parent = 1
    for _ in range(4):  # the deep chain: root → 4 more levels
        rows.append((next_id, parent, f"{rng.choice(SECTION_WORDS)} {next_id}", "", "", ""))
        depth[next_id] = depth[parent] + 1
        parent = next_id
        next_id += 1
    while len(rows) < count:
        candidates = [sid for sid, d in depth.items() if d < 6]
        parent = rng.choice(candidates)
        rows.append((next_id, parent, f"{rng.choice(SECTION_WORDS)} {next_id}", "", "", ""))
        depth[next_id] = depth[parent] + 1
        next_id += 1
    out = []
    for sid, pid, name, _, _, _ in rows:
        before = f"<p>{name}: ең жақсы таңдау. Лучший выбор в категории «{name}».</p>" if sid % 3 else ""
        after = (
            "<p>Жеткізу бүкіл Қазақстан бойынша. Доставка по всему Казахстану.</p>" if sid % 4 == 0 else ""
        )
        image = f"sections/section_{sid % 7}.jpg" if sid % 2 else ""
        out.append((sid, pid, name, before, after, image))
    return out


def section_depths(rows: list[tuple]) -> dict[int, int]:
    """Depth of every section in a (id, parent_id, …) list; roots are 1."""
    parents = {r[0]: r[1] for r in rows}
    depths: dict[int, int] = {}
    for sid in parents:
        d, cur = 1, parents[sid]
        while cur is not None and d < 100:
            d, cur = d + 1, parents.get(cur)
        depths[sid] = d
    return depths


def _pool_image(rng: random.Random, photo_dir: Path, i: int) -> str:
    """Write demo image number `i` of the pool (a few large, PNG, CMYK and EXIF-rotated ones); its name."""
    from PIL import Image, ImageDraw

    large_every = 25
    big = i % large_every == 3
    w, h = (3200, 2400) if big else (rng.randint(400, 1400), rng.randint(400, 1400))
    color = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
    img = Image.new("RGB", (w, h), color)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.randint(0, w - 2), rng.randint(0, h - 2)
        draw.rectangle(
            [x0, y0, min(w - 1, x0 + w // 3), min(h - 1, y0 + h // 3)],
            fill=(rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)),
        )
    draw.text((10, 10), f"demo {i}", fill=(255, 255, 255))
    kind = i % 10
    if kind == 7:  # PNG with alpha
        name = f"pool/img_{i:04d}.png"
        img.putalpha(200)
        path = photo_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, "PNG")
    elif kind == 8:  # CMYK JPEG
        name = f"pool/img_{i:04d}.jpg"
        path = photo_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img.convert("CMYK").save(path, "JPEG", quality=80)
    elif kind == 9:  # EXIF orientation: stored rotated, tagged to be turned upright
        name = f"pool/img_{i:04d}.jpg"
        path = photo_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        exif[0x0112] = 6
        img.rotate(90, expand=True).save(path, "JPEG", quality=80, exif=exif.tobytes())
    else:
        name = f"pool/img_{i:04d}.jpg"
        path = photo_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, "JPEG", quality=80)
    return name


def _image_pool(rng: random.Random, photo_dir: Path, size: int) -> list[str]:
    """Write the shared pool of demo images; returns the usable file names (corrupt ones included)."""
    from PIL import Image, ImageDraw

    photo_dir.mkdir(parents=True, exist_ok=True)
    (photo_dir / "sections").mkdir(exist_ok=True)
    names: list[str] = []
    with Progress(size, "demo images", "image") as bar:
        for i in bar.counted(range(size)):
            names.append(_pool_image(rng, photo_dir, i))
    # Two broken files, as real photo folders have: a truncated JPEG and a text file named .jpg.
    good = (photo_dir / names[0]).read_bytes()
    (photo_dir / "pool/corrupt_truncated.jpg").write_bytes(good[: len(good) // 3])
    (photo_dir / "pool/corrupt_not_image.jpg").write_bytes(b"this is not an image\n")
    names += ["pool/corrupt_truncated.jpg", "pool/corrupt_not_image.jpg"]
    for s in range(7):
        img = Image.new("RGB", (800, 400), (30 * s, 120, 200 - 20 * s))
        ImageDraw.Draw(img).text((20, 20), f"section {s}", fill=(255, 255, 255))
        img.save(photo_dir / f"sections/section_{s}.jpg", "JPEG", quality=80)
    return names


def _description(rng: random.Random, name: str) -> str:
    feats = rng.sample(
        [
            "Жоғары сапа",
            "Быстрая доставка",
            "Кепілдік 12 ай",
            "Экологичный материал",
            "Қолмен жасалған",
            "Сертифицирован",
            "Ыңғайлы қаптама",
        ],
        3,
    )
    return (
        f"<p><strong>{name}</strong> — сапалы тауар. Качественный товар для дома и семьи.</p>"
        f"<ul>{''.join(f'<li>{f}</li>' for f in feats)}</ul>"
        f"<p>Қазақстан бойынша жеткізу: 1–5 күн.</p>"
    )


def _goods(rng: random.Random, n: int, section_ids: list[int], pool: list[str]) -> Iterator[dict[str, Any]]:
    usable = [p for p in pool if "corrupt" not in p]
    corrupt = [p for p in pool if "corrupt" in p]
    heads: dict[int, tuple[str, int | None]] = {}  # model good → (name stem, section)
    for good_id in range(1, n + 1):
        stem = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(PRODUCERS)}"
        variant = variant_of(good_id)
        model = variant[0] if variant else None
        if model is not None and model in heads:  # a variant is named like its model (the random draws stay)
            stem = heads[model][0]
        name = f"{stem} {good_id}"
        retail = Decimal(rng.randint(5, 20000) * 10)
        has_wholesale = rng.random() < 0.3
        roll = rng.random()
        nphotos = 0 if roll < 0.15 else rng.randint(1, 12)
        photos = rng.sample(usable, min(nphotos, len(usable)))
        if nphotos and good_id % 997 == 0 and corrupt:
            photos[0] = corrupt[good_id % len(corrupt)]
        qtys = []
        # About 10% of goods are sold out everywhere: 7.5% on purpose, plus ~2.5% by chance below.
        sold_out = rng.random() < 0.075
        for cid, _, _ in CENTERS:
            r = rng.random()
            qty = Decimal(0) if sold_out or r < 0.3 else Decimal(rng.randint(1, 60))
            reserved = Decimal(rng.randint(0, int(qty))) if qty and rng.random() < 0.2 else Decimal(0)
            qtys.append((cid, qty, reserved))
        chars = []
        for cid, _, _unit, _ in CHARACTERISTICS:
            if rng.random() < 0.45:
                value = {
                    1: rng.choice(MATERIALS),
                    2: rng.choice(COLORS),
                    3: rng.choice(SIZES),
                    4: str(rng.choice([6, 12, 24])),
                    5: str(rng.randint(5, 2500)),
                    6: str(rng.randint(1, 50)),
                    7: f"{rng.randint(1, 14)}+",
                }[cid]
                chars.append((cid, value))
        section = rng.choice(section_ids) if rng.random() > 0.01 else None
        if variant:
            head, varies = variant
            chars = [(cid, v) for cid, v in chars if cid not in varies] + sorted(varies.items())
            if head == good_id:
                heads[good_id] = (stem, section)
            section = heads.get(head, (stem, section))[1]
        yield {
            "good": (
                good_id,
                model,
                section,
                name,
                name[:60],
                _description(rng, name),
                f"ART-{good_id:06d}" if rng.random() > 0.05 else None,
                f"487{good_id:010d}",
                rng.choice(PRODUCERS),
                rng.choice(COUNTRIES),
                rng.choice(UNITS),
                f"{name.split()[1]}, {rng.choice(NOUNS)}" if rng.random() < 0.3 else None,
                Decimal(rng.randint(5, 2000)) / 10,
                Decimal(rng.randint(5, 2000)) / 10,
                Decimal(rng.randint(5, 2000)) / 10,
                Decimal(rng.randint(10, 50000)) / 1000,
                date(2020, 1, 1) + timedelta(days=rng.randint(0, 2000)),
                Decimal(1) if rng.random() < 0.9 else Decimal(rng.randint(2, 5)),
                Decimal(rng.choice([5, 10, 20, 50])) if has_wholesale else None,
                0 if rng.random() < 0.03 else 1,
                1 if rng.random() < 0.02 else 0,
                BASE_TIME + timedelta(seconds=good_id),
            ),
            "price": (
                good_id,
                0,
                retail,
                (retail * Decimal("0.85")).quantize(Decimal("1")) if has_wholesale else None,
                (retail * Decimal("1.2")).quantize(Decimal("1")) if rng.random() < 0.15 else None,
                BASE_TIME,
            ),
            "center_price": (good_id, 1, retail - 10, None, None, BASE_TIME) if rng.random() < 0.05 else None,
            "stock": [(good_id, cid, q, r, BASE_TIME) for cid, q, r in qtys],
            "photos": [(good_id, pos, p) for pos, p in enumerate(photos)],
            "chars": [(good_id, cid, v) for cid, v in chars],
        }


GOOD_COLUMNS = (
    "GOOD_ID",
    "MODEL_GOOD_ID",
    "SECTION_ID",
    "NAME",
    "SHORT_NAME",
    "DESCRIPTION_HTML",
    "ARTICUL",
    "BARCODE",
    "PRODUCER",
    "COUNTRY",
    "MES_UNIT",
    "KEYWORDS",
    "LENGTH_CM",
    "WIDTH_CM",
    "HEIGHT_CM",
    "WEIGHT_KG",
    "PRODUCTION_DATE",
    "MIN_QTY_FOR_ORDER",
    "WHOLESALE_MIN_QTY",
    "DISPLAY_ON_SITE",
    "IS_DELETED",
    "CHANGED_AT",
)
PRICE_COLUMNS = (
    "GOOD_ID",
    "ACCOUNTING_CENTER_ID",
    "RETAIL_PRICE",
    "WHOLESALE_PRICE",
    "OLD_PRICE",
    "CHANGED_AT",
)


def generate(
    con: Any, photo_dir: Path, products: int = 1000, seed: int = 1, image_pool: int | None = None
) -> DemoSummary:
    """Fill an empty reference database with deterministic demo data and write the demo images."""
    import time

    started = time.monotonic()
    rng = random.Random(seed)
    bulk_insert(con, "ACCOUNTING_CENTER", ("ID", "NAME", "KIND"), CENTERS)
    bulk_insert(con, "CHARACTERISTIC", ("ID", "NAME", "UNIT", "IS_DYNAMIC"), CHARACTERISTICS)
    sections = _sections(rng, products // 50)
    bulk_insert(
        con, "SYNC_SECTION", ("ID", "PARENT_ID", "NAME", "TEXT_BEFORE", "TEXT_AFTER", "IMAGE_FILE"), sections
    )
    pool = _image_pool(
        random.Random(seed + 1),
        Path(photo_dir),
        image_pool if image_pool is not None else min(240, max(24, products // 4)),
    )
    section_ids = [s[0] for s in sections]
    goods: list[tuple] = []
    prices: list[tuple] = []
    stock: list[tuple] = []
    photos: list[tuple] = []
    chars: list[tuple] = []
    photo_count = 0

    def flush() -> None:
        bulk_insert(con, "GOOD", GOOD_COLUMNS, goods)
        bulk_insert(con, "GOOD_PRICE", PRICE_COLUMNS, prices)
        bulk_insert(
            con, "GOOD_STOCK", ("GOOD_ID", "ACCOUNTING_CENTER_ID", "QTY", "RESERVED_QTY", "CHANGED_AT"), stock
        )
        bulk_insert(con, "GOOD_PHOTO", ("GOOD_ID", "POS", "FILE_NAME"), photos)
        bulk_insert(con, "GOOD_CHARACTERISTIC", ("GOOD_ID", "CHARACTERISTIC_ID", "VAL"), chars)
        for lst in (goods, prices, stock, photos, chars):
            lst.clear()

    with Progress(products, "demo goods", "good") as bar:
        for g in bar.counted(_goods(rng, products, section_ids, pool)):
            goods.append(g["good"])
            prices.append(g["price"])
            if g["center_price"]:
                prices.append(g["center_price"])
            stock.extend(g["stock"])
            photos.extend(g["photos"])
            photo_count += len(g["photos"])
            chars.extend(g["chars"])
            if len(goods) >= 5000:
                flush()
        flush()
    depths = section_depths(sections)
    return DemoSummary(
        products=products,
        sections=len(sections),
        max_depth=max(depths.values()),
        photos=photo_count,
        image_files=len(pool),
        seconds=time.monotonic() - started,
    )


def build_demo_database(
    path: Path,
    photo_dir: Path,
    products: int = 1000,
    seed: int = 1,
    shared_access: bool = True,
    image_pool: int | None = None,
) -> DemoSummary:
    """Create a new embedded database file with the reference schema and demo data (and photos)."""
    from pipeline.torgsoft.connection import create_database
    from pipeline.torgsoft.schema import create_schema

    con = create_database(path, shared_access=shared_access)
    try:
        create_schema(con)
        return generate(con, photo_dir, products=products, seed=seed, image_pool=image_pool)
    finally:
        con.close()


def demo_mapping(settings: Any) -> Mapping:
    """The demo-only named queries (demo_queries/; an own copy in `[torgsoft] mapping_dir` wins)."""
    from pipeline.torgsoft.mapping import Mapping

    return Mapping(settings.torgsoft.mapping_dir, builtin_dir=DEMO_QUERIES)
