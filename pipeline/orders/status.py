"""Order status and waybill numbers from Torgsoft back to Satu (`status push`); docs/orders.md tells it whole.

One run: **detect** the Torgsoft orders from Satu that changed (`orders_for_status.sql`; by its
`changed_at` cursor minus `[status] overlap_minutes` when the mapping has it, else every order, and a
per-order hash of status/paid/TTN in local state skips the unchanged); **map** each through the pure
rules of `status_rules.py` (precedence cancelled > delivered > shipped > paid > accepted, `pending` never
sent, a status Satu already confirmed not sent again); **queue** each write in the state outbox
(`status.set` / `status.ttn`, newest payload wins), and only then save the hash and cursor; **verify**
(`[status] verify_before_push`) by reading the order from Satu first, so what Satu already shows (a
customer's own cancellation) is recorded, not sent back, and a custom status (`custom-<id>`) is kept;
**push** `orders/set_status` in batches of one status (a batch refused whole is retried id by id) and
`delivery/save_declaration_id`. A write counts only when its id is in `processed_ids` (an empty answer
without an error means "already there": re-read and confirmed); anything else backs off from `[status]
retry_seconds` and after `[status] max_attempts` the order is parked (`status.parked`).

First run (no baseline) or `status push --baseline`: record every current state as pushed and send
nothing, so switching the feature on does not notify customers about old orders. A lost state file
is never re-baselined silently (the journal remembers the baseline). Every event goes to the journal
(stage "status") with the Satu order id.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from pipeline.errors import DatabaseError, PipelineError, Problem, RetryableError, SettingsError
from pipeline.orders.status_rules import (  # noqa: F401 (the rules are part of this stage's API)
    ACCEPTED,
    CANCELLED,
    DELIVERED,
    KIND_STATUS,
    KIND_TTN,
    NEEDS_TEXT,
    NEW,
    SETTABLE,
    SHIPPED,
    OrderState,
    Target,
    _satu_id,
    _text,
    map_row,
    satu_has,
    target_status,
    validate,
)
from pipeline.satu.api import is_custom_status
from pipeline.settings import Settings
from pipeline.stage import ResultBase, StopCheck, never_stop
from pipeline.state import lost_state

STAGE = "status"
SOURCE = "satu"  # CUSTOMER_ORDER.EXTERNAL_SOURCE of orders that came from Satu
QUERY = "orders_for_status"

NS_ORDERS = "status.orders"  # Satu order id -> {"hash", "status" (confirmed), "ttn" (confirmed)}
BASELINE_MARK = "baseline taken"  # the journal's witness that a baseline existed (see state.lost_state)
NS_META = "status.meta"  # "baseline" -> {...}, "cursor" -> ISO timestamp (database clock)
NS_PARKED = "status.parked"  # "<kind>:<order id>" -> {"payload", "error", "attempts", "at"}

BATCH = 100  # ids per set_status call
FULL_READ_SINCE = datetime(1900, 1, 1)


@dataclasses.dataclass
class StatusResult(ResultBase):
    """Counts of one run: orders checked, statuses and waybills confirmed, failures, parked, baseline."""

    checked: int = 0
    changed: int = 0
    pushed: int = 0
    waybills: int = 0
    already: int = 0
    kept_custom: int = 0  # writes dropped: Satu shows the seller's own status (keep_custom_statuses)
    failed: int = 0
    parked: int = 0
    pending: int = 0
    baseline: int = 0
    ok: bool = True


@contextlib.contextmanager
def _read_orders(settings: Settings, since: datetime) -> Iterator[tuple[bool, Iterator[OrderState]]]:
    """Open the database and stream OrderStates; yields (has_changed_at, rows)."""
    from pipeline.torgsoft.connection import connect, translate
    from pipeline.torgsoft.mapping import Mapping

    query = Mapping(settings.torgsoft.mapping_dir).query(QUERY)
    con = connect(settings)
    try:
        cur = con.cursor()
        try:
            cur.execute(query.sql, query.args({"source": SOURCE, "changed_since": since}))
        except Exception as exc:  # fdb.DatabaseError → project error naming the mapping file
            raise translate(exc, f"{query.path} failed") from None
        columns = [d[0].lower() for d in cur.description or ()]
        missing = [c for c in query.columns if c not in columns]
        if missing:
            raise SettingsError(
                [
                    Problem(str(query.path), f"result column {c!r} is missing", f"alias a column AS {c}")
                    for c in missing
                ]
            )

        def rows() -> Iterator[OrderState]:
            while True:
                try:
                    batch = cur.fetchmany(1000)
                except Exception as exc:
                    raise translate(exc, f"{query.path} failed") from None
                if not batch:
                    return
                for raw in batch:
                    yield map_row(dict(zip(columns, raw, strict=True)))

        yield "changed_at" in columns, rows()
    finally:
        with contextlib.suppress(Exception):
            con.close()


UNKNOWN: dict[str, Any] = {"unknown": True}  # sentinel: Satu answered 404 for the order


class _Run:
    """One run of the stage; keeps the counters and the lazily opened Satu client."""

    def __init__(self, settings: Settings, journal: Any, state: Any, should_stop: StopCheck = never_stop):
        self.settings = settings
        self.should_stop = should_stop
        self.cfg = settings.status
        self.journal = journal
        self.state = state
        self.result = StatusResult()
        self._client: Any = None
        self._orders: dict[str, Any] = {}

    def event(self, message: str, level: str = "info", order_id: Any = None, **data: Any) -> None:
        self.journal.event(STAGE, message, level, order_id=order_id, **data)

    def client(self) -> Any:
        if self._client is None:
            from pipeline.satu.client import SatuClient

            self._client = SatuClient.from_settings(self.settings)
        return self._client

    def close(self) -> None:
        if self._client is not None and hasattr(self._client, "close"):
            with contextlib.suppress(Exception):
                self._client.close()

    # --- baseline -------------------------------------------------------------------------------

    def baseline(self) -> None:
        """Record every current order state as already pushed; send nothing."""
        records: list[tuple[str, Any]] = []
        newest: datetime | None = None
        with _read_orders(self.settings, FULL_READ_SINCE) as (_, rows):
            for order in rows:
                if not order.external_id:
                    continue
                target = target_status(order, self.cfg)
                records.append(
                    (
                        order.external_id,
                        {
                            "hash": order.fingerprint,
                            "status": target.status if target else None,
                            "ttn": order.ttn or None,
                        },
                    )
                )
                if order.changed_at and (newest is None or order.changed_at > newest):
                    newest = order.changed_at
        self.state.put_many(NS_ORDERS, records)
        keys = [k for k, _ in records]
        # Pending writes from before the baseline are superseded by it.
        self.state.outbox_done(KIND_STATUS, keys)
        self.state.outbox_done(KIND_TTN, keys)
        if newest is not None:
            self.state.put(NS_META, "cursor", newest.isoformat())
        else:
            self.state.delete(NS_META, "cursor")
        self.state.put(
            NS_META, "baseline", {"at": datetime.now().isoformat(timespec="seconds"), "orders": len(records)}
        )
        self.result.checked = self.result.baseline = len(records)
        self.event(
            f"{BASELINE_MARK}: {len(records)} Satu order(s) recorded as already pushed, nothing sent",
            orders=len(records),
        )

    # --- detection ------------------------------------------------------------------------------

    def detect(self) -> None:
        """Queue the writes that changed orders need; save hashes and the cursor once queued."""
        cursor_text = self.state.get(NS_META, "cursor")
        since = FULL_READ_SINCE
        if cursor_text:
            since = datetime.fromisoformat(cursor_text) - timedelta(minutes=self.cfg.overlap_minutes)
        newest: datetime | None = None
        no_carrier: list[str] = []
        with _read_orders(self.settings, since) as (has_changed_at, rows):
            for order in rows:
                self.result.checked += 1
                if order.changed_at and (newest is None or order.changed_at > newest):
                    newest = order.changed_at
                if not order.external_id:
                    continue
                known = self.state.get(NS_ORDERS, order.external_id) or {}
                if known.get("hash") == order.fingerprint:
                    continue
                self.result.changed += 1
                self.queue(order, known, no_carrier)
        if no_carrier:
            self.event(
                f"{len(no_carrier)} waybill number(s) not sent: [status] carrier is empty",
                "warning",
                orders=no_carrier,
                fix="set [status] carrier to the delivery_type code Satu expects",
            )
        if (
            has_changed_at
            and newest is not None
            and (not cursor_text or newest > datetime.fromisoformat(cursor_text))
        ):
            self.state.put(NS_META, "cursor", newest.isoformat())

    def queue(self, order: OrderState, known: dict[str, Any], no_carrier: list[str]) -> None:
        """Queue (or withdraw) the status and waybill writes of one changed order."""
        oid = order.external_id
        record = dict(known)
        record["hash"] = order.fingerprint
        if _satu_id(oid) is None:
            self.event(
                f"order {oid!r} cannot be a Satu order id (not a positive number): not pushed",
                "error",
                order_id=oid,
            )
            self.state.put(NS_ORDERS, oid, record)
            return
        target = target_status(order, self.cfg)
        if target is not None and target.status != known.get("status"):
            self.state.outbox_add(KIND_STATUS, oid, target.payload())
            self.event(
                f"status change queued: {known.get('status') or '—'} → {target.status}",
                order_id=oid,
                torgsoft_status=order.status,
                paid=order.is_paid,
                **{k: v for k, v in target.payload().items() if k != "status" and v},
            )
        else:
            # Back to what Satu already has (or nothing to send): a pending write is stale.
            self.state.outbox_done(KIND_STATUS, [oid])
        if order.ttn and order.ttn != known.get("ttn"):
            if self.cfg.carrier:
                self.state.outbox_add(KIND_TTN, oid, {"ttn": order.ttn, "carrier": self.cfg.carrier})
                self.event(f"waybill queued: {order.ttn}", order_id=oid, ttn=order.ttn)
            else:
                no_carrier.append(oid)
        else:
            self.state.outbox_done(KIND_TTN, [oid])
        self.state.put(NS_ORDERS, oid, record)

    # --- pushing --------------------------------------------------------------------------------

    def confirm(self, kind: str, oid: str, field: str, value: Any, message: str) -> None:
        record = self.state.get(NS_ORDERS, oid) or {}
        record[field] = value
        self.state.put(NS_ORDERS, oid, record)  # state first: a crash now at worst re-sends once
        self.state.outbox_done(kind, [oid])
        if self.state.get(NS_PARKED, f"{kind}:{oid}") is not None:  # a read is cheap, a write syncs
            self.state.delete(NS_PARKED, f"{kind}:{oid}")
        self.event(message, order_id=oid, **{field: value})

    def fail(
        self, kind: str, oid: str, payload: Any, attempts: int, error: str, transient: bool = False
    ) -> None:
        """Record a failed attempt: retry later with backoff, or park after max_attempts.

        A transient failure (Satu unreachable) is never held against the order: it backs off
        but is not parked, however long the outage.
        """
        attempts += 1
        self.result.failed += 1
        what = "status" if kind == KIND_STATUS else "waybill"
        if attempts >= self.cfg.max_attempts and not transient:
            self.state.put(
                NS_PARKED,
                f"{kind}:{oid}",
                {
                    "payload": payload,
                    "error": error,
                    "attempts": attempts,
                    "at": datetime.now().isoformat(timespec="seconds"),
                },
            )
            self.state.outbox_done(kind, [oid])
            self.result.parked += 1
            self.event(
                f"{what} push given up after {attempts} attempts: {error}",
                "error",
                order_id=oid,
                payload=payload,
                attempts=attempts,
                fix="check the order on Satu; a new change in Torgsoft queues it again",
            )
        else:
            self.state.outbox_failed(kind, oid, error, base_delay=self.cfg.retry_seconds)
            self.event(
                f"{what} push failed (attempt {attempts}, will retry): {error}",
                "warning",
                order_id=oid,
                payload=payload,
                attempts=attempts,
            )

    def satu_order(self, key: str) -> dict[str, Any] | None:
        """The order as Satu has it now (cached for the run); UNKNOWN on 404; None when Satu did not say."""
        from pipeline.satu.client import SatuApiError

        if key not in self._orders:
            try:
                self._orders[key] = self.client().get_order(int(key))
            except SatuApiError as exc:
                self._orders[key] = UNKNOWN if exc.status == 404 else None
        return self._orders[key]

    def keeps_custom(self, order: dict[str, Any] | None) -> bool:
        """True when Satu shows a seller's own status (`custom-<id>`) and `[status] keep_custom_statuses`."""
        return (
            bool(self.cfg.keep_custom_statuses)
            and isinstance(order, dict)
            and is_custom_status(str(order.get("status") or ""))
        )

    def keep_custom(self, key: str, payload: Any, order: dict[str, Any] | None) -> None:
        """Leave a seller's custom status alone: the write is dropped (recorded as done), never sent."""
        self.result.kept_custom += 1
        order = order or {}
        custom = str(order.get("status"))
        self.state.outbox_done(KIND_STATUS, [key])
        self.event(
            f"Satu shows the seller's own status {custom} ({order.get('status_name') or ''}): "
            f"{payload.get('status')} not sent ([status] keep_custom_statuses)",
            order_id=key,
            custom_status=custom,
        )

    def verify(
        self, kind: str, due: list[tuple[str, Any, int]], full: bool = True
    ) -> list[tuple[str, Any, int]] | None:
        """Drop the writes Satu already has and fail unknown ids; None when Satu is unreachable.

        This is what keeps a change that *came from* Satu (the order importer copies Satu's
        status, payment and waybill into Torgsoft) from being echoed back, e.g. a customer's own
        cancellation being overwritten with the shop's reason.
        """
        out: list[tuple[str, Any, int]] = []
        for index, (key, payload, attempts) in enumerate(due):
            if not full and _satu_id(key) is None:
                out.append((key, payload, attempts))  # not a Satu id: set_status will say so
                continue
            try:
                order = self.satu_order(key)
            except RetryableError as exc:
                self.unreachable(due[index:], kind, exc)
                return None
            if kind == KIND_STATUS and self.keeps_custom(order):
                self.keep_custom(key, payload, order)
            elif not full:
                out.append((key, payload, attempts))
            elif order is UNKNOWN:
                self.fail(kind, key, payload, attempts, "order not found on Satu (unknown order id)")
            elif order is not None and satu_has(kind, order, payload):
                self.result.already += 1
                field, value = (
                    ("status", payload["status"]) if kind == KIND_STATUS else ("ttn", payload["ttn"])
                )
                self.confirm(kind, key, field, value, f"Satu already has {field} {value}: not sent")
            else:
                out.append((key, payload, attempts))
        return out

    def push_statuses(self) -> bool:
        """Send due status writes; False when Satu is unreachable (stop pushing this run)."""
        from pipeline.satu.client import SatuApiError

        due = self.state.outbox_due(KIND_STATUS)
        if self.cfg.verify_before_push or self.cfg.keep_custom_statuses:
            # Without verify_before_push only the custom-status check runs (it needs the order).
            checked = self.verify(KIND_STATUS, due, full=self.cfg.verify_before_push)
            if checked is None:
                return False
            due = checked
        groups: dict[tuple, list[tuple[str, Any, int]]] = {}
        for key, payload, attempts in due:
            groups.setdefault(
                (payload.get("status"), payload.get("cancellation_reason"), payload.get("cancellation_text")),
                [],
            ).append((key, payload, attempts))
        for (status, reason, text), entries in groups.items():
            for start in range(0, len(entries), BATCH):
                if self.should_stop():  # the rest stays queued in the outbox for the next run
                    self.result.interrupted = True
                    return False
                chunk = entries[start : start + BATCH]
                try:
                    outcome = self.set_status(chunk, status, reason, text)
                except SatuApiError as exc:
                    if len(chunk) == 1:
                        key, payload, attempts = chunk[0]
                        self.fail(KIND_STATUS, key, payload, attempts, f"Satu refused: {exc}")
                        continue
                    # One bad id can make Satu refuse a whole batch: try each order alone.
                    self.event(
                        f"set_status refused for a batch of {len(chunk)} ({exc}); retrying one by one",
                        "warning",
                        orders=[k for k, _, _ in chunk],
                    )
                    for entry in chunk:
                        try:
                            one = self.set_status([entry], status, reason, text)
                        except SatuApiError as exc1:
                            self.fail(KIND_STATUS, entry[0], entry[1], entry[2], f"Satu refused: {exc1}")
                            continue
                        except RetryableError as exc1:
                            self.unreachable([entry], KIND_STATUS, exc1)
                            return False
                        self.settle([entry], one, status)
                    continue
                except RetryableError as exc:
                    self.unreachable(chunk, KIND_STATUS, exc)
                    return False
                self.settle(chunk, outcome, status)
        return True

    def set_status(
        self, chunk: list[tuple[str, Any, int]], status: str, reason: str | None, text: str | None
    ) -> Any:
        """One `orders/set_status` call; the typed result (processed vs left alone without an error)."""
        ids = [int(k) for k, _, _ in chunk]
        return self.client().set_status_result(
            ids, status, cancellation_reason=reason, cancellation_text=text
        )

    def settle(self, chunk: list[tuple[str, Any, int]], outcome: Any, status: str) -> None:
        """Confirm the ids Satu processed. An id Satu left alone without an error means "already at
        this or a later status" (seen live): the order is read again and confirmed as Satu shows it,
        not retried and parked; only an order Satu does not know (or does not show) fails."""
        processed = {int(i) for i in outcome.processed}
        for key, payload, attempts in chunk:
            if int(key) in processed:
                self.result.pushed += 1
                self.confirm(KIND_STATUS, key, "status", status, f"status set on Satu: {status}")
                continue
            self._orders.pop(key, None)  # read it fresh: the cached copy is from before the write
            try:
                order = self.satu_order(key)
            except RetryableError as exc:
                self.fail(KIND_STATUS, key, payload, attempts, f"re-read failed: {exc}", transient=True)
                continue
            if order is UNKNOWN or order is None:
                self.fail(KIND_STATUS, key, payload, attempts, "order id not in processed_ids")
            elif self.keeps_custom(order):
                self.keep_custom(key, payload, order)
            else:
                self.result.already += 1
                shown = str(order.get("status") or "")
                self.confirm(
                    KIND_STATUS,
                    key,
                    "status",
                    status,
                    f"Satu left the order at {shown} (already at {status} or a later status): not sent again",
                )

    def push_waybills(self) -> bool:
        """Send due waybill numbers; False when Satu is unreachable."""
        from pipeline.satu.client import SatuApiError

        due = self.state.outbox_due(KIND_TTN)
        if self.cfg.verify_before_push:
            checked = self.verify(KIND_TTN, due)
            if checked is None:
                return False
            due = checked
        for index, (key, payload, attempts) in enumerate(due):
            try:
                ok = self.client().save_declaration(int(key), payload["ttn"], payload["carrier"])
            except SatuApiError as exc:
                self.fail(KIND_TTN, key, payload, attempts, f"Satu refused: {exc}")
                continue
            except RetryableError as exc:
                self.unreachable(due[index:], KIND_TTN, exc)
                return False
            if ok:
                self.result.waybills += 1
                self.confirm(
                    KIND_TTN,
                    key,
                    "ttn",
                    payload["ttn"],
                    f"waybill saved on Satu: {payload['ttn']} ({payload['carrier']})",
                )
            else:
                self.fail(KIND_TTN, key, payload, attempts, "save_declaration_id did not report success")
        return True

    def unreachable(self, entries: list[tuple[str, Any, int]], kind: str, exc: Exception) -> None:
        """Satu did not answer after the client's own retries: back off these, stop for this run."""
        self.event(
            f"Satu unreachable, {len(entries)} push(es) stay queued: {exc}",
            "warning",
            orders=[k for k, _, _ in entries],
        )
        for key, payload, attempts in entries:
            self.fail(kind, key, payload, attempts, f"Satu unreachable: {exc}", transient=True)

    def push(self) -> None:
        """Push everything due. A refused token stops the push (nothing is counted against orders) and
        is raised (an `AuthError`) after journaling it, so the one token alert fires."""
        from pipeline.errors import AuthError

        if not self.state.outbox_due(KIND_STATUS, limit=1) and not self.state.outbox_due(KIND_TTN, limit=1):
            return
        try:
            if self.push_statuses():
                self.push_waybills()
        except AuthError as exc:
            self.result.ok = False
            self.event(
                f"Satu refused the token, nothing pushed: {exc}",
                "error",
                fix="make a new API token with order rights and set it in the env var [satu] token_env names",
            )
            raise


def run(
    settings: Settings,
    *,
    journal: Any,
    state: Any,
    baseline: bool = False,
    should_stop: StopCheck = never_stop,
) -> StatusResult:
    """Detect Torgsoft order changes and push statuses and waybills to Satu (see the module doc).

    `baseline=True` (or the first run ever) records the current states as pushed and sends nothing.
    Returns counts; `ok` is False when something failed (the failed writes stay queued).
    """
    if not settings.status.enabled:
        journal.event(STAGE, "status push is off ([status] enabled = false)")
        return StatusResult()
    validate(settings.status)
    job = _Run(settings, journal, state, should_stop)
    result = job.result
    try:
        if baseline or state.get(NS_META, "baseline") is None:
            lost = (
                None if baseline else lost_state(journal, settings.journal.state_path, STAGE, BASELINE_MARK)
            )
            if lost:  # never re-baseline silently: the changes since the lost baseline would be dropped
                result.ok = False
                job.event(lost + " with `status push --baseline`", "error")
                return result
            job.baseline()
            return result
        try:
            job.detect()
        except PipelineError as exc:
            if isinstance(exc, SettingsError) and not isinstance(exc, DatabaseError):
                raise  # (a missing database file is both: it is pushed around like an unreachable one)
            # The database is unreachable: still push what is already queued.
            result.ok = False
            job.event(f"cannot read Torgsoft orders: {exc}", "error")
        job.push()
    finally:
        job.close()
    result.pending = state.outbox_count(KIND_STATUS) + state.outbox_count(KIND_TTN)
    if result.failed:
        result.ok = False
    job.event(
        f"status push: {result.checked} checked, {result.changed} changed, {result.pushed} status(es) and "
        f"{result.waybills} waybill(s) confirmed, {result.already} already on Satu, "
        f"{result.kept_custom} kept at the seller's own status, {result.failed} failed, {result.parked} given up, {result.pending} queued",
        "info" if result.ok else "warning",
        **{k: v for k, v in dataclasses.asdict(result).items() if k not in ("ok", "baseline")},
    )
    return result
