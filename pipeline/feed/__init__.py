"""The Satu.kz catalog feed: extract → render-and-check → guard → commit.

`run(settings, journal=…, state=…)` reads the catalog through the SQL mapping and applies the feed rules
to each product as it streams by (`extract`), renders the template block by block into a temporary file
while a helper process validates the offers (`check`), compares the result with the last published feed
(`guard`: mass-change guard, diff report), and only then renames it into place and records it
(`commit`: history, groups file, the `feed.offers` and `feed.files` contracts). A failed or interrupted
run never touches the last good feed.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.errors import DiskFullError, PipelineError, SettingsError
from pipeline.feed.result import FeedResult
from pipeline.fsutil import disk_guard, is_stale_temp
from pipeline.progress import Progress
from pipeline.stage import StopCheck, never_stop

JOURNAL_SAMPLES = 50

__all__ = ["FeedResult", "run"]


@dataclass
class RunPaths:
    """Where one run writes: the output, its temp files (all hidden `.….tmp`), history and state."""

    output: Path
    is_main: bool
    history: Any
    stamp: str
    state: Any
    groups_kind: str
    previous: Path | None = None
    prev_stamp: str | None = None
    links: Any = None  # the description link policy, for the section texts of the groups file
    #: wall-clock time the run began reading the catalog (the stock watcher's newer records win)
    started: float = field(default_factory=time.time)

    @property
    def tmp(self) -> Path:
        return self.output.with_name(f".{self.output.name}.{self.stamp}.tmp")

    @property
    def snap_tmp(self) -> Path:
        return self.output.with_name(f".{self.output.stem}.{self.stamp}.offers.tsv.tmp")

    @property
    def diff_tmp(self) -> Path:
        return self.output.with_name(f".{self.output.stem}.{self.stamp}.diff.tsv.tmp")

    @property
    def prev_tmp(self) -> Path:
        return self.output.with_name(f".{self.output.stem}.{self.stamp}.previous.tsv.tmp")

    def cleanup(self) -> None:
        """Remove this run's temp files (whatever is left of them)."""
        spool = self.tmp.with_name(self.tmp.name + ".offers")
        for p in (self.tmp, self.snap_tmp, self.diff_tmp, self.prev_tmp, spool):
            with contextlib.suppress(OSError):
                p.unlink()


def remove_stale_temps(folder: Path, stem: str) -> list[Path]:
    """Delete temp files a killed feed run left next to the feed (`.satu.yml.<stamp>.tmp`, …)."""
    gone: list[Path] = []
    if not folder.is_dir():
        return gone
    for p in folder.iterdir():
        ours = p.name.startswith((f".{stem}.", f".{stem}-groups."))
        stale = is_stale_temp(p.name) or p.name.endswith(".tmp.offers")  # (the render spool)
        if ours and stale and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                gone.append(p)
    return gone


def _paths(settings: Any, state: Any, out: Path | str | None) -> RunPaths:
    from pipeline.feed.history import History

    f = settings.feed
    output = Path(out) if out else Path(f.output)
    if not output.is_absolute():
        output = Path.cwd() / output
    is_main = out is None or output.resolve() == Path(f.output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    history = History(f.history_dir if is_main else output.parent / "history", output.stem)
    from pipeline.feed.sanitize import LinkPolicy

    links = LinkPolicy.from_settings(f)
    return RunPaths(output, is_main, history, History.new_stamp(), state, f.groups_file, links=links)


def _variables(settings: Any) -> dict[str, Any]:
    f = settings.feed
    return {
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "shop": {"name": f.shop_name, "company": f.company, "url": f.url, "currency": f.currency},
        "available_value": settings.satu.available_value,
        "unavailable_value": settings.satu.unavailable_value,
    }


def run(
    settings: Any,
    *,
    journal: Any,
    state: Any,
    out: Path | str | None = None,
    dry_run: bool = False,
    force: bool = False,
    should_stop: StopCheck = never_stop,
) -> FeedResult:
    """Build, render, validate and (unless dry_run) publish the feed file. See the module doc.

    `should_stop` is asked once per product; when it says yes the run ends with `interrupted` set and
    the last good feed (and all state) untouched."""
    from pipeline.feed.extract import Interrupted, check_url_patterns
    from pipeline.feed.portal import load_category_map, load_vendor_allowlist

    started = time.monotonic()
    paths = _paths(settings, state, out)
    result = FeedResult(output=paths.output, dry_run=dry_run)
    for stale in remove_stale_temps(paths.output.parent, paths.output.stem):
        journal.event("feed", f"removed {stale.name}, left by an interrupted feed run", level="warning")
    check_url_patterns(settings.feed)
    portal_map = load_category_map(settings.feed.category_map)  # a broken map is a settings error
    brands = load_vendor_allowlist(settings.feed)
    try:
        with disk_guard(paths.output.parent, "writing the feed"):
            _build(
                settings,
                journal,
                paths,
                result,
                (portal_map, brands),
                dry_run=dry_run,
                force=force,
                should_stop=should_stop,
            )
    except Interrupted:
        result.interrupted = True
        journal.event("feed", "feed run stopped on request; the last good feed stays in place")
    except (SettingsError, DiskFullError) as exc:
        # A missing database file (exit code 2 naming the key) or a full disk (exit 1 naming the folder,
        # the disk-full alert): not a problem of the catalog, so not a "feed rejected".
        journal.event("feed", f"feed not built: {exc}; the last good feed stays in place", level="error")
        raise
    except PipelineError as exc:
        result.problems.append(str(exc))
        journal.event("feed", f"feed not built: {exc}; the last good feed stays in place", level="error")
    finally:
        paths.cleanup()
        result.seconds = round(time.monotonic() - started, 3)
    return result


def _progress_line(result: FeedResult) -> Any:
    """A plain progress line of the feed: products read so far and offers rendered."""

    def text(bar: Progress) -> str:
        done = "done: " if bar.finished else ""
        return (
            f"feed: {done}{result.products} products read, {result.offers} offers rendered "
            f"({bar.elapsed:.1f} s)"
        )

    return text


def _build(
    settings: Any,
    journal: Any,
    paths: RunPaths,
    result: FeedResult,
    lookups: tuple[Any, frozenset[str]],
    *,
    dry_run: bool,
    force: bool,
    should_stop: StopCheck,
) -> None:
    from pipeline.contracts.photo_urls import PhotoIndex
    from pipeline.feed.check import reject, render_and_check
    from pipeline.feed.commit import commit
    from pipeline.feed.extract import Extractor, build_tree, report_portal_gaps
    from pipeline.feed.guard import compute_diff, guard, picture_guard, previous_snapshot
    from pipeline.feed.render import load_template
    from pipeline.feed.rules import RuleSettings
    from pipeline.torgsoft.catalog import open_catalog

    f = settings.feed
    portal_map, brands = lookups
    photos = PhotoIndex(paths.state, settings.publish.public_base_url)
    template = load_template(Path(f.template))
    used: list[Any] = []
    with (
        open_catalog(settings) as source,
        open(paths.snap_tmp, "w", encoding="utf-8", buffering=1 << 20) as snap,
    ):
        tree, fallback = build_tree(source, f, journal, result, portal_map)
        rules = RuleSettings.from_settings(settings, brands)
        extractor = Extractor(
            source, rules, tree, photos.url_for, fallback,
            result=result, journal=journal, snapshot=snap, should_stop=should_stop,
        )  # fmt: skip

        def categories() -> list[Any]:
            used.extend(tree.used_sections())
            return used

        with Progress(None, "feed: offers rendered", "offer", line=_progress_line(result)) as bar:
            offers = bar.counted(extractor.offers())
            report = render_and_check(template, _variables(settings), offers, categories, paths.tmp)
    extractor.finish()
    report_portal_gaps(result, journal, bool(portal_map))
    result.categories = len(used)
    if not report.ok:
        reject(report, result, journal)
        return

    runs = paths.history.runs()
    paths.prev_stamp = runs[-1] if runs else None
    paths.previous = previous_snapshot(
        paths.history, paths.output, paths.prev_tmp, settings.satu.available_value
    )
    diff = compute_diff(paths.previous, paths.snap_tmp, None if dry_run else paths.diff_tmp)
    kw = {"max_drop": f.max_drop_percent, "dry_run": dry_run, "force": force}
    if not guard(diff, result, journal, **kw) or not picture_guard(
        paths.output, paths.tmp, result, journal, **kw
    ):
        return
    if dry_run:
        result.ok = True
        journal.event("feed", "dry run: feed built and validated, nothing written", **diff.as_dict())
        return
    commit(paths, result, used, photos.url_for)
    paths.history.prune(f.keep_feeds, f.history_max_mb * 1024 * 1024)
    result.ok = True
    journal.event(
        "feed",
        f"feed published: {result.offers} offers, {result.hidden} hidden, "
        f"{result.awaiting} awaiting, skipped {result.skip_reasons or 'none'}",
        output=str(paths.output),
        **{k: v for k, v in diff.as_dict().items() if k != "samples"},
    )
