"""The project's own errors, named by what the caller should do.

Adapters (Firebird, FTP, SFTP, HTTP) translate foreign exceptions into these at the boundary, so the
stages and the CLI never need to know which library failed.
"""

from __future__ import annotations

from dataclasses import dataclass


class PipelineError(Exception):
    """Base of every error the program raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the settings: which key, what is wrong, how to fix it."""

    key: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.key}: {self.message}"
        return f"{text} — {self.fix}" if self.fix else text


class SettingsError(PipelineError):
    """The settings (or the SQL mapping) are unusable; every problem is listed at once. Exit code 2."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class RetryableError(PipelineError):
    """A transient failure (network, busy server, lock): the same call may succeed later."""


class SkipError(PipelineError):
    """This one item (a row, a file, an order) is bad; skip it, report it, and go on with the rest."""


class StopError(PipelineError):
    """The job cannot go on safely (e.g. a mass-change guard, an unreachable database): stop it."""


class DiskFullError(StopError):
    """No space left (or the disk quota reached) where the program writes: nothing more can be written
    there until a person frees space. `folder` is where the write failed; the message says what was kept
    and the fix. Nothing is lost: the write was undone and the work waits for the next run."""

    def __init__(self, message: str, folder: str = ""):
        super().__init__(message)
        self.folder = folder


class DatabaseError(PipelineError):
    """A database operation failed; the message says which and why (never contains a password)."""


class LockedError(RetryableError):
    """Another run holds the lock; try again when it is done."""


class DatabaseUnavailable(DatabaseError, RetryableError):
    """The database did not answer or a lock/deadlock got in the way: retry later."""


class AuthError(PipelineError):
    """A remote service refused our credentials (expired or wrong token, bad password): a person must act.

    Never retried; `notify` raises the credentials alert for it, whichever stage hit it.
    """


class InputFileError(PipelineError):
    """A file the user gave a command (not a setting) is missing, empty or unreadable. Exit code 2."""
