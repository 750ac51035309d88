"""The Torgsoft data layer on the real embedded engine: schema, generator, mapping, reader."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.devtools.demo_data import DEMO_QUERIES, bulk_insert, generate, section_depths
from pipeline.errors import DatabaseError, SettingsError
from pipeline.settings import Settings
from pipeline.torgsoft.catalog import DatabaseCatalog, open_catalog
from pipeline.torgsoft.connection import connect, create_database
from pipeline.torgsoft.mapping import Mapping, compile_sql, read_header
from pipeline.torgsoft.schema import create_schema, statements, user_tables


def test_schema_creates_every_reference_table(empty_db: Settings):
    con = connect(empty_db)
    try:
        tables = user_tables(con)
    finally:
        con.close()
    expected = {
        "ACCOUNTING_CENTER",
        "SYNC_SECTION",
        "GOOD",
        "GOOD_PRICE",
        "GOOD_STOCK",
        "GOOD_PHOTO",
        "CHARACTERISTIC",
        "GOOD_CHARACTERISTIC",
        "CLIENT",
        "CUSTOMER_ORDER",
        "CUSTOMER_ORDER_ITEM",
        "RESERVATION",
        "INVOICE",
        "INVOICE_ITEM",
    }
    assert expected <= set(tables)
    cols = dict(tables["GOOD"])
    assert cols["DESCRIPTION_HTML"].startswith("BLOB SUB_TYPE TEXT")
    assert cols["NAME"] == "VARCHAR(255) UTF8"
    assert len(statements()) >= len(expected)


def _dump(settings: Settings) -> list:
    con = connect(settings)
    try:
        cur = con.cursor()
        out = []
        for table in (
            "SYNC_SECTION",
            "GOOD",
            "GOOD_PRICE",
            "GOOD_STOCK",
            "GOOD_PHOTO",
            "GOOD_CHARACTERISTIC",
        ):
            cur.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
            out.append(cur.fetchall())
        return out
    finally:
        con.close()


def test_generator_is_deterministic_and_rich(tmp_path: Path):
    dumps = []
    for run in ("a", "b"):
        base = tmp_path / run
        con = create_database(base / "torgsoft.fdb")
        create_schema(con)
        summary = generate(con, base / "photos", products=150, seed=42, image_pool=24)
        con.close()
        from tests.conftest import make_settings

        dumps.append(_dump(make_settings(base)))
        assert summary.max_depth >= 4
    assert dumps[0] == dumps[1]
    sections, goods, prices, stock, photos, chars = dumps[0]
    names = " ".join(g[3] for g in goods)
    assert any(ch in names for ch in "әқңөұүһіғ")
    assert any(g[19] == 0 for g in goods) and any(g[20] == 1 for g in goods)  # hidden, deleted
    assert any(p[3] is not None for p in prices)  # wholesale
    assert any(s[2] == 0 for s in stock) and any(s[3] > 0 for s in stock)  # zero stock, reserved
    stocked = {s[0] for s in stock if s[2] > 0}
    sold_out = [g[0] for g in goods if g[0] not in stocked]
    assert 0.05 <= len(sold_out) / len(goods) <= 0.16  # about 10% have nothing at any center
    depths = section_depths([(s[0], s[1]) for s in sections])
    assert max(depths.values()) >= 4
    assert any(s[3] for s in sections) and any(s[5] for s in sections)  # group text, image
    per_good: dict[int, int] = {}
    for p in photos:
        per_good[p[0]] = per_good.get(p[0], 0) + 1
    assert max(per_good.values()) <= 12
    assert (tmp_path / "a" / "photos" / photos[0][2]).exists()
    assert chars


def test_generator_seed_changes_data(tmp_path: Path):
    dumps = []
    for seed in (1, 2):
        base = tmp_path / str(seed)
        con = create_database(base / "torgsoft.fdb")
        create_schema(con)
        generate(con, base / "photos", products=40, seed=seed, image_pool=4)
        con.close()
        from tests.conftest import make_settings

        dumps.append(_dump(make_settings(base))[1])
    assert dumps[0] != dumps[1]


def test_reader_streams_products_with_stock_photos_and_characteristics(demo_env: Settings):
    with open_catalog(demo_env) as cat:
        sections = cat.sections()
        products = list(cat.products())
    assert len(products) == 300
    assert [p.good_id for p in products] == sorted(p.good_id for p in products)
    assert sections and all(s.parent_id != s.id for s in sections)
    with_stock = [p for p in products if p.stocks]
    assert all(len(p.stocks) == 3 for p in with_stock)
    assert any(p.photos for p in products) and any(p.characteristics for p in products)
    p = next(p for p in products if p.photos)
    assert [ph.position for ph in p.photos] == sorted(ph.position for ph in p.photos)


def test_reader_on_tricky_rows(empty_db: Settings):
    con = connect(empty_db)
    try:
        bulk_insert(con, "ACCOUNTING_CENTER", ("ID", "NAME", "KIND"), [(1, "A", 0), (2, "B", 1), (3, "C", 0)])
        bulk_insert(
            con,
            "SYNC_SECTION",
            ("ID", "PARENT_ID", "NAME"),
            [(1, None, "Root"), (2, 1, "Child"), (3, 0, "Zero")],
        )
        bulk_insert(
            con,
            "GOOD",
            ("GOOD_ID", "SECTION_ID", "NAME", "DESCRIPTION_HTML", "ARTICUL", "DISPLAY_ON_SITE"),
            [
                (10, 2, "  Қызыл кресло ]]> & <b>  ", "<p>x]]>y</p>\x01", None, 1),
                (11, None, "No price, no stock", None, "A" * 30, 0),
                (12, 99, "Dangling section", "", "", 1),
            ],
        )
        bulk_insert(
            con,
            "GOOD_PRICE",
            ("GOOD_ID", "ACCOUNTING_CENTER_ID", "RETAIL_PRICE", "WHOLESALE_PRICE"),
            [
                (10, 0, Decimal("1958.36"), Decimal("1500")),
                (10, 2, Decimal("1800"), None),
                (12, 0, Decimal("5"), None),
            ],
        )
        bulk_insert(
            con,
            "GOOD_STOCK",
            ("GOOD_ID", "ACCOUNTING_CENTER_ID", "QTY", "RESERVED_QTY"),
            [(10, 1, Decimal("5"), Decimal("2")), (10, 2, Decimal("1.5"), 0), (10, 3, 7, 7), (12, 3, 4, 0)],
        )
        bulk_insert(
            con,
            "GOOD_PHOTO",
            ("GOOD_ID", "POS", "FILE_NAME"),
            [(10, 1, "b.jpg"), (10, 0, "a.jpg"), (12, 0, "https://cdn.example.kz/x.jpg")],
        )
    finally:
        con.close()
    with open_catalog(empty_db) as cat:
        sections = {s.id: s for s in cat.sections()}
        products = {p.good_id: p for p in cat.products()}
    assert sections[3].parent_id is None  # 0 means root
    p10 = products[10]
    assert p10.name == "Қызыл кресло ]]> & <b>"
    assert p10.retail_price == Decimal("1958.36") and p10.wholesale_price == Decimal("1500")
    assert p10.available_qty == Decimal("3") + Decimal("1.5") + 0
    assert [ph.file_name for ph in p10.photos] == ["a.jpg", "b.jpg"]
    assert (
        products[11].retail_price is None and products[11].stocks == [] and not products[11].display_on_site
    )
    assert products[12].photos[0].is_url
    # Only the configured centers count, and the price center wins over the common price.
    s2 = empty_db.replace(
        torgsoft=empty_db.torgsoft.__class__(
            **{**empty_db.torgsoft.__dict__, "accounting_centers": [2], "price_center": 2}
        )
    )
    with open_catalog(s2) as cat:
        products = {p.good_id: p for p in cat.products()}
    assert products[10].available_qty == Decimal("1.5")
    assert products[10].retail_price == Decimal("1800")
    assert products[12].available_qty == 0


def test_mapping_reports_missing_alias_with_file_and_column(demo_env: Settings, tmp_path: Path):
    mdir = tmp_path / "mapping"
    mdir.mkdir()
    (mdir / "photos.sql").write_text(
        "SELECT GOOD_ID AS good_id, FILE_NAME AS fname FROM GOOD_PHOTO", encoding="utf-8"
    )
    (mdir / "stock.sql").write_text("SELECT NOPE FROM GOOD_STOCK", encoding="utf-8")
    con = connect(demo_env)
    try:
        with pytest.raises(SettingsError) as exc:
            Mapping(mdir).check(con)
    finally:
        con.close()
    text = str(exc.value)
    assert "photos.sql: result column 'pos' is missing" in text
    assert "photos.sql: result column 'file_name' is missing" in text
    assert "stock.sql: does not run against this database" in text
    assert "products.sql" not in text  # the built-in ones are fine


def test_mapping_override_is_used(demo_env: Settings, tmp_path: Path):
    mdir = tmp_path / "mapping"
    mdir.mkdir()
    (mdir / "products.sql").write_text(
        (Path(__file__).resolve().parent.parent / "pipeline/torgsoft/queries/products.sql")
        .read_text(encoding="utf-8")
        .replace("ORDER BY g.GOOD_ID", "WHERE g.GOOD_ID <= 10 ORDER BY g.GOOD_ID"),
        encoding="utf-8",
    )
    con = connect(demo_env)
    try:
        cat = DatabaseCatalog(con, Mapping(mdir))
        assert [p.good_id for p in cat.products()] == list(range(1, 11))
    finally:
        con.close()


def test_every_builtin_query_declares_what_it_uses_and_delivers(demo_env: Settings):
    mapping = Mapping()
    con = connect(demo_env)
    try:
        for folder in (mapping, Mapping(builtin_dir=DEMO_QUERIES)):
            assert folder.names()
            for name in folder.names():
                q = folder.query(name)
                assert set(q.params) == set(q.header.params), name  # declared = used, for every file
                delivered = {d[0].lower() for d in con.cursor().prep(q.sql).description or ()}
                assert set(q.columns) <= delivered, name
                assert set(q.header.optional) <= delivered, name
                assert bool(q.columns) == q.sql.upper().startswith("SELECT"), name  # reads declare columns
            folder.check(con)  # the whole set passes the start-up check
    finally:
        con.close()
    assert not any(n.startswith("demo_") for n in mapping.names())  # demo statements stay apart
    assert "good_id" in mapping.query("products").columns
    assert "changed_at" not in mapping.query("orders_for_status").columns  # optional: read when there


def test_header_lines_continue_and_end_where_the_sql_starts():
    header = read_header(
        "-- A read.\n-- params: :a, :b\n-- columns: x, y,\n--     z\n-- optional columns: w\n"
        "SELECT 1 AS x\n-- columns: late\n"
    )
    assert header.params == ("a", "b")
    assert header.columns == ("x", "y", "z")
    assert header.optional == ("w",)
    assert read_header("-- params: none\nUPDATE T SET A = 1").params == ()
    with pytest.raises(SettingsError, match="bad.sql: header names 'a b'"):
        read_header("-- columns: a b\nSELECT 1", "bad.sql")


def test_an_own_copy_is_checked_against_the_builtin_header(demo_env: Settings, tmp_path: Path):
    mdir = tmp_path / "mapping"
    mdir.mkdir()
    # No header of its own, a parameter the program does not supply and a column left out.
    (mdir / "order_items.sql").write_text(
        "SELECT i.LINE_NO AS line_no, i.GOOD_ID AS good_id, i.QTY AS qty FROM CUSTOMER_ORDER_ITEM i "
        "WHERE i.ORDER_ID = :order_id AND i.LINE_NO > :first_line",
        encoding="utf-8",
    )
    con = connect(demo_env)
    try:
        with pytest.raises(SettingsError) as exc:
            Mapping(mdir).check(con, ["order_items", "order_find"])
    finally:
        con.close()
    text = str(exc.value)
    assert "order_items.sql: uses parameter :first_line that the program does not supply" in text
    assert "use only: :order_id" in text
    assert "order_items.sql: result column 'price' is missing" in text
    assert "order_find.sql" not in text


def test_named_parameters_compile_outside_strings_and_comments():
    sql, params = compile_sql("SELECT ':x' AS a, \"b:c\" -- :ignored\nFROM T WHERE A = :one AND B = :Two;")
    assert params == ("one", "two")
    assert sql.count("?") == 2 and "':x'" in sql


def test_missing_database_file_is_a_clear_error(tmp_path: Path):
    from tests.conftest import make_settings

    # a settings problem naming the key (exit code 2), still a DatabaseError for the code reading it
    with pytest.raises(SettingsError, match="torgsoft.database.*init-db") as err:
        connect(make_settings(tmp_path))
    assert isinstance(err.value, DatabaseError)


def test_long_and_short_descriptions_both_arrive_whole(empty_db: Settings):
    texts = {1: "", 2: "<p>short</p>", 3: "ә" * 8000, 4: "<p>" + "қ" * 9000 + "</p>", 5: None}
    con = connect(empty_db)
    try:
        bulk_insert(
            con,
            "GOOD",
            ("GOOD_ID", "NAME", "DESCRIPTION_HTML"),
            [(gid, f"G{gid}", text) for gid, text in texts.items()],
        )
    finally:
        con.close()
    with open_catalog(empty_db) as cat:
        got = {p.good_id: p.description_html for p in cat.products()}
    assert got == {gid: text or "" for gid, text in texts.items()}


def test_bulk_insert_keeps_separator_characters_nulls_and_empty_strings(empty_db: Settings):
    rows = [(1, "a\x1fb", None), (2, "\x1e", ""), (3, "Қызыл 'x'", "A;B"), (4, "long " + "ө" * 5000, None)]
    con = connect(empty_db)
    try:
        assert (
            bulk_insert(con, "GOOD", ("GOOD_ID", "NAME", "KEYWORDS"), [(g, n[:255], k) for g, n, k in rows])
            == 4
        )
        cur = con.cursor()
        cur.execute("SELECT GOOD_ID, NAME, KEYWORDS FROM GOOD ORDER BY GOOD_ID")
        got = cur.fetchall()
    finally:
        con.close()
    assert [tuple(r) for r in got] == [(g, n[:255], k) for g, n, k in rows]


def test_a_write_waits_for_a_locked_row_only_as_long_as_lock_timeout(demo_env: Settings):
    import time

    from pipeline.errors import DatabaseUnavailable
    from pipeline.torgsoft.connection import transaction

    s = demo_env.replace(
        torgsoft=demo_env.torgsoft.__class__(**{**demo_env.torgsoft.__dict__, "lock_timeout": 1})
    )
    holder, waiter = connect(s), connect(s)
    try:
        holder.cursor().execute("UPDATE GOOD SET NAME = 'held' WHERE GOOD_ID = 1")
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable), transaction(waiter) as cur:
            cur.execute("UPDATE GOOD SET NAME = 'second' WHERE GOOD_ID = 1")
        assert time.monotonic() - started < 10
        holder.rollback()
    finally:
        holder.close()
        waiter.close()
