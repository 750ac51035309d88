"""What a feed run did: the feed stage's typed result (a `pipeline.stage.StageResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.stage import ResultBase


@dataclass
class FeedResult(ResultBase):
    """What a feed run did. `skip_reasons` counts products left out, per reason (out-of-stock ones are
    `hidden`); `skipped` is the stage flag (always False: a feed run always has something to build);
    `stopped` says why the mass-change guard kept the last feed; `interrupted` that a stop was asked."""

    offers: int = 0
    hidden: int = 0
    awaiting: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    pictures_dropped: int = 0
    pictures_missing: int = 0
    pictures_private: int = 0  # pictures on loopback/private hosts Satu cannot download from
    pictures_invalid: int = 0  # photo values left out: not an http(s) URL, nor a list of them
    vendors_omitted: int = 0  # offers whose brand [feed] vendor left out
    without_photos: int = 0  # offers that go out with no <picture> (Satu documents 1–10)
    names_truncated: int = 0
    articles_changed: int = 0
    params_cut: int = 0  # <param> values cut to Satu's 255 characters
    group_ids_dropped: int = 0  # offers whose model id was outside Satu's 1..999999999
    links_stripped: int = 0  # description links to other sites taken out (Satu's moderation)
    countries_unknown: dict[str, int] = field(default_factory=dict)  # country values not in the table
    categories: int = 0
    without_portal_category: int = 0  # offers whose section has no Satu category (see [feed] category_map)
    products: int = 0
    ok: bool = False
    skipped: bool = False
    interrupted: bool = False
    written: bool = False
    dry_run: bool = False
    output: Path | None = None
    stopped: str = ""
    problems: list[str] = field(default_factory=list)  # type: ignore[assignment]
    section_problems: list[str] = field(default_factory=list)
    diff: dict[str, Any] | None = None
    groups_files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        d = asdict(self)
        d["output"] = str(self.output) if self.output else None
        return d
