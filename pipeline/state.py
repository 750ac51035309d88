"""Local state in SQLite: cursors, published hashes, id maps, and the outbox of pending API writes.

Each concern gets a namespace in one key/value table (`get`/`put`/`items`), plus an outbox table.
Callers save a cursor or hash only after the effect it records is durable.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import PipelineError
from pipeline.fsutil import create_private, disk_full, is_disk_full

F = TypeVar("F", bound=Callable[..., Any])

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    created REAL NOT NULL,
    UNIQUE (kind, key)
);
"""


def open_sqlite(path: Path, timeout: float, synchronous: str) -> sqlite3.Connection:
    """An autocommit SQLite connection in WAL mode, shared safely by threads and processes.

    Switching a new file to WAL needs a moment of exclusive access, and SQLite may answer "database is
    locked" at once (without its busy timeout) when two processes open the file together: retry that.
    """
    # Orders, customers' names and phones end up in these files: 0600 from the first byte (SQLite gives
    # its -wal and -shm files the same mode), their folder 0700 when created here.
    create_private(path)
    deadline = time.monotonic() + timeout
    while True:
        con = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(f"PRAGMA synchronous={synchronous}")
            return con
        except sqlite3.OperationalError as exc:
            con.close()
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class StateFileError(PipelineError):
    """The state (or journal) file cannot be read: damaged, or left half-replaced. Names the file."""


def damaged_file_message(path: Path, what: str, exc: BaseException) -> str:
    """What is wrong with a damaged SQLite file of ours, and the way out."""
    return (
        f"the {what} file {path} cannot be used ({exc}). Stop the service, move {path.name} and its "
        f"{path.name}-wal / {path.name}-shm files aside and restore them from the last backup (see "
        f"docs/service.md, backup and restore); without a backup a new, empty file is started: then run "
        f"`photos` before `feed`, and check statuses before `status push --baseline`"
    )


def _writes(method: F) -> F:
    """A State method that writes: a full disk becomes a DiskFullError naming the state file (the
    transaction was rolled back by SQLite, the previous values stay)."""

    @functools.wraps(method)
    def wrapper(self: State, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (OSError, sqlite3.Error) as exc:
            if is_disk_full(exc, self.path.parent):
                raise disk_full(exc, self.path.parent, f"writing the state file {self.path}") from None
            raise

    return wrapper  # type: ignore[return-value]


class State:
    """Key/value namespaces and an outbox, in one SQLite file shared by all stages."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._local = threading.local()
        try:
            con = self._con()
            con.executescript(_SCHEMA)
            con.execute("SELECT 1 FROM kv LIMIT 1").fetchone()
        except (OSError, sqlite3.DatabaseError) as exc:
            if is_disk_full(exc, self.path.parent):
                raise disk_full(exc, self.path.parent, f"opening the state file {self.path}") from None
            if isinstance(exc, OSError):
                raise
            raise StateFileError(damaged_file_message(self.path, "state", exc)) from None

    @classmethod
    def from_settings(cls, settings: Any) -> State:
        """The state file configured in `[journal] state_path`."""
        return cls(settings.journal.state_path)

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = open_sqlite(self.path, timeout=60, synchronous="FULL")
            self._local.con = con
        return con

    def get(self, ns: str, key: str, default: Any = None) -> Any:
        """The JSON value stored under (ns, key), or default."""
        row = self._con().execute("SELECT value FROM kv WHERE ns = ? AND key = ?", (ns, key)).fetchone()
        return json.loads(row[0]) if row else default

    @_writes
    def put(self, ns: str, key: str, value: Any) -> None:
        """Store a JSON-serialisable value (durable when this returns)."""
        self._con().execute(
            "INSERT OR REPLACE INTO kv (ns, key, value, updated) VALUES (?, ?, ?, ?)",
            (ns, key, json.dumps(value, ensure_ascii=False, default=str), time.time()),
        )

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Make every State call inside the block one transaction (one fsync); re-entrant per thread."""
        con = self._con()
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        self._begin_commit(con, "BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield
        except BaseException:
            if con.in_transaction:  # (SQLite already rolled back after a full disk)
                con.execute("ROLLBACK")
            raise
        else:
            self._begin_commit(con, "COMMIT")
        finally:
            self._local.depth = 0

    @_writes
    def _begin_commit(self, con: sqlite3.Connection, sql: str) -> None:
        try:
            con.execute(sql)
        except sqlite3.OperationalError:
            if sql == "COMMIT" and con.in_transaction:
                con.execute("ROLLBACK")
            raise

    @_writes
    def put_many(self, ns: str, items: Iterable[tuple[str, Any]]) -> None:
        """Store many values in one transaction."""
        now = time.time()
        with self.atomic():
            self._con().executemany(
                "INSERT OR REPLACE INTO kv (ns, key, value, updated) VALUES (?, ?, ?, ?)",
                ((ns, k, json.dumps(v, ensure_ascii=False, default=str), now) for k, v in items),
            )

    @_writes
    def delete(self, ns: str, key: str | None = None) -> None:
        """Delete one key, or the whole namespace when key is None."""
        if key is None:
            self._con().execute("DELETE FROM kv WHERE ns = ?", (ns,))
        else:
            self._con().execute("DELETE FROM kv WHERE ns = ? AND key = ?", (ns, key))

    def items(self, ns: str) -> Iterator[tuple[str, Any]]:
        """Every (key, value) of a namespace."""
        for key, value in self._con().execute("SELECT key, value FROM kv WHERE ns = ? ORDER BY key", (ns,)):
            yield key, json.loads(value)

    # --- outbox: writes to a remote system that must eventually be accepted -------------------------

    @_writes
    def outbox_add(self, kind: str, key: str, payload: Any) -> None:
        """Queue (or replace) a pending write; the newest payload for a key wins."""
        self._con().execute(
            "INSERT INTO outbox (kind, key, payload, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET payload = excluded.payload, next_try = 0",
            (kind, key, json.dumps(payload, ensure_ascii=False, default=str), time.time()),
        )

    def outbox_due(self, kind: str, limit: int = 1000) -> list[tuple[str, Any, int]]:
        """Pending writes of a kind whose retry time has come: (key, payload, attempts)."""
        rows = (
            self._con()
            .execute(
                "SELECT key, payload, attempts FROM outbox WHERE kind = ? AND next_try <= ? ORDER BY id LIMIT ?",
                (kind, time.time(), limit),
            )
            .fetchall()
        )
        return [(k, json.loads(p), a) for k, p, a in rows]

    @_writes
    def outbox_done(self, kind: str, keys: Iterable[str]) -> None:
        """Remove writes the remote side confirmed."""
        self._con().executemany("DELETE FROM outbox WHERE kind = ? AND key = ?", ((kind, k) for k in keys))

    @_writes
    def outbox_failed(self, kind: str, key: str, error: str, base_delay: float = 60.0) -> None:
        """Record a failed attempt; the next try is delayed exponentially (capped at 6 hours)."""
        con = self._con()
        row = con.execute("SELECT attempts FROM outbox WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        attempts = (row[0] if row else 0) + 1
        delay = min(base_delay * (2 ** (attempts - 1)), 6 * 3600)
        con.execute(
            "UPDATE outbox SET attempts = ?, next_try = ?, last_error = ? WHERE kind = ? AND key = ?",
            (attempts, time.time() + delay, error[:1000], kind, key),
        )

    def outbox_count(self, kind: str | None = None) -> int:
        """How many writes are pending."""
        if kind is None:
            return self._con().execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        return self._con().execute("SELECT COUNT(*) FROM outbox WHERE kind = ?", (kind,)).fetchone()[0]

    def close(self) -> None:
        """Close this thread's connection."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


def lost_state(journal: Any, state_path: Path, stage: str, marker: str) -> str | None:
    """A message when the journal shows `stage` once recorded `marker` (e.g. its baseline) in a state
    that no longer holds it — the state file was deleted, emptied or replaced; None when it never did.

    The journal is the independent witness: a stage must not take a lost state for a first run and
    start afresh silently. A journal that cannot be read is no witness (None)."""
    try:
        seen = next(iter(journal.search(stage=stage, grep=marker, limit=1)), None)
    except (PipelineError, sqlite3.DatabaseError):
        return None
    if seen is None:
        return None
    return (
        f"the state file {state_path} has lost what {stage} recorded on {seen.ts} ({marker}): it was "
        f"deleted, emptied or replaced. Restore it from the last backup (docs/service.md), or, knowing "
        f"that changes made meanwhile are then never sent, start afresh explicitly"
    )
