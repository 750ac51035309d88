"""Order shapes of the Satu API as public evidence documents them, with values of our own.

Each fixture is one documented kind (issue 13): money with a foreign currency mark, `payment_data`
null / object / text, promo orders, empty `client_*` fields with a `client{}` object, the parcel
recipient, "don't call back", `cancellation{title, initiator}`, a product made in the cabinet (no
`external_id`). `shape_problems` checks an order against the documented field types; the contract
tests run it over these fixtures AND over what the sandbox serves, so the two cannot drift apart.
No value here was copied from a third-party file.
"""

from __future__ import annotations

import copy
from typing import Any

NBSP = "\u00a0"

_BASE: dict[str, Any] = {
    "id": 4_100_001,
    "date_created": "2026-10-14T09:12:40.120034+05:00",
    "date_modified": "2026-10-14T09:30:02.500000+05:00",
    "client_first_name": "Гаухар",
    "client_second_name": None,
    "client_last_name": "Омарова",
    "client_id": 8_812_004,
    "client": {"id": 8_812_004, "first_name": "Гаухар", "last_name": "Омарова", "phone": "+77027001122"},
    "client_notes": "Домофон не работает",
    "phone": "+77027001122",
    "email": "gaukhar.o@example.kz",
    "price": "4 800 ₸",
    "full_price": "5 800 ₸",
    "price_with_special_offer": None,
    "special_offer_discount": None,
    "special_offer_promocode": None,
    "delivery_option": {"id": 77, "name": "Курьер по Астане", "shipping_service": None},
    "delivery_provider_data": None,
    "delivery_address": "Астана, ул. Сыганак, 14",
    "delivery_cost": 1000,
    "delivery_recipient": {"first_name": "Гаухар", "last_name": "Омарова", "phone": "+77027001122"},
    "payment_option": {"id": 31, "name": "Оплата при получении"},
    "payment_data": None,
    "status": "pending",
    "status_name": "Новый",
    "source": "portal",
    "has_order_promo_free_delivery": False,
    "cpa_commission": {"amount": "0 ₸", "is_refunded": False},
    "utm": None,
    "dont_call_customer_back": False,
    "ps_promotion": None,
    "cancellation": None,
    "products": [
        {
            "id": 55_001_234,
            "external_id": "TS-3301",
            "sku": "ART-3301",
            "name": "Термос 1 л",
            "name_multilang": {"ru": "Термос 1 л", "kk": "Термос 1 л"},
            "quantity": 2,
            "price": "2 400 ₸",
            "total_price": "4 800 ₸",
            "measure_unit": "шт.",
            "image": "https://images.example.kz/55001234.jpg",
            "url": "https://satu.kz/p55001234.html",
            "cpa_commission": {"amount": "0 ₸", "is_refunded": False},
        }
    ],
}


def _order(order_id: int, **changes: Any) -> dict[str, Any]:
    o = copy.deepcopy(_BASE)
    o["id"] = order_id
    o.update(changes)
    return o


def _line(**changes: Any) -> dict[str, Any]:
    line = copy.deepcopy(_BASE["products"][0])
    line.update(changes)
    return line


#: kind → (raw order, what the parser must read from it)
FIXTURES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "plain": (_order(4_100_001), {"total": "4800", "currency": "₸", "paid": False, "warnings": 0}),
    "usd_mark": (
        _order(
            4_100_002,
            price="150 USD",
            full_price="150 USD",
            delivery_cost=0,
            products=[_line(quantity=1, price="150 USD", total_price="150 USD")],
        ),
        {"total": "150", "currency": "USD", "line_price": "150", "warnings": 1},
    ),
    "hryvnia_nbsp_comma": (
        _order(
            4_100_003,
            price=f"1{NBSP}713,50 грн",
            products=[_line(quantity=1, price=f"1{NBSP}713,50{NBSP}грн", total_price=f"1{NBSP}713,50 грн")],
        ),
        {"total": "1713.50", "currency": "грн", "line_price": "1713.50", "warnings": 1},
    ),
    "payment_object_paid_out": (
        _order(
            4_100_004,
            status="received",
            payment_data={
                "type": "evopay",
                "status": "paid_out",
                "status_modified": "2026-10-14T10:00:00+05:00",
            },
        ),
        {"paid": True, "payment_status": "paid_out", "refunded": False},
    ),
    "payment_text": (_order(4_100_005, payment_data="paid"), {"paid": True, "payment_status": "paid"}),
    "payment_null_status_paid": (
        _order(4_100_006, status="paid", payment_data=None),
        {"paid": True, "payment_status": ""},
    ),
    "refunded": (
        _order(
            4_100_007,
            status="canceled",
            payment_data={
                "type": "evopay",
                "status": "refunded",
                "status_modified": "2026-10-15T08:00:00+05:00",
            },
            cancellation={"title": "По просьбе покупателя", "initiator": "buyer"},
        ),
        {
            "paid": False,
            "refunded": True,
            "warnings": 1,
            "cancellation_title": "По просьбе покупателя",
            "cancellation_initiator": "buyer",
        },
    ),
    "promo": (
        _order(
            4_100_008,
            price="4 800 ₸",
            price_with_special_offer="4 320 ₸",
            special_offer_discount="480 ₸",
            special_offer_promocode="KOKTEM10",
        ),
        {"total": "4320", "promo_code": "KOKTEM10", "promo_discount": "480"},
    ),
    "client_fallback": (
        _order(
            4_100_009,
            client_first_name="",
            client_last_name="",
            phone="",
            email="",
            client={
                "id": 8_812_999,
                "first_name": "Ержан",
                "last_name": "Бекенов",
                "phone": "8 (705) 300-40-50",
            },
        ),
        {"customer_name": "Бекенов Ержан", "customer_phone": "77053004050"},
    ),
    "recipient_and_dont_call": (
        _order(
            4_100_010,
            delivery_recipient={"first_name": "Сания", "last_name": "Ахметова", "phone": "+7 747 111 22 33"},
            dont_call_customer_back=True,
        ),
        {"recipient_name": "Ахметова Сания", "recipient_phone": "77471112233", "dont_call": True},
    ),
    "cabinet_product": (
        _order(4_100_011, products=[_line(id=55_009_876, external_id=None, sku="ART-3301")]),
        {"line_external_id": "", "line_sku": "ART-3301", "line_satu_id": "55009876"},
    ),
    "full_delivery_block": (
        _order(
            4_100_012,
            status="custom-130777",
            status_name="Декабрь",
            delivery_provider_data={
                "provider": "courier_assumed",
                "type": "W2D",
                "sender_warehouse_id": None,
                "recipient_warehouse_id": "WH-88",
                "declaration_number": "KZ0011223344",
                "unified_status": None,
                "recipient_address": {
                    "city_id": None,
                    "city_name": "Астана",
                    "warehouse_id": "WH-88",
                    "street_name": None,
                    "building_number": None,
                    "apartment_number": None,
                },
            },
            utm={"medium": "cpc", "source": "satu", "campaign": "autumn"},
        ),
        {"waybill": "KZ0011223344", "status": "custom-130777"},
    ),
}


def _is_money(value: Any) -> bool:
    return isinstance(value, str) and any(ch.isdigit() for ch in value)


def _kind(value: Any, kinds: str) -> bool:
    checks = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "dict": lambda v: isinstance(v, dict),
        "list": lambda v: isinstance(v, list),
        "null": lambda v: v is None,
        "money": _is_money,
    }
    return any(checks[k](value) for k in kinds.split("|"))


#: the documented order fields and their JSON types (order-fields, public evidence)
ORDER_FIELDS = {
    "id": "int",
    "date_created": "str",
    "date_modified": "str",
    "client_first_name": "str",
    "client_second_name": "str|null",
    "client_last_name": "str",
    "client_id": "int|null",
    "client": "dict",
    "client_notes": "str",
    "phone": "str",
    "email": "str|null",
    "price": "money",
    "full_price": "money",
    "price_with_special_offer": "money|null",
    "special_offer_discount": "money|null",
    "special_offer_promocode": "str|null",
    "delivery_option": "dict",
    "delivery_provider_data": "dict|null",
    "delivery_address": "str",
    "delivery_cost": "number",
    "delivery_recipient": "dict",
    "payment_option": "dict",
    "payment_data": "dict|null|str",
    "status": "str",
    "status_name": "str",
    "source": "str",
    "has_order_promo_free_delivery": "bool",
    "cpa_commission": "dict",
    "utm": "dict|null",
    "dont_call_customer_back": "bool",
    "cancellation": "dict|null|str",
    "products": "list",
}
LINE_FIELDS = {
    "id": "int",
    "external_id": "str|null",
    "sku": "str|null",
    "name": "str",
    "quantity": "number|str",
    "price": "money|null",
    "total_price": "money|null",
    "measure_unit": "str",
}
PAYMENT_STATUSES = {"paid", "paid_out", "unpaid", "refunded"}
PERSON_FIELDS = ("first_name", "last_name", "phone")


def shape_problems(order: dict[str, Any]) -> list[str]:
    """What in an order differs from the documented shape ([] = it matches)."""
    problems = [f"{k}: missing" for k in ORDER_FIELDS if k not in order]
    problems += [
        f"{k}: {type(order[k]).__name__} {order[k]!r} is not {t}"
        for k, t in ORDER_FIELDS.items()
        if k in order and not _kind(order[k], t)
    ]
    for n, line in enumerate(order.get("products") or [], 1):
        problems += [f"line {n} {k}: missing" for k in LINE_FIELDS if k not in line]
        problems += [
            f"line {n} {k}: {line[k]!r} is not {t}"
            for k, t in LINE_FIELDS.items()
            if k in line and not _kind(line[k], t)
        ]
    pd = order.get("payment_data")
    if isinstance(pd, dict) and pd.get("status") not in PAYMENT_STATUSES:
        problems.append(f"payment_data.status {pd.get('status')!r} is not one of {sorted(PAYMENT_STATUSES)}")
    cancellation = order.get("cancellation")
    if isinstance(cancellation, dict) and set(cancellation) - {"title", "initiator"}:
        problems.append(
            f"cancellation has undocumented keys {sorted(set(cancellation) - {'title', 'initiator'})}"
        )
    for key in ("client", "delivery_recipient"):
        person = order.get(key)
        if isinstance(person, dict):
            problems += [f"{key}.{f}: missing" for f in PERSON_FIELDS if f not in person]
    return problems


def kinds_of(order: dict[str, Any]) -> set[str]:
    """Which documented kinds one order shows (the sandbox must serve each of them)."""
    pd = order.get("payment_data")
    status = pd.get("status") if isinstance(pd, dict) else None
    kinds = {
        "payment_null": pd is None,
        "payment_paid_out": status == "paid_out",
        "payment_refunded": status == "refunded",
        "promo": order.get("price_with_special_offer") is not None,
        "client_fallback": not order.get("client_last_name")
        and bool((order.get("client") or {}).get("last_name")),
        "other_recipient": (order.get("delivery_recipient") or {}).get("phone")
        != (order.get("client") or {}).get("phone"),
        "dont_call": order.get("dont_call_customer_back") is True,
        "cancellation_initiator": bool((order.get("cancellation") or {}).get("initiator")),
        "nbsp_money": NBSP in str(order.get("price")),
    }
    return {k for k, v in kinds.items() if v}
