"""`orders fetch|import|watch`: Satu orders → inbox files → Torgsoft (database or order files)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

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


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM (and SIGHUP) set `stop`: the current orders are finished or rolled back, every
    claimed file goes back to the inbox. A second signal stops at once (KeyboardInterrupt; the
    transaction is rolled back and the claim given back). The database connection keeps these handlers
    (`torgsoft.connection.keep_signal_handlers`), so the client library cannot shut it down first."""

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        # Only a flag and a write here: a handler must not take locks the interrupted code may hold.
        os.write(2, f"\n{signal.Signals(signum).name}: finishing the current order, then stopping\n".encode())

    previous = []
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous.append((sig, signal.signal(sig, handler)))
    try:
        yield
    finally:
        for sig, old in previous:
            signal.signal(sig, old)


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
    stop = threading.Event()
    with _stop_on_signals(stop):
        result = inbox.run(settings, journal=journal, state=state, should_stop=stop.is_set)
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
    settings, journal, state = _stage(app)
    stop = threading.Event()
    with _stop_on_signals(stop):
        _watch(settings, journal, state, stop, fetch_every)


def _watch(settings: Any, journal: Any, state: Any, stop: threading.Event, fetch_every: float) -> None:
    """The watcher (and, with --fetch-every, a downloader thread) until `stop` is set."""
    from pipeline.orders import inbox

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
    total = inbox.watch(
        settings,
        journal=journal,
        state=state,
        stop_event=stop,
        on_pass=lambda r: click.echo(f"Orders: {r.summary()}"),
        on_start=lambda root: click.echo(f"Watching {root} (Ctrl+C to stop)"),
    )
    click.echo(f"Stopped. Total: {total.summary()}")
    if total.abandoned:
        click.echo(
            "An import worker got no answer from the database and was left behind (see `log`); the "
            "watcher stopped so that it can be started afresh (the service manager restarts it).",
            err=True,
        )
        raise SystemExit(1)


@orders.command("reconcile")
@click.option(
    "--days",
    type=click.IntRange(1, 365),
    default=None,
    help="look at orders created or modified in the last N days [default: orders.reconcile_days]",
)
@click.option("--fix", is_flag=True, help="download the missing orders into the inbox")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_app
@locked("orders reconcile")
def reconcile_cmd(app: AppContext, days: int | None, fix: bool, as_json: bool) -> None:
    """List Satu orders of the last days that are neither in the inbox nor in Torgsoft (exit 1 if any
    is left missing); --fix downloads them into the inbox for the importer."""
    import json

    from pipeline.orders import reconcile

    settings, journal, state = _stage(app)
    try:
        result = reconcile.run(settings, journal=journal, state=state, days=days, fix=fix)
    finally:
        journal.close()
        state.close()
    if as_json:
        out = {**result.counts(), "missing": result.missing, "fixed": result.fixed, "errors": result.errors}
        click.echo(json.dumps({**out, "ok": result.ok}, ensure_ascii=False))
    else:
        click.echo(f"Reconciled: {result.summary()}")
        for problem in result.problems:
            click.echo(problem, err=True)
        if result.missing and not fix:
            click.echo("Run `orders reconcile --fix` to download them into the inbox.", err=True)
    if not result.ok:
        raise SystemExit(1)


COMMANDS = [orders]
