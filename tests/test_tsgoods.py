"""The TSGoods.trs reader on purpose-built files (real files, real encodings, the real CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.errors import SettingsError
from pipeline.model import Characteristic
from pipeline.torgsoft.catalog import open_catalog
from pipeline.torgsoft.tsgoods import (
    DEFAULT_COLUMNS,
    RowError,
    TSGoodsCatalog,
    map_row,
    parse_decimal,
    parse_section_path,
)
from tests.conftest import ROOT, make_settings

HEADER = (
    "GoodID;GoodName;Description;Country;Articul;RetailPrice;WholesalePrice;RetailPriceWithDiscount;"
    "MinQuantityForOrder;Height;Width;Length;Category;WarehouseQuantity;Display;TheSize;Color;Barcode;"
    "ModelGoodID;ProductionDate;WholesaleCount;MeasureUnit;SynchronizationSectionFull;GoodPhotoList;"
    "PrimeCost;Ткань"
)


def _write(path: Path, lines: list[str], encoding: str = "cp1251") -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def _settings(tmp_path: Path, file: Path, **torgsoft):
    return make_settings(tmp_path, torgsoft={"source": "tsgoods", "tsgoods_file": str(file), **torgsoft})


ROWS = [
    HEADER,
    '"101";"Шампунь ""Лаванда"" 250 мл";"<p>Мягкий; для всех типов</p>";"Україна";"SH-1";"1958,36";"1500,5";"";'
    '"1";"20,5";"7";"7";"31";"12";"1";"";"";"4820000000011";"";"01.02.2024";"10";"шт";"2=Волосся;31=Шампуні";'
    '"101.jpg,101_1.jpg";"900";"хлопок"',
    '102;Маска для волос;;;;"500";;"450";;;;;-1;0;0;M;червоний;;101;2024-03-05;;шт;;;;',
    '"103";"Бальзам";"Строка 1',
    'строка 2; с точкой с запятой";"";"";"300,00";"";"";"";"";"";"";"5";"3,5";"1";"";"";"";"";"";"";"";'
    '"2=Волосся;32=Бальзами";"https://cdn.example.kz/103.jpg";"";""',
]


def test_cp1251_with_header_decimal_comma_quotes_and_sections(tmp_path: Path):
    f = _write(tmp_path / "TSGoods.trs", ROWS)
    settings = _settings(tmp_path, f)
    with open_catalog(settings) as cat:
        sections = cat.sections()
        products = {p.good_id: p for p in cat.products()}
        assert cat.problems == []
    assert [(s.id, s.parent_id, s.name) for s in sections] == [
        (2, None, "Волосся"),
        (31, 2, "Шампуні"),
        (32, 2, "Бальзами"),
    ]  # the path wins over Category
    p = products[101]
    assert p.name == 'Шампунь "Лаванда" 250 мл'
    assert p.description_html == "<p>Мягкий; для всех типов</p>"
    assert p.retail_price == Decimal("1958.36") and p.old_price is None
    assert p.wholesale_price == Decimal("1500.5") and p.wholesale_min_qty == Decimal(10)
    assert p.height_cm == Decimal("20.5") and p.length_cm == Decimal(7)
    assert p.section_id == 31 and p.country == "Україна" and p.barcode == "4820000000011"
    assert p.available_qty == 12 and p.stocks[0].center_id == 0
    assert [ph.file_name for ph in p.photos] == ["101.jpg", "101_1.jpg"]
    assert p.production_date.isoformat() == "2024-02-01" and p.unit == "шт"
    # PrimeCost is the cost price: never a characteristic; an install's own column is.
    assert p.characteristics == [Characteristic("Ткань", "хлопок")]
    m = products[102]
    assert m.retail_price == Decimal(450) and m.old_price == Decimal(500)  # discount → crossed-out price
    assert not m.display_on_site and m.section_id is None and m.model_id == 101
    assert {(c.name, c.value) for c in m.characteristics} == {("Размер", "M"), ("Цвет", "червоний")}
    b = products[103]
    assert b.description_html == "Строка 1\r\nстрока 2; с точкой с запятой"
    assert b.section_id == 32 and b.available_qty == Decimal("3.5") and b.photos[0].is_url


def test_without_header_uses_the_vendor_default_order(tmp_path: Path):
    values = {c: "" for c in DEFAULT_COLUMNS}
    values.update(
        GoodID="7",
        GoodName="Кресло",
        RetailPrice="1 234,50",
        Category="4",
        WarehouseQuantity="2",
        Display="1",
        Color="червоний",
        Material="дерево",
        PrimeCost="99",
        MeasureUnit="дана",
    )
    line = ";".join(f'"{values[c]}"' for c in DEFAULT_COLUMNS)
    f = _write(tmp_path / "TSGoods.trs", [line, line.replace('"7"', '"8"', 1)])
    settings = _settings(tmp_path, f, tsgoods_header=False)
    cat = TSGoodsCatalog.from_settings(settings)
    products = list(cat.products())
    assert [p.good_id for p in products] == [7, 8] and cat.problems == []
    p = products[0]
    assert p.retail_price == Decimal("1234.50") and p.section_id == 4 and p.unit == "дана"
    assert {(c.name, c.value) for c in p.characteristics} == {("Цвет", "червоний"), ("Материал", "дерево")}
    assert [(s.id, s.name) for s in cat.sections()] == [(4, "Раздел 4")]


def test_positional_column_map_from_settings(tmp_path: Path):
    f = _write(tmp_path / "TSGoods.trs", ['5;"Стол";"1000";"3"', '6;"Стул";"250,5";""'])
    settings = _settings(
        tmp_path,
        f,
        tsgoods_header=False,
        tsgoods_columns=["GoodID", "GoodName", "RetailPrice", "WarehouseQuantity"],
    )
    with open_catalog(settings) as cat:
        products = list(cat.products())
    assert [(p.good_id, p.name, p.retail_price, p.available_qty) for p in products] == [
        (5, "Стол", Decimal(1000), 3),
        (6, "Стул", Decimal("250.5"), 0),
    ]


def test_utf8_file_with_kazakh_letters(tmp_path: Path):
    lines = [
        "GoodID;GoodName;RetailPrice;SynchronizationSectionFull;Колір",
        '1;"Әдемі қызыл көйлек ңөұүһіғ";"15000";"7=Киім;8=Көйлектер";"Қара"',
    ]
    f = _write(tmp_path / "TSGoods.trs", lines, encoding="utf-8")
    settings = _settings(tmp_path, f, tsgoods_encoding="utf-8")
    with open_catalog(settings) as cat:
        (p,) = list(cat.products())
        sections = cat.sections()
    assert p.name == "Әдемі қызыл көйлек ңөұүһіғ"
    assert p.characteristics == [Characteristic("Колір", "Қара")]
    assert [(s.id, s.name) for s in sections] == [(7, "Киім"), (8, "Көйлектер")]


def test_broken_rows_are_reported_by_line_and_skipped(tmp_path: Path):
    lines = [
        "GoodID;GoodName;RetailPrice;WarehouseQuantity",
        '1;"Good one";"10,5";"1"',
        '2;"Too few fields";"10"',  # line 3
        'abc;"Bad id";"1";"1"',  # line 4
        '4;"Bad price";"12,3,4";"1"',  # line 5
        '5;"Stray "quote;"1";"1"',  # line 6: a quote inside a quoted field
        '9;"Unclosed;"1";"1"',  # line 7: a quote never closed
        '6;"Good two";"20";"2"',
        '1;"Repeated id";"1";"1"',  # line 9
        "",
        '7;"Good three";"30";""',
    ]
    f = _write(tmp_path / "TSGoods.trs", lines)
    cat = TSGoodsCatalog.from_settings(_settings(tmp_path, f))
    products = list(cat.products())
    assert [p.good_id for p in products] == [1, 6, 7]
    lines_reported = [n for n, _ in cat.problems]
    assert lines_reported == [3, 4, 5, 6, 7, 9]
    reasons = dict(cat.problems)
    assert "expected 4 fields, found 3" in reasons[3]
    assert "GoodID 'abc'" in reasons[4] and "RetailPrice" in reasons[5]
    assert "malformed CSV" in reasons[6] and "never closed" in reasons[7] and "line 2" in reasons[9]


def test_catalog_command_lists_skipped_rows_and_exits_1(tmp_path: Path):
    f = _write(
        tmp_path / "TSGoods.trs", ["GoodID;GoodName;RetailPrice", '1;"A";"1"', 'x;"B";"2"', '3;"C";"3"']
    )
    cfg = tmp_path / "settings.toml"
    cfg.write_text(f'[torgsoft]\nsource = "tsgoods"\ntsgoods_file = "{f.name}"\n', encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(cfg), "catalog", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    out = json.loads(run.stdout)
    assert out["products"] == 2 and out["skipped"] == 1
    assert out["problems"] == [{"line": 3, "reason": "GoodID 'x' is not a number"}]
    run = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(cfg), "catalog"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 1 and "line 3: GoodID 'x' is not a number" in run.stderr


def test_clean_file_exits_0(tmp_path: Path):
    f = _write(tmp_path / "TSGoods.trs", ["GoodID;GoodName;RetailPrice", '1;"A";"1"'])
    cfg = tmp_path / "settings.toml"
    cfg.write_text(f'[torgsoft]\nsource = "tsgoods"\ntsgoods_file = "{f.name}"\n', encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(cfg), "catalog"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "products 1" in run.stdout


def test_missing_goodid_column_and_missing_file_are_settings_errors(tmp_path: Path):
    f = _write(tmp_path / "TSGoods.trs", ["Name;Price", "a;1"])
    with pytest.raises(SettingsError, match="no GoodID column"):
        list(TSGoodsCatalog.from_settings(_settings(tmp_path, f)).products())
    with pytest.raises(SettingsError, match="tsgoods_file"):
        TSGoodsCatalog.from_settings(_settings(tmp_path, tmp_path / "nope.trs"))


def test_photos_found_by_good_id_when_the_file_has_no_photo_column(tmp_path: Path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("9.jpg", "9_2.jpg", "9_1.png", "10.txt", "91.jpg"):
        (photos / name).write_bytes(b"x")
    f = _write(tmp_path / "TSGoods.trs", ["GoodID;GoodName", "9;A", "10;B"])
    with open_catalog(_settings(tmp_path, f)) as cat:
        products = {p.good_id: p for p in cat.products()}
    assert [ph.file_name for ph in products[9].photos] == ["9.jpg", "9_1.png", "9_2.jpg"]
    assert products[10].photos == []


def test_pure_helpers():
    assert parse_decimal("1958,36", "X") == Decimal("1958.36")
    assert parse_decimal("1.958,36", "X") == Decimal("1958.36")
    assert parse_decimal("\u00a01 000", "X") == Decimal(1000)
    assert parse_decimal("", "X") is None
    with pytest.raises(RowError):
        parse_decimal("NaN", "X")
    assert parse_section_path("2=Волосся;31=Маска") == [(2, "Волосся"), (31, "Маска")]
    assert parse_section_path("-1=none;x=y;") == []
    with pytest.raises(RowError, match="GoodID is empty"):
        map_row({"goodid": " "})
