"""Nothing more goes over an attachment once it is gone (issue 12; see torgsoft/db.py `is_gone`).

The real case — a forced shutdown of Debian's Firebird server in the middle of a batch — is in
test_server.py; it hung in about one run in three before. These pin the rule per call site with a
connection that records what it is asked, and the driver's own exception type and status codes.
"""

from __future__ import annotations

import threading
import time

import fdb
import pytest

from pipeline.errors import DatabaseUnavailable
from pipeline.torgsoft import db
from pipeline.torgsoft.connection import close_bounded


def _shutdown() -> fdb.DatabaseError:
    return fdb.DatabaseError("connection shutdown", -902, db.ATT_SHUTDOWN)


def _lock_conflict() -> fdb.DatabaseError:
    return fdb.DatabaseError("lock conflict on no wait transaction", -913, db.LOCK_CONFLICT)


class Recording:
    """A connection whose commit fails with `error`; remembers every rollback asked of it."""

    def __init__(self, error: BaseException | None = None):
        self.error = error
        self.rollbacks: list[str | None] = []
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def commit(self) -> None:
        if self.error is not None:
            raise self.error

    def rollback(self, savepoint: str | None = None) -> None:
        self.rollbacks.append(savepoint)

    def savepoint(self, name: str) -> None:
        pass

    def cursor(self) -> object:
        return object()


def test_a_gone_attachment_is_unavailable_but_not_a_race_and_a_lock_conflict_is_both():
    assert db.is_gone(_shutdown()) and not db.is_race(_shutdown())
    assert db.is_unavailable(_lock_conflict()) and not db.is_gone(_lock_conflict())
    assert not db.is_gone(ValueError("a bug")) and not db.is_gone(KeyboardInterrupt())


def test_a_commit_on_a_gone_attachment_is_not_rolled_back():
    con = Recording(_shutdown())
    with pytest.raises(DatabaseUnavailable) as exc:
        db.commit(con, "order 1: commit failed")
    assert not isinstance(exc.value, db.RaceError) and "order 1" in str(exc.value)
    assert con.rollbacks == []


def test_a_commit_that_lost_a_race_is_rolled_back():
    con = Recording(_lock_conflict())
    with pytest.raises(db.RaceError):
        db.commit(con)
    assert con.rollbacks == [None]


def test_a_transaction_block_rolls_back_unless_the_attachment_is_gone():
    con = Recording()
    with pytest.raises(DatabaseUnavailable), db.transaction(con, "write"):
        raise _shutdown()
    assert con.rollbacks == []
    with pytest.raises(ValueError), db.transaction(con, "write"):
        raise ValueError("a bug")
    assert con.rollbacks == [None]


def test_a_savepoint_is_not_rolled_back_over_a_gone_attachment():
    con = Recording()
    with pytest.raises(DatabaseUnavailable), db.savepoint(con, "line"):
        raise DatabaseUnavailable("order 1: connection shutdown")
    assert con.rollbacks == []
    with pytest.raises(db.RaceError), db.savepoint(con, "line"):
        raise db.RaceError("order 1: lock conflict")
    assert con.rollbacks == ["line"]


class Hanging:
    """A connection whose close blocks like a client library waiting for a server that never answers."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def close(self) -> None:
        self.release.wait(30)


def test_a_close_that_never_comes_back_is_left_behind_after_the_bound():
    con = Hanging()
    started = time.monotonic()
    assert close_bounded(con, 0.3) is False
    assert time.monotonic() - started < 5
    con.release.set()
    ended: list[bool] = []
    fine = Recording()
    assert close_bounded(fine, 5, first=lambda: ended.append(fine.closed)) is True
    assert ended == [False] and fine.closed  # `first` ran before the close
