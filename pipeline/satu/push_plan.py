"""What a push run sends, computed in bounded memory (a million offers never sit in memory at once).

The record of the feed in place (`feed.offers`) and what Satu acknowledged (`satu.acked`) are read
page by page in key order (`State.page`, one short query per page of `PAGE` keys, no statement kept
open while the sender writes acknowledgements), and each page is compared with the acknowledged state
of its own keys (`State.get_many`) and with the outbox (`State.outbox_due_keys`). Items come out of
`plan` lazily, sold-out ones first: one pass for the sold-out offers, the offers that left the catalog
and the offers that left the feed, then one for the rest — so the send loop holds one batch.

The rules are those of `pipeline.satu.push` (see its docstring): only differences, the due outbox
items with the record's current values, everything on a full re-assertion, the offers that left
(unless too many left at once).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.contracts import feed_offers
from pipeline.contracts.feed_offers import FeedOffer
from pipeline.satu.import_gate import ACKED_NS
from pipeline.satu.offer_state import _quantity, _same, desired_state, gone_state

FEED_NS = feed_offers.NAMESPACE
LEFT_NS = feed_offers.LEFT_NAMESPACE
OUTBOX_KIND = "satu.product"
#: Keys read per query.
PAGE = 100


def sold_out(want: dict[str, Any]) -> bool:
    """Nothing to sell: these go first (an oversell costs more than a late restock)."""
    return want["quantity_in_stock"] == 0 or want["presence"] != "available"


@dataclass
class Counts:
    """What the plan found (filled in while it is consumed)."""

    changed: int = 0
    gone: int = 0


def _pages(state: Any, ns: str, *, missing_in: str | None = None) -> Iterator[list[tuple[str, Any]]]:
    after = ""
    while True:
        page = (
            state.page(ns, after, PAGE)
            if missing_in is None
            else state.page_missing(ns, missing_in, after, PAGE)
        )
        if not page:
            return
        yield page
        after = page[-1][0]


def _offer(raw: Any) -> FeedOffer | None:
    return FeedOffer.from_record(raw) if isinstance(raw, dict) else None


def has_record(state: Any) -> bool:
    """Whether the feed stage has recorded any offer yet."""
    return any(_offer(raw) is not None for page in _pages(state, FEED_NS) for _key, raw in page)


def gone_candidates(state: Any) -> tuple[int, int]:
    """(offers that left the catalog and are still on sale on Satu, offers known in all), counted page
    by page: the acknowledged ones no longer in the record, and those that left the feed before a push
    of theirs was acknowledged."""
    gone = sum(
        1 for page in _pages(state, ACKED_NS, missing_in=FEED_NS) for _k, was in page if not was.get("gone")
    )
    for page in _pages(state, LEFT_NS, missing_in=FEED_NS):
        acked = state.get_many(ACKED_NS, [k for k, _ in page])
        gone += sum(1 for k, raw in page if k not in acked and _offer(raw) is not None)
    return gone, max(state.count(ACKED_NS), state.count(FEED_NS) + gone)


def _record_pass(
    state: Any, *, want_sold_out: bool, full: bool, counts: Counts
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The offers of the record (sold-out ones, or the others) that differ, are due in the outbox, or
    are re-asserted."""
    for page in _pages(state, FEED_NS):
        mine = [(key, offer) for key, raw in page if (offer := _offer(raw)) is not None]
        # the class first, from the stock alone: price and acknowledged state are read only in the
        # offer's own pass
        mine = [(k, o) for k, o in mine if _is_sold_out(o) == want_sold_out]
        if not mine:
            continue
        keys = [k for k, _ in mine]
        acked = state.get_many(ACKED_NS, keys)
        due = state.outbox_due_keys(OUTBOX_KIND, keys)
        for key, offer in mine:
            want = desired_state(offer)
            differs = not _same(acked.get(key), want)
            counts.changed += differs
            if differs or full or key in due:
                yield key, want


def _is_sold_out(offer: FeedOffer) -> bool:
    """`sold_out` of the offer's desired state, without parsing its price."""
    return _quantity(offer.quantity) == 0 or (offer.presence or "available") != "available"


def _gone_pass(
    state: Any, *, mark_gone: bool, full: bool, counts: Counts
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Acknowledged offers no longer in the record: pushed as not available (when `mark_gone`), or
    re-sent when due in the outbox or on a full re-assertion (those marked gone before)."""
    for page in _pages(state, ACKED_NS, missing_in=FEED_NS):
        due = state.outbox_due_keys(OUTBOX_KIND, [k for k, _ in page])
        for key, was in page:
            if was.get("gone"):
                if full or key in due:
                    yield key, gone_state(was)
            elif mark_gone:
                counts.gone += 1
                yield key, gone_state(was)
            elif key in due:
                yield key, gone_state(was)


def _left_pass(state: Any, counts: Counts) -> Iterator[tuple[str, dict[str, Any]]]:
    """Offers that left the feed before any push of theirs was acknowledged: Satu imported them with
    the feed and would keep them on sale."""
    for page in _pages(state, LEFT_NS, missing_in=FEED_NS):
        acked = state.get_many(ACKED_NS, [k for k, _ in page])
        for key, raw in page:
            offer = _offer(raw)
            if key not in acked and offer is not None:
                counts.gone += 1
                yield key, gone_state(desired_state(offer))


def plan(state: Any, *, full: bool, mark_gone: bool, counts: Counts) -> Iterator[tuple[str, dict[str, Any]]]:
    """Everything to send this run, sold-out first, lazily (see the module docstring). Due outbox
    items whose offer is neither in the record nor acknowledged are dropped first (nothing to send)."""
    state.outbox_drop_unknown(OUTBOX_KIND, [FEED_NS, ACKED_NS])
    yield from _record_pass(state, want_sold_out=True, full=full, counts=counts)
    yield from _gone_pass(state, mark_gone=mark_gone, full=full, counts=counts)
    if mark_gone:
        yield from _left_pass(state, counts)
    yield from _record_pass(state, want_sold_out=False, full=full, counts=counts)
