"""`orders reconcile`: Satu orders of the last days that reached neither the inbox nor Torgsoft.

The sandbox over real HTTP, a real inbox folder, the embedded Firebird demo database.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.devtools.sandbox import SandboxServer, satu_time
from pipeline.journal import Journal
from pipeline.orders import fetch, inbox, reconcile
from pipeline.orders.fetch import SEEN_NS
from pipeline.settings import Settings
from pipeline.state import State


@pytest.fixture()
def sandbox(tmp_path: Path):
    server = SandboxServer(tmp_path / "sandbox").start()
    yield server
    server.stop()


def _settings(env: Settings, server: SandboxServer, monkeypatch, **orders) -> Settings:
    monkeypatch.setenv("SATU_TOKEN", server.token)
    return env.replace(
        satu=replace(env.satu, base_url=server.url, max_retries=1),
        orders=replace(env.orders, settle_seconds=0, **orders),
    )


def _stores(s: Settings) -> dict:
    return {"journal": Journal.from_settings(s), "state": State.from_settings(s)}


def _dated(sandbox: SandboxServer, days_back: float, n: int, seed: int) -> list[int]:
    """`n` orders placed and last changed `days_back` days ago (behind any download cursor)."""
    made = sandbox.create_orders(n, seed=seed, products=[("1", "ART-000001", "Товар 1", 1000)])
    when = satu_time(datetime.now(UTC) - timedelta(days=days_back))
    return [_backdate(sandbox, o["id"], when) for o in made]


def _backdate(sandbox: SandboxServer, oid: int, when: str) -> int:
    with sandbox._lock:
        o = sandbox.order(oid)
        assert o is not None
        o.update(date_created=when, date_modified=when)
        sandbox._save_order(o)
    return oid


def test_reconcile_finds_what_the_download_missed_and_fix_brings_it_in(demo_env, sandbox, monkeypatch):
    s = _settings(demo_env, sandbox, monkeypatch)
    stores = _stores(s)
    fresh = [o["id"] for o in sandbox.create_orders(4, seed=1)]
    assert fetch.run(s, **stores).written == 4
    missed = _dated(sandbox, 2, 2, seed=2)  # placed two days ago: behind the cursor and its overlap
    old = _dated(sandbox, 20, 1, seed=3)  # outside the 14 days
    assert fetch.run(s, **stores).written == 0  # the download really misses them
    r = reconcile.run(s, **stores)
    assert (r.checked, r.in_inbox, r.in_torgsoft) == (6, 4, 0)
    assert r.missing == sorted(missed) and r.fixed == [] and not r.ok
    assert "neither in the inbox nor in Torgsoft" in r.problems[0]
    assert not set(old) & set(r.missing)
    assert reconcile.run(s, **stores, days=30).missing == sorted(missed + old)
    # --fix: downloaded through the fetch writer, recorded, and the importer takes them
    r = reconcile.run(s, **stores, fix=True)
    assert r.fixed == sorted(missed) and r.ok
    names = sorted(p.name for p in Path(s.orders.inbox).glob("*.json"))
    assert sum(name.startswith(f"satu-order-{oid}-") for oid in missed for name in names) == 2
    assert all(stores["state"].get(SEEN_NS, str(oid)) for oid in missed)
    warnings = [e for e in stores["journal"].search(stage="orders", level="warning") if e.order_id]
    assert sorted(int(e.order_id) for e in warnings) == sorted(missed)
    assert inbox.run(s, **stores).imported == 6
    assert reconcile.run(s, **stores).missing == []
    assert set(fresh) <= reconcile.inbox_ids(Path(s.orders.inbox))


def test_an_order_only_in_torgsoft_is_not_missing(demo_env, sandbox, monkeypatch):
    s = _settings(demo_env, sandbox, monkeypatch)
    stores = _stores(s)
    [oid] = [o["id"] for o in sandbox.create_orders(1, seed=4)]
    fetch.run(s, **stores)
    assert inbox.run(s, **stores).imported == 1
    # the inbox loses every trace of it (files moved away, the fetch record gone): Torgsoft still has it
    shutil.rmtree(Path(s.orders.inbox))
    stores["state"].delete(SEEN_NS, str(oid))
    r = reconcile.run(s, **stores)
    assert (r.checked, r.in_inbox, r.in_torgsoft, r.missing) == (1, 0, 1, [])
    # with order files Torgsoft cannot be asked: then the order is missing
    r = reconcile.run(replace_sink(s), **stores)
    assert r.missing == [oid]


def replace_sink(s: Settings) -> Settings:
    return s.replace(orders=replace(s.orders, sink="torgsoft-json"))


def test_an_unreachable_satu_is_an_error_in_the_result(demo_env, sandbox, monkeypatch):
    s = _settings(demo_env, sandbox, monkeypatch)
    sandbox.fail_next(10, "503")
    r = reconcile.run(s, **_stores(s))
    assert not r.ok and r.errors and r.missing == []


def test_orders_reconcile_command(demo_env, sandbox, monkeypatch, tmp_path: Path):
    from pipeline.cli import cli

    monkeypatch.setenv("SATU_TOKEN", sandbox.token)
    missed = _dated(sandbox, 3, 1, seed=5)
    settings = tmp_path / "cli-settings.toml"
    settings.write_text(
        "\n".join(
            [
                "[torgsoft]",
                f'database = "{demo_env.torgsoft.database}"',
                "[satu]",
                f'base_url = "{sandbox.url}"',
                "max_retries = 0",
                "[orders]",
                f'inbox = "{tmp_path / "cli-inbox"}"',
                "[journal]",
                f'path = "{tmp_path / "j.sqlite"}"',
                f'state_path = "{tmp_path / "s.sqlite"}"',
                f'lock_file = "{tmp_path / "run.lock"}"',
                f'log_file = "{tmp_path / "sync.log"}"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    run = CliRunner().invoke
    r = run(cli, ["--settings", str(settings), "orders", "reconcile", "--json"])
    assert r.exit_code == 1, r.output
    data = json.loads(r.stdout)
    assert (data["missing"], data["fixed"], data["ok"]) == (missed, [], False)
    r = run(cli, ["--settings", str(settings), "orders", "reconcile", "--fix"])
    assert r.exit_code == 0, r.output
    assert "1 downloaded into the inbox" in r.output
    r = run(cli, ["--settings", str(settings), "orders", "reconcile", "--days", "1"])
    assert r.exit_code == 0 and "0 Satu order(s) of the last 1 day(s)" in r.output
