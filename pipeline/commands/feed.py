"""`feed` and `check-feed`: build the Satu.kz YML feed, and validate any feed file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.cli import AppContext, pass_app
from pipeline.lock import locked


def _print_summary(result) -> None:
    r = result
    click.echo(
        f"Offers: {r.offers}   hidden (no stock): {r.hidden}   awaiting: {r.awaiting}   "
        f"sections: {r.categories}   products read: {r.products}"
    )
    if r.skip_reasons:
        click.echo("Skipped: " + ", ".join(f"{k} {v}" for k, v in r.skip_reasons.items()))
    else:
        click.echo("Skipped: none")
    if r.pictures_dropped or r.pictures_missing:
        click.echo(
            f"Pictures: {r.pictures_dropped} over the limit of 10 dropped, "
            f"{r.pictures_missing} without a published URL left out"
        )
    if r.names_truncated or r.articles_changed:
        click.echo(
            f"Names cut to 100 chars: {r.names_truncated}; long articles cut/omitted: {r.articles_changed}"
        )
    for p in r.section_problems:
        click.echo(f"Section problem: {p}")
    if r.diff is not None:
        d = r.diff
        if r.diff.get("previous") or r.dry_run:
            click.echo(
                f"Compared with the last feed ({d['previous']} offers): +{d['added']} added, "
                f"-{d['removed']} removed, {d['price_changed']} price changed, "
                f"{d['stock_changed']} stock changed"
            )
        if r.dry_run:
            for kind, ids in d["samples"].items():
                if ids:
                    click.echo(f"  {kind}: {', '.join(ids)}{' …' if len(ids) >= 20 else ''}")
    for p in r.problems[:50]:
        click.echo(f"Problem: {p}", err=True)
    if len(r.problems) > 50:
        click.echo(f"… and {len(r.problems) - 50} more problems", err=True)
    if r.stopped:
        click.echo(r.stopped, err=True)
    if r.written:
        click.echo(f"Written: {r.output}" + (f" (+ {', '.join(r.groups_files)})" if r.groups_files else ""))
    elif r.dry_run and r.ok:
        click.echo("Dry run: nothing written.")
    elif not r.ok:
        click.echo("The feed was NOT replaced; the last good feed stays in place.", err=True)


@click.command("feed")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="write here instead of [feed] output",
)
@click.option(
    "--dry-run", is_flag=True, help="build and validate, show the diff against the last feed, write nothing"
)
@click.option("--force", is_flag=True, help="publish even when the mass-change guard would stop")
@click.option("--json", "as_json", is_flag=True, help="machine-readable summary")
@pass_app
@locked("feed")
def feed(app: AppContext, out: Path | None, dry_run: bool, force: bool, as_json: bool) -> None:
    """Build, validate and write the Satu.kz YML feed; print offers, hidden, awaiting, skipped per reason."""
    from pipeline import feed as feed_stage
    from pipeline.journal import Journal
    from pipeline.state import State

    s = app.settings
    journal = Journal.from_settings(s)
    state = State.from_settings(s)
    try:
        result = feed_stage.run(s, journal=journal, state=state, out=out, dry_run=dry_run, force=force)
    finally:
        state.close()
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, default=str))
    else:
        _print_summary(result)
    if not result.ok:
        click.get_current_context().exit(1)


@click.command("check-feed")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="machine-readable list of problems")
def check_feed_cmd(path: Path, as_json: bool) -> None:
    """Validate any YML feed against the Satu dialect; list every problem with its line."""
    from pipeline.feed.validate import check_feed

    report = check_feed(path)
    problems = report.problems or []
    if as_json:
        click.echo(
            json.dumps(
                {
                    "file": str(path),
                    "ok": report.ok,
                    "offers": report.offers,
                    "categories": report.categories,
                    "truncated": report.truncated,
                    "problems": [p.as_dict() for p in problems],
                },
                ensure_ascii=False,
            )
        )
    else:
        for p in problems:
            click.echo(f"{path}:{p}")
        if report.truncated:
            click.echo("… more problems were not listed (limit reached)")
        click.echo(
            f"{report.offers} offers, {report.categories} categories: "
            + ("OK" if report.ok else f"{len(problems)} problem(s)")
        )
    if not report.ok:
        click.get_current_context().exit(1)


COMMANDS = [feed, check_feed_cmd]
