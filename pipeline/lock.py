"""One run at a time, also across processes: an OS file lock on `[journal] lock_file`.

The lock is an advisory OS lock (`fcntl.flock` on POSIX, `msvcrt.locking` on Windows) held on an
open file, so the operating system releases it when the holder exits for any reason — a crash, a
`kill -9`, a power cut — and there is never a stale lock to clean up by hand. The file itself stays
in place; after taking the lock the holder writes who it is (pid, host, command, start time) into it
so that a second run can name the holder in its message.

    with run_lock(settings, "sync", wait=60):
        ...  # nobody else runs a stage meanwhile

A nested `run_lock` on the same file in the same thread is a no-op (the outer one already holds it),
so a command that takes the lock may call helpers that take it too.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pipeline.errors import LockedError
from pipeline.progress import Progress

# The first byte of the file is the byte that is locked; the holder's description follows it. On
# Windows a locked byte cannot be read by other processes, so the description must not overlap it.
_INFO_OFFSET = 1
_POLL_SECONDS = 0.2

_held = threading.local()


@dataclass(frozen=True)
class LockInfo:
    """Who holds (or held) the lock."""

    pid: int
    host: str
    command: str
    started: str

    def since(self) -> str:
        """The start time as `2026-12-02 14:05:01 UTC` (as written when it is not a timestamp)."""
        try:
            return datetime.fromisoformat(self.started).strftime("%Y-%m-%d %H:%M:%S UTC")
        except ValueError:
            return self.started

    def describe(self) -> str:
        """One line for messages: `"serve: full exchange" (pid 123 on host, since 14:05:01 UTC, 3 min)`."""
        age = ""
        try:
            seconds = (datetime.now(UTC) - datetime.fromisoformat(self.started)).total_seconds()
            age = f", running {_human_seconds(seconds)}"
        except ValueError:
            pass
        return f'"{self.command}" (pid {self.pid} on {self.host}, since {self.since()}{age})'


def _human_seconds(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fh: IO[bytes]) -> bool:
        fh.seek(0)
        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fh: IO[bytes]) -> None:
        fh.seek(0)
        with suppress(OSError):
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fh: IO[bytes]) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            return False
        return True

    def _unlock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _lock_path(settings_or_path: Any) -> Path:
    if isinstance(settings_or_path, str | Path):
        return Path(settings_or_path)
    return Path(settings_or_path.journal.lock_file)


def _open(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fh = os.fdopen(fd, "r+b", buffering=0)
    if os.fstat(fd).st_size < _INFO_OFFSET:
        # A new file: give it its lock byte. (On Windows the write fails while another process has
        # just locked that byte; the file is then theirs to fill.)
        with suppress(OSError):
            fh.seek(0)
            fh.write(b"\n")
    return fh


def holder(settings_or_path: Any) -> LockInfo | None:
    """The current holder of the lock, or None when nobody holds it."""
    path = _lock_path(settings_or_path)
    if not path.exists():
        return None
    fh = _open(path)
    try:
        if _try_lock(fh):
            _unlock(fh)
            return None
        return _read_info(fh)
    finally:
        fh.close()


def _read_info(fh: IO[bytes]) -> LockInfo | None:
    try:
        fh.seek(_INFO_OFFSET)
        data = json.loads(fh.read().decode("utf-8") or "null")
        return LockInfo(int(data["pid"]), str(data["host"]), str(data["command"]), str(data["started"]))
    except (OSError, ValueError, TypeError, KeyError):
        # The holder has not written its description yet (it is a matter of microseconds).
        return None


def _write_info(fh: IO[bytes], info: LockInfo) -> None:
    fh.seek(_INFO_OFFSET)
    fh.truncate()
    fh.write(json.dumps(info.__dict__, ensure_ascii=False).encode("utf-8"))
    os.fsync(fh.fileno())


def _holder_text(fh: IO[bytes]) -> str:
    current = _read_info(fh)
    if current is None:  # (it is writing its description this very moment)
        return "another process"
    return f"pid {current.pid} ({current.command!r} on {current.host}) since {current.since()}"


def _waiting_line(wait: float | None) -> Any:
    """The text of a plain progress line of the lock wait: who holds the lock, how long so far."""

    def text(bar: Progress) -> str:
        if bar.finished:
            return f"waited {int(bar.elapsed)} s for the run lock"
        limit = "no limit" if wait is None else f"{wait:g} s"
        return f"{bar.desc}, {int(bar.elapsed)} s / {limit}"

    return text


def _wait_for(fh: IO[bytes], path: Path, what: str, wait: float | None) -> None:
    """Wait until the lock is ours, showing the wait on the console; LockedError when `wait` runs out."""
    deadline = None if wait is None else time.monotonic() + max(0.0, wait)
    total = None if wait is None else int(wait)
    desc = f"waiting for the run lock held by {_holder_text(fh)}"
    bar = Progress(total, desc, "s", enabled=wait != 0, line=_waiting_line(wait), announce=True)
    try:
        while not _try_lock(fh):
            if deadline is not None and time.monotonic() >= deadline:
                current = _read_info(fh)
                who = current.describe() if current else "another process"
                waited = f" after waiting {wait:g} s" if wait else ""
                raise LockedError(
                    f"cannot start {what!r}: another run holds the lock{waited}: {who}. "
                    f"Wait for it to finish (or stop it), or retry with a longer wait. Lock file: {path}"
                )
            time.sleep(_POLL_SECONDS)
            bar.update(int(bar.elapsed) - bar.done)  # the bar counts whole seconds waited
    finally:
        bar.close()


@contextmanager
def run_lock(settings_or_path: Any, what: str, wait: float | None = 0) -> Iterator[LockInfo]:
    """Hold the run lock while the block runs.

    `what` names the run in other runs' messages ("sync", "serve: orders"). `wait` is how many
    seconds to wait for another holder to finish (0 = refuse at once, None = wait for ever).
    Raises LockedError naming the holder when the lock is still taken after the wait.
    """
    path = _lock_path(settings_or_path).resolve()
    held: dict[Path, LockInfo] = getattr(_held, "paths", None) or {}
    _held.paths = held
    if path in held:  # this thread holds it already: nested use
        yield held[path]
        return
    fh = _open(path)
    try:
        if not _try_lock(fh):
            _wait_for(fh, path, what, wait)
        info = LockInfo(
            os.getpid(), socket.gethostname(), what, datetime.now(UTC).isoformat(timespec="seconds")
        )
        _write_info(fh, info)
        held[path] = info
        try:
            yield info
        finally:
            del held[path]
            try:
                fh.seek(_INFO_OFFSET)
                fh.truncate()
            except OSError:
                pass
            _unlock(fh)
    finally:
        fh.close()


def locked(what: str) -> Any:
    """Decorator for a CLI command (placed under `@pass_app`): run it under the run lock.

    A run already going makes the command wait up to `[schedule] lock_wait_seconds`, then fail with
    a LockedError naming the holder (exit code 1). `--set schedule.lock_wait_seconds=0` refuses at once.
    """
    import functools

    def decorate(func: Any) -> Any:
        @functools.wraps(func)
        def wrapper(app: Any, *args: Any, **kwargs: Any) -> Any:
            settings = app.settings
            with run_lock(settings, what, wait=settings.schedule.lock_wait_seconds):
                return func(app, *args, **kwargs)

        return wrapper

    return decorate
