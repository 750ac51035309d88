"""`orders reconcile`: Satu orders of the last days that reached neither the inbox nor Torgsoft.

The download cursor can miss an order for good (a wrong query zone, a clock step, an order saved late
with an old date; issue 13). This check does not trust the cursor: it lists every Satu order created
**or** modified in the last `[orders] reconcile_days` (two listings, by `date_from` and by
`last_modified_from`, merged by id) and compares them with what the shop has:

- in the inbox: an order version the fetch writer recorded (state `orders.fetched`), or a file
  `satu-order-<id>-….json` in the inbox, done/ or quarantine/ (a file dropped by hand counts too);
- in Torgsoft: with `[orders] sink = "database"`, an order found by `order_find.sql` (source `satu`
  + the Satu id). Order files (`torgsoft-json`) cannot be asked; for them the inbox is the record.

`fix=True` downloads each missing order into the inbox through the fetch writer (so the importer takes
it like any other) and records it in `orders.fetched`. The state is written only after the file is
durable. Counts are typed (`ReconcileResult`): the service alerts by `fixed`, never by text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.errors import RetryableError, StopError
from pipeline.orders.fetch import PREFIX, SEEN_NS, write_version
from pipeline.stage import ResultBase, StopCheck, never_stop

STAGE = "orders"
SOURCE = "satu"  # CUSTOMER_ORDER.EXTERNAL_SOURCE of orders that came from Satu
_NAME_RE = re.compile(re.escape(PREFIX) + r"(\d+)-")

#: Given Satu order ids, the ones Torgsoft already has.
TorgsoftLookup = Callable[[list[int]], set[int]]


@dataclass
class ReconcileResult(ResultBase):
    """What one reconcile pass found: `missing` = Satu orders in neither place, `fixed` = of those,
    the ones downloaded into the inbox now (`fix=True`)."""

    days: int = 0
    checked: int = 0
    in_inbox: int = 0
    in_torgsoft: int = 0
    missing: list[int] = field(default_factory=list)
    fixed: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the pass completed and nothing is missing any more."""
        return not self.errors and not self.interrupted and set(self.missing) <= set(self.fixed)

    @property
    def problems(self) -> list[str]:  # type: ignore[override]
        """What is wrong: errors, and missing orders that were not downloaded."""
        left = [i for i in self.missing if i not in set(self.fixed)]
        out = list(self.errors)
        if left:
            out.append(f"{len(left)} Satu order(s) neither in the inbox nor in Torgsoft: {_ids(left)}")
        return out

    def summary(self) -> str:
        """One line for the CLI and the journal."""
        text = (
            f"{self.checked} Satu order(s) of the last {self.days} day(s): {self.in_inbox} in the inbox, "
            f"{self.in_torgsoft} only in Torgsoft, {len(self.missing)} missing"
        )
        if self.fixed:
            text += f", {len(self.fixed)} downloaded into the inbox"
        return text


def _ids(ids: Iterable[int], limit: int = 20) -> str:
    ids = list(ids)
    more = f" … (+{len(ids) - limit})" if len(ids) > limit else ""
    return ", ".join(str(i) for i in ids[:limit]) + more


def inbox_ids(inbox: Path) -> set[int]:
    """Satu order ids with a file in the inbox, done/ or quarantine/ (by the fetch writer's names)."""
    found: set[int] = set()
    for folder in (inbox, inbox / "done", inbox / "quarantine"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            m = _NAME_RE.match(path.name)
            if m:
                found.add(int(m.group(1)))
    return found


def torgsoft_lookup(settings: Any) -> TorgsoftLookup | None:
    """The look-up of Satu ids in Torgsoft for `[orders] sink = "database"` (None for order files)."""
    if settings.orders.sink != "database":
        return None

    def lookup(ids: list[int]) -> set[int]:
        from pipeline.torgsoft.connection import connect
        from pipeline.torgsoft.db import Statements, read_only_transaction
        from pipeline.torgsoft.mapping import Mapping

        con = connect(settings)
        try:
            tr = read_only_transaction(con)
            try:
                sql = Statements(tr.cursor(), Mapping(settings.torgsoft.mapping_dir), what="orders reconcile")
                have = {i for i in ids if sql.one("order_find", {"source": SOURCE, "external_id": str(i)})}
                sql.clear()
                return have
            finally:
                tr.rollback()
        finally:
            con.close()

    return lookup


def _satu_orders(client: Any, since: datetime, should_stop: StopCheck) -> tuple[dict[int, dict], bool]:
    """Orders created or modified since `since`, by id (both listings: an order placed long ago and
    changed now, and one created now with an old modification date, are both caught)."""
    orders: dict[int, dict] = {}
    for listing in ({"date_from": since}, {"last_modified_from": since}):
        for raw in client.iter_orders(**listing):
            if should_stop():
                return orders, True
            oid = raw.get("id")
            if isinstance(oid, int):
                orders[oid] = raw
    return orders, False


def run(
    settings: Any,
    *,
    journal: Any,
    state: Any,
    days: int | None = None,
    fix: bool = False,
    client: Any = None,
    in_torgsoft: TorgsoftLookup | None = None,
    now: datetime | None = None,
    should_stop: StopCheck = never_stop,
) -> ReconcileResult:
    """One reconcile pass (see the module doc). `in_torgsoft` defaults to `torgsoft_lookup(settings)`.

    An expired token (SatuAuthError, a StopError) is raised, not swallowed, so the one alert fires;
    Satu unreachable after its retries ends the pass with an error in the result, nothing written."""
    from pipeline.satu.client import SatuClient

    days = int(days or settings.orders.reconcile_days)
    result = ReconcileResult(days=days)
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    own = client is None
    client = client or SatuClient.from_settings(settings)
    try:
        orders, result.interrupted = _satu_orders(client, since, should_stop)
        result.checked = len(orders)
        inbox = Path(settings.orders.inbox)
        seen = inbox_ids(inbox)
        candidates = sorted(i for i in orders if i not in seen and state.get(SEEN_NS, str(i)) is None)
        result.in_inbox = result.checked - len(candidates)
        lookup = in_torgsoft if in_torgsoft is not None else torgsoft_lookup(settings)
        have = lookup(candidates) if lookup is not None and candidates else set()
        result.in_torgsoft = len(have)
        result.missing = [i for i in candidates if i not in have]
        if fix:
            _fix(result, orders, inbox, state, journal, should_stop)
    except RetryableError as exc:
        result.errors.append(str(exc))
        journal.event(STAGE, f"orders reconcile interrupted: {exc}", "warning")
        return result
    except StopError as exc:
        journal.event(STAGE, f"orders reconcile refused: {exc}", "error")
        raise
    finally:
        if own:
            client.close()
    _journal(journal, result)
    return result


def _fix(
    result: ReconcileResult,
    orders: dict[int, dict],
    inbox: Path,
    state: Any,
    journal: Any,
    should_stop: StopCheck,
) -> None:
    """Download the missing orders into the inbox; each recorded once its file is durable."""
    for oid in result.missing:
        if should_stop():
            result.interrupted = True
            return
        raw = orders[oid]
        name = write_version(inbox, raw)
        stamp = str(raw.get("date_modified") or raw.get("date_created") or "")
        if stamp:
            state.put(SEEN_NS, str(oid), stamp)
        result.fixed.append(oid)
        journal.event(
            STAGE,
            f"orders reconcile: Satu order {oid} was missed by the download; written to the inbox as {name}",
            "warning",
            order_id=oid,
        )


def _journal(journal: Any, result: ReconcileResult) -> None:
    level = "info"
    if result.missing:
        level = "warning" if set(result.missing) <= set(result.fixed) else "error"
    journal.event(
        STAGE,
        f"orders reconcile: {result.summary()}" + (f" ({_ids(result.missing)})" if result.missing else ""),
        level,
        checked=result.checked,
        missing=len(result.missing),
        fixed=len(result.fixed),
    )
