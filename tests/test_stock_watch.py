"""The stock watcher (issue 17): change detection with and without the change query, the record it
keeps, pushes through the acknowledged path to the Satu sandbox over HTTP, refusals into the outbox,
and the shared request budget. Real embedded Firebird (the demo database), real HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import ROOT
from pipeline import feed
from pipeline.contracts import feed_offers
from pipeline.contracts.feed_offers import FeedOffer
from pipeline.devtools.sandbox import SandboxServer
from pipeline.feed.commit import update_offers
from pipeline.feed.history import SnapRow
from pipeline.journal import Journal
from pipeline.model import Stock
from pipeline.satu import push
from pipeline.satu.budget import RequestBudget
from pipeline.satu.client import SatuClient
from pipeline.state import State
from pipeline.stock.levels import HIDDEN, GoodLevel, available_units, zero_stock_presence
from pipeline.stock.watch import HIDDEN_NS, StockWatcher, plan_change
from pipeline.torgsoft.connection import connect

TOKEN_ENV = "STOCK_WATCH_TEST_TOKEN"


# --- pure rules -------------------------------------------------------------------------------------------


def test_available_units_is_whole_units_over_the_centers():
    stocks = [
        Stock(1, Decimal("5.7"), Decimal("1")),
        Stock(2, Decimal("3"), Decimal("4")),
        Stock(3, Decimal(9)),
    ]
    assert available_units(stocks) == 12  # 4.7 − 1 + 9 = 12.7 → 12
    assert available_units(stocks, [1, 2]) == 3  # 4.7 − 1 = 3.7 → 3
    assert available_units(stocks, [2]) == 0  # −1 is nothing to sell, never negative
    assert zero_stock_presence(3, zero_stock="hide") == "available"
    assert zero_stock_presence(0, zero_stock="hide") == HIDDEN
    assert zero_stock_presence(0, zero_stock="awaiting") == "waiting"
    assert zero_stock_presence(0, zero_stock="awaiting", only_in_stock=True) == HIDDEN


def test_plan_change_follows_the_feed_rules():
    record = FeedOffer("1500", 4, "available", (("1400", "10"),))
    same = GoodLevel(7, 4, Decimal("1500.00"))
    assert plan_change(same, record, None, zero_stock="hide") is None
    sold = plan_change(GoodLevel(7, 3, Decimal("1500")), record, None, zero_stock="hide")
    assert sold is not None and sold.offer == FeedOffer("1500", 3, "available", (("1400", "10"),))
    revalued = plan_change(GoodLevel(7, 4, Decimal("1650.50")), record, None, zero_stock="hide")
    assert revalued is not None and revalued.offer.price == "1650.5"
    gone = plan_change(GoodLevel(7, 0, Decimal("1500")), record, None, zero_stock="hide")
    assert gone is not None and gone.hide
    waiting = plan_change(GoodLevel(7, 0, Decimal("1500")), record, None, zero_stock="awaiting")
    assert waiting is not None and (waiting.hide, waiting.offer.presence) == (False, "waiting")
    back = plan_change(GoodLevel(7, 2, Decimal("1500")), None, record, zero_stock="hide")
    assert back is not None and back.restored and back.offer.quantity == 2
    assert (
        plan_change(GoodLevel(7, 2, Decimal("1500")), None, None, zero_stock="hide") is None
    )  # never offered
    assert (
        plan_change(GoodLevel(7, 2, Decimal("1500"), listed=False), record, None, zero_stock="hide") is None
    )


# --- the request budget -------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_budget_is_a_token_bucket_shared_through_the_state_file(tmp_path: Path):
    clock = FakeClock()
    a = RequestBudget(State(tmp_path / "state.sqlite"), 30, clock=clock.time, sleep=clock.sleep)
    b = RequestBudget(State(tmp_path / "state.sqlite"), 30, clock=clock.time, sleep=clock.sleep)
    for _ in range(20):
        assert a.take() == 0
    for _ in range(10):
        assert b.take() == 0  # the second holder sees the same bucket: 10 tokens left, not 30
    assert b.take() == pytest.approx(2.0, abs=0.05)  # empty: one token every 2 s at 30/min
    assert a.take() == pytest.approx(2.0, abs=0.05)
    clock.now += 600  # a long pause refills to N, never beyond
    assert sum(a.take() for _ in range(30)) == 0
    assert a.take() > 1.9
    assert RequestBudget(a.state, 0, clock=clock.time, sleep=clock.sleep).take() == 0  # 0 = no limit


def test_budget_is_shared_with_another_process(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    State(path).close()
    child = (
        "import sys; from pipeline.state import State; from pipeline.satu.budget import RequestBudget;"
        "b = RequestBudget(State(sys.argv[1]), 6); [b.take() for _ in range(5)]"
    )
    subprocess.run([sys.executable, "-c", child, str(path)], cwd=ROOT, check=True, timeout=60)
    budget = RequestBudget(State(path), 6)
    t0 = time.monotonic()
    budget.take()  # the last token the child left
    budget.take()  # none left: one comes every 10 s at 6/min
    assert time.monotonic() - t0 > 8


def test_the_full_push_draws_on_the_budget(tmp_path: Path, sandbox, monkeypatch):
    from conftest import make_settings

    monkeypatch.setenv(TOKEN_ENV, sandbox.token)
    settings = make_settings(tmp_path, satu={"base_url": sandbox.url, "token_env": TOKEN_ENV})
    journal, state = Journal.from_settings(settings), State.from_settings(settings)
    offers = {str(i): {"price": "1000", "quantity": i % 5, "presence": "available"} for i in range(1, 251)}
    sandbox.put_products([{"external_id": k, "name": f"Товар {k}", "price": 1} for k in offers])
    state.put_many(push.FEED_NS, offers.items())
    clock = FakeClock()
    client = SatuClient(sandbox.url, sandbox.token, timeout=5, max_retries=1)
    client.budget = RequestBudget(state, 2, clock=clock.time, sleep=clock.sleep)  # 2 a minute
    try:
        r = push.run(settings, journal=journal, state=state, client=client)
    finally:
        client.close()
    assert (r.requests, r.accepted) == (3, 250)
    assert sum(clock.slept) == pytest.approx(30, abs=0.5)  # the third request waited for its token


# --- the watcher against the demo database and the sandbox ---------------------------------------------------


@pytest.fixture()
def sandbox(tmp_path: Path):
    server = SandboxServer(tmp_path / "sandbox", import_delay=0.05).start()
    yield server
    server.stop()


def _setup(demo_env, sandbox: SandboxServer, monkeypatch, **torgsoft):
    """Feed built and imported by Satu, then pushed: Satu and the record agree."""
    monkeypatch.setenv(TOKEN_ENV, sandbox.token)
    satu = {"base_url": sandbox.url, "token_env": TOKEN_ENV, "max_retries": 1, "max_requests_per_minute": 0}
    settings = demo_env.replace(
        satu=type(demo_env.satu)(**{**demo_env.satu.__dict__, **satu}),
        torgsoft=type(demo_env.torgsoft)(**{**demo_env.torgsoft.__dict__, **torgsoft}),
    )
    journal, state = Journal.from_settings(settings), State.from_settings(settings)
    assert feed.run(settings, journal=journal, state=state).ok
    sandbox.load_feed_file(settings.feed.output)
    client = SatuClient(sandbox.url, sandbox.token, timeout=5, max_retries=1, backoff_base=0.01)
    assert push.run(settings, journal=journal, state=state, client=client).ok
    return settings, journal, state, client


def _sql(settings, statement: str, *args) -> None:
    con = connect(settings)
    try:
        con.cursor().execute(statement, args)
        con.commit()
    finally:
        con.close()


def _pick(state: State, min_qty: int = 3) -> str:
    for oid, offer in feed_offers.items(state):
        if offer.presence == "available" and int(offer.quantity) >= min_qty:
            return oid
    raise AssertionError("no offer with stock in the demo feed")


def _sell_one(settings, good: str) -> None:
    """One unit sold at the center that has the most of it (the first such row)."""
    _sql(
        settings,
        "UPDATE GOOD_STOCK SET QTY = QTY - 1 WHERE GOOD_ID = ? AND ACCOUNTING_CENTER_ID = "
        "(SELECT FIRST 1 ACCOUNTING_CENTER_ID FROM GOOD_STOCK WHERE GOOD_ID = ? ORDER BY QTY - RESERVED_QTY DESC)",
        int(good),
        int(good),
    )


@pytest.mark.parametrize("change_query", [True, False], ids=["change-query", "hash"])
def test_watcher_pushes_a_sale_a_revaluation_a_sell_out_and_a_restock(
    demo_env, sandbox, monkeypatch, change_query
):
    settings, journal, state, client = _setup(demo_env, sandbox, monkeypatch, change_query=change_query)
    watcher = StockWatcher(settings)
    try:
        first = watcher.tick(journal=journal, state=state, client=client)
        assert first.ok and first.read > 0
        assert (first.updated, first.sent) == (0, 0)  # Satu and the record agree already
        idle = watcher.tick(journal=journal, state=state, client=client)
        assert (idle.updated, idle.sent, idle.requests) == (0, 0, 0)
        if change_query:
            assert idle.read == 0  # nothing changed since the cursor: no good read at all

        good = _pick(state)
        before = int(feed_offers.read_all(state)[good].quantity)
        _sell_one(settings, good)
        sale = watcher.tick(journal=journal, state=state, client=client)
        assert (sale.updated, sale.accepted, sale.requests) == (1, 1, 1)
        assert sandbox.product(good)["quantity_in_stock"] == before - 1
        assert feed_offers.read_all(state)[good].quantity == before - 1  # the record follows
        # the next full exchange has nothing to resend
        assert push.run(settings, journal=journal, state=state, client=client).sent == 0

        _sql(settings, "UPDATE GOOD_PRICE SET RETAIL_PRICE = 777.5 WHERE GOOD_ID = ?", int(good))
        assert watcher.tick(journal=journal, state=state, client=client).accepted == 1
        assert Decimal(sandbox.product(good)["price"]) == Decimal("777.5")

        _sql(settings, "UPDATE GOOD_STOCK SET QTY = RESERVED_QTY WHERE GOOD_ID = ?", int(good))
        out = watcher.tick(journal=journal, state=state, client=client)
        assert (out.hidden, out.accepted) == (1, 1)
        p = sandbox.product(good)
        assert (p["quantity_in_stock"], p["presence"]) == (0, "not_available")
        assert good not in feed_offers.read_all(state) and state.get(HIDDEN_NS, good) is not None

        _sql(settings, "UPDATE GOOD_STOCK SET QTY = RESERVED_QTY + 4 WHERE GOOD_ID = ?", int(good))
        back = watcher.tick(journal=journal, state=state, client=client)
        assert (back.restored, back.accepted) == (1, 1)
        p = sandbox.product(good)
        assert p["presence"] == "available" and p["quantity_in_stock"] >= 4
        assert state.get(HIDDEN_NS, good) is None
        batches = [e for e in journal.search(stage="stock") if "stock updates" in e.message]
        assert len(batches) == 4  # one journal event per push batch: sale, price, sell-out, restock
    finally:
        watcher.close()
        client.close()


@pytest.mark.parametrize("many", [False, True], ids=["by-bucket", "every-good"])
def test_the_hash_read_folds_goods_into_buckets_and_finds_exactly_the_changed_goods(
    demo_env, monkeypatch, many
):
    from pipeline.stock import detect
    from pipeline.torgsoft.mapping import Mapping

    if many:  # more changed buckets than MANY_BUCKETS: every good's digest is read again
        monkeypatch.setattr(detect, "MANY_BUCKETS", 0)
    t = demo_env.torgsoft
    detector = detect.ChangeDetector(
        Mapping(t.mapping_dir), centers=t.accounting_centers, price_center=t.price_center, change_query=False
    )
    con = connect(demo_env)
    try:
        goods = [
            int(r[0]) for r in con.cursor().execute("SELECT DISTINCT GOOD_ID FROM GOOD_STOCK").fetchall()
        ]
        con.commit()
        first = detector.detect(con, None)
        assert first.full and {lv.good_id for lv in first.levels} == set(goods)
        detector.commit(first)
        idle = detector.detect(con, None)
        buckets = {detect._bucket(g) for g in goods}
        assert (idle.levels, idle.read) == ([], len(buckets))  # one row per bucket, not per good
        detector.commit(idle)
        a, b = goods[0], goods[1]  # the same bucket (consecutive ids) …
        c = max(goods)  # … and another one
        assert detect._bucket(a) == detect._bucket(b) != detect._bucket(c)
        _sell_one(demo_env, str(a))
        _sql(demo_env, "UPDATE GOOD_PRICE SET RETAIL_PRICE = RETAIL_PRICE + 1 WHERE GOOD_ID = ?", b)
        _sql(demo_env, "UPDATE GOOD_STOCK SET RESERVED_QTY = RESERVED_QTY + 1 WHERE GOOD_ID = ?", c)
        changed = detector.detect(con, None)
        assert sorted(lv.good_id for lv in changed.levels) == sorted([a, b, c])
        detector.commit(changed)
        again = detector.detect(con, None)
        assert again.levels == []  # remembered: not found again
        _sql(demo_env, "UPDATE GOOD_STOCK SET QTY = QTY + 2 WHERE GOOD_ID = ?", a)
        assert [lv.good_id for lv in detector.detect(con, None).levels] == [a]  # not committed …
        assert [lv.good_id for lv in detector.detect(con, None).levels] == [a]  # … so found again
    finally:
        con.close()


def test_a_refused_push_goes_to_the_outbox(demo_env, sandbox, monkeypatch):
    settings, journal, state, client = _setup(demo_env, sandbox, monkeypatch)
    watcher = StockWatcher(settings)
    try:
        watcher.tick(journal=journal, state=state, client=client)
        good = _pick(state)
        acked = state.get(push.ACKED_NS, good)
        sandbox.delete_product(good)  # Satu no longer knows it: the edit is refused
        _sell_one(settings, good)
        r = watcher.tick(journal=journal, state=state, client=client)
        assert (r.updated, r.sent, r.accepted, r.rejected, r.ok) == (1, 1, 0, 1, False)
        assert state.outbox_count(push.OUTBOX_KIND) == 1
        assert state.get(push.ACKED_NS, good) == acked  # not acknowledged
        assert feed_offers.read_all(state)[good].quantity == int(acked["quantity_in_stock"]) - 1
    finally:
        watcher.close()
        client.close()


def test_a_feed_that_read_earlier_keeps_the_watchers_newer_record(tmp_path: Path):
    state = State(tmp_path / "state.sqlite")
    feed_offers.put_many(state, [("1", FeedOffer("100", 5)), ("2", FeedOffer("200", 5))])
    started = time.time() - 10  # the feed began reading 10 s ago …
    feed_offers.put_watched(state, [("1", FeedOffer("100", 4))], ["2"], at=time.time())  # … the watcher since
    snap = tmp_path / "snap.tsv"
    snap.write_text(
        SnapRow("1", "100", "5", "available").line() + SnapRow("2", "200", "5", "available").line()
    )
    update_offers(state, None, None, snap, started=started)
    offers = feed_offers.read_all(state)
    assert offers["1"].quantity == 4 and "2" not in offers  # no flip-flop back to the older stock
    update_offers(state, None, None, snap, started=time.time())  # a feed that read later wins
    assert feed_offers.read_all(state)["1"].quantity == 5


# --- in the service: an order that reserves the last units is pushed at once ---------------------------------


def test_serve_pushes_the_stock_an_imported_order_reserved(demo_env, sandbox, monkeypatch):
    import dataclasses
    import threading

    from order_factory import satu_order, write_order
    from pipeline.service import Service

    settings, journal, state, client = _setup(demo_env, sandbox, monkeypatch, accounting_centers=[1])
    client.close()
    con = connect(settings)
    try:
        cur = con.cursor()
        cur.execute(
            "SELECT s.GOOD_ID, s.QTY - s.RESERVED_QTY, g.ARTICUL FROM GOOD_STOCK s "
            "JOIN GOOD g ON g.GOOD_ID = s.GOOD_ID WHERE s.ACCOUNTING_CENTER_ID = 1 AND s.QTY - s.RESERVED_QTY >= 1 "
            "ORDER BY s.GOOD_ID"
        )
        rows = [r for r in cur.fetchall() if str(r[0]) in feed_offers.read_all(state)]
    finally:
        con.close()
    assert rows, "the demo feed has goods in stock at center 1"
    good, available, articul = str(rows[0][0]), int(rows[0][1]), rows[0][2]
    assert sandbox.product(good)["quantity_in_stock"] == available
    # An hour between ticks: only the order's import can make the watcher push within the test.
    settings = settings.replace(
        schedule=dataclasses.replace(settings.schedule, stock_seconds=3600),
        web=dataclasses.replace(settings.web, enabled=False),
    )
    service = Service(settings, [], watcher=True, echo=None)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and state.get("stock.watch", "last") is None:
            time.sleep(0.2)
        assert state.get("stock.watch", "last") is not None  # the first tick ran at start
        line = {"external_id": good, "sku": articul or "", "quantity": available, "price": "1000 ₸"}
        write_order(Path(settings.orders.inbox), satu_order(91001, lines=[line]))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sandbox.product(good)["presence"] != "not_available":
            time.sleep(0.3)
        p = sandbox.product(good)
        assert (p["quantity_in_stock"], p["presence"]) == (0, "not_available")  # the last units are sold
    finally:
        service.stop()
        thread.join(timeout=60)
    assert any(e.message.startswith("stock watcher:") for e in journal.search(stage="stock"))


def test_a_long_push_sends_each_batch_with_the_record_of_that_moment(tmp_path: Path):
    """A full re-assertion under the budget may take minutes: a batch sends what the record says when it
    goes out (the watcher's newer stock, or gone), never the plan made at the start."""
    state = State(tmp_path / "state.sqlite")
    planned = [
        ("1", {"price": "100.00", "quantity_in_stock": 5, "presence": "available"}),
        ("2", {"price": "200.00", "quantity_in_stock": 5, "presence": "available"}),
    ]
    feed_offers.put_watched(state, [("1", FeedOffer("100", 2))], ["2"], at=time.time())
    assert push.current(state, planned) == [
        ("1", {"price": "100.00", "quantity_in_stock": 2, "presence": "available"}),
        ("2", {"price": "200.00", "quantity_in_stock": 0, "presence": "not_available", "gone": True}),
    ]
