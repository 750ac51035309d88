"""`satu-sandbox`, `push` and `reconcile`: the Satu API side of the command line."""

from __future__ import annotations

import os
from pathlib import Path

import click

from pipeline.cli import AppContext, pass_app


@click.command("satu-sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (keep it on loopback)")
@click.option("--port", default=8770, show_default=True, type=click.IntRange(0, 65535), help="0 = any free port")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None,
              help="where the sandbox keeps its products, orders and imports [default: var/satu-sandbox]")
@click.option("--seed-orders", default=0, show_default=True, type=click.IntRange(0),
              help="create this many realistic orders at start")
@click.option("--seed", default=1, show_default=True, type=int, help="random seed for --seed-orders")
@click.option("--feed", "feed_file", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="load products from this YML feed file first (so orders refer to them)")
@click.option("--token", default=None, help="token to accept [default: $SATU_TOKEN (satu.token_env) if set, "
                                            "else the one saved in the state folder]")
@pass_app
def satu_sandbox(app: AppContext, host: str, port: int, state_dir: Path | None, seed_orders: int, seed: int,
                 feed_file: Path | None, token: str | None) -> None:
    """Run the local Satu sandbox (a test and demo tool that behaves like the Satu seller API)."""
    from pipeline.satu.sandbox import SandboxServer

    s = app.settings
    state_dir = state_dir or (s.base_dir / "var" / "satu-sandbox")
    env_token = os.environ.get(s.satu.token_env) if s.satu.token_env else None
    server = SandboxServer(state_dir, host=host, port=port, token=token or env_token or None)
    if feed_file is not None:
        rec = server.load_feed_file(feed_file)
        click.echo(f"Feed {feed_file}: {rec['status']}, {rec['created']} created, {rec['updated']} updated, "
                   f"{rec['with_errors_count']} with errors")
    if seed_orders:
        made = server.create_orders(seed_orders, seed=seed)
        click.echo(f"Created {len(made)} orders (ids {made[0]['id']}…{made[-1]['id']})")
    server.start()
    click.echo(f"Satu sandbox on {server.url}  (state: {state_dir})")
    if token or env_token:
        click.echo(f"Token: the value of {'--token' if token else '$' + s.satu.token_env}")
    else:
        click.echo(f"Token: {server.token}   (export {s.satu.token_env}={server.token})")
    click.echo(f"Point the exchange at it: --set satu.base_url={server.url}")
    click.echo("Control: POST /_sandbox/fail {\"count\": K, \"mode\": \"429|500|200-error|timeout\"}, "
               "POST /_sandbox/orders {\"count\": N}, GET /_sandbox/state.  Ctrl-C stops.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")


COMMANDS = [satu_sandbox]
