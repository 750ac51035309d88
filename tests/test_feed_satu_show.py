"""What Satu should show (issue 14): descriptions without links to other sites, countries by Satu's
Russian names, no placeholder URLs, one URL per <picture>, and the availability dialect."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from pipeline.feed.countries import COUNTRIES, country_name
from pipeline.feed.extract import Extractor
from pipeline.feed.result import FeedResult
from pipeline.feed.rules import RuleSettings
from pipeline.feed.validate import check_feed
from pipeline.journal import Journal
from tests.conftest import make_settings
from tests.test_feed_satu import ListSource, mapped_tree, offer, product

# --- countries ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "satu"),
    [
        ("Kazakhstan", "Казахстан"),
        ("Қазақстан", "Казахстан"),
        ("KZ", "Казахстан"),
        ("  казахстан ", "Казахстан"),
        ("China", "Китай"),
        ("Қытай", "Китай"),
        ("КНР", "Китай"),
        ("Turkey", "Турция"),
        ("Türkiye", "Турция"),
        ("Түркия", "Турция"),
        ("Russia", "Россия"),
        ("Ресей", "Россия"),
        ("Uzbekistan", "Узбекистан"),
        ("Өзбекстан", "Узбекистан"),
        ("Kyrgyzstan", "Кыргызстан"),
        ("Киргизия", "Кыргызстан"),
        ("Germany", "Германия"),
        ("Німеччина", "Германия"),
        ("Italy", "Италия"),
        ("Poland", "Польша"),
        ("U.S.A.", "США"),
        ("United States", "США"),
        ("АҚШ", "США"),
        ("Korea", "Южная Корея"),
        ("Korea, Republic of", "Южная Корея"),
        ("Viet Nam", "Вьетнам"),
        ("В’єтнам", "Вьетнам"),  # a typographic apostrophe
        ("India", "Индия"),
        ("Belarus", "Беларусь"),
        ("Україна", "Украина"),
        ("Japan", "Япония"),
        ("France", "Франция"),
        ("Spain", "Испания"),
        ("UK", "Великобритания"),
        ("Great Britain", "Великобритания"),
        ("Южная Корея", "Южная Корея"),  # Satu's own name stays
    ],
)
def test_country_spellings_become_satus_russian_names(value: str, satu: str):
    assert country_name(value) == (satu, True)


def test_unknown_countries_pass_through_unchanged_and_empty_is_nothing():
    assert country_name("Атлантида") == ("Атлантида", False)
    assert country_name("  ") == ("", True)
    # the table's own names are what it maps to: every name is known under itself
    assert all(country_name(name) == (name, True) for name in COUNTRIES)


def test_the_feed_writes_satus_name_and_counts_each_unknown_value_once(tmp_path: Path):
    t = mapped_tree({})
    assert offer(product(country="Қытай"), t).country == "Китай"
    items = [
        product(good_id=1, country="Kazakhstan"),
        product(good_id=2, country="Атлантида"),
        product(good_id=3, country="Атлантида"),
        product(good_id=4, country="Made somewhere"),
        product(good_id=5),
    ]
    s = make_settings(tmp_path)
    journal, result = Journal.from_settings(s), FeedResult()
    extractor = Extractor(
        ListSource(items), RuleSettings(), t, lambda p: None, None,
        result=result, journal=journal, snapshot=io.StringIO(),
    )  # fmt: skip
    countries = [o.country for o in extractor.offers()]
    extractor.finish()
    assert countries == ["Казахстан", "Атлантида", "Атлантида", "Made somewhere", ""]
    assert result.countries_unknown == {"Атлантида": 2, "Made somewhere": 1}
    warned = [e.message for e in journal.search(stage="feed", level="warning") if "country" in e.message]
    assert len(warned) == 2 and any("'Атлантида'" in m and "2 offer(s)" in m for m in warned)


# --- description links ------------------------------------------------------------------------------------

LINKS = (
    '<p>Смотрите <a href="https://rival.kz/x" title="t">наш <b>обзор</b></a>, '
    '<a href="https://www.youtube.com/watch?v=1">видео</a>, <a href="https://youtu.be/abc">коротко</a>, '
    '<a href="https://music.youtube.com/x">музыка</a>, <a href="https://notyoutube.com/x">подделка</a>, '
    '<a href="/p/12">товар</a>, <a href="https://www.shop.kz/a">свой</a>, <a href="https://cdn.shop.kz/b">cdn</a>, '
    '<a href="mailto:a@b.kz">почта</a>, <a href="#top">вверх</a>, <a href="//rival.kz/y">без схемы</a>.</p>'
)


def test_description_keeps_only_links_to_the_shop_and_allowed_hosts():
    from pipeline.feed.sanitize import LinkPolicy, clean_description

    out, stripped = clean_description(LINKS, LinkPolicy("https://shop.kz"))
    kept = re.findall(r'href="([^"]+)"', out)
    assert kept == [
        "https://www.youtube.com/watch?v=1",
        "https://youtu.be/abc",
        "https://music.youtube.com/x",  # a subdomain of an allowed host
        "https://shop.kz/p/12",  # relative: made absolute on the shop's site
        "https://www.shop.kz/a",
        "https://cdn.shop.kz/b",
    ]
    assert stripped == 5  # rival.kz, notyoutube.com, mailto:, #top, //rival.kz
    for text in ("наш <b>обзор</b>", "подделка", "почта", "вверх", "без схемы"):
        assert text in out  # the text stays, the link goes
    assert "rival" not in out and "<a title" not in out and out.count("<a ") == out.count("</a>") == 6


def test_relative_links_go_when_the_shop_url_is_not_set_and_hosts_are_configurable():
    from pipeline.feed.sanitize import LinkPolicy, clean_description, clean_html

    out, stripped = clean_description(LINKS, LinkPolicy(""))
    assert "/p/12" not in out and "товар" in out and stripped == 8  # + relative, www.shop.kz, cdn.shop.kz
    own, n = clean_description(LINKS, LinkPolicy("", ("rival.kz",)))
    assert 'href="https://rival.kz/x"' in own and "youtu" not in own and n == 9
    assert 'href="https://rival.kz/x"' in clean_html(LINKS)  # no policy: the plain sanitiser (groups file)


def test_feed_strips_links_and_counts_them(tmp_path: Path):
    t = mapped_tree({})
    rs = RuleSettings.from_settings(make_settings(tmp_path, feed={"url": "https://shop.kz"}))
    o = offer(product(description_html=LINKS), t, rs)
    assert o.links_stripped == 5 and "rival.kz" not in o.description
    only = make_settings(tmp_path, feed={"url": "https://shop.kz", "allowed_link_hosts": []})
    assert offer(product(description_html=LINKS), t, RuleSettings.from_settings(only)).links_stripped == 8
    s = make_settings(tmp_path)
    journal, result = Journal.from_settings(s), FeedResult()
    extractor = Extractor(
        ListSource([product(good_id=1, description_html=LINKS), product(good_id=2)]), rs, t,
        lambda p: None, None, result=result, journal=journal, snapshot=io.StringIO(),
    )  # fmt: skip
    list(extractor.offers())
    extractor.finish()
    assert result.links_stripped == 5 and result.counts()["links_stripped"] == 5
    assert any("5 description link(s)" in e.message for e in journal.search(stage="feed"))


# --- one URL per picture -----------------------------------------------------------------------------------


def test_a_photo_field_with_several_urls_becomes_several_pictures_or_is_left_out(tmp_path: Path):
    from pipeline.feed.rules import build_offer
    from pipeline.model import Photo

    photos = [
        Photo(0, "https://img.shop.kz/1.jpg;https://img.shop.kz/2.jpg"),
        Photo(1, "https://img.shop.kz/my photo.jpg"),  # a space inside one URL: not a list of URLs
        Photo(2, "https://img.shop.kz/3.jpg  https://img.shop.kz/1.jpg"),  # the repeat is dropped
        Photo(3, "https://img.shop.kz/4.jpg, https://img.shop.kz/5.jpg"),
        Photo(4, "https://cdn.shop.kz/w_100,h_100/6.jpg"),  # a comma inside one URL is fine
        Photo(5, "https://img.shop.kz/7.jpg;ftp://old/7.jpg"),
    ]
    passthrough = lambda p: p.file_name  # noqa: E731 (what PhotoIndex does for http(s) names)
    t = mapped_tree({})
    o = build_offer(product(photos=photos), RuleSettings(), t, passthrough)
    assert o.pictures == [f"https://img.shop.kz/{n}.jpg" for n in (1, 2, 3, 4, 5)] + [
        "https://cdn.shop.kz/w_100,h_100/6.jpg"
    ]
    assert o.pictures_invalid == (
        "https://img.shop.kz/my photo.jpg",
        "https://img.shop.kz/7.jpg;ftp://old/7.jpg",
    )
    s = make_settings(tmp_path)
    journal, result = Journal.from_settings(s), FeedResult()
    extractor = Extractor(
        ListSource([product(photos=photos)]), RuleSettings(), t, passthrough, None,
        result=result, journal=journal, snapshot=io.StringIO(),
    )  # fmt: skip
    list(extractor.offers())
    extractor.finish()
    assert result.pictures_invalid == 2 and result.counts()["pictures_invalid"] == 2
    warned = [
        e
        for e in journal.search(stage="feed", level="warning")
        if "left out: not one http(s) URL" in e.message
    ]
    assert len(warned) == 2 and "my photo.jpg" in warned[0].message


PICTURE_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<yml_catalog date="2026-12-02 12:00"><shop><name>n</name><company>c</company><url>https://a.kz</url>
<currencies><currency id="KZT" rate="1"/></currencies><categories><category id="1">A</category></categories>
<offers>
<offer id="1" available="true"><name>n</name><description>d</description><price>1</price>
<currencyId>KZT</currencyId><categoryId>1</categoryId>
<picture>{picture}</picture>
</offer>
</offers></shop></yml_catalog>
"""


@pytest.mark.parametrize(
    "picture",
    [
        "https://a.kz/1.jpg;https://a.kz/2.jpg",
        "https://a.kz/1.jpg,https://a.kz/2.jpg",
        "https://a.kz/1.jpg https://a.kz/2.jpg",
    ],
)
def test_check_feed_refuses_several_urls_in_one_picture(tmp_path: Path, picture: str):
    path = tmp_path / "feed.yml"
    path.write_text(PICTURE_FEED.format(picture=picture), encoding="utf-8")
    report = check_feed(path)
    assert not report.ok
    assert any("one URL per <picture>" in p.message and p.line == 7 for p in report.errors), report.problems


def test_check_feed_takes_a_comma_inside_one_picture_url(tmp_path: Path):
    path = tmp_path / "feed.yml"
    path.write_text(PICTURE_FEED.format(picture="https://cdn.a.kz/w_100,h_100/1.jpg"), encoding="utf-8")
    assert check_feed(path).errors == []


# --- what the availability choice shows on Satu (the sandbox reads the Prom/Satu dialect) --------------------


def _sandbox_presence(tmp_path: Path, unavailable: str, availability: str = "satu") -> dict[str, str]:
    from pipeline.devtools.sandbox import SandboxServer
    from tests.test_feed_satu import render

    t = mapped_tree({})
    rs = RuleSettings(zero_stock="awaiting")
    offers = [offer(product(good_id=1), t, rs), offer(product(good_id=2, stocks=[]), t, rs)]
    folder = tmp_path / f"{unavailable or 'empty'}-{availability}"
    folder.mkdir()
    render(folder, offers, t, unavailable=unavailable)
    sb = SandboxServer(folder / "sb", availability=availability)  # never started: the file is loaded
    try:
        rec = sb.load_feed_file(folder / "feed.yml")
        assert rec["status"] == "SUCCESS", rec
        return {p["external_id"]: p["presence"] for p in sb.products()}
    finally:
        sb.stop()


def test_unavailable_value_false_shows_out_of_stock_goods_as_orderable(tmp_path: Path):
    # the bug [satu] unavailable_value = "" prevents: YML's "false" is "под заказ" on Satu
    assert _sandbox_presence(tmp_path, "false") == {"1": "available", "2": "order"}


def test_unavailable_value_empty_shows_out_of_stock_goods_as_not_available(tmp_path: Path):
    assert _sandbox_presence(tmp_path, "") == {"1": "available", "2": "not_available"}
    # the plain YML reading (configurable) cannot tell the two apart
    assert _sandbox_presence(tmp_path, "false", "yml") == {"1": "available", "2": "not_available"}


@pytest.mark.parametrize(
    ("available", "quantity", "presence"),
    [
        ("true", "3", "available"),
        ("false", "0", "order"),
        ("", "0", "not_available"),
        ("", "5", "not_available"),  # "" wins over a stock count
        (None, "0", "not_available"),  # no attribute: by the stock
        (None, "2", "available"),
        (None, None, "not_available"),
    ],
)
def test_sandbox_reads_available_in_satus_dialect(available, quantity, presence):
    from pipeline.devtools.sandbox.feed_import import presence_of

    assert presence_of(available, quantity) == presence
    assert presence_of(available, quantity, "yml") == (
        "available" if available == "true" else "not_available"
    )


# --- no placeholder addresses reach Satu ---------------------------------------------------------------------


def test_no_url_anywhere_unless_the_shop_site_is_set(tmp_path: Path):
    from lxml import etree

    from pipeline.feed.rules import CategoryTree
    from tests.test_feed_satu import SECTIONS, render

    assert RuleSettings().base_url == "" and make_settings(tmp_path).feed.url == ""
    bare = CategoryTree(SECTIONS, "{url}/c/{slug}", "")
    assert all(s.url == "" for s in bare.sections.values())
    o = offer(product(), bare)
    assert o.url == ""
    dest = tmp_path / "bare"
    dest.mkdir()
    root = render(dest, [o], bare, shop_url="")
    assert root.find("shop/url") is None and root.find(".//offer/url") is None
    assert not any("example" in (e.text or "") for e in root.iter())
    rs = RuleSettings.from_settings(make_settings(tmp_path, feed={"url": "https://shop.kz/"}))
    site = CategoryTree(SECTIONS, "{url}/c/{slug}", "https://shop.kz/")
    assert offer(product(), site, rs).url.startswith("https://shop.kz/p/") and site.sections[
        1
    ].url.startswith("https://shop.kz/c/")
    assert etree.tostring(render(tmp_path, [offer(product(), site, rs)], site)).count(b"<url>") == 2


def test_the_shipped_settings_carry_no_placeholder_or_loopback_address():
    import tomllib

    from tests.conftest import ROOT

    data = tomllib.loads((ROOT / "settings.toml").read_text(encoding="utf-8"))
    assert data["feed"]["url"] == "" and data["publish"]["public_base_url"] == ""
    assert data["publish"]["allow_private_urls"] is False


def test_photos_get_no_url_while_public_base_url_is_not_set(tmp_path: Path):
    from pipeline.contracts.photo_urls import PUBLISHED_NS, PhotoIndex
    from pipeline.model import Photo
    from pipeline.state import State

    s = make_settings(tmp_path)
    state = State.from_settings(s)
    state.put(PUBLISHED_NS, "a.jpg", {"name": "photos/a.jpg", "ok": True})
    assert (
        PhotoIndex(state, "http://127.0.0.1:8765").url_for(Photo(0, "a.jpg"))
        == "http://127.0.0.1:8765/photos/a.jpg"
    )
    unset = PhotoIndex(state, "")
    assert unset.url_for(Photo(0, "a.jpg")) is None and "public_base_url" in unset.reason(Photo(0, "a.jpg"))
    assert unset.url_for(Photo(1, "https://img.kz/b.jpg")) == "https://img.kz/b.jpg"  # a URL stays a URL


def _load(tmp_path: Path, publish: str, extra: str = ""):
    from pipeline.settings import load

    path = tmp_path / "s.toml"
    path.write_text(f"[publish]\n{publish}\n{extra}", encoding="utf-8")
    return load(path)


REMOTE = 'target = "ftp"\nhost = "ftp.shop.kz"\n'


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765",
        "http://localhost/media",
        "http://192.168.1.10/shop",
        "http://10.0.0.5",
        "http://172.20.1.1/x",
        "http://169.254.10.10",
        "http://[::1]:8080",
        "http://[fd00::1]/",
        "http://shop.local/img",
    ],
)
def test_a_public_url_satu_cannot_reach_is_warned_about_unless_meant(tmp_path: Path, url: str):
    from pipeline.settings_checks import warnings

    remote = warnings(_load(tmp_path, REMOTE + f'public_base_url = "{url}"'))
    assert [w.key for w in remote] == ["publish.public_base_url"]
    assert "uploads to a server" in remote[0].message and "allow_private_urls" in remote[0].fix
    local = warnings(_load(tmp_path, f'public_base_url = "{url}"'))  # target = "local": the dev case
    assert [w.key for w in local] == ["publish.public_base_url"] and "local folder" in local[0].message
    assert warnings(_load(tmp_path, REMOTE + f'public_base_url = "{url}"\nallow_private_urls = true')) == []


@pytest.mark.parametrize("url", ["https://shop.kz/media", "http://95.59.1.2/x", "https://cdn.local-shop.kz"])
def test_a_public_host_is_no_warning(tmp_path: Path, url: str):
    from pipeline.settings_checks import warnings

    assert warnings(_load(tmp_path, REMOTE + f'public_base_url = "{url}"')) == []


@pytest.mark.parametrize(
    ("publish", "extra", "needle"),
    [
        (REMOTE, "", 'publish.target = "ftp"'),
        ("", "[satu]\nimport_after_publish = true\n", "import_after_publish"),
        ("check_urls = true\n", "", "check_urls"),
        (REMOTE + 'public_base_url = "https://shop.kz/my media"\n', "", "holds a space"),
    ],
)
def test_public_base_url_must_be_set_where_satu_fetches_by_it(tmp_path: Path, publish, extra, needle):
    from pipeline.errors import SettingsError

    with pytest.raises(SettingsError) as info:
        _load(tmp_path, publish, extra)
    problems = [p for p in info.value.problems if p.key == "publish.public_base_url"]
    assert len(problems) == 1 and needle in problems[0].message
    assert _load(tmp_path, "").publish.public_base_url == ""  # local target, nothing fetched: fine


def test_the_warning_is_said_at_the_top_of_every_run(tmp_path: Path):
    from click.testing import CliRunner

    from pipeline.cli import cli

    path = tmp_path / "s.toml"
    path.write_text('[publish]\npublic_base_url = "http://192.168.0.2/feed"\n', encoding="utf-8")
    r = CliRunner().invoke(cli, ["--settings", str(path), "lock"])
    assert "Warning: publish.public_base_url" in r.stderr and "192.168.0.2" in r.stderr
    path.write_text(
        '[publish]\npublic_base_url = "http://192.168.0.2/feed"\nallow_private_urls = true\n',
        encoding="utf-8",
    )
    r = CliRunner().invoke(cli, ["--settings", str(path), "lock"])
    assert "Warning" not in r.stderr


@pytest.mark.parametrize(("allowed", "counted"), [(False, 2), (True, 0)])
def test_pictures_on_private_hosts_are_counted_and_warned(tmp_path: Path, allowed: bool, counted: int):
    from pipeline.model import Photo

    photos = [
        Photo(0, "http://127.0.0.1:8765/a.jpg"),
        Photo(1, "http://192.168.1.5/b.jpg"),
        Photo(2, "https://img.kz/c.jpg"),
    ]
    s = make_settings(tmp_path)
    journal, result = Journal.from_settings(s), FeedResult()
    extractor = Extractor(
        ListSource([product(photos=photos)]), RuleSettings(allow_private_urls=allowed), mapped_tree({}),
        lambda p: p.file_name, None, result=result, journal=journal, snapshot=io.StringIO(),
    )  # fmt: skip
    assert len(next(extractor.offers()).pictures) == 3  # kept: the warning says what to fix
    extractor.finish()
    assert result.pictures_private == counted
    warned = [
        e for e in journal.search(stage="feed", level="warning") if "loopback/private host" in e.message
    ]
    assert len(warned) == (1 if counted else 0)


def test_the_groups_file_keeps_only_the_allowed_links_in_section_texts():
    from pipeline.feed.groups import group_rows
    from pipeline.feed.rules import Section
    from pipeline.feed.sanitize import LinkPolicy

    text = '<p><a href="https://rival.kz">Соседи</a> и <a href="https://youtu.be/a">видео</a></p>'
    section = Section(1, None, "Мебель", "mebel", "", (1,), text_before=text)
    row = group_rows([section], lambda p: None, LinkPolicy("https://shop.kz"))[0]
    assert "rival" not in row["HTML_описание_группы"] and "Соседи" in row["HTML_описание_группы"]
    assert 'href="https://youtu.be/a"' in row["Текст_до_списка"]
