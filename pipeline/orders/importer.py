"""Import one Satu order into Torgsoft in one database transaction, exactly once.

Exactly once rests on the database, not on local bookkeeping: the order is keyed by
(EXTERNAL_SOURCE = 'satu', EXTERNAL_ID = Satu id) with a unique constraint, a new customer by a unique
CLIENT_EXTERNAL_KEY row, an invoice by the unique INVOICE.ORDER_ID, and reservations are only created
inside the same transaction as the order (or its update, which first locks the order row). A crash at
any point rolls the whole order back; a re-run (or a second importer that lost a race and got a unique
violation) starts again, finds the order and treats the file as an update — usually "unchanged".

Every statement is a named SQL file (pipeline/torgsoft/queries/); no table name appears here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.errors import DatabaseError, DatabaseUnavailable, SkipError
from pipeline.model import Order, OrderLine
from pipeline.orders.parse import SATU_TZ
from pipeline.torgsoft.mapping import Mapping
from pipeline.torgsoft.writegate import WriteGate

SOURCE = "satu"
# Torgsoft order states (reference schema): 0 new, 1 accepted, 2 shipped, 3 delivered, 4 cancelled.
NEW, ACCEPTED, SHIPPED, DELIVERED, CANCELLED = 0, 1, 2, 3, 4
# Reservation states: 0 active, 1 awaiting stock, 2 released, 3 consumed by an invoice.
ACTIVE, AWAITING, RELEASED, CONSUMED = 0, 1, 2, 3
SATU_STATUS = {
    "pending": NEW,
    "draft": NEW,
    "received": ACCEPTED,
    "paid": ACCEPTED,
    "delivered": DELIVERED,
    "canceled": CANCELLED,
    "cancelled": CANCELLED,
}
# Lengths of the reference schema's text columns: longer values are cut (a mapping with shorter
# columns gets a clear "too long" error naming the field instead).
LIMITS = {
    "name": 200,
    "phone": 30,
    "email": 200,
    "city": 100,
    "address": 500,
    "payment_method": 100,
    "delivery_condition": 200,
    "delivery_address": 500,
    "ttn": 60,
    "comment": 2000,
    "doc_number": 30,
}
# What each text parameter means to an operator (for error messages).
FIELD_LABELS = {
    "name": "customer name",
    "phone": "customer phone",
    "email": "customer e-mail",
    "city": "customer city",
    "address": "customer address",
    "payment_method": "payment method",
    "delivery_condition": "delivery method",
    "delivery_address": "delivery address",
    "ttn": "waybill number",
    "comment": "comment (client notes)",
    "doc_number": "document number",
    "articul": "line sku",
    "key_value": "customer phone/e-mail key",
}
MAX_ATTEMPTS = 8
Q2 = Decimal("0.01")

# Kazakh letters that WIN1251 cannot hold, with the Russian letter a Kazakh reader expects instead.
KAZAKH_TO_RUSSIAN = str.maketrans(
    {
        "Ә": "А",
        "ә": "а",
        "Ғ": "Г",
        "ғ": "г",
        "Қ": "К",
        "қ": "к",
        "Ң": "Н",
        "ң": "н",
        "Ө": "О",
        "ө": "о",
        "Ұ": "У",
        "ұ": "у",
        "Ү": "У",
        "ү": "у",
        "Һ": "Х",
        "һ": "х",
        "І": "И",
        "і": "и",
    }
)


def transliterate(text: str, level: int = 1) -> str:
    """Make text storable in a narrow charset: 1 = Kazakh → Russian letters (WIN1251-safe),
    2 = also anything outside WIN1251 → '?', 3 = plain ASCII (accents dropped, the rest → '?')."""
    out = text.translate(KAZAKH_TO_RUSSIAN)
    if level >= 2:
        out = out.encode("cp1251", "replace").decode("cp1251")
    if level >= 3:
        out = unicodedata.normalize("NFKD", out).encode("ascii", "ignore").decode("ascii") or "?"
    return out


def order_hash(order: Order) -> str:
    """A stable hash of the Satu order's content (an identical re-import changes nothing)."""
    return hashlib.sha256(
        json.dumps(order.raw, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    ).hexdigest()


def torgsoft_status(satu_status: str) -> int | None:
    """The Torgsoft order state for a Satu status; None for custom statuses (keep what is there)."""
    return SATU_STATUS.get(satu_status.lower())


def reserve_until(order: Order, reserve_days: int) -> date:
    """The customer's date when given (never before the order day), else the order day + reserve_days."""
    day = order.created.astimezone(SATU_TZ).date()
    if order.reserve_until is not None:
        return max(order.reserve_until, day)
    return day + timedelta(days=reserve_days)


def _utc_naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def test_hook(point: str) -> None:
    """Crash injection for the tests: TORGSOFT_SATU_TEST_KILL_AT=point[#n] kills this process (SIGKILL)
    the n-th time (default 1st) it passes `point`. Never set in production."""
    wanted = os.environ.get("TORGSOFT_SATU_TEST_KILL_AT")
    if not wanted:
        return
    name, _, nth = wanted.partition("#")
    if name != point:
        return
    count = _hook_counts.get(point, 0) + 1
    _hook_counts[point] = count
    if count >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


_hook_counts: dict[str, int] = {}


class OrderTextError(SkipError):
    """A text of the order cannot be stored in the database (charset or length); names order and field."""


@dataclass
class ResolvedLine:
    """An order line with its Torgsoft good (None = unmatched) and the price that will be written."""

    no: int
    line: OrderLine
    good_id: int | None
    price: Decimal


@dataclass
class ImportOutcome:
    """What importing one order did."""

    kind: str  # "imported" | "updated" | "unchanged"
    order_id: int  # the Torgsoft order id
    invoice: bool = False  # an invoice was created now
    unmatched: list[str] = field(default_factory=list)
    shortages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Retry(Exception):
    """Internal: roll back and run the whole order again (lost a race to another importer)."""


class OrderImporter:
    """Writes orders through one open connection; `import_order` is one transaction per order."""

    def __init__(self, settings: Any, con: Any, *, journal: Any = None, mapping: Mapping | None = None):
        self.settings = settings
        self.cfg = settings.orders
        self.con = con
        self.journal = journal
        self.mapping = mapping or Mapping(settings.torgsoft.mapping_dir)
        self.center = self.cfg.accounting_center
        self._goods_by_id: dict[int, tuple | None] = {}
        self._goods_by_articul: dict[str, tuple | None] = {}
        self._order: Order | None = None
        self._cur: Any = None
        self._ro: Any = None
        self._ro_cur: Any = None
        self._ro_find: Any = None
        self._prepared: dict[str, Any] = {}
        t = settings.torgsoft
        self._gate = WriteGate(None if t.dsn else Path(t.database), max(30.0, 2.0 * t.lock_timeout))

    # --- statements ---------------------------------------------------------------------------------

    def _run(self, cur: Any, name: str, values: dict[str, Any]) -> Any:
        """Execute a named query; text the database cannot hold becomes OrderTextError or is transliterated."""
        import fdb

        q = self.mapping.query(name)
        prepared = self._prepared.get(name)
        if prepared is None:
            # Prepared once per importer: re-preparing every statement of every order costs ~10 %.
            prepared = self._prepared[name] = cur.prep(q.sql)
        try:
            cur.execute(prepared, q.args(values))
        except (fdb.DatabaseError, UnicodeEncodeError) as exc:
            if not _is_text_problem(exc):
                raise
            values = self._fix_text(cur, name, values, exc)
        test_hook(f"after:{name}")
        return cur

    def _one(self, cur: Any, name: str, values: dict[str, Any]) -> dict[str, Any] | None:
        import fdb

        self._run(cur, name, values)
        row = cur.fetchone()
        # Close the result set now: the prepared statement is run again later in this transaction.
        with contextlib.suppress(fdb.DatabaseError):
            self._prepared[name].close()
        if row is None:
            return None
        return {d[0].lower(): v for d, v in zip(cur.description, row, strict=True)}

    def _all(self, cur: Any, name: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        self._run(cur, name, values)
        cols = [d[0].lower() for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def _next_id(self, cur: Any, name: str) -> int:
        row = self._one(cur, name, {})
        assert row is not None
        return int(row["id"])

    def _fix_text(self, cur: Any, name: str, values: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        """Find which text parameter the database refused (probing under a savepoint); transliterate it
        when `[orders] transliterate_unsupported` is on, else raise OrderTextError naming it."""
        import fdb

        q = self.mapping.query(name)
        suspects = [
            p for p in dict.fromkeys(q.params) if isinstance(values.get(p), str) and not values[p].isascii()
        ]
        truncation = "truncation" in str(exc).lower() and "transliterate" not in str(exc).lower()
        if truncation:
            suspects = [p for p in dict.fromkeys(q.params) if isinstance(values.get(p), str) and values[p]]
        culprits = []
        for p in suspects:
            probe = {
                k: (transliterate(v, 3)[:8] if isinstance(v, str) and k != p and k in suspects else v)
                for k, v in values.items()
            }
            self.con.savepoint("TS_PROBE")
            try:
                cur.execute(q.sql, q.args(probe))
            except (fdb.DatabaseError, UnicodeEncodeError) as probe_exc:
                if _is_text_problem(probe_exc):
                    culprits.append(p)
            finally:
                self.con.rollback(savepoint="TS_PROBE")
        culprits = culprits or suspects
        order_id = self._order.id if self._order else "?"
        labels = ", ".join(
            f"{FIELD_LABELS.get(p, p)} ({name}.sql :{p} = {str(values[p])[:60]!r})" for p in culprits
        )
        if truncation:
            raise OrderTextError(f"order {order_id}: too long for the database column: {labels}") from None
        if not self.cfg.transliterate_unsupported:
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
                cur.execute(q.sql, q.args(fixed))
            except (fdb.DatabaseError, UnicodeEncodeError) as again:
                if not _is_text_problem(again):
                    raise
                continue
            if self.journal is not None:
                self.journal.event(
                    "orders", f"order {order_id}: transliterated {labels}", "warning", order_id=order_id
                )
            return fixed
        raise OrderTextError(
            f"order {order_id}: even transliterated, the database cannot hold {labels}"
        ) from None

    # --- lookups --------------------------------------------------------------------------------------

    def _good(self, cur: Any, line: OrderLine) -> tuple | None:
        """(good_id, retail, wholesale) matched by external id (GoodID) first, then by sku (article)."""
        ext = line.external_id.strip()
        if ext.isdigit() and len(ext) < 10:
            gid = int(ext)
            if gid not in self._goods_by_id:
                row = self._one(cur, "good_find_by_id", {"good_id": gid, "center_id": self.center})
                self._goods_by_id[gid] = (
                    (row["good_id"], row["retail_price"], row["wholesale_price"]) if row else None
                )
            if self._goods_by_id[gid] is not None:
                return self._goods_by_id[gid]
        sku = line.sku.strip()
        if sku:
            if sku not in self._goods_by_articul:
                row = self._one(cur, "good_find_by_articul", {"articul": sku, "center_id": self.center})
                self._goods_by_articul[sku] = (
                    (row["good_id"], row["retail_price"], row["wholesale_price"]) if row else None
                )
            return self._goods_by_articul[sku]
        return None

    def _resolve(self, cur: Any, order: Order) -> list[ResolvedLine]:
        out = []
        for no, line in enumerate(order.lines, 1):
            good = self._good(cur, line)
            price = line.price
            if good is not None and self.cfg.price_kind != "order":
                retail, wholesale = good[1], good[2]
                chosen = wholesale if self.cfg.price_kind == "wholesale" and wholesale is not None else retail
                if chosen is not None:
                    price = Decimal(chosen)
            out.append(ResolvedLine(no, line, int(good[0]) if good else None, price.quantize(Q2)))
        return out

    def _customer(self, cur: Any, order: Order) -> int | None:
        """Find the customer by normalised phone, then e-mail; update it, or create it (claiming its keys)."""
        c = order.customer
        if not (c.phone or c.email or c.name):
            return None
        row = self._one(cur, "client_find_by_phone", {"phone": c.phone}) if c.phone else None
        if row is None and c.email:
            row = self._one(cur, "client_find_by_email", {"email": c.email})
        values = {
            "name": c.name[: LIMITS["name"]],
            "phone": c.phone[: LIMITS["phone"]],
            "email": c.email[: LIMITS["email"]],
            "city": c.city[: LIMITS["city"]],
            "address": c.address[: LIMITS["address"]],
        }
        if row is not None:
            # Empty values in the order never wipe what Torgsoft knows; nothing changed, nothing written.
            merged = {k: (v or (row.get(k) or "").strip()) for k, v in values.items()}
            if any(merged[k] != (row.get(k) or "").strip() for k in merged):
                self._run(cur, "client_update", {**merged, "client_id": row["id"]})
            return int(row["id"])
        client_id = self._next_id(cur, "client_next_id")
        self._run(cur, "client_insert", {**values, "client_id": client_id})
        for kind, key in (("phone", c.phone), ("email", c.email)):
            if key:
                self._run(
                    cur, "client_key_insert", {"kind": kind, "key_value": key[:200], "client_id": client_id}
                )
        return client_id

    # --- documents -------------------------------------------------------------------------------------

    def _header(
        self,
        order: Order,
        resolved: list[ResolvedLine],
        status: int,
        client_id: int | None,
        unmatched: list[str],
    ) -> dict[str, Any]:
        comment = order.comment
        if unmatched:
            comment = (comment + "\n" if comment else "") + "\n".join(f"[satu] {u}" for u in unmatched)
        total = (
            order.total
            if self.cfg.price_kind == "order"
            else sum((r.price * r.line.quantity for r in resolved), Decimal(0))
        )
        return {
            "client_id": client_id,
            "status": status,
            "is_paid": 1 if order.paid else 0,
            "payment_method": order.payment_method[: LIMITS["payment_method"]],
            "delivery_condition": order.delivery_method[: LIMITS["delivery_condition"]],
            "delivery_address": order.delivery_address[: LIMITS["delivery_address"]],
            "ttn": order.waybill[: LIMITS["ttn"]] or None,
            "reserve_until": reserve_until(order, self.cfg.reserve_days),
            "comment": comment[: LIMITS["comment"]],
            "total": Decimal(total).quantize(Q2),
            "external_modified": _utc_naive(order.modified or order.created),
            "external_hash": order_hash(order),
        }

    def _insert_lines(self, cur: Any, order_id: int, resolved: list[ResolvedLine]) -> None:
        for r in resolved:
            self._run(
                cur,
                "order_item_insert",
                {
                    "order_id": order_id,
                    "line_no": r.no,
                    "good_id": r.good_id,
                    "qty": r.line.quantity,
                    "price": r.price,
                },
            )

    def _reserve(
        self, cur: Any, order_id: int, resolved: list[ResolvedLine], until: date, outcome: ImportOutcome
    ) -> None:
        """Reserve every matched line; what the center lacks is reserved as 'awaiting stock'."""
        for r in resolved:
            if r.good_id is None:
                continue
            need = r.line.quantity
            stock = self._one(cur, "stock_lock", {"good_id": r.good_id, "center_id": self.center})
            available = (
                max(Decimal(stock["qty"]) - Decimal(stock["reserved"]), Decimal(0)) if stock else Decimal(0)
            )
            active = min(available, need)
            awaiting = need - active
            for qty, state in ((active, ACTIVE), (awaiting, AWAITING)):
                if qty <= 0:
                    continue
                rid = self._next_id(cur, "reservation_next_id")
                self._run(
                    cur,
                    "reservation_insert",
                    {
                        "reservation_id": rid,
                        "order_id": order_id,
                        "good_id": r.good_id,
                        "center_id": self.center,
                        "qty": qty,
                        "state": state,
                        "reserved_until": until,
                    },
                )
            if active > 0:
                self._run(
                    cur, "stock_reserve", {"qty": active, "good_id": r.good_id, "center_id": self.center}
                )
            if awaiting > 0:
                outcome.shortages.append(
                    f"line {r.no} (good {r.good_id}): {awaiting} of {need} awaiting stock "
                    f"at center {self.center}"
                )

    def _release(self, cur: Any, order_id: int) -> int:
        """Release the order's open reservations and give the reserved quantity back; returns how many."""
        count = 0
        for res in self._all(cur, "reservations_of_order", {"order_id": order_id}):
            if res["state"] not in (ACTIVE, AWAITING):
                continue
            self._run(cur, "reservation_set_state", {"state": RELEASED, "reservation_id": res["id"]})
            if res["state"] == ACTIVE:
                self._run(
                    cur,
                    "stock_reserve",
                    {"qty": -Decimal(res["qty"]), "good_id": res["good_id"], "center_id": res["center_id"]},
                )
            count += 1
        return count

    def _invoice(
        self, cur: Any, order: Order, order_id: int, client_id: int | None, resolved: list[ResolvedLine]
    ) -> bool:
        """Create the invoice (unless there is one): it sells the matched lines and consumes the reservations."""
        if self._one(cur, "invoice_find", {"order_id": order_id}) is not None:
            return False
        sold = [r for r in resolved if r.good_id is not None]
        invoice_id = self._next_id(cur, "invoice_next_id")
        total = sum((r.price * r.line.quantity for r in sold), Decimal(0)).quantize(Q2)
        self._run(
            cur,
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
            self._run(
                cur,
                "invoice_item_insert",
                {
                    "invoice_id": invoice_id,
                    "line_no": n,
                    "good_id": r.good_id,
                    "qty": r.line.quantity,
                    "price": r.price,
                },
            )
        reservations = self._all(cur, "reservations_of_order", {"order_id": order_id})
        covered: dict[int, Decimal] = {}
        for res in reservations:
            if res["state"] not in (ACTIVE, AWAITING):
                continue
            self._run(cur, "reservation_set_state", {"state": CONSUMED, "reservation_id": res["id"]})
            qty = Decimal(res["qty"])
            covered[res["good_id"]] = covered.get(res["good_id"], Decimal(0)) + qty
            self._run(
                cur,
                "stock_write_off",
                {
                    "qty": qty,
                    "reserved_qty": qty if res["state"] == ACTIVE else 0,
                    "good_id": res["good_id"],
                    "center_id": res["center_id"],
                },
            )
        # Lines without a reservation (none was made) still leave the store with the invoice.
        for r in sold:
            left = r.line.quantity - covered.get(r.good_id, Decimal(0))
            if left > 0:
                covered[r.good_id] = covered.get(r.good_id, Decimal(0)) + left
                self._run(
                    cur,
                    "stock_write_off",
                    {"qty": left, "reserved_qty": 0, "good_id": r.good_id, "center_id": self.center},
                )
        return True

    # --- one order ------------------------------------------------------------------------------------

    def _unmatched(self, resolved: list[ResolvedLine]) -> list[str]:
        return [
            f"line {r.no} not matched to a good: external_id {r.line.external_id!r}, sku {r.line.sku!r}, "
            f"{r.line.name!r} x {r.line.quantity}"
            for r in resolved
            if r.good_id is None
        ]

    def _import_once(self, cur: Any, order: Order) -> ImportOutcome:
        found = self._one(cur, "order_find", {"source": SOURCE, "external_id": str(order.id)})
        if found is None:
            return self._insert(cur, order)
        return self._update(cur, order, found)

    def _insert(self, cur: Any, order: Order) -> ImportOutcome:
        resolved = self._resolve(cur, order)
        unmatched = self._unmatched(resolved)
        client_id = self._customer(cur, order)
        status = torgsoft_status(order.status)
        status = NEW if status is None else status
        order_id = self._next_id(cur, "order_next_id")
        header = self._header(order, resolved, status, client_id, unmatched)
        self._run(
            cur,
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
        self._insert_lines(cur, order_id, resolved)
        outcome = ImportOutcome("imported", order_id, unmatched=unmatched)
        if status != CANCELLED:
            self._reserve(cur, order_id, resolved, header["reserve_until"], outcome)
            if order.paid or self.cfg.auto_invoice:
                outcome.invoice = self._invoice(cur, order, order_id, client_id, resolved)
        return outcome

    def _update(self, cur: Any, order: Order, found: dict[str, Any]) -> ImportOutcome:
        order_id = int(found["id"])
        # Same content (a duplicate file, an idempotent re-run): nothing to write, not even a lock.
        if found.get("external_hash") == order_hash(order):
            return ImportOutcome("unchanged", order_id)
        self._one(cur, "order_lock", {"order_id": order_id})
        found = self._one(cur, "order_find", {"source": SOURCE, "external_id": str(order.id)}) or found
        if found.get("external_hash") == order_hash(order):
            return ImportOutcome("unchanged", order_id)
        stored_modified = found.get("external_modified")
        incoming = _utc_naive(order.modified or order.created)
        if stored_modified is not None and incoming is not None and incoming < stored_modified:
            return ImportOutcome(
                "unchanged",
                order_id,
                notes=[f"older version ({order.modified}) than the one imported; ignored"],
            )
        resolved = self._resolve(cur, order)
        unmatched = self._unmatched(resolved)
        client_id = self._customer(cur, order) or found.get("client_id")
        current = int(found["status"])
        mapped = torgsoft_status(order.status)
        if mapped == CANCELLED:
            status = CANCELLED
        elif mapped is None:
            status = current if current != CANCELLED else NEW
        else:
            # Never move an order backwards (Torgsoft may already have shipped it); a cancelled
            # order that Satu reopens comes back as the mapped state.
            status = mapped if current == CANCELLED else max(current, mapped)
        header = self._header(order, resolved, status, client_id, unmatched)
        outcome = ImportOutcome("updated", order_id, unmatched=unmatched)
        invoiced = self._one(cur, "invoice_find", {"order_id": order_id}) is not None
        old_lines = [
            (r["good_id"], Decimal(r["qty"]), Decimal(r["price"]).quantize(Q2))
            for r in self._all(cur, "order_items", {"order_id": order_id})
        ]
        new_lines = [(r.good_id, r.line.quantity, r.price) for r in resolved]
        lines_changed = old_lines != new_lines
        if lines_changed and invoiced:
            outcome.notes.append(
                "the lines changed on Satu after the invoice was made: the invoice and lines "
                "are kept; adjust by hand"
            )
            lines_changed = False
        self._run(cur, "order_update", {**header, "order_id": order_id})
        if status == CANCELLED:
            released = self._release(cur, order_id)
            if released:
                outcome.notes.append(f"cancelled: {released} reservation(s) released")
            if invoiced:
                outcome.notes.append("cancelled after the invoice was made: a return must be made by hand")
            return outcome
        if lines_changed:
            self._release(cur, order_id)
            self._run(cur, "order_items_delete", {"order_id": order_id})
            self._insert_lines(cur, order_id, resolved)
        else:
            self._run(
                cur,
                "reservation_set_until",
                {"reserved_until": header["reserve_until"], "order_id": order_id},
            )
        if not invoiced:
            open_or_used = [
                r
                for r in self._all(cur, "reservations_of_order", {"order_id": order_id})
                if r["state"] != RELEASED
            ]
            if not open_or_used:  # new lines, or an order Satu reopened after a cancellation
                self._reserve(cur, order_id, resolved, header["reserve_until"], outcome)
            if order.paid or self.cfg.auto_invoice:
                outcome.invoice = self._invoice(cur, order, order_id, client_id, resolved)
        return outcome

    def _unchanged(self, order: Order) -> ImportOutcome | None:
        """The quick path for a duplicate file or an idempotent re-run: a look-up in a long-lived
        read-only, read-committed transaction finds the same content already there (no write, no sync)."""
        import fdb

        if self._ro is None:
            self._ro = self.con.trans(fdb.ISOLATION_LEVEL_READ_COMMITED_RO)
            self._ro_cur = self._ro.cursor()
            self._ro_find = self._ro_cur.prep(self.mapping.query("order_find").sql)
        q = self.mapping.query("order_find")
        try:
            self._ro_cur.execute(self._ro_find, q.args({"source": SOURCE, "external_id": str(order.id)}))
            row = self._ro_cur.fetchone()
            with contextlib.suppress(fdb.DatabaseError):
                self._ro_find.close()
            # The read-only read-committed transaction stays open: it sees every commit, holds back no
            # garbage collection, and starting a transaction per file would cost a disk sync each.
        except fdb.DatabaseError:
            with contextlib.suppress(fdb.DatabaseError):
                self._ro.rollback()
            self._ro = None
            return None  # the full path will tell what is wrong
        if row is None:
            return None
        found = {d[0].lower(): v for d, v in zip(self._ro_find.description, row, strict=True)}
        if found.get("external_hash") == order_hash(order):
            return ImportOutcome("unchanged", int(found["id"]))
        return None

    def close(self) -> None:
        """End the read-only look-up transaction (before the connection is closed)."""
        if self._ro is not None:
            with contextlib.suppress(Exception):
                self._ro.rollback()
            with contextlib.suppress(Exception):
                self._ro.close()
            self._ro = self._ro_cur = self._ro_find = None
        self._prepared.clear()
        self._cur = None
        self._gate.close()

    def import_order(self, order: Order) -> ImportOutcome:
        """Import (or update) one order in one transaction; retried when another importer won a race.
        Importers of one embedded file take turns (see pipeline/torgsoft/writegate.py)."""
        self._order = order
        with self._gate.held(f"order {order.id}"):
            return self._import_gated(order)

    def _import_gated(self, order: Order) -> ImportOutcome:
        import fdb

        from pipeline.torgsoft.connection import translate

        unchanged = self._unchanged(order)
        if unchanged is not None:
            return unchanged
        delay = 0.05
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if self._cur is None:
                self._cur = self.con.cursor()
            cur = self._cur
            try:
                outcome = self._import_once(cur, order)
                test_hook("before_commit")
                self.con.commit()
                test_hook("after_commit")
                return outcome
            except fdb.DatabaseError as exc:
                self.con.rollback()
                if _is_race(exc) and attempt < MAX_ATTEMPTS:
                    # Another importer created this order/customer, or holds a row we need: start over.
                    self._goods_by_id.clear()
                    self._goods_by_articul.clear()
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                error = translate(exc, f"order {order.id}")
                if _is_race(exc):
                    raise DatabaseUnavailable(str(error)) from None
                raise error from None
            except BaseException:
                self.con.rollback()
                raise
        raise DatabaseError(f"order {order.id}: gave up after {MAX_ATTEMPTS} attempts")  # pragma: no cover


# Every query the importer runs, with the result columns it reads (writes have none).
QUERY_COLUMNS: dict[str, tuple[str, ...]] = {
    "order_find": ("id", "status", "is_paid", "client_id", "external_modified", "external_hash"),
    "order_lock": ("id",),
    "order_next_id": ("id",),
    "order_insert": (),
    "order_update": (),
    "order_items": ("line_no", "good_id", "qty", "price"),
    "order_items_delete": (),
    "order_item_insert": (),
    "client_find_by_phone": ("id", "name", "phone", "email", "city", "address"),
    "client_find_by_email": ("id", "name", "phone", "email", "city", "address"),
    "client_next_id": ("id",),
    "client_insert": (),
    "client_update": (),
    "client_key_insert": (),
    "good_find_by_id": ("good_id", "retail_price", "wholesale_price"),
    "good_find_by_articul": ("good_id", "retail_price", "wholesale_price"),
    "stock_lock": ("qty", "reserved"),
    "stock_reserve": (),
    "stock_write_off": (),
    "reservation_next_id": ("id",),
    "reservation_insert": (),
    "reservations_of_order": ("id", "good_id", "center_id", "qty", "state"),
    "reservation_set_state": (),
    "reservation_set_until": (),
    "invoice_find": ("id",),
    "invoice_next_id": ("id",),
    "invoice_insert": (),
    "invoice_item_insert": (),
}


def check_mapping(con: Any, mapping: Mapping) -> None:
    """Prepare every order query against the live database and check the aliases it must deliver;
    one SettingsError lists every problem (file and column) before any order is touched."""
    from pipeline.errors import Problem, SettingsError

    problems: list[Problem] = []
    try:
        mapping.check(con, list(QUERY_COLUMNS))  # files that are missing or do not prepare
    except SettingsError as exc:
        problems += exc.problems
    broken = {p.key for p in problems}
    cur = con.cursor()
    for name, columns in QUERY_COLUMNS.items():
        if not columns or str(mapping.path(name)) in broken or not mapping.path(name).exists():
            continue
        q = mapping.query(name)
        try:
            have = {d[0].lower() for d in cur.prep(q.sql).description or ()}
        except Exception:  # already reported by mapping.check
            continue
        problems += [
            Problem(str(q.path), f"result column {c!r} is missing", f"alias a column AS {c}")
            for c in columns
            if c not in have
        ]
    con.rollback()
    if problems:
        raise SettingsError(problems)


def _gds(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[2] if len(args) > 2 and isinstance(args[2], int) else None


def _is_race(exc: BaseException) -> bool:
    """A unique-key violation (someone inserted first) or a lock/update conflict (someone holds the row)."""
    text = str(exc).lower()
    return (
        _gds(exc) in (335544665, 335544349, 335544336, 335544345)
        or "violation of primary or unique key" in text
        or "deadlock" in text
        or "update conflicts" in text
        or "lock conflict" in text
        or "lock time-out" in text
        # An engine page lock another process would not hand over in time (embedded engine in
        # shared mode): nothing is wrong with the order, so it is a race like the others.
        or "lock denied" in text
    )


def _is_text_problem(exc: BaseException) -> bool:
    """Text the charset cannot hold, or too long for its column."""
    if isinstance(exc, UnicodeEncodeError):
        return True
    text = str(exc).lower()
    return "transliterate" in text or "string right truncation" in text or "malformed string" in text
