"""One tick of the stock watcher: detect → update the feed record → push through the acknowledged path.

The watcher keeps the `feed.offers` record (the contract the API push reads) current between two feed
runs. For each candidate good (see `pipeline.stock.detect`) it applies the feed's own rules
(`pipeline.stock.levels`: whole units available over the configured centers, the zero-stock presence,
the retail price as the feed formats it) to the record the feed wrote, and only where that changes
something:

- the record is rewritten (or, for a good the feed would now hide, removed and kept aside in
  `stock.hidden`, so that a restock can bring it back), marked as the watcher's in the contract so a
  feed run that read the catalog earlier does not put the older stock back;
- the changed offers are pushed by `pipeline.satu.push.push_offers` (compared with `satu.acked`,
  batches of 100, refused items to the outbox, the shared request budget), so the next full exchange
  finds nothing to resend.

Goods the feed never offered (no price, no section, never published) are left to the feed: Satu has no
product for them yet. The cursor of the change query and the digests of the hash read are kept only
after the record is written.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.contracts import feed_offers
from pipeline.contracts.feed_offers import FeedOffer
from pipeline.errors import DatabaseUnavailable
from pipeline.feed.rules import fmt_number
from pipeline.satu.offer_state import desired_state
from pipeline.stage import ResultBase, StopCheck, never_stop
from pipeline.stock.detect import ChangeDetector, Detection
from pipeline.stock.levels import HIDDEN, GoodLevel, zero_stock_presence

STAGE = "stock"
NAMESPACE = "stock.watch"  # cursor (change query), last (the last tick's figures)
HIDDEN_NS = "stock.hidden"  # offers the watcher took out of the record for lack of stock
CLOSE_SECONDS = 10.0  # how long closing the watcher's connection may take (see StockWatcher.close)


@dataclass
class StockResult(ResultBase):
    """What one watcher tick did."""

    mode: str = ""
    read: int = 0  # goods read from the database
    candidates: int = 0  # goods compared with the record
    updated: int = 0  # records rewritten (stock or price changed)
    hidden: int = 0  # offers taken out of the record (nothing to sell, zero_stock = "hide")
    restored: int = 0  # offers the watcher had hidden that are back in stock
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    requests: int = 0
    outbox: int = 0
    latency_s: float | None = None  # change query: oldest change pushed → acknowledged (database clock)
    seconds: float = 0.0
    skipped: bool = False
    interrupted: bool = False
    ok: bool = True


@dataclass(frozen=True)
class Change:
    """What a good's new level does to its record: `offer` to write, or hide (`offer` kept aside)."""

    offer_id: str
    offer: FeedOffer
    hide: bool = False
    restored: bool = False


def plan_change(
    level: GoodLevel,
    record: FeedOffer | None,
    hidden: FeedOffer | None,
    *,
    zero_stock: str,
    only_in_stock: bool = False,
) -> Change | None:
    """The change a good's level makes to the record (pure); None when nothing changes or the good is
    the feed's business (never offered, or no longer listed)."""
    base = record or hidden
    if base is None or not level.listed or level.price is None:
        return None
    presence = zero_stock_presence(level.units, zero_stock=zero_stock, only_in_stock=only_in_stock)
    price = fmt_number(level.price)
    if presence == HIDDEN:
        if record is None:
            return None  # hidden already
        return Change(level.offer_id, FeedOffer(price, 0, record.presence, record.wholesale), hide=True)
    offer = FeedOffer(price, level.units, presence, base.wholesale)
    if record is not None and desired_state(record) == desired_state(offer):
        return None
    return Change(level.offer_id, offer, restored=record is None)


def _cursor(state: Any) -> datetime | None:
    raw = state.get(NAMESPACE, "cursor")
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


class StockWatcher:
    """The watcher between ticks: one database connection, the detector and its memory."""

    def __init__(self, settings: Any, *, connect: Any = None):
        from pipeline.torgsoft.connection import connect as default_connect
        from pipeline.torgsoft.mapping import Mapping

        t = settings.torgsoft
        self.settings = settings
        self._connect = connect or default_connect
        self.detector = ChangeDetector(
            Mapping(t.mapping_dir),
            centers=t.accounting_centers,
            price_center=t.price_center,
            change_query=t.change_query,
        )
        self._con: Any = None

    def close(self, seconds: float = CLOSE_SECONDS) -> None:
        """Close the database connection (the next tick opens a new one), waiting at most `seconds`
        (a close over a cut server attachment can block for good: see close_bounded)."""
        from pipeline.torgsoft.connection import close_bounded

        if self._con is not None:
            close_bounded(self._con, seconds)
            self._con = None

    def _connection(self) -> Any:
        if self._con is None:
            con = self._connect(self.settings)
            try:
                self.detector.check(con)
            except BaseException:
                with contextlib.suppress(Exception):
                    con.close()
                raise
            self._con = con
        return self._con

    def tick(
        self, *, journal: Any, state: Any, client: Any = None, should_stop: StopCheck = never_stop
    ) -> StockResult:
        """Detect, update the record, push (see the module docstring). Raises SatuAuthError like the
        push; an unreachable database is raised as DatabaseUnavailable (the next tick reconnects)."""
        started = time.monotonic()
        result = StockResult(mode=self.detector.mode)
        if (
            not self.settings.satu.push
            or self.settings.torgsoft.source != "database"  # a TSGoods.trs export: no database to watch
            or (client is None and not self.settings.secret("satu.token_env", required=False))
        ):
            result.skipped = True  # the exchange's push journals why; a minute's tick stays quiet
            return result
        try:
            det = self.detector.detect(self._connection(), _cursor(state))
        except DatabaseUnavailable:
            self.close(1.0)  # most likely gone: do not wait for it
            raise
        result.read, result.candidates = det.read, len(det.levels)
        changes = self._plan(state, det)
        self._record(state, det, changes, result)
        if changes:
            self._push(state, journal, client, changes, det, result, should_stop)
        result.seconds = round(time.monotonic() - started, 3)
        state.put(NAMESPACE, "last", {"ts": time.time(), **result.counts()})
        return result

    def _plan(self, state: Any, det: Detection) -> list[Change]:
        """The changes the candidates make, their records read 500 at a time (never the whole record:
        a first tick compares every good)."""
        f = self.settings.feed
        changes: list[Change] = []
        for start in range(0, len(det.levels), 500):
            chunk = det.levels[start : start + 500]
            keys = [level.offer_id for level in chunk]
            records = state.get_many(feed_offers.NAMESPACE, keys)
            hidden_all = state.get_many(HIDDEN_NS, keys)
            for level in chunk:
                raw, raw_hidden = records.get(level.offer_id), hidden_all.get(level.offer_id)
                change = plan_change(
                    level,
                    FeedOffer.from_record(raw) if isinstance(raw, dict) else None,
                    FeedOffer.from_record(raw_hidden) if isinstance(raw_hidden, dict) else None,
                    zero_stock=f.zero_stock,
                    only_in_stock=f.only_in_stock,
                )
                if change is not None:
                    changes.append(change)
        return changes

    def _record(self, state: Any, det: Detection, changes: list[Change], result: StockResult) -> None:
        """Write the record changes and then the detector's memory (the record is the effect)."""
        now = time.time()
        if not changes:  # an idle tick: no write transaction (and no fsync) but the cursor's
            if det.mode == "query" and det.cursor is not None:
                state.put(NAMESPACE, "cursor", det.cursor.isoformat())
            self.detector.commit(det)
            return
        with state.atomic():
            feed_offers.put_watched(
                state,
                [(c.offer_id, c.offer) for c in changes if not c.hide],
                [c.offer_id for c in changes if c.hide],
                at=now,
            )
            for c in changes:
                if c.hide:
                    state.put(HIDDEN_NS, c.offer_id, c.offer.record())
                elif c.restored:
                    state.delete(HIDDEN_NS, c.offer_id)
            if det.mode == "query" and det.cursor is not None:
                state.put(NAMESPACE, "cursor", det.cursor.isoformat())
        self.detector.commit(det)
        result.updated = sum(not c.hide for c in changes)
        result.hidden = sum(c.hide for c in changes)
        result.restored = sum(c.restored for c in changes)

    def _push(
        self,
        state: Any,
        journal: Any,
        client: Any,
        changes: list[Change],
        det: Detection,
        result: StockResult,
        should_stop: StopCheck,
    ) -> None:
        from pipeline.satu.client import SatuClient
        from pipeline.satu.push_offers import push_offers

        own = client is None
        client = client or SatuClient.from_settings(self.settings)
        try:
            pushed = push_offers(
                self.settings,
                [c.offer_id for c in changes],
                journal=journal,
                state=state,
                client=client,
                stage=STAGE,
                should_stop=should_stop,
            )
        finally:
            if own:
                client.close()
        for name in ("sent", "accepted", "rejected", "requests", "outbox", "interrupted"):
            setattr(result, name, getattr(pushed, name))
        result.ok = pushed.ok
        if det.mode == "query":
            ids = {c.offer_id for c in changes}
            changed = [lv.changed_at for lv in det.levels if lv.offer_id in ids and lv.changed_at]
            if changed and pushed.accepted and not det.full:
                result.latency_s = round(max(0.0, time.time() - min(changed).timestamp()), 3)
        journal.event(
            STAGE,
            f"stock watcher: {result.updated} offers changed, {result.hidden} hidden, "
            f"{result.accepted}/{result.sent} acknowledged by Satu",
            level="info" if result.ok else "warning",
            mode=det.mode,
            read=result.read,
            updated=result.updated,
            hidden=result.hidden,
            sent=result.sent,
            accepted=result.accepted,
            latency_s=result.latency_s,
        )


def watch_loop(
    settings: Any,
    *,
    interval: float,
    stop_event: Any,
    wake_event: Any,
    should_stop: StopCheck = never_stop,
) -> None:
    """The watcher in the service: a tick at once, then every `interval` seconds (sooner when
    `wake_event` is set: an imported order reserved stock), until `stop_event` is set.

    A failing tick is journaled once per streak (not every minute) and the loop goes on; a recovered
    tick says so. The loop takes no run lock: a long exchange or a manual run never delays it.
    """
    from pipeline.journal import Journal
    from pipeline.state import State

    journal, state = Journal.from_settings(settings), State.from_settings(settings)
    watcher = StockWatcher(settings)
    failing = ""
    try:
        while not stop_event.is_set():
            wake_event.clear()
            # A run id per tick (the control room shows the last one), on the one journal: a Journal per
            # tick would register a logger per minute for the life of the process.
            journal.run_id = uuid.uuid4().hex[:12]
            try:
                watcher.tick(journal=journal, state=state, should_stop=should_stop)
                if failing:
                    journal.event(STAGE, "stock watcher works again")
                failing = ""
            except Exception as exc:  # noqa: BLE001 - the loop must outlive a bad tick; journaled by type
                text = f"{type(exc).__name__}: {exc}"
                if text != failing:
                    journal.event(STAGE, f"stock watcher tick failed: {text}", "error")
                failing = text
            deadline = time.monotonic() + interval
            while not stop_event.is_set() and not wake_event.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                stop_event.wait(min(left, 0.5))
    finally:
        watcher.close()
        journal.close()
        state.close()
