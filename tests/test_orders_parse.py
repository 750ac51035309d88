"""Pure parsing of inbox files: every damaged kind has a precise reason; prices, quantities, phones."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from order_factory import satu_order
from pipeline.orders.parse import DamagedFile, normalize_phone, parse_order, parse_price


def _bytes(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def test_wrapped_and_bare_orders_parse_the_same():
    order = satu_order(
        7, lines=[{"external_id": "12", "sku": "A-1", "quantity": "1,5", "price": "1\u00a0950,50 ₸"}]
    )
    a = parse_order(_bytes({"order": order}))
    b = parse_order(_bytes(order))
    assert a.id == b.id == 7
    assert a.lines == b.lines
    line = a.lines[0]
    assert line.quantity == Decimal("1.5") and line.price == Decimal("1950.50")
    assert a.customer.phone == "77011234567"
    assert a.customer.name == "Сейтқали Айгерим"
    assert a.total == Decimal("1950") and not a.paid


def test_bom_is_fine_and_paid_is_read_from_payment_data_or_status():
    order = satu_order(8, paid=True)
    assert parse_order(b"\xef\xbb\xbf" + _bytes({"order": order})).paid
    assert parse_order(_bytes(satu_order(9, status="paid"))).paid


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+7 (701) 123-45-67", "77011234567"),
        ("8 701 123 45 67", "77011234567"),
        ("87011234567", "77011234567"),
        ("7011234567", "77011234567"),
        ("+7-701-123-4567", "77011234567"),
        ("", ""),
        (None, ""),
        ("+998 90 123 45 67", "998901234567"),
    ],
)
def test_phone_normalisation(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1 950 ₸", Decimal("1950")),
        ("650,50 ₸", Decimal("650.50")),
        ("1\u00a0950,5", Decimal("1950.5")),
        (650, Decimal("650")),
        ("1,950.25", Decimal("1950.25")),
        ("", None),
    ],
)
def test_price_strings(raw, expected):
    assert parse_price(raw) == expected


def _reason(data: bytes, **kw) -> str:
    with pytest.raises(DamagedFile) as info:
        parse_order(data, **kw)
    return info.value.reason


def test_damaged_kinds_have_precise_reasons():
    good = _bytes({"order": satu_order(1)})
    assert _reason(good[: len(good) // 2]).startswith("truncated JSON")
    assert _reason(b'{"order": {"id": 1,, }}').startswith("invalid JSON at line 1")
    assert _reason(b"").startswith("empty file")
    assert "binary junk" in _reason(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "not UTF-8" in _reason(
        '{"order": {"id": 1, "x": "Қазақ"}}'.encode("cp1251", "replace").replace(b"?", b"\xaa")
    )
    assert "UTF-16" in _reason(json.dumps({"order": satu_order(1)}).encode("utf-16"))
    assert "absurdly large" in _reason(good, max_bytes=100)
    assert _reason(b"[1, 2]").startswith("wrong type: the document is a list")
    assert _reason(b'{"order": "x"}').startswith("wrong type: 'order' is text")
    no_id = satu_order(1)
    del no_id["id"]
    assert _reason(_bytes(no_id)) == "missing order id (field 'id')"
    assert "'id'" in _reason(_bytes(satu_order("abc")))  # type: ignore[arg-type]
    no_lines = satu_order(1)
    del no_lines["products"]
    assert _reason(_bytes(no_lines)).startswith("missing order lines")
    assert _reason(_bytes(satu_order(1, lines=[]))).startswith("missing order lines")
    assert "quantity" in _reason(_bytes(satu_order(1, lines=[{"external_id": "1", "quantity": "много"}])))
    assert "'phone' is a list" in _reason(_bytes(satu_order(1, phone=["x"])))  # type: ignore[arg-type]
    assert "date_created" in _reason(_bytes(satu_order(1, created="yesterday")))


def test_customer_date_field_is_read():
    order = parse_order(_bytes(satu_order(3, delivery_date="2026-12-05")))
    assert str(order.reserve_until) == "2026-12-05"
    assert parse_order(_bytes(satu_order(3, delivery_date="05.12.2026"))).reserve_until == order.reserve_until
    assert parse_order(_bytes(satu_order(3))).reserve_until is None
