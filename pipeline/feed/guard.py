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
    return _go_on(message, result, journal, diff.as_dict(), dry_run=dry_run, force=force)


def count_pictures(feed: Path) -> int:
    """How many <picture> elements a feed file holds (streamed: a feed may be hundreds of MB)."""
    tag, count, tail = b"<picture>", 0, b""
    with open(feed, "rb") as fh:
        while chunk := fh.read(1 << 20):
            data = tail + chunk
            count += data.count(tag)
            # Keep the last bytes that could start a tag cut by the chunk boundary (never a whole one).
            tail = data[-(len(tag) - 1) :]
    return count


def picture_guard(
    previous: Path,
    new: Path,
    result: FeedResult,
    journal: Any,
    *,
    max_drop: float,
    dry_run: bool,
    force: bool,
) -> bool:
    """The mass-change guard for pictures: a feed that would lose more than `max_drop` percent of the
    live feed's pictures at once (a lost or emptied state: no published photo URLs) is stopped too."""
    if not previous.exists():
        return True
    before = count_pictures(previous)
    after = count_pictures(new)
    if before == 0 or after >= before or (before - after) * 100.0 / before <= max_drop:
        return True
    message = (
        f"mass-change guard: this feed would drop {before - after} of the live feed's {before} pictures "
        f"({(before - after) * 100.0 / before:.1f}% > [feed] max_drop_percent {max_drop:g}%); were the "
        f"photo URLs lost (state file deleted or new)? Run `photos` first"
    )
    return _go_on(
        message,
        result,
        journal,
        {"pictures_before": before, "pictures_after": after},
        dry_run=dry_run,
        force=force,
    )


def _go_on(message: str, result: FeedResult, journal: Any, data: dict, *, dry_run: bool, force: bool) -> bool:
    if force:
        journal.event("feed", message + "; published anyway (--force)", level="warning")
        return True
    if dry_run:
        result.stopped = message + "; a real run would stop here (unless --force)"
        journal.event("feed", "dry run: " + result.stopped, level="warning", **data)
    else:
        result.stopped = message + (
            "; the feed was not replaced — check the catalog, or run with --force if this is intended"
        )
        journal.event("feed", result.stopped, level="error", **data)
    return False


__all__ = ["compute_diff", "count_pictures", "guard", "picture_guard", "previous_snapshot"]
