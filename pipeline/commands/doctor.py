"""`doctor`: check the installation (settings, database and mapping, state and journal files, inbox,
disk space, Satu token; with --online the Satu API and the publish target) and say how to fix each."""

from __future__ import annotations

import json

import click

from pipeline.cli import AppContext, pass_app
from pipeline.errors import SettingsError


@click.command("doctor")
@click.option("--online", is_flag=True, help="also try the Satu API (one call) and the publish target")
@click.option("--json", "as_json", is_flag=True, help="machine-readable report")
@pass_app
def doctor(app: AppContext, online: bool, as_json: bool) -> None:
    """Check everything the exchange needs; one line per check: OK, WARN or FAIL and the fix.
    Exit code 1 when a check failed. Changes nothing."""
    from pipeline import doctor as checks

    try:
        settings = app.settings
    except SettingsError as exc:  # the report itself says what is wrong with them
        report = checks.settings_failed(exc)
    else:
        report = checks.run(settings, online=online)
    if as_json:
        click.echo(
            json.dumps(
                {"ok": not checks.failed(report), "checks": [c.as_dict() for c in report]}, ensure_ascii=False
            )
        )
    else:
        for c in report:
            click.echo(c.line())
        click.echo(checks.summary(report))
    if checks.failed(report):
        click.get_current_context().exit(1)


COMMANDS = [doctor]
