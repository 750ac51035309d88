"""Pure stock rules shared by the feed and the stock watcher, and the per-good level they compare.

One home for "what can be sold": available = quantity − reserved over the configured accounting
centers, floored to whole units (Satu counts stock in whole units), never negative; and the feed's
zero-stock rule (`[feed] zero_stock`): a product with nothing to sell is hidden or shown as awaiting.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from pipeline.model import Stock

#: What `zero_stock_presence` returns for a product the feed leaves out for lack of stock.
HIDDEN = "hidden"


def available_units(stocks: Iterable[Stock], centers: Iterable[int] = ()) -> int:
    """Whole units that can be sold: Σ (qty − reserved) over `centers` (empty = all), floored, ≥ 0."""
    keep = set(centers)
    total = sum((s.available for s in stocks if not keep or s.center_id in keep), Decimal(0))
    return max(0, int(total.to_integral_value(rounding=ROUND_FLOOR)))


def zero_stock_presence(units: int, *, zero_stock: str, only_in_stock: bool = False) -> str:
    """The feed's presence rule: `available` with stock; without it `waiting` (zero_stock = "awaiting")
    or `HIDDEN` (zero_stock = "hide", or only_in_stock)."""
    if units > 0:
        return "available"
    if only_in_stock or zero_stock == "hide":
        return HIDDEN
    return "waiting"


@dataclass(frozen=True, slots=True)
class GoodLevel:
    """What the watcher knows of one good: whole units to sell, retail price, and whether it is listed
    at all (not deleted, shown on the site, with a price); `changed_at` comes from the change query."""

    good_id: int
    units: int
    price: Decimal | None
    listed: bool = True
    changed_at: Any = None

    @property
    def offer_id(self) -> str:
        """The Satu external id (the GoodID as text, as in the feed)."""
        return str(self.good_id)


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "t", "y", "yes")
    return bool(value)


def _level(good_id: int, rows: list[dict[str, Any]], centers: frozenset[int]) -> GoodLevel:
    stocks = [
        Stock(
            int(r["accounting_center_id"]),
            _dec(r.get("qty")) or Decimal(0),
            _dec(r.get("reserved_qty")) or Decimal(0),
        )
        for r in rows
        if r.get("accounting_center_id") is not None
    ]
    first = rows[0]
    price = _dec(first.get("retail_price"))
    listed = (
        not _flag(first.get("deleted"), False)
        and _flag(first.get("display_on_site"), True)
        and price is not None
        and price > 0
    )
    changed = [r["changed_at"] for r in rows if r.get("changed_at") is not None]
    return GoodLevel(
        good_id, available_units(stocks, centers), price, listed, max(changed) if changed else None
    )


def levels_from_rows(rows: Iterable[dict[str, Any]], centers: Iterable[int] = ()) -> Iterator[GoodLevel]:
    """Group the rows of `stock_levels.sql` / `stock_changes.sql` (ordered by good_id, one per good and
    center) into one level per good."""
    keep = frozenset(centers)
    current: list[dict[str, Any]] = []
    current_id: int | None = None
    for row in rows:
        gid = int(row["good_id"])
        if current and gid != current_id:
            yield _level(current_id, current, keep)  # type: ignore[arg-type]
            current = []
        current_id = gid
        current.append(row)
    if current:
        yield _level(current_id, current, keep)  # type: ignore[arg-type]
