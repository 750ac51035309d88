"""Status push: the pure parts (Torgsoft state → Satu status map, validation, row mapping)."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.errors import SettingsError
from pipeline.orders.status import OrderState, Target, map_row, target_status, validate
from pipeline.settings import StatusSettings

# --- pure mapping -----------------------------------------------------------------------------------


def order(status: int = 0, paid: bool = False, ttn: str = "") -> OrderState:
    return OrderState("1", status, paid, ttn)


def test_target_status_precedence_and_never_pending():
    cfg = StatusSettings()
    assert target_status(order(0), cfg) is None  # new: Satu keeps `pending`; it is never sent
    assert target_status(order(1), cfg) == Target("received")
    assert target_status(order(0, paid=True), cfg) == Target("paid")
    assert target_status(order(1, paid=True), cfg) == Target("paid")  # paid > accepted
    assert target_status(order(2, paid=True), cfg) == Target("delivered")  # shipped > paid
    assert target_status(order(3), cfg) == Target("delivered")
    cancelled = target_status(order(4, paid=True), cfg)  # cancelled > everything
    assert cancelled == Target("canceled", "another", "Заказ отменён магазином")
    assert target_status(order(9), cfg) is None  # unknown Torgsoft state: nothing
    # A state mapped to "" falls through to the next one; a cancelled order never reports `paid`.
    quiet = dataclasses.replace(cfg, shipped="", cancelled="")
    assert target_status(order(2, paid=True), quiet) == Target("paid")
    assert target_status(order(2), quiet) == Target("received")
    assert target_status(order(4, paid=True), quiet) is None
    assert target_status(order(2), dataclasses.replace(cfg, shipped="custom-77")) == Target("custom-77")


def test_cancellation_text_only_where_satu_wants_it():
    cfg = dataclasses.replace(StatusSettings(), cancellation_reason="buyers_request")
    assert target_status(order(4), cfg) == Target("canceled", "buyers_request", None)
    cfg = dataclasses.replace(
        StatusSettings(), cancellation_reason="price_changed", cancellation_text="Дорого"
    )
    assert target_status(order(4), cfg) == Target("canceled", "price_changed", "Дорого")


def test_validate_refuses_pending_unknown_statuses_and_missing_text():
    validate(StatusSettings())
    bad = dataclasses.replace(
        StatusSettings(),
        accepted="pending",
        paid="payed",
        cancellation_reason="not_enough_fields",
        cancellation_text=" ",
    )
    with pytest.raises(SettingsError) as exc:
        validate(bad)
    keys = [p.key for p in exc.value.problems]
    assert keys == ["status.accepted", "status.paid", "status.cancellation_text"]


def test_map_row_handles_nulls_and_text_flags():
    o = map_row({"external_id": " 300000001 ", "status": 2, "is_paid": None, "ttn": None})
    assert o == OrderState("300000001", 2, False, "", None)
    assert map_row({"external_id": "5", "status": "1", "is_paid": "1", "ttn": " KZ1 "}).is_paid is True
    assert order(1).fingerprint != order(1, paid=True).fingerprint != order(1, True, "X").fingerprint
