"""Runs the real Service with small test jobs, in its own process (used by tests/test_service.py).

    python tests/service_harness.py BASE_DIR MODE

MODE "ticks": one job every second whose first step counts and whose second step always raises.
MODE "slow":  one job whose first step takes 3 s (like an upload) and whose second step records it ran.
MODE "long":  one job whose first step works through 1200 items (0.1 s each, about two minutes),
              asking `should_stop` between items and saving its progress, like the feed's offer loop.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.service import Job, Service, Step, StepContext  # noqa: E402
from pipeline.settings import build  # noqa: E402
from pipeline.stage import ResultBase  # noqa: E402


@dataclass
class Counted(ResultBase):
    """A test step's result: one figure."""

    ticks: int = 0
    uploaded: int = 0
    items: int = 0
    ok: bool = True
    interrupted: bool = False


def count(ctx: StepContext) -> Counted:
    ticks = ctx.state.get("harness", "ticks", 0) + 1
    ctx.state.put("harness", "ticks", ticks)
    return Counted(ticks=ticks)


def boom(ctx: StepContext) -> None:
    raise RuntimeError("this step always fails")


def slow(ctx: StepContext) -> Counted:
    ctx.state.put("harness", "slow_started", time.time())
    time.sleep(3)
    ctx.state.put("harness", "slow_finished", time.time())
    return Counted(uploaded=1)


def long(ctx: StepContext) -> Counted:
    done = Counted()
    for _ in range(1200):
        if ctx.should_stop():
            done.interrupted = True
            break
        time.sleep(0.1)
        done.items += 1
        ctx.state.put("harness", "long_items", done.items)
    return done


def after(ctx: StepContext) -> None:
    ctx.state.put("harness", "after_ran", True)


def main() -> int:
    base, mode = Path(sys.argv[1]), sys.argv[2]
    settings = build(
        {
            "journal": {
                "path": str(base / "journal.sqlite"),
                "log_file": str(base / "sync.log"),
                "state_path": str(base / "state.sqlite"),
                "lock_file": str(base / "run.lock"),
            },
            "feed": {"output": str(base / "feeds" / "satu.yml")},
            "orders": {"inbox": str(base / "inbox")},
        },
        base,
    )
    if mode == "ticks":
        jobs = [Job("ticker", 1.0, [Step("count", count), Step("boom", boom)])]
    elif mode == "long":
        jobs = [Job("long", 600.0, [Step("long", long), Step("after", after)])]
    else:
        jobs = [Job("slow", 60.0, [Step("slow", slow), Step("after", after)])]
    return Service(settings, jobs, watcher=False).run()


if __name__ == "__main__":
    sys.exit(main())
