"""The state of one offer on Satu as the push compares and sends it (pure: no I/O).

`desired_state` turns a `feed.offers` record into the comparable form (price as 2-decimal text, whole
units of stock, presence); `to_item` makes the `products/edit_by_external_id` item of it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pipeline.contracts.feed_offers import FeedOffer
from pipeline.satu.api import parse_price

_CENT = Decimal("0.01")


def _price(value: Any) -> Decimal | None:
    try:
        d = parse_price(value)
    except ValueError:
        return None
    return None if d is None else d.quantize(_CENT)


def _quantity(value: Any) -> int:
    """Satu takes whole units: fractional stock is floored, negative stock is zero."""
    try:
        d = Decimal(str(value).replace(",", ".")) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return 0
    return max(0, int(d))


def desired_state(record: FeedOffer | dict[str, Any]) -> dict[str, Any]:
    """The comparable state of one offer of the feed record: price (2-decimal text), stock, presence."""
    offer = record if isinstance(record, FeedOffer) else FeedOffer.from_record(record)
    if offer is None:  # a record of another schema: nothing the push can trust
        offer = FeedOffer("", 0, "not_available")
    price = _price(offer.price)
    return {
        "price": None if price is None else format(price, "f"),
        "quantity_in_stock": _quantity(offer.quantity),
        "presence": offer.presence or "available",
    }


def gone_state(acked: dict[str, Any]) -> dict[str, Any]:
    """The state an offer that left the catalog must have on Satu: nothing to sell."""
    return {"price": acked.get("price"), "quantity_in_stock": 0, "presence": "not_available", "gone": True}


def _same(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    return a is not None and all(a.get(k) == b.get(k) for k in ("price", "quantity_in_stock", "presence"))


def to_item(offer_id: str, state: dict[str, Any]) -> dict[str, Any]:
    """The `edit_by_external_id` item for a desired state (prices as JSON numbers)."""
    item: dict[str, Any] = {
        "id": offer_id,
        "quantity_in_stock": state["quantity_in_stock"],
        "presence": state["presence"],
        "presence_sure": True,
    }
    if state.get("price") is not None:
        d = Decimal(state["price"])
        item["price"] = int(d) if d == d.to_integral_value() else float(d)
    return item


def _sold_out_first(item: tuple[str, dict[str, Any]]) -> tuple[int, int, str]:
    key, st = item
    sold_out = st["quantity_in_stock"] == 0 or st["presence"] != "available"
    return (0 if sold_out else 1, len(key), key)
