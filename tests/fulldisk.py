"""A REAL small file system for disk-full tests: a tmpfs of a few hundred KiB mounted for one test.

`mount -t tmpfs` needs root (CI runs the suite as root). Without it the test is skipped with the
reason — and fails under CI=true, where a skipped disk-full test would hide a regression. The disk
is filled by a hidden file in its own hidden folder (`.filler/blob`), so nothing the program lists
(inbox entries, published files, feed temps) ever sees it; `free()` removes it again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


class Disk:
    """A mounted tmpfs: `fill()` it to the last byte, `free()` it again."""

    def __init__(self, root: Path):
        self.root = root
        self._filler = root / ".filler"

    def fill(self) -> None:
        """Write until the file system answers ENOSPC, in ever smaller pieces (nothing fits after)."""
        self._filler.mkdir(exist_ok=True)
        fd = os.open(self._filler / "blob", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 20, 1 << 16, 4096, 512, 1):
                data = b"\0" * chunk
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, data)
        finally:
            os.close(fd)
        n = 0
        with contextlib.suppress(OSError):  # the last pages of the file system go to small files
            while True:
                (self._filler / f"crumb-{n}").write_bytes(b"\0" * 4096)
                n += 1

    def free(self) -> None:
        """Remove the filler: the disk has room again."""
        shutil.rmtree(self._filler, ignore_errors=True)

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def small_disk(root: Path, size: str = "2m") -> Iterator[Disk]:
    """Mount a tmpfs of `size` on `root` (created empty) for the block; unmounted after it."""
    root.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        why = (
            f"cannot mount a small tmpfs for a real full disk ({done.stderr.strip()}): run the tests as root"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield Disk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
