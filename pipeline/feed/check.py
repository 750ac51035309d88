"""Render-and-check: the feed template is rendered into a temp file while a helper process validates the
offers (`validate.OffersStreamCheck`); a file that fails any check is reported and never published."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipeline.feed.render import render_feed
from pipeline.feed.result import FeedResult
from pipeline.feed.validate import FeedReport, OffersStreamCheck

JOURNAL_SAMPLES = 50
PROBLEMS_KEPT = 1000


def render_and_check(
    template: Any,
    variables: dict[str, Any],
    offers: Iterable[Any],
    categories: Callable[[], list[Any]],
    dest: Path,
) -> FeedReport:
    """Render the whole feed into `dest` and return the validation report of exactly that file."""
    stream_check = OffersStreamCheck()
    try:
        layout = render_feed(template, variables, offers, categories, dest, tee=stream_check)
    except BaseException:
        stream_check.close()
        raise
    return stream_check.report(dest, layout)


def reject(report: FeedReport, result: FeedResult, journal: Any) -> None:
    """Record a failed validation in the result and the journal (the last good feed stays)."""
    problems = report.problems or []
    result.problems = [str(p) for p in problems[:PROBLEMS_KEPT]]
    for p in result.problems[:JOURNAL_SAMPLES]:
        journal.event("feed", f"rendered feed fails validation: {p}", level="error")
    journal.event(
        "feed",
        f"feed not published: {len(problems)} validation problem(s); the last good feed stays in place",
        level="error",
    )
