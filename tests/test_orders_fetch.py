"""`orders fetch` against the Satu sandbox over real HTTP: cursor, versions, paging, durability."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.devtools.sandbox import SandboxServer
from pipeline.journal import Journal
from pipeline.orders import fetch, inbox
from pipeline.settings import Settings
from pipeline.state import State
from pipeline.torgsoft.connection import connect


@pytest.fixture()
def sandbox(tmp_path: Path):
    server = SandboxServer(tmp_path / "sandbox").start()
    yield server
    server.stop()


def _settings(env: Settings, server: SandboxServer, monkeypatch) -> Settings:
    monkeypatch.setenv("SATU_TOKEN", server.token)
    return env.replace(
        satu=replace(env.satu, base_url=server.url, max_retries=2),
        orders=replace(env.orders, settle_seconds=0),
    )


def _fetch(s: Settings) -> fetch.FetchResult:
    return fetch.run(s, journal=Journal.from_settings(s), state=State.from_settings(s))


def _inbox_files(s: Settings) -> list[str]:
    return sorted(p.name for p in Path(s.orders.inbox).glob("*.json"))


def test_fetch_writes_each_order_version_once_and_moves_the_cursor(demo_env, sandbox, monkeypatch):
    s = _settings(demo_env, sandbox, monkeypatch)
    products = [(str(g), f"ART-{g:06d}", f"Товар {g}", 1000 + g) for g in range(1, 40)]
    created = sandbox.create_orders(130, seed=3, products=products)  # more than one page of 100
    result = _fetch(s)
    assert (result.listed, result.written, result.ok) == (130, 130, True)
    files = _inbox_files(s)
    assert len(files) == 130 and all(f.startswith("satu-order-") for f in files)
    sample = json.loads((Path(s.orders.inbox) / files[0]).read_text(encoding="utf-8"))
    assert set(sample) == {"order"} and sample["order"]["id"] in {o["id"] for o in created}
    assert not list(Path(s.orders.inbox).glob(".*"))  # no temp files left
    cursor = State.from_settings(s).get("orders.fetch", "cursor")
    assert cursor["modified"] == max(created, key=lambda o: o["date_modified"])["date_modified"]
    # Nothing new: nothing written again.
    again = _fetch(s)
    assert again.written == 0 and again.listed <= 130
    # Changed on Satu: a new file version for just that order.
    target = created[5]["id"]
    sandbox.modify_order(target, status="canceled")
    changed = _fetch(s)
    assert changed.written == 1
    versions = [f for f in _inbox_files(s) if f.startswith(f"satu-order-{target}-")]
    assert len(versions) == 2
    # The inbox imports them all; the cancelled version wins.
    r = inbox.run(s, journal=Journal.from_settings(s), state=State.from_settings(s))
    assert r.imported == 130 and r.updated + r.unchanged == 1 and r.quarantined == 0
    con = connect(s)
    try:
        cur = con.cursor()
        cur.execute("SELECT STATUS FROM CUSTOMER_ORDER WHERE EXTERNAL_ID = ?", (str(target),))
        assert cur.fetchall() == [(4,)]
        cur.execute(
            "SELECT COUNT(*) FROM RESERVATION r JOIN CUSTOMER_ORDER o ON o.ID = r.ORDER_ID "
            "WHERE o.EXTERNAL_ID = ? AND r.STATE IN (0, 1)",
            (str(target),),
        )
        assert cur.fetchone()[0] == 0
    finally:
        con.close()


def test_fetch_interrupted_keeps_the_cursor_and_loses_nothing(demo_env, sandbox, monkeypatch):
    s = _settings(demo_env, sandbox, monkeypatch)
    sandbox.create_orders(150, seed=4)
    sandbox.fail_next(3, "500")  # one call and both retries fail: the pass breaks off
    broken = _fetch(s)
    assert not broken.ok and State.from_settings(s).get("orders.fetch", "cursor") is None
    result = _fetch(s)
    assert result.ok and result.written == 150 and len(_inbox_files(s)) == 150
    # A crash after the files were durable but before the cursor was saved: the re-run writes nothing twice.
    State.from_settings(s).delete("orders.fetch")
    rerun = _fetch(s)
    assert rerun.ok and (rerun.written, rerun.already) == (0, 150) and len(_inbox_files(s)) == 150


def test_fetch_cli_with_a_bad_token_exits_nonzero(demo_env, sandbox, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import cli

    monkeypatch.setenv("SATU_TOKEN", "wrong")
    settings_file = tmp_path / "s.toml"
    settings_file.write_text(
        f'[satu]\nbase_url = "{sandbox.url}"\nmax_retries = 0\n'
        f'[orders]\ninbox = "{tmp_path / "inbox"}"\n[journal]\npath = "{tmp_path / "j.sqlite"}"\n'
        f'log_file = "{tmp_path / "s.log"}"\nstate_path = "{tmp_path / "st.sqlite"}"\n',
        encoding="utf-8",
    )
    out = CliRunner().invoke(cli, ["--settings", str(settings_file), "orders", "fetch"])
    assert out.exit_code == 1 and "token" in out.output.lower()


def test_orders_behind_the_cursor_within_the_overlap_are_still_downloaded(demo_env, sandbox, monkeypatch):
    """Issue 13: an order Satu dates before the cursor (a late write, a clock or zone mix-up) is not
    lost while it is inside `[orders] fetch_overlap_hours`; the versions already there stay single."""
    from datetime import datetime, timedelta

    from pipeline.satu.api import SATU_TZ, format_response_date

    s = _settings(demo_env, sandbox, monkeypatch)
    first = sandbox.create_orders(4, seed=5)
    assert _fetch(s).written == 4
    late = format_response_date(datetime.now(SATU_TZ) - timedelta(hours=3))
    sandbox.create_orders(orders=[{**first[0], "date_created": late, "date_modified": late}])
    again = _fetch(s)
    assert (again.written, again.already) == (1, 4)
    narrow = s.replace(orders=replace(s.orders, fetch_overlap_hours=1))
    later = format_response_date(datetime.now(SATU_TZ) - timedelta(hours=2))
    sandbox.create_orders(orders=[{**first[1], "date_created": later, "date_modified": later}])
    assert _fetch(narrow).written == 0  # outside a 1-hour overlap: this is what the wide default prevents


def test_new_sandbox_orders_are_dated_now_so_every_run_downloads_all_of_them(demo_env, sandbox, monkeypatch):
    """Issue 13: the second `make demo` downloaded 1 of the 6 orders its sandbox had just made."""
    s = _settings(demo_env, sandbox, monkeypatch)
    for run in range(3):
        sandbox.create_orders(6, seed=20 + run)
        result = _fetch(s)
        assert result.written == 6, f"run {run + 1}: {result.summary()}"
