"""The Satu request budget: `[satu] max_requests_per_minute`, shared by every process that pushes.

A token bucket kept in the local state file (namespace `satu.budget`): it holds at most N tokens and
gains N per minute; each request sent to Satu takes one, waiting for it when the bucket is empty. The
bucket is read and written inside one SQLite `BEGIN IMMEDIATE` transaction (`State.atomic`), so the
service's stock watcher, its full exchange and a manual `push` in another process draw from the same
budget. Wall-clock time is used (a monotonic clock is per process); a clock that goes back refills
nothing. N = 0 means no limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

NAMESPACE = "satu.budget"
KEY = "bucket"


class RequestBudget:
    """A token bucket of `per_minute` requests shared through `state` (see the module docstring)."""

    def __init__(
        self,
        state: Any,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.state = state
        self.per_minute = per_minute
        self.clock = clock
        self.sleep = sleep
        #: seconds this budget made its caller wait, in total
        self.waited = 0.0

    @classmethod
    def from_settings(cls, settings: Any, state: Any) -> RequestBudget:
        """The budget `[satu] max_requests_per_minute` over the shared state file."""
        return cls(state, settings.satu.max_requests_per_minute)

    @property
    def rate(self) -> float:
        """Tokens gained per second."""
        return self.per_minute / 60.0

    def _try_take(self) -> float:
        """Take a token if there is one (0.0), else the seconds until there will be one."""
        with self.state.atomic():
            now = self.clock()
            bucket = self.state.get(NAMESPACE, KEY) or {}
            tokens = float(bucket.get("tokens", self.per_minute))
            since = float(bucket.get("ts", now))
            tokens = min(float(self.per_minute), tokens + max(0.0, now - since) * self.rate)
            if tokens >= 1.0:
                self.state.put(NAMESPACE, KEY, {"tokens": tokens - 1.0, "ts": now})
                return 0.0
            self.state.put(NAMESPACE, KEY, {"tokens": tokens, "ts": now})
            return (1.0 - tokens) / self.rate

    def take(self) -> float:
        """Take one request's token, waiting as long as needed; returns the seconds waited."""
        if self.per_minute <= 0:
            return 0.0
        waited = 0.0
        while (wait := self._try_take()) > 0:
            # a little over the exact time, so the retry finds the token (and not 0.9999 of it)
            wait += 0.01
            self.sleep(wait)
            waited += wait
        self.waited += waited
        return waited
