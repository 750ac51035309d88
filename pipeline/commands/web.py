"""`web`: the control-room page in the foreground (Ctrl+C stops it)."""

from __future__ import annotations

import click

from pipeline.cli import AppContext, pass_app


@click.command("web")
@click.option("--host", default=None, help="address to bind [default: [web] host, 127.0.0.1]")
@click.option("--port", default=None, type=click.IntRange(0, 65535), help="port [default: [web] port, 8780]")
@pass_app
def web(app: AppContext, host: str | None, port: int | None) -> None:
    """Serve the local web page: runs, orders, products, quarantine, journal, actions."""
    from pipeline.web import make_server

    server = make_server(app.settings, host, port)
    shown = server.config.host if ":" not in server.config.host else f"[{server.config.host}]"
    click.echo(f"Web page: http://{shown}:{server.config.port}/  (Ctrl+C stops it)")
    server.run()
    if not server.started:
        raise SystemExit(1)


COMMANDS = [web]
