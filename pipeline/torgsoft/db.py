"""Statements, transactions and driver errors: with connection.py, the only module that sees `fdb`.

Everything above this module works with project errors (`pipeline.errors`), chosen by the driver
exception's type and the engine's status code (the Firebird "gdscode", fdb's `args[2]`), never by
message text unless the engine gives nothing else:

- `DatabaseUnavailable` (retry later, never the data's fault): the attachment was shut down
  (`connection shutdown`, a forced database shutdown, the client library's own signal handler), the
  handle is gone, the network failed, a lock or a deadlock got in the way;
- `RaceError` (a `DatabaseUnavailable`): another writer got there first (unique key, lock conflict,
  update conflict, lock time-out) — start the transaction again;
- `TextRejected` (a `DatabaseError`): a text the column cannot hold (charset, length);
- `DatabaseError`: anything else the database refused.

`Statements` runs named queries of the SQL mapping (prepared once per connection) with `run`/`one`/
`all`; `transaction` and `savepoint` are the units of work; `rollback` never lets a raw driver error
escape (after a shutdown a rollback fails too).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pipeline.errors import DatabaseError, DatabaseUnavailable
from pipeline.torgsoft.mapping import Mapping

# Engine status codes (iberror.h); their texts were checked with fb_interpret against the shipped engine.
UNIQUE_KEY_VIOLATION = 335544665
DUPLICATE_VALUE = 335544349
DEADLOCK = 335544336
LOCK_CONFLICT = 335544345
LOCK_TIMEOUT = 335544510
UPDATE_CONFLICT = 335544451
RACE_CODES = frozenset(
    {UNIQUE_KEY_VIOLATION, DUPLICATE_VALUE, DEADLOCK, LOCK_CONFLICT, LOCK_TIMEOUT, UPDATE_CONFLICT}
)

ATT_SHUTDOWN = 335544856  # connection shutdown
BAD_DB_HANDLE = 335544324  # invalid database handle (no active connection)
BAD_TRANS_HANDLE = 335544332  # invalid transaction handle (the attachment under it is gone)
UNAVAILABLE_CODES = frozenset(
    {
        ATT_SHUTDOWN,
        BAD_DB_HANDLE,
        BAD_TRANS_HANDLE,
        335544344,  # I/O error during an operation on the database file
        335544365,  # request referenced an unavailable database
        335544375,  # unavailable database
        335544421,  # connection rejected by remote interface
        335544424,  # no lock manager available
        335544432,  # lock manager error
        335544506,  # database shutdown in progress
        335544528,  # database shutdown
        335544560,  # database shutdown in N seconds
        335544648,  # connection lost to pipe server
        335544721,  # unable to complete network request to host
        335544722,  # failed to establish a connection
        335544726,  # error reading data from the connection
        335544727,  # error writing data to the connection
        335544741,  # connection lost to database
        335544794,  # operation was cancelled
        335544917,  # Firebird shutdown still in progress
        335544918,  # attachment handle is busy
        335544971,  # server is shutdown
        335545132,  # database is shutdown
        335545133,  # engine is shutdown
        335545272,  # reset of user session failed, connection is shut down
    }
)
TRANSLITERATE = 335544565  # cannot transliterate character between character sets
MALFORMED_STRING = 335544849
STRING_TRUNCATION = 335544914
ARITHMETIC = 335544321  # arithmetic exception, numeric overflow, or string truncation (the text tells which)
TEXT_CODES = frozenset({TRANSLITERATE, MALFORMED_STRING, STRING_TRUNCATION})


class RaceError(DatabaseUnavailable):
    """Another writer got there first (unique key, lock or update conflict): run the transaction again."""


class TextRejected(DatabaseError):
    """A text value the database cannot store: its charset cannot hold it, or it is too long."""

    def __init__(self, message: str, *, truncation: bool):
        super().__init__(message)
        self.truncation = truncation


def _fdb() -> Any:
    import fdb  # imported late: the runtime root (FIREBIRD) must be set before the library loads

    return fdb


def driver_errors(*extra: type[BaseException]) -> tuple[type[BaseException], ...]:
    """The driver's exception types (plus `extra`), for `except` clauses of the modules in this package."""
    return (_fdb().Error, *extra)


def gdscode(exc: BaseException) -> int | None:
    """The engine's primary status code of a driver error (None when the driver gave none)."""
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    return args[2] if len(args) > 2 and isinstance(args[2], int) else None


def _text(exc: BaseException) -> str:
    text = str(exc.args[0]) if getattr(exc, "args", None) else str(exc)
    return " ".join(text.replace("\n- ", " ").split())


def is_race(exc: BaseException) -> bool:
    """True for a lost race: a unique-key violation, a lock/update conflict, a deadlock, a lock time-out.

    "lock denied" (an engine page lock another process of the embedded engine in shared mode would not
    hand over in time) comes without a status code of its own, so it is the one case read from the text.
    """
    if isinstance(exc, RaceError):
        return True
    if not isinstance(exc, _fdb().Error):
        return False
    return gdscode(exc) in RACE_CODES or "lock denied" in _text(exc).lower()


def is_unavailable(exc: BaseException) -> bool:
    """True when the database (not the data) is the problem: shut down, gone, unreachable, locked."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    if not isinstance(exc, _fdb().Error):
        return False
    return gdscode(exc) in UNAVAILABLE_CODES or is_race(exc)


def is_gone(exc: BaseException) -> bool:
    """True when the attachment itself is gone (shut down, connection lost), not a lost race: nothing more
    may be sent over it, not even a rollback — the server rolls a dead attachment's work back itself, and
    its client library can block for good waiting for a reply that never comes (seen on Firebird 3 over
    TCP after a forced shutdown)."""
    return is_unavailable(exc) and not is_race(exc)


def is_text_problem(exc: BaseException) -> bool:
    """Text the charset cannot hold, or too long for its column."""
    if isinstance(exc, UnicodeEncodeError | TextRejected):
        return True
    if not isinstance(exc, _fdb().Error):
        return False
    code = gdscode(exc)
    if code in TEXT_CODES:
        return True
    # fdb keeps only the primary code; for text the primary one is the general "arithmetic exception,
    # numeric overflow, or string truncation", and only the secondary message (text) tells which.
    lowered = _text(exc).lower()
    return code == ARITHMETIC and any(
        s in lowered for s in ("string right truncation", "transliterate", "malformed string")
    )


def translate(exc: BaseException, what: str) -> DatabaseError:
    """A driver error (or a text encoding error) as a project error naming `what` (see the docstring)."""
    if isinstance(exc, DatabaseError):
        return exc
    text = f"{what}: {_text(exc)}"
    if isinstance(exc, UnicodeEncodeError):
        return TextRejected(text, truncation=False)
    if is_race(exc):
        return RaceError(text)
    if is_unavailable(exc):
        return DatabaseUnavailable(text)
    if is_text_problem(exc):
        return TextRejected(
            text, truncation="truncation" in text.lower() and "transliterate" not in text.lower()
        )
    if isinstance(exc, _fdb().Error) and gdscode(exc) is None and not isinstance(exc, _fdb().DatabaseError):
        # The driver refused before the engine was asked (a closed connection or cursor): the connection
        # is unusable, not the data wrong.
        return DatabaseUnavailable(text)
    return DatabaseError(text)


def rollback(con: Any, savepoint: str | None = None) -> DatabaseError | None:
    """Roll back (to `savepoint`); never raises a driver error. Returns the translated failure, if any
    (after a shutdown the rollback fails as well; the caller reports the first error, not this one)."""
    try:
        if savepoint is None:
            con.rollback()
        else:
            con.rollback(savepoint=savepoint)
    except driver_errors(OSError) as exc:
        return translate(exc, "rollback failed")
    return None


def undo(con: Any, exc: BaseException, savepoint: str | None = None) -> None:
    """Roll back (to `savepoint`) after `exc` — unless `exc` says the attachment is gone (see is_gone)."""
    if not is_gone(exc):
        rollback(con, savepoint)


def commit(con: Any, what: str = "commit failed") -> None:
    """Commit the connection's main transaction; a failure is translated (and rolled back)."""
    try:
        con.commit()
    except driver_errors() as exc:
        error = translate(exc, what)
        if not is_gone(error):  # see is_gone: no rollback over a dead attachment
            rollback(con)
        raise error from None


@contextlib.contextmanager
def transaction(con: Any, what: str = "database write failed") -> Iterator[Any]:
    """Run a block in one transaction: commit on success, roll back on any error (driver errors are
    translated; the rollback itself never hides the first error)."""
    cur = con.cursor()
    try:
        yield cur
    except driver_errors() as exc:
        error = translate(exc, what)
        undo(con, error)
        raise error from None
    except BaseException as exc:
        undo(con, exc)
        raise
    commit(con, what)


@contextlib.contextmanager
def savepoint(con: Any, name: str, *, keep: bool = False) -> Iterator[None]:
    """A savepoint around a block: rolled back on error (the error goes on), and also at the end unless
    `keep` (a probe that must leave nothing behind)."""
    try:
        con.savepoint(name)
    except driver_errors() as exc:
        raise translate(exc, f"savepoint {name}") from None
    try:
        yield
    except BaseException as exc:
        undo(con, exc, name)
        raise
    if not keep:
        failed = rollback(con, name)
        if failed is not None:
            raise failed


def read_only_transaction(con: Any) -> Any:
    """A read-only, read-committed transaction on `con` (sees every commit, holds back no garbage)."""
    fdb = _fdb()
    try:
        return con.trans(fdb.ISOLATION_LEVEL_READ_COMMITED_RO)
    except driver_errors() as exc:
        raise translate(exc, "read-only transaction") from None


def row_dicts(description: Any, rows: list[tuple]) -> list[dict[str, Any]]:
    """Rows as dicts keyed by lower-case column name."""
    cols = [d[0].lower() for d in description or ()]
    return [dict(zip(cols, row, strict=True)) for row in rows]


class Statements:
    """Named queries of the SQL mapping on one connection (or one transaction's cursor), each prepared
    once: re-preparing every statement of every order costs about 10 %."""

    def __init__(self, cursor: Any, mapping: Mapping, *, what: str = "database"):
        self.cursor = cursor
        self.mapping = mapping
        self.what = what
        self._prepared: dict[str, Any] = {}

    def prepared(self, name: str) -> Any:
        """The prepared statement of query `name` (prepared on first use)."""
        stmt = self._prepared.get(name)
        if stmt is None:
            sql = self.mapping.query(name).sql
            try:
                stmt = self._prepared[name] = self.cursor.prep(sql)
            except driver_errors() as exc:
                raise translate(exc, f"{self.what}: {name}.sql") from None
        return stmt

    def execute_raw(self, name: str, values: dict[str, Any]) -> Any:
        """Execute query `name` with named `values` without the prepared statement (probes of the text
        fixer run under a savepoint); driver and encoding errors come out translated."""
        q = self.mapping.query(name)
        try:
            self.cursor.execute(q.sql, q.args(values))
        except driver_errors(UnicodeEncodeError) as exc:
            raise translate(exc, f"{self.what}: {name}.sql") from None
        return self.cursor

    def run(self, name: str, values: dict[str, Any]) -> Any:
        """Execute query `name` with named `values` (translated errors); returns the cursor."""
        q = self.mapping.query(name)
        stmt = self.prepared(name)
        try:
            self.cursor.execute(stmt, q.args(values))
        except driver_errors(UnicodeEncodeError) as exc:
            raise translate(exc, f"{self.what}: {name}.sql") from None
        return self.cursor

    def fetch_one(self, name: str) -> dict[str, Any] | None:
        """The first row of the last run of `name`, then its result set closed (it runs again later in
        the same transaction)."""
        try:
            row = self.cursor.fetchone()
            description = self.cursor.description
        except driver_errors() as exc:
            raise translate(exc, f"{self.what}: {name}.sql") from None
        with contextlib.suppress(*driver_errors()):
            self._prepared[name].close()
        if row is None:
            return None
        return row_dicts(description, [row])[0]

    def fetch_all(self, name: str) -> list[dict[str, Any]]:
        """Every row of the last run of `name`."""
        try:
            return row_dicts(self.cursor.description, self.cursor.fetchall())
        except driver_errors() as exc:
            raise translate(exc, f"{self.what}: {name}.sql") from None

    def one(self, name: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """Run `name` and return its first row as a dict (None when there is none)."""
        self.run(name, values)
        return self.fetch_one(name)

    def all(self, name: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        """Run `name` and return every row as a dict."""
        self.run(name, values)
        return self.fetch_all(name)

    def clear(self) -> None:
        """Forget the prepared statements (before the cursor or connection goes)."""
        self._prepared.clear()
