"""The long-running service: timer jobs, the live inbox watcher, one run at a time.

Jobs (built from `[schedule]` by `jobs_from_settings`):

- **exchange**, every `interval_minutes` (at least 10): the catalog exchange — `pipeline.sync.run`
  (photos, feed, publish, API push). With `partial = true` it runs prices and stock only
  (`sync.run(partial=True)`) and the order download is switched off.
- **orders**, every `orders_minutes` (not in partial mode): download new orders into the inbox
  (`pipeline.orders.fetch`), import the inbox (`pipeline.orders.inbox`), push order statuses back
  (`pipeline.orders.status`).
- **reconcile**, every `[orders] reconcile_hours` (0 = never; not in partial mode, not at start): Satu
  orders of the last `reconcile_days` that are neither in the inbox nor in Torgsoft are downloaded
  into the inbox (`pipeline.orders.reconcile`, `fix=True`); notify alerts when it had to.
- **prune**, daily: drop journal entries older than `[journal] retention_days` and imported order
  files in inbox/done older than `[orders] keep_done_days`.
- **stock**, every `[schedule] stock_seconds` (0 = off): the stock watcher (`pipeline.stock.watch`) in
  a thread of its own, outside the run lock, so neither a long exchange nor a manual run delays it;
  an import that brought orders (which reserve stock) wakes it at once.

Every job runs under the run lock (`pipeline.lock`), so a manual run and the service never overlap;
a job that finds the lock taken waits `lock_wait_seconds`, then skips this tick. A job (or a step)
that raises is logged with its traceback and the next tick runs as usual. After each job the
notifier reports new orders and invoices and raises alerts (`pipeline.notify`).

SIGTERM/SIGINT (Ctrl+C; Ctrl+Break and the NSSM console stop on Windows) ask for a clean stop: the
step that is running finishes (the current file or upload included), no further step starts, the
state is saved and the process exits with code 0. A second signal stops at once. Every stage gets
`should_stop` (the service's `stopping`): long loops (feed offers, photos, uploads, pushes, order
files) ask it between items, so a stop ends even a long feed within seconds, with its state saved.

The service talks only to the database server and to files and HTTP/FTP servers: Torgsoft itself may
be closed.

The schedule's clock comes from `pipeline._testing` (`minute_seconds()`, 60 normally): a test starts
`python -m pipeline._testing --minute-seconds S -- serve …` to watch several ticks in a few seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline import _testing, sync
from pipeline.errors import DiskFullError, LockedError, SettingsError
from pipeline.journal import Journal
from pipeline.lock import run_lock
from pipeline.notify import Notifier, RunReport, channels_summary
from pipeline.orders import fetch, inbox, reconcile, status
from pipeline.orders.inbox import InboxResult
from pipeline.stage import (
    ResultBase,
    StageOutcome,
    StageResult,
    Status,
    StopCheck,
    never_stop,
    run_step,
    summarise_counts,
)
from pipeline.state import State

# Set by a signal handler (plain assignment is safe there; taking a lock is not) and by stop().
_stop_signal: int | None = None
_stop_event = threading.Event()


def stop_requested() -> bool:
    """True once the service was asked to stop (a signal or `Service.stop`): the stages' `should_stop`."""
    return _stop_signal is not None or _stop_event.is_set()


def minute_seconds() -> float:
    """Seconds in one configured minute of the schedule: 60 (a test may change it, `pipeline._testing`)."""
    return _testing.minute_seconds()


@dataclass
class StepContext:
    """What a step gets: the settings, this run's journal and state, and how it is asked to stop."""

    settings: Any
    journal: Journal
    state: State
    results: dict[str, StageResult] = field(default_factory=dict)  # earlier steps of this run, by name
    should_stop: StopCheck = never_stop


StepFunc = Callable[[StepContext], StageResult | None]


@dataclass
class Step:
    """One stage call inside a job."""

    name: str
    func: StepFunc
    module: str = ""  # for stage steps: the stage module and the keyword arguments it gets
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    """A timer job: steps run in order every `every_seconds` under the run lock."""

    name: str
    every_seconds: float
    steps: list[Step]
    locked: bool = True
    notify: bool = True
    run_at_start: bool = True


def sync_step(partial: bool = False) -> Step:
    """The exchange: `pipeline.sync.run` (photos → feed → publish → import → push)."""

    def call(ctx: StepContext) -> StageResult:
        return sync.run(
            ctx.settings, journal=ctx.journal, state=ctx.state, partial=partial, should_stop=ctx.should_stop
        )

    return Step("sync", call, "pipeline.sync", {"partial": True} if partial else {})


def _fetch(ctx: StepContext) -> StageResult:
    return fetch.run(ctx.settings, journal=ctx.journal, state=ctx.state, should_stop=ctx.should_stop)


def _inbox(ctx: StepContext) -> StageResult:
    return inbox.run(ctx.settings, journal=ctx.journal, state=ctx.state, should_stop=ctx.should_stop)


def _status(ctx: StepContext) -> StageResult:
    return status.run(ctx.settings, journal=ctx.journal, state=ctx.state, should_stop=ctx.should_stop)


def _reconcile(ctx: StepContext) -> StageResult:
    """Orders the download missed (issue 13): found and written into the inbox; notify alerts on `fixed`."""
    return reconcile.run(
        ctx.settings, journal=ctx.journal, state=ctx.state, fix=True, should_stop=ctx.should_stop
    )


@dataclass
class PruneResult(ResultBase):
    """What the daily clean-up removed."""

    removed: int = 0
    order_files: int = 0  # imported order files deleted from inbox/done ([orders] keep_done_days)
    ok: bool = True


def prune_step(ctx: StepContext) -> PruneResult:
    """Drop journal entries older than the retention, and imported order files (personal data) in
    inbox/done older than `[orders] keep_done_days`."""
    from pipeline.orders.claims import prune_done

    removed = ctx.journal.prune(ctx.settings.journal.retention_days)
    ctx.journal.event(
        "service",
        f"journal pruned: {removed} entries older than {ctx.settings.journal.retention_days} days",
        removed=removed,
    )
    return PruneResult(removed, prune_done(ctx.settings, journal=ctx.journal))


def jobs_from_settings(settings: Any) -> list[Job]:
    """The timer jobs `[schedule]` asks for."""
    sch = settings.schedule
    minute = minute_seconds()
    jobs: list[Job] = []
    if sch.partial:
        jobs.append(Job("exchange", sch.interval_minutes * minute, [sync_step(partial=True)]))
    else:
        # sync runs photos → feed → publish → (import by URL when [satu] import_after_publish) → push.
        jobs.append(Job("exchange", sch.interval_minutes * minute, [sync_step()]))
        jobs.append(
            Job(
                "orders",
                sch.orders_minutes * minute,
                [
                    Step("orders.fetch", _fetch, "pipeline.orders.fetch"),
                    Step("orders.inbox", _inbox, "pipeline.orders.inbox"),
                    Step("status", _status, "pipeline.orders.status"),
                ],
            )
        )
        if settings.orders.reconcile_hours > 0:
            # Not at start: the first pass of the orders job is the fresh download; the check follows.
            jobs.append(
                Job(
                    "reconcile",
                    settings.orders.reconcile_hours * 60 * minute,
                    [Step("orders.reconcile", _reconcile, "pipeline.orders.reconcile", {"fix": True})],
                    run_at_start=False,
                )
            )
    jobs.append(Job("prune", 24 * 60 * minute, [Step("prune", prune_step)], locked=False, notify=False))
    return jobs


class Service:
    """Run jobs on their timers until stopped; see the module doc."""

    def __init__(
        self,
        settings: Any,
        jobs: list[Job] | None = None,
        *,
        watcher: bool = True,
        echo: Callable[[str], None] | None = print,
    ):
        self.settings = settings
        self.jobs = jobs if jobs is not None else jobs_from_settings(settings)
        self.watcher = watcher
        self.echo = echo or (lambda _text: None)
        self.stop_event = _stop_event
        self.journal = Journal.from_settings(settings)  # the service's own run id
        self.state = State.from_settings(settings)
        self._thread: threading.Thread | None = None
        self._pending: list[InboxResult] = []
        self._pending_lock = threading.Lock()
        self._stock_thread: threading.Thread | None = None
        self._stock_wake = threading.Event()
        self.runs = 0
        self.failed_runs = 0

    # --- stopping ---------------------------------------------------------------------------------

    def stopping(self) -> bool:
        """True once a stop was asked for (turns a pending signal into the stop event). This is the
        `should_stop` every stage gets, so a long stage ends at its next item."""
        if _stop_signal is not None and not self.stop_event.is_set():
            self.stop_event.set()
            self.journal.event(
                "service",
                f"signal {signal.Signals(_stop_signal).name} received: stopping the current step at its next item",
            )
        return stop_requested()

    def stop(self) -> None:
        """Ask for a clean stop (from another thread)."""
        self.stop_event.set()

    def _install_signals(self) -> list[tuple[int, Any]]:
        if threading.current_thread() is not threading.main_thread():
            return []
        previous = []

        def handler(signum: int, _frame: Any) -> None:
            global _stop_signal
            if _stop_signal is not None:  # the second signal: stop now
                raise KeyboardInterrupt
            _stop_signal = signum
            # Only an assignment and a write here: a handler must not take locks the code it
            # interrupted may hold.
            os.write(
                2,
                f"\n{signal.Signals(signum).name}: finishing the current step, then stopping "
                f"(again to stop at once)\n".encode(),
            )

        for name in ("SIGTERM", "SIGINT", "SIGBREAK", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None:
                previous.append((sig, signal.signal(sig, handler)))
        return previous

    # --- one job ----------------------------------------------------------------------------------

    def run_job(self, job: Job) -> RunReport | None:
        """Run one job's steps under the lock; never raises (a failure is logged, the timer goes on)."""
        if self.stopping():
            return None
        journal = Journal.from_settings(self.settings)
        report = RunReport(
            job.name, time.time(), run_id=journal.run_id, partial=self.settings.schedule.partial
        )
        ctx = StepContext(self.settings, journal, self.state, report.results, self.stopping)
        try:
            if job.locked:
                with run_lock(
                    self.settings, f"serve: {job.name}", wait=self.settings.schedule.lock_wait_seconds
                ):
                    self._steps(job, ctx, report)
            else:
                self._steps(job, ctx, report)
        except LockedError as exc:
            journal.event("service", f"{job.name}: skipped this tick: {exc}", "warning")
            self.echo(f"{_clock()} {job.name}: skipped, another run holds the lock")
            return None
        except Exception as exc:  # noqa: BLE001 - the timer must survive anything a job does
            journal.event(
                "service",
                f"{job.name}: failed: {type(exc).__name__}: {exc}",
                "error",
                traceback=traceback.format_exc(limit=20),
            )
            report.errors["service"] = exc
        finally:
            report.finished = time.time()
        if job.notify:
            # Orders the live watcher imported since the last job are reported with this run, so each
            # order is counted exactly once, whichever importer took its file.
            watched = self._take_watched()
            if watched:
                report.results["inbox.watch"] = watched
        self.runs += 1
        self.failed_runs += not report.ok
        self._record_job(job, report, journal)
        if job.notify:
            try:
                Notifier(self.settings, journal=journal, state=self.state, echo=self.echo).after_run(report)
            except Exception as exc:  # noqa: BLE001 - notifications must never stop the service
                journal.event("notify", f"notification failed: {type(exc).__name__}: {exc}", "error")
        journal.close()
        return report

    def _record_job(self, job: Job, report: RunReport, journal: Journal) -> None:
        """How the job went, for the control room; a full state disk must not stop the timer."""
        try:
            self.state.put(
                "service.jobs",
                job.name,
                {
                    "run_id": report.run_id,
                    "ok": report.ok,
                    "started": datetime.fromtimestamp(report.started, UTC).isoformat(timespec="seconds"),
                    "seconds": round(report.finished - report.started, 3),
                    "results": {k: v.counts() for k, v in report.results.items()},
                    "errors": {k: f"{type(e).__name__}: {e}" for k, e in report.errors.items()},
                },
            )
        except DiskFullError as exc:
            journal.event("service", f"{job.name}: its run record was not saved: {exc}", "error")

    def _steps(self, job: Job, ctx: StepContext, report: RunReport) -> None:
        journal = ctx.journal
        journal.event("service", f"{job.name}: run started", steps=[s.name for s in job.steps])
        for i, step in enumerate(job.steps):
            if self.stopping():
                journal.event(
                    "service",
                    f"{job.name}: stop requested, skipping {', '.join(s.name for s in job.steps[i:])}",
                    "warning",
                )
                break
            self._step(job, step, ctx, report)
        journal.event(
            "service",
            f"{job.name}: run finished",
            "info" if report.ok else "warning",
            ok=report.ok,
            seconds=round(time.time() - report.started, 3),
            failed=sorted(report.errors),
        )

    def _step(self, job: Job, step: Step, ctx: StepContext, report: RunReport) -> None:
        """Run one step; its error (by type) or result goes into the report, never further."""
        journal = ctx.journal
        try:
            outcome = run_step(step.name, lambda: step.func(ctx))
        except Exception as exc:  # noqa: BLE001 - a bug in one stage must not hide the others
            # Not one of our own errors: a bug, with its traceback for the developer.
            outcome = StageOutcome(step.name, Status.FAILED, f"{type(exc).__name__}: {exc}", error=exc)
            journal.event(
                step.name.split(".")[0],
                f"{step.name} failed: {outcome.detail}",
                "error",
                traceback=traceback.format_exc(limit=20),
            )
        else:
            if outcome.error is not None:
                journal.event(
                    step.name.split(".")[0],
                    f"{step.name} failed: {_kind(outcome.error)}: {outcome.error}",
                    "error",
                )
        if outcome.error is not None:
            report.errors[step.name] = outcome.error
            self.echo(f"{_clock()} {job.name}/{step.name}: FAILED {_kind(outcome.error)}: {outcome.error}")
            return
        if outcome.result is not None:
            report.results[step.name] = outcome.result
            self._orders_imported(outcome.result)
        journal.event(
            "service",
            f"{job.name}/{step.name} done in {outcome.seconds:.1f} s",
            "info" if outcome.done else "warning",
            **{k: v for k, v in outcome.counts.items() if not isinstance(v, dict)},
        )
        self.echo(f"{_clock()} {job.name}/{step.name}: {_summary(outcome)}")

    # --- the inbox watcher ------------------------------------------------------------------------

    def _watched(self, result: InboxResult) -> None:
        """A watcher pass imported something: keep it for the next job's notification."""
        with self._pending_lock:
            self._pending.append(result)
        self._orders_imported(result)

    def _orders_imported(self, result: Any) -> None:
        """Orders imported (and so stock reserved): the stock watcher pushes the new stock now."""
        if isinstance(result, InboxResult) and result.imported + result.updated + result.invoices:
            self._stock_wake.set()

    def _start_stock_watcher(self) -> None:
        seconds = self.settings.schedule.stock_seconds
        if seconds <= 0:
            return
        from pipeline.stock.watch import watch_loop

        self._stock_thread = threading.Thread(
            target=watch_loop,
            args=(self.settings,),
            kwargs={
                "interval": seconds * minute_seconds() / 60,
                "stop_event": self.stop_event,
                "wake_event": self._stock_wake,
                "should_stop": self.stopping,
            },
            name="stock-watcher",
            daemon=True,
        )
        self._stock_thread.start()

    def _take_watched(self) -> InboxResult | None:
        """The watcher's passes since the last job, summed (None when it did nothing)."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        if not pending:
            return None
        total = InboxResult()
        for r in pending:
            total.add(r)
        return total

    def _watch(self) -> None:
        """Run `pipeline.orders.inbox.watch` until stopped; restart it after a crash."""
        while not self.stop_event.is_set():
            journal = Journal.from_settings(self.settings)
            state = State.from_settings(self.settings)
            try:
                journal.event("service", "inbox watcher started", inbox=str(self.settings.orders.inbox))
                inbox.watch(
                    self.settings,
                    journal=journal,
                    state=state,
                    stop_event=self.stop_event,
                    on_pass=self._watched,
                )
                if not self.stop_event.is_set():
                    journal.event("service", "inbox watcher returned; restarting in 30 s", "warning")
            except Exception as exc:  # noqa: BLE001 - restart the watcher rather than lose it
                journal.event(
                    "service",
                    f"inbox watcher crashed: {type(exc).__name__}: {exc}; restarting in 30 s",
                    "error",
                    traceback=traceback.format_exc(limit=20),
                )
            finally:
                journal.close()
                state.close()
            self.stop_event.wait(30)

    # --- the loop ---------------------------------------------------------------------------------

    def _start_web(self) -> Any:
        """The control room beside the service when `[web] enabled`; a busy port is a warning, not a stop
        (the exchange matters more than its page)."""
        if not self.settings.web.enabled:
            return None
        from pipeline.web import start_in_thread

        try:
            handle = start_in_thread(self.settings)
        except OSError as exc:
            self.journal.event("service", f"web page not started: {exc}", "warning")
            self.echo(f"{_clock()} web page not started: {exc} (set [web] port, or run `run.py web` apart)")
            return None
        self.journal.event("service", f"web page at {handle.url}", url=handle.url)
        self.echo(f"{_clock()} control room: {handle.url}")
        return handle

    def run(self, once: bool = False) -> int:
        """Run until stopped (or, with `once`, run each job once). Returns the exit code: 0, or with
        `once` 1 when a job failed (so cron can tell)."""
        import schedule

        from pipeline import progress

        progress.set_console(False)  # the service journals events; its log is no place for progress bars
        global _stop_signal
        _stop_signal = None
        self.stop_event.clear()
        previous = self._install_signals()
        started = datetime.now(UTC).isoformat(timespec="seconds")
        self.state.put(
            "service", "last_start", {"time": started, "pid": os.getpid(), "host": socket.gethostname()}
        )
        minute = minute_seconds()
        plan = ", ".join(f"{j.name} every {_every(j.every_seconds)}" for j in self.jobs)
        if self.settings.schedule.stock_seconds > 0 and not once:
            plan += f", stock every {_every(self.settings.schedule.stock_seconds * minute / 60)}"
        self.journal.event(
            "service",
            f"service started ({plan})",
            pid=os.getpid(),
            partial=self.settings.schedule.partial,
            test_minute_seconds=minute if minute != 60 else None,
        )
        self.echo(
            f"{_clock()} service started: {plan}; notifications: "
            f"{channels_summary(self.settings.notify.channels)}; Ctrl+C stops after the current step"
        )
        if self.watcher and not once:  # order files dropped by hand are taken in partial mode too
            self._thread = threading.Thread(target=self._watch, name="inbox-watcher", daemon=True)
            self._thread.start()
        if not once:
            self._start_stock_watcher()
        web = None if once else self._start_web()
        reason = "finished" if once else "stopped"
        try:
            for job in self.jobs:
                if job.run_at_start and not self.stopping():
                    self.run_job(job)
            if not once:
                scheduler = schedule.Scheduler()
                for job in self.jobs:
                    scheduler.every(job.every_seconds).seconds.do(self.run_job, job)  # type: ignore[arg-type]  # floats work
                while not self.stopping():
                    try:
                        scheduler.run_pending()
                    except Exception as exc:  # noqa: BLE001 - belt and braces: run_job never raises
                        self.journal.event("service", f"timer error: {type(exc).__name__}: {exc}", "error")
                    idle = scheduler.idle_seconds
                    time.sleep(min(0.5, max(0.02, idle if idle is not None else 0.5)))
            if _stop_signal is not None:
                reason = f"stopped by {signal.Signals(_stop_signal).name}"
        finally:
            self.stop_event.set()
            if web is not None:
                web.stop()
            if self._thread is not None:
                self._thread.join(timeout=60)
            if self._stock_thread is not None:
                self._stock_thread.join(timeout=60)
            self.state.put(
                "service",
                "last_stop",
                {
                    "time": datetime.now(UTC).isoformat(timespec="seconds"),
                    "reason": reason,
                    "runs": self.runs,
                    "clean": True,
                },
            )
            self.journal.event("service", f"service {reason} after {self.runs} run(s)")
            self.echo(f"{_clock()} service {reason} after {self.runs} run(s)")
            self.journal.close()
            self.state.close()
            for sig, handler in previous:
                signal.signal(sig, handler)
        return 1 if once and self.failed_runs else 0


def _kind(exc: BaseException) -> str:
    """How a failure is named in the service's lines: a settings problem says so (the fix is the
    settings file's), anything else by its type."""
    return "settings problem" if isinstance(exc, SettingsError) else type(exc).__name__


def _summary(outcome: StageOutcome) -> str:
    """One console line: the non-zero counts, a sync's stages, and whether it went well."""
    parts = [summarise_counts(outcome.counts)] if summarise_counts(outcome.counts) else []
    if isinstance(outcome.result, sync.SyncResult):
        parts += [f"{s.name} {s.status}" for s in outcome.result.stages]
    if outcome.status is Status.PROBLEMS:
        parts.append("FINISHED WITH PROBLEMS (see log)")
    elif outcome.status is Status.STOPPED:
        parts.append("stopped on request (what was done is saved)")
    return ", ".join(parts) or "nothing to do"


def _every(seconds: float) -> str:
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")
