"""The sandbox's fixed vocabulary (on top of `pipeline.satu.api`) and small helpers shared by its modules."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from pipeline.numbers import parse_decimal
from pipeline.satu.api import CANCELLATION_REASONS as REASON_CODES
from pipeline.satu.api import (
    MAX_BATCH,
    ORDER_STATUSES_SETTABLE,
    REASONS_WITH_TEXT,
    SATU_TZ,
    format_price,
    format_response_date,
)

__all__ = ["REASONS_WITH_TEXT", "SATU_TZ", "format_price"]

API_PREFIX = "/api/v1"
MAX_LIMIT = MAX_BATCH
SETTABLE_ORDER_STATUSES = ORDER_STATUSES_SETTABLE
PRESENCES = ("available", "not_available", "order", "waiting", "service")
PRODUCT_STATUSES = (
    "on_display",
    "draft",
    "deleted",
    "not_on_display",
    "editing_required",
    "approval_pending",
    "deleted_by_moderator",
)
STATUS_NAMES = {
    "pending": "Новый",
    "received": "Принят",
    "paid": "Оплачен",
    "delivered": "Выполнен",
    "canceled": "Отменен",
    "draft": "Черновик",
}
#: The numeric ids of the default order statuses (Prom cabinet data: 0 new, 1 accepted, 3 done,
#: 4 cancelled, 6 paid).
DEFAULT_STATUS_IDS = {"pending": 0, "received": 1, "delivered": 3, "canceled": 4, "paid": 6}
#: The seller's own statuses the sandbox shop has (`custom-<id>`: name), like monthly folders.
CUSTOM_STATUSES = {"custom-1001": "Ждёт оплаты", "custom-1002": "Декабрь"}
#: The cancellation reasons Satu accepts, with the titles it shows.
CANCELLATION_REASONS = dict(
    zip(
        REASON_CODES,
        (
            "Нет в наличии",
            "Цена изменилась",
            "По просьбе покупателя",
            "Недостаточно данных",
            "Дубликат заказа",
            "Неверный номер телефона",
            "Сумма меньше минимальной",
            "Другое",
        ),
        strict=True,
    )
)
FAULT_MODES = ("429", "500", "502", "503", "200-error", "timeout")
#: SQL condition: a product an import created is visible only after its appear delay.
_VISIBLE = "COALESCE(json_extract(data, '$._visible_after'), 0) <= ?"


def satu_time(dt: datetime) -> str:
    """A response date: `2026-11-27T12:34:56.588791+05:00`."""
    return format_response_date(dt)


def _decimal(value: Any) -> Decimal | None:
    """A number the sandbox received, or None when it is not one (the sandbox then refuses it)."""
    if isinstance(value, str) and any(ch.isspace() for ch in value.strip()):
        return None  # the API takes plain numbers; "1 950" is how Satu writes, not how it reads
    try:
        return parse_decimal(value)
    except ValueError:
        return None


def is_loopback_url(url: str) -> bool:
    """True for an http(s) URL whose host is this machine (the sandbox never leaves loopback)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False
