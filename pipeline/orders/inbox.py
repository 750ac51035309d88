"""The order inbox: a drop folder of order files, imported exactly once, never stopped by a bad file.

Layout under `[orders] inbox`:

    inbox/*.json            files waiting (anything not hidden and not *.tmp/*.part counts)
    inbox/processing/       files claimed by a running importer (`<owner hash>~<name hash>`; the file's
                            name is in `.name-<name hash>`, so no name is too long to claim)
    inbox/done/             imported files
    inbox/quarantine/       damaged files, each with `<name>.reason.txt`

A file is taken only once it has stopped changing for `[orders] settle_seconds`. Taking it is an atomic
rename into processing/, so two importers on one inbox never both take a file. Each importer holds an
exclusive lock on `processing/.owner-<owner>.lock` while it lives; a claim whose owner lock is free
belongs to a killed process and is taken over (renamed to the new owner) and imported again — safe,
because the database import itself is exactly-once. Nothing is ever deleted.

A stop (`should_stop`, or watch's stop event) ends a pass after the orders being written, each committed
or rolled back, and gives every claim back. A database that goes away (shut down, connection lost) is
`DatabaseUnavailable`: the file goes back to the inbox, never to quarantine; only a data problem
quarantines. The folder and claim protocol live in `claims.py`.

`run()` is one pass; `watch()` runs until a stop event: a watchdog observer gives hints, the listing is
the truth (scan at start and every few seconds).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline import _testing
from pipeline.errors import (
    DatabaseError,
    DatabaseUnavailable,
    DiskFullError,
    PipelineError,
    RetryableError,
    SkipError,
)
from pipeline.fsutil import disk_full, is_disk_full
from pipeline.orders.claims import Inbox, NotRegularFile, read_regular
from pipeline.orders.inbox_result import InboxResult
from pipeline.orders.order_rows import ImportOutcome
from pipeline.orders.parse import DamagedFile, parse_order
from pipeline.orders.sinks import Sink, close_all, open_sinks
from pipeline.orders.watchdog import Watchdog, stall_limit, watched_sinks
from pipeline.orders.workers import Crew, grace_seconds, run_workers
from pipeline.stage import StopCheck, never_stop
from pipeline.torgsoft.db import is_race

STAGE = "orders"
RESCAN_SECONDS = 10.0


# --- processing ---------------------------------------------------------------------------------------


def _set_aside(
    inbox: Any,
    claim: Path,
    reason: str,
    name: str,
    order_id: Any,
    journal: Any,
    result: InboxResult,
    **data: Any,
) -> None:
    """Move a claimed file to quarantine with its reason, count it and journal it."""
    where = inbox.to_quarantine(claim, reason)
    result.quarantined += 1
    result.errors.append(f"{name}: {reason}")
    journal.event(
        STAGE,
        f"quarantined {name}: {reason}",
        "error",
        order_id=order_id,
        file=name,
        quarantine=str(where),
        **data,
    )


def _give_back(
    inbox: Any,
    claim: Path,
    exc: BaseException,
    message: str,
    level: str,
    name: str,
    order_id: Any,
    journal: Any,
    result: InboxResult,
) -> None:
    """Return a claimed file to the inbox for a later pass, count it and journal it."""
    inbox.give_back(claim)
    result.failed += 1
    result.errors.append(f"{name}: {exc}")
    journal.event(STAGE, message, level, order_id=order_id, file=name)


def _process_claim(
    inbox: Inbox, claim: Path, sink: Sink, settings: Any, journal: Any, result: InboxResult
) -> bool:
    """Parse and import one claimed file, and count what happened. Returns False when the sink is no
    longer usable (the database is unavailable): the file was given back and the worker must stop."""
    try:
        return _import_claim(inbox, claim, sink, settings, journal, result)
    except BaseException:
        # A second Ctrl+C (KeyboardInterrupt) or a bug in the bookkeeping: the transaction was rolled
        # back by the importer; the file goes back to the inbox rather than waiting for recovery.
        if claim.exists():
            with contextlib.suppress(OSError):
                inbox.give_back(claim)
        raise


def _import_claim(
    inbox: Inbox, claim: Path, sink: Sink, settings: Any, journal: Any, result: InboxResult
) -> bool:
    cfg = settings.orders
    name = inbox.original_name(claim)
    order_id = None
    try:
        taken = claim.lstat()  # to tell a slow writer from a damaged file (never follows a link)
        try:  # a regular file only: a planted symlink or FIFO is never followed or opened for reading
            data = read_regular(claim, cfg.max_file_bytes)
        except NotRegularFile as exc:
            raise DamagedFile(str(exc)) from None
        except ValueError as exc:  # not even read: it could be gigabytes
            raise DamagedFile(
                f"absurdly large: {exc.args[0]} bytes (limit [orders] max_file_bytes = {cfg.max_file_bytes})"
            ) from None
        order = parse_order(data, max_bytes=cfg.max_file_bytes, customer_date_field=cfg.reserve_date_field)
        order_id = order.id
        outcome = sink.import_order(order)
    except (DamagedFile, SkipError) as exc:
        reason = exc.reason if isinstance(exc, DamagedFile) else str(exc)
        if isinstance(exc, DamagedFile) and _still_written(claim, taken):
            # The writer paused longer than settle_seconds and goes on: not damaged, not finished yet.
            msg = f"{name} is still being written ({reason}); left in the inbox"
            _give_back(inbox, claim, exc, msg, "warning", name, order_id, journal, result)
            return True
        _set_aside(inbox, claim, reason, name, order_id, journal, result)
        return True
    except (RetryableError, DatabaseUnavailable) as exc:
        _give_back(
            inbox,
            claim,
            exc,
            f"{name} left in the inbox to retry: {exc}",
            "warning",
            name,
            order_id,
            journal,
            result,
        )
        # A lost race only concerns this order; a shut-down or lost connection concerns every file after.
        return is_race(exc)
    except (PipelineError, OSError) as exc:
        if is_disk_full(exc):
            raise  # the whole pass stops (see _work): the claim is given back by _process_claim
        if isinstance(exc, DatabaseError) and not isinstance(exc, RetryableError):
            # The mapping was checked at start, so a refusal now is about this order's data (a value
            # out of range, a constraint of the installer's own): quarantine it rather than retry forever.
            _set_aside(
                inbox, claim, f"the database refused this order: {exc}", name, order_id, journal, result
            )
            return True
        # Anything else (a full disk, a settings problem): keep the file for a retry, report, go on.
        _give_back(inbox, claim, exc, f"{name} not imported: {exc}", "error", name, order_id, journal, result)
        return True
    except Exception as exc:  # a bug must not stop the batch: the file is kept aside with the details
        _set_aside(
            inbox,
            claim,
            f"internal error while importing (please report): {type(exc).__name__}: {exc}",
            name,
            order_id,
            journal,
            result,
            traceback=traceback.format_exc(),
        )
        return True
    _testing.reach("inbox.before_done")
    inbox.finish(claim)
    if outcome.kind == "imported":
        result.imported += 1
    elif outcome.kind == "updated":
        result.updated += 1
    else:
        result.unchanged += 1
    result.invoices += int(outcome.invoice)
    result.unmatched_lines += len(outcome.unmatched)
    _journal_outcome(journal, order, outcome, name)
    return True


def _journal_outcome(journal: Any, order: Any, outcome: ImportOutcome, name: str) -> None:
    """One event for the imported order, then one warning per thing a person should look at."""
    order_id = order.id
    if outcome.kind != "unchanged" or outcome.notes:
        journal.event(
            STAGE,
            f"order {order_id} {outcome.kind} (Torgsoft order {outcome.order_id})"
            + (" with invoice" if outcome.invoice else ""),
            order_id=order_id,
            file=name,
            torgsoft_order=outcome.order_id,
        )
    if outcome.kind != "unchanged":  # a foreign currency mark, a refund: journaled, never quarantined
        for text in order.warnings:  # each already names the order
            journal.event(STAGE, text, "warning", order_id=order_id, file=name)
    for text in outcome.unmatched:
        journal.event(STAGE, f"order {order_id}: {text}", "warning", order_id=order_id, file=name)
    for text in outcome.shortages:
        journal.event(STAGE, f"order {order_id}: shortage, {text}", "warning", order_id=order_id, file=name)
    for text in outcome.notes:
        journal.event(STAGE, f"order {order_id}: {text}", "warning", order_id=order_id, file=name)


def _leftovers(inbox: Inbox, sink: Sink, settings: Any, journal: Any, stop: StopCheck) -> InboxResult:
    """Claims left by an earlier, interrupted pass of this process, then those of importers that died
    (`unavailable` in the result when the sink became unusable)."""
    local = InboxResult()
    try:
        local.unavailable = not _take_over(inbox, sink, settings, journal, local, stop)
    except (DiskFullError, OSError) as exc:
        if not is_disk_full(exc):
            raise
        _stop_disk_full(local, disk_full(exc, inbox.root), "a claimed file", deque(), journal)
    return local


def _take_over(
    inbox: Inbox, sink: Sink, settings: Any, journal: Any, result: InboxResult, stop: StopCheck
) -> bool:
    for claim in inbox.mine():
        if stop():
            inbox.give_back(claim)
            continue
        if not _process_claim(inbox, claim, sink, settings, journal, result):
            return False
    for claim in inbox.recover():
        result.recovered += 1
        journal.event(
            STAGE,
            f"taking over {inbox.original_name(claim)} from an importer that died",
            "warning",
            file=inbox.original_name(claim),
        )
        if stop():
            inbox.give_back(claim)
            continue
        if not _process_claim(inbox, claim, sink, settings, journal, result):
            return False
    return True


def _work(
    inbox: Inbox, queue: deque[Path], sink: Sink, settings: Any, journal: Any, stop: StopCheck
) -> InboxResult:
    """One worker: claim and import files from the queue until it is empty, a stop is requested, or the
    database becomes unavailable (then the other files stay in the inbox for a later pass)."""
    local = InboxResult()
    while True:
        if stop():
            local.interrupted = True
            break
        try:
            path = queue.popleft()
        except IndexError:
            break
        try:
            claim = inbox.claim(path)
        except DiskFullError as exc:
            _stop_disk_full(local, exc, path.name, queue, journal)
            break
        except OSError as exc:  # one file the folder will not move must not block the others
            local.failed += 1
            local.problems.append(f"{path.name}: cannot claim: {exc}")
            journal.event(STAGE, f"cannot claim {path.name}: {exc}", "error", file=path.name)
            continue
        if claim is None:
            continue  # another importer took it
        _testing.reach("inbox.claimed")
        local.scanned += 1
        try:
            usable = _process_claim(inbox, claim, sink, settings, journal, local)
        except (DiskFullError, OSError) as exc:  # the claim was given back by _process_claim
            if not is_disk_full(exc):
                raise
            _stop_disk_full(local, disk_full(exc, inbox.root), path.name, queue, journal)
            break
        if not usable:
            local.unavailable = True
            queue.clear()
            break
    return local


def _stop_disk_full(
    local: InboxResult, exc: DiskFullError, name: str, queue: deque[Path], journal: Any
) -> None:
    """The inbox's disk is full: no file can be claimed, moved or quarantined with its reason. The file
    in hand is back in the inbox; the pass ends and every file waits — never quarantined for it."""
    local.failed += 1
    local.disk_full = str(exc)
    local.problems.append(f"{name}: not imported, {exc}")
    text = f"order import paused: {exc}; {name} and {len(queue)} other file(s) wait in the inbox"
    journal.event(STAGE, text, "error", file=name, folder=exc.folder)
    queue.clear()


def _still_written(claim: Path, taken: Any) -> bool:
    try:
        now = claim.lstat()
    except OSError:
        return False
    return (now.st_size, now.st_mtime_ns) != (taken.st_size, taken.st_mtime_ns)


def _retry_changed(inbox: Inbox, journal: Any) -> None:
    for name, old in inbox.retry_changed():
        journal.event(STAGE, f"{name} changed after quarantine ({old}); read again", "warning", file=name)


def _pass(
    inbox: Inbox,
    sinks: list[Sink],
    settings: Any,
    journal: Any,
    result: InboxResult,
    stop: StopCheck = never_stop,
    stuck: Callable[[], bool] = lambda: False,
) -> list[Path]:
    """Recover dead claims, then import every settled file (spread over the sinks, one thread each);
    returns the files still settling. A stop ends it after the orders being written (each one committed
    or rolled back); no claim is kept — not even one of a worker that never comes back from the
    database (see workers.py; `abandoned` in the result)."""
    grace = grace_seconds(settings)
    queue: deque[Path] = deque()
    crew = run_workers(
        [functools.partial(_leftovers, inbox, sinks[0], settings, journal, stop)],
        stop=stop,
        grace=grace,
        stuck=stuck,
    )
    _collect(inbox, crew, queue, journal, result, stop)
    if result.ended:
        return []
    ready: list[Path] = []
    waiting: list[Path] = []
    _retry_changed(inbox, journal)
    candidates = inbox.candidates()
    _journal_odd(inbox, journal)
    for path in candidates:
        state = inbox.settled(path, settings.orders.settle_seconds)
        if state is None:
            continue
        (ready if state else waiting).append(path)
    queue.extend(ready)
    used = sinks[: max(1, min(len(sinks), len(ready)))]
    tasks = [functools.partial(_work, inbox, queue, s, settings, journal, stop) for s in used]
    crew = run_workers(tasks, stop=stop, grace=grace, stuck=stuck)
    _collect(inbox, crew, queue, journal, result, stop)
    return waiting


def _collect(
    inbox: Inbox, crew: Crew, queue: deque[Path], journal: Any, result: InboxResult, stop: StopCheck
) -> None:
    """Add what the workers did to `result`, give back the claims of abandoned ones, re-raise a worker's
    exception."""
    for local in crew.results:
        result.add(local)
    if crew.abandoned:
        _abandon(inbox, crew, queue, journal, result, stop)
    if crew.error is not None:
        raise crew.error


def _abandon(
    inbox: Inbox, crew: Crew, queue: deque[Path], journal: Any, result: InboxResult, stop: StopCheck
) -> None:
    """Workers that did not come back from the database in time are left behind: their claims go back
    to the inbox (a later import finds an order that did commit unchanged), the pass ends as
    "unavailable" and the caller ends the process's importing (only a new process frees the threads)."""
    queue.clear()  # a worker that does come back finds nothing more to claim
    names = []
    for claim in inbox.mine():
        with contextlib.suppress(OSError):
            name = inbox.original_name(claim)
            inbox.give_back(claim)
            names.append(name)
    why = "the stop" if stop() else "the pass ended (see the messages before)"
    text = (
        f"{len(crew.abandoned)} import worker(s) did not come back from the database after {why}: "
        f"left behind, most likely waiting for a database server that no longer answers; "
        f"{len(names)} claimed file(s) given back to the inbox ({', '.join(names) or 'none'})"
    )
    result.abandoned += len(crew.abandoned)
    result.unavailable = True
    result.failed += len(names)
    result.problems.append(text)
    journal.event(STAGE, text, "error", workers=", ".join(crew.abandoned), files=len(names))


def _wake(kick: threading.Event, stop: threading.Event, timeout: float) -> bool:
    """Wait for a folder event (True) until `timeout` — but a stop ends the wait at once (False)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0 and not stop.is_set():
        if kick.wait(min(0.2, left)):
            return True
    return False


def _journal_odd(inbox: Inbox, journal: Any) -> None:
    """Say once per run which entries of the inbox folder are skipped as not order files."""
    for name, kind in sorted(inbox.odd.items()):
        if name not in inbox.odd_said:
            inbox.odd_said.add(name)
            journal.event(
                STAGE,
                f"skipped {name} in the inbox: not a regular file ({kind}), not read",
                "warning",
                file=name,
            )


def open_inbox(settings: Any, journal: Any) -> Inbox:
    """The inbox of `[orders] inbox`, its folders created (and journaled) when missing; an unusable
    path is a SettingsError naming orders.inbox."""
    inbox = Inbox(settings.orders.inbox)
    for folder in inbox.created:
        journal.event(STAGE, f"created the inbox folder {folder}", "info", folder=str(folder))
    return inbox


def run(
    settings: Any,
    *,
    journal: Any,
    state: Any,
    max_wait: float | None = None,
    should_stop: StopCheck = never_stop,
) -> InboxResult:
    """One pass over the inbox: import every settled file (waiting a little for files still being
    written, at most `max_wait` seconds, default 3 × settle_seconds). Returns the counts.

    When `should_stop` turns true the pass ends after the orders being written, every claim given back
    (`interrupted` in the result)."""
    started = time.monotonic()
    result = InboxResult()
    inbox = open_inbox(settings, journal)
    sinks: list[Sink] = []
    dog = Watchdog(journal, limit_seconds=stall_limit(settings))
    try:
        _retry_changed(inbox, journal)
        if not inbox.candidates() and not any(not p.name.startswith(".") for p in inbox.processing.iterdir()):
            _journal_odd(inbox, journal)
            result.skipped = True
            return result
        sinks = watched_sinks(open_sinks(settings, journal=journal, state=state), dog.start())
        limit = settings.orders.settle_seconds * 3 if max_wait is None else max_wait
        deadline = time.monotonic() + limit
        stuck = lambda: bool(dog.stalled())  # noqa: E731
        waiting = _pass(inbox, sinks, settings, journal, result, should_stop, stuck)
        while waiting and time.monotonic() < deadline and not (should_stop() or result.ended):
            time.sleep(min(0.5, max(0.05, settings.orders.settle_seconds / 4)))
            waiting = _pass(inbox, sinks, settings, journal, result, should_stop, stuck)
        result.waiting = len(waiting)
        result.interrupted = result.interrupted or should_stop()
    finally:
        close_all(sinks)
        inbox.close()
        dog.stop()
        result.stalled = dog.reported
        result.seconds = time.monotonic() - started
    journal.event(
        STAGE,
        f"inbox pass: {result.summary()}",
        "info" if result.ok else "warning",
        **{
            k: getattr(result, k)
            for k in ("imported", "updated", "unchanged", "quarantined", "invoices", "failed", "waiting")
        },
    )
    return result


def _report_pass(result: InboxResult, journal: Any, on_pass: Callable[[InboxResult], None] | None) -> None:
    """Journal (and tell `on_pass`) a watch pass that did something."""
    if result.scanned or result.recovered or result.disk_full or result.abandoned:
        journal.event(STAGE, f"inbox pass: {result.summary()}")
        if on_pass is not None:
            on_pass(result)


def watch(
    settings: Any,
    *,
    journal: Any,
    state: Any,
    stop_event: threading.Event,
    on_pass: Callable[[InboxResult], None] | None = None,
    rescan_seconds: float = RESCAN_SECONDS,
    stall_seconds: float | None = None,
    on_start: Callable[[Path], None] | None = None,
) -> InboxResult:
    """Import files as they arrive until stop_event is set: watchdog events wake the loop early, a
    rescan every `rescan_seconds` (and after settle_seconds while files settle) is the truth.
    An order that takes longer than `stall_seconds` (default `stall_limit`) is journaled as stuck and
    reported through `on_pass` at once (a pass of its own with `stalled=1`), even while it hangs.
    `on_start` is told the inbox folder once it is open (never for an unusable path)."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    total = InboxResult()
    inbox = open_inbox(settings, journal)
    if on_start is not None:
        on_start(inbox.root)
    kick = threading.Event()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:  # noqa: D401 - watchdog callback
            kick.set()

    observer = Observer()
    observer.schedule(Handler(), str(inbox.root), recursive=False)
    observer.start()
    sinks: list[Sink] = []

    def alert(text: str) -> None:
        if on_pass is not None:
            on_pass(InboxResult(stalled=1, problems=[text]))

    limit = stall_limit(settings) if stall_seconds is None else stall_seconds
    dog = Watchdog(journal, limit_seconds=limit, alert=alert).start()
    stuck = lambda: bool(dog.stalled())  # noqa: E731
    journal.event(STAGE, f"watching {inbox.root}")
    try:
        while not stop_event.is_set():
            kick.clear()
            result = InboxResult()
            waiting: list[Path] = []
            try:
                if not sinks and (
                    inbox.candidates()
                    or inbox.mine()
                    or any("~" in p.name for p in inbox.processing.iterdir())
                ):
                    sinks = watched_sinks(open_sinks(settings, journal=journal, state=state), dog)
                if sinks:
                    waiting = _pass(inbox, sinks, settings, journal, result, stop_event.is_set, stuck)
            except (RetryableError, DatabaseUnavailable) as exc:
                journal.event(STAGE, f"inbox paused: {exc}", "warning")
                close_all(sinks)
                sinks = []
            if result.disk_full:  # nothing can be written: wait for a person to free space
                stop_event.wait(rescan_seconds)
            if result.unavailable:  # reconnect on the next pass
                journal.event(STAGE, "inbox paused: the database became unavailable; reconnecting", "warning")
                close_all(sinks)
                sinks = []
            result.waiting = len(waiting)
            total.add(result)
            _report_pass(result, journal, on_pass)
            if result.abandoned:  # only a new process frees a thread stuck in the client library
                journal.event(STAGE, "the watcher stops: an import worker is stuck in the database", "error")
                break
            timeout = rescan_seconds
            if waiting:
                timeout = min(timeout, max(0.1, settings.orders.settle_seconds / 2))
            # Events are hints: wake early on one, but only after files had a moment to settle.
            if _wake(kick, stop_event, timeout) and not stop_event.is_set():
                stop_event.wait(min(0.2, max(0.0, settings.orders.settle_seconds)))
    finally:
        observer.stop()
        observer.join(5)
        close_all(sinks)
        inbox.close()
        dog.stop()
        total.stalled = dog.reported
    return total
