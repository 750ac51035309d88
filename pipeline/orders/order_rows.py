"""The pure part of the order import: Satu order → the values Torgsoft rows get (no database, no I/O).

Torgsoft's order and reservation states, the Satu status mapping, the text column limits, the
transliteration of text a narrow charset cannot hold, the content hash that makes a re-import a no-op,
and the reservation date. `importer` (the flow) and `jsonsink` (Torgsoft's order files) both use it.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.model import Order, OrderLine
from pipeline.orders.parse import SATU_TZ, service_notes

SOURCE = "satu"
# Torgsoft order states (reference schema): 0 new, 1 accepted, 2 shipped, 3 delivered, 4 cancelled.
NEW, ACCEPTED, SHIPPED, DELIVERED, CANCELLED = 0, 1, 2, 3, 4
# Reservation states: 0 active, 1 awaiting stock, 2 released, 3 consumed by an invoice.
ACTIVE, AWAITING, RELEASED, CONSUMED = 0, 1, 2, 3
SATU_STATUS = {
    "pending": NEW,
    "draft": NEW,
    "received": ACCEPTED,
    "paid": ACCEPTED,
    "delivered": DELIVERED,
    "canceled": CANCELLED,
    "cancelled": CANCELLED,
}
# Lengths of the reference schema's text columns: longer values are cut (a mapping with shorter
# columns gets a clear "too long" error naming the field instead).
LIMITS = {
    "name": 200,
    "phone": 30,
    "email": 200,
    "city": 100,
    "address": 500,
    "payment_method": 100,
    "delivery_condition": 200,
    "delivery_address": 500,
    "ttn": 60,
    "comment": 2000,
    "doc_number": 30,
}
# What each text parameter means to an operator (for error messages).
FIELD_LABELS = {
    "name": "customer name",
    "phone": "customer phone",
    "email": "customer e-mail",
    "city": "customer city",
    "address": "customer address",
    "payment_method": "payment method",
    "delivery_condition": "delivery method",
    "delivery_address": "delivery address",
    "ttn": "waybill number",
    "comment": "comment (client notes)",
    "doc_number": "document number",
    "articul": "line sku",
    "key_value": "customer phone/e-mail key",
}
MAX_ATTEMPTS = 8
Q2 = Decimal("0.01")

# Kazakh letters that WIN1251 cannot hold, with the Russian letter a Kazakh reader expects instead.
KAZAKH_TO_RUSSIAN = str.maketrans(
    {
        "Ә": "А",
        "ә": "а",
        "Ғ": "Г",
        "ғ": "г",
        "Қ": "К",
        "қ": "к",
        "Ң": "Н",
        "ң": "н",
        "Ө": "О",
        "ө": "о",
        "Ұ": "У",
        "ұ": "у",
        "Ү": "У",
        "ү": "у",
        "Һ": "Х",
        "һ": "х",
        "І": "И",
        "і": "и",
    }
)


def transliterate(text: str, level: int = 1) -> str:
    """Make text storable in a narrow charset: 1 = Kazakh → Russian letters (WIN1251-safe),
    2 = also anything outside WIN1251 → '?', 3 = plain ASCII (accents dropped, the rest → '?')."""
    out = text.translate(KAZAKH_TO_RUSSIAN)
    if level >= 2:
        out = out.encode("cp1251", "replace").decode("cp1251")
    if level >= 3:
        out = unicodedata.normalize("NFKD", out).encode("ascii", "ignore").decode("ascii") or "?"
    return out


def order_hash(order: Order) -> str:
    """A stable hash of the Satu order's content (an identical re-import changes nothing)."""
    return hashlib.sha256(
        json.dumps(order.raw, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    ).hexdigest()


def torgsoft_status(satu_status: str) -> int | None:
    """The Torgsoft order state for a Satu status; None for custom statuses (keep what is there)."""
    return SATU_STATUS.get(satu_status.lower())


def reserve_until(order: Order, reserve_days: int) -> date:
    """The customer's date when given (never before the order day), else the order day + reserve_days."""
    day = order.created.astimezone(SATU_TZ).date()
    if order.reserve_until is not None:
        return max(order.reserve_until, day)
    return day + timedelta(days=reserve_days)


def utc_naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


@dataclass
class ResolvedLine:
    """An order line with its Torgsoft good (None = unmatched) and the price that will be written."""

    no: int
    line: OrderLine
    good_id: int | None
    price: Decimal


@dataclass
class ImportOutcome:
    """What importing one order did."""

    kind: str  # "imported" | "updated" | "unchanged"
    order_id: int  # the Torgsoft order id
    invoice: bool = False  # an invoice was created now
    unmatched: list[str] = field(default_factory=list)
    shortages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def unmatched_notes(resolved: list[ResolvedLine]) -> list[str]:
    """A note for every line that matched no good (written into the order comment)."""
    return [
        f"line {r.no} not matched to a good: external_id {r.line.external_id!r}, sku {r.line.sku!r}, "
        f"{r.line.name!r} x {r.line.quantity}"
        for r in resolved
        if r.good_id is None
    ]


def updated_status(current: int, mapped: int | None) -> int:
    """The state a changed Satu order gets in Torgsoft, from the state it has there now.

    Never moves an order backwards (Torgsoft may already have shipped it); a cancelled order that Satu
    reopens comes back as the mapped state (or new, for a custom status)."""
    if mapped == CANCELLED:
        return CANCELLED
    if mapped is None:
        return current if current != CANCELLED else NEW
    return mapped if current == CANCELLED else max(current, mapped)


def customer_values(order: Order) -> dict[str, str]:
    """The customer's CLIENT values from the order, cut to the column lengths."""
    c = order.customer
    return {
        "name": c.name[: LIMITS["name"]],
        "phone": c.phone[: LIMITS["phone"]],
        "email": c.email[: LIMITS["email"]],
        "city": c.city[: LIMITS["city"]],
        "address": c.address[: LIMITS["address"]],
    }


def order_header(
    order: Order,
    resolved: list[ResolvedLine],
    status: int,
    client_id: int | None,
    unmatched: list[str],
    *,
    price_kind: str,
    reserve_days: int,
) -> dict[str, Any]:
    """The CUSTOMER_ORDER header values of an order (insert and update alike)."""
    # The buyer's note first, then what Satu says besides (promo, recipient, "don't call",
    # cancellation), then our own notes about lines that matched no good.
    comment = "\n".join(x for x in (order.comment, *service_notes(order)) if x)
    if unmatched:
        comment = (comment + "\n" if comment else "") + "\n".join(f"[satu] {u}" for u in unmatched)
    total = (
        order.total
        if price_kind == "order"
        else sum((r.price * r.line.quantity for r in resolved), Decimal(0))
    )
    return {
        "client_id": client_id,
        "status": status,
        "is_paid": 1 if order.paid else 0,
        "payment_method": order.payment_method[: LIMITS["payment_method"]],
        "delivery_condition": order.delivery_method[: LIMITS["delivery_condition"]],
        "delivery_address": order.delivery_address[: LIMITS["delivery_address"]],
        "ttn": order.waybill[: LIMITS["ttn"]] or None,
        "reserve_until": reserve_until(order, reserve_days),
        "comment": comment[: LIMITS["comment"]],
        "total": Decimal(total).quantize(Q2),
        "external_modified": utc_naive(order.modified or order.created),
        "external_hash": order_hash(order),
    }
