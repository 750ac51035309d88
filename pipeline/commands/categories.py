"""`categories list`: the Torgsoft sections and the Satu portal categories they go to."""

from __future__ import annotations

import json
from pathlib import Path

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


@categories.command("suggest")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("category-map.csv"),
    show_default=True,
    help="the suggested map to write (the CSV [feed] category_map reads)",
)
@click.option(
    "--min-score",
    type=click.IntRange(0, 100),
    default=70,
    show_default=True,
    help="below this score no portal id is proposed (the row is listed for you to fill)",
)
@click.option("--force", is_flag=True, help="replace --out if it exists")
@pass_app
def suggest_cmd(app: AppContext, file: Path, out: Path, min_score: int, force: bool) -> None:
    """Propose a category map from Satu's category list FILE (XLS/XLSX export, or CSV portal_id;name;path).

    Sections are matched by name and path; rows of the current [feed] category_map are kept as they are.
    Review the file, then set [feed] category_map to it.
    """
    from pipeline.errors import InputFileError
    from pipeline.feed import suggest
    from pipeline.feed.portal import load_category_map
    from pipeline.feed.portal_list import load_portal_list
    from pipeline.fsutil import write_atomic
    from pipeline.torgsoft.catalog import open_catalog

    if out.exists() and not force:
        raise click.UsageError(f"{out} exists; add --force to replace it (or choose another --out)")
    try:
        portal_list = load_portal_list(file)
    except InputFileError as exc:
        raise click.BadParameter(str(exc), param_hint="FILE") from None
    settings = app.settings
    current = load_category_map(settings.feed.category_map)
    with open_catalog(settings) as source:
        sections = source.sections()
    rows = suggest.suggest(sections, portal_list.entries, current, min_score)
    try:
        write_atomic(out, suggest.render_csv(rows))
    except OSError as exc:
        raise click.BadParameter(f"cannot write {out} ({exc.strerror or exc})", param_hint="--out") from None
    n = portal_list.skipped_rows
    skipped = f" ({n} row{'' if n == 1 else 's'} without an id skipped)" if n else ""
    click.echo(f"Satu categories read: {len(portal_list.entries)}{skipped}")
    click.echo(suggest.summarise(rows, sections).text(min_score))
    click.echo(
        f"Wrote {out}. Review it (lowest scores first), fill the empty portal_id cells, then set "
        f'[feed] category_map = "{out}" and check with `categories list`.'
    )


COMMANDS = [categories]
