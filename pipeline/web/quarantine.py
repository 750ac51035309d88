"""The quarantine folder of the order inbox: list damaged files with their reasons, retry, set aside.

"Retry" moves a file back into the inbox (the importer takes it on its next pass); "set aside for
good" moves it into `quarantine/kept/`. Nothing here ever deletes a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.fsutil import fsync_dir
from pipeline.orders.claims import NotRegularFile, not_regular, read_regular

REASON_SUFFIX = ".reason.txt"
PREVIEW_BYTES = 4000


@dataclass
class QuarantinedFile:
    """One damaged order file."""

    name: str
    size: int
    mtime: float
    reason: str
    preview: str


def folders(settings: Any) -> tuple[Path, Path, Path]:
    """(inbox, quarantine, kept) folders of `[orders] inbox`."""
    inbox = Path(settings.orders.inbox)
    return inbox, inbox / "quarantine", inbox / "quarantine" / "kept"


def listing(settings: Any) -> list[QuarantinedFile]:
    """The quarantined files, newest first, each with its reason and the start of its content."""
    _, quarantine, _ = folders(settings)
    if not quarantine.is_dir():
        return []
    out = []
    for p in quarantine.iterdir():
        if p.name.endswith(REASON_SUFFIX) or p.name.startswith(".") or p.is_dir():
            continue
        reason_file = Path(str(p) + REASON_SUFFIX)
        try:
            reason = reason_file.read_text(encoding="utf-8").strip()
        except OSError:
            reason = ""
        st = p.lstat()
        out.append(QuarantinedFile(p.name, st.st_size, st.st_mtime, reason, _preview(p)))
    out.sort(key=lambda q: q.mtime, reverse=True)
    return out


def _preview(path: Path) -> str:
    """The start of a quarantined file; a symlink or FIFO set aside by the inbox is never opened."""
    kind = not_regular(path)
    if kind is not None:
        return f"({kind}: not shown)"
    try:
        return read_regular(path, PREVIEW_BYTES)[:PREVIEW_BYTES].decode("utf-8", errors="replace")
    except NotRegularFile as exc:
        return f"({exc.kind}: not shown)"
    except ValueError:  # larger than the preview: read its start only (it is a regular file)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            return fh.read(PREVIEW_BYTES).decode("utf-8", errors="replace")


def _checked(quarantine: Path, name: str) -> Path:
    """The quarantined file called `name`; refuses anything that is not a plain name in the folder."""
    if not name or name != Path(name).name or name.startswith(".") or name.endswith(REASON_SUFFIX):
        raise PipelineError(f"{name!r} is not a quarantined file name")
    path = quarantine / name
    if not os.path.lexists(path) or path.is_dir():
        raise PipelineError(f"{name} is no longer in quarantine (already retried or set aside?)")
    return path


def _move(path: Path, folder: Path) -> Path:
    """Move without overwriting: a name already taken gets a numbered suffix."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists():
        target = folder / f"{path.stem}.{n}{path.suffix}"
        n += 1
    os.rename(path, target)
    fsync_dir(folder)
    return target


def retry(settings: Any, name: str, journal: Any = None) -> Path:
    """Move a quarantined file back to the inbox; its reason goes to `kept/` as a record."""
    inbox, quarantine, kept = folders(settings)
    path = _checked(quarantine, name)
    target = _move(path, inbox)
    reason = Path(str(path) + REASON_SUFFIX)
    if reason.exists():
        _move(reason, kept)
    if journal is not None:
        journal.event("web", f"quarantined file {name} sent back to the inbox", file=name)
    return target


def set_aside(settings: Any, name: str, journal: Any = None) -> Path:
    """Move a quarantined file (and its reason) to `quarantine/kept/` for good."""
    _, quarantine, kept = folders(settings)
    path = _checked(quarantine, name)
    target = _move(path, kept)
    reason = Path(str(path) + REASON_SUFFIX)
    if reason.exists():
        os.rename(reason, Path(str(target) + REASON_SUFFIX))
    if journal is not None:
        journal.event("web", f"quarantined file {name} set aside for good", file=name, kept=str(target))
    return target
