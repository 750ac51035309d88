"""The stock watcher's push: some offers, now, through the acknowledged path of `pipeline.satu.push`.

Only the given offers (and the due outbox items) are compared — their record in `feed.offers` against
what Satu acknowledged — and sent in batches of 100 under the shared request budget
(`pipeline.satu.budget`), with one journal event per batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pipeline.contracts import feed_offers
from pipeline.satu.api import MAX_BATCH
from pipeline.satu.budget import RequestBudget
from pipeline.satu.client import SatuClient
from pipeline.satu.offer_state import _same, _sold_out_first, desired_state, gone_state
from pipeline.satu.push import (
    ACKED_NS,
    FEED_NS,
    OUTBOX_KIND,
    PushResult,
    current,
    queue_unreachable,
    send_batch,
)
from pipeline.stage import StopCheck, never_stop


def push_offers(
    settings: Any,
    keys: Iterable[str],
    *,
    journal: Any,
    state: Any,
    client: SatuClient,
    stage: str = "stock",
    should_stop: StopCheck = never_stop,
) -> PushResult:
    """Push the current record of these offers (and the due outbox items) through the acknowledged path.

    The stock watcher's push: only `keys` are compared (record vs `satu.acked`; an offer no longer in
    the record is pushed as gone), in batches of 100 under the shared request budget, one journal
    event per batch. Raises SatuAuthError like `run`.
    """
    result = PushResult()
    to_send: dict[str, dict[str, Any]] = {}
    due = [k for k, _payload, _attempts in state.outbox_due(OUTBOX_KIND, limit=1000)]
    for key in dict.fromkeys([*keys, *due]):
        raw = state.get(FEED_NS, key)
        offer = feed_offers.FeedOffer.from_record(raw) if isinstance(raw, dict) else None
        acked = state.get(ACKED_NS, key)
        want = desired_state(offer) if offer is not None else gone_state(acked) if acked else None
        if want is not None and (key in due or not _same(acked, want)):
            to_send[key] = want
    result.changed = len(to_send)
    ordered = sorted(to_send.items(), key=_sold_out_first)
    client.budget = client.budget or RequestBudget.from_settings(settings, state)
    now = time.time()
    for start in range(0, len(ordered), MAX_BATCH):
        if should_stop():
            result.interrupted = True
            break
        batch = ordered[start : start + MAX_BATCH]
        before = result.accepted
        res = send_batch(client, current(state, batch), state, journal, result, now)
        journal.event(
            stage,
            f"pushed {result.accepted - before}/{len(batch)} stock updates in {res.requests} requests",
            level="info" if res.ok else "warning",
            product_ids=[k for k, _ in batch][:200],
        )
        if res.retryable:
            queue_unreachable(ordered[start + MAX_BATCH :], res, state, journal, result)
            result.ok = False
            break
    result.outbox = state.outbox_count(OUTBOX_KIND)
    result.ok = result.ok and result.rejected == 0
    return result
