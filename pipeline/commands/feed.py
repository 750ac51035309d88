"""`feed` and `check-feed`: build the Satu.kz YML feed, and validate any feed file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.cli import AppContext, pass_app
from pipeline.feed.result import FeedResult
from pipeline.feed.rules import NAME_MAX
from pipeline.lock import locked


def _print_counts(r: FeedResult) -> None:
    click.echo(
        f"Offers: {r.offers}   hidden (no stock): {r.hidden}   awaiting: {r.awaiting}   "
        f"sections: {r.categories}   products read: {r.products}"
    )
    reasons = ", ".join(f"{k} {v}" for k, v in r.skip_reasons.items())
    click.echo("Skipped: " + (reasons or "none"))
    if r.pictures_dropped or r.pictures_missing or r.without_photos:
        click.echo(
            f"Pictures: {r.pictures_dropped} over the limit of 10 dropped, "
            f"{r.pictures_missing} without a published URL left out; {r.without_photos} offers without any photo"
        )
    if r.pictures_private:
        click.echo(
            f"Pictures on a loopback/private host Satu cannot reach: {r.pictures_private} "
            "(see [publish] public_base_url, allow_private_urls)"
        )
    if r.pictures_invalid:
        click.echo(
            f"Photos left out as no usable URL (several joined in one field, or not http(s)): {r.pictures_invalid}"
        )
    if r.names_truncated or r.articles_changed:
        click.echo(
            f"Names cut to {NAME_MAX} chars: {r.names_truncated}; "
            f"long articles cut/omitted: {r.articles_changed}"
        )
    if r.params_cut or r.group_ids_dropped:
        click.echo(
            f"Param values cut to 255 chars: {r.params_cut}; "
            f"group ids outside 1..999999999 left out: {r.group_ids_dropped}"
        )
    if r.vendors_omitted:
        click.echo(f"Brands left out ([feed] vendor): {r.vendors_omitted} offers without <vendor>")
    if r.links_stripped:
        click.echo(
            f"Description links to other sites taken out (text kept): {r.links_stripped} "
            "(see [feed] allowed_link_hosts)"
        )
    if r.countries_unknown:
        values = ", ".join(f"{v!r} ({n})" for v, n in list(r.countries_unknown.items())[:10])
        click.echo(f"Countries not in Satu's dictionary (written unchanged): {values}")
    if r.without_portal_category:
        click.echo(
            f"Without a Satu category: {r.without_portal_category} offers "
            "(Satu guesses them from the name; see [feed] category_map and `categories list`)"
        )
    for p in r.section_problems:
        click.echo(f"Section problem: {p}")


def _print_diff(r: FeedResult) -> None:
    d = r.diff
    if d is None:
        return
    if d.get("previous") or r.dry_run:
        click.echo(
            f"Compared with the last feed ({d['previous']} offers): +{d['added']} added, "
            f"-{d['removed']} removed, {d['price_changed']} price changed, "
            f"{d['stock_changed']} stock changed"
        )
    if r.dry_run:
        for kind, ids in d["samples"].items():
            if ids:
                click.echo(f"  {kind}: {', '.join(ids)}{' …' if len(ids) >= 20 else ''}")


def _print_outcome(r: FeedResult) -> None:
    for p in r.problems[:50]:
        click.echo(f"Problem: {p}", err=True)
    if len(r.problems) > 50:
        click.echo(f"… and {len(r.problems) - 50} more problems", err=True)
    if r.stopped:
        click.echo(r.stopped, err=True)
    if r.interrupted:
        click.echo("Stopped on request; the last good feed stays in place.", err=True)
    if r.written:
        click.echo(f"Written: {r.output}" + (f" (+ {', '.join(r.groups_files)})" if r.groups_files else ""))
    elif r.dry_run and r.ok:
        click.echo("Dry run: nothing written.")
    elif not r.ok:
        click.echo("The feed was NOT replaced; the last good feed stays in place.", err=True)


def _print_summary(result: FeedResult) -> None:
    _print_counts(result)
    _print_diff(result)
    _print_outcome(result)


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
@click.option("--json", "as_json", is_flag=True, help="machine-readable list of errors and warnings")
@click.option("--strict", is_flag=True, help="treat warnings as errors (exit 1 on any)")
def check_feed_cmd(path: Path, as_json: bool, strict: bool) -> None:
    """Validate any YML feed against the Satu dialect; list every error and warning with its line.

    Exit 1 when Satu would refuse or mangle something (errors); warnings (unknown tags, a missing shop
    name, …) count only with --strict."""
    from pipeline.feed.validate import check_feed

    report = check_feed(path)
    errors, warnings = report.errors, report.warnings
    failed = bool(errors) or (strict and bool(warnings))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "file": str(path),
                    "ok": not failed,
                    "offers": report.offers,
                    "categories": report.categories,
                    "truncated": report.truncated,
                    "errors": [p.as_dict() for p in errors],
                    "warnings": [p.as_dict() for p in warnings],
                    "problems": [p.as_dict() for p in report.problems or []],
                },
                ensure_ascii=False,
            )
        )
    else:
        for p in report.problems or []:
            click.echo(f"{path}:{p}")
        if report.truncated:
            click.echo("… more problems were not listed (limit reached)")
        verdict = "OK" if not failed else f"{len(errors)} error(s)"
        click.echo(
            f"{report.offers} offers, {report.categories} categories: {verdict}"
            + (f", {len(warnings)} warning(s)" if warnings else "")
        )
    if failed:
        click.get_current_context().exit(1)


COMMANDS = [feed, check_feed_cmd]
