"""What the feed now in place offers, per offer: the contract between the feed stage and the API push.

The feed stage writes (only after the feed file is durable in place) one record per offer in local state
namespace `feed.offers`, keyed by the offer id: the price and stock as the feed shows them, the presence
the API push should set (`available`, `not_available` or `waiting`: the feed has no "awaiting" value, so
the push sets it) and the wholesale ladder. The push reads them and sends what differs from what Satu
last acknowledged. Records carry their schema version; a record of another version is not read (the
next full feed run rewrites the namespace).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

NAMESPACE = "feed.offers"
SCHEMA = 1


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
    """Rebuild the namespace from scratch (first run, or a state that does not match the last feed)."""
    state.delete(NAMESPACE)
    put_many(state, offers)


def put_many(state: Any, offers: Iterable[tuple[str, FeedOffer]]) -> None:
    """Write (or overwrite) the records of these offers."""
    state.put_many(NAMESPACE, ((oid, offer.record()) for oid, offer in offers))


def remove(state: Any, offer_ids: Iterable[str]) -> None:
    """Forget offers that left the feed."""
    for oid in offer_ids:
        state.delete(NAMESPACE, oid)


# --- reader (the API push) -----------------------------------------------------------------------------------


def items(state: Any) -> Iterator[tuple[str, FeedOffer]]:
    """Every offer of the feed in place, by id (records of another schema are left out)."""
    for oid, raw in state.items(NAMESPACE):
        offer = FeedOffer.from_record(raw) if isinstance(raw, Mapping) else None
        if offer is not None:
            yield oid, offer


def read_all(state: Any) -> dict[str, FeedOffer]:
    """`items` as a dict."""
    return dict(items(state))
