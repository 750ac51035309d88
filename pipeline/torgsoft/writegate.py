"""One order write at a time on an embedded database file, across every importer process and thread.

Why: the embedded engine runs in SuperClassic mode so that the service, a cron `orders import` and a
manual run may open one file at once. Each process then keeps its own page cache, and pages move
between processes through page locks that the holder gives up when asked (a blocking AST). Two or
more importers writing at once (two `orders watch` and a cron import, two workers each) were seen
to stop for good: every import thread waited inside the engine for a page lock (a timed wait that
re-arms itself, 0 % CPU), the holder never gave it up, and `lock_timeout` did not fire because it
bounds waits for *rows* only, never for pages. benchmarks/two_importers.py reproduces it (about one
round in five stalls until killed) and shows the gate removes it.

The gate is an OS file lock (`flock`, released by the OS when the holder dies, even by kill -9) on
a file in the temp folder named after the database's real path, so every importer of that file
meets at the same gate whatever its inbox or settings file. The wait for it is bounded: past
`wait_seconds` the order is given back as "database unavailable" (retried later), never blocked for
ever. A server database (a DSN) has no gate: the server owns its pages alone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import DatabaseUnavailable
from pipeline.torgsoft.db import RaceError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no SuperClassic page-lock issue to guard against
    fcntl = None  # type: ignore[assignment]

_FIRST_POLL = 0.002
_MAX_POLL = 0.05


def gate_path(database: Path) -> Path:
    """The lock file shared by every importer of `database` (by its resolved path)."""
    key = hashlib.sha1(str(Path(database).resolve()).encode("utf-8")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"torgsoft-satu-writegate-{key}.lock"


def _open_gate_file(path: Path) -> int:
    """Open (or create) the gate file in the shared temp folder, never through a link: a symbolic
    link planted there by another user would otherwise make us open, and chmod, a file of theirs
    choosing. The gate is world-writable on purpose (another user's importer may meet us here), but
    only a file this user created is chmod-ed."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise _unsafe_gate(path, "a symbolic link") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise _unsafe_gate(path, "not a regular file")
    if info.st_uid == os.getuid():
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)
    return fd


def _unsafe_gate(path: Path, what: str) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"the write gate {path} is {what}, not the lock file this program creates (someone may have "
        f"planted it): remove it (rm {path}); the orders wait in the inbox until then"
    )


class WriteGate:
    """`with gate.held(what):` — exclusive across processes and threads (one open file per gate)."""

    def __init__(self, database: Path | None, wait_seconds: float):
        self.database = database
        self.wait_seconds = wait_seconds
        self._fd: int | None = None
        self.path = gate_path(database) if database is not None and fcntl is not None else None

    def _open(self) -> int:
        if self._fd is None:
            assert self.path is not None
            self._fd = _open_gate_file(self.path)
        return self._fd

    @contextlib.contextmanager
    def held(self, what: str) -> Iterator[None]:
        """Hold the gate for one order; RaceError (a DatabaseUnavailable: the file is given back and
        retried, the next file is tried) when another writer keeps it too long."""
        if self.path is None:
            yield
            return
        fd = self._open()
        deadline = time.monotonic() + self.wait_seconds
        pause = _FIRST_POLL
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RaceError(
                        f"{what}: another importer of {self.database} has been writing for over "
                        f"{self.wait_seconds:.0f} s (write gate {self.path}); retried later"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, _MAX_POLL)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the gate's file (the lock file itself stays: it is shared)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
