"""The binder: which Torgsoft good each order line is, and which customer the order comes from.

Goods are matched by the line's external id (the GoodID Satu got from the feed) first, then by its
sku (the article); the price written is the order's, or Torgsoft's retail/wholesale price per
`[orders] price_kind`. The customer is found by normalised phone, then e-mail. Look-ups run through
the order's statements (`Lookup`, the writer's), inside the order's transaction; matched goods are
remembered for the importer's life (a race starts the order over with an empty memory).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from pipeline.model import Order, OrderLine
from pipeline.orders.order_rows import Q2, ResolvedLine

# A matched good: (good_id, retail price, wholesale price); None = no good.
Good = tuple[int, Any, Any]


class Lookup(Protocol):
    """Runs a named read of the SQL mapping and returns its first row (None when there is none)."""

    def one(self, name: str, values: dict[str, Any]) -> dict[str, Any] | None: ...


def _good_of(row: dict[str, Any] | None) -> Good | None:
    return (int(row["good_id"]), row["retail_price"], row["wholesale_price"]) if row else None


class OrderBinder:
    """Binds order lines to goods and the order to a customer (see the module doc)."""

    def __init__(self, center: int, price_kind: str):
        self.center = center
        self.price_kind = price_kind
        self._goods_by_id: dict[int, Good | None] = {}
        self._goods_by_articul: dict[str, Good | None] = {}

    def forget(self) -> None:
        """Forget the matched goods (another importer won a race: the order starts over)."""
        self._goods_by_id.clear()
        self._goods_by_articul.clear()

    def good(self, sql: Lookup, line: OrderLine) -> Good | None:
        """The good of a line: by external id (GoodID) first, then by sku (article)."""
        ext = line.external_id.strip()
        if ext.isdigit() and len(ext) < 10:
            gid = int(ext)
            if gid not in self._goods_by_id:
                row = sql.one("good_find_by_id", {"good_id": gid, "center_id": self.center})
                self._goods_by_id[gid] = _good_of(row)
            if self._goods_by_id[gid] is not None:
                return self._goods_by_id[gid]
        sku = line.sku.strip()
        if not sku:
            return None
        if sku not in self._goods_by_articul:
            row = sql.one("good_find_by_articul", {"articul": sku, "center_id": self.center})
            self._goods_by_articul[sku] = _good_of(row)
        return self._goods_by_articul[sku]

    def lines(self, sql: Lookup, order: Order) -> list[ResolvedLine]:
        """Every line of the order with its good (None = unmatched) and the price to write."""
        out = []
        for no, line in enumerate(order.lines, 1):
            good = self.good(sql, line)
            price = line.price
            if good is not None and self.price_kind != "order":
                retail, wholesale = good[1], good[2]
                chosen = wholesale if self.price_kind == "wholesale" and wholesale is not None else retail
                if chosen is not None:
                    price = Decimal(chosen)
            out.append(ResolvedLine(no, line, good[0] if good else None, price.quantize(Q2)))
        return out

    def customer(self, sql: Lookup, order: Order) -> dict[str, Any] | None:
        """The known customer of the order (found by normalised phone, then e-mail), or None."""
        c = order.customer
        row = sql.one("client_find_by_phone", {"phone": c.phone}) if c.phone else None
        if row is None and c.email:
            row = sql.one("client_find_by_email", {"email": c.email})
        return row
