"""The `local` target: a folder on this machine, served by a web server."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.fsutil import atomic_writer, is_stale_temp
from pipeline.publish.targets import IncompleteUpload, Target, translate_os


class LocalTarget(Target):
    """A folder on this machine (served by a local web server). Files are public (0644): Satu reads them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.label = f"local folder {self.root}"

    def connect(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # A killed run may have left a half-written copy of a feed file; publish holds the lock, so
        # no other run is writing one now.
        for leftover in self.root.iterdir():
            if is_stale_temp(leftover.name) and leftover.is_file():
                with contextlib.suppress(OSError):
                    leftover.unlink()

    def listing(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if not self.root.exists():
            return out
        for dirpath, _dirs, files in os.walk(self.root):
            for f in files:
                if is_stale_temp(f):
                    continue  # a write of a killed run, not a published file
                p = Path(dirpath) / f
                out[p.relative_to(self.root).as_posix()] = p.stat().st_size
        return out

    def put(self, local: Path, remote: str) -> None:
        dest = self.root / remote
        expected = local.stat().st_size
        # atomic_writer: a hidden temp file next to dest, removed again when the copy fails.
        with open(local, "rb") as src, atomic_writer(dest) as out:
            shutil.copyfileobj(src, out, 1 << 20)
            written = out.tell()
        if written != expected:
            raise IncompleteUpload(f"copying {local} to {dest}: {written} of {expected} bytes")

    def replace(self, tmp: str, live: str) -> None:
        try:
            os.replace(self.root / tmp, self.root / live)
        except OSError:
            with contextlib.suppress(OSError):
                (self.root / tmp).unlink()
            raise

    def remove(self, remote: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / remote).unlink()

    def translate(self, exc: BaseException, what: str) -> PipelineError:
        return translate_os(exc, what)
