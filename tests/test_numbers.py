"""The shared number parser."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipeline.numbers import parse_decimal


def test_one_number_parser_for_prices_exports_and_orders():
    assert parse_decimal("1 958,36") == Decimal("1958.36")
    assert parse_decimal("1\u00a0950.50") == Decimal("1950.50")
    assert parse_decimal("1.958,36") == parse_decimal("1,958.36") == Decimal("1958.36")
    assert parse_decimal("1,234,567") == Decimal(1234567)
    assert parse_decimal("") is None and parse_decimal(None) is None
    for bad in ("12,3,4", "abc", "NaN", "Infinity"):
        with pytest.raises(ValueError):
            parse_decimal(bad)
