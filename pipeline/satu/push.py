"""Fast stock/price/presence pushes to Satu, periodic full re-assertion, reconciliation, import by URL.

Satu pulls the feed only every few hours; stock that lags behind the shop means overselling. After
each catalog run this stage compares what the feed stage recorded (state namespace `feed.offers`:
`{offer_id: {"price": str, "quantity": int|str, "presence": "available|not_available|waiting", …}}`)
with what Satu last *acknowledged* (namespace `satu.acked`) and sends only the differences through
`products/edit_by_external_id`, 100 per call.

Rules that keep it safe:
- an offer is marked acknowledged only when Satu lists it in `processed_ids`, in the same SQLite
  transaction that clears its outbox entry;
- refused or unsent items go to the outbox (kind `satu.product`) and are sent again next run, always
  with the *current* catalog values (never a stale payload);
- offers that vanished from the catalog record (hidden, deleted) are pushed as not available with
  zero stock, unless so many vanish at once that it looks like a broken catalog run;
- every `[satu] full_push_hours` the stock of every product is re-sent, sold-out ones first, so one
  lost update cannot leave an oversell in place for ever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pipeline.errors import RetryableError
from pipeline.satu.api import MAX_BATCH, import_errors, import_finished, parse_price
from pipeline.satu.client import SatuApiError, SatuAuthError, SatuClient

STAGE = "push"
FEED_NS = "feed.offers"
ACKED_NS = "satu.acked"
META_NS = "satu.push"
IMPORT_NS = "satu.import"
OUTBOX_KIND = "satu.product"
#: Presence values the push may send (the feed record uses the first three).
PRESENCES = ("available", "not_available", "order", "waiting")
_CENT = Decimal("0.01")


@dataclass
class PushResult:
    """What one push run did."""

    changed: int = 0  # offers whose catalog state differs from what Satu acknowledged
    sent: int = 0  # items sent (changes + due outbox items + full re-assertion)
    accepted: int = 0  # items Satu listed in processed_ids
    rejected: int = 0  # items Satu refused (per-item errors or a refused batch)
    unsent: int = 0  # items not sent because Satu stayed unreachable
    gone: int = 0  # offers that left the catalog and were pushed as not available
    requests: int = 0
    outbox: int = 0  # items waiting in the outbox after the run
    full: bool = False
    skipped: bool = False
    ok: bool = True


@dataclass
class ReconcileResult:
    """Differences between Satu's products and the catalog record."""

    checked: int = 0
    price: list[str] = field(default_factory=list)
    stock: list[str] = field(default_factory=list)
    presence: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the catalog, not on Satu
    extra: list[str] = field(default_factory=list)  # on Satu (with an external id), not in the catalog
    fixed: int = 0
    fix_failed: int = 0
    import_id: str | None = None
    ok: bool = True

    @property
    def differences(self) -> int:
        """How many differences were found."""
        return len(self.price) + len(self.stock) + len(self.presence) + len(self.missing) + len(self.extra)


@dataclass
class ImportResult:
    """The outcome of an import by URL."""

    import_id: str | None = None
    status: str = ""
    created: int = 0
    updated: int = 0
    errors: int = 0
    ok: bool = True


# --- pure mapping ---------------------------------------------------------------------------------------


def _price(value: Any) -> Decimal | None:
    try:
        d = parse_price(value)
    except ValueError:
        return None
    return None if d is None else d.quantize(_CENT)


def _quantity(value: Any) -> int:
    """Satu takes whole units: fractional stock is floored, negative stock is zero."""
    try:
        d = Decimal(str(value).replace(",", ".")) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return 0
    return max(0, int(d))


def desired_state(record: dict[str, Any]) -> dict[str, Any]:
    """The comparable state of one offer of the feed record: price (2-decimal text), stock, presence."""
    price = _price(record.get("price"))
    presence = record.get("presence") or "available"
    return {
        "price": None if price is None else format(price, "f"),
        "quantity_in_stock": _quantity(record.get("quantity")),
        "presence": presence,
    }


def gone_state(acked: dict[str, Any]) -> dict[str, Any]:
    """The state an offer that left the catalog must have on Satu: nothing to sell."""
    return {"price": acked.get("price"), "quantity_in_stock": 0, "presence": "not_available", "gone": True}


def _same(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    return a is not None and all(a.get(k) == b.get(k) for k in ("price", "quantity_in_stock", "presence"))


def to_item(offer_id: str, state: dict[str, Any]) -> dict[str, Any]:
    """The `edit_by_external_id` item for a desired state (prices as JSON numbers)."""
    item: dict[str, Any] = {
        "id": offer_id,
        "quantity_in_stock": state["quantity_in_stock"],
        "presence": state["presence"],
        "presence_sure": True,
    }
    if state.get("price") is not None:
        d = Decimal(state["price"])
        item["price"] = int(d) if d == d.to_integral_value() else float(d)
    return item


def _sold_out_first(item: tuple[str, dict[str, Any]]) -> tuple[int, int, str]:
    key, st = item
    sold_out = st["quantity_in_stock"] == 0 or st["presence"] != "available"
    return (0 if sold_out else 1, len(key), key)


def _journal_refusals(journal: Any, refused: dict[str, str]) -> None:
    """One event per refused product, except when a whole batch shares one error (one event, all ids)."""
    by_message: dict[str, list[str]] = {}
    for key, err in refused.items():
        # "product with external_id '7' not found" and "… '8' …" are one message
        by_message.setdefault(err.replace(key, "…"), []).append(key)
    for err, keys in by_message.items():
        if len(keys) > 10:
            journal.event(
                STAGE, f"Satu refused {len(keys)} updates: {err}", level="warning", product_ids=keys
            )
        else:
            for key in keys:
                journal.event(
                    STAGE, f"Satu refused the update: {refused[key]}", level="warning", product_id=key
                )


def _full_due(settings: Any, state: Any, now: float) -> bool:
    hours = settings.satu.full_push_hours
    if hours <= 0:
        return False
    last = state.get(META_NS, "last_full")
    return last is None or now - float(last) >= hours * 3600


# --- the push ---------------------------------------------------------------------------------------------


def run(
    settings: Any, *, journal: Any, state: Any, full: bool = False, client: SatuClient | None = None
) -> PushResult:
    """Push stock/price/presence changes (or, when `full` or due, everything) to Satu.

    `client` may be given (tests, benchmarks); otherwise one is made from `[satu]`. Raises
    SatuAuthError when the token is refused (after journaling it); Satu being unreachable is not an
    exception: the unsent items stay queued and `ok` is False.
    """
    result = PushResult()
    if not settings.satu.push:
        journal.event(STAGE, "API push disabled ([satu] push = false)")
        result.skipped = True
        return result
    if client is None and not settings.secret("satu.token_env", required=False):
        journal.event(
            STAGE,
            f"no Satu API token (environment variable {settings.satu.token_env} is not set); nothing pushed",
            level="warning",
        )
        result.skipped = True
        return result
    desired = {k: desired_state(v) for k, v in state.items(FEED_NS)}
    if not desired:
        journal.event(STAGE, "no catalog record yet (run the feed first); nothing pushed", level="warning")
        result.skipped = True
        return result
    acked = dict(state.items(ACKED_NS))
    now = time.time()
    result.full = full or _full_due(settings, state, now)

    to_send: dict[str, dict[str, Any]] = {}
    for key, want in desired.items():
        if not _same(acked.get(key), want):
            to_send[key] = want
    result.changed = len(to_send)
    gone = {k: gone_state(v) for k, v in acked.items() if k not in desired and not v.get("gone")}
    limit = settings.feed.max_drop_percent / 100 * len(acked)
    if gone and len(gone) > limit and len(acked) >= 20:
        journal.event(
            STAGE,
            f"{len(gone)} of {len(acked)} products left the catalog at once; not marking them "
            "unavailable (check the catalog run; `push --full` after a deliberate clean-up)",
            level="error",
            gone=len(gone),
        )
        if not full:
            result.ok = False
            gone = {}
    to_send.update(gone)
    result.gone = len(gone)
    # Items that failed before are retried with the catalog's current values.
    for key, _payload, _attempts in state.outbox_due(OUTBOX_KIND, limit=10**9):
        if key in desired:
            to_send.setdefault(key, desired[key])
        elif key in acked:
            to_send.setdefault(key, gone_state(acked[key]))
        else:
            state.outbox_done(OUTBOX_KIND, [key])
    if result.full:
        for key, want in desired.items():
            to_send.setdefault(key, want)
        for key, was in acked.items():
            if key not in desired and was.get("gone"):
                to_send.setdefault(key, was)

    ordered = sorted(to_send.items(), key=_sold_out_first)
    own_client = client is None
    client = client or SatuClient.from_settings(settings)
    aborted = False
    try:
        for start in range(0, len(ordered), MAX_BATCH):
            batch = ordered[start : start + MAX_BATCH]
            items = [to_item(k, st) for k, st in batch]
            try:
                res = client.edit_products(items)
            except SatuAuthError as exc:
                journal.event(STAGE, str(exc), level="critical")
                raise
            result.requests += res.requests
            result.sent += len(batch)
            accepted = set(res.processed_ids)
            with state.atomic():
                for key, st in batch:
                    if key in accepted:
                        state.put(ACKED_NS, key, {**st, "ts": now})
                state.outbox_done(OUTBOX_KIND, [k for k, _ in batch if k in accepted])
                for key, st in batch:
                    if key not in accepted:
                        state.outbox_add(OUTBOX_KIND, key, to_item(key, st))
                        state.outbox_failed(
                            OUTBOX_KIND,
                            key,
                            res.errors.get(key, "not processed"),
                            base_delay=0 if res.retryable else 60,
                        )
            result.accepted += len(accepted)
            refused = {k: e for k, e in res.errors.items() if not res.retryable}
            result.rejected += len(refused)
            _journal_refusals(journal, refused)
            if res.retryable:
                # Satu stayed unreachable through every retry: queue the rest and stop for this run.
                rest = ordered[start + MAX_BATCH :]
                with state.atomic():
                    for key, st in rest:
                        state.outbox_add(OUTBOX_KIND, key, to_item(key, st))
                        state.outbox_failed(OUTBOX_KIND, key, "Satu unreachable", base_delay=0)
                result.unsent = len(res.errors) + len(rest)
                journal.event(
                    STAGE,
                    f"Satu unreachable; {result.unsent} updates queued for the next run",
                    level="error",
                    error=next(iter(res.errors.values()), ""),
                )
                aborted = True
                break
    finally:
        if own_client:
            client.close()
    if result.full and not aborted:
        state.put(META_NS, "last_full", now)
    result.outbox = state.outbox_count(OUTBOX_KIND)
    result.ok = result.ok and not aborted and result.rejected == 0
    journal.event(
        STAGE,
        f"pushed {result.accepted}/{result.sent} updates"
        f"{' (full re-assertion)' if result.full else ''} in {result.requests} requests; "
        f"{result.rejected} refused, {result.unsent} unsent, {result.outbox} queued",
        level="info" if result.ok else "warning",
        changed=result.changed,
        gone=result.gone,
    )
    return result


# --- reconciliation ---------------------------------------------------------------------------------------


def reconcile(
    settings: Any,
    *,
    journal: Any,
    state: Any,
    fix: bool = False,
    client: SatuClient | None = None,
    feed_url: str | None = None,
) -> ReconcileResult:
    """Compare Satu's products (`products/list`) with the catalog record; with `fix`, repair them.

    Price/stock/presence differences are fixed by `edit_by_external_id`; extra products (an external
    id the catalog no longer has) are set not available with zero stock (never deleted); missing
    products can only come from the feed, so `fix` asks Satu to import it (when `feed_url` is known).
    """
    result = ReconcileResult()
    desired = {k: desired_state(v) for k, v in state.items(FEED_NS)}
    own_client = client is None
    client = client or SatuClient.from_settings(settings)
    repairs: dict[str, dict[str, Any]] = {}
    try:
        seen: set[str] = set()
        for p in client.iter_products():
            ext = str(p.get("external_id") or "")
            if not ext or p.get("status") == "deleted":
                continue
            seen.add(ext)
            result.checked += 1
            want = desired.get(ext)
            if want is None:
                if p.get("presence") != "not_available" or (p.get("quantity_in_stock") or 0) > 0:
                    result.extra.append(ext)
                    repairs[ext] = {"price": None, "quantity_in_stock": 0, "presence": "not_available"}
                continue
            have_price = _price(p.get("price"))
            bad = False
            if want["price"] is not None and (have_price is None or format(have_price, "f") != want["price"]):
                result.price.append(ext)
                bad = True
            if (
                _quantity(p.get("quantity_in_stock")) != want["quantity_in_stock"]
                or p.get("quantity_in_stock") is None
            ):
                result.stock.append(ext)
                bad = True
            if p.get("presence") != want["presence"]:
                result.presence.append(ext)
                bad = True
            if bad:
                repairs[ext] = want
        result.missing = sorted(set(desired) - seen, key=lambda k: (len(k), k))
        for kind in ("price", "stock", "presence", "extra", "missing"):
            ids = getattr(result, kind)
            if ids:
                journal.event(
                    "reconcile",
                    f"{len(ids)} product(s) differ in {kind}",
                    level="warning",
                    kind=kind,
                    ids=ids[:200],
                )
        if fix and repairs:
            res = client.edit_products([to_item(k, st) for k, st in repairs.items()])
            now = time.time()
            with state.atomic():
                for key in res.processed_ids:
                    st = repairs[key]
                    if key in desired:
                        state.put(ACKED_NS, key, {**st, "ts": now})
                state.outbox_done(OUTBOX_KIND, res.processed_ids)
            result.fixed = len(res.processed_ids)
            result.fix_failed = len(res.errors)
            for key, err in res.errors.items():
                journal.event("reconcile", f"repair refused: {err}", level="warning", product_id=key)
        if fix and result.missing and feed_url:
            try:
                result.import_id = client.import_url(feed_url)
                journal.event(
                    "reconcile",
                    f"asked Satu to import the feed for {len(result.missing)} missing product(s)",
                    import_id=result.import_id,
                )
            except SatuApiError as exc:
                journal.event("reconcile", f"could not start an import: {exc.message}", level="warning")
    finally:
        if own_client:
            client.close()
    result.ok = result.differences == 0 or (
        fix and result.fix_failed == 0 and (not result.missing or result.import_id is not None)
    )
    journal.event(
        "reconcile",
        f"checked {result.checked} products: {result.differences} differences"
        + (f", {result.fixed} fixed" if fix else ""),
        level="info" if result.ok else "warning",
    )
    return result


# --- import by URL ----------------------------------------------------------------------------------------


def feed_url(settings: Any) -> str:
    """Where Satu can fetch the published feed: `[publish] public_base_url` + the feed's file name."""
    return settings.publish.public_base_url.rstrip("/") + "/" + settings.feed.output.name


def request_import(
    settings: Any,
    *,
    journal: Any,
    state: Any,
    feed_url: str,
    poll: float = 5.0,
    timeout: float = 900.0,
    client: SatuClient | None = None,
    **opts: Any,
) -> ImportResult:
    """Ask Satu to import the feed now and poll until the import is final.

    PARTIAL results and every per-item error go to the journal with the product id. Another import
    running is not an error of ours: the result says so (`ok` False) and the next run tries again.
    """
    result = ImportResult()
    own_client = client is None
    client = client or SatuClient.from_settings(settings)
    try:
        try:
            result.import_id = client.import_url(feed_url, **opts)
        except SatuApiError as exc:
            journal.event("import", f"Satu did not start the import: {exc.message}", level="warning")
            result.ok = False
            return result
        journal.event("import", f"import {result.import_id} of {feed_url} started")
        try:
            status = client.wait_import(result.import_id, poll=poll, timeout=timeout)
        except RetryableError as exc:
            journal.event("import", str(exc), level="warning", import_id=result.import_id)
            result.ok = False
            return result
    finally:
        if own_client:
            client.close()
    result.status = import_finished(status) or ""
    result.created = int(status.get("created") or 0)
    result.updated = int(status.get("updated") or 0)
    problems = import_errors(status.get("errors"))
    result.errors = max(int(status.get("with_errors_count") or 0), len(problems))
    for p in problems:
        journal.event(
            "import",
            f"import error: {p.message}",
            level="warning",
            product_id=p.product_id,
            import_id=result.import_id,
            kind=p.kind,
            code=p.code,
        )
    result.ok = result.status == "SUCCESS"
    level = {"SUCCESS": "info", "PARTIAL": "warning"}.get(result.status, "error")
    journal.event(
        "import",
        f"import {result.import_id} finished {result.status}: {result.created} created, "
        f"{result.updated} updated, {result.errors} with errors",
        level=level,
        import_id=result.import_id,
        total=status.get("total"),
    )
    if result.status in ("SUCCESS", "PARTIAL"):
        # The feed has no "awaiting" presence: the import just reset those products to not available.
        # Forget their acknowledgement so the next push sets "waiting" again.
        for key, acked in list(state.items(ACKED_NS)):
            if acked.get("presence") == "waiting":
                state.delete(ACKED_NS, key)
    state.put(
        IMPORT_NS,
        "last",
        {
            "id": result.import_id,
            "status": result.status,
            "ts": time.time(),
            "url": feed_url,
            "errors": result.errors,
        },
    )
    return result


def after_publish(settings: Any, *, journal: Any, state: Any, poll: float = 5.0) -> ImportResult | None:
    """The optional hook after publishing: import the feed by URL when `[satu] import_after_publish`."""
    if not settings.satu.import_after_publish:
        return None
    try:
        return request_import(settings, journal=journal, state=state, feed_url=feed_url(settings), poll=poll)
    except RetryableError as exc:
        journal.event("import", f"Satu unreachable, import not requested: {exc}", level="warning")
        return ImportResult(ok=False)
