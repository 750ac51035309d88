"""Import one Satu order into Torgsoft in one database transaction, exactly once.

Exactly once rests on the database, not on local bookkeeping: the order is keyed by
(EXTERNAL_SOURCE = 'satu', EXTERNAL_ID = Satu id) with a unique constraint, a new customer by a unique
CLIENT_EXTERNAL_KEY row, an invoice by the unique INVOICE.ORDER_ID, and reservations are only created
inside the same transaction as the order (or its update, which first locks the order row). A crash at
any point rolls the whole order back; a re-run (or a second importer that lost a race and got a unique
violation) starts again, finds the order and treats the file as an update — usually "unchanged".

Every statement is a named SQL file (pipeline/torgsoft/queries/) run through `torgsoft.db`; no table name
and no driver appears here. The pure order → row values live in `order_rows`.
"""

from __future__ import annotations

import contextlib
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pipeline import _testing
from pipeline.errors import DatabaseError, DatabaseUnavailable, SkipError
from pipeline.model import Order, OrderLine
from pipeline.orders.order_rows import (
    ACTIVE,
    AWAITING,
    CANCELLED,
    CONSUMED,
    FIELD_LABELS,
    LIMITS,
    MAX_ATTEMPTS,
    NEW,
    Q2,
    RELEASED,
    SOURCE,
    ImportOutcome,
    ResolvedLine,
    order_hash,
    reserve_until,
    torgsoft_status,
    transliterate,
)
from pipeline.orders.order_rows import utc_naive as _utc_naive
from pipeline.orders.parse import SATU_TZ, service_notes
from pipeline.torgsoft import db
from pipeline.torgsoft.mapping import Mapping


class OrderTextError(SkipError):
    """A text of the order cannot be stored in the database (charset or length); names order and field."""


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
        self._stmts: db.Statements | None = None

    # --- statements ---------------------------------------------------------------------------------

    def _statements(self, cur: Any) -> db.Statements:
        if self._stmts is None or self._stmts.cursor is not cur:
            self._stmts = db.Statements(
                cur, self.mapping, what=f"order {self._order.id if self._order else '?'}"
            )
        return self._stmts

    def _run(self, cur: Any, name: str, values: dict[str, Any]) -> Any:
        """Execute a named query; text the database cannot hold becomes OrderTextError or is transliterated."""
        stmts = self._statements(cur)
        try:
            stmts.run(name, values)
        except db.TextRejected as exc:
            values = self._fix_text(stmts, name, values, exc)
        _testing.reach(f"importer.after:{name}")
        return cur

    def _one(self, cur: Any, name: str, values: dict[str, Any]) -> dict[str, Any] | None:
        self._run(cur, name, values)
        return self._statements(cur).fetch_one(name)

    def _all(self, cur: Any, name: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        self._run(cur, name, values)
        return self._statements(cur).fetch_all(name)

    def _next_id(self, cur: Any, name: str) -> int:
        row = self._one(cur, name, {})
        assert row is not None
        return int(row["id"])

    def _fix_text(
        self, stmts: db.Statements, name: str, values: dict[str, Any], exc: db.TextRejected
    ) -> dict[str, Any]:
        """Find which text parameter the database refused (probing under a savepoint); transliterate it
        when `[orders] transliterate_unsupported` is on, else raise OrderTextError naming it."""
        q = self.mapping.query(name)
        suspects = [
            p for p in dict.fromkeys(q.params) if isinstance(values.get(p), str) and not values[p].isascii()
        ]
        truncation = exc.truncation
        if truncation:
            suspects = [p for p in dict.fromkeys(q.params) if isinstance(values.get(p), str) and values[p]]
        culprits = []
        for p in suspects:
            probe = {
                k: (transliterate(v, 3)[:8] if isinstance(v, str) and k != p and k in suspects else v)
                for k, v in values.items()
            }
            try:
                with db.savepoint(self.con, "TS_PROBE"):
                    stmts.execute_raw(name, probe)
            except db.TextRejected:
                culprits.append(p)
            except DatabaseError as probe_exc:
                if db.is_unavailable(probe_exc):
                    raise
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
                stmts.execute_raw(name, fixed)
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
        # The buyer's note first, then what Satu says besides (promo, recipient, "don't call",
        # cancellation), then our own notes about lines that matched no good.
        comment = "\n".join(x for x in (order.comment, *service_notes(order)) if x)
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
            gid = r.good_id
            if gid is None:  # pragma: no cover - `sold` holds matched lines only
                continue
            left = r.line.quantity - covered.get(gid, Decimal(0))
            if left > 0:
                covered[gid] = covered.get(gid, Decimal(0)) + left
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
        read-only, read-committed transaction finds the same content already there (no write, no sync).
        The transaction stays open: it sees every commit, holds back no garbage collection, and starting
        a transaction per file would cost a disk sync each."""
        try:
            if self._ro is None:
                self._ro = db.read_only_transaction(self.con)
                self._ro_find = db.Statements(self._ro.cursor(), self.mapping, what=f"order {order.id}")
            found = self._ro_find.one("order_find", {"source": SOURCE, "external_id": str(order.id)})
        except DatabaseError as exc:
            if self._ro is not None:
                db.rollback(self._ro)
            self._ro = self._ro_find = None
            if db.is_unavailable(exc) and not db.is_race(exc):
                raise  # the connection is gone: the full path would fail the same way
            return None  # the full path will tell what is wrong
        if found is not None and found.get("external_hash") == order_hash(order):
            return ImportOutcome("unchanged", int(found["id"]))
        return None

    def close(self) -> None:
        """End the read-only look-up transaction (before the connection is closed)."""
        if self._ro is not None:
            db.rollback(self._ro)
            with contextlib.suppress(*db.driver_errors()):
                self._ro.close()
            self._ro = self._ro_cur = self._ro_find = None
        self._stmts = None
        self._cur = None

    def import_order(self, order: Order) -> ImportOutcome:
        """Import (or update) one order in one transaction; retried when another importer won a race.

        Raises `DatabaseUnavailable` when the database (not the order) is the problem — the attachment
        was shut down, the connection lost, a race lost too often — so the file is given back, never
        quarantined; `DatabaseError`/`SkipError` when the database refused this order's data."""
        self._order = order
        unchanged = self._unchanged(order)
        if unchanged is not None:
            return unchanged
        delay = 0.05
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                if self._cur is None:
                    self._cur = self.con.cursor()
                outcome = self._import_once(self._cur, order)
                _testing.reach("importer.before_commit")
                db.commit(self.con, f"order {order.id}: commit failed")
                _testing.reach("importer.after_commit")
                return outcome
            except DatabaseError as exc:
                failed_rollback = db.rollback(self.con)
                if failed_rollback is not None and db.is_unavailable(failed_rollback):
                    # The attachment is gone (shut down under us): whatever the statement said, the
                    # order is not at fault. The caller reconnects later.
                    raise DatabaseUnavailable(f"order {order.id}: {exc} ({failed_rollback})") from None
                if db.is_race(exc) and attempt < MAX_ATTEMPTS:
                    # Another importer created this order/customer, or holds a row we need: start over.
                    self._goods_by_id.clear()
                    self._goods_by_articul.clear()
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                raise
            except db.driver_errors() as exc:  # from the driver outside a translated call
                db.rollback(self.con)
                raise db.translate(exc, f"order {order.id}") from None
            except BaseException:
                db.rollback(self.con)
                raise
        raise DatabaseError(f"order {order.id}: gave up after {MAX_ATTEMPTS} attempts")  # pragma: no cover
