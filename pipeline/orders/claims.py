"""The inbox folder and its claim protocol: which files wait, who holds which, where they end up.

See `pipeline.orders.inbox` for the layout. A claim is an atomic rename into processing/, so two
importers on one inbox never both take a file; an owner lock tells a live importer from a dead one.
Nothing is ever deleted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from pathlib import Path

from pipeline.errors import PipelineError

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", "~")
SUBDIRS = ("processing", "done", "quarantine")
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: claims of dead owners are recovered after a day
    fcntl = None  # type: ignore[assignment]


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
