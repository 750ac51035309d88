"""The inbox folder and its claim protocol: which files wait, who holds which, where they end up.

See `pipeline.orders.inbox` for the layout. A claim is an atomic rename into processing/, so two
importers on one inbox never both take a file; an owner lock tells a live importer from a dead one.
Nothing is ever deleted, but for the imported files in done/ older than `[orders] keep_done_days`
(`prune_done`: they hold personal data, and the database keeps the orders).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat
import time
import uuid
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError, Problem, SettingsError
from pipeline.fsutil import disk_full, is_disk_full, make_dirs

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
    while os.path.lexists(target):  # a dangling symlink takes its name too
        n += 1
        target = folder / f"{name}.{n}"
    return target


def _already_there(src: Path, folder: Path, name: str) -> Path | None:
    """`folder/name` (or a suffixed one) when it is src itself: a move killed between link and unlink."""
    target, n = folder / name, 0
    while target.exists():
        with contextlib.suppress(OSError):
            if os.path.samefile(src, target):
                return target
        n += 1
        target = folder / f"{name}.{n}"
    return None


def _move_no_clobber(src: Path, folder: Path, name: str) -> Path:
    """Move src into folder under name (suffixing when taken) without ever replacing a file; a move
    that was cut between its link and its unlink is finished, not made twice (no `name.1` copy)."""
    there = _already_there(src, folder, name)
    if there is not None:
        os.unlink(src)
        return there
    for _ in range(1000):
        target = _free_name(folder, name)
        try:
            # fails if target exists: no silent overwrite, even in a race; a symlink is moved, not followed
            os.link(src, target, follow_symlinks=False)
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


def not_regular(path: Path) -> str | None:
    """What `path` is when it is not a regular file ("symbolic link", "FIFO", …), by lstat (never
    followed); None for a regular file or one that vanished."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "device"


class NotRegularFile(PipelineError):
    """A claimed entry that is not a regular file: it is never opened for reading (`kind` says what)."""

    def __init__(self, kind: str):
        super().__init__(f"not a regular file ({kind}); it was not read")
        self.kind = kind


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file `path`, opened without following a symlink and without blocking on
    a FIFO. NotRegularFile for anything else; ValueError (with the size) when over `max_bytes`."""
    flags = (
        os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    )
    kind = not_regular(path)
    if kind is not None:  # (also where O_NOFOLLOW does not exist)
        raise NotRegularFile(kind)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.islink(path):  # swapped for a symlink after the check: ELOOP
            raise NotRegularFile("symbolic link") from None
        raise exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(_kind(st.st_mode))
        if st.st_size > max_bytes:
            raise ValueError(st.st_size)
        return fh.read(max_bytes + 1)


def _make_folder(folder: Path, created: list[Path]) -> None:
    """Create an inbox folder (0700: order files hold personal data); an unusable path is a settings
    problem naming orders.inbox."""
    if folder.is_dir():
        return
    if folder.exists() or folder.is_symlink():
        raise SettingsError(
            Problem(
                "orders.inbox", f"{folder} is not a folder", "point orders.inbox at a folder (or a new path)"
            )
        )
    try:
        make_dirs(folder, private=True)
    except OSError as exc:
        raise SettingsError(
            Problem(
                "orders.inbox",
                f"cannot create {folder}: {exc.strerror or exc}",
                "point orders.inbox at a folder this user may write, or create it with the right owner",
            )
        ) from None
    created.append(folder)


# Names in done/ and quarantine/ stay below this many bytes, so `.reason.txt` and a `.N` suffix still fit
# in the 255 bytes most file systems allow; a longer name is cut and tagged with a hash of the whole.
MAX_KEPT_NAME_BYTES = 200


def name_hash(name: str) -> str:
    """A short, stable tag of a file name (claims are named by it, never by the name itself)."""
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:20]


def kept_name(name: str) -> str:
    """`name`, or, when it is too long to keep with a suffix, its start plus a hash and its extension."""
    raw = os.fsencode(name)
    if len(raw) <= MAX_KEPT_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = f".{ext}" if dot and len(ext) <= 10 else ""
    head = raw[: MAX_KEPT_NAME_BYTES - 40].decode("utf-8", "ignore") or "order"
    return f"{head}-{name_hash(name)[:12]}{ext}"


class Inbox:
    """The folder layout and the claim protocol of one importer process."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.processing = self.root / "processing"
        self.done = self.root / "done"
        self.quarantine = self.root / "quarantine"
        #: the folders this object had to create (the caller journals them)
        self.created: list[Path] = []
        for d in (self.root, self.processing, self.done, self.quarantine):
            _make_folder(d, self.created)
        #: entries of the inbox folder that are not order files (not regular): skipped, never read
        self.odd: dict[str, str] = {}
        self.odd_said: set[str] = set()
        who = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"
        # Short whatever the host name: a claim is `<owner>~<name hash>` (the original name lives in
        # `processing/.name-<name hash>`), so no inbox name is too long to be claimed.
        self.owner = hashlib.sha256(who.encode()).hexdigest()[:12]
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
                    elif name not in SUBDIRS:
                        self.odd[name] = _kind(entry.stat(follow_symlinks=False).st_mode)
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
        """Atomically take a file into processing/; None when another importer was faster.

        The claim is named `<owner>~<hash of the name>`; the name itself is written first to
        `processing/.name-<hash>` (a kill between the two leaves only a harmless side file)."""
        tag = name_hash(path.name)
        side = self.processing / f".name-{tag}"
        if not side.exists():
            self._write_side(side, path.name)
        target = self.processing / f"{self.owner}~{tag}"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        self._seen.pop(path.name, None)
        if not side.exists():  # cleared as litter by another importer between our check and the rename
            self._write_side(side, path.name)
        return target

    def _write_side(self, side: Path, name: str) -> None:
        """Write the side file holding a claim's original name (temp name, rename); on a failure the
        temp file goes again, and a full disk is a DiskFullError naming processing/."""
        tmp = side.with_name(f"{side.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_bytes(os.fsencode(name))
            os.replace(tmp, side)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if is_disk_full(exc):
                raise disk_full(exc, self.processing, f"claiming {name}") from None
            raise

    def original_name(self, claim: Path) -> str:
        """The file name a claim had in the inbox (from its side file; a claim of an older version of
        the program carries the name itself)."""
        if "~" not in claim.name:
            return claim.name
        tag = claim.name.split("~", 1)[1]
        try:
            return os.fsdecode((self.processing / f".name-{tag}").read_bytes())
        except OSError:
            return tag

    def _forget_name(self, claim: Path) -> None:
        """Remove the side file of a claim that left processing/ (unless another claim of that name is there)."""
        if "~" not in claim.name:
            return
        tag = claim.name.split("~", 1)[1]
        with os.scandir(self.processing) as it:
            if any(e.name.endswith(f"~{tag}") for e in it):
                return
        with contextlib.suppress(OSError):
            (self.processing / f".name-{tag}").unlink()

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
        for owner in dead | self._dead_without_claims():
            with contextlib.suppress(OSError):
                (self.processing / f".owner-{owner}.lock").unlink()
        self._clear_stray_names()
        return taken

    def _clear_stray_names(self) -> None:
        """Remove side files (`.name-<tag>`, and their temp files) that no claim needs any more and that
        are older than a minute: a kill between writing one and the claim's rename, or between a claim
        leaving processing/ and its `_forget_name`, leaves them behind; they would pile up for good."""
        old = time.time() - 60
        with os.scandir(self.processing) as it:
            names = [e.name for e in it]
        claimed = {n.split("~", 1)[1] for n in names if "~" in n and not n.startswith(".")}
        for name in names:
            if not name.startswith(".name-"):
                continue
            tag = name[len(".name-") :].split(".", 1)[0]
            if tag in claimed:
                continue
            path = self.processing / name
            with contextlib.suppress(OSError):
                if path.lstat().st_mtime < old:
                    path.unlink()

    def _dead_without_claims(self) -> set[str]:
        """Owners whose lock is free and older than a minute (killed importers that held no claim):
        their lock files are only litter. Young ones are left alone: an importer that is starting
        creates its file a moment before it takes the lock on it."""
        dead = set()
        old = time.time() - 60
        for lock in self.processing.glob(".owner-*.lock"):
            owner = lock.name[len(".owner-") : -len(".lock")]
            with contextlib.suppress(OSError):
                if owner != self.owner and lock.stat().st_mtime < old and not self._owner_alive(owner):
                    dead.add(owner)
        return dead

    def mine(self) -> list[Path]:
        """Claims this process holds (left over by an interrupted pass of this process)."""
        prefix = f"{self.owner}~"
        return sorted(p for p in self.processing.iterdir() if p.name.startswith(prefix))

    # --- outcomes -------------------------------------------------------------------------------------

    def finish(self, claim: Path) -> Path:
        """An imported file goes to done/. No fsync: should the move be lost in a crash, the file is
        imported again and found unchanged (the database, not the folder, keeps exactly-once). A full
        disk is a DiskFullError naming done/ (the claim stays, to be given back)."""
        name = self.original_name(claim)
        try:
            target = _move_no_clobber(claim, self.done, kept_name(name))
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full(exc, self.done, f"moving {name} to done/") from None
            raise
        self._forget_name(claim)
        return target

    def to_quarantine(self, claim: Path, reason: str) -> Path:
        """A damaged file goes to quarantine/ next to `<name>.reason.txt`. The reason is written first:
        when even that does not fit on the disk (DiskFullError naming quarantine/), the file is not
        moved — never a quarantined file without its reason — and stays claimable once given back."""
        name = self.original_name(claim)
        kept = kept_name(name)
        tmp = self.quarantine / f".{self.owner}-{uuid.uuid4().hex[:8]}.reason.tmp"
        note = "" if kept == name else f"\n(original file name: {name})"
        try:
            try:
                tmp.write_text(f"{reason}{note}\n", encoding="utf-8")
                target = _move_no_clobber(claim, self.quarantine, kept)
            except OSError as exc:
                if is_disk_full(exc):
                    raise disk_full(exc, self.quarantine, f"quarantining {name}") from None
                raise
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.replace(tmp, Path(str(target) + ".reason.txt"))
        self._forget_name(claim)
        _fsync_dir(self.quarantine)
        return target

    def retry_changed(self) -> list[tuple[str, str]]:
        """Quarantined files written to after they were set aside (a slow writer that paused longer
        than settle_seconds and then finished its file) go back to the inbox to be read again; their
        reason file goes. Returns (name, old reason) of each."""
        back = []
        with os.scandir(self.quarantine) as it:
            names = [
                e.name for e in it if e.is_file(follow_symlinks=False) and not e.name.endswith(".reason.txt")
            ]
        for name in names:
            path = self.quarantine / name
            reason = self.quarantine / f"{name}.reason.txt"
            try:
                if path.stat().st_mtime_ns <= reason.stat().st_mtime_ns:
                    continue
                old = reason.read_text(encoding="utf-8", errors="replace").strip()
                _move_no_clobber(path, self.root, name)
            except OSError:  # no reason file (not ours), or another importer was faster
                continue
            with contextlib.suppress(OSError):
                reason.unlink()
            back.append((name, old))
        return back

    def give_back(self, claim: Path) -> Path:
        """Return a claim to the inbox (import to be retried later)."""
        target = _move_no_clobber(claim, self.root, self.original_name(claim))
        self._forget_name(claim)
        return target


def prune_done(settings: Any, *, journal: Any, now: float | None = None) -> int:
    """Delete the imported order files (personal data) in inbox/done older than `[orders]
    keep_done_days` (0 keeps them); the database keeps the orders. Returns how many went."""
    days = settings.orders.keep_done_days
    done = Path(settings.orders.inbox) / "done"
    if days <= 0 or not done.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - days * 86400
    removed = 0
    with os.scandir(done) as it:
        for entry in it:
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
    if removed:
        journal.event(
            "orders",
            f"removed {removed} imported order file(s) older than {days} days from {done} "
            "([orders] keep_done_days)",
            removed=removed,
        )
    return removed
