"""Issue 14: a feed Satu files under the right category and shows exactly what the shop means.

Purpose-built rows (products, sections, map files) for each rule; the stage runs on the demo database.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from lxml import etree

from pipeline import feed as feed_stage
from pipeline.cli import cli
from pipeline.errors import SettingsError
from pipeline.feed.portal import PortalCategory, load_category_map, parse_category_map
from pipeline.feed.render import load_template, render_feed
from pipeline.feed.rules import CategoryTree, Offer, RuleSettings, build_offer
from pipeline.feed.validate import check_feed
from pipeline.journal import Journal
from pipeline.model import Category, Product, Stock
from pipeline.state import State
from pipeline.torgsoft.catalog import open_catalog
from tests.conftest import ROOT, make_settings

SECTIONS = [
    Category(1, None, "Мебель"),
    Category(2, 1, "Кресла"),
    Category(3, 2, "Офисные кресла"),
    Category(4, None, "Свет"),
    Category(5, 4, "Люстры"),
]


def product(**kw) -> Product:
    values: dict = dict(
        good_id=1, name="Кресло", section_id=3, retail_price=Decimal("1500"), stocks=[Stock(1, Decimal(2))]
    )
    values.update(kw)
    return Product(**values)


def mapped_tree(mapping: dict[int, PortalCategory]) -> CategoryTree:
    t = CategoryTree(SECTIONS, "{url}/c/{slug}", "https://shop.kz")
    t.apply_portal_map(mapping)
    return t


def offer(p: Product, t: CategoryTree, rs: RuleSettings | None = None) -> Offer:
    o = build_offer(p, rs or RuleSettings(), t, lambda photo: None)
    assert isinstance(o, Offer), o
    return o


# --- the map file -------------------------------------------------------------------------------------


def test_category_map_reads_bom_optional_names_and_blank_lines():
    text = "\ufeffsection_id;portal_id;portal_name\n1;1101;Мебель для дома\n\n5;2207;\n"
    assert parse_category_map(text) == {1: PortalCategory(1101, "Мебель для дома"), 5: PortalCategory(2207)}
    assert parse_category_map("Section_ID;Portal_ID\n3;77\n") == {3: PortalCategory(77)}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("id;portal\n1;2\n", "header"),
        ("", "empty file"),
        ("section_id;portal_id\n1;abc\n", "line 2: portal_id 'abc'"),
        ("section_id;portal_id\n1;0\n", "out of range"),
        ("section_id;portal_id\n1;5\n1;6\n", "mapped twice"),
    ],
)
def test_a_broken_category_map_is_a_settings_error_naming_key_and_line(text: str, needle: str):
    with pytest.raises(SettingsError) as info:
        parse_category_map(text)
    assert needle in str(info.value) and info.value.problems[0].key == "feed.category_map"


def test_category_map_file_must_exist_and_be_utf8(tmp_path: Path):
    assert load_category_map(None) == {}
    with pytest.raises(SettingsError, match="cannot read"):
        load_category_map(tmp_path / "missing.csv")
    cp1251 = tmp_path / "map.csv"
    cp1251.write_bytes("section_id;portal_id;portal_name\n1;5;Мебель\n".encode("cp1251"))
    with pytest.raises(SettingsError, match="UTF-8"):
        load_category_map(cp1251)


# --- resolution and rendering ---------------------------------------------------------------------------


def test_a_section_inherits_its_nearest_mapped_ancestor():
    t = mapped_tree({1: PortalCategory(100), 2: PortalCategory(200)})
    assert (t.sections[3].portal_id, t.sections[3].portal_category_id) == (None, 200)  # parent 2, not 1
    assert (t.sections[2].portal_id, t.sections[2].portal_category_id) == (200, 200)
    assert (t.sections[1].portal_id, t.sections[1].portal_category_id) == (100, 100)
    assert t.sections[5].portal_category_id is None  # no mapped ancestor
    assert offer(product(section_id=3), t).portal_category_id == 200
    assert offer(product(section_id=5), t).portal_category_id is None


def render(
    tmp_path: Path,
    offers: list[Offer],
    t: CategoryTree,
    unavailable: str = "",
    shop_url: str = "https://shop.kz",
) -> etree._Element:
    dest = tmp_path / "feed.yml"
    variables = {
        "date": "2026-12-02 12:00",
        "available_value": "true",
        "unavailable_value": unavailable,
        "shop": {"name": "Shop", "company": "Co", "url": shop_url, "currency": "KZT"},
    }
    template = load_template(ROOT / "templates" / "satu.yml.j2")
    render_feed(template, variables, iter(offers), t.used_sections, dest)
    report = check_feed(dest)
    assert report.ok, report.problems
    return etree.parse(str(dest)).getroot()


def test_feed_writes_portal_id_on_mapped_categories_and_portal_category_id_in_offers(tmp_path: Path):
    t = mapped_tree({2: PortalCategory(200)})
    offers = [offer(product(good_id=1, section_id=3), t), offer(product(good_id=2, section_id=5), t)]
    root = render(tmp_path, offers, t)
    cats = {c.get("id"): c.get("portal_id") for c in root.iter("category")}
    assert cats == {"1": None, "2": "200", "3": None, "4": None, "5": None}  # only the mapped one
    o1, o2 = root.findall("shop/offers/offer")
    assert o1.findtext("portal_category_id") == "200" and o2.find("portal_category_id") is None
    # the tag follows <categoryId>, where Satu's dialect has it
    tags = [c.tag for c in o1]
    assert tags.index("portal_category_id") == tags.index("categoryId") + 1


# --- availability, names, wholesale ---------------------------------------------------------------------


def test_out_of_stock_reads_not_in_stock_and_in_stock_flag_is_optional(tmp_path: Path):
    t = mapped_tree({})
    waiting = RuleSettings(zero_stock="awaiting")
    flagged = RuleSettings(zero_stock="awaiting", in_stock_flag=True)
    offers = [
        offer(product(good_id=1, stocks=[]), t, flagged),
        offer(product(good_id=2), t, flagged),
        offer(product(good_id=3), t, waiting),
    ]
    root = render(tmp_path, offers, t)
    by_id = {o.get("id"): o for o in root.iter("offer")}
    assert by_id["1"].get("available") == "" and by_id["1"].get("in_stock") is None
    assert by_id["2"].get("available") == "true" and by_id["2"].get("in_stock") == "true"
    assert by_id["3"].get("in_stock") is None  # the flag is off by default


def test_minimum_order_quantity_only_on_wholesale_offers():
    t = mapped_tree({})
    retail = offer(product(min_order_qty=Decimal(5)), t)
    assert retail.selling_type == "r" and retail.minimum_order_quantity is None
    both = offer(
        product(min_order_qty=Decimal(5), wholesale_price=Decimal(900), wholesale_min_qty=Decimal(10)), t
    )
    assert both.selling_type == "u" and both.minimum_order_quantity == "5"


# --- the stage and the command on the demo database -------------------------------------------------------


def demo_sections(settings) -> list[Category]:
    with open_catalog(settings) as source:
        return source.sections()


def test_stage_counts_offers_without_a_satu_category_and_categories_list_shows_them(demo_env, tmp_path: Path):
    from tests.test_feed import write_settings_file

    sections = demo_sections(demo_env)
    root = next(c for c in sections if c.parent_id is None)
    map_file = tmp_path / "category-map.csv"
    map_file.write_text(
        f"section_id;portal_id;portal_name\n{root.id};4242;Товары для дома\n", encoding="utf-8"
    )
    base = Path(demo_env.base_dir)
    unmapped = make_settings(base)
    s = make_settings(base, feed={"category_map": str(map_file)})

    journal, state = Journal.from_settings(unmapped), State.from_settings(unmapped)
    plain = feed_stage.run(unmapped, journal=journal, state=state)
    assert plain.ok and plain.without_portal_category == plain.offers > 0
    assert any("set [feed] category_map" in e.message for e in journal.search(stage="feed", level="warning"))

    result = feed_stage.run(s, journal=journal, state=state, force=True)
    assert result.ok and result.written
    feed = etree.parse(str(s.feed.output)).getroot()
    under_root = [o for o in feed.iter("offer") if o.findtext("portal_category_id") == "4242"]
    assert 0 < len(under_root) < result.offers
    assert result.without_portal_category == result.offers - len(under_root)
    assert feed.find(f"shop/categories/category[@id='{root.id}']").get("portal_id") == "4242"
    assert result.counts()["without_portal_category"] == result.without_portal_category
    assert result.without_photos == sum(o.find("picture") is None for o in feed.iter("offer")) > 0

    path = write_settings_file(s, base / "settings.toml", category_map=str(map_file))
    r = CliRunner().invoke(cli, ["--settings", str(path), "categories", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["section_id"]: row for row in json.loads(r.output)}
    assert rows[root.id]["portal_id"] == 4242 and rows[root.id]["portal_source"] == "direct"
    child = next(c for c in sections if c.parent_id == root.id)
    assert rows[child.id]["portal_id"] == 4242 and rows[child.id]["portal_source"] == "inherited"
    assert rows[child.id]["portal_name"] == "Товары для дома"
    assert sum(row["offers"] for row in rows.values()) == result.offers
    assert sum(row["offers"] for row in rows.values() if row["portal_id"]) == len(under_root)
    text = CliRunner().invoke(cli, ["--settings", str(path), "categories", "list"])
    assert (
        text.exit_code == 0
        and f"{result.without_portal_category} offers without a Satu category" in text.output
    )


def test_a_broken_map_stops_the_feed_as_a_settings_error(demo_env, tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("section;portal\n1;2\n", encoding="utf-8")
    s = make_settings(Path(demo_env.base_dir), feed={"category_map": str(bad)})
    with pytest.raises(SettingsError, match="feed.category_map"):
        feed_stage.run(s, journal=Journal.from_settings(s), state=State.from_settings(s))
    assert not Path(s.feed.output).exists()


def test_param_values_are_cut_to_255_at_a_word_and_counted():
    from pipeline.model import Characteristic

    long_value = " ".join(["материал"] * 40)  # 359 characters
    p = product(characteristics=[Characteristic("Состав", long_value), Characteristic("Цвет", "синий")])
    o = offer(p, mapped_tree({}))
    values = {x.name: x for x in o.params}
    assert len(values["Состав"].value) <= 255 and long_value.startswith(values["Состав"].value)
    assert values["Состав"].value.endswith("материал") and values["Состав"].cut
    assert values["Цвет"].value == "синий" and not values["Цвет"].cut
    assert o.params_cut == 1
    exactly = "я" * 255
    assert offer(product(characteristics=[Characteristic("X", exactly)]), mapped_tree({})).params_cut == 0


def test_group_id_outside_satus_range_is_dropped(tmp_path: Path):
    t = mapped_tree({})
    inside = offer(product(good_id=1, model_id=999_999_999), t)
    outside = offer(product(good_id=2, model_id=1_000_000_000), t)
    assert inside.group_id == 999_999_999 and not inside.group_id_dropped
    assert outside.group_id is None and outside.group_id_dropped
    root = render(tmp_path, [inside, outside], t)
    assert [o.get("group_id") for o in root.iter("offer")] == ["999999999", None]


def test_check_feed_refuses_a_group_id_out_of_range(tmp_path: Path):
    path = tmp_path / "feed.yml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<yml_catalog date="2026-12-02 12:00"><shop><name>n</name>'
        '<company>c</company><url>https://a.kz</url><currencies><currency id="KZT" rate="1"/></currencies>'
        '<categories><category id="1">A</category></categories><offers>\n'
        '<offer id="1" available="true" group_id="1000000000"><name>n</name><description>d</description>'
        "<price>1</price><currencyId>KZT</currencyId><categoryId>1</categoryId></offer>\n"
        "</offers></shop></yml_catalog>\n",
        encoding="utf-8",
    )
    report = check_feed(path)
    assert not report.ok and any("group_id" in p.message for p in report.problems)


# --- check-feed matches what Satu takes ---------------------------------------------------------------------

REAL_WORLD = """<?xml version="1.0" encoding="{encoding}"?>
<yml_catalog date="2025-08-01 10:00">
<shop>
<name>Магазин</name>
<company>ТОО Магазин</company>
<url>https://shop.kz</url>
<platform>PromUA</platform>
<currencies><currency id="KZT" rate="1"/></currencies>
<categories>
<category id="10" parentId="0">Дом</category>
<category id="11" parentId="10" portal_id="1101">Кухня</category>
</categories>
<offers>
<offer id="a1" available="true" in_stock="true" group_id="77">
<name>Сковорода чугунная 26 см</name>
<description><![CDATA[<p>Чугун</p>]]></description>
<price>9900</price>
<currencyId>KZT</currencyId>
<categoryId>11</categoryId>
<portal_category_id>1101</portal_category_id>
<picture>https://shop.kz/i/1.jpg</picture>
<pickup>true</pickup>
<delivery>true</delivery>
<regions><region>Алматы</region></regions>
<country_of_origin>Казахстан</country_of_origin>
<quantity_in_stock>4</quantity_in_stock>
<stock_quantity>4</stock_quantity>
<param name="Диаметр" unit="см">26</param>
</offer>
<offer id="a2" available="" data-source="erp">
<name>Крышка</name>
<description>Стекло</description>
<price>1500</price>
<currencyId>KZT</currencyId>
<categoryId>11</categoryId>
<count>0</count>
</offer>
</offers>
</shop>
</yml_catalog>
"""


def test_constructs_of_real_satu_and_prom_feeds_pass_with_warnings_only(tmp_path: Path):
    path = tmp_path / "real.yml"
    path.write_text(REAL_WORLD.format(encoding="UTF-8"), encoding="utf-8")
    report = check_feed(path)
    assert report.ok and report.errors == [] and report.offers == 2 and report.categories == 2, (
        report.problems
    )
    text = "\n".join(map(str, report.warnings))
    assert "<stock_quantity>: Satu reads <quantity_in_stock>" in text
    assert "<count>: Satu reads <quantity_in_stock>" in text
    assert "unknown attribute data-source=" in text
    for quiet in ("<pickup>", "<delivery>", "<regions>", "<country_of_origin>", "attribute in_stock="):
        assert quiet not in text  # what Prom's own exports write is not even a warning
    # the CLI: exit 0 on warnings, 1 with --strict; --json lists both kinds with lines
    ok = CliRunner().invoke(cli, ["check-feed", str(path)])
    assert ok.exit_code == 0 and "OK, 4 warning(s)" in ok.output  # (a2 has no picture)
    strict = CliRunner().invoke(cli, ["check-feed", str(path), "--strict"])
    assert strict.exit_code == 1
    data = json.loads(CliRunner().invoke(cli, ["check-feed", str(path), "--json"]).output)
    assert data["ok"] and data["errors"] == [] and len(data["warnings"]) == 4
    assert all(w["line"] > 0 and w["level"] == "warning" for w in data["warnings"])


def test_a_windows_1251_feed_is_read(tmp_path: Path):
    path = tmp_path / "cp1251.xml"
    path.write_bytes(REAL_WORLD.format(encoding="windows-1251").encode("cp1251"))
    report = check_feed(path)
    assert report.ok and report.offers == 2, report.problems
    assert any(p.line == 1 and "not UTF-8" in p.message for p in report.warnings)


def test_a_doctype_is_refused_unread_and_no_entity_is_expanded(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    body = REAL_WORLD.format(encoding="UTF-8").replace("<name>Магазин</name>", "<name>&xxe;</name>")
    head, rest = body.split("\n", 1)
    path = tmp_path / "xxe.yml"
    path.write_text(
        f'{head}\n<!DOCTYPE yml_catalog [<!ENTITY xxe SYSTEM "file://{secret}">]>\n{rest}', encoding="utf-8"
    )
    report = check_feed(path)
    assert not report.ok and [p.line for p in report.errors] == [2] and "DOCTYPE" in report.errors[0].message
    result = CliRunner().invoke(cli, ["check-feed", str(path)])
    assert result.exit_code == 1 and "TOP-SECRET" not in result.output and "Traceback" not in result.output


def test_a_stray_unknown_tag_in_the_template_publishes_with_a_warning(demo_env, tmp_path: Path):
    template = (ROOT / "templates" / "satu.yml.j2").read_text(encoding="utf-8")
    custom = tmp_path / "tpl" / "satu.yml.j2"
    custom.parent.mkdir()
    custom.write_text(
        template.replace(
            "<price>{{ o.price }}</price>",
            "<price>{{ o.price }}</price><pickup>true</pickup><warranty>1</warranty>",
        ),
        encoding="utf-8",
    )
    s = make_settings(Path(demo_env.base_dir), feed={"template": str(custom)})
    result = feed_stage.run(s, journal=Journal.from_settings(s), state=State.from_settings(s))
    assert result.ok and result.written, result.problems
    assert check_feed(s.feed.output).ok


class ListSource:
    """A catalog of purpose-built products (what `open_catalog` yields, without a database)."""

    def __init__(self, products: list[Product]):
        self._products = products

    def products(self):
        return iter(self._products)


def test_variants_of_one_group_must_differ_in_a_param(tmp_path: Path):
    import io

    from pipeline.feed.extract import Extractor
    from pipeline.feed.result import FeedResult
    from pipeline.model import Characteristic

    def variant(good_id: int, size: str, group: int = 5) -> Product:
        return product(good_id=good_id, model_id=group, characteristics=[Characteristic("Размер", size)])

    items = [variant(1, "S"), variant(2, "M"), variant(3, "S"), variant(4, "S", group=6), product(good_id=5)]
    s = make_settings(tmp_path)
    journal, result = Journal.from_settings(s), FeedResult()
    extractor = Extractor(
        ListSource(items), RuleSettings(), mapped_tree({}), lambda p: None, None,
        result=result, journal=journal, snapshot=io.StringIO(),
    )  # fmt: skip
    ids = [o.id for o in extractor.offers()]
    extractor.finish()
    assert ids == ["1", "2", "4", "5"]  # 3 repeats 1's params in group 5; group 6 is another model
    assert result.skip_reasons == {"duplicate_variant": 1} and result.offers == 4
    assert result.without_photos == 4  # none of them has a picture (counted for the summary)
    events = [e for e in journal.search(stage="feed", level="warning") if "duplicate_variant" in e.message]
    assert len(events) == 1 and "the same params as offer 1" in events[0].message


def test_the_variant_check_does_not_keep_every_variants_params(tmp_path: Path):
    """A shop of many variants: what the duplicate check keeps per variant stays small (a digest),
    not the params themselves, so memory does not grow with their text."""
    import io
    import tracemalloc

    from pipeline.feed.extract import Extractor
    from pipeline.feed.result import FeedResult
    from pipeline.model import Characteristic

    class Products:  # made one at a time, as the catalog reader streams them
        def products(self):
            for good_id in range(1, 2401):
                chars = [Characteristic(f"Свойство {k}", f"{good_id} " + "ж" * 240) for k in range(8)]
                yield product(good_id=good_id, model_id=7, characteristics=chars)

    s = make_settings(tmp_path)
    extractor = Extractor(
        Products(), RuleSettings(), mapped_tree({}), lambda p: None, None,
        result=FeedResult(), journal=Journal.from_settings(s), snapshot=io.StringIO(),
    )  # fmt: skip
    offers = extractor.offers()
    tracemalloc.start()
    try:
        assert sum(1 for _ in zip(range(1200), offers, strict=False)) == 1200  # (fills the bounded caches)
        before = tracemalloc.take_snapshot()
        assert sum(1 for _ in offers) == 1200
        grown = sum(st.size_diff for st in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    # the params of 1200 more variants are ~5 MB of text; their digests and ids well under 1 MB
    assert grown < 1_000_000, grown


def test_vendor_emit_omit_or_allowlist(tmp_path: Path):
    from pipeline.feed.portal import load_vendor_allowlist

    t = mapped_tree({})
    known, unknown = product(producer="Tefal"), product(producer="Noname Zavod")
    assert offer(known, t).vendor == "Tefal" and not offer(known, t).vendor_omitted  # emit (the default)
    omit = RuleSettings(vendor="omit")
    assert offer(known, t, omit).vendor == "" and offer(known, t, omit).vendor_omitted
    brands = tmp_path / "brands.txt"
    brands.write_text("# brands Satu knows\nTEFAL\nBosch  # kitchen\n\n", encoding="utf-8")
    s = make_settings(tmp_path, feed={"vendor": "allowlist", "vendor_allowlist": str(brands)})
    allowed = load_vendor_allowlist(s.feed)
    assert allowed == {"tefal", "bosch"}
    only = RuleSettings(vendor="allowlist", vendor_allowlist=allowed)
    assert offer(known, t, only).vendor == "Tefal"
    assert offer(unknown, t, only).vendor == "" and offer(unknown, t, only).vendor_omitted
    assert offer(product(producer=""), t, only).vendor_omitted is False  # no brand: nothing left out
    with pytest.raises(SettingsError, match="feed.vendor_allowlist"):
        load_vendor_allowlist(make_settings(tmp_path, feed={"vendor": "allowlist"}).feed)


# Constructs of real feeds Satu/Prom take that an earlier check-feed called errors: the DOCTYPE line of
# Prom's own export and of a production Satu feed (also split over two lines, as Horoshop writes it), a
# <yml_catalog> without date, an empty <quantity_in_stock/> and empty/missing descriptions (Prom exports),
# a categoryId its own <categories> lack (a Horoshop Prom export), fractional stock.
TAKEN = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE yml_catalog
SYSTEM "shops.dtd">
<yml_catalog>
<shop>
<name>Магазин</name>
<company>ТОО Магазин</company>
<url>https://shop.kz</url>
<currencies><currency id="KZT" rate="1"/></currencies>
<categories>
<category id="10">Дом</category>
<category id="11" parentId="10" portal_id="1101">Кухня</category>
</categories>
<offers>
<offer id="b1" available="true">
<name>Сковорода</name>
<description/>
<price>9900</price>
<currencyId>KZT</currencyId>
<categoryId>11</categoryId>
<picture>https://shop.kz/i/1.jpg</picture>
<quantity_in_stock></quantity_in_stock>
</offer>
<offer id="b2" available="true">
<name>Крышка</name>
<price>1500</price>
<currencyId>KZT</currencyId>
<categoryId>99</categoryId>
<picture>https://shop.kz/i/2.jpg</picture>
<quantity_in_stock>2.5</quantity_in_stock>
</offer>
<offer id="b3" available="">
<name>Ручка</name>
<description>Пластик</description>
<price>300</price>
<currencyId>KZT</currencyId>
<categoryId>10</categoryId>
</offer>
</offers>
</shop>
</yml_catalog>
"""


def test_what_real_feeds_satu_takes_carry_is_a_warning_not_an_error(tmp_path: Path):
    path = tmp_path / "taken.yml"
    path.write_text(TAKEN, encoding="utf-8")
    report = check_feed(path)
    assert report.ok and report.offers == 3 and report.categories == 2, report.errors
    text = "\n".join(map(str, report.warnings))
    for expected in (
        "line 4: warning: <yml_catalog> has no date attribute",
        "line 17: warning: offer b1: <description> is empty",
        "line 22: warning: offer b1: <quantity_in_stock> is empty",
        "line 24: warning: offer b2: <description> is missing",
        "line 30: warning: offer b2: <quantity_in_stock> 2.5 is not a whole number",
        "line 28: warning: offer b2: categoryId 99 names no category in the feed",
        "line 32: warning: 1 offer(s) without a <picture> (Satu shows 1–10), first: offer b3",
        "line 24: warning: 2 offer(s) without a Satu category",
    ):
        assert expected in text, text
    assert "DOCTYPE" not in text and "categoryId 11" not in text


def test_an_external_dtd_is_never_read(tmp_path: Path):
    # The DTD beside the feed would add an entity and an attribute default: neither may take effect.
    (tmp_path / "shops.dtd").write_text(
        '<!ENTITY x "INJECTED">\n<!ATTLIST offer available CDATA "true">\n', encoding="utf-8"
    )
    body = TAKEN.replace("<name>Ручка</name>", "<name>Ручка &x;</name>")
    path = tmp_path / "feed.yml"
    path.write_text(body, encoding="utf-8")
    report = check_feed(path)
    assert not report.ok and any("'x' not defined" in p.message for p in report.errors), report.problems
    result = CliRunner().invoke(cli, ["check-feed", str(path)])
    assert result.exit_code == 1 and "INJECTED" not in result.output


def test_a_currency_not_declared_in_currencies_is_an_error(tmp_path: Path):
    path = tmp_path / "feed.yml"
    path.write_text(
        REAL_WORLD.format(encoding="UTF-8").replace(
            "<price>1500</price>\n<currencyId>KZT", "<price>1500</price>\n<currencyId>USD"
        ),
        encoding="utf-8",
    )
    report = check_feed(path)
    assert not report.ok, report.problems
    assert [str(p) for p in report.errors] == [
        "line 34: offer a2: currencyId USD is not declared in <currencies>"
    ]


@pytest.mark.parametrize(
    ("code", "warned"),
    [("AB-12_3.4/5 x", False), ("Арт-Ққ 7", False), ("AB#12", True), ("A,B;C", True), ("A\u00a0B", True)],
)
def test_vendor_code_characters_outside_satus_article_field_are_a_warning(tmp_path: Path, code, warned):
    # Prom/Satu's article: digits, Cyrillic, Latin, "-", "_", ".", "/" and space.
    body = REAL_WORLD.format(encoding="UTF-8").replace(
        "<price>1500</price>", f"<price>1500</price><vendorCode>{code}</vendorCode>"
    )
    path = tmp_path / "feed.yml"
    path.write_text(body, encoding="utf-8")
    report = check_feed(path)
    hits = [p for p in report.problems if "vendorCode" in p.message]
    assert report.ok, report.errors
    assert [(p.line, p.level, p.where) for p in hits] == ([(33, "warning", "offer a2")] if warned else [])


def test_the_summary_counts_cut_params_dropped_group_ids_and_left_out_brands(tmp_path: Path):
    import io

    from pipeline.commands.feed import _print_summary
    from pipeline.feed.extract import Extractor
    from pipeline.feed.result import FeedResult
    from pipeline.model import Characteristic

    long_value = " ".join(["материал"] * 40)
    items = [
        product(good_id=1, characteristics=[Characteristic("Состав", long_value)], producer="Tefal"),
        product(good_id=2, model_id=1_000_000_000, producer="Noname Zavod"),
        product(good_id=3, model_id=7, producer="Noname Zavod"),
    ]
    s = make_settings(tmp_path)
    journal, result = Journal.from_settings(s), FeedResult()
    rules = RuleSettings(vendor="allowlist", vendor_allowlist=frozenset({"tefal"}))
    extractor = Extractor(
        ListSource(items), rules, mapped_tree({}), lambda p: None, None,
        result=result, journal=journal, snapshot=io.StringIO(),
    )  # fmt: skip
    assert [o.id for o in extractor.offers()] == ["1", "2", "3"]
    extractor.finish()
    assert (result.params_cut, result.group_ids_dropped, result.vendors_omitted) == (1, 1, 2)
    events = [e for e in journal.search(stage="feed", level="warning") if "group_id left out" in e.message]
    assert len(events) == 1 and "1..999999999" in events[0].message
    out = CliRunner()

    @click.command()
    def show() -> None:
        _print_summary(result)

    text = out.invoke(show).output
    assert "Param values cut to 255 chars: 1; group ids outside 1..999999999 left out: 1" in text
    assert "Brands left out ([feed] vendor): 2 offers without <vendor>" in text
    assert "3 offers without any photo" in text


def test_settings_default_to_not_in_stock_and_no_ready_to_ship_flag(tmp_path: Path):
    s = make_settings(tmp_path)
    assert s.satu.unavailable_value == "" and s.feed.in_stock_flag is False
    assert RuleSettings.from_settings(s).in_stock_flag is False
    flagged = make_settings(tmp_path, feed={"in_stock_flag": True})
    assert RuleSettings.from_settings(flagged).in_stock_flag is True


def test_check_feed_names_over_110_are_errors_and_shop_gaps_and_a_child_available_are_warnings(
    tmp_path: Path,
):
    body = REAL_WORLD.format(encoding="UTF-8")
    body = body.replace(
        "<name>Магазин</name>\n<company>ТОО Магазин</company>\n<url>https://shop.kz</url>\n", ""
    )
    body = body.replace("<name>Крышка</name>", "<name>" + "К" * 111 + "</name><available>true</available>")
    body = body.replace("<name>Сковорода чугунная 26 см</name>", "<name>" + "С" * 110 + "</name>")
    path = tmp_path / "feed.yml"
    path.write_text(body, encoding="utf-8")
    report = check_feed(path)
    assert [str(p) for p in report.errors] == ["line 28: offer a2: <name> has 111 chars (keep ≤ 110)"]
    text = "\n".join(map(str, report.warnings))
    for tag in ("name", "company", "url"):
        assert f"line 3: warning: <shop> has no <{tag}>" in text
    assert "line 28: warning: offer a2: unknown tag <available>: availability is the offer attribute" in text


def test_the_feed_writes_minimum_order_quantity_only_on_the_wholesale_offer(tmp_path: Path):
    t = mapped_tree({})
    wholesale = dict(wholesale_price=Decimal(900), wholesale_min_qty=Decimal(10))
    offers = [
        offer(product(good_id=1, min_order_qty=Decimal(5)), t),
        offer(product(good_id=2, min_order_qty=Decimal(5), **wholesale), t),
    ]
    root = render(tmp_path, offers, t)
    got = {
        o.get("id"): (o.get("selling_type"), o.findtext("minimum_order_quantity")) for o in root.iter("offer")
    }
    assert got == {"1": ("r", None), "2": ("u", "5")}


def test_check_feed_warns_about_a_param_value_over_255(tmp_path: Path):
    body = REAL_WORLD.format(encoding="UTF-8").replace(
        '<param name="Диаметр" unit="см">26</param>',
        '<param name="Диаметр" unit="см">26</param><param name="Состав">' + "я" * 256 + "</param>",
    )
    path = tmp_path / "feed.yml"
    path.write_text(body, encoding="utf-8")
    report = check_feed(path)
    hits = [str(p) for p in report.problems if "<param>" in p.message]
    assert report.ok and hits == [
        "line 28: warning: offer a1: <param> 'Состав' has 256 chars (Satu keeps ≤ 255)"
    ], report.problems
