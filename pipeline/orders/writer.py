"""The writer: every statement of one order's transaction, through the SQL mapping (`torgsoft.db`).

Orders, lines, customers, reservations and invoices are written here, and read back where the
order flow needs them; no table name and no driver appears (each statement is a named .sql file).
A text the database cannot hold (a narrow charset, a short column) is found by probing under a
savepoint: it is transliterated when `[orders] transliterate_unsupported` is on, else the order is
refused with an `OrderTextError` naming the field.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pipeline import _testing
from pipeline.errors import DatabaseError, SkipError
from pipeline.model import Order
from pipeline.orders.order_rows import (
    ACTIVE,
    AWAITING,
    CONSUMED,
    FIELD_LABELS,
    Q2,
    RELEASED,
    SOURCE,
    ImportOutcome,
    ResolvedLine,
    customer_values,
    transliterate,
)
from pipeline.orders.parse import SATU_TZ
from pipeline.torgsoft import db
from pipeline.torgsoft.mapping import Mapping


class OrderTextError(SkipError):
    """A text of the order cannot be stored in the database (charset or length); names order and field."""


class OrderWriter:
    """The statements of the order transactions on one cursor (prepared once, kept across orders)."""

    def __init__(
        self,
        con: Any,
        cursor: Any,
        mapping: Mapping,
        *,
        center: int,
        transliterate_unsupported: bool = False,
        journal: Any = None,
    ):
        self.con = con
        self.cursor = cursor
        self.mapping = mapping
        self.center = center
        self.transliterate_unsupported = transliterate_unsupported
        self.journal = journal
        self.order_id: Any = "?"
        self.stmts = db.Statements(cursor, mapping, what="order ?")

    def begin(self, order: Order) -> None:
        """Name the Satu order the next statements belong to (in errors and journal events)."""
        self.order_id = order.id
        self.stmts.what = f"order {order.id}"

    # --- statements ---------------------------------------------------------------------------------

    def run(self, name: str, values: dict[str, Any]) -> None:
        """Execute a named query; text the database cannot hold becomes OrderTextError or is transliterated."""
        try:
            self.stmts.run(name, values)
        except db.TextRejected as exc:
            self._fix_text(name, values, exc)
        _testing.reach(f"importer.after:{name}")

    def one(self, name: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """Run a named read and return its first row (None when there is none)."""
        self.run(name, values)
        return self.stmts.fetch_one(name)

    def all(self, name: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        """Run a named read and return every row."""
        self.run(name, values)
        return self.stmts.fetch_all(name)

    def next_id(self, name: str) -> int:
        """A new id from the sequence query `name`."""
        row = self.one(name, {})
        assert row is not None  # a sequence query always returns its row
        return int(row["id"])

    def _culprits(self, name: str, values: dict[str, Any], truncation: bool) -> list[str]:
        """The text parameters the database refuses, found by probing each under a savepoint."""
        params = dict.fromkeys(self.mapping.query(name).params)
        if truncation:
            suspects = [p for p in params if isinstance(values.get(p), str) and values[p]]
        else:
            suspects = [p for p in params if isinstance(values.get(p), str) and not values[p].isascii()]
        culprits = []
        for p in suspects:
            probe = {
                k: (transliterate(v, 3)[:8] if isinstance(v, str) and k != p and k in suspects else v)
                for k, v in values.items()
            }
            try:
                with db.savepoint(self.con, "TS_PROBE"):
                    self.stmts.execute_raw(name, probe)
            except db.TextRejected:
                culprits.append(p)
            except DatabaseError as probe_exc:
                if db.is_unavailable(probe_exc):
                    raise
        return culprits or suspects

    def _fix_text(self, name: str, values: dict[str, Any], exc: db.TextRejected) -> dict[str, Any]:
        """Transliterate the refused text parameters when allowed (and run the statement), else raise
        OrderTextError naming them."""
        culprits = self._culprits(name, values, exc.truncation)
        order_id = self.order_id
        labels = ", ".join(
            f"{FIELD_LABELS.get(p, p)} ({name}.sql :{p} = {str(values[p])[:60]!r})" for p in culprits
        )
        if exc.truncation:
            raise OrderTextError(f"order {order_id}: too long for the database column: {labels}") from None
        if not self.transliterate_unsupported:
            raise OrderTextError(
                f"order {order_id}: the database charset cannot hold the text of {labels} — "
                f"set [orders] transliterate_unsupported = true to store it transliterated, or "
                f"use a UTF8 column"
            ) from None
        for level in (1, 2, 3):
            fixed = {
                k: (transliterate(v, level) if k in culprits and isinstance(v, str) else v)
                for k, v in values.items()
            }
            try:
                self.stmts.execute_raw(name, fixed)
            except db.TextRejected:
                continue
            if self.journal is not None:
                self.journal.event(
                    "orders", f"order {order_id}: transliterated {labels}", "warning", order_id=order_id
                )
            return fixed
        raise OrderTextError(
            f"order {order_id}: even transliterated, the database cannot hold {labels}"
        ) from None

    # --- reads of the order flow ----------------------------------------------------------------------

    def find_order(self, order: Order) -> dict[str, Any] | None:
        """The Torgsoft order imported from this Satu order, if any."""
        return self.one("order_find", {"source": SOURCE, "external_id": str(order.id)})

    def lock_order(self, order_id: int) -> None:
        """Lock the order row until the end of the transaction."""
        self.one("order_lock", {"order_id": order_id})

    def has_invoice(self, order_id: int) -> bool:
        """True when the order has its invoice."""
        return self.one("invoice_find", {"order_id": order_id}) is not None

    def lines_of(self, order_id: int) -> list[tuple[int | None, Decimal, Decimal]]:
        """The stored lines of an order as (good_id, qty, price)."""
        return [
            (r["good_id"], Decimal(r["qty"]), Decimal(r["price"]).quantize(Q2))
            for r in self.all("order_items", {"order_id": order_id})
        ]

    def has_reservations(self, order_id: int) -> bool:
        """True when the order has reservations that are open or consumed by an invoice."""
        return any(r["state"] != RELEASED for r in self.all("reservations_of_order", {"order_id": order_id}))

    # --- writes -------------------------------------------------------------------------------------

    def save_customer(self, order: Order, known: dict[str, Any] | None) -> int:
        """Refresh the known customer (empty order values never wipe what Torgsoft knows; nothing
        changed, nothing written), or create it and claim its phone/e-mail keys; returns its id."""
        values = customer_values(order)
        if known is not None:
            merged = {k: (v or (known.get(k) or "").strip()) for k, v in values.items()}
            if any(merged[k] != (known.get(k) or "").strip() for k in merged):
                self.run("client_update", {**merged, "client_id": known["id"]})
            return int(known["id"])
        client_id = self.next_id("client_next_id")
        self.run("client_insert", {**values, "client_id": client_id})
        c = order.customer
        for kind, key in (("phone", c.phone), ("email", c.email)):
            if key:
                self.run("client_key_insert", {"kind": kind, "key_value": key[:200], "client_id": client_id})
        return client_id

    def insert_order(self, order: Order, header: dict[str, Any]) -> int:
        """Insert the order header; returns the new Torgsoft order id."""
        order_id = self.next_id("order_next_id")
        self.run(
            "order_insert",
            {
                **header,
                "order_id": order_id,
                "doc_number": f"SATU-{order.id}"[:30],
                "doc_date": order.created.astimezone(SATU_TZ).replace(tzinfo=None),
                "center_id": self.center,
                "source": SOURCE,
                "external_id": str(order.id),
            },
        )
        return order_id

    def update_order(self, order_id: int, header: dict[str, Any]) -> None:
        """Write a changed order header."""
        self.run("order_update", {**header, "order_id": order_id})

    def insert_lines(self, order_id: int, resolved: list[ResolvedLine]) -> None:
        """Insert the order's lines."""
        for r in resolved:
            self.run(
                "order_item_insert",
                {
                    "order_id": order_id,
                    "line_no": r.no,
                    "good_id": r.good_id,
                    "qty": r.line.quantity,
                    "price": r.price,
                },
            )

    def replace_lines(self, order_id: int, resolved: list[ResolvedLine]) -> None:
        """Release the order's reservations and write its changed lines in place of the old ones."""
        self.release(order_id)
        self.run("order_items_delete", {"order_id": order_id})
        self.insert_lines(order_id, resolved)

    def set_reserved_until(self, order_id: int, until: date) -> None:
        """Move the end date of the order's open reservations."""
        self.run("reservation_set_until", {"reserved_until": until, "order_id": order_id})

    def reserve(
        self, order_id: int, resolved: list[ResolvedLine], until: date, outcome: ImportOutcome
    ) -> None:
        """Reserve every matched line; what the center lacks is reserved as 'awaiting stock'."""
        for r in resolved:
            if r.good_id is None:
                continue
            need = r.line.quantity
            stock = self.one("stock_lock", {"good_id": r.good_id, "center_id": self.center})
            available = (
                max(Decimal(stock["qty"]) - Decimal(stock["reserved"]), Decimal(0)) if stock else Decimal(0)
            )
            active = min(available, need)
            awaiting = need - active
            for qty, state in ((active, ACTIVE), (awaiting, AWAITING)):
                if qty > 0:
                    self._reservation(order_id, r.good_id, qty, state, until)
            if active > 0:
                self.run("stock_reserve", {"qty": active, "good_id": r.good_id, "center_id": self.center})
            if awaiting > 0:
                outcome.shortages.append(
                    f"line {r.no} (good {r.good_id}): {awaiting} of {need} awaiting stock "
                    f"at center {self.center}"
                )

    def _reservation(self, order_id: int, good_id: int, qty: Decimal, state: int, until: date) -> None:
        self.run(
            "reservation_insert",
            {
                "reservation_id": self.next_id("reservation_next_id"),
                "order_id": order_id,
                "good_id": good_id,
                "center_id": self.center,
                "qty": qty,
                "state": state,
                "reserved_until": until,
            },
        )

    def release(self, order_id: int) -> int:
        """Release the order's open reservations and give the reserved quantity back; returns how many."""
        count = 0
        for res in self.all("reservations_of_order", {"order_id": order_id}):
            if res["state"] not in (ACTIVE, AWAITING):
                continue
            self.run("reservation_set_state", {"state": RELEASED, "reservation_id": res["id"]})
            if res["state"] == ACTIVE:
                self.run(
                    "stock_reserve",
                    {"qty": -Decimal(res["qty"]), "good_id": res["good_id"], "center_id": res["center_id"]},
                )
            count += 1
        return count

    def invoice(
        self, order: Order, order_id: int, client_id: int | None, resolved: list[ResolvedLine]
    ) -> bool:
        """Create the invoice (unless there is one): it sells the matched lines and consumes the
        reservations; True when it was created now."""
        if self.has_invoice(order_id):
            return False
        sold = [r for r in resolved if r.good_id is not None]
        invoice_id = self.next_id("invoice_next_id")
        total = sum((r.price * r.line.quantity for r in sold), Decimal(0)).quantize(Q2)
        self.run(
            "invoice_insert",
            {
                "invoice_id": invoice_id,
                "doc_number": f"SATU-{order.id}"[:30],
                "doc_date": datetime.now().replace(microsecond=0),
                "order_id": order_id,
                "client_id": client_id,
                "center_id": self.center,
                "total": total,
            },
        )
        for n, r in enumerate(sold, 1):
            self.run(
                "invoice_item_insert",
                {
                    "invoice_id": invoice_id,
                    "line_no": n,
                    "good_id": r.good_id,
                    "qty": r.line.quantity,
                    "price": r.price,
                },
            )
        covered = self._consume_reservations(order_id)
        # Lines without a reservation (none was made) still leave the store with the invoice.
        for r in sold:
            gid = r.good_id
            if gid is None:  # pragma: no cover - `sold` holds matched lines only
                continue
            left = r.line.quantity - covered.get(gid, Decimal(0))
            if left > 0:
                covered[gid] = covered.get(gid, Decimal(0)) + left
                self.run(
                    "stock_write_off",
                    {"qty": left, "reserved_qty": 0, "good_id": gid, "center_id": self.center},
                )
        return True

    def _consume_reservations(self, order_id: int) -> dict[int, Decimal]:
        """Mark the order's open reservations consumed and write their goods off; returns the quantity
        covered per good."""
        covered: dict[int, Decimal] = {}
        for res in self.all("reservations_of_order", {"order_id": order_id}):
            if res["state"] not in (ACTIVE, AWAITING):
                continue
            self.run("reservation_set_state", {"state": CONSUMED, "reservation_id": res["id"]})
            qty = Decimal(res["qty"])
            covered[res["good_id"]] = covered.get(res["good_id"], Decimal(0)) + qty
            self.run(
                "stock_write_off",
                {
                    "qty": qty,
                    "reserved_qty": qty if res["state"] == ACTIVE else 0,
                    "good_id": res["good_id"],
                    "center_id": res["center_id"],
                },
            )
        return covered
