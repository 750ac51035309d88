"""One exchange run: photos → feed → publish → API pushes, in that order.

Each stage is imported lazily, so a missing or broken stage is reported by name instead of taking
the others down. The order is what makes the result safe: the feed only refers to photos the photos
stage published, publish uploads those photos before the feed, and the API pushes go out after a
feed that passed its checks.

`partial` (prices and stock only): no photo work; the feed is rebuilt from the photo names already
published, the feed file is published (plus any photo it needs that is somehow not on the server),
and the pushes run. `dry_run`: photos are processed into the local cache (local only), the feed is
built without replacing the live file, publish only counts what it would upload, nothing is pushed.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.errors import PipelineError, SettingsError
from pipeline.settings import Settings

STAGE = "sync"


@dataclass
class StageOutcome:
    """How one stage of a sync went: ok, problems (ran, found issues), failed, skipped or missing."""

    name: str
    status: str
    detail: str = ""
    counts: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class SyncResult:
    """The whole run: one outcome per stage, in order."""

    stages: list[StageOutcome] = field(default_factory=list)
    partial: bool = False
    dry_run: bool = False
    feed_url: str = ""
    ok: bool = True

    def stage(self, name: str) -> StageOutcome | None:
        """The outcome of a stage by name."""
        return next((s for s in self.stages if s.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


def _counts(result: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(result).items():
        small = isinstance(value, list | dict) and len(value) <= 20
        if small or value is None or isinstance(value, bool | int | float | str):
            out[key] = value
    return out


def _load(module: str, issue: int) -> tuple[Any, str]:
    """Import a stage module; (None, why) when it is not part of this installation."""
    try:
        return importlib.import_module(module), ""
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None, f"{module} is not installed in this build (issue {issue})"
        raise


def run(
    settings: Settings,
    *,
    journal: Any,
    state: Any,
    partial: bool = False,
    dry_run: bool = False,
    force: bool = False,
) -> SyncResult:
    """Run the stages in order and report each; never hides a missing or failed stage."""
    result = SyncResult(partial=partial, dry_run=dry_run)
    journal.event(STAGE, f"sync started ({'partial' if partial else 'full'}{', dry run' if dry_run else ''})")

    def call(name: str, fn: Any) -> Any:
        started = time.monotonic()
        try:
            value = fn()
        except SettingsError as exc:
            if not result.stages or all(st.status == "skipped" for st in result.stages):
                raise  # nothing done yet: the plain settings report (exit code 2) says it best
            # Later stages (e.g. no Satu token for the pushes): keep the report of what already ran.
            result.stages.append(
                StageOutcome(name, "failed", f"settings: {exc}", seconds=time.monotonic() - started)
            )
            journal.event(STAGE, f"{name} cannot run: {exc}", "error")
            return None
        except PipelineError as exc:
            outcome = StageOutcome(name, "failed", str(exc), seconds=time.monotonic() - started)
            result.stages.append(outcome)
            journal.event(STAGE, f"{name} failed: {exc}", "error")
            return None
        if value is None:
            return None
        ok = getattr(value, "ok", True)
        detail = ""
        if getattr(value, "skipped", None) is True:  # (the feed's `skipped` is a count per reason)
            result.stages.append(
                StageOutcome(
                    name,
                    "skipped",
                    "nothing to do (see the journal)",
                    _counts(value),
                    time.monotonic() - started,
                )
            )
            return value
        if not ok:
            bits = (
                getattr(value, "stopped", "")
                or "; ".join(map(str, getattr(value, "errors", []) or []))
                or "; ".join(list(map(str, getattr(value, "problems", []) or []))[:3])
            )
            detail = bits or "finished with problems"
        result.stages.append(
            StageOutcome(name, "ok" if ok else "problems", detail, _counts(value), time.monotonic() - started)
        )
        return value

    # 1. Photos (not in a partial run: prices and stock do not change pictures).
    if partial:
        result.stages.append(StageOutcome("photos", "skipped", "partial run: photos are not processed"))
    else:
        from pipeline import photos

        call("photos", lambda: photos.run(settings, journal=journal, state=state))

    # 2. Feed.
    feed_ok = False
    feed_mod, why = _load("pipeline.feed", 3)
    if feed_mod is None:
        result.stages.append(StageOutcome("feed", "missing", why))
    else:
        fr = call(
            "feed", lambda: feed_mod.run(settings, journal=journal, state=state, dry_run=dry_run, force=force)
        )
        feed_ok = fr is not None and bool(getattr(fr, "ok", False))

    # 3. Publish: only a feed that passed its checks goes out.
    from pipeline import publish

    pr = None
    if not feed_ok:
        result.stages.append(StageOutcome("publish", "skipped", "no fresh, valid feed to publish"))
    else:
        pr = call(
            "publish",
            lambda: publish.run(
                settings, journal=journal, state=state, dry_run=dry_run, force=force, feed_only=partial
            ),
        )
        if pr is not None:
            result.feed_url = pr.feed_url

    # 4. API pushes of stock, prices and presence (and, when configured, an import of the new feed).
    published = bool(
        feed_ok and pr is not None and pr.feed_published and pr.feed_files_uploaded and not dry_run
    )
    if published and settings.satu.import_after_publish:
        push_mod, why = _load("pipeline.satu.push", 5)
        hook = getattr(push_mod, "after_publish", None) if push_mod is not None else None
        if hook is None:
            result.stages.append(
                StageOutcome("import", "missing", why or "no after_publish hook in pipeline.satu.push")
            )
        else:
            call("import", lambda: hook(settings, journal=journal, state=state))
    if not settings.satu.push:
        result.stages.append(StageOutcome("push", "skipped", "[satu] push is off"))
    elif dry_run:
        result.stages.append(StageOutcome("push", "skipped", "dry run: nothing is sent to Satu"))
    elif not feed_ok:
        result.stages.append(StageOutcome("push", "skipped", "the feed stage did not succeed"))
    else:
        push_mod, why = _load("pipeline.satu.push", 5)
        if push_mod is None:
            result.stages.append(StageOutcome("push", "missing", why))
        else:
            call("push", lambda: push_mod.run(settings, journal=journal, state=state, full=False))

    result.ok = all(s.status in ("ok", "skipped") for s in result.stages) and feed_ok
    summary = ", ".join(f"{s.name} {s.status}" for s in result.stages)
    journal.event(
        STAGE,
        f"sync finished: {summary}",
        "info" if result.ok else "warning",
        stages={s.name: s.status for s in result.stages},
        feed_url=result.feed_url,
    )
    return result
