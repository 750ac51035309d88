"""`status push [--baseline]`: order status and waybill numbers from Torgsoft back to Satu."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from pipeline.cli import AppContext, pass_app
from pipeline.lock import locked


@click.group("status")
def status() -> None:
    """Order status and waybills from Torgsoft back to Satu."""


@status.command("push")
@click.option(
    "--baseline",
    is_flag=True,
    help="record the current order states as already pushed and send nothing "
    "(done automatically on the first run)",
)
@click.option("--json", "as_json", is_flag=True, help="print the counts as one JSON line")
@pass_app
@locked("status push")
def push(app: AppContext, baseline: bool, as_json: bool) -> None:
    """Push changed order statuses and waybill numbers to Satu; retry earlier failures.

    Exit code 1 when a push failed (it stays queued and is retried on the next run).
    """
    from pipeline.journal import Journal
    from pipeline.orders.status import run
    from pipeline.state import State

    s = app.settings
    journal = Journal.from_settings(s)
    state = State.from_settings(s)
    try:
        result = run(s, journal=journal, state=state, baseline=baseline)
    finally:
        journal.close()
        state.close()
    if not s.status.enabled and not as_json:
        click.echo("Status push is off ([status] enabled = false); nothing done.")
    elif as_json:
        click.echo(json.dumps(asdict(result)))
    elif result.baseline:
        click.echo(
            f"Baseline taken: {result.baseline} Satu order(s) recorded as already pushed; nothing sent."
        )
    else:
        click.echo(
            f"{result.checked} order(s) checked, {result.changed} changed: {result.pushed} status(es) and "
            f"{result.waybills} waybill(s) confirmed by Satu, {result.failed} failed, "
            f"{result.parked} given up, {result.pending} queued for retry."
        )
    if not result.ok:
        click.get_current_context().exit(1)


COMMANDS = [status]
