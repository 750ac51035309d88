"""Pure parsing of inbox files: bytes in, `pipeline.model.Order` out, or `DamagedFile` with a precise reason.

The inbox format (docs/orders.md): one order per file, UTF-8 JSON exactly as `GET /orders/{id}` returns it
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
from pipeline.satu.api import (
    PAID_ORDER_STATUSES,
    PAID_PAYMENT_STATUSES,
    SATU_TZ,
    SHOP_CURRENCY,
    is_shop_currency,
    parse_date,
    parse_price,
    split_price,
)

__all__ = [
    "DamagedFile",
    "normalize_phone",
    "normalize_email",
    "parse_order",
    "order_from_dict",
    "parse_price",
    "service_notes",
    "version_tag",
    "SATU_TZ",
]

PAID_STATUSES = PAID_ORDER_STATUSES
KNOWN_PAYMENT_STATUSES = frozenset({"paid", "paid_out", "unpaid", "refunded"})


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


# Far beyond any shop order, and below where two-decimal arithmetic (28 digits) breaks down; what lies
# between the database's own limits and this is refused by the database (quarantined as such).
ABSURD = Decimal(10) ** 20


def _decimal(
    obj: dict, key: str, where: str, *, required: bool = False, marks: list[str] | None = None
) -> Decimal | None:
    """A number or money text (`"1 713 грн"`, `"150 USD"`); its currency mark goes into `marks`."""
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise DamagedFile(f"missing {where} field {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DamagedFile(f"wrong type: {where} field {key!r} is {_type_name(value)}, expected a number")
    try:
        result, mark = split_price(value)
    except ValueError:
        raise DamagedFile(f"wrong type: {where} field {key!r} = {value!r} is not a number") from None
    if result is None and required:
        raise DamagedFile(f"missing {where} field {key!r}")
    if result is not None and (not result.is_finite() or abs(result) >= ABSURD):
        # NaN and ±Infinity (JSON extensions Python accepts), 1e400: data problems, not our bugs.
        raise DamagedFile(f"wrong value: {where} field {key!r} = {value!r} is not a usable number")
    if marks is not None and mark:
        marks.append(mark)
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


def _lines(order: dict, marks: list[str]) -> list[OrderLine]:
    products = order.get("products")
    if products is None:
        raise DamagedFile("missing order lines (field 'products')")
    if not isinstance(products, list):
        raise DamagedFile(f"wrong type: order field 'products' is {_type_name(products)}, expected a list")
    if not products:
        raise DamagedFile("missing order lines: 'products' is empty")
    return [_line(item, f"line {n}", marks) for n, item in enumerate(products, 1)]


def _line(item: Any, where: str, marks: list[str]) -> OrderLine:
    if not isinstance(item, dict):
        raise DamagedFile(f"wrong type: {where} of 'products' is {_type_name(item)}, expected an object")
    qty = _decimal(item, "quantity", where, required=True)
    assert qty is not None
    if qty <= 0:
        raise DamagedFile(f"wrong value: {where} quantity {qty} must be positive")
    price = _decimal(item, "price", where, marks=marks)
    if price is None:
        total = _decimal(item, "total_price", where, marks=marks)
        price = (total / qty).quantize(Decimal("0.01")) if total is not None else Decimal(0)
    return OrderLine(
        external_id=_text(item, "external_id", where),
        sku=_text(item, "sku", where),
        name=_text(item, "name", where),
        quantity=qty,
        price=price,
        satu_id=_text(item, "id", where),
    )


def _client(order: dict) -> dict:
    """The `client{}` object (a fallback for empty `client_*` fields); {} when absent or not an object."""
    client = order.get("client")
    return client if isinstance(client, dict) else {}


def customer_name(order: dict) -> str:
    """Full name from Satu's client fields: last, first and second (patronymic) name, as present.

    Empty flat `client_*` fields fall back to the `client{}` object, field by field.
    """
    client = _client(order)
    parts = [
        _text(order, f"client_{k}") or _text(client, k, "client")
        for k in ("last_name", "first_name", "second_name")
    ]
    return " ".join(p for p in parts if p)


def _person(obj: dict, where: str) -> tuple[str, str]:
    """(name, phone) of a person object such as `delivery_recipient`."""
    parts = [_text(obj, k, where) for k in ("last_name", "first_name", "second_name")]
    return " ".join(p for p in parts if p), _text(obj, "phone", where)


def _payment_status(order: dict) -> str:
    """`payment_data.status`: the object, null, or (an older shape) text — a status word or JSON."""
    payment = order.get("payment_data")
    if isinstance(payment, str):
        text = payment.strip()
        if text.startswith("{"):
            try:
                payment = json.loads(text)
            except ValueError:
                return ""
        else:
            return text.lower() if text.lower() in KNOWN_PAYMENT_STATUSES else ""
    if not isinstance(payment, dict):
        return ""  # null: no platform payment was used
    return _text(payment, "status", "payment_data").lower()


def _cancellation(order: dict) -> tuple[str, str]:
    """(title, initiator) of `cancellation`: an object, or text in an older shape, or null."""
    value = order.get("cancellation")
    if isinstance(value, str):
        return value.strip(), ""
    if not isinstance(value, dict):
        return "", ""
    return _text(value, "title", "cancellation"), _text(value, "initiator", "cancellation")


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


def _reserve_until(order: dict, field_name: str) -> date | None:
    if not field_name:
        return None
    raw_date = order.get(field_name)
    if raw_date in (None, ""):
        return None
    if not isinstance(raw_date, str):
        raise DamagedFile(
            f"wrong type: order field {field_name!r} is {_type_name(raw_date)}, expected a date text"
        )
    return parse_customer_date(raw_date)


def _total(order: dict, lines: list[OrderLine], marks: list[str]) -> tuple[Decimal, str]:
    """(what the buyer pays, its currency mark): the promo price when there is one, else `price`."""
    local: list[str] = []
    total = _decimal(order, "price_with_special_offer", "order", marks=local)
    if total is None:
        total = _decimal(order, "price", "order", marks=local)
    if total is None:
        total = sum((ln.price * ln.quantity for ln in lines), Decimal(0)).quantize(Decimal("0.01"))
    marks.extend(local)
    return total, (local[0] if local else (marks[0] if marks else ""))


def _warnings(order_id: int, marks: list[str], payment_status: str) -> list[str]:
    notes = []
    foreign = sorted({m for m in marks if not is_shop_currency(m)})
    if foreign:
        notes.append(
            f"order {order_id}: prices carry the currency mark {', '.join(foreign)}, not the shop's "
            f"{SHOP_CURRENCY}; the numbers were taken as they are"
        )
    if payment_status == "refunded":
        notes.append(f"order {order_id}: the payment was refunded to the buyer (not paid)")
    return notes


def order_from_dict(order: dict, *, customer_date_field: str = "delivery_date") -> Order:
    """A raw Satu order object → Order (pure; DamagedFile for missing or mistyped fields)."""
    order_id = _order_id(order)
    marks: list[str] = []
    lines = _lines(order, marks)
    created = _datetime(order, "date_created", required=True)
    assert created is not None
    status = _text(order, "status") or "pending"
    payment_status = _payment_status(order)
    provider = _obj(order, "delivery_provider_data")
    total, currency = _total(order, lines, marks)
    client = _client(order)
    recipient_name, recipient_phone = _person(_obj(order, "delivery_recipient"), "delivery_recipient")
    cancel_title, cancel_initiator = _cancellation(order)
    customer = Customer(
        name=customer_name(order),
        phone=normalize_phone(_text(order, "phone") or _text(client, "phone", "client")),
        email=normalize_email(_text(order, "email") or _text(client, "email", "client")),
        address=_text(order, "delivery_address"),
    )
    return Order(
        id=order_id,
        created=created,
        modified=_datetime(order, "date_modified", required=False),
        status=status,
        customer=customer,
        lines=lines,
        total=total,
        paid=payment_status in PAID_PAYMENT_STATUSES or status in PAID_STATUSES,
        payment_method=_text(_obj(order, "payment_option"), "name", "payment_option"),
        delivery_method=_text(_obj(order, "delivery_option"), "name", "delivery_option"),
        delivery_address=_text(order, "delivery_address"),
        delivery_cost=_decimal(order, "delivery_cost", "order") or Decimal(0),
        waybill=_text(provider, "declaration_number", "delivery_provider_data"),
        comment=_text(order, "client_notes"),
        reserve_until=_reserve_until(order, customer_date_field),
        source="satu",
        raw=order,
        payment_status=payment_status,
        refunded=payment_status == "refunded",
        currency=currency,
        promo_code=_text(order, "special_offer_promocode"),
        promo_discount=_decimal(order, "special_offer_discount", "order"),
        recipient_name=recipient_name,
        recipient_phone=normalize_phone(recipient_phone),
        dont_call=order.get("dont_call_customer_back") is True,
        cancellation_title=cancel_title,
        cancellation_initiator=cancel_initiator,
        warnings=_warnings(order_id, marks, payment_status),
    )


def service_notes(order: Order) -> list[str]:
    """Lines the importer adds to the order comment: promo, recipient (when not the buyer), "don't
    call", cancellation."""
    notes = []
    if order.promo_code or order.promo_discount:
        discount = f", скидка {order.promo_discount}" if order.promo_discount else ""
        notes.append(f"Промокод: {order.promo_code or '—'}{discount}")
    buyer = (order.customer.name, order.customer.phone)
    if (order.recipient_name or order.recipient_phone) and (
        order.recipient_name,
        order.recipient_phone,
    ) != buyer:
        who = ", ".join(p for p in (order.recipient_name, order.recipient_phone) if p)
        notes.append(f"Получатель: {who}")
    if order.dont_call:
        notes.append("Покупатель просит не перезванивать")
    if order.cancellation_title or order.cancellation_initiator:
        by = f" ({order.cancellation_initiator})" if order.cancellation_initiator else ""
        notes.append(f"Отмена: {order.cancellation_title or '—'}{by}")
    return notes


def version_tag(order: Order) -> str:
    """The order's version as used in inbox file names: date_modified (else date_created) in UTC+5."""
    moment = (order.modified or order.created).astimezone(SATU_TZ)
    return moment.strftime("%Y%m%dT%H%M%S%f")
