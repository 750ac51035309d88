"""`serve`: the long-running service (timer jobs + live inbox watcher); `lock`: who is running now."""

from __future__ import annotations

import click

from pipeline.cli import AppContext, pass_app


@click.command("serve")
@click.option("--once", is_flag=True, help="run every job once, then exit (for cron or a quick check)")
@click.option("--no-watch", is_flag=True, help="do not watch the inbox folder live")
@pass_app
def serve(app: AppContext, once: bool, no_watch: bool) -> None:
    """Run the exchange around the clock: the catalog every [schedule] interval_minutes, orders and
    statuses every orders_minutes, the inbox watched live. SIGTERM/Ctrl+C finish the current step,
    save the state and exit with code 0."""
    from pipeline.service import Service

    code = Service(app.settings, watcher=not no_watch, echo=click.echo).run(once=once)
    click.get_current_context().exit(code)


@click.command("lock")
@pass_app
def lock(app: AppContext) -> None:
    """Show which run holds the run lock (exit 1 when one does)."""
    from pipeline.lock import holder

    info = holder(app.settings)
    if info is None:
        click.echo(f"No run in progress (lock file {app.settings.journal.lock_file}).")
        return
    click.echo(f"Running: {info.describe()}")
    click.get_current_context().exit(1)


COMMANDS = [serve, lock]
