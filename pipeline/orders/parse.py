"""Pure parsing of inbox files: bytes in, `pipeline.model.Order` out, or `DamagedFile` with a precise reason.

The inbox format (DESIGN.md): one order per file, UTF-8 JSON exactly as `GET /orders/{id}` returns it
(`{"order": {…}}`); a bare order object is accepted too. Anything else is damaged: the importer
quarantines it with the reason given here. Nothing in this module does I/O.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pipeline.errors import SkipError
from pipeline.model import Customer, Order, OrderLine
from pipeline.satu.api import PAID_ORDER_STATUSES, SATU_TZ, parse_date, parse_price

__all__ = [
    "DamagedFile",
    "normalize_phone",
    "normalize_email",
    "parse_order",
    "order_from_dict",
    "parse_price",
    "version_tag",
    "SATU_TZ",
]

PAID_STATUSES = PAID_ORDER_STATUSES


class DamagedFile(SkipError):
    """An inbox file that is not a usable order; `reason` says exactly why (it goes into the reason file)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


# --- small pure helpers -------------------------------------------------------------------------------


def normalize_phone(raw: Any) -> str:
    """One form for Kazakh phone numbers: digits only, country code 7 (`77011234567`).

    `+7 (701) 123-45-67`, `8 701 123 45 67`, `87011234567` and `7011234567` all give `77011234567`.
    Numbers of other countries keep their digits as written; empty or digit-less input gives "".
    """
    if raw is None:
        return ""
    digits = "".join(ch for ch in str(raw) if ch.isdigit() and ch.isascii())
    if len(digits) == 11 and digits[0] in "78":
        return "7" + digits[1:]
    if len(digits) == 10 and digits[0] in "67":  # written without the country code
        return "7" + digits
    return digits


def normalize_email(raw: Any) -> str:
    """E-mail for matching: trimmed and lower-cased ("" when absent)."""
    return str(raw or "").strip().lower()


def parse_satu_datetime(value: str) -> datetime:
    """A Satu date (`2026-11-27T12:34:56.588791+05:00`) as an aware datetime (naive → UTC+5)."""
    dt = parse_date(value)
    if dt is None:
        raise ValueError(f"not a date: {value!r}")
    return dt


def parse_customer_date(value: Any) -> date | None:
    """A date the customer gave (`2026-12-01`, `01.12.2026`, or a full ISO timestamp); None if unreadable."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    try:
        return parse_satu_datetime(text).date()
    except ValueError:
        return None


# --- decoding -----------------------------------------------------------------------------------------


def _decode(data: bytes, max_bytes: int) -> str:
    size = len(data)
    if size > max_bytes:
        raise DamagedFile(f"absurdly large: {size} bytes (limit [orders] max_file_bytes = {max_bytes})")
    if size == 0:
        raise DamagedFile("empty file (0 bytes)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DamagedFile("unknown encoding: UTF-16 byte order mark (order files must be UTF-8)")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DamagedFile(f"binary junk: NUL byte at offset {nul} (not a text file)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DamagedFile(
            f"unknown encoding: byte 0x{data[exc.start]:02x} at offset {exc.start} is not "
            f"UTF-8 (order files must be UTF-8)"
        ) from None
    controls = [ch for ch in text[:4096] if ord(ch) < 32 and ch not in "\r\n\t"]
    if controls:
        raise DamagedFile(f"binary junk: control character 0x{ord(controls[0]):02x} in the text")
    return text


def _unclosed(text: str) -> bool:
    """True when the text ends inside a string or with brackets still open (a cut-off document)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
    return in_string or depth > 0


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or _unclosed(text):
            raise DamagedFile(
                f"truncated JSON: the text ends at line {exc.lineno} column {exc.colno} "
                f"before the document is complete ({exc.msg})"
            ) from None
        raise DamagedFile(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise DamagedFile("invalid JSON: nested too deeply") from None


# --- field readers (each raises DamagedFile naming the field) -----------------------------------------


def _type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "text",
        bool: "true/false",
        type(None): "null",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _text(obj: dict, key: str, where: str = "order") -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise DamagedFile(f"wrong type: {where} field {key!r} is {_type_name(value)}, expected text")


def _obj(obj: dict, key: str) -> dict:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DamagedFile(f"wrong type: order field {key!r} is {_type_name(value)}, expected an object")
    return value


def _decimal(obj: dict, key: str, where: str, *, required: bool = False) -> Decimal | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise DamagedFile(f"missing {where} field {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DamagedFile(f"wrong type: {where} field {key!r} is {_type_name(value)}, expected a number")
    try:
        result = parse_price(value)
    except ValueError:
        raise DamagedFile(f"wrong type: {where} field {key!r} = {value!r} is not a number") from None
    if result is None and required:
        raise DamagedFile(f"missing {where} field {key!r}")
    return result


def _datetime(obj: dict, key: str, *, required: bool) -> datetime | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise DamagedFile(f"missing order field {key!r}")
        return None
    if not isinstance(value, str):
        raise DamagedFile(f"wrong type: order field {key!r} is {_type_name(value)}, expected a date text")
    try:
        return parse_satu_datetime(value)
    except ValueError:
        raise DamagedFile(f"wrong type: order field {key!r} = {value!r} is not an ISO date") from None


def _order_id(order: dict) -> int:
    if "id" not in order or order["id"] is None or order["id"] == "":
        raise DamagedFile("missing order id (field 'id')")
    value = order["id"]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DamagedFile(f"wrong type: order field 'id' is {_type_name(value)}, expected a whole number")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise DamagedFile(f"wrong type: order field 'id' = {value!r} is not a whole number")
        value = int(value.strip())
    if value <= 0:
        raise DamagedFile(f"wrong value: order id {value} must be positive")
    return value


def _lines(order: dict) -> list[OrderLine]:
    products = order.get("products")
    if products is None:
        raise DamagedFile("missing order lines (field 'products')")
    if not isinstance(products, list):
        raise DamagedFile(f"wrong type: order field 'products' is {_type_name(products)}, expected a list")
    if not products:
        raise DamagedFile("missing order lines: 'products' is empty")
    lines = []
    for n, item in enumerate(products, 1):
        where = f"line {n}"
        if not isinstance(item, dict):
            raise DamagedFile(f"wrong type: {where} of 'products' is {_type_name(item)}, expected an object")
        qty = _decimal(item, "quantity", where, required=True)
        assert qty is not None
        if qty <= 0:
            raise DamagedFile(f"wrong value: {where} quantity {qty} must be positive")
        price = _decimal(item, "price", where)
        if price is None:
            total = _decimal(item, "total_price", where)
            price = (total / qty).quantize(Decimal("0.01")) if total is not None else Decimal(0)
        external_id = _text(item, "external_id", where)
        sku = _text(item, "sku", where)
        lines.append(
            OrderLine(
                external_id=external_id, sku=sku, name=_text(item, "name", where), quantity=qty, price=price
            )
        )
    return lines


def customer_name(order: dict) -> str:
    """Full name from Satu's client fields: last, first and second (patronymic) name, as present."""
    parts = [_text(order, k) for k in ("client_last_name", "client_first_name", "client_second_name")]
    return " ".join(p for p in parts if p)


def parse_order(
    data: bytes, *, max_bytes: int = 5_000_000, customer_date_field: str = "delivery_date"
) -> Order:
    """Inbox file bytes → Order; raises DamagedFile with a precise reason for anything unusable."""
    doc = _load_json(_decode(data, max_bytes))
    if not isinstance(doc, dict):
        raise DamagedFile(
            f"wrong type: the document is {_type_name(doc)}, expected an object "
            f'({{"order": {{…}}}} or a bare order)'
        )
    if "order" in doc:
        order = doc["order"]
        if not isinstance(order, dict):
            raise DamagedFile(f"wrong type: 'order' is {_type_name(order)}, expected an object")
    else:
        order = doc
    return order_from_dict(order, customer_date_field=customer_date_field)


def order_from_dict(order: dict, *, customer_date_field: str = "delivery_date") -> Order:
    """A raw Satu order object → Order (pure; DamagedFile for missing or mistyped fields)."""
    order_id = _order_id(order)
    lines = _lines(order)
    created = _datetime(order, "date_created", required=True)
    assert created is not None
    modified = _datetime(order, "date_modified", required=False)
    status = _text(order, "status") or "pending"
    payment = _obj(order, "payment_data")
    payment_status = _text(payment, "status", "payment_data")
    delivery_option = _obj(order, "delivery_option")
    provider = _obj(order, "delivery_provider_data")
    payment_option = _obj(order, "payment_option")
    total = _decimal(order, "price", "order")
    if total is None:
        total = sum((ln.price * ln.quantity for ln in lines), Decimal(0)).quantize(Decimal("0.01"))
    reserve_until = None
    if customer_date_field:
        raw_date = order.get(customer_date_field)
        if raw_date not in (None, ""):
            if not isinstance(raw_date, str):
                raise DamagedFile(
                    f"wrong type: order field {customer_date_field!r} is {_type_name(raw_date)}, "
                    f"expected a date text"
                )
            reserve_until = parse_customer_date(raw_date)
    customer = Customer(
        name=customer_name(order),
        phone=normalize_phone(_text(order, "phone")),
        email=normalize_email(_text(order, "email")),
        address=_text(order, "delivery_address"),
    )
    return Order(
        id=order_id,
        created=created,
        modified=modified,
        status=status,
        customer=customer,
        lines=lines,
        total=total,
        paid=payment_status == "paid" or status in PAID_STATUSES,
        payment_method=_text(payment_option, "name", "payment_option"),
        delivery_method=_text(delivery_option, "name", "delivery_option"),
        delivery_address=_text(order, "delivery_address"),
        delivery_cost=_decimal(order, "delivery_cost", "order") or Decimal(0),
        waybill=_text(provider, "declaration_number", "delivery_provider_data"),
        comment=_text(order, "client_notes"),
        reserve_until=reserve_until,
        source="satu",
        raw=order,
    )


def version_tag(order: Order) -> str:
    """The order's version as used in inbox file names: date_modified (else date_created) in UTC+5."""
    moment = (order.modified or order.created).astimezone(SATU_TZ)
    return moment.strftime("%Y%m%dT%H%M%S%f")
