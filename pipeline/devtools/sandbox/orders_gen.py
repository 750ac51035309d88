"""Realistic Satu orders for tests and the demo: Kazakh names, phones in many spellings, prices as text."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.devtools.sandbox.vocab import (
    CANCELLATION_REASONS,
    CUSTOM_STATUSES,
    SATU_TZ,
    STATUS_NAMES,
    _decimal,
    format_price,
    satu_time,
)

_FIRST_M = [
    "Нурлан",
    "Ерлан",
    "Дамир",
    "Бауыржан",
    "Ержан",
    "Айдос",
    "Арман",
    "Талгат",
    "Ерболат",
    "Қуаныш",
    "Асқар",
    "Мұрат",
    "Дәулет",
    "Серік",
    "Жандос",
    "Алексей",
    "Сергей",
]
_FIRST_F = [
    "Айгерим",
    "Асель",
    "Жанар",
    "Гульнара",
    "Динара",
    "Мадина",
    "Сауле",
    "Алия",
    "Жансая",
    "Әсем",
    "Аружан",
    "Гүлжан",
    "Інжу",
    "Ольга",
    "Наталья",
]
_LAST = [
    "Нурланов",
    "Сейтказиев",
    "Жумабеков",
    "Омаров",
    "Тулегенов",
    "Байжанов",
    "Серікбаев",
    "Ахметов",
    "Абдрахманов",
    "Касымов",
    "Есенов",
    "Құдайбергенов",
    "Исмаилов",
    "Иванов",
    "Ким",
]
_PATRONYMIC_M = ["Ерланұлы", "Болатұлы", "Серікович", "Маратович", "Нурланович", ""]
_PATRONYMIC_F = ["Ерланқызы", "Болатқызы", "Сериковна", "Маратовна", "Нурлановна", ""]
_CITIES = [
    ("Алматы", "ул. Абая"),
    ("Астана", "пр. Кабанбай батыра"),
    ("Шымкент", "ул. Байтурсынова"),
    ("Караганда", "ул. Ерубаева"),
    ("Актобе", "пр. Абилкайыр хана"),
    ("Павлодар", "ул. Торайгырова"),
    ("Усть-Каменогорск", "ул. Казахстан"),
    ("Атырау", "ул. Сатпаева"),
    ("Костанай", "ул. Байтурсынова"),
]
_MAIL = ["mail.ru", "gmail.com", "inbox.kz", "yandex.kz", "list.ru"]
_LATIN = str.maketrans(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяәғқңөұүһі", "abvgdeejziiklmnoprstufhccss_y_euaagqnouuhi"
)
#: The shop's delivery options with the carrier code of each. Assumed: no source shows a carrier
#: code used on Satu (Kazakhstan); `kazpost` and `cdek` are placeholders (docs/satu-api.md).
DELIVERY_OPTIONS = [
    ({"id": 1001, "name": "Самовывоз", "shipping_service": None}, None),
    ({"id": 1002, "name": "Курьером по городу", "shipping_service": None}, None),
    ({"id": 1003, "name": "Казпочта", "shipping_service": "kazpost"}, "kazpost"),
    ({"id": 1004, "name": "СДЭК", "shipping_service": "cdek"}, "cdek"),
]
PAYMENT_OPTIONS = [
    {"id": 2001, "name": "Наличными при получении"},
    {"id": 2002, "name": "Kaspi.kz"},
    {"id": 2003, "name": "Картой онлайн"},
    {"id": 2004, "name": "Безналичный расчёт"},
]
_SOURCES = ["portal", "portal", "company_site", "company_cabinet", "mobile_app"]
_NOTES = [
    "",
    "",
    "",
    "Позвоните перед доставкой",
    "Нужен чек",
    "Доставка после 18:00",
    "Упакуйте, пожалуйста, как подарок",
]
_DEFAULT_PRODUCTS = [
    ("9000001", "DEMO-1", "Чайник электрический", Decimal("12990")),
    ("9000002", "DEMO-2", "Кружка керамическая", Decimal("1950")),
    ("9000003", "DEMO-3", "Ткань хлопок (метр)", Decimal("650.50")),
]


def _phone(rng: random.Random) -> str:
    """A Kazakh mobile number in one of the spellings buyers really type."""
    code = rng.choice(["701", "702", "705", "707", "747", "771", "775", "777", "778"])
    n = f"{rng.randrange(10**7):07d}"
    a, b, c = n[:3], n[3:5], n[5:]
    return rng.choice(
        [
            f"+7{code}{n}",
            f"+7 ({code}) {a}-{b}-{c}",
            f"8 {code} {a} {b} {c}",
            f"8{code}{n}",
            f"+7 {code} {a} {b} {c}",
            f"{code}{n}",
            f"+7-{code}-{a}-{b}-{c}",
            f"7{code}{n}",
        ]
    )


def _as_product_tuple(p: Any) -> tuple[str, str, str, Decimal]:
    if isinstance(p, dict):
        return (
            str(p.get("external_id") or p.get("id")),
            str(p.get("sku") or ""),
            str(p.get("name") or ""),
            _decimal(p.get("price")) or Decimal(1000),
        )
    ext, sku, name, price = p
    return str(ext), str(sku or ""), str(name or ""), _decimal(price) or Decimal(1000)


def generate_orders(
    n: int,
    seed: int = 1,
    products: Sequence[Any] | None = None,
    *,
    start_id: int = 100_001,
    now: datetime | None = None,
    unknown_share: float = 0.05,
    history_days: float = 0,
) -> list[dict]:
    """`n` realistic Satu orders (dicts exactly as `GET /orders/{id}` returns the inner order).

    Deterministic for a seed. `products` = [(external_id, sku, name, price), …] (or product dicts);
    order lines use them, plus a few lines with external ids the shop does not know. Kazakh names,
    +7 phones in many spellings, some paid, some with waybills, some cancelled, some client fields
    empty, some fractional quantities, prices as `"1 950 ₸"` strings (sometimes with NBSP).

    New orders are dated `now` (a few microseconds apart), as Satu dates an order when it is placed:
    a date behind the download cursor would hide it from the next poll. `history_days` > 0 spreads
    them over that many days back instead (an order history for benchmarks).
    """
    rng = random.Random(seed)
    catalog = [_as_product_tuple(p) for p in (products or _DEFAULT_PRODUCTS)]
    now = now or datetime.now(SATU_TZ)
    orders = []
    for i in range(n):
        oid = start_id + i
        female = rng.random() < 0.5
        first = rng.choice(_FIRST_F if female else _FIRST_M)
        last = rng.choice(_LAST)
        if female and last.endswith(("ов", "ев")):
            last += "а"
        second = rng.choice(_PATRONYMIC_F if female else _PATRONYMIC_M)
        phone = _phone(rng)
        email = f"{first.lower().translate(_LATIN)}.{oid % 1000}@{rng.choice(_MAIL)}"
        # Any client field may be empty.
        person = {"first_name": first, "last_name": last, "second_name": second, "phone": phone}
        r = rng.random()
        if r < 0.06:
            last, second = "", ""
        elif r < 0.10:
            phone = ""
        elif r < 0.14:
            first = ""
        if rng.random() < 0.4:
            email = ""
        back = timedelta(minutes=rng.randint(5, 14 * 24 * 60), microseconds=rng.randrange(10**6))
        if history_days > 0:
            created = now - back * (history_days / 14)
        else:
            created = now - timedelta(microseconds=n - i)
        nbsp = rng.random() < 0.5
        lines, total = [], Decimal(0)
        for _pos in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
            if rng.random() < unknown_share:
                ext, sku, name, price = (
                    f"unknown-{rng.randrange(10**6)}",
                    "",
                    "Товар не из каталога",
                    Decimal(rng.randrange(500, 30000)),
                )
            else:
                ext, sku, name, price = rng.choice(catalog)
            if rng.random() < 0.12:
                qty: Any = rng.choice([0.5, 1.5, 2.25, 0.75, 3.5])
                unit = rng.choice(["м", "кг"])
            else:
                qty, unit = rng.choice([1, 1, 1, 1, 2, 2, 3, 5]), "шт."
            line_total = (price * Decimal(str(qty))).quantize(Decimal("0.01"))
            total += line_total
            lines.append(
                {
                    "id": rng.randrange(1_000_000_000, 2_000_000_000),
                    "external_id": ext,
                    "sku": sku,
                    "name": name,
                    "name_multilang": {"ru": name},
                    "quantity": qty,
                    "price": format_price(price, nbsp=nbsp),
                    "total_price": format_price(line_total, nbsp=nbsp),
                    "measure_unit": unit,
                    "image": f"https://images.satu.kz/{ext}_w200_h200.jpg",
                    "url": f"https://satu.kz/p{ext}.html",
                    "cpa_commission": {"amount": "0"},
                }
            )
        status = rng.choices(
            ["pending", "received", "paid", "delivered", "canceled", "custom-1001"],
            weights=[45, 20, 10, 10, 10, 5],
        )[0]
        delivery_option, carrier = rng.choice(DELIVERY_OPTIONS)
        delivery_cost = (
            Decimal(0)
            if carrier is None and delivery_option["id"] == 1001
            else Decimal(rng.choice([0, 1000, 1500, 2500]))
        )
        city, street = rng.choice(_CITIES)
        address = "" if delivery_option["id"] == 1001 else f"{city}, {street}, {rng.randint(1, 200)}"
        paid = status in ("paid", "delivered") or (status == "received" and rng.random() < 0.3)
        provider_data = None
        if carrier:
            waybill = status in ("delivered", "paid") or (status == "received" and rng.random() < 0.5)
            provider_data = {
                "provider": carrier,
                "type": "W2D" if address else "W2W",
                "recipient_warehouse_id": str(rng.randint(100, 999)),
                "declaration_number": f"{rng.randrange(10**13):013d}" if waybill else None,
                "unified_status": "in_transit" if waybill else None,
            }
        cancellation = None
        if status == "canceled":
            reason = rng.choice(["buyers_request", "not_available", "another"])
            cancellation = {"title": CANCELLATION_REASONS[reason], "initiator": "buyer"}
        modified = created + timedelta(minutes=rng.randint(0, 600)) if status != "pending" else created
        modified = min(modified, now)
        orders.append(
            {
                "id": oid,
                "date_created": satu_time(created),
                "date_modified": satu_time(modified),
                "client_first_name": first,
                "client_second_name": second,
                "client_last_name": last,
                "client_id": rng.randint(10**6, 10**7),
                "client_notes": rng.choice(_NOTES),
                "phone": phone,
                "email": email,
                "price": format_price(total, nbsp=nbsp),
                "full_price": format_price(total + delivery_cost, nbsp=nbsp),
                "delivery_cost": float(delivery_cost) if delivery_cost else 0,
                "delivery_address": address,
                "delivery_option": dict(delivery_option),
                "delivery_provider_data": provider_data,
                "payment_option": dict(rng.choice(PAYMENT_OPTIONS)),
                "payment_data": {"type": "evopay", "status": "paid", "status_modified": satu_time(modified)}
                if paid
                else None,
                "status": status,
                "status_name": STATUS_NAMES.get(status) or CUSTOM_STATUSES.get(status, status),
                "source": rng.choice(_SOURCES),
                "cancellation": cancellation,
                "has_order_promo_free_delivery": False,
                "products": lines,
            }
        )
        _documented_fields(orders[-1], random.Random(seed * 100_003 + i), person, total, nbsp)
    return orders


def _documented_fields(o: dict, rng: random.Random, person: dict, total: Decimal, nbsp: bool) -> None:
    """The rest of the documented order schema (docs: order-fields), each kind in some orders.

    A separate random stream, so the fields above stay what they were for a seed. Assumptions (no
    source shows the values): `initiator` "buyer"/"seller", utm values, the refunded share.
    """
    client = {k: person[k] for k in ("first_name", "last_name", "second_name", "phone")}
    o["client"] = {**client, "id": o["client_id"]}
    if rng.random() < 0.05 and all((o["client_first_name"], o["client_last_name"], o["phone"])):
        # Seen live: the flat client_* fields empty, the names only in client{}.
        o.update(client_first_name="", client_last_name="", client_second_name="", phone="")
    recipient = dict(client)
    if rng.random() < 0.15:  # someone else takes the parcel
        recipient = {
            "first_name": "Айжан",
            "last_name": "Сапарова",
            "second_name": "",
            "phone": "+77015550123",
        }
    o["delivery_recipient"] = recipient
    o["price_with_special_offer"] = o["special_offer_discount"] = o["special_offer_promocode"] = None
    if rng.random() < 0.08:
        discount = (total / 10).quantize(Decimal("1"))
        o["price_with_special_offer"] = format_price(total - discount, nbsp=nbsp)
        o["special_offer_discount"] = format_price(discount, nbsp=nbsp)
        o["special_offer_promocode"] = f"SATU{rng.randrange(100, 999)}"
    o["cpa_commission"] = {"amount": format_price(0, nbsp=nbsp), "is_refunded": False}
    o["utm"] = {"medium": "cpc", "source": "satu", "campaign": "catalog"} if rng.random() < 0.3 else None
    o["dont_call_customer_back"] = rng.random() < 0.1
    o["ps_promotion"] = None
    if o["payment_data"] and rng.random() < 0.3:
        o["payment_data"]["status"] = "paid_out"  # the platform passed the money on: still paid
    if o["status"] == "canceled":
        o["cancellation"]["initiator"] = rng.choice(["buyer", "seller"])
        if rng.random() < 0.3:
            o["payment_data"] = {
                "type": "evopay",
                "status": "refunded",
                "status_modified": o["date_modified"],
            }
    pd = o["delivery_provider_data"]
    if pd is not None:
        pd["sender_warehouse_id"] = None
        pd["recipient_address"] = {
            "city_id": None,
            "city_name": o["delivery_address"].split(",")[0] or None,
            "warehouse_id": pd["recipient_warehouse_id"],
            "street_name": None,
            "building_number": None,
            "apartment_number": None,
        }
    cabinet = [ln for ln in o["products"] if ln["sku"] and not str(ln["external_id"]).startswith("unknown-")]
    if cabinet and rng.random() < 0.06:
        # A product made by hand in the cabinet: no external id; the shop matches it by sku.
        cabinet[0]["external_id"] = None
