"""Durable, private file writes: the one home for temp-name + fsync + rename and for fsyncing folders.

A reader (another process, Satu, a crash-restarted run) sees either the old file or the whole new one,
never half. Files that may hold personal data are created 0600 and their folders 0700 (on POSIX).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import DiskFullError

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
PUBLIC_FILE = 0o644


_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)
_SQLITE_FULL = getattr(sqlite3, "SQLITE_FULL", 13)
_SQLITE_IOERR = getattr(sqlite3, "SQLITE_IOERR", 10)
#: below this much free space an SQLite I/O error is taken for a full disk: SQLite cannot grow its
#: shared-memory index (32 KiB steps) and says "disk I/O error", not SQLITE_FULL
_SQLITE_ROOM = 1 << 20


def free_bytes(folder: Path | str) -> int | None:
    """Bytes this user may still write in `folder`'s file system (None where it cannot be asked)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # (no statvfs on Windows)
        return None
    return st.f_bavail * st.f_frsize


def _sqlite_full(exc: sqlite3.Error, folder: Path | str | None) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code == _SQLITE_FULL:
        return True
    if code is None or code & 0xFF != _SQLITE_IOERR or folder is None:
        return False
    room = free_bytes(folder)
    return room is not None and room < _SQLITE_ROOM


def is_disk_full(exc: BaseException, folder: Path | str | None = None) -> bool:
    """True for "no space left on device" and "disk quota exceeded" (an OSError by its errno, SQLite's
    SQLITE_FULL, or an SQLite I/O error while `folder`, the database's, has no room left), also when it
    is the cause behind `exc`."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DiskFullError):
            return True
        if isinstance(cur, OSError) and cur.errno in _FULL_ERRNOS:
            return True
        if isinstance(cur, sqlite3.Error) and _sqlite_full(cur, folder):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def disk_full(exc: BaseException, folder: Path | str | None = None, doing: str = "") -> DiskFullError:
    """The DiskFullError for `exc` (see `is_disk_full`): names the folder (the failing file's, else
    `folder`), what was being done, and the fix."""
    if isinstance(exc, DiskFullError):
        return exc
    where = folder
    name = getattr(exc, "filename", None)
    if name:
        where = Path(os.fsdecode(name)).parent
    quota = isinstance(exc, OSError) and exc.errno == getattr(errno, "EDQUOT", -1)
    what = "the disk quota is used up" if quota else "no space left on the disk"
    text = f"{what} of {where or 'a folder of the program'}" + (f" while {doing}" if doing else "")
    fix = (
        "free space there (or raise this user's disk quota) and run again; what could not be written "
        "was undone, nothing was lost"
    )
    return DiskFullError(f"{text}: {fix}", str(where or ""))


@contextlib.contextmanager
def disk_guard(folder: Path | str | None = None, doing: str = "") -> Iterator[None]:
    """Turn a full disk (OSError ENOSPC/EDQUOT, SQLITE_FULL) inside the block into a DiskFullError."""
    try:
        yield
    except DiskFullError:
        raise
    except (OSError, sqlite3.Error) as exc:
        if is_disk_full(exc, folder):
            raise disk_full(exc, folder, doing) from exc
        raise


def fsync_dir(folder: Path) -> None:
    """Make the renames and creations done in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are durable with the file's flush
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def make_dirs(folder: Path, *, private: bool = False) -> Path:
    """Create `folder` (and parents); a private folder is 0700 on POSIX."""
    folder.mkdir(parents=True, exist_ok=True)
    if private and os.name == "posix":
        with contextlib.suppress(OSError):
            os.chmod(folder, PRIVATE_DIR)
    return folder


@contextlib.contextmanager
def atomic_writer(path: Path, *, private: bool = False, durable: bool = True) -> Iterator[BinaryIO]:
    """Open a hidden temp file next to `path` for writing; on a clean exit it is flushed, fsynced (when
    `durable`) and renamed over `path`, and the folder is fsynced. On an error the temp file is removed
    and `path` is untouched."""
    folder = path.parent
    if not folder.is_dir():  # a folder we create for private files is private too (an existing one is left)
        make_dirs(folder, private=private)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, PRIVATE_FILE if private else PUBLIC_FILE)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise disk_full(exc, folder, f"writing {path.name}") from exc
        raise
    if durable:
        fsync_dir(folder)


def write_atomic(path: Path, data: bytes, *, private: bool = False, durable: bool = True) -> Path:
    """Write `data` to `path` through a temp file and a rename (see `atomic_writer`); returns `path`."""
    with atomic_writer(path, private=private, durable=durable) as fh:
        fh.write(data)
    return path


def create_private(path: Path) -> Path:
    """Make sure `path` exists as a 0600 file (its folder 0700 when created here), for files that other
    libraries open themselves (SQLite databases, log files): created with the private mode from the
    start, so no reader ever finds it readable by others. An existing file is made 0600."""
    if not path.parent.is_dir():
        make_dirs(path.parent, private=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE)
    try:
        if os.name == "posix":
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path


def is_stale_temp(name: str) -> bool:
    """True for the hidden temp names `atomic_writer` creates (left behind only by a killed process)."""
    return name.startswith(".") and name.endswith(".tmp")
