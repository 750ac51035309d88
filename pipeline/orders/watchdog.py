"""The importers' watchdog: claimed work that makes no progress is journaled and alerted.

An import thread that hangs inside the database driver cannot be interrupted from Python, and a
hang used to be silent: files stayed claimed, nothing was journaled, the watcher looked healthy.
Each worker tells the watchdog when it starts on a claimed file and when it is done with it; a
background thread looks every few seconds and, for each file claimed longer than `limit_seconds`,
journals one error naming the file, the worker and how long, and calls `alert` (the service sends
it on like any other alert). When the file is finished after all, a "resumed" warning follows.
`stalled()` tells the caller (e.g. the watch loop, to exit and let the service manager restart a
process whose thread is stuck for good: its claims are then taken over by the next importer).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

STAGE = "orders"


@dataclass
class _Work:
    what: str
    worker: str
    started: float
    reported: bool = False


class Watchdog:
    """Tracks claimed work per worker; `begin`/`end` around each file, `start`/`stop` the checker."""

    def __init__(
        self,
        journal: Any,
        *,
        limit_seconds: float,
        alert: Callable[[str], None] | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.journal = journal
        self.limit = limit_seconds
        self.alert = alert
        self.interval = interval if interval is not None else max(0.05, min(5.0, limit_seconds / 4))
        self.clock = clock
        self._work: dict[str, _Work] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reported = 0  # how many stuck imports were reported

    def begin(self, what: str) -> None:
        """The calling worker starts on `what` (a claimed file's name)."""
        worker = threading.current_thread().name
        with self._lock:
            self._work[worker] = _Work(what, worker, self.clock())

    def end(self) -> None:
        """The calling worker is done with its file (imported, given back or set aside)."""
        worker = threading.current_thread().name
        with self._lock:
            work = self._work.pop(worker, None)
        if work is not None and work.reported:
            seconds = self.clock() - work.started
            self.journal.event(
                STAGE,
                f"{work.what}: the import went on after {seconds:.0f} s without progress",
                "warning",
                file=work.what,
            )

    def stalled(self) -> list[str]:
        """Descriptions of the work claimed longer than the limit (now)."""
        now = self.clock()
        with self._lock:
            return [
                f"{w.what} ({w.worker}, {now - w.started:.0f} s)"
                for w in self._work.values()
                if now - w.started >= self.limit
            ]

    def check(self) -> list[str]:
        """One look: journal and alert every newly stalled file once; returns their messages."""
        now = self.clock()
        fresh: list[tuple[_Work, float]] = []
        with self._lock:
            for w in self._work.values():
                if not w.reported and now - w.started >= self.limit:
                    w.reported = True
                    fresh.append((w, now - w.started))
        messages = []
        self.reported += len(fresh)
        for w, seconds in fresh:
            text = (
                f"{w.what}: claimed by {w.worker} {seconds:.0f} s ago and no progress since (limit "
                f"{self.limit:.0f} s) — the import is stuck, most likely inside the database; "
                f"restart the importer (its claim is then taken over) and check the database"
            )
            self.journal.event(STAGE, text, "error", file=w.what, seconds=round(seconds, 1))
            if self.alert is not None:
                self.alert(text)
            messages.append(text)
        return messages

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def start(self) -> Watchdog:
        """Start the background checker (a daemon thread: it never keeps the process alive)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="orders-watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the background checker."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 1)
            self._thread = None


class WatchedSink:
    """A sink whose every order is watched: an import that hangs is journaled and alerted."""

    def __init__(self, inner: Any, dog: Watchdog):
        self.inner = inner
        self.dog = dog

    def import_order(self, order: Any) -> Any:
        """The inner sink's import, between the watchdog's begin and end."""
        self.dog.begin(f"order {order.id}")
        try:
            return self.inner.import_order(order)
        finally:
            self.dog.end()

    def close(self) -> None:
        """Close the inner sink."""
        self.inner.close()


def watched_sinks(sinks: list[Any], dog: Watchdog) -> list[Any]:
    """Each sink wrapped so that the watchdog sees every order it imports."""
    return [WatchedSink(s, dog) for s in sinks]


def stall_limit(settings: Any) -> float:
    """Seconds one order may take before it is called stuck: far beyond every bounded wait (each of
    the importer's attempts waits at most lock_timeout for a row, the write gate 2 × that)."""
    return max(120.0, 10.0 * settings.torgsoft.lock_timeout)
