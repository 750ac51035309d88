"""The import workers' threads, and how long a pass waits for them once it is ending.

A thread blocked inside the database's client library cannot be interrupted from Python. After a forced
shutdown of a Firebird server, or a network that stops answering, the client library can wait for good
for a reply that never comes (seen on Firebird 3 over TCP: a rollback that never returned), and a pass
that joins such a thread never ends: a stop is not a stop, and the claimed file is held for good.

So each worker runs in a daemon thread, and the pass waits for them without bound only while all is
well. Once the pass is ending — a stop was requested, a worker found the database unavailable, the disk
full, or failed; or the watchdog calls a worker stuck — the others get `grace` seconds to finish the
order in hand (committed or rolled back, as always). A worker still busy then is *abandoned*: the pass
goes on without it and the caller gives its claim back (the import is exactly-once in the database, so
a file whose transaction might still end is safe to import again: it is found unchanged). An abandoned
thread is never joined; it dies with the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.orders.inbox_result import InboxResult
from pipeline.stage import StopCheck

POLL_SECONDS = 0.1


def grace_seconds(settings: Any) -> float:
    """How long an ending pass waits for a worker's order in hand: beyond every bounded wait inside one
    order (a row lock waits at most lock_timeout, the write gate 2 × that), and inside the 90 s systemd
    gives a stop by default (the shipped units allow 300 s)."""
    return max(30.0, 2.0 * settings.torgsoft.lock_timeout) + 10.0


@dataclass
class Crew:
    """What the workers of one pass left: the results of those that ended, the names of the abandoned
    ones, and the first exception a worker raised (the caller re-raises it)."""

    results: list[InboxResult] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    error: BaseException | None = None


def _ends_pass(local: InboxResult) -> bool:
    return local.unavailable or local.interrupted or bool(local.disk_full)


def run_workers(
    tasks: Sequence[Callable[[], InboxResult]],
    *,
    stop: StopCheck,
    grace: float,
    stuck: Callable[[], bool] = lambda: False,
    name: str = "orders-import",
) -> Crew:
    """Run each task in a daemon thread and wait for them (see the module docstring): without bound
    while the pass goes well, `grace` seconds once it is ending. A KeyboardInterrupt (a second stop
    signal) goes up to the caller at once: workers still busy die with the process, and their claims are
    taken over by the next importer."""
    crew = Crew()
    lock = threading.Lock()
    ending = threading.Event()

    def guarded(task: Callable[[], InboxResult]) -> None:
        try:
            local = task()
        except BaseException as exc:  # re-raised by the caller, in the calling thread
            with lock:
                crew.error = crew.error or exc
            ending.set()
            return
        with lock:
            crew.results.append(local)
        if _ends_pass(local):
            ending.set()

    threads = [
        threading.Thread(target=guarded, args=(t,), name=f"{name}-{n}", daemon=True)
        for n, t in enumerate(tasks)
    ]
    for t in threads:
        t.start()
    _wait(threads, ending, stop, stuck, grace)
    with lock:
        crew.abandoned = [t.name for t in threads if t.is_alive()]
    return crew


def _wait(
    threads: list[threading.Thread],
    ending: threading.Event,
    stop: StopCheck,
    stuck: Callable[[], bool],
    grace: float,
) -> None:
    deadline: float | None = None
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(POLL_SECONDS / len(threads))
        if deadline is None and (ending.is_set() or stop() or stuck()):
            deadline = time.monotonic() + grace
        if deadline is not None and time.monotonic() >= deadline:
            return
