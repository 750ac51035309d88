"""Fast pushes, full re-assertion, reconciliation and import by URL, against the sandbox over HTTP."""

from __future__ import annotations

import dataclasses
import time
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import make_settings
from pipeline.devtools.sandbox import SandboxServer
from pipeline.journal import Journal
from pipeline.satu.client import SatuAuthError, SatuClient
from pipeline.satu.push import (
    ACKED_NS,
    FEED_NS,
    META_NS,
    OUTBOX_KIND,
    _sold_out_first,
    desired_state,
    reconcile,
    request_import,
    run,
    to_item,
)
from pipeline.stage import StageResult, Status, outcome_of
from pipeline.state import State
from satu_helpers import feed_xml, offer_xml, serve_dir

TOKEN_ENV = "SATU_PUSH_TEST_TOKEN"


@pytest.fixture()
def sandbox(tmp_path: Path):
    server = SandboxServer(tmp_path / "sandbox", import_delay=0.05).start()
    yield server
    server.stop()


@pytest.fixture()
def env(tmp_path: Path, sandbox: SandboxServer, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, sandbox.token)
    settings = make_settings(
        tmp_path, satu={"base_url": sandbox.url, "token_env": TOKEN_ENV, "max_retries": 3}
    )
    journal, state = Journal.from_settings(settings), State.from_settings(settings)
    client = SatuClient(sandbox.url, sandbox.token, timeout=1, max_retries=3, backoff_base=0.01)
    yield settings, journal, state, client
    client.close()
    journal.close()
    state.close()


def _catalog(n: int, start: int = 1) -> dict[str, dict]:
    return {
        str(i): {
            "price": f"{1000 + i}.50" if i % 3 == 0 else str(1000 + i),
            "quantity": i % 7,
            "presence": "available" if i % 7 else "not_available",
            "name": f"Товар {i}",
        }
        for i in range(start, start + n)
    }


def _seed(sandbox: SandboxServer, state: State, catalog: dict[str, dict]) -> None:
    """Satu knows the products (as after a feed import) with stale stock; the feed stage wrote its record."""
    sandbox.put_products(
        [
            {"external_id": k, "name": v["name"], "price": 1, "quantity_in_stock": 99}
            for k, v in catalog.items()
        ]
    )
    state.put_many(FEED_NS, catalog.items())


def _matches(sandbox: SandboxServer, catalog: dict[str, dict]) -> bool:
    for k, v in catalog.items():
        p = sandbox.product(k)
        want = desired_state(v)
        if (
            Decimal(p["price"]).quantize(Decimal("0.01")) != Decimal(want["price"])
            or p["quantity_in_stock"] != want["quantity_in_stock"]
            or p["presence"] != want["presence"]
        ):
            return False
    return True


def _push(env, **kw):
    settings, journal, state, client = env
    return run(settings, journal=journal, state=state, client=client, **kw)


def test_pure_mapping():
    st = desired_state({"price": "1 950,5 ₸", "quantity": "2.75", "presence": "waiting"})
    assert st == {"price": "1950.50", "quantity_in_stock": 2, "presence": "waiting"}
    assert to_item("7", st) == {
        "id": "7",
        "quantity_in_stock": 2,
        "presence": "waiting",
        "presence_sure": True,
        "price": 1950.5,
    }
    assert to_item("8", desired_state({"price": "650", "quantity": -3}))["quantity_in_stock"] == 0
    items = {
        "1": {"quantity_in_stock": 5, "presence": "available"},
        "2": {"quantity_in_stock": 0, "presence": "available"},
        "10": {"quantity_in_stock": 3, "presence": "waiting"},
    }
    assert [k for k, _ in sorted(items.items(), key=_sold_out_first)] == ["2", "10", "1"]


def test_push_sends_only_changes_in_batches(env, sandbox: SandboxServer):
    settings, journal, state, client = env
    catalog = _catalog(250)
    _seed(sandbox, state, catalog)
    r = _push(env)
    assert (r.sent, r.accepted, r.requests, r.ok, r.full) == (250, 250, 3, True, True)
    assert _matches(sandbox, catalog)
    assert len(dict(state.items(ACKED_NS))) == 250
    r = _push(env)
    assert (r.changed, r.sent, r.requests, r.full) == (0, 0, 0, False)
    # stock and price move; one product becomes awaiting
    catalog["5"]["quantity"] = 0
    catalog["5"]["presence"] = "waiting"
    catalog["6"]["price"] = "7 777,70"
    catalog["8"]["quantity"] = 40
    state.put_many(FEED_NS, [(k, catalog[k]) for k in ("5", "6", "8")])
    r = _push(env)
    assert (r.changed, r.sent, r.accepted, r.requests) == (3, 3, 3, 1)
    assert sandbox.product("5")["presence"] == "waiting" and sandbox.product("5")["quantity_in_stock"] == 0
    assert Decimal(sandbox.product("6")["price"]) == Decimal("7777.70")
    assert _matches(sandbox, catalog)


@pytest.mark.parametrize("mode", ["429", "500", "timeout"])
def test_push_completes_after_transient_faults(env, sandbox: SandboxServer, mode: str):
    settings, journal, state, client = env
    catalog = _catalog(300)
    _seed(sandbox, state, catalog)
    sandbox.fail_next(2, mode, delay=2)
    r = _push(env)
    assert r.ok and r.accepted == 300 and r.outbox == 0
    assert r.requests == 3 + 2
    assert _matches(sandbox, catalog)


def test_nothing_is_acknowledged_that_satu_did_not_accept(env, sandbox: SandboxServer):
    settings, journal, state, client = env
    catalog = _catalog(120)
    _seed(sandbox, state, catalog)
    sandbox.delete_product("7")  # Satu does not know it (yet)
    catalog["9"]["presence"] = "someday"  # a value Satu refuses
    state.put(FEED_NS, "9", catalog["9"])
    sandbox.fail_next(1, "200-error", path="/products/edit_by_external_id")  # the first batch is refused
    r = _push(env)  # … once: a whole batch refused with HTTP 200 is sent again at once (issue 12)
    assert not r.ok
    assert r.accepted == 118 and r.rejected == 2  # only 7 and 9, item by item
    acked = dict(state.items(ACKED_NS))
    assert len(acked) == 118 and "7" not in acked and "9" not in acked
    assert sorted(k for k, *_ in state.outbox_due(OUTBOX_KIND, limit=1000)) == []  # backing off
    assert state.outbox_count(OUTBOX_KIND) == 2
    errors = {e.product_id: e.message for e in journal.search(stage="push", level="warning") if e.product_id}
    assert "not found" in errors["7"] and "presence" in errors["9"]
    # the product appears on Satu, the catalog value is fixed: both go through
    sandbox.put_products([{"external_id": "7", "price": 1, "quantity_in_stock": 50}])
    catalog["9"]["presence"] = "available"
    state.put(FEED_NS, "9", catalog["9"])
    r = _push(env)
    assert r.ok and r.accepted == 2 and r.outbox == 0
    assert _matches(sandbox, catalog)


def test_many_unknown_products_make_one_journal_event(env, sandbox: SandboxServer):
    settings, journal, state, client = env
    catalog = _catalog(40)
    _seed(sandbox, state, catalog)
    for k in [str(i) for i in range(1, 16)]:
        sandbox.delete_product(k)
    r = _push(env)
    assert r.rejected == 15 and r.accepted == 25
    [event] = [e for e in journal.search(stage="push", level="warning") if e.data and "product_ids" in e.data]
    assert sorted(event.data["product_ids"], key=int) == [str(i) for i in range(1, 16)]
    assert "not found" in event.message


def test_unreachable_satu_queues_everything_and_the_next_run_catches_up(env, sandbox: SandboxServer):
    settings, journal, state, client = env
    catalog = _catalog(250)
    _seed(sandbox, state, catalog)
    sandbox.fail_next(5, "503")
    r = _push(env)  # first batch: 1 try + 3 retries fail; Satu counts as unreachable
    assert not r.ok and r.accepted == 0 and r.unsent == 250 and r.outbox == 250
    assert dict(state.items(ACKED_NS)) == {}
    assert any("unreachable" in e.message for e in journal.search(stage="push", level="error"))
    r = _push(env)  # one fault left: retried inside the run
    assert r.ok and r.accepted == 250 and r.outbox == 0
    assert _matches(sandbox, catalog)


def test_outbox_never_sends_a_stale_value(env, sandbox: SandboxServer):
    settings, journal, state, client = env
    catalog = _catalog(10)
    _seed(sandbox, state, catalog)
    assert _push(env).ok
    state.put(FEED_NS, "3", {**catalog["3"], "quantity": 0})
    sandbox.fail_next(4, "500")
    assert not _push(env).ok
    assert state.outbox_count(OUTBOX_KIND) == 1
    state.put(FEED_NS, "3", catalog["3"])  # back to what Satu already has
    r = _push(env)
    assert r.changed == 0 and r.sent == 1 and r.accepted == 1 and r.outbox == 0
    assert sandbox.product("3")["quantity_in_stock"] == catalog["3"]["quantity"]


def test_full_reassertion_repairs_a_lost_update(env, sandbox: SandboxServer):
    settings, journal, state, client = env
    catalog = _catalog(30)
    _seed(sandbox, state, catalog)
    assert _push(env).full
    sandbox.put_products([{"external_id": "7", "quantity_in_stock": 12, "presence": "available"}])  # drift
    assert _push(env).sent == 0  # the local record believes Satu is right
    state.put(META_NS, "last_full", time.time() - 7 * 3600)  # full_push_hours = 6 has passed
    r = _push(env)
    assert r.full and r.sent == 30 and r.accepted == 30
    assert (
        sandbox.product("7")["quantity_in_stock"] == 0 and sandbox.product("7")["presence"] == "not_available"
    )
    assert _push(env, full=True).sent == 30
    assert not _push(env).full


def test_products_that_leave_the_catalog_become_unavailable(env, sandbox: SandboxServer):
    settings, journal, state, client = env
    catalog = _catalog(40)
    _seed(sandbox, state, catalog)
    assert _push(env).ok
    state.delete(FEED_NS, "12")
    r = _push(env)
    assert r.gone == 1 and r.accepted == 1
    assert (
        sandbox.product("12")["presence"] == "not_available"
        and sandbox.product("12")["quantity_in_stock"] == 0
    )
    assert _push(env).sent == 0
    # a mass drop looks like a broken catalog run: refused unless --full
    for k in [str(i) for i in range(1, 30)]:
        state.delete(FEED_NS, k)
    r = _push(env)
    assert not r.ok and r.gone == 0
    assert sandbox.product("2")["presence"] == "available"
    r = _push(env, full=True)
    assert r.gone == 28 and sandbox.product("2")["presence"] == "not_available"


def test_no_token_skips_with_a_warning(env, sandbox: SandboxServer, monkeypatch):
    settings, journal, state, client = env
    _seed(sandbox, state, _catalog(5))
    monkeypatch.delenv(TOKEN_ENV)
    r = run(settings, journal=journal, state=state)
    assert r.skipped and r.sent == 0
    assert any(TOKEN_ENV in e.message for e in journal.search(stage="push", level="warning"))
    monkeypatch.setenv(TOKEN_ENV, sandbox.token)
    r = run(settings, journal=journal, state=state)  # the client from [satu] settings
    assert r.ok and r.accepted == 5


def test_auth_failure_is_raised_and_journaled(env, sandbox: SandboxServer):
    settings, journal, state, client = env
    _seed(sandbox, state, _catalog(5))
    with SatuClient(sandbox.url, "expired") as bad, pytest.raises(SatuAuthError):
        run(settings, journal=journal, state=state, client=bad)
    assert [e.level for e in journal.search(stage="push", level="critical")] == ["critical"]
    assert dict(state.items(ACKED_NS)) == {}


def test_reconcile_reports_and_fixes(env, sandbox: SandboxServer, tmp_path: Path):
    settings, journal, state, client = env
    catalog = _catalog(20)
    _seed(sandbox, state, catalog)
    assert _push(env).ok
    sandbox.put_products(
        [
            {"external_id": "1", "price": 5},
            {"external_id": "2", "quantity_in_stock": 77},
            {"external_id": "3", "presence": "waiting"},
            {"external_id": "old-99", "price": 10, "quantity_in_stock": 4},
        ]
    )
    sandbox.delete_product("4")
    r = reconcile(settings, journal=journal, state=state, client=client)
    assert (r.price, r.stock, r.presence, r.missing, r.extra) == (["1"], ["2"], ["3"], ["4"], ["old-99"])
    assert not r.ok and r.differences == 5
    assert sandbox.product("1")["price"] == "5"  # a report changes nothing
    site = tmp_path / "site"
    site.mkdir()
    (site / "satu.yml").write_text(
        feed_xml(
            [
                offer_xml(k, price=v["price"], qty=v["quantity"], available=v["presence"] == "available")
                for k, v in catalog.items()
            ]
        ),
        encoding="utf-8",
    )
    with serve_dir(site) as base:
        r = reconcile(
            settings, journal=journal, state=state, client=client, fix=True, feed_url=f"{base}/satu.yml"
        )
        assert r.fixed == 4 and r.import_id and r.ok
        client.wait_import(r.import_id, poll=0.05, timeout=20)
    r = reconcile(settings, journal=journal, state=state, client=client)
    assert r.differences == 0 and r.ok
    assert sandbox.product("old-99")["presence"] == "not_available"


def test_request_import_journals_partial_errors_with_product_ids(env, sandbox: SandboxServer, tmp_path: Path):
    settings, journal, state, client = env
    site = tmp_path / "site"
    site.mkdir()
    (site / "satu.yml").write_text(
        feed_xml([offer_xml("1"), offer_xml("2", price="n/a"), offer_xml("3")]), encoding="utf-8"
    )
    with serve_dir(site) as base:
        r = request_import(
            settings, journal=journal, state=state, feed_url=f"{base}/satu.yml", poll=0.05, client=client
        )
    assert (r.status, r.created, r.errors, r.ok) == ("PARTIAL", 2, 1, False)
    [err] = [e for e in journal.search(stage="import", level="warning") if e.product_id]
    assert err.product_id == "2" and "price" in err.message
    assert state.get("satu.import", "last")["status"] == "PARTIAL"
    with serve_dir(site) as base:
        (site / "satu.yml").write_text(feed_xml([offer_xml("1"), offer_xml("3")]), encoding="utf-8")
        r = request_import(
            settings, journal=journal, state=state, feed_url=f"{base}/satu.yml", poll=0.05, client=client
        )
    assert r.status == "SUCCESS" and r.ok


def test_awaiting_presence_is_set_again_after_an_import(env, sandbox: SandboxServer, tmp_path: Path):
    settings, journal, state, client = env
    catalog = _catalog(6)
    catalog["3"].update(quantity=0, presence="waiting")
    _seed(sandbox, state, catalog)
    assert _push(env).ok and sandbox.product("3")["presence"] == "waiting"
    site = tmp_path / "site"
    site.mkdir()
    # the feed cannot say "awaiting": it publishes the product as not available
    (site / "satu.yml").write_text(
        feed_xml(
            [
                offer_xml(k, price=v["price"], qty=v["quantity"], available=v["presence"] == "available")
                for k, v in catalog.items()
            ]
        ),
        encoding="utf-8",
    )
    with serve_dir(site) as base:
        assert request_import(
            settings, journal=journal, state=state, feed_url=f"{base}/satu.yml", poll=0.05, client=client
        ).ok
    assert sandbox.product("3")["presence"] == "not_available"
    r = _push(env)
    assert (r.sent, r.accepted) == (1, 1)
    assert sandbox.product("3")["presence"] == "waiting"


def test_import_after_publish_uses_the_public_feed_url(env, sandbox: SandboxServer, tmp_path: Path):
    from pipeline.satu.push import after_publish, feed_url

    settings, journal, state, client = env
    assert after_publish(settings, journal=journal, state=state) is None  # off by default
    site = tmp_path / "public"
    site.mkdir()
    (site / "satu.yml").write_text(feed_xml([offer_xml("1"), offer_xml("2")]), encoding="utf-8")
    with serve_dir(site) as base:
        on = make_settings(
            tmp_path,
            satu={"base_url": sandbox.url, "token_env": TOKEN_ENV, "import_after_publish": True},
            publish={"public_base_url": base + "/"},
        )
        assert feed_url(on) == f"{base}/satu.yml"
        r = after_publish(on, journal=journal, state=state, poll=0.05)  # the default 5 s is for the real Satu
        assert r is not None and r.ok and r.status == "SUCCESS" and r.created == 2
    assert state.get("satu.import", "last")["url"] == f"{base}/satu.yml"


def test_push_and_reconcile_commands(tmp_path: Path, sandbox: SandboxServer, monkeypatch):
    from pipeline.cli import cli

    monkeypatch.setenv(TOKEN_ENV, sandbox.token)
    f = tmp_path / "settings.toml"
    f.write_text(
        f'[satu]\nbase_url = "{sandbox.url}"\ntoken_env = "{TOKEN_ENV}"\n'
        '[journal]\npath = "j.sqlite"\nlog_file = "sync.log"\nstate_path = "state.sqlite"\n',
        encoding="utf-8",
    )
    state = State(tmp_path / "state.sqlite")
    catalog = _catalog(15)
    _seed(sandbox, state, catalog)
    runner = CliRunner()
    out = runner.invoke(cli, ["--settings", str(f), "push"])
    assert out.exit_code == 0, out.output
    assert "15 accepted" in out.output
    sandbox.put_products([{"external_id": "2", "quantity_in_stock": 500}])
    out = runner.invoke(cli, ["--settings", str(f), "reconcile"])
    assert out.exit_code == 1 and "stock" in out.output
    out = runner.invoke(cli, ["--settings", str(f), "reconcile", "--fix"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["--settings", str(f), "push", "--full"])
    assert out.exit_code == 0 and "Full re-assertion" in out.output
    state.close()


def test_stop_request_ends_the_push_between_batches_with_the_sent_ones_saved(env, sandbox: SandboxServer):
    """A stop asked after the first batch: that batch stays acknowledged, the rest goes next run."""
    settings, journal, state, client = env
    catalog = _catalog(250)
    _seed(sandbox, state, catalog)
    asked: list[int] = []

    def stop_after_first_batch() -> bool:
        asked.append(1)
        return len(asked) > 1

    r = _push(env, should_stop=stop_after_first_batch)
    assert r.interrupted and r.sent == 100 and r.accepted == 100
    assert isinstance(r, StageResult) and outcome_of("push", r).status is Status.STOPPED
    assert len(dict(state.items(ACKED_NS))) == 100
    again = _push(env)
    # the interrupted run did not record its full re-assertion as done: the next one owes it
    assert again.ok and not again.interrupted and again.full and _matches(sandbox, catalog)


def test_imports_after_publish_are_spaced_by_import_min_hours_unless_products_are_missing(
    env, sandbox: SandboxServer, tmp_path: Path
):
    from pipeline.satu.push import after_publish, missing_on_satu  # re-exported from import_gate

    settings, journal, state, client = env
    site = tmp_path / "public"
    site.mkdir()
    catalog = _catalog(3)
    (site / "satu.yml").write_text(feed_xml([offer_xml(k) for k in catalog]), encoding="utf-8")
    state.put_many(FEED_NS, catalog.items())
    with serve_dir(site) as base:
        on = make_settings(
            tmp_path,
            satu={"base_url": sandbox.url, "token_env": TOKEN_ENV, "import_after_publish": True},
            publish={"public_base_url": base + "/"},
        )
        first = after_publish(on, journal=journal, state=state, poll=0.05)
        assert first is not None and first.status == "SUCCESS" and len(sandbox.imports()) == 1
        assert state.get("satu.import", "started")["id"] == first.import_id
        assert run(on, journal=journal, state=state, client=client, full=True).accepted == 3  # acknowledged
        assert missing_on_satu(state) == []
        # Within [satu] import_min_hours (default 4) and nothing missing: no import is started.
        second = after_publish(on, journal=journal, state=state, poll=0.05)
        assert second is not None and second.skipped and second.import_id is None
        assert len(sandbox.imports()) == 1
        assert any("no product missing on Satu" in e.message for e in journal.search(stage="import"))
        # A new product in the feed is missing on Satu: only an import creates it, so it goes now.
        catalog.update(_catalog(1, start=4))
        state.put_many(FEED_NS, catalog.items())
        (site / "satu.yml").write_text(feed_xml([offer_xml(k) for k in catalog]), encoding="utf-8")
        third = after_publish(on, journal=journal, state=state, poll=0.05)
        assert third is not None and not third.skipped and third.created == 1 and len(sandbox.imports()) == 2
        # import_min_hours = 0: every publish imports
        sandbox.import_min_gap = 0
        off = on.replace(satu=dataclasses.replace(on.satu, import_min_hours=0))
        assert not after_publish(off, journal=journal, state=state, poll=0.05).skipped
        assert len(sandbox.imports()) == 3


def test_the_push_holds_a_page_of_offers_not_the_whole_record(env, sandbox: SandboxServer):
    """Peak memory of a first push (everything in the feed) does not grow with the record: four times
    the offers, about the same peak (before: every offer's desired state, the plan and its sorted copy)."""
    import tracemalloc

    settings, journal, state, client = env
    peaks = []
    for start, n in ((1, 500), (10_001, 2000)):
        catalog = _catalog(n, start)
        state.delete(FEED_NS)
        _seed(sandbox, state, catalog)
        tracemalloc.start()
        try:
            r = _push(env, full=True)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert r.ok and r.accepted >= n and _matches(sandbox, catalog)
    assert peaks[1] < peaks[0] * 1.3, peaks
