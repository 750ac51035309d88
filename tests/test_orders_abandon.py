"""A worker that never comes back from the database (issue 12): the pass still ends, its claim goes back.

A real client library can block for good (a forced shutdown of a Firebird server, a network that stops
answering; see orders/workers.py). Here the block is made at the importer's `before_commit` point of a
real import on the embedded demo database: the thread waits on an event the test holds, as a thread
stuck in C code would. Later the test lets it go on — it commits, as a late reply from the server
would — and checks that giving its file back was safe: the rerun imports every order exactly once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from order_factory import satu_order, write_order
from pipeline import _testing
from pipeline.journal import Journal
from pipeline.notify import RunReport, assess
from pipeline.orders import inbox
from pipeline.state import State
from test_orders_inbox import _files, _scalar


class Stuck:
    """Blocks the `nth` order at before_commit until `release()` (the other orders pass)."""

    def __init__(self, nth: int):
        self.nth, self.arrivals = nth, 0
        self.reached, self.go = threading.Event(), threading.Event()
        self.thread: threading.Thread | None = None

    def __call__(self) -> None:
        self.arrivals += 1
        if self.arrivals == self.nth:
            self.thread = threading.current_thread()
            self.reached.set()
            self.go.wait(60)

    def release(self) -> None:
        self.go.set()
        if self.thread is not None:
            self.thread.join(30)
            assert not self.thread.is_alive()


@pytest.fixture()
def stuck(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(inbox, "grace_seconds", lambda settings: 0.5)
    blocker = Stuck(3)
    _testing.on("importer.before_commit", blocker)
    yield blocker
    blocker.release()
    _testing.clear()


def _settings(demo_env):
    return demo_env.replace(orders=replace(demo_env.orders, settle_seconds=0, import_workers=1))


def _orders(box, n: int) -> list[str]:
    for i in range(n):
        write_order(box, satu_order(900 + i, phone="+7 701 000 00 01", email=""))
    return _files(box)


def _rerun_is_exactly_once(s, n: int) -> None:
    again = inbox.run(s, journal=Journal.from_settings(s), state=State.from_settings(s))
    assert again.ok, again.problems
    assert len(_files(s.orders.inbox / "done")) == n
    assert _scalar(s, "SELECT COUNT(*) FROM CUSTOMER_ORDER") == n
    assert _scalar(s, "SELECT COUNT(DISTINCT EXTERNAL_ID) FROM CUSTOMER_ORDER") == n


def test_a_stop_while_a_worker_hangs_in_the_database_ends_and_gives_the_claim_back(demo_env, stuck):
    s = _settings(demo_env)
    box = s.orders.inbox
    names = _orders(box, 6)
    journal, state = Journal.from_settings(s), State.from_settings(s)
    started = time.monotonic()
    result = inbox.run(s, journal=journal, state=state, should_stop=stuck.reached.is_set)
    seconds = time.monotonic() - started
    assert stuck.reached.is_set() and stuck.thread is not None and stuck.thread.is_alive()
    assert result.abandoned == 1 and result.unavailable and not result.ok
    assert seconds < 15, seconds  # the grace is 0.5 s here; without the bound it never ends
    assert _files(box / "processing") == [] and _files(box / "quarantine") == []
    assert len(_files(box / "done")) == 2
    waiting = [n for n in _files(box) if n.endswith(".json")]
    assert len(waiting) == 4 and set(waiting) < set(names)  # the hung order's file is back
    errors = [e.message for e in journal.search(level="error")]
    assert any("did not come back from the database after the stop" in m for m in errors), errors
    messages, _ = assess(RunReport("orders import", 1, results={"inbox": result}), settings=s, state=state)
    assert [m.key for m in messages if m.kind == "alert"] == ["inbox-stall"]  # a person is told
    # The thread was only waiting: let it commit late, as a server answering after all would.
    stuck.release()
    _rerun_is_exactly_once(s, 6)


def test_a_watcher_whose_worker_hangs_stops_by_itself_with_the_claim_given_back(demo_env, stuck):
    s = _settings(demo_env)
    box = s.orders.inbox
    _orders(box, 5)
    journal = Journal.from_settings(s)
    passes: list[inbox.InboxResult] = []
    done = threading.Event()
    total: list[inbox.InboxResult] = []

    def watcher() -> None:
        total.append(
            inbox.watch(
                s,
                journal=journal,
                state=State.from_settings(s),
                stop_event=threading.Event(),  # never set: the watcher must end by itself
                on_pass=passes.append,
                stall_seconds=0.5,
                rescan_seconds=0.5,
            )
        )
        done.set()

    threading.Thread(target=watcher, daemon=True).start()
    assert done.wait(30), "the watcher never ended although its worker was stuck"
    assert stuck.thread is not None and stuck.thread.is_alive()
    assert total[0].abandoned == 1 and total[0].stalled >= 1
    assert _files(box / "processing") == [] and _files(box / "quarantine") == []
    assert len([n for n in _files(box) if n.endswith(".json")]) == 3  # the hung one and the two after
    assert any(p.abandoned for p in passes)
    errors = [e.message for e in journal.search(level="error")]
    assert any("the watcher stops" in m for m in errors), errors
    stuck.release()
    _rerun_is_exactly_once(s, 5)
