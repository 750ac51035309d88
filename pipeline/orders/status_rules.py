"""What status a Torgsoft order should have on Satu: the pure rules of the status push.

A Torgsoft order (as `orders_for_status.sql` gives it) becomes an `OrderState`; `target_status` maps it
through the `[status]` settings to the Satu status to set (precedence cancelled > delivered > shipped >
paid > accepted; `pending` is never sent); `validate` checks those settings; `satu_has` tells whether a
Satu order already shows a wanted write. No I/O here (see `pipeline/orders/status.py` for the stage).
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime
from typing import Any

from pipeline.errors import Problem, SettingsError
from pipeline.satu.api import ORDER_STATUSES_SETTABLE, REASONS_WITH_TEXT
from pipeline.settings import StatusSettings

SETTABLE = ORDER_STATUSES_SETTABLE
NEEDS_TEXT = REASONS_WITH_TEXT
KIND_STATUS = "status.set"  # outbox kinds: a status write, a waybill write
KIND_TTN = "status.ttn"

# Torgsoft CUSTOMER_ORDER.STATUS values (reference schema).
NEW, ACCEPTED, SHIPPED, DELIVERED, CANCELLED = 0, 1, 2, 3, 4


@dataclasses.dataclass(frozen=True)
class OrderState:
    """The part of a Torgsoft order that Satu should know: status, paid flag, waybill."""

    external_id: str
    status: int
    is_paid: bool
    ttn: str
    changed_at: datetime | None = None

    @property
    def fingerprint(self) -> str:
        """A short hash of what the push reacts to (the per-order state hash)."""
        raw = f"{self.status}|{int(self.is_paid)}|{self.ttn}"
        return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Target:
    """A Satu status to set, with the cancellation details Satu wants for `canceled`."""

    status: str
    cancellation_reason: str | None = None
    cancellation_text: str | None = None

    def payload(self) -> dict[str, Any]:
        """The outbox payload (JSON)."""
        return {
            "status": self.status,
            "cancellation_reason": self.cancellation_reason,
            "cancellation_text": self.cancellation_text,
        }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()


def map_row(row: dict[str, Any]) -> OrderState:
    """Row of orders_for_status.sql → OrderState (pure). NULL paid/TTN mean unpaid/none."""
    paid = row.get("is_paid")
    if isinstance(paid, str):
        paid = paid.strip().lower() in ("1", "true", "t", "y", "yes")
    changed = row.get("changed_at")
    return OrderState(
        external_id=_text(row.get("external_id")),
        status=int(row.get("status") or 0),
        is_paid=bool(paid),
        ttn=_text(row.get("ttn")),
        changed_at=changed if isinstance(changed, datetime) else None,
    )


def validate(cfg: StatusSettings) -> None:
    """Refuse a status map Satu cannot take (`pending`, unknown statuses); all problems at once."""
    problems: list[Problem] = []
    for key in ("accepted", "paid", "shipped", "delivered", "cancelled"):
        value = getattr(cfg, key)
        if value == "pending":
            problems.append(
                Problem(
                    f"status.{key}",
                    "`pending` cannot be set through the Satu API",
                    f'use one of {", ".join(SETTABLE)}, or "" to send nothing',
                )
            )
        elif value and value not in SETTABLE and not value.startswith("custom"):
            problems.append(
                Problem(
                    f"status.{key}",
                    f"{value!r} is not a Satu order status",
                    f'use one of {", ".join(SETTABLE)} (or a custom-… status), or ""',
                )
            )
    if (
        cfg.cancelled == "canceled"
        and cfg.cancellation_reason in NEEDS_TEXT
        and not cfg.cancellation_text.strip()
    ):
        problems.append(
            Problem(
                "status.cancellation_text",
                f"is empty, but Satu requires a text with the reason {cfg.cancellation_reason!r}",
                "write the text the customer should see",
            )
        )
    if problems:
        raise SettingsError(problems)


def target_status(order: OrderState, cfg: StatusSettings) -> Target | None:
    """The Satu status a Torgsoft order should have, or None (pure).

    Precedence: cancelled > delivered > shipped > paid > accepted. A state mapped to "" falls
    through to the next applicable one, except cancelled (a cancelled order never reports `paid`).
    STATUS 0 (new) and unknown STATUS values alone map to nothing: `pending` is never sent.
    """
    if order.status == CANCELLED:
        if not cfg.cancelled:
            return None
        if cfg.cancelled == "canceled":
            reason = cfg.cancellation_reason
            text = cfg.cancellation_text if reason in NEEDS_TEXT else None
            return Target(cfg.cancelled, reason, text or None)
        return Target(cfg.cancelled)
    ladder = [
        (order.status == DELIVERED, cfg.delivered),
        (order.status == SHIPPED, cfg.shipped),
        (order.is_paid, cfg.paid),
        (order.status in (ACCEPTED, SHIPPED, DELIVERED), cfg.accepted),
    ]
    for applies, status in ladder:
        if applies and status:
            return Target(status)
    return None


# --- reading Torgsoft -------------------------------------------------------------------------------


def satu_has(kind: str, order: dict[str, Any], payload: dict[str, Any]) -> bool:
    """Whether Satu's order already shows what a queued write would set (pure).

    A status counts as present when Satu shows it; `paid` also when Satu's own payment data says
    paid (Satu took the payment itself). A waybill counts when its number is already attached.
    """
    if kind == KIND_STATUS:
        if order.get("status") == payload.get("status"):
            return True
        return payload.get("status") == "paid" and (order.get("payment_data") or {}).get("status") == "paid"
    provider = order.get("delivery_provider_data") or {}
    return bool(payload.get("ttn")) and str(provider.get("declaration_number") or "") == payload.get("ttn")


def _satu_id(external_id: str) -> int | None:
    try:
        value = int(external_id)
    except ValueError:
        return None
    return value if value > 0 else None


# --- the stage ------------------------------------------------------------------------------------
