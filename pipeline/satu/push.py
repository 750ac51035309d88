"""Fast stock/price/presence pushes to Satu, periodic full re-assertion, reconciliation, import by URL.

Satu pulls the feed only every few hours; stock that lags behind the shop means overselling. After
each catalog run this stage compares what the feed stage recorded (the `feed.offers` contract,
`pipeline.contracts.feed_offers`: price, quantity, presence per offer id) with what Satu last *acknowledged* (namespace `satu.acked`) and sends only the differences through
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
from typing import Any

from pipeline.contracts import feed_offers
from pipeline.errors import Problem, RetryableError, SettingsError
from pipeline.satu.api import MAX_BATCH, import_errors, import_finished
from pipeline.satu.budget import RequestBudget
from pipeline.satu.client import SatuApiError, SatuAuthError, SatuClient
from pipeline.satu.import_gate import ACKED_NS, IMPORT_NS, import_too_soon, missing_on_satu
from pipeline.satu.offer_state import (  # noqa: F401 (desired_state, to_item: public here too)
    _price,
    _quantity,
    _same,
    _sold_out_first,
    desired_state,
    gone_state,
    to_item,
)
from pipeline.stage import ResultBase, StopCheck, never_stop

STAGE = "push"
FEED_NS = feed_offers.NAMESPACE  # written by the feed stage (see the contract)
META_NS = "satu.push"
OUTBOX_KIND = "satu.product"
#: Presence values the push may send (the feed record uses the first three).
PRESENCES = ("available", "not_available", "order", "waiting")


@dataclass
class PushResult(ResultBase):
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
    interrupted: bool = False
    ok: bool = True
    #: why items were not accepted, each reason once, with the setting to check (for the console)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        """Note a reason once."""
        if text not in self.problems:
            self.problems.append(text)


@dataclass
class ReconcileResult(ResultBase):
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
class ImportResult(ResultBase):
    """The outcome of an import by URL."""

    import_id: str | None = None
    status: str = ""
    created: int = 0
    updated: int = 0
    errors: int = 0
    ok: bool = True


# --- pure mapping: see pipeline.satu.offer_state ------------------------------------------------------


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
    settings: Any,
    *,
    journal: Any,
    state: Any,
    full: bool = False,
    client: SatuClient | None = None,
    should_stop: StopCheck = never_stop,
) -> PushResult:
    """Push stock/price/presence changes (or, when `full` or due, everything) to Satu.

    `client` may be given (tests, benchmarks); otherwise one is made from `[satu]`. Raises
    SatuAuthError when the token is refused (after journaling it); Satu being unreachable is not an
    exception: the unsent items stay queued and `ok` is False. `should_stop` is asked before each batch:
    a stop ends the run with what was acknowledged saved (the rest is computed afresh next run).
    """
    result = PushResult()
    desired = _desired_or_skip(settings, journal, state, client)
    if desired is None:
        result.skipped = True
        return result
    acked = dict(state.items(ACKED_NS))
    now = time.time()
    result.full = full or _full_due(settings, state, now)
    ordered = _plan(settings, journal, state, desired, acked, full=full, result=result)
    own_client = client is None
    client = client or SatuClient.from_settings(settings)
    client.budget = client.budget or RequestBudget.from_settings(settings, state)
    try:
        aborted = _send_all(client, ordered, state, journal, result, now, should_stop)
    finally:
        if own_client:
            client.close()
    if result.full and not aborted and not result.interrupted:
        state.put(META_NS, "last_full", now)
    result.outbox = state.outbox_count(OUTBOX_KIND)
    result.ok = result.ok and not aborted and result.rejected == 0
    journal.event(
        STAGE,
        f"pushed {result.accepted}/{result.sent} updates"
        f"{' (full re-assertion)' if result.full else ''} in {result.requests} requests; "
        f"{result.rejected} refused, {result.unsent} unsent, {result.outbox} queued"
        + ("; stopped on request" if result.interrupted else ""),
        level="info" if result.ok else "warning",
        changed=result.changed,
        gone=result.gone,
    )
    return result


def _desired_or_skip(
    settings: Any, journal: Any, state: Any, client: SatuClient | None
) -> dict[str, dict[str, Any]] | None:
    """What the catalog wants on Satu, or None (journaled) when there is nothing the push can do."""
    if not settings.satu.push:
        journal.event(STAGE, "API push disabled ([satu] push = false)")
        return None
    if client is None and not settings.secret("satu.token_env", required=False):
        journal.event(
            STAGE,
            f"no Satu API token (environment variable {settings.satu.token_env} is not set); nothing pushed",
            level="warning",
        )
        return None
    desired = {k: desired_state(v) for k, v in feed_offers.items(state)}
    if not desired:
        journal.event(STAGE, "no catalog record yet (run the feed first); nothing pushed", level="warning")
        return None
    return desired


def _gone(
    settings: Any, journal: Any, state: Any, desired: dict, acked: dict, *, full: bool, result: PushResult
) -> dict:
    """Offers that left the catalog, to push as not available (none when too many left at once): those
    Satu acknowledged, and those that left the feed before any push of theirs was acknowledged (Satu
    imported them with the feed and would keep them on sale)."""
    gone = {k: gone_state(v) for k, v in acked.items() if k not in desired and not v.get("gone")}
    for key, offer in feed_offers.left_items(state):
        if key not in desired and key not in acked:
            gone[key] = gone_state(desired_state(offer))
    known = max(len(acked), len(desired) + len(gone))
    limit = settings.feed.max_drop_percent / 100 * known
    if gone and len(gone) > limit and known >= 20:
        journal.event(
            STAGE,
            f"{len(gone)} of {known} products left the catalog at once; not marking them "
            "unavailable (check the catalog run; `push --full` after a deliberate clean-up)",
            level="error",
            gone=len(gone),
        )
        if not full:
            result.ok = False
            return {}
    return gone


def _plan(
    settings: Any, journal: Any, state: Any, desired: dict, acked: dict, *, full: bool, result: PushResult
) -> list[tuple[str, dict[str, Any]]]:
    """Everything to send this run (changes, gone offers, due outbox items, the full re-assertion),
    sold-out first."""
    to_send = {key: want for key, want in desired.items() if not _same(acked.get(key), want)}
    result.changed = len(to_send)
    gone = _gone(settings, journal, state, desired, acked, full=full, result=result)
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
    return sorted(to_send.items(), key=_sold_out_first)


def _send_all(
    client: SatuClient,
    ordered: list[tuple[str, dict[str, Any]]],
    state: Any,
    journal: Any,
    result: PushResult,
    now: float,
    should_stop: StopCheck,
) -> bool:
    """Send in batches of 100; True when Satu stayed unreachable (the rest is queued)."""
    for start in range(0, len(ordered), MAX_BATCH):
        if should_stop():
            result.interrupted = True
            return False
        res = send_batch(
            client, current(state, ordered[start : start + MAX_BATCH]), state, journal, result, now
        )
        if res.retryable:
            queue_unreachable(ordered[start + MAX_BATCH :], res, state, journal, result)
            error = next(iter(res.errors.values()), "no answer")
            result.problem(
                f"Satu unreachable at {client.base_url}: {error} — check satu.base_url and the network "
                "(the updates are queued for the next run)"
            )
            return True
    return False


def current(state: Any, batch: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The batch with each offer's state as the record has it now (gone when it left the record): a long
    push (a full re-assertion under the request budget) never sends what the stock watcher changed since."""
    fresh = []
    for key, planned in batch:
        raw = state.get(FEED_NS, key)
        offer = feed_offers.FeedOffer.from_record(raw) if isinstance(raw, dict) else None
        fresh.append((key, desired_state(offer) if offer is not None else gone_state(planned)))
    return fresh


def send_batch(
    client: SatuClient,
    batch: list[tuple[str, dict[str, Any]]],
    state: Any,
    journal: Any,
    result: PushResult,
    now: float,
) -> Any:
    """One `edit_by_external_id` call; acknowledged items saved, the others queued, in one transaction."""
    try:
        res = client.edit_products([to_item(k, st) for k, st in batch])
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
        feed_offers.forget_left(state, [k for k, st in batch if k in accepted and st.get("gone")])
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
    for refusal in res.batch_errors:
        hint = f" — no API at {client.base_url}: check satu.base_url" if refusal.status == 404 else ""
        result.problem(f"Satu refused a whole batch (HTTP {refusal.status}): {refusal.message}{hint}")
    refused = {k: e for k, e in res.errors.items() if not res.retryable}
    result.rejected += len(refused)
    _journal_refusals(journal, refused)
    return res


def queue_unreachable(
    rest: list[tuple[str, dict[str, Any]]], res: Any, state: Any, journal: Any, result: PushResult
) -> None:
    """Satu stayed unreachable through every retry: queue the rest and stop for this run."""
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
    desired = {k: desired_state(v) for k, v in feed_offers.items(state)}
    own_client = client is None
    client = client or SatuClient.from_settings(settings)
    try:
        repairs = _compare(client, desired, result)
        _journal_differences(journal, result)
        if fix and repairs:
            _repair(client, repairs, desired, state, journal, result)
        if fix and result.missing and feed_url:
            _import_missing(client, feed_url, journal, result)
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


def _differs(p: dict[str, Any], want: dict[str, Any], ext: str, result: ReconcileResult) -> bool:
    """Note in `result` how Satu's product `p` differs from the catalog's `want`; True when it does."""
    bad = False
    have_price = _price(p.get("price"))
    if want["price"] is not None and (have_price is None or format(have_price, "f") != want["price"]):
        result.price.append(ext)
        bad = True
    have_qty = p.get("quantity_in_stock")
    if have_qty is None or _quantity(have_qty) != want["quantity_in_stock"]:
        result.stock.append(ext)
        bad = True
    if p.get("presence") != want["presence"]:
        result.presence.append(ext)
        bad = True
    return bad


def _compare(client: SatuClient, desired: dict, result: ReconcileResult) -> dict[str, dict[str, Any]]:
    """Walk Satu's products; returns the repairs to make (extra products: not available, zero stock)."""
    repairs: dict[str, dict[str, Any]] = {}
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
        elif _differs(p, want, ext, result):
            repairs[ext] = want
    result.missing = sorted(set(desired) - seen, key=lambda k: (len(k), k))
    return repairs


def _journal_differences(journal: Any, result: ReconcileResult) -> None:
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


def _repair(
    client: SatuClient, repairs: dict, desired: dict, state: Any, journal: Any, result: ReconcileResult
) -> None:
    res = client.edit_products([to_item(k, st) for k, st in repairs.items()])
    now = time.time()
    with state.atomic():
        for key in res.processed_ids:
            if key in desired:
                state.put(ACKED_NS, key, {**repairs[key], "ts": now})
        state.outbox_done(OUTBOX_KIND, res.processed_ids)
    result.fixed = len(res.processed_ids)
    result.fix_failed = len(res.errors)
    for key, err in res.errors.items():
        journal.event("reconcile", f"repair refused: {err}", level="warning", product_id=key)


def _import_missing(client: SatuClient, url: str, journal: Any, result: ReconcileResult) -> None:
    try:
        result.import_id = client.import_url(url)
        journal.event(
            "reconcile",
            f"asked Satu to import the feed for {len(result.missing)} missing product(s)",
            import_id=result.import_id,
        )
    except SatuApiError as exc:
        journal.event("reconcile", f"could not start an import: {exc.message}", level="warning")


# --- import by URL ----------------------------------------------------------------------------------------


def feed_url(settings: Any) -> str:
    """Where Satu can fetch the published feed (built by the publish stage); "" while
    `[publish] public_base_url` is not set."""
    from pipeline.publish.stage import feed_url as published_at

    return published_at(settings)


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
    if not feed_url:
        raise SettingsError(
            Problem(
                "publish.public_base_url",
                "is empty: Satu has no URL to import the feed from",
                "set the public https:// address at which publish.remote_dir is served (or pass --url)",
            )
        )
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
        # Recorded at once: the start counts for [satu] import_min_hours even if the wait runs out.
        state.put(IMPORT_NS, "started", {"id": result.import_id, "ts": time.time(), "url": feed_url})
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
    """The optional hook after publishing: import the feed by URL when `[satu] import_after_publish`.

    Within `[satu] import_min_hours` of the previous start none is asked for (Satu limits starts; the
    push carries prices and stock), unless feed offers are missing on Satu (`import_gate`)."""
    if not settings.satu.import_after_publish:
        return None
    ago = import_too_soon(settings, state, time.time())
    missing = missing_on_satu(state) if ago is not None else []
    if ago is not None:
        what = f"{len(missing)} product(s) missing on Satu" if missing else "no product missing on Satu"
        journal.event("import", f"last import started {ago:.1f} h ago; {what}", product_ids=missing[:100])
        if not missing:  # within [satu] import_min_hours: not requested
            skipped = ImportResult()
            skipped.skipped = True
            return skipped
    try:
        return request_import(settings, journal=journal, state=state, feed_url=feed_url(settings), poll=poll)
    except RetryableError as exc:
        journal.event("import", f"Satu unreachable, import not requested: {exc}", level="warning")
        return ImportResult(ok=False)
