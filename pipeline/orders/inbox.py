"""The order inbox: a drop folder of order files, imported exactly once, never stopped by a bad file.

Layout under `[orders] inbox`:

    inbox/*.json            files waiting (anything not hidden and not *.tmp/*.part counts)
    inbox/processing/       files claimed by a running importer (name: `<owner>~<file name>`)
    inbox/done/             imported files
    inbox/quarantine/       damaged files, each with `<name>.reason.txt`

A file is taken only once it has stopped changing for `[orders] settle_seconds`. Taking it is an atomic
rename into processing/, so two importers on one inbox never both take a file. Each importer holds an
exclusive lock on `processing/.owner-<owner>.lock` while it lives; a claim whose owner lock is free
belongs to a killed process and is taken over (renamed to the new owner) and imported again — safe,
because the database import itself is exactly-once. Nothing is ever deleted.

`run()` is one pass; `watch()` runs until a stop event: a watchdog observer gives hints, the listing is
the truth (scan at start and every few seconds).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import DatabaseError, DatabaseUnavailable, PipelineError, RetryableError, SkipError
from pipeline.orders.importer import ImportOutcome, test_hook
from pipeline.orders.parse import DamagedFile, parse_order
from pipeline.stage import ResultBase

STAGE = "orders"
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", "~")
SUBDIRS = ("processing", "done", "quarantine")
RESCAN_SECONDS = 10.0

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: claims of dead owners are recovered after a day
    fcntl = None  # type: ignore[assignment]


@dataclass
class InboxResult(ResultBase):
    """Counts of one inbox pass."""

    scanned: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    invoices: int = 0
    unmatched_lines: int = 0
    failed: int = 0  # left in the inbox to retry (database unreachable or busy)
    waiting: int = 0  # still being written (not settled)
    recovered: int = 0  # claims of a killed importer taken over
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every settled file was imported (nothing quarantined, nothing failed)."""
        return self.quarantined == 0 and self.failed == 0

    def add(self, other: InboxResult) -> None:
        """Accumulate another pass (used by watch)."""
        for name in (
            "scanned",
            "imported",
            "updated",
            "unchanged",
            "quarantined",
            "invoices",
            "unmatched_lines",
            "failed",
            "waiting",
            "recovered",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"imported {self.imported}, updated {self.updated}, unchanged {self.unchanged}, "
            f"quarantined {self.quarantined}, invoices {self.invoices}, unmatched lines "
            f"{self.unmatched_lines}, failed {self.failed}, waiting {self.waiting}"
        )


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `name.1`, `name.2`… when taken: a same-named file is never overwritten."""
    target = folder / name
    n = 0
    while target.exists():
        n += 1
        target = folder / f"{name}.{n}"
    return target


def _move_no_clobber(src: Path, folder: Path, name: str) -> Path:
    """Move src into folder under name (suffixing when taken) without ever replacing a file."""
    for _ in range(1000):
        target = _free_name(folder, name)
        try:
            os.link(src, target)  # fails if target exists: no silent overwrite, even in a race
        except FileExistsError:
            continue
        except OSError:
            if target.exists():
                continue
            os.replace(src, target)
            return target
        os.unlink(src)
        return target
    raise PipelineError(f"cannot find a free name for {name} in {folder}")  # pragma: no cover


class Inbox:
    """The folder layout and the claim protocol of one importer process."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.processing = self.root / "processing"
        self.done = self.root / "done"
        self.quarantine = self.root / "quarantine"
        for d in (self.root, self.processing, self.done, self.quarantine):
            d.mkdir(parents=True, exist_ok=True)
        self.owner = f"{socket.gethostname().replace('~', '-')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._lock_path = self.processing / f".owner-{self.owner}.lock"
        self._lock_fd: int | None = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        if fcntl is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._seen: dict[str, tuple[tuple[int, int], float]] = {}

    def close(self) -> None:
        """Give up the owner lock (claims still held would then be recovered by the next importer)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
            with contextlib.suppress(OSError):
                self._lock_path.unlink()

    # --- listing --------------------------------------------------------------------------------------

    def candidates(self) -> list[Path]:
        """Order files waiting in the inbox (the listing is the truth)."""
        out = []
        with os.scandir(self.root) as it:
            for entry in it:
                name = entry.name
                if name.startswith(".") or name.endswith(IGNORED_SUFFIXES):
                    continue
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        out.append(Path(entry.path))
        return sorted(out, key=lambda p: p.name)

    def settled(self, path: Path, settle_seconds: float) -> bool | None:
        """True when the file has not changed for settle_seconds (by its mtime, or by our own
        observations when clocks disagree); None when it vanished."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        sig = (st.st_size, st.st_mtime_ns)
        now = time.monotonic()
        prev = self._seen.get(path.name)
        if prev is None or prev[0] != sig:
            self._seen[path.name] = (sig, now)
            first_seen = now
        else:
            first_seen = prev[1]
        if settle_seconds <= 0:
            return True
        age = time.time() - st.st_mtime
        return age >= settle_seconds or now - first_seen >= settle_seconds

    # --- claims ---------------------------------------------------------------------------------------

    def claim(self, path: Path) -> Path | None:
        """Atomically take a file into processing/; None when another importer was faster."""
        target = self.processing / f"{self.owner}~{path.name}"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        self._seen.pop(path.name, None)
        return target

    @staticmethod
    def original_name(claim: Path) -> str:
        """The file name a claim had in the inbox."""
        return claim.name.split("~", 1)[1] if "~" in claim.name else claim.name

    def _owner_alive(self, owner: str) -> bool:
        if owner == self.owner:
            return True
        lock = self.processing / f".owner-{owner}.lock"
        if fcntl is None:  # pragma: no cover - no flock: trust a claim for a day
            return lock.exists() and time.time() - lock.stat().st_mtime < 86400
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True  # somebody holds it: the owner lives
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def recover(self) -> list[Path]:
        """Take over the claims of importers that died (their owner lock is free)."""
        taken = []
        dead: set[str] = set()
        with os.scandir(self.processing) as it:
            entries = sorted(e.name for e in it if not e.name.startswith(".") and "~" in e.name)
        for name in entries:
            owner = name.split("~", 1)[0]
            if owner == self.owner or owner in dead or self._owner_alive(owner):
                continue
            dead.add(owner)
        for name in entries:
            owner = name.split("~", 1)[0]
            if owner not in dead:
                continue
            src = self.processing / name
            target = self.processing / f"{self.owner}~{name.split('~', 1)[1]}"
            try:
                os.rename(src, target)
            except FileNotFoundError:
                continue  # another importer took it over first
            taken.append(target)
        for owner in dead:
            with contextlib.suppress(OSError):
                (self.processing / f".owner-{owner}.lock").unlink()
        return taken

    def mine(self) -> list[Path]:
        """Claims this process holds (left over by an interrupted pass of this process)."""
        prefix = f"{self.owner}~"
        return sorted(p for p in self.processing.iterdir() if p.name.startswith(prefix))

    # --- outcomes -------------------------------------------------------------------------------------

    def finish(self, claim: Path) -> Path:
        """An imported file goes to done/. No fsync: should the move be lost in a crash, the file is
        imported again and found unchanged (the database, not the folder, keeps exactly-once)."""
        return _move_no_clobber(claim, self.done, self.original_name(claim))

    def to_quarantine(self, claim: Path, reason: str) -> Path:
        """A damaged file goes to quarantine/ next to `<name>.reason.txt`."""
        target = _move_no_clobber(claim, self.quarantine, self.original_name(claim))
        reason_file = Path(str(target) + ".reason.txt")
        tmp = reason_file.with_name(f".{reason_file.name}.tmp")
        tmp.write_text(f"{reason}\n", encoding="utf-8")
        os.replace(tmp, reason_file)
        _fsync_dir(self.quarantine)
        return target

    def give_back(self, claim: Path) -> Path:
        """Return a claim to the inbox (import to be retried later)."""
        target = _move_no_clobber(claim, self.root, self.original_name(claim))
        return target


# --- the sink: database or Torgsoft's order files -------------------------------------------------------


class Sink:
    """Where orders go: `import_order(order) -> ImportOutcome`, `close()`."""

    def import_order(self, order: Any) -> ImportOutcome:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        pass


class DatabaseSink(Sink):
    """The Torgsoft database through the SQL mapping."""

    def __init__(self, settings: Any, journal: Any):
        from pipeline.orders.importer import OrderImporter, check_mapping
        from pipeline.torgsoft.connection import connect

        self.con = connect(settings)
        try:
            self.importer = OrderImporter(settings, self.con, journal=journal)
            check_mapping(self.con, self.importer.mapping)
        except BaseException:
            self.con.close()
            raise

    def import_order(self, order: Any) -> ImportOutcome:
        """One transaction per order."""
        return self.importer.import_order(order)

    def close(self) -> None:
        """Close the connection."""
        self.importer.close()
        with contextlib.suppress(Exception):
            self.con.close()


def open_sink(settings: Any, *, journal: Any, state: Any) -> Sink:
    """The sink named by `[orders] sink`."""
    if settings.orders.sink == "torgsoft-json":
        from pipeline.orders.jsonsink import JsonSink

        return JsonSink(settings, journal=journal, state=state)
    return DatabaseSink(settings, journal)


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
) -> None:
    """Parse and import one claimed file, and count what happened."""
    cfg = settings.orders
    name = inbox.original_name(claim)
    order_id = None
    try:
        size = claim.stat().st_size
        if size > cfg.max_file_bytes:  # not even read: it could be gigabytes
            raise DamagedFile(
                f"absurdly large: {size} bytes (limit [orders] max_file_bytes = {cfg.max_file_bytes})"
            )
        order = parse_order(
            claim.read_bytes(), max_bytes=cfg.max_file_bytes, customer_date_field=cfg.reserve_date_field
        )
        order_id = order.id
        outcome = sink.import_order(order)
    except (DamagedFile, SkipError) as exc:
        reason = exc.reason if isinstance(exc, DamagedFile) else str(exc)
        _set_aside(inbox, claim, reason, name, order_id, journal, result)
        return
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
        return
    except (PipelineError, OSError) as exc:
        if isinstance(exc, DatabaseError) and not isinstance(exc, RetryableError):
            # The mapping was checked at start, so a refusal now is about this order's data (a value
            # out of range, a constraint of the installer's own): quarantine it rather than retry forever.
            _set_aside(
                inbox, claim, f"the database refused this order: {exc}", name, order_id, journal, result
            )
            return
        # Anything else (a full disk, a settings problem): keep the file for a retry, report, go on.
        _give_back(inbox, claim, exc, f"{name} not imported: {exc}", "error", name, order_id, journal, result)
        return
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
        return
    test_hook("before_done")
    inbox.finish(claim)
    if outcome.kind == "imported":
        result.imported += 1
    elif outcome.kind == "updated":
        result.updated += 1
    else:
        result.unchanged += 1
    result.invoices += int(outcome.invoice)
    result.unmatched_lines += len(outcome.unmatched)
    if outcome.kind != "unchanged" or outcome.notes:
        journal.event(
            STAGE,
            f"order {order_id} {outcome.kind} (Torgsoft order {outcome.order_id})"
            + (" with invoice" if outcome.invoice else ""),
            order_id=order_id,
            file=name,
            torgsoft_order=outcome.order_id,
        )
    for text in outcome.unmatched:
        journal.event(STAGE, f"order {order_id}: {text}", "warning", order_id=order_id, file=name)
    for text in outcome.shortages:
        journal.event(STAGE, f"order {order_id}: shortage, {text}", "warning", order_id=order_id, file=name)
    for text in outcome.notes:
        journal.event(STAGE, f"order {order_id}: {text}", "warning", order_id=order_id, file=name)


def _pass(
    inbox: Inbox,
    sinks: list[Sink],
    settings: Any,
    journal: Any,
    result: InboxResult,
    stop: Callable[[], bool] = lambda: False,
) -> list[Path]:
    """Recover dead claims, then import every settled file (spread over the sinks, one thread each);
    returns the files still settling."""
    for claim in inbox.mine():  # left by an earlier, interrupted pass of this process
        _process_claim(inbox, claim, sinks[0], settings, journal, result)
    for claim in inbox.recover():
        result.recovered += 1
        journal.event(
            STAGE,
            f"taking over {inbox.original_name(claim)} from an importer that died",
            "warning",
            file=inbox.original_name(claim),
        )
        _process_claim(inbox, claim, sinks[0], settings, journal, result)
    ready, waiting = [], []
    for path in inbox.candidates():
        state = inbox.settled(path, settings.orders.settle_seconds)
        if state is None:
            continue
        (ready if state else waiting).append(path)
    queue: deque[Path] = deque(ready)
    lock = threading.Lock()

    def work(sink: Sink) -> None:
        local = InboxResult()
        try:
            while not stop():
                try:
                    path = queue.popleft()
                except IndexError:
                    break
                claim = inbox.claim(path)
                if claim is None:
                    continue  # another importer took it
                test_hook("claimed")
                local.scanned += 1
                _process_claim(inbox, claim, sink, settings, journal, local)
        finally:
            with lock:
                result.add(local)

    used = sinks[: max(1, min(len(sinks), len(ready)))]
    if len(used) == 1:
        work(used[0])
        return waiting
    errors: list[BaseException] = []

    def guarded(sink: Sink) -> None:
        try:
            work(sink)
        except BaseException as exc:  # re-raised in the calling thread below
            errors.append(exc)

    threads = [
        threading.Thread(target=guarded, args=(s,), name=f"orders-import-{n}") for n, s in enumerate(used)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return waiting


def open_sinks(settings: Any, *, journal: Any, state: Any) -> list[Sink]:
    """One sink per import worker (database connections); a single one for the order-file sink."""
    n = settings.orders.import_workers if settings.orders.sink == "database" else 1
    sinks: list[Sink] = []
    try:
        for _ in range(n):
            sinks.append(open_sink(settings, journal=journal, state=state))
    except BaseException:
        for s in sinks:
            s.close()
        raise
    return sinks


def _close_all(sinks: list[Sink]) -> None:
    for s in sinks:
        s.close()


def run(settings: Any, *, journal: Any, state: Any, max_wait: float | None = None) -> InboxResult:
    """One pass over the inbox: import every settled file (waiting a little for files still being
    written, at most `max_wait` seconds, default 3 × settle_seconds). Returns the counts."""
    started = time.monotonic()
    result = InboxResult()
    inbox = Inbox(settings.orders.inbox)
    sinks: list[Sink] = []
    try:
        if not inbox.candidates() and not any(not p.name.startswith(".") for p in inbox.processing.iterdir()):
            return result
        sinks = open_sinks(settings, journal=journal, state=state)
        limit = settings.orders.settle_seconds * 3 if max_wait is None else max_wait
        deadline = time.monotonic() + limit
        waiting = _pass(inbox, sinks, settings, journal, result)
        while waiting and time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.05, settings.orders.settle_seconds / 4)))
            waiting = _pass(inbox, sinks, settings, journal, result)
        result.waiting = len(waiting)
    finally:
        _close_all(sinks)
        inbox.close()
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


def watch(
    settings: Any,
    *,
    journal: Any,
    state: Any,
    stop_event: threading.Event,
    on_pass: Callable[[InboxResult], None] | None = None,
    rescan_seconds: float = RESCAN_SECONDS,
) -> InboxResult:
    """Import files as they arrive until stop_event is set: watchdog events wake the loop early, a
    rescan every `rescan_seconds` (and after settle_seconds while files settle) is the truth."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    total = InboxResult()
    inbox = Inbox(settings.orders.inbox)
    kick = threading.Event()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:  # noqa: D401 - watchdog callback
            kick.set()

    observer = Observer()
    observer.schedule(Handler(), str(inbox.root), recursive=False)
    observer.start()
    sinks: list[Sink] = []
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
                    sinks = open_sinks(settings, journal=journal, state=state)
                if sinks:
                    waiting = _pass(inbox, sinks, settings, journal, result, stop_event.is_set)
            except (RetryableError, DatabaseUnavailable) as exc:
                journal.event(STAGE, f"inbox paused: {exc}", "warning")
                _close_all(sinks)
                sinks = []
            result.waiting = len(waiting)
            total.add(result)
            if result.scanned or result.recovered:
                journal.event(STAGE, f"inbox pass: {result.summary()}")
                if on_pass is not None:
                    on_pass(result)
            timeout = rescan_seconds
            if waiting:
                timeout = min(timeout, max(0.1, settings.orders.settle_seconds / 2))
            # Events are hints: wake early on one, but only after files had a moment to settle.
            if kick.wait(timeout) and not stop_event.is_set():
                stop_event.wait(min(0.2, max(0.0, settings.orders.settle_seconds)))
    finally:
        observer.stop()
        observer.join(5)
        _close_all(sinks)
        inbox.close()
    return total
