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
