"""The Satu.kz catalog feed: catalog → offers (rules) → streaming render → validation → guarded publish.

`run(settings, journal=…, state=…)` reads the catalog through the SQL mapping, applies the feed
rules to each product as it streams by, renders the template block by block into a temporary file,
validates that file with the same checks as `check-feed` (the offers in a helper process while they
render, see `validate.OffersStreamCheck`; any doubt runs the full check over the file), compares it with the last published feed
(mass-change guard, diff report), and only then renames it into place. A failed run never touches
the last good feed. After the feed is in place, state namespaces `feed.offers` (per-offer price,
quantity, presence, wholesale) and `feed.awaiting` (offers to show as "waiting") are updated for the
API push, and the groups file (section texts and images for Satu's spreadsheet import) is written.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.stage import ResultBase, StopCheck, never_stop

OFFERS_NS = "feed.offers"
AWAITING_NS = "feed.awaiting"
META_NS = "feed.meta"
JOURNAL_SAMPLES = 50  # per skip reason: enough to search for, not a flood


@dataclass
class FeedResult(ResultBase):
    """What a feed run did. `skip_reasons` counts products left out, per reason (out-of-stock ones are `hidden`)."""

    offers: int = 0
    hidden: int = 0
    awaiting: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    pictures_dropped: int = 0
    pictures_missing: int = 0
    names_truncated: int = 0
    articles_changed: int = 0
    categories: int = 0
    products: int = 0
    ok: bool = False
    written: bool = False
    dry_run: bool = False
    output: Path | None = None
    stopped: str = ""
    problems: list[str] = field(default_factory=list)
    section_problems: list[str] = field(default_factory=list)
    diff: dict[str, Any] | None = None
    groups_files: list[str] = field(default_factory=list)
    awaiting_ns: str = AWAITING_NS
    offers_ns: str = OFFERS_NS
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        d = asdict(self)
        d["output"] = str(self.output) if self.output else None
        return d


def awaiting_ids(state: Any) -> list[str]:
    """Offer ids the last published feed shows as awaiting (for the API push to set presence "waiting")."""
    return [k for k, _ in state.items(AWAITING_NS)]


def _cleanup(*paths: Path | None) -> None:
    for p in paths:
        if p is not None:
            with contextlib.suppress(OSError):
                p.unlink()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def run(
    settings: Any,
    *,
    journal: Any,
    state: Any,
    out: Path | str | None = None,
    dry_run: bool = False,
    force: bool = False,
    should_stop: StopCheck = never_stop,  # honoured by the feed's own loop (r-feed)
) -> FeedResult:
    """Build, render, validate and (unless dry_run) publish the feed file. See the module doc."""
    from pipeline.feed.groups import group_rows, write_groups
    from pipeline.feed.history import History, SnapRow, compute_diff, snapshot_from_feed
    from pipeline.feed.render import load_template, render_feed
    from pipeline.feed.rules import OUT_OF_STOCK, CategoryTree, Offer, RuleSettings, Section, build_offer
    from pipeline.feed.slug import slugify
    from pipeline.feed.validate import OffersStreamCheck
    from pipeline.photo_urls import PhotoIndex
    from pipeline.torgsoft.catalog import open_catalog

    started = time.monotonic()
    f = settings.feed
    output = Path(out) if out else Path(f.output)
    if not output.is_absolute():
        output = Path.cwd() / output
    is_main = out is None or output.resolve() == Path(f.output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    history = History(f.history_dir if is_main else output.parent / "history", output.stem)
    stamp = History.new_stamp()
    tmp = output.with_name(f".{output.name}.{stamp}.tmp")
    snap_tmp = output.with_name(f".{output.stem}.{stamp}.offers.tsv.tmp")
    diff_tmp = output.with_name(f".{output.stem}.{stamp}.diff.tsv.tmp")
    prev_tmp: Path | None = None
    result = FeedResult(output=output, dry_run=dry_run)
    for key in ("product_url", "category_url"):
        try:
            getattr(f, key).format(url="u", slug="s", id="1")
        except (KeyError, IndexError, ValueError) as exc:
            raise PipelineError(
                f"[feed] {key} = {getattr(f, key)!r}: unknown placeholder {exc}; "
                "use {url}, {slug} and {id}"
            ) from None
    rs = RuleSettings.from_settings(settings)
    photos = PhotoIndex(state, settings.publish.public_base_url)
    template = load_template(Path(f.template))
    skipped: Counter[str] = Counter()
    logged: Counter[str] = Counter()
    used_sections: list[Section] = []

    try:
        with open_catalog(settings) as source:
            tree = CategoryTree(source.sections(), f.category_url, f.url)
            for problem in tree.problems:
                result.section_problems.append(problem)
                journal.event("feed", problem, level="error")
            fallback = None
            if f.fallback_category:
                fid = f.fallback_category_id
                if fid in tree.sections:
                    raise PipelineError(
                        f"[feed] fallback_category_id {fid} is also a section id; choose another"
                    )
                slug = slugify(f.fallback_category)
                fallback = Section(
                    fid,
                    None,
                    f.fallback_category,
                    slug,
                    f.category_url.format(url=f.url.rstrip("/"), slug=slug, id=fid) if f.category_url else "",
                    (fid,),
                )
                tree.sections[fid] = fallback

            with open(snap_tmp, "w", encoding="utf-8", buffering=1 << 20) as snap:

                def offers():
                    for product in source.products():
                        result.products += 1
                        r = build_offer(product, rs, tree, photos.url_for, fallback)
                        if not isinstance(r, Offer):
                            if r.reason == OUT_OF_STOCK:
                                result.hidden += 1
                                continue
                            skipped[r.reason] += 1
                            if logged[r.reason] < JOURNAL_SAMPLES:
                                logged[r.reason] += 1
                                journal.event(
                                    "feed",
                                    f"product left out: {r.reason}" + (f" ({r.detail})" if r.detail else ""),
                                    level="warning",
                                    product_id=product.offer_id,
                                    reason=r.reason,
                                )
                            continue
                        result.offers += 1
                        if r.presence == "waiting":
                            result.awaiting += 1
                        result.pictures_dropped += r.pictures_dropped
                        result.pictures_missing += r.pictures_missing
                        result.names_truncated += r.name_truncated
                        result.articles_changed += r.articul_changed
                        snap.write(
                            SnapRow(
                                r.id,
                                r.price,
                                r.quantity,
                                r.presence,
                                ";".join(f"{p}@{q}" for p, q in r.wholesale),
                            ).line()
                        )
                        yield r

                def categories():
                    used_sections.extend(tree.used_sections())
                    return used_sections

                variables = {
                    "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
                    "shop": {"name": f.shop_name, "company": f.company, "url": f.url, "currency": f.currency},
                    "available_value": settings.satu.available_value,
                    "unavailable_value": settings.satu.unavailable_value,
                }
                # The offers are checked by a helper process while they render (see validate.py).
                stream_check = OffersStreamCheck()
                try:
                    layout = render_feed(template, variables, offers(), categories, tmp, tee=stream_check)
                except BaseException:
                    stream_check.close()
                    raise
        result.skip_reasons = dict(sorted(skipped.items()))
        result.categories = len(used_sections)
        for reason, n in result.skip_reasons.items():
            if n > logged[reason]:
                journal.event(
                    "feed", f"{n} products left out: {reason}", level="warning", reason=reason, count=n
                )

        report = stream_check.report(tmp, layout)
        if not report.ok:
            result.problems = [str(p) for p in (report.problems or [])[:1000]]
            for p in result.problems[:JOURNAL_SAMPLES]:
                journal.event("feed", f"rendered feed fails validation: {p}", level="error")
            journal.event(
                "feed",
                f"feed not published: {len(report.problems or [])} validation problem(s); "
                "the last good feed stays in place",
                level="error",
            )
            return result

        runs = history.runs()
        prev_stamp = runs[-1] if runs else None
        previous = history.last_snapshot()
        if previous is None and output.exists():
            prev_tmp = output.with_name(f".{output.stem}.{stamp}.previous.tsv.tmp")
            previous = snapshot_from_feed(output, prev_tmp, settings.satu.available_value)
        diff = compute_diff(previous, snap_tmp, None if dry_run else diff_tmp)
        result.diff = diff.as_dict()
        if diff.has_previous and diff.drop_percent > f.max_drop_percent:
            message = (
                f"mass-change guard: this feed would remove {diff.removed} of {diff.previous} offers "
                f"({diff.drop_percent:.1f}% > [feed] max_drop_percent {f.max_drop_percent:g}%)"
            )
            if dry_run and not force:
                result.stopped = message + "; a real run would stop here (unless --force)"
                journal.event("feed", "dry run: " + result.stopped, level="warning", **diff.as_dict())
                return result
            if not force:
                result.stopped = message + (
                    "; the feed was not replaced — check the catalog, or run with --force if this is intended"
                )
                journal.event("feed", result.stopped, level="error", **diff.as_dict())
                return result
            journal.event("feed", message + "; published anyway (--force)", level="warning")
        if dry_run:
            result.ok = True
            journal.event("feed", "dry run: feed built and validated, nothing written", **diff.as_dict())
            return result

        # Publish: the feed goes into place first; history, groups and state follow it.
        os.replace(tmp, output)
        _fsync_dir(output.parent)
        result.written = True
        summary = {k: v for k, v in result.as_dict().items() if k not in ("problems",)}
        history.record(stamp, output, snap_tmp, diff_tmp, summary)
        if f.groups_file != "none":
            rows = group_rows(used_sections, photos.url_for)
            result.groups_files = [str(p) for p in write_groups(rows, output, f.groups_file)]
        if is_main:
            _update_state(state, previous, prev_stamp, history.path(stamp, ".offers.tsv"), stamp)
        history.prune(f.keep_feeds)
        result.ok = True
        journal.event(
            "feed",
            f"feed published: {result.offers} offers, {result.hidden} hidden, "
            f"{result.awaiting} awaiting, skipped {result.skip_reasons or 'none'}",
            output=str(output),
            **{k: v for k, v in diff.as_dict().items() if k != "samples"},
        )
        return result
    except PipelineError as exc:
        result.problems.append(str(exc))
        journal.event("feed", f"feed not built: {exc}; the last good feed stays in place", level="error")
        return result
    finally:
        _cleanup(tmp, snap_tmp, diff_tmp, prev_tmp, tmp.with_name(tmp.name + ".offers"))
        result.seconds = round(time.monotonic() - started, 3)


def _update_state(
    state: Any, previous: Path | None, prev_stamp: str | None, current: Path, stamp: str
) -> None:
    """Record per-offer price/stock/presence and the awaiting set of the feed now in place.

    When the state reflects the previous snapshot (marker in `feed.meta`), only changes are written;
    otherwise (first run, lost state) both namespaces are rebuilt from the current snapshot.
    """
    from pipeline.feed.history import merge, read_snapshot

    marker = state.get(META_NS, "snapshot")
    incremental = previous is not None and marker is not None and marker == prev_stamp
    if not incremental:
        state.delete(OFFERS_NS)
        state.delete(AWAITING_NS)
        state.put_many(OFFERS_NS, ((r.id, r.state_value()) for r in read_snapshot(current)))
        state.put_many(
            AWAITING_NS, ((r.id, {"since": stamp}) for r in read_snapshot(current) if r.presence == "waiting")
        )
    else:
        removed: list[str] = []
        no_longer_waiting: list[str] = []
        new_waiting: list[str] = []

        def changed():
            for old, new in merge(read_snapshot(previous), read_snapshot(current)):
                if new is None:
                    removed.append(old.id)
                    if old.presence == "waiting":
                        no_longer_waiting.append(old.id)
                    continue
                if old is None or old != new:
                    yield new.id, new.state_value()
                if new.presence == "waiting" and (old is None or old.presence != "waiting"):
                    new_waiting.append(new.id)
                elif old is not None and old.presence == "waiting" and new.presence != "waiting":
                    no_longer_waiting.append(old.id)

        state.put_many(OFFERS_NS, changed())
        state.put_many(AWAITING_NS, ((i, {"since": stamp}) for i in new_waiting))
        for oid in removed:
            state.delete(OFFERS_NS, oid)
        for oid in no_longer_waiting:
            state.delete(AWAITING_NS, oid)
    state.put(META_NS, "snapshot", stamp)
