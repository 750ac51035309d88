"""The retry session: a target plus retry-with-reconnect and exponential backoff around every operation.

Only a `RetryableError` (as the target translates its library's exception) is retried, at most
`[publish] retries` times per operation, reconnecting each time. Each retry is shown as it happens:
one warning line in the journal and, when the caller passes `on_retry`, one line on the console.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pipeline.errors import RetryableError
from pipeline.publish.targets import Target

STAGE = "publish"
MAX_DELAY = 30.0
T = TypeVar("T")


class Session:
    """A target plus retry-with-reconnect around every operation; counts its retries."""

    def __init__(
        self,
        target: Target,
        retries: int,
        journal: Any,
        *,
        backoff: float = 1.0,
        on_retry: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.target = target
        self.retries = retries
        self.journal = journal
        self.backoff = backoff
        self.on_retry = on_retry
        self.sleep = sleep
        self.connected = False
        self.retried = 0

    def _connect(self) -> None:
        if not self.connected:
            self.target.connect()
            self.connected = True
            self.journal.event(STAGE, f"connected to {self.target.label}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry `attempt` (1, 2, …): doubling from `backoff`, capped, jittered."""
        return min(self.backoff * 2 ** (attempt - 1), MAX_DELAY) * (0.75 + random.random() / 2)

    def call(self, what: str, op: Callable[[], T]) -> T:
        """Run `op` (connecting first when needed); retry it on a `RetryableError`, else raise the
        translated error (chained to the foreign one)."""
        attempt = 0
        while True:
            try:
                self._connect()
                return op()
            except Exception as exc:
                err = self.target.translate(exc, f"{what} ({self.target.label})")
                if not isinstance(err, RetryableError) or attempt >= self.retries:
                    if err is exc:
                        raise
                    raise err from exc
                attempt += 1
                self.retried += 1
                wait = self.delay(attempt)
                message = f"{err} — retry {attempt}/{self.retries} in {wait:.1f} s"
                self.journal.event(STAGE, message, "warning")
                if self.on_retry is not None:
                    self.on_retry(message)
                self.close()
                self.sleep(wait)

    def close(self) -> None:
        """Close the connection (the next call reconnects)."""
        self.target.close()
        self.connected = False
