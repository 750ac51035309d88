"""Numbers written by people and other programs: one parser for every place that reads them."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_SPACES = dict.fromkeys(map(ord, " \u00a0\u202f\u2009\u2007\t"), None)


def parse_decimal(value: Any) -> Decimal | None:
    """`"1 958,36"`, `"1\u00a0950.50"`, `"1.958,36"`, `650`, `""` → Decimal, or None when empty.

    Spaces of any kind are thousands separators; a lone comma or dot is the decimal separator; when
    both appear, the last one is; several commas alone are thousands separators (in groups of three). Raises ValueError
    for text that is not a finite number.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = str(value).translate(_SPACES)
    if not text:
        return None
    if "," in text and "." in text:
        dec = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if dec == "," else ",", "").replace(",", ".")
    elif text.count(",") == 1:
        text = text.replace(",", ".")
    elif text.count(",") > 1:
        if not _THOUSANDS.match(text):  # "12,3,4" is no number in any convention
            raise ValueError(f"not a number: {value!r}")
        text = text.replace(",", "")  # 1,234,567: thousands separators
    try:
        result = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return result
