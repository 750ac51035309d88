"""What every stage returns, and how a run records it: the one contract between stages and their callers.

A stage (photos, feed, publish, push, orders fetch/import, status push, …) is a function that takes the
settings, the journal and the state (plus `should_stop`, when it loops over many items) and returns a
result that satisfies `StageResult`. Callers (`sync`, `service`, `demo`, `notify`, the CLI) read only
these members, never a stage's message text or class name:

- `ok`: the stage did its job (it may still have found problems in individual items);
- `skipped`: it had nothing to do (a flag, always a bool);
- `interrupted`: a stop was requested and it ended early with its state saved;
- `problems`: short, human texts of what went wrong (items refused, checks failed);
- `counts()`: the figures of the run (scalars, and small dicts of scalars such as the feed's
  `skip_reasons`), for reports and notifications.

Errors that stop a stage are exceptions (`pipeline.errors`); `run_step` keeps the exception object on
the `StageOutcome` so `notify` can classify it by type (`AuthError`, `RetryableError`, …).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pipeline.errors import PipelineError

Scalar = bool | int | float | str | None
Counts = dict[str, Any]
StopCheck = Callable[[], bool]


def never_stop() -> bool:
    """The default `should_stop`: a run that nobody can interrupt (tests, one-off commands)."""
    return False


@runtime_checkable
class StageResult(Protocol):
    """The members every stage result offers (see the module docstring)."""

    @property
    def ok(self) -> bool: ...

    @property
    def skipped(self) -> bool: ...

    @property
    def interrupted(self) -> bool: ...

    @property
    def problems(self) -> Sequence[str]: ...

    def counts(self) -> Counts: ...


class ResultBase:
    """Defaults and `counts()` for stage results written as dataclasses.

    A subclass declares `ok` (a field or a property) and may override the defaults below with fields of
    its own. `counts()` collects the dataclass fields that are scalars or small dicts of scalars; lists
    (problems, item details) are left out so a report stays short.
    """

    skipped: bool = False
    interrupted: bool = False
    problems: Sequence[str] = ()
    #: set (to the message) when the stage stopped because a disk was full; notify alerts on it
    disk_full: str = ""
    #: why the stage stopped short of its effect on purpose (the feed's mass-change guard): the
    #: console line shows it when there is no other problem to show
    stopped: str = ""

    def counts(self) -> Counts:
        """The run's figures by field name (see the class docstring)."""
        out: Counts = {}
        if not dataclasses.is_dataclass(self):
            return out
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool | int | float | str) or value is None:
                out[f.name] = value
            elif (
                isinstance(value, Mapping) and len(value) <= 20 and all(_is_scalar(v) for v in value.values())
            ):
                out[f.name] = dict(value)
        return out


def _is_scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float | str) or value is None


class Status(StrEnum):
    """How one stage of a run went."""

    OK = "ok"  # did its job, nothing wrong
    PROBLEMS = "problems"  # ran, but some items or checks failed (see detail)
    FAILED = "failed"  # raised: nothing (more) was done
    SKIPPED = "skipped"  # nothing to do, or not run on purpose (see detail)
    STOPPED = "stopped"  # a stop was requested; ended early, state saved


@dataclass
class StageOutcome:
    """One stage of a run: its status, a one-line detail, its counts, and the error or result behind it."""

    name: str
    status: Status
    detail: str = ""
    counts: Counts = field(default_factory=dict)
    seconds: float = 0.0
    error: BaseException | None = field(default=None, repr=False, compare=False)
    result: StageResult | None = field(default=None, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True when the stage ran to its end or had nothing to do."""
        return self.status in (Status.OK, Status.SKIPPED)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the error as its type and text, never the object)."""
        data: dict[str, Any] = {
            "name": self.name,
            "status": str(self.status),
            "detail": self.detail,
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
        }
        if self.error is not None:
            data["error"] = {"type": type(self.error).__name__, "text": str(self.error)}
        return data


def skipped(name: str, why: str) -> StageOutcome:
    """An outcome for a stage that was not run on purpose."""
    return StageOutcome(name, Status.SKIPPED, why)


def outcome_of(name: str, result: StageResult, seconds: float = 0.0) -> StageOutcome:
    """Turn a stage's result into its outcome (status from `ok`/`skipped`/`interrupted`)."""
    if result.interrupted:
        status, detail = Status.STOPPED, "stopped on request; what was done is saved"
    elif result.skipped:
        status, detail = Status.SKIPPED, "nothing to do (see the journal)"
    elif result.ok:
        status, detail = Status.OK, ""
    else:
        status = Status.PROBLEMS
        stopped = result.stopped if isinstance(result, ResultBase) else ""
        detail = "; ".join(str(p) for p in list(result.problems)[:3]) or stopped or "finished with problems"
    return StageOutcome(name, status, detail, result.counts(), seconds, result=result)


def run_step(name: str, step: Callable[[], StageResult | None]) -> StageOutcome:
    """Run one stage and record how it went; a `PipelineError` becomes a FAILED outcome that keeps the
    exception object. Anything else (a bug) propagates: it must never be mistaken for bad data."""
    started = time.monotonic()
    try:
        result = step()
    except PipelineError as exc:
        return StageOutcome(name, Status.FAILED, str(exc), seconds=time.monotonic() - started, error=exc)
    seconds = time.monotonic() - started
    if result is None:
        return StageOutcome(name, Status.SKIPPED, "nothing to do", seconds=seconds)
    return outcome_of(name, result, seconds)


def summarise_counts(counts: Mapping[str, Any], *, limit: int = 8) -> str:
    """`a 1, b 2` from a counts dict: numbers that are not zero, then true flags; at most `limit` items."""
    bits: list[str] = []
    for key, value in counts.items():
        if isinstance(value, bool) or key.endswith("seconds"):  # timings are in the outcome itself
            continue
        if isinstance(value, int | float) and value:
            bits.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(bits[:limit])


def summarise(outcomes: Iterable[StageOutcome]) -> str:
    """One line for a whole run: `photos ok (processed 3), feed problems: …, push skipped: …`."""
    parts: list[str] = []
    for o in outcomes:
        text = f"{o.name} {o.status}"
        figures = summarise_counts(o.counts)
        if figures:
            text += f" ({figures})"
        if o.detail and o.status is not Status.OK:
            text += f": {o.detail}"
        parts.append(text)
    return ", ".join(parts)
