"""`log`: search the journal (what happened, when, to which order or product) and prune it."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import click

from pipeline.cli import AppContext, pass_app
from pipeline.journal import LEVELS, Event, parse_when


class WhenType(click.ParamType):
    """`2h`, `3d`, `30m`, `1w`, `today`, `yesterday`, or an ISO date/time (local time when naive)."""

    name = "WHEN"

    def __init__(self, end: bool = False):
        self.end = end

    def convert(self, value, param, ctx):  # type: ignore[override]
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value), end=self.end)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def format_event(e: Event, full: bool = False) -> str:
    """One human-readable line: local time, level, stage, message, ids, run id, data.

    A traceback in the data is shown only with `full` (it follows on the next lines).
    """
    try:
        when = datetime.fromisoformat(e.ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        when = e.ts
    ids = "".join(f" {k}={v}" for k, v in (("order", e.order_id), ("product", e.product_id)) if v)
    data = dict(e.data or {})
    tb = data.pop("traceback", None)
    text = f"{when} {e.level.upper():<8} {e.stage:<12} {e.message}{ids}  [run {e.run_id}]"
    if data:
        text += " " + json.dumps(data, ensure_ascii=False, default=str)
    if tb and full:
        text += "\n    " + str(tb).rstrip().replace("\n", "\n    ")
    return text


@click.command("log")
@click.option("--grep", metavar="TEXT", help="text in the message or its data (case-insensitive)")
@click.option(
    "--level",
    type=click.Choice(list(LEVELS), case_sensitive=False),
    help="this level or worse (e.g. warning = warnings, errors, critical)",
)
@click.option("--stage", metavar="S", help="stage, e.g. feed, photos, publish, push, orders, status, service")
@click.option(
    "--since", type=WhenType(), metavar="WHEN", help="from: 2h, 30m, 3d, 1w, today, or 2026-11-27[T14:30]"
)
@click.option(
    "--until", type=WhenType(end=True), metavar="WHEN", help="to (a bare date includes the whole day)"
)
@click.option("--order", "order_id", metavar="ID", help="events about this Satu order id")
@click.option("--product", "product_id", metavar="ID", help="events about this product (Torgsoft GoodID)")
@click.option("--run", "run_id", metavar="ID", help="events of one run")
@click.option(
    "--limit",
    default=200,
    show_default=True,
    type=click.IntRange(0),
    help="show the newest N matches (0 = all)",
)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.option("--full", is_flag=True, help="also print the tracebacks recorded with errors")
@click.option(
    "--follow", "-f", is_flag=True, help="keep printing new matching events as they come (Ctrl+C stops)"
)
@click.option("--prune", is_flag=True, help="delete entries older than [journal] retention_days, then exit")
@pass_app
def log(
    app: AppContext,
    grep: str | None,
    level: str | None,
    stage: str | None,
    since: datetime | None,
    until: datetime | None,
    order_id: str | None,
    product_id: str | None,
    run_id: str | None,
    limit: int,
    as_json: bool,
    full: bool,
    follow: bool,
    prune: bool,
) -> None:
    """Search the journal. Examples: `log --level error --since 1d`, `log --order 1234`, `log --grep timeout`."""
    from pipeline.journal import Journal

    app.quiet = True  # its output is the journal itself
    s = app.settings
    journal = Journal(s.journal.path, None)  # reading needs no log file
    try:
        if prune:
            removed = journal.prune(s.journal.retention_days)
            click.echo(f"Pruned {removed} journal entries older than {s.journal.retention_days} days")
            return
        filters: dict[str, Any] = {
            "grep": grep,
            "level": level,
            "stage": stage,
            "since": since,
            "until": until,
            "order_id": order_id,
            "product_id": product_id,
            "run_id": run_id,
        }
        found, last = 0, 0
        for event in journal.search(**filters, limit=limit or None):
            found, last = found + 1, event.id
            click.echo(
                json.dumps(event.as_dict(), ensure_ascii=False, default=str)
                if as_json
                else format_event(event, full)
            )
        if not as_json and not follow:
            more = f" (the newest {limit}; --limit 0 shows all)" if limit and found == limit else ""
            click.echo(f"{found} event(s){more}", err=True)
        if follow:
            if not last:  # start after the newest event, matching or not
                newest = list(journal.search(limit=1))
                last = newest[0].id if newest else 0
            try:
                while True:
                    time.sleep(1)
                    for event in journal.search(**filters, after_id=last):
                        last = event.id
                        click.echo(
                            json.dumps(event.as_dict(), ensure_ascii=False, default=str)
                            if as_json
                            else format_event(event, full)
                        )
            except KeyboardInterrupt:
                pass
    finally:
        journal.close()


COMMANDS = [log]
