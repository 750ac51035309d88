"""What one inbox pass did (`InboxResult`): the counts the CLI, the service and notify read."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.stage import ResultBase


@dataclass
class InboxResult(ResultBase):
    """Counts of one inbox pass."""

    scanned: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    invoices: int = 0
    unmatched_lines: int = 0
    failed: int = 0  # left in the inbox to retry (database unreachable or busy)
    waiting: int = 0  # still being written (not settled)
    recovered: int = 0  # claims of a killed importer taken over
    seconds: float = 0.0
    interrupted: bool = False  # a stop was requested: the rest waits in the inbox
    unavailable: bool = False  # the database went away mid-pass: the rest waits for a later pass
    skipped: bool = False  # the inbox held nothing at all
    stalled: int = 0  # imports the watchdog found stuck (no progress for stall_limit seconds)
    abandoned: int = 0  # workers left inside the database after the pass ended (see workers.py)
    disk_full: str = ""  # the inbox's disk is full: the pass stopped, every file waits (the message)
    problems: list[str] = field(default_factory=list)  # what went wrong, one line per file

    @property
    def ok(self) -> bool:
        """True when every settled file was imported (nothing quarantined, nothing failed, no stop)."""
        return (
            self.quarantined == 0
            and self.failed == 0
            and self.abandoned == 0
            and not self.interrupted
            and not self.disk_full
        )

    @property
    def ended(self) -> bool:
        """True when the pass could not go on: the database unavailable, the disk full, a worker left
        behind in the database."""
        return self.unavailable or bool(self.disk_full) or self.abandoned > 0

    @property
    def errors(self) -> list[str]:
        """The problems (the name the CLI and older callers use)."""
        return self.problems

    def add(self, other: InboxResult) -> None:
        """Accumulate another pass (used by watch)."""
        for name in (
            "scanned",
            "imported",
            "updated",
            "unchanged",
            "quarantined",
            "invoices",
            "unmatched_lines",
            "failed",
            "waiting",
            "recovered",
            "stalled",
            "abandoned",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.interrupted = self.interrupted or other.interrupted
        self.unavailable = self.unavailable or other.unavailable
        self.skipped = self.skipped and other.skipped
        self.disk_full = self.disk_full or other.disk_full
        self.problems.extend(other.problems)

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"imported {self.imported}, updated {self.updated}, unchanged {self.unchanged}, "
            f"quarantined {self.quarantined}, invoices {self.invoices}, unmatched lines "
            f"{self.unmatched_lines}, failed {self.failed}, waiting {self.waiting}"
            + (", stopped on request" if self.interrupted else "")
        )
