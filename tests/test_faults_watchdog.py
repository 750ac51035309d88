"""Issue 12: a stalled import surfaces — the watchdog journals and alerts claimed work without progress."""

from __future__ import annotations

import threading
import time

from pipeline.journal import Journal
from pipeline.orders.watchdog import Watchdog


def test_claimed_work_without_progress_is_journaled_and_alerted_once(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    alerts: list[str] = []
    dog = Watchdog(journal, limit_seconds=0.3, alert=alerts.append, interval=0.05).start()
    stuck = threading.Event()
    release = threading.Event()

    def worker(name: str, hang: bool) -> None:
        dog.begin(name)
        if hang:
            stuck.set()
            release.wait(10)
        dog.end()

    quick = threading.Thread(target=worker, args=("quick.json", False), name="orders-import-0")
    slow = threading.Thread(target=worker, args=("stuck.json", True), name="orders-import-1")
    quick.start()
    slow.start()
    assert stuck.wait(5)
    deadline = time.monotonic() + 5
    while not alerts and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # further looks must not repeat the alert
    assert len(alerts) == 1 and "stuck.json" in alerts[0] and "orders-import-1" in alerts[0], alerts
    assert dog.stalled() and "stuck.json" in dog.stalled()[0]
    errors = [e.message for e in journal.search(level="error")]
    assert len(errors) == 1 and "stuck.json" in errors[0] and "no progress" in errors[0]
    release.set()
    slow.join(5)
    quick.join(5)
    dog.stop()
    assert dog.stalled() == []
    warnings = [e.message for e in journal.search(level="warning")]
    assert any("stuck.json" in w and "went on" in w for w in warnings), warnings
    assert not any("quick.json" in m for m in errors + warnings)


def test_a_hanging_import_in_the_watcher_is_journaled_and_alerted_while_it_hangs(demo_env):
    from dataclasses import replace

    from order_factory import satu_order, write_order
    from pipeline import _testing
    from pipeline.notify import RunReport, assess
    from pipeline.orders import inbox
    from pipeline.state import State

    s = demo_env.replace(orders=replace(demo_env.orders, settle_seconds=0, import_workers=1))
    journal, state = Journal.from_settings(s), State.from_settings(s)
    passes: list[inbox.InboxResult] = []
    hung = threading.Event()

    def hang() -> None:  # the first order's transaction stops inside the importer for a while
        if not hung.is_set():
            hung.set()
            time.sleep(2.0)

    _testing.on("importer.before_commit", hang)
    stop = threading.Event()
    watcher = threading.Thread(
        target=inbox.watch,
        kwargs=dict(
            settings=s,
            journal=journal,
            state=state,
            stop_event=stop,
            on_pass=passes.append,
            stall_seconds=0.5,
        ),
    )
    try:
        watcher.start()
        write_order(s.orders.inbox, satu_order(831))
        deadline = time.monotonic() + 20
        while not any(p.stalled for p in passes) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hung.is_set()
        stalled = [p for p in passes if p.stalled]
        assert len(stalled) == 1 and "order 831" in stalled[0].problems[0], passes
        while sum(p.imported for p in passes) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(p.imported for p in passes) == 1  # it went on: nothing lost
    finally:
        stop.set()
        watcher.join(20)
        _testing.clear()
    assert any("order 831" in e.message and "no progress" in e.message for e in journal.search(level="error"))
    messages, _ = assess(RunReport("watch", 0, results={"watch": stalled[0]}), settings=s, state=state)
    assert [m.key for m in messages if m.kind == "alert"] == ["inbox-stall"]
    _, cleared = assess(
        RunReport("watch", 0, results={"watch": inbox.InboxResult()}), settings=s, state=state
    )
    assert "inbox-stall" in cleared
