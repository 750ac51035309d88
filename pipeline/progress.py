"""Progress for long loops: a tqdm bar on a terminal, plain lines when output is not a terminal.

Cron jobs write to mail or files, where a redrawn bar is noise; there a line every few seconds (and a
final one) says how far the work got. Progress is for a person at a console only: it is shown once a
command of the command line switched it on (`set_console(True)`, done by the CLI group), and the
service (`serve`, `web`) switches it off again, so its journal and the systemd log carry events, not
progress. Library calls (tests, the control room's actions) are silent by default.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

from pipeline import _testing

#: seconds between two plain lines when the output is not a terminal
INTERVAL_SECONDS = 5.0

_console = False
T = TypeVar("T")


def set_console(on: bool) -> None:
    """Allow (a console command) or forbid (the service) progress output in this process."""
    global _console
    _console = on


def console_enabled() -> bool:
    """Whether progress may be shown in this process (see the module doc)."""
    return _console


class Progress:
    """Count work done; show it as a bar (terminal) or as periodic lines (anything else): a line every
    `interval` seconds and, when there was one, a final line (a quicker step writes nothing).

    `total=None` is work of unknown size (a stream of products): the bar shows the count and the rate.
    `line` replaces the text of a plain line (the lock wait says who it waits for); `announce` writes a
    first plain line at once, for waits a person should understand before the first interval ends.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "file",
        *,
        stream: TextIO | None = None,
        interval: float | None = None,
        enabled: bool = True,
        line: Callable[[Progress], str] | None = None,
        announce: bool = False,
    ):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream or sys.stderr
        self.interval = interval if interval is not None else _testing.progress_seconds(INTERVAL_SECONDS)
        self.done = 0
        #: set when the work is over (a `line` can then say how it ended)
        self.finished = False
        self._started = time.monotonic()
        self._last = self._started
        self._bar: Any = None
        self._text = line
        self._lines = 0  # plain lines written so far
        # An explicit stream is the caller's own choice (a test, a report): it does not need the console.
        allowed = stream is not None or _console
        self._enabled = enabled and allowed and (total is None or total > 0)
        if not self._enabled:
            return
        if getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            plural = f" {unit}s" if len(unit) > 1 else unit  # "12 files", "12s" (seconds)
            self._bar = tqdm(total=total, desc=desc, unit=plural, file=self.stream, leave=False)
        elif announce:
            self._line()

    @property
    def elapsed(self) -> float:
        """Seconds since the work began."""
        return time.monotonic() - self._started

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

    def counted(self, items: Iterable[T]) -> Iterator[T]:
        """Pass `items` through, counting each one (for a stream consumed elsewhere)."""
        for item in items:
            yield item
            self.update()

    def _line(self) -> None:
        if self._text is not None:
            text = self._text(self)
        else:
            of = f"/{self.total}" if self.total is not None else ""
            text = f"{self.desc}: {self.done}{of} {self.unit}s ({self.elapsed:.1f} s)"
        self._lines += 1
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """Finish: close the bar, or write the final line."""
        if not self._enabled:
            return
        self._enabled = False
        self.finished = True
        if self._bar is not None:
            self._bar.close()
        elif self._lines:  # a step shorter than the interval stays silent: no noise in cron mail
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
