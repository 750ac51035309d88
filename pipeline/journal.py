"""The sync log: every event in SQLite (searchable), mirrored to a rotated human-readable log file.

Any stage records an event with `journal.event(stage, message, level=..., order_id=..., product_id=...)`.
Writes go straight to SQLite in autocommit (WAL), so several processes may log at once.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import sqlite3
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.fsutil import create_private, is_disk_full
from pipeline.state import open_sqlite

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    run_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    level TEXT NOT NULL,
    levelno INTEGER NOT NULL,
    message TEXT NOT NULL,
    order_id TEXT,
    product_id TEXT,
    data TEXT
);
CREATE INDEX IF NOT EXISTS ix_events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS ix_events_run ON events (run_id);
CREATE INDEX IF NOT EXISTS ix_events_order ON events (order_id);
CREATE INDEX IF NOT EXISTS ix_events_product ON events (product_id);
"""


@dataclass(frozen=True)
class Event:
    """One journal entry."""

    id: int
    ts: str
    run_id: str
    stage: str
    level: str
    message: str
    order_id: str | None
    product_id: str | None
    data: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _contains(haystack: str | None, needle: str | None) -> bool:
    if haystack is None or not needle:
        return False
    return needle.casefold() in haystack.casefold()


def _as_ts(value: str | datetime) -> str:
    """A bound for `ts` comparisons in the stored form (UTC, ISO, milliseconds)."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value  # not a date: compared as given
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive = the machine's local time
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\w*\s*(?:ago)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, *, end: bool = False, now: datetime | None = None) -> datetime:
    """A point in time from `2h`, `30m`, `3d`, `1w` (ago), `today`, `yesterday`, or an ISO date/time.

    Naive dates and times are the machine's local time. A bare date means the start of that day, or
    (with `end=True`, for `--until`) the end of it. Raises ValueError with a readable message.
    """
    now = now or datetime.now(UTC)
    text = text.strip()
    m = _RELATIVE.match(text)
    if m:
        unit = m.group(2).lower()
        return now - timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[unit])
    local_today = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    if text.lower() in ("today", "yesterday"):
        day = local_today - timedelta(days=1 if text.lower() == "yesterday" else 0)
        return day + timedelta(days=1) - timedelta(microseconds=1000) if end else day
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a relative time (2h, 30m, 3d, 1w) nor an ISO date "
            f"(2026-11-27 or 2026-11-27T14:30)"
        ) from None
    if len(text) <= 10 and end:  # a bare date: the whole day
        value = value + timedelta(days=1) - timedelta(microseconds=1000)
    if value.tzinfo is None:
        value = value.astimezone()
    return value.astimezone(UTC)


def one_line(text: str) -> str:
    """One event, one line: a message's own line breaks (a library's second "Debugging info" line, a
    server's multi-line reply) are folded, so `log`, the log file and cron mails stay line-oriented."""
    if "\n" not in text and "\r" not in text:
        return text
    return " | ".join(part.strip() for part in text.splitlines() if part.strip())


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """The log file and every file it rotates into are created 0600 (they name orders and customers)."""

    _said_full = False

    def _open(self):  # type: ignore[no-untyped-def]
        create_private(Path(self.baseFilename))
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        """A full disk: one warning line (not logging's traceback per line); the work goes on."""
        exc = sys.exc_info()[1]
        if exc is not None and is_disk_full(exc):
            if not self._said_full:
                self._said_full = True
                print(_full_warning(Path(self.baseFilename)), file=sys.stderr, flush=True)
            return
        super().handleError(record)


def _full_warning(path: Path) -> str:
    return (
        f"Warning: no space left on the disk of {path.parent}: the journal line(s) could not be written "
        f"to {path}; the work goes on. Free space there"
    )


class Journal:
    """Append and search events. Safe to share between threads; one connection per thread."""

    def __init__(self, path: Path | str, log_file: Path | str | None = None, run_id: str | None = None):
        self.path = Path(path)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._local = threading.local()
        self._logger: logging.Logger | None = None
        self.broken = ""  # why the journal file cannot be written (events then go to the log only)
        self._said_full = False  # a full disk was reported once (events are tried again each time)
        try:
            con = self._con()
            con.executescript(_SCHEMA)
            con.execute("SELECT 1 FROM events LIMIT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            if is_disk_full(exc, self.path.parent):
                self._full()
            else:
                self._degrade(exc)
        if log_file:
            create_private(Path(log_file))
            logger = logging.getLogger(f"torgsoft_satu.journal.{os.getpid()}.{id(self)}")
            logger.propagate = False
            logger.setLevel(logging.DEBUG)
            handler = _PrivateRotatingFileHandler(
                log_file, maxBytes=5_000_000, backupCount=5, encoding="utf-8"
            )
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
            self._logger = logger

    def _full(self) -> None:
        """The disk of the journal is full: say so once; each later event is tried again (space may be
        freed), and the work is never stopped by it."""
        if not self._said_full:
            self._said_full = True
            print(_full_warning(self.path), file=sys.stderr, flush=True)

    def _degrade(self, exc: BaseException) -> None:
        """The journal file is damaged: say so once (naming it and the way out), then keep working with
        the log file only — an import or a feed must never stop because its diary cannot be written."""
        from pipeline.state import damaged_file_message

        self.broken = damaged_file_message(self.path, "journal", exc)
        print(f"Warning: {self.broken}", file=sys.stderr, flush=True)

    @classmethod
    def from_settings(cls, settings: Any, run_id: str | None = None) -> Journal:
        """The journal configured in `[journal]`."""
        return cls(settings.journal.path, settings.journal.log_file, run_id=run_id)

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = open_sqlite(self.path, timeout=30, synchronous="NORMAL")
            # Case-insensitive search for every alphabet (SQLite's LIKE folds ASCII only).
            con.create_function("ts_contains", 2, _contains, deterministic=True)
            self._local.con = con
        return con

    def event(
        self,
        stage: str,
        message: str,
        level: str = "info",
        *,
        order_id: Any = None,
        product_id: Any = None,
        run_id: str | None = None,
        **data: Any,
    ) -> None:
        """Record one event. Extra keyword arguments are stored as JSON data."""
        level = level.lower()
        message = one_line(message)
        row = (
            _now(),
            run_id or self.run_id,
            stage,
            level,
            LEVELS.get(level, 20),
            message,
            None if order_id is None else str(order_id),
            None if product_id is None else str(product_id),
            json.dumps(data, ensure_ascii=False, default=str) if data else None,
        )
        if not self.broken:
            try:
                self._con().execute(
                    "INSERT INTO events (ts, run_id, stage, level, levelno, message, order_id, product_id, "
                    "data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
            except sqlite3.DatabaseError as exc:  # the journal never stops the work it records
                if is_disk_full(exc, self.path.parent):
                    self._full()
                else:
                    self._degrade(exc)
        if self._logger is not None:
            ids = "".join(
                f" {k}={v}" for k, v in (("order", order_id), ("product", product_id)) if v is not None
            )
            self._logger.log(LEVELS.get(level, 20), "[%s] %s%s", stage, message, ids)

    def search(
        self,
        *,
        grep: str | None = None,
        level: str | None = None,
        stage: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        order_id: Any = None,
        product_id: Any = None,
        run_id: str | None = None,
        limit: int | None = None,
        after_id: int | None = None,
    ) -> Iterator[Event]:
        """Events matching every given filter, oldest first.

        `level` means that level or worse; `grep` is a case-insensitive substring of the message or
        the data; `since`/`until` are datetimes or ISO strings (naive = local time); `limit` keeps
        the newest N matches; `after_id` only events recorded after that one (for following).
        """
        where: list[str] = []
        args: list[Any] = []
        if grep:
            where.append("(ts_contains(message, ?) OR ts_contains(data, ?))")
            args += [grep, grep]
        if level:
            where.append("levelno >= ?")
            args.append(LEVELS.get(level.lower(), 20))
        if stage:  # "orders" also finds "orders.fetch", "orders.inbox", …
            where.append("(stage = ? OR substr(stage, 1, ?) = ?)")
            args += [stage, len(stage) + 1, stage + "."]
        if since:
            where.append("ts >= ?")
            args.append(_as_ts(since))
        if until:
            where.append("ts <= ?")
            args.append(_as_ts(until))
        if order_id is not None:
            where.append("order_id = ?")
            args.append(str(order_id))
        if product_id is not None:
            where.append("product_id = ?")
            args.append(str(product_id))
        if run_id:
            where.append("run_id = ?")
            args.append(run_id)
        if after_id is not None:
            where.append("id > ?")
            args.append(int(after_id))
        sql = "SELECT id, ts, run_id, stage, level, message, order_id, product_id, data FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit:
            sql = f"SELECT * FROM ({sql} DESC LIMIT {int(limit)}) ORDER BY id"
        for row in self._rows(sql, args):
            ident, ts, run_id_, stage_, level_, message, order, product, data = row
            yield Event(
                ident,
                ts,
                run_id_,
                stage_,
                level_,
                message,
                order,
                product,
                json.loads(data) if data else None,
            )

    def _rows(self, sql: str, args: list[Any]) -> Iterator[tuple]:
        from pipeline.state import StateFileError, damaged_file_message

        if self.broken:
            raise StateFileError(self.broken)
        try:
            yield from self._con().execute(sql, args)
        except sqlite3.DatabaseError as exc:
            raise StateFileError(damaged_file_message(self.path, "journal", exc)) from None

    def prune(self, retention_days: int) -> int:
        """Delete events older than the retention; returns how many went (0 when the file is damaged)."""
        cutoff = (datetime.now(UTC) - timedelta(days=retention_days)).isoformat(timespec="milliseconds")
        if self.broken:
            return 0
        try:
            return self._con().execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
        except sqlite3.DatabaseError as exc:
            self._degrade(exc)
            return 0

    def close(self) -> None:
        """Close this thread's connection and the log file."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
        if self._logger is not None:
            for h in list(self._logger.handlers):
                h.close()
                self._logger.removeHandler(h)
