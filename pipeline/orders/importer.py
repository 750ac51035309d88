"""Import one Satu order into Torgsoft in one database transaction, exactly once.

Exactly once rests on the database, not on local bookkeeping: the order is keyed by
(EXTERNAL_SOURCE = 'satu', EXTERNAL_ID = Satu id) with a unique constraint, a new customer by a unique
CLIENT_EXTERNAL_KEY row, an invoice by the unique INVOICE.ORDER_ID, and reservations are only created
inside the same transaction as the order (or its update, which first locks the order row). A crash at
any point rolls the whole order back; a re-run (or a second importer that lost a race and got a unique
violation) starts again, finds the order and treats the file as an update — usually "unchanged".

The inbox claims and parses the file; this module keeps only the order flow: the quick "unchanged"
look-up → bind (`binder`: goods and customer) → map (`order_rows`: the pure order → row values) →
write (`writer`: every statement, through the SQL mapping and `torgsoft.db`) → commit, retried when
another importer won a race. No table name and no driver appears here.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from pipeline import _testing
from pipeline.errors import DatabaseError, DatabaseUnavailable
from pipeline.model import Order
from pipeline.orders.binder import OrderBinder
from pipeline.orders.order_rows import (
    CANCELLED,
    MAX_ATTEMPTS,
    NEW,
    SOURCE,
    ImportOutcome,
    ResolvedLine,
    order_hash,
    order_header,
    torgsoft_status,
    unmatched_notes,
    updated_status,
)
from pipeline.orders.order_rows import utc_naive as _utc_naive
from pipeline.orders.writer import OrderTextError, OrderWriter
from pipeline.torgsoft import db
from pipeline.torgsoft.mapping import Mapping

__all__ = ["ImportOutcome", "OrderImporter", "OrderTextError"]


class OrderImporter:
    """Writes orders through one open connection; `import_order` is one transaction per order."""

    def __init__(self, settings: Any, con: Any, *, journal: Any = None, mapping: Mapping | None = None):
        self.settings = settings
        self.cfg = settings.orders
        self.con = con
        self.journal = journal
        self.mapping = mapping or Mapping(settings.torgsoft.mapping_dir)
        self.center = self.cfg.accounting_center
        self.binder = OrderBinder(self.center, self.cfg.price_kind)
        self._writer: OrderWriter | None = None
        self._ro: Any = None
        self._ro_find: db.Statements | None = None
        # True once the attachment is gone (db.is_gone): nothing more is sent over it, not even the
        # rollbacks of closing, which can block for good on a dead server attachment.
        self.gone = False

    def _writer_for(self, order: Order) -> OrderWriter:
        """The writer on the import cursor (made once: its statements stay prepared across orders)."""
        if self._writer is None:
            self._writer = OrderWriter(
                self.con,
                self.con.cursor(),
                self.mapping,
                center=self.center,
                transliterate_unsupported=self.cfg.transliterate_unsupported,
                journal=self.journal,
            )
        self._writer.begin(order)
        return self._writer

    # --- one order ------------------------------------------------------------------------------------

    def _import_once(self, w: OrderWriter, order: Order) -> ImportOutcome:
        found = w.find_order(order)
        if found is None:
            return self._insert(w, order)
        return self._update(w, order, found)

    def _customer(self, w: OrderWriter, order: Order, known: int | None = None) -> int | None:
        """The customer's id: found (and refreshed) or created; None for an order without one. A customer
        known only by name has no key to be found by: an update keeps the order's `known` one."""
        c = order.customer
        if not (c.phone or c.email or c.name):
            return None
        row = self.binder.customer(w, order)
        if row is None and known is not None and not (c.phone or c.email):
            return int(known)
        return w.save_customer(order, row)

    def _header(
        self,
        order: Order,
        resolved: list[ResolvedLine],
        status: int,
        client_id: int | None,
        unmatched: list[str],
    ) -> dict[str, Any]:
        return order_header(
            order,
            resolved,
            status,
            client_id,
            unmatched,
            price_kind=self.cfg.price_kind,
            reserve_days=self.cfg.reserve_days,
        )

    def _insert(self, w: OrderWriter, order: Order) -> ImportOutcome:
        resolved = self.binder.lines(w, order)
        unmatched = unmatched_notes(resolved)
        client_id = self._customer(w, order)
        status = torgsoft_status(order.status)
        status = NEW if status is None else status
        header = self._header(order, resolved, status, client_id, unmatched)
        order_id = w.insert_order(order, header)
        w.insert_lines(order_id, resolved)
        outcome = ImportOutcome("imported", order_id, unmatched=unmatched)
        if status != CANCELLED:
            w.reserve(order_id, resolved, header["reserve_until"], outcome)
            if order.paid or self.cfg.auto_invoice:
                outcome.invoice = w.invoice(order, order_id, client_id, resolved)
        return outcome

    def _stale(self, w: OrderWriter, order: Order, found: dict[str, Any]) -> ImportOutcome | None:
        """ "unchanged" when the stored order has this content already or is newer; None to update it.
        The order row is locked first (two importers update one order one after the other)."""
        order_id = int(found["id"])
        # Same content (a duplicate file, an idempotent re-run): nothing to write, not even a lock.
        if found.get("external_hash") == order_hash(order):
            return ImportOutcome("unchanged", order_id)
        w.lock_order(order_id)
        found.update(w.find_order(order) or {})
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
        return None

    def _update(self, w: OrderWriter, order: Order, found: dict[str, Any]) -> ImportOutcome:
        found = dict(found)
        stale = self._stale(w, order, found)
        if stale is not None:
            return stale
        order_id = int(found["id"])
        resolved = self.binder.lines(w, order)
        unmatched = unmatched_notes(resolved)
        client_id = self._customer(w, order, found.get("client_id")) or found.get("client_id")
        status = updated_status(int(found["status"]), torgsoft_status(order.status))
        header = self._header(order, resolved, status, client_id, unmatched)
        outcome = ImportOutcome("updated", order_id, unmatched=unmatched)
        invoiced = w.has_invoice(order_id)
        lines_changed = w.lines_of(order_id) != [(r.good_id, r.line.quantity, r.price) for r in resolved]
        if lines_changed and invoiced:
            outcome.notes.append(
                "the lines changed on Satu after the invoice was made: the invoice and lines "
                "are kept; adjust by hand"
            )
            lines_changed = False
        w.update_order(order_id, header)
        if status == CANCELLED:
            released = w.release(order_id)
            if released:
                outcome.notes.append(f"cancelled: {released} reservation(s) released")
            if invoiced:
                outcome.notes.append("cancelled after the invoice was made: a return must be made by hand")
            return outcome
        if lines_changed:
            w.replace_lines(order_id, resolved)
        else:
            w.set_reserved_until(order_id, header["reserve_until"])
        if not invoiced:
            if not w.has_reservations(order_id):  # new lines, or an order Satu reopened after a cancellation
                w.reserve(order_id, resolved, header["reserve_until"], outcome)
            if order.paid or self.cfg.auto_invoice:
                outcome.invoice = w.invoice(order, order_id, client_id, resolved)
        return outcome

    def _unchanged(self, order: Order) -> ImportOutcome | None:
        """The quick path for a duplicate file or an idempotent re-run: a look-up in a long-lived
        read-only, read-committed transaction finds the same content already there (no write, no sync).
        The transaction stays open: it sees every commit, holds back no garbage collection, and starting
        a transaction per file would cost a disk sync each."""
        try:
            find = self._ro_find
            if self._ro is None or find is None:
                self._ro = db.read_only_transaction(self.con)
                find = self._ro_find = db.Statements(self._ro.cursor(), self.mapping, what="order")
            find.what = f"order {order.id}"
            found = find.one("order_find", {"source": SOURCE, "external_id": str(order.id)})
        except DatabaseError as exc:
            if db.is_gone(exc):
                self.gone = True  # the transaction dies with the attachment: no rollback (see is_gone)
                raise  # the full path would fail the same way
            if self._ro is not None:
                db.rollback(self._ro)
            self._ro = self._ro_find = None
            return None  # the full path will tell what is wrong
        if found is not None and found.get("external_hash") == order_hash(order):
            return ImportOutcome("unchanged", int(found["id"]))
        return None

    def close(self) -> None:
        """End the read-only look-up transaction (before the connection is closed)."""
        if self._ro is not None and not self.gone:
            db.rollback(self._ro)
            with contextlib.suppress(*db.driver_errors()):
                self._ro.close()
        self._ro = self._ro_find = None
        self._writer = None

    def import_order(self, order: Order) -> ImportOutcome:
        """Import (or update) one order in one transaction; retried when another importer won a race.

        Raises `DatabaseUnavailable` when the database (not the order) is the problem — the attachment
        was shut down, the connection lost, a race lost too often — so the file is given back, never
        quarantined; `DatabaseError`/`SkipError` when the database refused this order's data."""
        if self.gone:
            raise DatabaseUnavailable(f"order {order.id}: the database connection was lost earlier")
        unchanged = self._unchanged(order)
        if unchanged is not None:
            return unchanged
        delay = 0.05
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                outcome = self._import_once(self._writer_for(order), order)
                _testing.reach("importer.before_commit")
                db.commit(self.con, f"order {order.id}: commit failed")
                _testing.reach("importer.after_commit")
                return outcome
            except DatabaseError as exc:
                if db.is_gone(exc):
                    # A forced shutdown, a lost connection: the server rolls the transaction back
                    # itself; a rollback over the dead attachment could block for good (see is_gone).
                    self.gone = True
                    raise
                failed_rollback = db.rollback(self.con)
                if failed_rollback is not None and db.is_unavailable(failed_rollback):
                    # The attachment is gone (shut down under us): whatever the statement said, the
                    # order is not at fault. The caller reconnects later.
                    self.gone = db.is_gone(failed_rollback)
                    raise DatabaseUnavailable(f"order {order.id}: {exc} ({failed_rollback})") from None
                if db.is_race(exc) and attempt < MAX_ATTEMPTS:
                    # Another importer created this order/customer, or holds a row we need: start over.
                    self.binder.forget()
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                raise
            except db.driver_errors() as exc:  # from the driver outside a translated call
                error = db.translate(exc, f"order {order.id}")
                self.gone = self.gone or db.is_gone(error)
                db.undo(self.con, error)
                raise error from None
            except BaseException:
                db.rollback(self.con)
                raise
        raise DatabaseError(f"order {order.id}: gave up after {MAX_ATTEMPTS} attempts")  # pragma: no cover
