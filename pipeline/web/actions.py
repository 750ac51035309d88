"""Actions started from the web page: the same functions the CLI commands run, under the same run lock.

Each action runs in a background thread with its own journal run id, so the page shows its progress
(the journal events of that run) and its result. A run already holding the lock makes the action
refuse at once with the holder's name, as `--set schedule.lock_wait_seconds=0` does on the CLI.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import PipelineError
from pipeline.journal import Journal
from pipeline.lock import run_lock
from pipeline.state import State


def _sync(settings: Any, journal: Journal, state: State, partial: bool) -> tuple[bool, str]:
    from pipeline import sync

    r = sync.run(settings, journal=journal, state=state, partial=partial, dry_run=False, force=False)
    return r.ok, ", ".join(f"{s.name} {s.status}" + (f" ({s.detail})" if s.detail else "") for s in r.stages)


def _orders(settings: Any, journal: Journal, state: State) -> tuple[bool, str]:
    from pipeline.orders import fetch, inbox

    got = fetch.run(settings, journal=journal, state=state)
    imported = inbox.run(settings, journal=journal, state=state)
    return got.ok and imported.ok, f"{got.summary()}; {imported.summary()}"


def _status(settings: Any, journal: Journal, state: State) -> tuple[bool, str]:
    from pipeline.orders.status import run

    r = run(settings, journal=journal, state=state, baseline=False)
    return r.ok, f"{r.checked} checked, {r.pushed} pushed, {r.failed} failed, {r.pending} queued"


def _import(settings: Any, journal: Journal, state: State) -> tuple[bool, str]:
    from pipeline.orders import inbox

    r = inbox.run(settings, journal=journal, state=state)
    return r.ok, r.summary()


#: name -> (what the lock calls it, the function)
ACTIONS: dict[str, tuple[str, Callable[[Any, Journal, State], tuple[bool, str]]]] = {
    "sync": ("web: sync", lambda s, j, st: _sync(s, j, st, partial=False)),
    "prices": ("web: sync --partial", lambda s, j, st: _sync(s, j, st, partial=True)),
    "orders": ("web: orders fetch", _orders),
    "import": ("web: orders import", _import),
    "status": ("web: status push", _status),
}


@dataclass
class ActionRun:
    """One action started from the page."""

    id: str
    name: str
    started: float
    finished: float | None = None
    ok: bool | None = None
    summary: str = ""
    error: str = ""
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """True until the action's thread is done."""
        return self.finished is None


class Actions:
    """The actions started from this web page (newest last), one at a time like the CLI."""

    def __init__(self, settings: Any):
        self.settings = settings
        self.runs: list[ActionRun] = []
        self._mutex = threading.Lock()

    def start(self, name: str) -> ActionRun:
        """Start an action in a background thread; an unknown name is a PipelineError."""
        if name not in ACTIONS:
            raise PipelineError(f"unknown action {name!r}")
        run = ActionRun(uuid.uuid4().hex[:12], name, time.time())
        run.thread = threading.Thread(target=self._run, args=(run,), daemon=True, name=f"web-{name}")
        with self._mutex:
            self.runs.append(run)
            del self.runs[:-50]
        run.thread.start()
        return run

    def get(self, run_id: str) -> ActionRun | None:
        """An action by its id."""
        return next((r for r in self.runs if r.id == run_id), None)

    def _run(self, run: ActionRun) -> None:
        what, func = ACTIONS[run.name]
        journal = Journal.from_settings(self.settings, run_id=run.id)
        state = State.from_settings(self.settings)
        try:
            with run_lock(self.settings, what, wait=0):
                run.ok, run.summary = func(self.settings, journal, state)
        except PipelineError as exc:  # the lock is taken, a setting is missing, a server refused…
            run.ok, run.error = False, str(exc)
            journal.event("web", f"{what} failed: {exc}", "error")
        except Exception as exc:  # noqa: BLE001 - an internal bug: say so, keep the page alive
            run.ok, run.error = False, f"internal error {type(exc).__name__}: {exc}"
            journal.event(
                "web", f"{what} failed with an internal error: {type(exc).__name__}: {exc}", "error"
            )
        finally:
            run.finished = time.time()
            journal.close()
            state.close()
