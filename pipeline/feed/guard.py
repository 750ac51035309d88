"""Guard: compare the new feed with the last published one and stop a mass drop of offers.

The diff (added, removed, price and stock changes) goes into the result; when more than
`[feed] max_drop_percent` of the previous offers would disappear, the run keeps the last feed unless
forced. Returns whether the run may go on to commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.feed.history import Diff, History, compute_diff, snapshot_from_feed
from pipeline.feed.result import FeedResult


def previous_snapshot(history: History, output: Path, scratch: Path, available_value: str) -> Path | None:
    """The snapshot of the last published feed: from history, else rebuilt from the feed file in place."""
    previous = history.last_snapshot()
    if previous is None and output.exists():
        previous = snapshot_from_feed(output, scratch, available_value)
    return previous


def guard(
    diff: Diff, result: FeedResult, journal: Any, *, max_drop: float, dry_run: bool, force: bool
) -> bool:
    """Apply the mass-change guard to `diff`; False when the run must stop here (reason in `stopped`)."""
    result.diff = diff.as_dict()
    if not diff.has_previous or diff.drop_percent <= max_drop:
        return True
    message = (
        f"mass-change guard: this feed would remove {diff.removed} of {diff.previous} offers "
        f"({diff.drop_percent:.1f}% > [feed] max_drop_percent {max_drop:g}%)"
    )
    if force:
        journal.event("feed", message + "; published anyway (--force)", level="warning")
        return True
    if dry_run:
        result.stopped = message + "; a real run would stop here (unless --force)"
        journal.event("feed", "dry run: " + result.stopped, level="warning", **diff.as_dict())
    else:
        result.stopped = message + (
            "; the feed was not replaced — check the catalog, or run with --force if this is intended"
        )
        journal.event("feed", result.stopped, level="error", **diff.as_dict())
    return False


__all__ = ["compute_diff", "guard", "previous_snapshot"]
