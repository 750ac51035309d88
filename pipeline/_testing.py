"""The one seam tests use to reach into the program; production code never reads test switches elsewhere.

Three things can be set, in-process by a test or for a child process by starting it through this module
(`python -m pipeline._testing [--kill-at POINT[#N]] [--minute-seconds S] [--progress-seconds S] --
<run.py arguments>`):

- fault points: production code calls `reach("importer.before_commit")` at the places where a crash
  matters; a test can make the Nth arrival at a point SIGKILL the process (or call any function);
- the service's clock: `minute_seconds()` is how long one configured "minute" of the schedule lasts
  (60 normally) and `interval_floor_minutes()` the full-exchange floor (10 normally), so a service test
  runs a schedule in seconds;
- the progress interval: `progress_seconds()` is how often a plain progress line is written when the
  output is not a terminal (5 s normally), so a test sees periodic lines without waiting.

Nothing here is active unless a test sets it.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

_actions: dict[str, Callable[[], None]] = {}
_arrivals: dict[str, int] = {}
_minute_seconds: float = 60.0
_floor_minutes: float = 10.0
_progress_seconds: float | None = None


def reach(point: str) -> None:
    """A named fault point: does nothing unless a test installed an action for it."""
    action = _actions.get(point)
    if action is not None:
        action()


def on(point: str, action: Callable[[], None]) -> None:
    """Run `action` every time `point` is reached (tests only)."""
    _actions[point] = action


def kill_at(point: str, nth: int = 1) -> None:
    """SIGKILL this process the `nth` time `point` is reached (tests only)."""

    def action() -> None:
        _arrivals[point] = _arrivals.get(point, 0) + 1
        if _arrivals[point] >= nth:
            os.kill(os.getpid(), signal.SIGKILL)

    on(point, action)


def clear() -> None:
    """Remove every action and restore the real clock."""
    global _minute_seconds, _floor_minutes, _progress_seconds
    _actions.clear()
    _arrivals.clear()
    _minute_seconds, _floor_minutes = 60.0, 10.0
    _progress_seconds = None


def set_clock(*, minute_seconds: float, floor_minutes: float = 1.0) -> None:
    """Make one schedule minute last `minute_seconds` and lower the full-exchange floor (tests only)."""
    global _minute_seconds, _floor_minutes
    _minute_seconds, _floor_minutes = minute_seconds, floor_minutes


def minute_seconds() -> float:
    """Seconds in one configured minute of the schedule (60 unless a test changed it)."""
    return _minute_seconds


def interval_floor_minutes() -> float:
    """The least interval of the full exchange in minutes (10 unless a test changed it)."""
    return _floor_minutes


def set_progress_seconds(seconds: float) -> None:
    """Write a plain progress line every `seconds` (tests only)."""
    global _progress_seconds
    _progress_seconds = seconds


def progress_seconds(default: float) -> float:
    """Seconds between plain progress lines (`default` unless a test changed it)."""
    return default if _progress_seconds is None else _progress_seconds


def main(argv: list[str]) -> None:
    """Start the CLI with fault points and the clock set from test arguments (see the module docstring)."""
    # Run as `python -m pipeline._testing` this file is `__main__`; the program imports it as
    # `pipeline._testing`, a second module object: set the seam on that one.
    from pipeline import _testing as seam

    args = list(argv)
    usage = (
        "usage: python -m pipeline._testing [--kill-at POINT[#N]] [--minute-seconds S] "
        "[--progress-seconds S] -- <run.py args>"
    )
    while args and args[0] != "--":
        flag = args.pop(0)
        if flag in ("-h", "--help") or not args:
            raise SystemExit(usage)
        value = args.pop(0)
        if flag == "--kill-at":
            point, _, nth = value.partition("#")
            seam.kill_at(point, int(nth or 1))
        elif flag == "--minute-seconds":
            seam.set_clock(minute_seconds=float(value))
        elif flag == "--progress-seconds":
            seam.set_progress_seconds(float(value))
        else:
            raise SystemExit(f"unknown test flag {flag}")
    if args:
        args.pop(0)
    from pipeline.cli import main as cli_main

    sys.argv = ["run.py", *args]
    cli_main()


if __name__ == "__main__":
    # Run `main` of the imported module, not of `__main__`: production code reaches the points there.
    from pipeline._testing import main as _main

    _main(sys.argv[1:])
