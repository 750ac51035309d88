"""What Satu should show (issue 14): descriptions without links to other sites, countries by Satu's
Russian names, no placeholder URLs, one URL per <picture>, and the availability dialect."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pipeline.feed.countries import COUNTRIES, country_name
from pipeline.feed.extract import Extractor
from pipeline.feed.result import FeedResult
from pipeline.feed.rules import RuleSettings
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
