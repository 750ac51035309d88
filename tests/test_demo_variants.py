"""Issue 14: the demo data carries real variant groups (sizes, colours), and the demo feed offers them
the way Satu takes them: `group_id` within 1..999999999, the variants of a group differing in a param."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from lxml import etree

from pipeline import feed as feed_stage
from pipeline.devtools.demo_data import GROUP_EVERY, variant_of
from pipeline.journal import Journal
from pipeline.state import State

SIZE, COLOR = "Размер", "Түсі / Цвет"


def test_variant_of_names_model_goods_and_what_each_variant_varies_by():
    assert variant_of(1) == (1, {3: "S"}) and variant_of(4) == (1, {3: "XL"}) and variant_of(5) is None
    assert variant_of(26) == (26, {2: "қара"}) and variant_of(29) is None  # colours: three variants
    assert variant_of(51) == (51, {3: "M", 2: "қара"}) and variant_of(54) == (51, {3: "L", 2: "ақ"})
    assert variant_of(1 + 3 * GROUP_EVERY) == (76, {3: "S"})  # the kinds repeat


def test_the_demo_feed_has_variant_groups_that_differ_in_size_or_colour(demo_env):
    s = demo_env
    result = feed_stage.run(s, journal=Journal.from_settings(s), state=State.from_settings(s))
    assert result.ok and result.written
    assert "duplicate_variant" not in result.skip_reasons
    root = etree.parse(str(s.feed.output)).getroot()
    groups: dict[str, list[etree._Element]] = defaultdict(list)
    for o in root.iter("offer"):
        if o.get("group_id") is not None:
            groups[o.get("group_id")].append(o)
    real = {g: offers for g, offers in groups.items() if len(offers) > 1}
    assert len(real) >= 6, {g: len(v) for g, v in groups.items()}  # 300 goods: 12 groups, a few cut by stock
    kinds = set()
    for gid, offers in groups.items():
        assert 1 <= int(gid) <= 999_999_999
        for o in offers:  # every offer in a group is a variant of that model good
            assert variant_of(int(o.get("id")))[0] == int(gid), (gid, o.get("id"))
        params = [
            {p.get("name"): p.text for p in o.iter("param") if p.get("name") in (SIZE, COLOR)} for o in offers
        ]
        assert all(params), (gid, params)
        assert len({tuple(sorted(p.items())) for p in params}) == len(offers), (gid, params)  # all distinct
        assert len({o.findtext("categoryId") for o in offers}) == 1  # one product, one section
        kinds.add(tuple(sorted(params[0])))
    assert kinds == {(SIZE,), (COLOR,), (SIZE, COLOR)}  # sizes, colours, and both
    # the model's own offer is named like its variants (only the number differs)
    some = next(iter(real.values()))
    assert len({o.findtext("name").rsplit(" ", 1)[0] for o in some}) == 1
    assert Path(s.feed.output).stat().st_size > 0
