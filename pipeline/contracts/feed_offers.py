"""What the feed now in place offers, per offer: the contract between the feed stage and the API push.

The feed stage writes (only after the feed file is durable in place) one record per offer in local state
namespace `feed.offers`, keyed by the offer id: the price and stock as the feed shows them, the presence
the API push should set (`available`, `not_available` or `waiting`: the feed has no "awaiting" value, so
the push sets it) and the wholesale ladder. The push reads them and sends what differs from what Satu
last acknowledged. Records carry their schema version; a record of another version is not read (the
next full feed run rewrites the namespace).

Offers that leave the feed in place move to namespace `feed.offers.left` (with their last record): Satu
imported them with the feed and keeps selling them until the push has marked them not available — also
when no push was ever acknowledged for them. The push forgets them once Satu acknowledged that.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

NAMESPACE = "feed.offers"
LEFT_NAMESPACE = "feed.offers.left"
SCHEMA = 1
#: When the stock watcher last changed an offer's record (offer id → wall-clock time): a feed run that
#: read the catalog before that keeps the watcher's newer record (no flip-flop back to older stock).
WATCHED_NS = "feed.offers.watched"


@dataclass(frozen=True, slots=True)
class FeedOffer:
    """One offer as the feed in place shows it (price and quantities as the feed's text)."""

    price: str
    quantity: int | str
    presence: str = "available"
    wholesale: tuple[tuple[str, str], ...] = ()  # (price, from quantity)

    def record(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "schema": SCHEMA,
            "price": self.price,
            "quantity": self.quantity,
            "presence": self.presence,
            "wholesale": [{"price": p, "quantity": q} for p, q in self.wholesale],
        }

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> FeedOffer | None:
        """Read a stored record; None for one of another schema (records without a version are schema 1)."""
        if raw.get("schema", SCHEMA) != SCHEMA:
            return None
        ladder = tuple(
            (str(w.get("price", "")), str(w.get("quantity", "")))
            for w in raw.get("wholesale") or ()
            if isinstance(w, Mapping)
        )
        return cls(
            str(raw.get("price") or ""),
            raw.get("quantity", 0),
            str(raw.get("presence") or "available"),
            ladder,
        )


# --- writer (the feed stage's commit) -----------------------------------------------------------------------


def replace_all(state: Any, offers: Iterable[tuple[str, FeedOffer]]) -> None:
    """Rebuild the namespace from scratch (first run, or a state that does not match the last feed);
    offers recorded before and not in the new feed are kept as left (see the module doc)."""
    # What was there and is not written again; the written ids are not collected (a million of them
    # would be held for nothing: only the ones recorded before matter, and only until written).
    gone = {oid for oid, _ in state.items(NAMESPACE)}

    def written() -> Iterator[tuple[str, FeedOffer]]:
        for oid, offer in offers:
            gone.discard(oid)
            yield oid, offer

    put_many(state, written())
    remove(state, gone)


def put_many(state: Any, offers: Iterable[tuple[str, FeedOffer]]) -> None:
    """Write (or overwrite) the records of these offers (an offer back in the feed is no longer left)."""
    # The left offers are few (until the push has made them unavailable): look each written id up in
    # them rather than keep every written id.
    left = {oid for oid, _ in state.items(LEFT_NAMESPACE)}
    back: list[str] = []

    def records() -> Iterator[tuple[str, dict[str, Any]]]:
        for oid, offer in offers:
            if oid in left:
                back.append(oid)
            yield oid, offer.record()

    state.put_many(NAMESPACE, records())
    for oid in back:
        state.delete(LEFT_NAMESPACE, oid)


def remove(state: Any, offer_ids: Iterable[str]) -> None:
    """Offers that left the feed: kept as left until the push has made them unavailable on Satu."""
    for oid in offer_ids:
        raw = state.get(NAMESPACE, oid)
        if raw is not None:
            state.put(LEFT_NAMESPACE, oid, raw)
        state.delete(NAMESPACE, oid)


# --- writer (the stock watcher, pipeline.stock) ---------------------------------------------------------------


def put_watched(
    state: Any, offers: Iterable[tuple[str, FeedOffer]], removed: Iterable[str], *, at: float
) -> None:
    """The stock watcher's changes: records rewritten or removed at `at` (one transaction)."""
    offers, removed = list(offers), list(removed)
    with state.atomic():
        put_many(state, offers)
        remove(state, removed)
        state.put_many(WATCHED_NS, ((oid, at) for oid in [*(o for o, _ in offers), *removed]))


def watched_since(state: Any, since: float) -> set[str]:
    """Offers the stock watcher changed at or after `since` (a feed that read earlier leaves them)."""
    return {oid for oid, at in state.items(WATCHED_NS) if isinstance(at, int | float) and at >= since}


def forget_watched(state: Any, before: float) -> None:
    """Drop the watcher's marks older than `before` (a feed that read the catalog later is newer)."""
    stale = [oid for oid, at in state.items(WATCHED_NS) if not isinstance(at, int | float) or at < before]
    for oid in stale:
        state.delete(WATCHED_NS, oid)


# --- reader (the API push) -----------------------------------------------------------------------------------


def items(state: Any) -> Iterator[tuple[str, FeedOffer]]:
    """Every offer of the feed in place, by id (records of another schema are left out)."""
    for oid, raw in state.items(NAMESPACE):
        offer = FeedOffer.from_record(raw) if isinstance(raw, Mapping) else None
        if offer is not None:
            yield oid, offer


def left_items(state: Any) -> Iterator[tuple[str, FeedOffer]]:
    """Offers that left the feed and may still be on sale on Satu, with their last record."""
    for oid, raw in state.items(LEFT_NAMESPACE):
        offer = FeedOffer.from_record(raw) if isinstance(raw, Mapping) else None
        if offer is not None:
            yield oid, offer


def forget_left(state: Any, offer_ids: Iterable[str]) -> None:
    """Satu acknowledged these offers as not available: nothing left to do for them."""
    for oid in offer_ids:
        state.delete(LEFT_NAMESPACE, oid)


def read_all(state: Any) -> dict[str, FeedOffer]:
    """`items` as a dict."""
    return dict(items(state))
