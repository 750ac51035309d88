"""Commit: put a checked feed in place, then everything that follows it (history, groups file, state).

The feed file goes in first (rename, folder fsynced); only then are the history entry, the groups file,
the `feed.offers` contract (for the API push) and the `feed.files` contract (for publish) written, so
no state ever describes a feed that is not durable in place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipeline.contracts import feed_offers
from pipeline.contracts.feed_files import FeedFiles
from pipeline.contracts.feed_files import record as record_files
from pipeline.feed.groups import group_rows, write_groups
from pipeline.feed.history import History, merge, read_snapshot
from pipeline.feed.result import FeedResult
from pipeline.fsutil import fsync_dir

META_NS = "feed.meta"


def commit(run: Any, result: FeedResult, used_sections: list[Any], photo_url: Any) -> None:
    """Rename the checked temp feed into place and record it (see the module docstring).

    `run` is the run's `RunPaths` (output, temp files, history, stamp, previous snapshot)."""
    output: Path = run.output
    os.replace(run.tmp, output)
    fsync_dir(output.parent)
    result.written = True
    summary = {k: v for k, v in result.as_dict().items() if k != "problems"}
    run.history.record(run.stamp, output, run.snap_tmp, run.diff_tmp, summary)
    if run.groups_kind != "none":
        written = write_groups(group_rows(used_sections, photo_url, run.links), output, run.groups_kind)
        result.groups_files = [str(p) for p in written]
    if run.is_main:
        update_offers(
            run.state,
            run.previous,
            run.prev_stamp,
            run.history.path(run.stamp, ".offers.tsv"),
            started=run.started,
        )
        run.state.put(META_NS, "snapshot", run.stamp)
        companions = tuple(os.path.relpath(p, output.parent) for p in result.groups_files)
        record_files(run.state, FeedFiles(feed=output.name, companions=companions))


def update_offers(
    state: Any, previous: Path | None, prev_stamp: str | None, current: Path, *, started: float = 0.0
) -> None:
    """Record per-offer price/stock/presence of the feed now in place (the `feed.offers` contract).

    When the state reflects the previous snapshot (marker in `feed.meta`), only changes are written;
    otherwise (first run, lost state) the namespace is rebuilt from the current snapshot. Either way an
    offer the stock watcher changed after this run began reading (`started`) keeps the watcher's record:
    it is newer than what this feed read.
    """
    marker = state.get(META_NS, "snapshot")
    newer = feed_offers.watched_since(state, started) if started else set()
    if previous is None or marker is None or marker != prev_stamp:
        kept = {oid: raw for oid, raw in state.items(feed_offers.NAMESPACE) if oid in newer}
        feed_offers.replace_all(
            state, ((r.id, r.offer()) for r in read_snapshot(current) if r.id not in newer)
        )
        state.put_many(feed_offers.NAMESPACE, kept.items())
    else:
        removed: list[str] = []

        def changed():
            for old, new in merge(read_snapshot(previous), read_snapshot(current)):
                if (old or new).id in newer:
                    continue
                if new is None:
                    removed.append(old.id)
                elif old is None or old != new:
                    yield new.id, new.offer()

        feed_offers.put_many(state, changed())
        feed_offers.remove(state, removed)
    if started:
        feed_offers.forget_watched(state, started)


__all__ = ["History", "META_NS", "commit", "update_offers"]
