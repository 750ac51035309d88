"""Contract tests (issue 13): documented order shapes, with our own values, read right by the parser
AND served by the sandbox, so the parser and the sandbox cannot drift apart together."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from contract_orders import FIXTURES, kinds_of, shape_problems

from pipeline.devtools.sandbox import SandboxServer
from pipeline.model import Order
from pipeline.orders.parse import order_from_dict, parse_order, service_notes
from pipeline.satu.client import SatuClient


def _check(order: Order, expected: dict[str, Any]) -> None:
    line = order.lines[0]
    actual = {
        "total": str(order.total),
        "currency": order.currency,
        "paid": order.paid,
        "refunded": order.refunded,
        "payment_status": order.payment_status,
        "warnings": len(order.warnings),
        "line_price": str(line.price),
        "line_external_id": line.external_id,
        "line_sku": line.sku,
        "line_satu_id": line.satu_id,
        "promo_code": order.promo_code,
        "promo_discount": None if order.promo_discount is None else str(order.promo_discount),
        "customer_name": order.customer.name,
        "customer_phone": order.customer.phone,
        "recipient_name": order.recipient_name,
        "recipient_phone": order.recipient_phone,
        "dont_call": order.dont_call,
        "cancellation_title": order.cancellation_title,
        "cancellation_initiator": order.cancellation_initiator,
        "waybill": order.waybill,
        "status": order.status,
    }
    assert {k: actual[k] for k in expected} == expected


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_documented_shape_is_read_right(kind: str):
    raw, expected = FIXTURES[kind]
    assert shape_problems(raw) == []
    order = parse_order(json.dumps({"order": raw}, ensure_ascii=False).encode("utf-8"))
    _check(order, expected)


def test_a_foreign_currency_mark_is_a_warning_never_a_quarantine():
    raw, _ = FIXTURES["usd_mark"]
    order = order_from_dict(raw)
    assert order.total == Decimal(150) and order.currency == "USD"
    assert len(order.warnings) == 1 and "USD" in order.warnings[0] and "KZT" in order.warnings[0]
    assert order_from_dict(FIXTURES["plain"][0]).warnings == []


def test_service_notes_carry_promo_recipient_dont_call_and_cancellation():
    assert service_notes(order_from_dict(FIXTURES["promo"][0])) == ["Промокод: KOKTEM10, скидка 480"]
    notes = service_notes(order_from_dict(FIXTURES["recipient_and_dont_call"][0]))
    assert notes == ["Получатель: Ахметова Сания, 77471112233", "Покупатель просит не перезванивать"]
    notes = service_notes(order_from_dict(FIXTURES["refunded"][0]))
    assert notes[-1] == "Отмена: По просьбе покупателя (buyer)"


@pytest.fixture()
def sandbox(tmp_path: Path):
    server = SandboxServer(tmp_path / "sandbox").start()
    yield server
    server.stop()


def test_the_sandbox_serves_every_documented_kind_in_the_documented_shape(sandbox: SandboxServer):
    sandbox.create_orders(400, seed=13)
    with SatuClient(sandbox.url, sandbox.token, max_retries=1) as client:
        served = list(client.iter_orders())
    assert len(served) == 400
    problems = {o["id"]: shape_problems(o) for o in served}
    assert {k: v for k, v in problems.items() if v} == {}
    seen = set().union(*(kinds_of(o) for o in served))
    expected = set().union(*(kinds_of(raw) for raw, _ in FIXTURES.values()))
    assert expected <= seen, f"the sandbox never serves: {sorted(expected - seen)}"
    for o in served:  # and the parser reads every one of them
        order_from_dict(o)


def test_fixtures_round_trip_through_the_sandbox_unchanged(sandbox: SandboxServer):
    made = sandbox.create_orders(orders=[raw for raw, _ in FIXTURES.values()])
    with SatuClient(sandbox.url, sandbox.token, max_retries=1) as client:
        for (kind, (raw, expected)), o in zip(FIXTURES.items(), made, strict=True):
            served = client.get_order(o["id"])
            assert {**served, "id": raw["id"]} == raw, kind
            _check(order_from_dict(served), expected)


def test_cancelling_through_the_api_gives_the_documented_cancellation(sandbox: SandboxServer):
    (o,) = sandbox.create_orders(orders=[FIXTURES["plain"][0]])
    with SatuClient(sandbox.url, sandbox.token, max_retries=1) as client:
        assert client.set_status([o["id"]], "canceled", cancellation_reason="not_available") == [o["id"]]
        served = client.get_order(o["id"])
    assert shape_problems(served) == []
    assert served["cancellation"] == {"title": "Нет в наличии", "initiator": "seller"}
