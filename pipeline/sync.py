"""One exchange run: photos → feed → publish → API pushes, in that order.

Each stage is a typed step (`Step`: no arguments, returns a `StageResult`) run through
`pipeline.stage.run_step`, so the run records a `StageOutcome` per stage, keeping the error object of a
stage that raised. The order is what makes the result safe: the feed only refers to photos the photos
stage published, publish uploads those photos before the feed, and the API pushes go out after a feed
that passed its checks.

`partial` (prices and stock only): no photo work; the feed is rebuilt from the photo names already
published, the feed file is published (plus any photo it needs that is somehow not on the server),
and the pushes run. `dry_run`: photos are processed into the local cache (local only), the feed is
built without replacing the live file, publish only counts what it would upload, nothing is pushed.
`should_stop` is passed to every stage; once it says yes, no further stage starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline import feed, photos, publish
from pipeline.errors import SettingsError
from pipeline.satu import push
from pipeline.settings import Settings
from pipeline.stage import (
    StageOutcome,
    StageResult,
    Status,
    StopCheck,
    never_stop,
    run_step,
    skipped,
    summarise,
)

STAGE = "sync"

Step = Callable[[], StageResult | None]


@dataclass
class SyncResult:
    """The whole run: one outcome per stage, in order."""

    stages: list[StageOutcome] = field(default_factory=list)
    partial: bool = False
    dry_run: bool = False
    feed_url: str = ""
    ok: bool = True
    skipped: bool = False  # a sync always runs its stages (each may be skipped on its own)

    @property
    def interrupted(self) -> bool:
        """A stop was requested and some stage ended early."""
        return any(s.status is Status.STOPPED for s in self.stages)

    @property
    def problems(self) -> list[str]:
        """One line per stage that did not finish well."""
        return [f"{s.name}: {s.detail or s.status}" for s in self.stages if not s.done]

    def counts(self) -> dict[str, Any]:
        """Each stage's status by name (a `StageResult`, so a sync is a stage of the service)."""
        return {s.name: str(s.status) for s in self.stages}

    def stage(self, name: str) -> StageOutcome | None:
        """The outcome of a stage by name."""
        return next((s for s in self.stages if s.name == name), None)

    def result_of(self, name: str) -> StageResult | None:
        """The result object a stage returned (None when it raised, was skipped or did not run)."""
        outcome = self.stage(name)
        return outcome.result if outcome is not None else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "stages": [s.as_dict() for s in self.stages],
            "partial": self.partial,
            "dry_run": self.dry_run,
            "feed_url": self.feed_url,
            "ok": self.ok,
        }


@dataclass
class _Run:
    """One sync run in progress: the settings, where it records, and how it is asked to stop."""

    settings: Settings
    journal: Any
    state: Any
    result: SyncResult
    should_stop: StopCheck

    def step(self, name: str, fn: Step) -> StageOutcome:
        """Run one stage and record its outcome (a stop request skips it instead)."""
        if self.should_stop():
            return self.add(skipped(name, "stop requested: not started"))
        outcome = run_step(name, fn)  # (a stage's SettingsError comes back as a FAILED outcome)
        if isinstance(outcome.error, SettingsError):
            if not self.result.stages or all(s.status is Status.SKIPPED for s in self.result.stages):
                raise outcome.error  # nothing done yet: the plain settings report (exit code 2) says it best
            # Later stages (e.g. no Satu token for the pushes): keep the report of what already ran.
            outcome = StageOutcome(
                name,
                Status.FAILED,
                f"settings: {outcome.error}",
                seconds=outcome.seconds,
                error=outcome.error,
            )
        if outcome.status is Status.FAILED:
            self.journal.event(STAGE, f"{name} failed: {outcome.detail}", "error")
        return self.add(outcome)

    def add(self, outcome: StageOutcome) -> StageOutcome:
        """Record an outcome (also for stages not run on purpose)."""
        self.result.stages.append(outcome)
        return outcome


def run(
    settings: Settings,
    *,
    journal: Any,
    state: Any,
    partial: bool = False,
    dry_run: bool = False,
    force: bool = False,
    should_stop: StopCheck = never_stop,
) -> SyncResult:
    """Run the stages in order and report each; never hides a skipped or failed stage."""
    result = SyncResult(partial=partial, dry_run=dry_run)
    journal.event(STAGE, f"sync started ({'partial' if partial else 'full'}{', dry run' if dry_run else ''})")
    r = _Run(settings, journal, state, result, should_stop)
    _photos(r)
    feed_ok = _feed(r, force)
    published = _publish(r, feed_ok, force)
    _pushes(r, feed_ok, published)
    result.ok = feed_ok and all(s.done for s in result.stages)
    journal.event(
        STAGE,
        f"sync finished: {summarise(result.stages)}",
        "info" if result.ok else "warning",
        stages={s.name: str(s.status) for s in result.stages},
        feed_url=result.feed_url,
    )
    return result


def _photos(r: _Run) -> None:
    """1. Photos (not in a partial run: prices and stock do not change pictures)."""
    if r.result.partial:
        r.add(skipped("photos", "partial run: photos are not processed"))
        return
    r.step(
        "photos", lambda: photos.run(r.settings, journal=r.journal, state=r.state, should_stop=r.should_stop)
    )


def _feed(r: _Run, force: bool) -> bool:
    """2. The feed; True when it passed its checks."""
    outcome = r.step(
        "feed",
        lambda: feed.run(
            r.settings,
            journal=r.journal,
            state=r.state,
            dry_run=r.result.dry_run,
            force=force,
            should_stop=r.should_stop,
        ),
    )
    return outcome.status is Status.OK


def _publish(r: _Run, feed_ok: bool, force: bool) -> bool:
    """3. Publish: only a feed that passed its checks goes out. True when the feed went live."""
    if not feed_ok:
        r.add(skipped("publish", "no fresh, valid feed to publish"))
        return False
    outcome = r.step(
        "publish",
        lambda: publish.run(
            r.settings,
            journal=r.journal,
            state=r.state,
            dry_run=r.result.dry_run,
            force=force,
            feed_only=r.result.partial,
            should_stop=r.should_stop,
        ),
    )
    res = outcome.result
    if not isinstance(res, publish.PublishResult):
        return False
    r.result.feed_url = res.feed_url
    return bool(res.feed_published and res.feed_files_uploaded and not r.result.dry_run)


def _pushes(r: _Run, feed_ok: bool, published: bool) -> None:
    """4. API pushes of stock, prices and presence (and, when configured, an import of the new feed)."""
    s = r.settings
    if published and s.satu.import_after_publish:
        r.step("import", lambda: push.after_publish(s, journal=r.journal, state=r.state))
    if not s.satu.push:
        r.add(skipped("push", "[satu] push is off"))
    elif r.result.dry_run:
        r.add(skipped("push", "dry run: nothing is sent to Satu"))
    elif not feed_ok:
        r.add(skipped("push", "the feed stage did not succeed"))
    elif not s.secret("satu.token_env", required=False):
        var = s.satu.token_env
        r.add(skipped("push", f"no Satu API token: {var} is not set (satu.token_env); export it to push"))
    else:
        r.step(
            "push",
            lambda: push.run(s, journal=r.journal, state=r.state, full=False, should_stop=r.should_stop),
        )
