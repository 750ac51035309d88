"""`satu-sandbox`, `push`, `reconcile`, `satu-import` and `stock`: the Satu API side of the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipeline.cli import AppContext, pass_app
from pipeline.lock import locked


@click.command("satu-sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (keep it on loopback)")
@click.option(
    "--port", default=8770, show_default=True, type=click.IntRange(0, 65535), help="0 = any free port"
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="where the sandbox keeps its products, orders and imports [default: var/satu-sandbox]",
)
@click.option(
    "--seed-orders",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="create this many realistic orders at start",
)
@click.option("--seed", default=1, show_default=True, type=int, help="random seed for --seed-orders")
@click.option(
    "--feed",
    "feed_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="load products from this YML feed file first (so orders refer to them)",
)
@click.option(
    "--token",
    default=None,
    help="token to accept [default: $SATU_TOKEN (satu.token_env) if set, "
    "else the one saved in the state folder]",
)
@click.option(
    "--appear-delay",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="seconds before imported products become visible (real Satu: 60-180)",
)
@click.option(
    "--import-min-gap",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="seconds that must pass between two import starts (Satu rate-limits them)",
)
@click.option(
    "--availability",
    type=click.Choice(["satu", "yml"]),
    default="satu",
    show_default=True,
    help='how imports read available=: satu ("false" = made to order, "" = not in stock) or yml '
    '(anything but "true" = not in stock)',
)
@pass_app
def satu_sandbox(
    app: AppContext,
    host: str,
    port: int,
    state_dir: Path | None,
    seed_orders: int,
    seed: int,
    feed_file: Path | None,
    token: str | None,
    appear_delay: float,
    import_min_gap: float,
    availability: str,
) -> None:
    """Run the local Satu sandbox (a test and demo tool that behaves like the Satu seller API)."""
    from pipeline.devtools.sandbox import SandboxServer, is_loopback_url

    s = app.settings
    state_dir = state_dir or (s.base_dir / "var" / "satu-sandbox")
    env_token = s.secret("satu.token_env", required=False)
    server = SandboxServer(
        state_dir,
        host=host,
        port=port,
        token=token or env_token or None,
        appear_delay=appear_delay,
        import_min_gap=import_min_gap,
        availability=availability,
    )
    if feed_file is not None:
        rec = server.load_feed_file(feed_file)
        click.echo(
            f"Feed {feed_file}: {rec['status']}, {rec['created']} created, {rec['updated']} updated, "
            f"{rec['with_errors_count']} with errors"
        )
    if seed_orders:
        made = server.create_orders(seed_orders, seed=seed)
        click.echo(f"Created {len(made)} orders (ids {made[0]['id']}…{made[-1]['id']})")
    server.start()
    click.echo(f"Satu sandbox on {server.url}  (state: {state_dir})")
    if not is_loopback_url(server.url):
        click.echo(
            f"Warning: listening on {host}, reachable from other machines; it is a test tool "
            "with a weak token and control endpoints without one.",
            err=True,
        )
    if token or env_token:
        click.echo(f"Token: the value of {'--token' if token else '$' + s.satu.token_env}")
    else:
        click.echo(f"Token: {server.token}   (export {s.satu.token_env}={server.token})")
    click.echo(f"Point the exchange at it: --set satu.base_url={server.url}")
    click.echo(
        'Control: POST /_sandbox/fail {"count": K, "mode": "429|500|200-error|timeout"}, '
        'POST /_sandbox/orders {"count": N}, GET /_sandbox/state (with the header X-Sandbox: 1 '
        "or the token).  Ctrl-C stops."
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")


def _stores(app: AppContext):
    from pipeline.journal import Journal
    from pipeline.state import State

    return Journal.from_settings(app.settings), State.from_settings(app.settings)


@click.command("push")
@click.option(
    "--full", is_flag=True, help="re-send stock, price and presence of every product (sold-out first)"
)
@pass_app
@locked("push")
def push(app: AppContext, full: bool) -> None:
    """Push stock/price/presence changes to Satu through the API (failed items are retried next run)."""
    from pipeline.satu.push import run

    app.settings.secret("satu.token_env")  # no token: a settings problem (exit 2), not a silent skip
    journal, state = _stores(app)
    try:
        r = run(app.settings, journal=journal, state=state, full=full)
    finally:
        journal.close()
        state.close()
    if r.skipped:
        click.echo("Nothing pushed: [satu] push = false, or no catalog record yet (run `feed` first).")
        return
    click.echo(
        f"{'Full re-assertion' if r.full else 'Changes'}: {r.changed} changed, {r.gone} left the catalog; "
        f"sent {r.sent} in {r.requests} requests, {r.accepted} accepted, {r.rejected} refused, "
        f"{r.unsent} unsent; {r.outbox} queued for the next run"
    )
    for problem in r.problems:
        click.echo(f"Problem: {problem}", err=True)
    if not r.ok:
        raise SystemExit(1)


@click.command("reconcile")
@click.option(
    "--fix", is_flag=True, help="repair the differences (and ask Satu to import the feed for missing ones)"
)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_app
@locked("reconcile")
def reconcile(app: AppContext, fix: bool, as_json: bool) -> None:
    """Compare Satu's products with the catalog: price, stock, presence, missing and extra products."""
    import json
    from dataclasses import asdict

    from pipeline.satu.push import feed_url
    from pipeline.satu.push import reconcile as do_reconcile

    journal, state = _stores(app)
    try:
        r = do_reconcile(app.settings, journal=journal, state=state, fix=fix, feed_url=feed_url(app.settings))
    finally:
        journal.close()
        state.close()
    if as_json:
        click.echo(json.dumps({**asdict(r), "differences": r.differences}, ensure_ascii=False))
    else:
        click.echo(f"Checked {r.checked} products on Satu: {r.differences} difference(s)")
        for kind in ("price", "stock", "presence", "missing", "extra"):
            ids = getattr(r, kind)
            if ids:
                more = f" … (+{len(ids) - 20})" if len(ids) > 20 else ""
                click.echo(f"  {kind:9} {len(ids):6}  {', '.join(ids[:20])}{more}")
        if fix:
            click.echo(
                f"Fixed {r.fixed}, {r.fix_failed} refused"
                + (f"; import {r.import_id} requested for missing products" if r.import_id else "")
            )
    if not r.ok:
        raise SystemExit(1)


@click.command("satu-import")
@click.option("--url", default=None, help="feed URL [default: publish.public_base_url + the feed file name]")
@pass_app
@locked("satu-import")
def satu_import(app: AppContext, url: str | None) -> None:
    """Ask Satu to import the published feed now and wait for the result."""
    from pipeline.satu.push import feed_url, request_import

    journal, state = _stores(app)
    try:
        r = request_import(app.settings, journal=journal, state=state, feed_url=url or feed_url(app.settings))
    finally:
        journal.close()
        state.close()
    click.echo(
        f"Import {r.import_id or '-'}: {r.status or 'not started'}, {r.created} created, "
        f"{r.updated} updated, {r.errors} with errors (details: `log --grep import`)"
    )
    if not r.ok:
        raise SystemExit(1)


#: The `[status]` keys that name a Satu order status.
STATUS_KEYS = ("accepted", "paid", "shipped", "delivered", "cancelled")


def unknown_status_settings(status_settings: Any, statuses: list[Any]) -> list[tuple[str, str]]:
    """`[status]` keys whose value is not among the shop's order statuses: [(dotted key, value)]."""
    known = {s.value for s in statuses}
    return [
        (f"status.{key}", value)
        for key in STATUS_KEYS
        if (value := str(getattr(status_settings, key) or "")) and value not in known
    ]


@click.group("satu")
def satu_group() -> None:
    """Look at the Satu shop itself (read-only calls)."""


@satu_group.command("options")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_app
def satu_options(app: AppContext, as_json: bool) -> None:
    """The shop's delivery options, payment options and order statuses, from Satu; checks `[status]`.

    An installer sets `[status]` and `[status] carrier` from these real values. A `[status]` setting
    that names a status the shop does not have is reported (exit 2).
    """
    import json
    from dataclasses import asdict

    from pipeline.satu.client import SatuClient

    with SatuClient.from_settings(app.settings) as client:
        lists = {
            "delivery_options": client.delivery_options(),
            "payment_options": client.payment_options(),
            "order_statuses": client.order_status_options(),
        }
    unknown = unknown_status_settings(app.settings.status, lists["order_statuses"])
    if as_json:
        out: dict[str, Any] = {k: [asdict(o) for o in v] for k, v in lists.items()}
        out["unknown_status_settings"] = [{"key": k, "value": v} for k, v in unknown]
        click.echo(json.dumps(out, ensure_ascii=False))
    else:
        for title, key in (
            ("Delivery options", "delivery_options"),
            ("Payment options", "payment_options"),
            ("Order statuses", "order_statuses"),
        ):
            click.echo(f"{title} ({len(lists[key])}):")
            for o in lists[key]:
                carrier = o.extra.get("shipping_service")
                tail = f"  carrier {carrier}" if carrier else ""
                value = f"  {o.value}" if o.value != o.id else ""
                click.echo(f"  {o.id:>10}  {o.name}{value}{' (custom)' if o.custom else ''}{tail}")
        for k, v in unknown:
            click.echo(
                f"Setting {k} = {v!r} is not a status of this shop; write one of the values listed above",
                err=True,
            )
    if unknown:
        raise SystemExit(2)


@click.command("stock")
@pass_app
def stock(app: AppContext) -> None:
    """One stock watcher tick now: stock and price changes since the last one to Satu (as `serve` does
    every [schedule] stock_seconds). Takes no run lock, like the service's watcher."""
    from pipeline.stock.watch import StockWatcher

    app.settings.secret("satu.token_env")  # no token: a settings problem (exit 2), not a silent skip
    journal, state = _stores(app)
    watcher = StockWatcher(app.settings)
    try:
        r = watcher.tick(journal=journal, state=state)
    finally:
        watcher.close()
        journal.close()
        state.close()
    if r.skipped:
        click.echo("Nothing pushed: [satu] push = false.")
        return
    click.echo(
        f"Stock watcher ({'change query' if r.mode == 'query' else 'per-good hash'}): {r.read} goods read, "
        f"{r.updated} offers changed, {r.hidden} hidden, {r.restored} back in stock; "
        f"{r.accepted}/{r.sent} acknowledged by Satu in {r.requests} requests, {r.outbox} queued"
    )
    if not r.ok:
        raise SystemExit(1)


COMMANDS = [satu_sandbox, push, reconcile, satu_import, stock, satu_group]
