"""Progress for long loops: a tqdm bar on a terminal, plain log lines when output is not a terminal.

Services and cron jobs write to files, where a redrawn bar is noise; there a line every few seconds
(and a final one) says how far the work got.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """Count work done; show it as a bar (terminal) or as periodic lines (anything else)."""

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "file",
        *,
        stream: TextIO | None = None,
        interval: float = 5.0,
        enabled: bool = True,
    ):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream or sys.stderr
        self.interval = interval
        self.done = 0
        self._started = time.monotonic()
        self._last = self._started
        self._bar: Any = None
        self._enabled = enabled and total > 0
        if self._enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=False)

    def update(self, n: int = 1) -> None:
        """Record n more items done."""
        self.done += n
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._line()

    def _line(self) -> None:
        elapsed = time.monotonic() - self._started
        print(
            f"{self.desc}: {self.done}/{self.total} {self.unit}s ({elapsed:.1f} s)",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        """Finish: close the bar, or write the final line."""
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
