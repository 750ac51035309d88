"""A small demo-like run for the web page's tests: catalog out, two orders in, one damaged file."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_settings
from order_factory import satu_order, write_order
from pipeline import sync
from pipeline.journal import Journal
from pipeline.orders import inbox
from pipeline.settings import Settings
from pipeline.state import State

HIDDEN_GOOD = 6  # the product the tests hide on the site after the run


def demo_like_run(base: Path) -> Settings:
    """Settings over the demo database in `base` after one sync, two imported orders and one
    quarantined (truncated) order file: 9003, whose good content is kept in `base/9003.json`."""
    s = make_settings(
        base,
        photos={"cache_dir": str(base / "cache"), "max_size": 160, "workers": 2},
        publish={"target": "local", "local_dir": str(base / "public")},
        satu={"push": False},
        orders={"settle_seconds": 0},
    )
    journal, state = Journal.from_settings(s), State.from_settings(s)
    try:
        r = sync.run(s, journal=journal, state=state, partial=False, dry_run=False, force=False)
        assert r.ok, r
        folder = Path(s.orders.inbox)
        write_order(folder, satu_order(9001))
        write_order(folder, satu_order(9002, first="Ерлан", last="Жақсылықов", phone="+7 (702) 555-12-34"))
        good = satu_order(9003, first="Дана", last="Омарова", phone="+7 (705) 000-11-22")
        text = json.dumps({"order": good}, ensure_ascii=False)
        (base / "9003.json").write_text(text, encoding="utf-8")
        (folder / "satu-order-9003.json").write_text(text[: len(text) // 2], encoding="utf-8")
        res = inbox.run(s, journal=journal, state=state)
        assert res.imported == 2 and res.quarantined == 1, res.summary()
    finally:
        journal.close()
        state.close()
    return s


def hide_on_site(settings: Settings, good_id: int) -> None:
    """Untick “show on site” for one good in the Torgsoft database, as a shop worker would."""
    from pipeline.torgsoft.connection import connect

    con = connect(settings)
    try:
        con.cursor().execute("UPDATE GOOD SET DISPLAY_ON_SITE = 0 WHERE GOOD_ID = ?", (good_id,))
        con.commit()
    finally:
        con.close()
