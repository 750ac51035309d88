"""`orders fetch|import|watch`: Satu orders → inbox files → Torgsoft (database or order files)."""

from __future__ import annotations

import signal
import threading

import click

from pipeline.cli import AppContext, pass_app
from pipeline.lock import locked


@click.group("orders")
def orders() -> None:
    """Download Satu orders into the inbox and import them into Torgsoft."""


def _stage(app: AppContext):
    from pipeline.journal import Journal
    from pipeline.state import State

    s = app.settings
    return s, Journal.from_settings(s), State.from_settings(s)


@orders.command("fetch")
@pass_app
@locked("orders fetch")
def fetch_cmd(app: AppContext) -> None:
    """Download new and changed orders from Satu into the inbox (one JSON file per order version)."""
    from pipeline.orders import fetch

    settings, journal, state = _stage(app)
    result = fetch.run(settings, journal=journal, state=state)
    click.echo(f"Fetched: {result.summary()}")
    if not result.ok:
        raise SystemExit(1)


@orders.command("import")
@pass_app
def import_cmd(app: AppContext) -> None:
    """Import every settled file of the inbox once; damaged files go to quarantine/."""
    from pipeline.orders import inbox

    settings, journal, state = _stage(app)
    result = inbox.run(settings, journal=journal, state=state)
    click.echo(f"Orders: {result.summary()}")
    for line in result.errors[:50]:
        click.echo(f"  - {line}", err=True)
    if not result.ok:
        raise SystemExit(1)


@orders.command("watch")
@click.option(
    "--fetch-every",
    type=float,
    default=0,
    show_default=True,
    help="also download from Satu every N minutes (0 = only watch the folder)",
)
@pass_app
def watch_cmd(app: AppContext, fetch_every: float) -> None:
    """Watch the inbox and import files as they arrive (Ctrl+C to stop)."""
    from pipeline.orders import inbox

    settings, journal, state = _stage(app)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if fetch_every > 0:

        def fetcher() -> None:
            from pipeline.orders import fetch

            while not stop.is_set():
                try:
                    fetch.run(settings, journal=journal, state=state)
                except Exception as exc:  # a failed download must not stop the watcher; it is journaled
                    journal.event("orders", f"fetch failed: {exc}", "error")
                stop.wait(fetch_every * 60)

        threading.Thread(target=fetcher, daemon=True, name="orders-fetch").start()
    click.echo(f"Watching {settings.orders.inbox} (Ctrl+C to stop)")
    total = inbox.watch(
        settings,
        journal=journal,
        state=state,
        stop_event=stop,
        on_pass=lambda r: click.echo(f"Orders: {r.summary()}"),
    )
    click.echo(f"Stopped. Total: {total.summary()}")


COMMANDS = [orders]
