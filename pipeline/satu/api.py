"""The Satu seller API's vocabulary, pure: constants, dates and prices as Satu writes them.

No I/O and no HTTP here: the client (`pipeline.satu.client`), the order parser, the status stage,
the push stage and the developer sandbox all read their Satu constants from this one module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any

from pipeline.numbers import parse_decimal

#: Satu's own clock: Kazakhstan (UTC+5). Response dates without an offset are read in it. Query dates
#: are not: three independent sources say Satu reads them as UTC (`[satu] query_timezone`).
SATU_TZ = timezone(timedelta(hours=5))
#: The largest page (`limit`) and write batch Satu accepts.
MAX_BATCH = 100
#: Import statuses that may end an import (compared case-insensitively; anything else = still running).
#: Satu answers `FAIL` where Prom's documentation says `FATAL`.
IMPORT_FINAL = ("SUCCESS", "PARTIAL", "FATAL", "FAIL")
#: Import statuses that are final as soon as they appear.
IMPORT_FAILED = ("FATAL", "FAIL")
#: The counters of an import status reply (`not_in_file` live, `not_in_fle` in the docs).
IMPORT_COUNTERS = (
    "total",
    "created",
    "updated",
    "not_changed",
    "imported",
    "actualized",
    "created_active",
    "created_hidden",
    "with_errors_count",
    "not_in_file",
    "not_in_fle",
)
#: Order statuses `orders/set_status` accepts (`pending` cannot be set).
ORDER_STATUSES_SETTABLE = ("received", "paid", "delivered", "canceled")
#: Payment states that mean the buyer has paid (`payment_data.status`).
PAID_PAYMENT_STATUSES = frozenset({"paid", "paid_out"})
#: Order statuses that mean the buyer has paid.
PAID_ORDER_STATUSES = frozenset({"paid"})
#: The only values `cancellation_reason` may take (free text is refused with HTTP 400).
CANCELLATION_REASONS = (
    "not_available",
    "price_changed",
    "buyers_request",
    "not_enough_fields",
    "duplicate",
    "invalid_phone_number",
    "less_than_minimal_price",
    "another",
)
#: Reasons that need a free-text explanation (`cancellation_text`).
REASONS_WITH_TEXT = ("price_changed", "not_enough_fields", "another")
#: The shop's own currency and the marks Satu writes it with.
SHOP_CURRENCY = "KZT"
_KZT_MARKS = ("₸", "тг.", "тг", "тенге", "kzt")

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
#: A trailing currency mark: letters, symbols and dots after the last digit.
_MARK_RE = re.compile(r"^(.*?\d[\d\s.,\u00a0\u202f\u2009\u2007]*?)\s*([^\d\s.,\-+][^\d]*)?$", re.S)


def is_custom_status(status: str) -> bool:
    """True for a seller's own status (`custom-<id>`), which the program never overwrites."""
    return bool(re.fullmatch(r"custom-\d+", status or ""))


def split_price(value: Any) -> tuple[Decimal | None, str]:
    """A money value (`"1 950 ₸"`, `"150 USD"`, `"1\u00a0713,50 грн"`, `650`) → (number, mark).

    The mark is the currency text after the number as written (`""` when none). Raises ValueError
    for text that is not a price.
    """
    if not isinstance(value, str):
        try:
            return parse_decimal(value), ""
        except ValueError:
            raise ValueError(f"not a price: {value!r}") from None
    text = value.strip()
    mark = ""
    m = _MARK_RE.match(text)
    if m and m.group(2):
        text, mark = m.group(1), m.group(2).strip()
    try:
        return parse_decimal(text), mark
    except ValueError:
        raise ValueError(f"not a price: {value!r}") from None


def is_shop_currency(mark: str) -> bool:
    """True when a price mark is the shop's own currency (or absent)."""
    return not mark or mark.strip().lower() in _KZT_MARKS


def parse_price(value: Any) -> Decimal | None:
    """A Satu price (`"1 950 ₸"`, `"1\u00a0950,50 ₸"`, `650`, `"650.5"`) as Decimal; None when empty.

    Any currency mark is dropped (`split_price` keeps it). Raises ValueError for text that is not a price.
    """
    return split_price(value)[0]


def parse_quantity(value: Any) -> Decimal | None:
    """An order-line quantity (may be fractional: `1.5`, `"0,75"`) as Decimal; None when empty."""
    return parse_price(value)


def format_price(value: Any, *, nbsp: bool = False, mark: str = "₸") -> str:
    """A price as Satu writes it: `"1 950 ₸"`, `"650,50 ₸"`; NBSP separators when `nbsp`."""
    d = Decimal(str(value)).quantize(Decimal("0.01"))
    whole, frac = f"{d:.2f}".split(".")
    sign = "-" if whole.startswith("-") else ""
    whole = whole.lstrip("-")
    sep = "\u00a0" if nbsp else " "
    groups: list[str] = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    text = sign + sep.join(groups or ["0"])
    if frac != "00":
        text += "," + frac
    return text + sep + mark if mark else text


def query_zone(name: str) -> tzinfo:
    """The time zone of query dates from its setting: `UTC`, `+05:00`, or an IANA name. ValueError if unknown."""
    text = (name or "UTC").strip()
    if text.upper() in ("UTC", "Z"):
        return UTC
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return timezone(-delta if m.group(1) == "-" else delta)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def format_date(value: datetime | str, zone: tzinfo = UTC) -> str:
    """A query date exactly as Satu accepts it: `YYYY-MM-DDTHH:MM:SS` in the query zone `zone`.

    Aware datetimes are converted to `zone`; naive ones are taken as already in it. Strings in any
    ISO form (`…Z`, milliseconds, offsets) are normalised, because Satu silently returns zero orders
    for anything but the exact form.
    """
    if isinstance(value, str):
        text = value.strip()
        if _DATE_RE.match(text):
            return text
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            raise ValueError(f"not a date: {value!r}") from None
    if value.tzinfo is not None:
        value = value.astimezone(zone).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat(timespec="seconds")


def parse_query_date(text: str, zone: tzinfo = UTC) -> datetime | None:
    """A strict query date (naive, in `zone`) as an aware datetime; None when not in the exact form."""
    if not _DATE_RE.match(text):
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=zone)
    except ValueError:
        return None


def parse_date(value: str | None) -> datetime | None:
    """A Satu response date (`2026-11-27T12:34:56.588791+05:00`) as an aware datetime (naive → UTC+5).

    None when empty; ValueError when not an ISO date.
    """
    if not value:
        return None
    dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=SATU_TZ)


def format_response_date(dt: datetime) -> str:
    """A response date as Satu writes it: `2026-11-27T12:34:56.588791+05:00`."""
    return dt.astimezone(SATU_TZ).isoformat(timespec="microseconds")


def _counter(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def import_finished(status: dict[str, Any]) -> str | None:
    """The final state of an import status reply, upper-cased, or None while it is still running.

    `FATAL`/`FAIL` are final at once. `SUCCESS`/`PARTIAL` are final only with a non-zero counter or
    an error listed: a live run answered `SUCCESS` with all counters 0 for minutes, then `PARTIAL`
    with zeros, and its real result came after about 9.5 minutes.
    """
    value = str(status.get("status") or "").strip().upper()
    if value in IMPORT_FAILED:
        return value
    if value not in IMPORT_FINAL:
        return None
    if any(_counter(status.get(k)) for k in IMPORT_COUNTERS) or status.get("errors"):
        return value
    return None


#: The error kinds an import status lists (`errors: [{"<kind>": {"code": …, "extra": {…}}}]`).
IMPORT_ERROR_KINDS = ("download", "store_file", "validation", "import", "download_images")
#: A picture that Satu could not download (live: `download_images` code 2004, `extra.status_code`).
IMPORT_PICTURE_ERROR_CODE = 2004


@dataclass(frozen=True)
class ImportProblem:
    """One entry of an import status's `errors`, read from any shape Satu (or an older client) writes.

    `kind` is the key (`download_images`, `validation`, …; `""` for a flat entry), `code` Satu's number
    when given, `product_id` the offer id when the entry names one, `message` one readable line.
    """

    kind: str
    code: int | None
    product_id: str | None
    message: str


def _product_of(data: dict[str, Any]) -> str | None:
    for key in ("external_id", "offer_id", "product_id", "id"):
        if data.get(key) not in (None, ""):
            return str(data[key])
    return None


def _problem_text(kind: str, code: int | None, extra: dict[str, Any]) -> str:
    if extra.get("message"):
        return str(extra["message"])
    if kind == "download_images" or code == IMPORT_PICTURE_ERROR_CODE:
        where = f" {extra['url']}" if extra.get("url") else ""
        status = f" (HTTP {extra['status_code']})" if extra.get("status_code") else ""
        return f"picture cannot be downloaded{where}{status}"
    details = ", ".join(
        f"{k}={v}"
        for k, v in extra.items()
        if k not in ("external_id", "offer_id", "product_id", "id", "url")
    )
    return " ".join(x for x in (kind or "error", f"code {code}" if code is not None else "", details) if x)


def import_errors(errors: Any) -> list[ImportProblem]:
    """The `errors` of an import status as typed problems, whatever their shape.

    Live Satu/Prom: `[{"download_images": {"code": 2004, "extra": {"status_code": 404}}}]`; older
    replies and the typed client: flat `{"external_id"|"offer_id"|"id", "message"}`; plain strings.
    """
    out: list[ImportProblem] = []
    for entry in errors if isinstance(errors, list) else [errors] if errors else []:
        if not isinstance(entry, dict):
            out.append(ImportProblem("", None, None, str(entry)))
            continue
        nested = [(k, v) for k, v in entry.items() if isinstance(v, dict)]
        if not nested:
            out.append(ImportProblem("", None, _product_of(entry), str(entry.get("message") or entry)))
            continue
        for kind, body in nested:
            raw_extra = body.get("extra")
            extra: dict[str, Any] = raw_extra if isinstance(raw_extra, dict) else {}
            raw_code = body.get("code")
            code = int(raw_code) if isinstance(raw_code, int | str) and str(raw_code).isdigit() else None
            pid = _product_of(extra) or _product_of(body)
            if body.get("message") and not extra.get("message"):
                extra = {**extra, "message": body["message"]}
            out.append(ImportProblem(kind, code, pid, _problem_text(kind, code, extra)))
    return out


def import_not_in_file(status: dict[str, Any]) -> int:
    """Products Satu has that the imported file lacked (`not_in_file` live, `not_in_fle` in the docs)."""
    return _counter(status.get("not_in_file")) or _counter(status.get("not_in_fle"))
