"""`web`: the control-room page in the foreground (Ctrl+C or SIGTERM stops it)."""

from __future__ import annotations

import signal
import threading

import click

from pipeline.cli import AppContext, pass_app


@click.command("web")
@click.option("--host", default=None, help="address to bind [default: [web] host, 127.0.0.1]")
@click.option(
    "--port",
    default=None,
    type=click.IntRange(0, 65535),
    help="port, 0 = any free one [default: [web] port, 8780]",
)
@pass_app
def web(app: AppContext, host: str | None, port: int | None) -> None:
    """Serve the local web page: runs, orders, products, quarantine, journal, actions."""
    from pipeline import progress
    from pipeline.web import start_in_thread

    progress.set_console(False)  # the control room's actions journal their progress; no console bars

    try:
        handle = start_in_thread(app.settings, host, port)
    except OSError as exc:
        click.echo(f"Error: {exc} (is another program using the port? try --port)", err=True)
        raise SystemExit(1) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"Web page: {handle.url}  (Ctrl+C stops it)")
    while not stop.wait(0.5) and handle.thread.is_alive():
        pass
    handle.stop()
    click.echo("Web page stopped.")


COMMANDS = [web]
