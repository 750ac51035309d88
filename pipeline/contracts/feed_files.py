"""Which files the last good feed run produced: the contract between the feed stage and publish.

The feed stage records, after its files are in place, the names (relative to `[feed] output_dir`) of
exactly the files it built for Satu (the YML feed first, then companion files such as the groups
table). Publish uploads exactly these files and nothing else found in the folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAMESPACE = "feed.files"
SCHEMA = 1
_KEY = "last"


@dataclass(frozen=True)
class FeedFiles:
    """The feed file and its companions, by name relative to the feed folder, in upload order
    (companions first is the publisher's business; `feed` is always the YML file)."""

    feed: str
    companions: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every file of the run, the YML feed last (so a reader never sees a feed before its companions)."""
        return (*self.companions, self.feed)


def record(state: Any, files: FeedFiles) -> None:
    """Save what the feed stage produced (call only after the files are durable in place)."""
    state.put(NAMESPACE, _KEY, {"schema": SCHEMA, "feed": files.feed, "companions": list(files.companions)})


def read(state: Any) -> FeedFiles | None:
    """What the last good feed run produced, or None when no feed run recorded it (or an older schema)."""
    raw = state.get(NAMESPACE, _KEY) if state is not None else None
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA or not raw.get("feed"):
        return None
    return FeedFiles(str(raw["feed"]), tuple(str(c) for c in raw.get("companions") or ()))
