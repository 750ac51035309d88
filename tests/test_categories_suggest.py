"""Issue 14: `categories suggest FILE` proposes a `[feed] category_map` from Satu's category list.

The category lists (CSV in UTF-8 and windows-1251, XLSX written with openpyxl, XLS written with xlwt)
are built here with invented ids; the sections are the demo database's, renamed to a known tree. The
real command runs through the CLI, and the feed then reads the suggested file as it is.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from pipeline.cli import cli
from pipeline.feed.portal import load_category_map
from pipeline.feed.portal_list import PortalEntry, load_portal_list, split_path
from pipeline.feed.suggest import Matcher, normalise
from pipeline.torgsoft.connection import connect
from tests.test_bad_input import run_cli
from tests.test_feed import write_settings_file

# Our own Satu-like list: (portal id, leaf name, full path). Ids and tree are invented.
PORTAL = [
    (1101, "Кресла офисные", "Мебель > Мебель для офиса > Кресла офисные"),
    (1102, "Кресла и пуфы", "Мебель > Мебель для дома > Кресла и пуфы"),
    (1103, "Автомобильные кресла", "Авто- и мототовары > Салон автомобиля > Автомобильные кресла"),
    (1105, "Шкафы", "Мебель > Мебель для дома > Шкафы"),
    (1106, "Шкафы-купе", "Мебель > Мебель для дома > Шкафы-купе"),
    (1110, "Люстры", "Освещение > Люстры"),
    (1111, "Лампы настольные", "Освещение > Лампы настольные"),
    (1112, "Велосипеды горные", "Спорт > Велосипеды > Велосипеды горные"),
    (1116, "Лодки", "Авиа-, ж/д-, водный транспорт > Водный транспорт > Лодки"),
    (1120, "Ёлки искусственные", "Дом и сад > Новогодние товары > Ёлки искусственные"),
]
# The demo database's eight sections, renamed: (id, parent, name) → the portal id expected (None: none).
SECTIONS = [
    (1, None, "Мебель", None),
    (2, None, "Свет", None),
    (3, 1, "Офисные кресла", 1101),  # word order
    (4, 1, "Шкафы", 1105),  # exact, not the longer "Шкафы-купе"
    (5, 2, "Люстра", 1110),  # singular against plural
    (6, 2, "Настольные лампы", 1111),  # word order and endings
    (7, None, "ЕЛКИ  искусственные!", 1120),  # case, ё/е, punctuation
    (8, 4, "Шкафы-купе", 1106),
]


@pytest.fixture()
def shop(demo_env) -> Path:
    """The demo shop with its sections renamed to SECTIONS; returns its settings file."""
    con = connect(demo_env)
    try:
        cur = con.cursor()
        for sid, parent, name, _ in SECTIONS:
            cur.execute("UPDATE SYNC_SECTION SET NAME = ?, PARENT_ID = ? WHERE ID = ?", (name, parent, sid))
        cur.execute("SELECT COUNT(*) FROM SYNC_SECTION")
        assert cur.fetchone()[0] == len(SECTIONS)
        con.commit()
    finally:
        con.close()
    return write_settings_file(demo_env, Path(demo_env.base_dir) / "settings.toml")


def csv_list(path: Path, encoding: str = "utf-8-sig") -> Path:
    lines = ["portal_id;name;path", "Раздел без номера;;", *(f"{i};{n};{p}" for i, n, p in PORTAL)]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def suggest(settings: Path, *args: str):
    return CliRunner().invoke(cli, ["--settings", str(settings), "categories", "suggest", *args])


def read_map(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")), delimiter=";"))


def assert_expected_matches(rows: list[dict[str, str]]) -> None:
    got = {int(r["section_id"]): r for r in rows}
    for sid, _, _, portal_id in SECTIONS:
        row = got[sid]
        if portal_id is None:
            assert row["portal_id"] == "" and row["status"] == "none", row
        else:
            assert row["portal_id"] == str(portal_id) and row["status"] == "good", row


def test_a_map_row_with_an_empty_portal_id_is_no_row_and_extra_columns_are_ignored():
    from pipeline.feed.portal import PortalCategory, parse_category_map

    text = "\ufeffsection_id;portal_id;portal_name;score;status\n1;;;41.7;none\n2;1105;Шкафы;95;good\n"
    assert parse_category_map(text) == {2: PortalCategory(1105, "Шкафы")}


# --- matching -----------------------------------------------------------------------------------------


def test_names_are_normalised_for_case_yo_punctuation_and_russian_endings():
    assert normalise("Ёлочные  ИГРУШКИ!") == normalise("елочная игрушка") == "елочн игрушк"
    assert normalise("Кресла, офисные") == normalise("кресло офисное")
    assert normalise("Товары для дома") == "товар дом"  # the little words do not count


def test_the_leaf_name_weighs_more_and_the_path_tells_same_leaves_apart():
    entries = [PortalEntry(i, n, tuple(split_path(p))[:-1]) for i, n, p in PORTAL]
    entries.append(PortalEntry(1130, "Кресла", ("Авто- и мототовары", "Салон автомобиля")))
    entries.append(PortalEntry(1131, "Кресла", ("Мебель", "Мебель для дома")))
    m = Matcher(entries)
    ranked = m.best("Офисные кресла", normalise("Мебель Офисные кресла"), count=4)
    assert [r.entry.portal_id for r in ranked[:2]] == [1101, 1131]
    assert ranked[0].score > ranked[1].score > ranked[2].score
    # two portal categories named "Кресла": the section's path picks the furniture one
    home = m.best("Кресла", normalise("Мебель Кресла"))
    car = m.best("Кресла", normalise("Автотовары Кресла"))
    assert home[0].entry.portal_id == 1131 and car[0].entry.portal_id == 1130
    # a bilingual name is matched by its Russian half
    assert m.best("Шамдар / Люстры", normalise("Шамдар Люстры"))[0].entry.portal_id == 1110


def test_a_common_word_in_many_leaves_does_not_push_out_the_exact_leaf():
    # Satu has dozens of leaves with "кресла" in them; all contain the word, one is the word
    many = [PortalEntry(2000 + i, f"Кресла модель{i:03d}", ("Разное", f"Группа {i}")) for i in range(150)]
    exact = PortalEntry(9999, "Кресла", ("Мебель", "Мебель для дома"))
    m = Matcher([*many, exact])
    assert m.best("Кресла", normalise("Мебель Кресла"))[0].entry.portal_id == 9999


# --- the command ----------------------------------------------------------------------------------------


def test_suggest_from_a_csv_list_writes_a_reviewable_map_the_feed_reads(shop: Path, tmp_path: Path):
    out = tmp_path / "category-map.csv"
    r = suggest(shop, str(csv_list(tmp_path / "satu.csv")), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "Satu categories read: 10 (1 row without an id skipped)" in r.output
    assert "8 sections: 6 matched well (score >= 90), 0 weakly" in r.output
    assert "2 not matched (below 70" in r.output and "0 kept" in r.output
    rows = read_map(out)
    assert list(rows[0]) == [
        "section_id",
        "portal_id",
        "portal_name",
        "score",
        "status",
        "section_path",
        "portal_path",
        "alternative",
    ]
    assert_expected_matches(rows)
    by_id = {int(r["section_id"]): r for r in rows}
    assert by_id[3]["portal_name"] == "Кресла офисные"
    assert by_id[3]["portal_path"] == "Мебель > Мебель для офиса > Кресла офисные"
    assert by_id[3]["section_path"] == "Мебель > Офисные кресла"
    assert by_id[3]["alternative"].startswith("1102 ")  # the runner-up, for the review
    assert by_id[1]["alternative"] and by_id[1]["portal_name"] == ""  # the best guess, as a hint only
    # sorted for the review: unmatched first, then by score, lowest first
    assert [r["status"] for r in rows] == ["none"] * 2 + ["good"] * 6
    scores = [float(r["score"]) for r in rows if r["status"] == "good"]
    assert scores == sorted(scores) and min(scores) >= 90

    # the file is used as it is: the unmatched rows count as no row
    assert {k: v.portal_id for k, v in load_category_map(out).items()} == {
        sid: pid for sid, _, _, pid in SECTIONS if pid
    }
    settings = write_settings_file(
        load_settings(shop), shop.parent / "settings-mapped.toml", category_map=str(out)
    )
    feed = CliRunner().invoke(cli, ["--settings", str(settings), "feed"])
    assert feed.exit_code == 0, feed.output
    root = etree.parse(str(load_settings(settings).feed.output)).getroot()
    expected = {sid: pid for sid, _, _, pid in SECTIONS}
    offers = list(root.iter("offer"))
    assert {int(o.findtext("categoryId")) for o in offers} >= {3, 4, 5}
    for o in offers:
        pid = expected[int(o.findtext("categoryId"))]
        assert o.findtext("portal_category_id") == (str(pid) if pid else None)
    cats = {c.get("id"): c.get("portal_id") for c in root.iter("category")}
    assert cats["3"] == "1101" and cats["1"] is None


def load_settings(path: Path):
    from pipeline.settings import load

    return load(path)


def test_the_threshold_leaves_weaker_matches_without_a_portal_id_but_listed(shop: Path, tmp_path: Path):
    listing = csv_list(tmp_path / "satu.csv")
    first = tmp_path / "first.csv"
    assert suggest(shop, str(listing), "--out", str(first)).exit_code == 0
    score = {int(r["section_id"]): float(r["score"]) for r in read_map(first)}
    assert score[5] < 100  # "Люстра" → "Люстры" is not exact
    strict = tmp_path / "strict.csv"
    r = suggest(shop, str(listing), "--out", str(strict), "--min-score", str(int(score[5]) + 1))
    assert r.exit_code == 0, r.output
    rows = {int(x["section_id"]): x for x in read_map(strict)}
    assert rows[5]["portal_id"] == "" and rows[5]["status"] == "none"
    assert rows[5]["alternative"].startswith("1110 Освещение > Люстры")  # the seller sees the guess
    assert rows[4]["portal_id"] == "1105"  # the exact one stays
    assert len(rows) == len(SECTIONS)


def test_out_is_never_overwritten_without_force(shop: Path, tmp_path: Path):
    listing = csv_list(tmp_path / "satu.csv")
    out = tmp_path / "category-map.csv"
    out.write_text("section_id;portal_id\n3;42\n", encoding="utf-8")
    r = suggest(shop, str(listing), "--out", str(out))
    assert r.exit_code == 2 and "add --force" in r.output
    assert out.read_text(encoding="utf-8") == "section_id;portal_id\n3;42\n"
    r = suggest(shop, str(listing), "--out", str(out), "--force")
    assert r.exit_code == 0, r.output
    assert_expected_matches(read_map(out))


def test_out_must_be_a_writable_file(shop: Path, tmp_path: Path):
    listing = str(csv_list(tmp_path / "satu.csv"))
    r = suggest(shop, listing, "--out", str(tmp_path), "--force")
    assert r.exit_code == 2 and "is a directory" in r.output, r.output
    r = suggest(shop, listing, "--out", str(tmp_path / "no" / "such" / "dir" / "m.csv"))
    assert r.exit_code == 0, r.output  # missing folders are made
    (tmp_path / "afile").write_text("x")
    r = suggest(shop, listing, "--out", str(tmp_path / "afile" / "m.csv"))
    assert r.exit_code == 2 and "cannot write" in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_rows_of_the_current_map_are_kept(shop: Path, tmp_path: Path):
    current = tmp_path / "current.csv"
    current.write_text("section_id;portal_id;portal_name\n4;9999;Мой выбор\n77;5555;\n", encoding="utf-8")
    settings = write_settings_file(load_settings(shop), shop.parent / "s2.toml", category_map=str(current))
    out = tmp_path / "new.csv"
    r = suggest(settings, str(csv_list(tmp_path / "satu.csv")), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "2 kept from the current map" in r.output
    rows = {int(x["section_id"]): x for x in read_map(out)}
    assert (rows[4]["portal_id"], rows[4]["portal_name"], rows[4]["status"]) == ("9999", "Мой выбор", "kept")
    assert rows[77]["status"] == "kept" and rows[77]["portal_id"] == "5555"  # not in the catalog: kept too
    assert rows[8]["portal_id"] == "1106"  # the others are still suggested
    assert [x["status"] for x in read_map(out)][-2:] == ["kept", "kept"]
    # the current map itself is protected like any other file
    r = suggest(settings, str(tmp_path / "satu.csv"), "--out", str(current))
    assert r.exit_code == 2 and current.read_text(encoding="utf-8").startswith("section_id;portal_id;")


def test_a_windows_1251_csv_list_is_read(shop: Path, tmp_path: Path):
    out = tmp_path / "map.csv"
    r = suggest(shop, str(csv_list(tmp_path / "satu.csv", "cp1251")), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert_expected_matches(read_map(out))


def test_an_xlsx_export_with_a_title_block_and_level_columns_is_read(shop: Path, tmp_path: Path):
    from openpyxl import Workbook

    wb = Workbook()
    notes = wb.active
    notes.title = "Инструкция"
    notes.append(["Список категорий портала Satu.kz"])
    ws = wb.create_sheet("Категории")
    ws.append(["Категории портала Satu.kz, выгрузка 02.12.2026"])
    ws.append([])
    ws.append(["Уровень 1", "Уровень 2", "Уровень 3", "Идентификатор подраздела", "Ссылка"])
    for pid, _, path in PORTAL:
        parts = split_path(path)
        ws.append([*parts, *[None] * (3 - len(parts)), pid, f"https://satu.kz/c{pid}"])
    path = tmp_path / "Satu.kz_categories.xlsx"
    wb.save(path)
    listing = load_portal_list(path)
    assert len(listing.entries) == len(PORTAL) and listing.skipped_rows == 0
    lodki = next(e for e in listing.entries if e.portal_id == 1116)
    assert lodki.name == "Лодки" and lodki.parents == ("Авиа-, ж/д-, водный транспорт", "Водный транспорт")
    out = tmp_path / "map.csv"
    r = suggest(shop, str(path), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert_expected_matches(read_map(out))


def test_an_xls_export_is_read(shop: Path, tmp_path: Path):
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Categories")
    for col, title in enumerate(["ID", "Название", "Полный путь"]):
        ws.write(0, col, title)
    for row, (pid, name, path) in enumerate(PORTAL, start=1):
        ws.write(row, 0, float(pid))  # numbers come back from XLS as floats
        ws.write(row, 1, name)
        ws.write(row, 2, path)
    file = tmp_path / "Satu.kz_categories_02_12_2026.xls"
    wb.save(str(file))
    assert {e.portal_id for e in load_portal_list(file).entries} == {p[0] for p in PORTAL}
    out = tmp_path / "map.csv"
    r = suggest(shop, str(file), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert_expected_matches(read_map(out))


def test_a_list_without_header_is_read_by_position(tmp_path: Path):
    path = tmp_path / "plain.csv"
    path.write_text("1110;Люстры;Освещение > Люстры\n1111;Лампы настольные\n", encoding="utf-8")
    assert load_portal_list(path).entries == [
        PortalEntry(1110, "Люстры", ("Освещение",)),
        PortalEntry(1111, "Лампы настольные"),
    ]


def test_a_comma_separated_list_with_full_and_parent_paths_is_read(tmp_path: Path):
    path = tmp_path / "registry.csv"
    path.write_text(
        "portal_id,name,full_path,level,parent_path,portal_url\n"
        '2049,"Байдарки, каяки","Водный транспорт > Байдарки, каяки",2,Водный транспорт,https://satu.kz/x\n'
        "3006,Средства спасения,,2,Водный транспорт,https://satu.kz/y\n",
        encoding="utf-8",
    )
    assert load_portal_list(path).entries == [
        PortalEntry(2049, "Байдарки, каяки", ("Водный транспорт",)),
        PortalEntry(3006, "Средства спасения", ("Водный транспорт",)),  # the parent path when no full path
    ]


# --- bad input: exit 2, a clear message, no traceback -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("missing.csv", None, "no such file"),
        ("empty.csv", b"", "the file is empty"),
        ("blank.xlsx", b"  \n", "the file is empty"),
        ("junk.csv", "что-то;другое\nа;б\n".encode(), "no categories found"),
        ("broken.xlsx", b"PK\x03\x04 not really a workbook", "cannot read it as an Excel (XLSX)"),
        (
            "broken.xls",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100,
            "cannot read it as an Excel 97-2003",
        ),
        ("folder", "dir", "cannot read it"),
    ],
)
def test_a_bad_category_list_is_a_clear_error(shop: Path, tmp_path: Path, name: str, content, needle: str):
    file = tmp_path / name
    if content == "dir":
        file.mkdir()
    elif content is not None:
        file.write_bytes(content)
    out = tmp_path / "map.csv"
    r = suggest(shop, str(file), "--out", str(out))
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Invalid value for FILE" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert not out.exists()


def test_a_bad_category_list_in_a_real_process_shows_no_traceback(shop: Path, tmp_path: Path):
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 truncated")
    r = run_cli(tmp_path, "--settings", str(shop), "categories", "suggest", "broken.xlsx", "--out", "m.csv")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "broken.xlsx" in r.stderr and "export the category list" in r.stderr
