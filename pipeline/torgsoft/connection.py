"""One home for reaching the Torgsoft database: the embedded engine (a file) or a server (DSN).

The embedded engine is the `firebird-embedded` wheel. Its client library needs the FIREBIRD
environment variable to point at a runtime root before it is loaded, and by default an embedded
engine opens a file exclusively. We therefore build a private runtime root (links to the wheel's
files plus our own firebird.conf with `ServerMode = SuperClassic`), so the service, a manual run and
a test may open the same demo file at once. A server connection uses the same client library over TCP.

Driver exceptions are translated by `pipeline.torgsoft.db` (by type and engine status code); nothing
above this package sees fdb.

The engine's client library installs its own SIGINT/SIGTERM handlers at the first attachment of a
process; they shut every attachment down ("connection shutdown"), so a Ctrl+C or a `systemctl stop`
would fail the order being written and every one after it. Each attachment here is therefore made
under `keep_signal_handlers()`, which puts the program's own handlers back: a stop is the program's
decision (finish or roll back the current order, give the claimed files back), not the library's.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import DatabaseError, Problem, SettingsError
from pipeline.settings import Settings, TorgsoftSettings, read_secret
from pipeline.torgsoft import db

_loaded_root: Path | None = None


def _runtime_dir() -> Path:
    try:
        from firebird.embedded.provider import FirebirdProvider
    except ImportError as exc:  # pragma: no cover - installation problem
        raise SettingsError(
            Problem(
                "torgsoft",
                "the firebird-embedded package is not installed",
                "run `make demo` or `pip install firebird-embedded`",
            )
        ) from exc
    return FirebirdProvider().client_library.parent


def client_library() -> str:
    """Path of the Firebird client library shipped by firebird-embedded."""
    return (
        str(_runtime_dir() / "libfbclient.so.2") if os.name != "nt" else str(_runtime_dir() / "fbclient.dll")
    )


def prepare_runtime(shared_access: bool = True) -> Path:
    """Create (once) the private runtime root and point FIREBIRD at it. Returns the root."""
    global _loaded_root
    if _loaded_root is not None:
        return _loaded_root
    runtime = _runtime_dir()
    mode = "SuperClassic" if shared_access else "Super"
    tag = hashlib.sha1(f"{runtime}|{mode}".encode()).hexdigest()[:12]
    root = (
        Path(tempfile.gettempdir())
        / f"torgsoft-satu-fbroot-{os.getuid() if hasattr(os, 'getuid') else 0}-{tag}"
    )
    conf = root / "firebird.conf"
    if not conf.exists():
        root.mkdir(parents=True, exist_ok=True)
        for entry in runtime.iterdir():
            if entry.name == "firebird.conf":
                continue
            link = root / entry.name
            if not link.exists():
                with contextlib.suppress(FileExistsError):
                    link.symlink_to(entry)
        tmp = root / f"firebird.conf.{os.getpid()}"
        tmp.write_text(f"# written by torgsoft-satu\nServerMode = {mode}\n", encoding="ascii")
        os.replace(tmp, conf)
    os.environ["FIREBIRD"] = str(root)
    _loaded_root = root
    return root


def _check_libraries() -> None:
    """The embedded engine needs libtommath and libtomcrypt from the OS; say how to get them."""
    if os.name == "nt":
        return
    import ctypes.util

    missing = [lib for lib in ("tommath",) if ctypes.util.find_library(lib) is None]
    if missing:
        raise SettingsError(
            Problem(
                "torgsoft",
                "the OS library libtommath1 is missing (needed by the embedded engine)",
                "run: sudo apt-get install -y libtommath1 libtomcrypt1",
            )
        )


_signal_lock = threading.Lock()
_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
_SIGACTION_BYTES = 512  # more than any platform's struct sigaction: saved and restored as raw bytes


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def keep_signal_handlers() -> Iterator[None]:
    """Run an attachment (connect, create, service) and put back the signal handlers that were in place
    before it: the client library's own handlers would shut every attachment down on SIGINT/SIGTERM.

    Works from any thread (the dispositions are process-wide and restored with `sigaction` itself, the
    exact bytes saved), so a first attachment made by a worker thread is covered too. On Windows the
    library installs no POSIX handlers and nothing is done.
    """
    if os.name == "nt":
        yield
        return
    import ctypes
    import signal

    libc = _libc()
    numbers = [int(getattr(signal, n)) for n in _SIGNALS if hasattr(signal, n)]
    with _signal_lock:
        saved = {}
        for number in numbers:
            buf = ctypes.create_string_buffer(_SIGACTION_BYTES)
            if libc.sigaction(number, None, buf) == 0:
                saved[number] = buf
        try:
            yield
        finally:
            for number, buf in saved.items():
                now = ctypes.create_string_buffer(_SIGACTION_BYTES)
                if libc.sigaction(number, None, now) == 0 and now.raw != buf.raw:
                    libc.sigaction(number, buf, None)


class DatabaseSettingsError(SettingsError, DatabaseError):
    """The database the settings name is not there or not a database: a settings problem (exit code 2,
    naming the key) that code reading the database still sees as a `DatabaseError` (a file that
    vanished while the service runs is reported by the stage like any other database failure)."""


#: the engine's "file … is not a valid database" (isc_bad_db_format)
BAD_DB_FORMAT = 335544323
#: the bytes the engine reads first (the smallest header page); a shorter file is no database
_HEADER_BYTES = 1024


def _password(cfg: TorgsoftSettings | Settings, t: TorgsoftSettings) -> str:
    """The database password, from the variable named in torgsoft.password_env (optional: the embedded
    engine needs none)."""
    if isinstance(cfg, Settings):
        return cfg.secret("torgsoft.password_env", required=False)
    return read_secret("torgsoft.password_env", t.password_env, required=False)


def _check_database_file(path: Path) -> None:
    """The embedded database file must be a file: a missing one or a folder is a settings problem."""
    fix = (
        "set torgsoft.database to your Torgsoft database file (or torgsoft.dsn for a server); "
        "`.venv/bin/python run.py init-db` creates a demo database at torgsoft.database"
    )
    if path.is_dir():
        raise DatabaseSettingsError(
            Problem("torgsoft.database", f"{path} is a folder, not a database file", fix)
        )
    if not path.exists():
        raise DatabaseSettingsError(Problem("torgsoft.database", f"{path} does not exist", fix))
    # The engine reads a header before it can say "not a database": a shorter file (an empty one
    # from `touch`, a few bytes of text) would surface as its raw "I/O error … File size is less".
    size = path.stat().st_size
    if size < _HEADER_BYTES:
        raise DatabaseSettingsError(
            Problem("torgsoft.database", f"{path} is not a Firebird database ({size} bytes long)", fix)
        )


def connect(cfg: TorgsoftSettings | Settings, password: str | None = None) -> Any:
    """Open a connection (fdb.Connection) to the embedded file or the server DSN.

    The password comes from the env var named in `torgsoft.password_env` (server mode); the
    embedded engine needs none. Raises DatabaseError with a readable message.
    """
    import fdb

    t = cfg.torgsoft if isinstance(cfg, Settings) else cfg
    prepare_runtime(t.shared_access)
    _check_libraries()
    if password is None:
        password = _password(cfg, t)
    if t.dsn:
        target = t.dsn
        kwargs: dict[str, Any] = {"dsn": t.dsn, "user": t.user, "password": password or None}
    else:
        _check_database_file(Path(t.database))
        target = str(t.database)
        kwargs = {"database": str(t.database), "user": t.user or "SYSDBA"}
        if password:
            kwargs["password"] = password
    try:
        with keep_signal_handlers():
            con = fdb.connect(charset=t.charset, fb_library_name=client_library(), **kwargs)
    except fdb.Error as exc:
        if db.gdscode(exc) == BAD_DB_FORMAT:  # a settings problem, not a database one: say which key
            key = "torgsoft.dsn" if t.dsn else "torgsoft.database"
            raise DatabaseSettingsError(
                Problem(key, f"{target} is not a Firebird database", f"set {key} to your Torgsoft database")
            ) from None
        raise db.translate(exc, f"cannot connect to {target}") from None
    _bounded_waits(con, t.lock_timeout)
    return con


def _bounded_waits(con: Any, seconds: int) -> None:
    """Read-committed transactions that wait for a locked row at most `seconds`.

    Without a bound, a wait that the engine cannot see as a deadlock (e.g. two attachments whose
    owners wait on each other outside the database) would hang for ever; with it, the writer gets a
    "lock time-out" error, which the callers treat as a race and retry.
    """
    import fdb

    tpb = fdb.TPB()
    tpb.access_mode = fdb.isc_tpb_write
    tpb.isolation_level = (fdb.isc_tpb_read_committed, fdb.isc_tpb_rec_version)
    tpb.lock_resolution = fdb.isc_tpb_wait
    tpb.lock_timeout = seconds
    con.main_transaction.default_tpb = tpb.render()


def close_bounded(con: Any, seconds: float, *, first: Callable[[], None] | None = None) -> bool:
    """Close `con` (after `first`, e.g. ending a look-up transaction), waiting at most `seconds`.

    After a forced shutdown or a lost network the server's client library can block for good in the
    rollback and detach that closing does (seen on Firebird 3 over TCP). The server rolls a dead
    attachment back itself, so a close that does not come back is left in a daemon thread (it dies with
    the process) rather than hanging a stop or a watcher. Returns True when the close came back."""

    def close() -> None:
        if first is not None:
            with contextlib.suppress(Exception):
                first()
        with contextlib.suppress(Exception):
            con.close()

    closer = threading.Thread(target=close, name="db-close", daemon=True)
    closer.start()
    closer.join(seconds)
    return not closer.is_alive()


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_database(
    path: Path | None = None,
    charset: str = "UTF8",
    shared_access: bool = True,
    *,
    dsn: str = "",
    user: str = "SYSDBA",
    password: str = "",
    forced_writes: bool = False,
) -> Any:
    """Create an empty database and return the connection.

    Embedded (default): a new file at `path` (refuses to overwrite one). Server: `dsn` as
    `host/port:path` — the path is on the server and must be writable by the server process — with
    `user` and `password`. The password is never part of an error message.

    An embedded file is created with forced writes off (`forced_writes=False`): it holds demo or test
    data, and buffered writes make bulk loading much quicker (no fsync per commit).
    """
    import fdb

    prepare_runtime(shared_access)
    _check_libraries()
    if dsn:
        target = dsn
        sql = (
            f"CREATE DATABASE {_sql_string(dsn)} USER {_sql_string(user)} PASSWORD {_sql_string(password)} "
            f"PAGE_SIZE 16384 DEFAULT CHARACTER SET {charset}"
        )
    else:
        if path is None:
            raise DatabaseError("create_database needs a file path or a dsn")
        path = Path(path)
        if path.exists():
            raise DatabaseError(f"{path} already exists; remove it first or choose another torgsoft.database")
        path.parent.mkdir(parents=True, exist_ok=True)
        target = str(path)
        sql = f"CREATE DATABASE {_sql_string(str(path))} USER 'SYSDBA' PAGE_SIZE 16384 DEFAULT CHARACTER SET {charset}"
    try:
        with keep_signal_handlers():
            con = fdb.create_database(sql, fb_library_name=client_library())
        if not dsn and not forced_writes:
            from fdb import services

            # Set through the embedded engine's local service manager (no password is checked there);
            # an attachment keeps the mode it opened with, so reopen afterwards.
            con.close()
            with keep_signal_handlers():
                svc = services.connect(user="SYSDBA", password="embedded")
            try:
                svc.set_write_mode(str(path), services.WRITE_BUFFERED)
            finally:
                svc.close()
            with keep_signal_handlers():
                con = fdb.connect(
                    database=str(path), user="SYSDBA", charset=charset, fb_library_name=client_library()
                )
        return con
    except fdb.Error as exc:
        raise db.translate(exc, f"cannot create {target}") from None


def transaction(con: Any) -> contextlib.AbstractContextManager[Any]:
    """Run a block in one transaction (see `db.transaction`)."""
    return db.transaction(con)


def translate(exc: Exception, what: str) -> DatabaseError:
    """The driver → project error translation (see `db.translate`)."""
    return db.translate(exc, what)
