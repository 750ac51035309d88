"""`categories list`: the Torgsoft sections and the Satu portal categories they go to."""

from __future__ import annotations

import json

import click

from pipeline.cli import AppContext, pass_app


@click.group("categories")
def categories() -> None:
    """Satu portal categories of the sections ([feed] category_map)."""


@categories.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable list")
@pass_app
def list_cmd(app: AppContext, as_json: bool) -> None:
    """Every section with its Satu portal id (direct or inherited) and how many offers it carries."""
    from pipeline.feed.categories import section_rows
    from pipeline.state import State

    state = State.from_settings(app.settings)
    try:
        rows = section_rows(app.settings, state)
    finally:
        state.close()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], ensure_ascii=False))
        return
    for r in rows:
        portal = f"{r.portal_id} ({r.portal_source})" if r.portal_id else "— no Satu category"
        label = f" {r.portal_name}" if r.portal_name else ""
        click.echo(f"{r.section_id:>8}  {r.path}  →  {portal}{label}  [{r.offers} offers]")
    unmapped = sum(r.offers for r in rows if not r.portal_id)
    total = sum(r.offers for r in rows)
    click.echo(f"{len(rows)} sections, {total} offers; {unmapped} offers without a Satu category")


COMMANDS = [categories]
