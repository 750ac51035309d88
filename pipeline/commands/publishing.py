"""`photos`, `publish` and `sync`: getting pictures and the feed to where Satu pulls them."""

from __future__ import annotations

import json

import click

from pipeline.cli import AppContext, pass_app
from pipeline.lock import locked


def _stage_tools(app: AppContext):
    from pipeline.journal import Journal
    from pipeline.state import State

    s = app.settings
    return s, Journal.from_settings(s), State.from_settings(s)


@click.command("photos")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_app
@locked("photos")
def photos_cmd(app: AppContext, as_json: bool) -> None:
    """Resize every photo the catalog can publish (only those that changed); report unusable files."""
    from pipeline import photos

    s, journal, state = _stage_tools(app)
    r = photos.run(s, journal=journal, state=state)
    if as_json:
        click.echo(json.dumps({k: v for k, v in vars(r).items()}, ensure_ascii=False, default=str))
    else:
        click.echo(
            f"Photos: {r.processed} processed, {r.unchanged} unchanged, {r.failed} unusable, "
            f"{r.refused} refused (of {r.referenced} referenced)"
        )
        for f in r.failures[:20]:
            who = f"product {f['product_id']}" if f["product_id"] is not None else "section image"
            click.echo(f"  - {f['file']} ({who}): {f['reason']}")
        if len(r.failures) > 20:
            click.echo(f"  … and {len(r.failures) - 20} more (see `log --grep photo`)")
    if not r.ok:
        raise SystemExit(1)


@click.command("publish")
@click.option("--verify", is_flag=True, help="list the server first and re-upload whatever is missing there")
@click.option("--dry-run", is_flag=True, help="only count what would be uploaded")
@click.option("--force", is_flag=True, help="delete orphan photos even beyond the mass-change guard")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_app
@locked("publish")
def publish_cmd(app: AppContext, verify: bool, dry_run: bool, force: bool, as_json: bool) -> None:
    """Upload changed photos, then the feed atomically, to the configured target."""
    from pipeline import publish

    s, journal, state = _stage_tools(app)
    r = publish.run(
        s,
        journal=journal,
        state=state,
        verify=verify,
        dry_run=dry_run,
        force=force,
        on_retry=lambda line: click.echo(f"  … {line}", err=True),
    )
    if as_json:
        click.echo(json.dumps(vars(r), ensure_ascii=False, default=str))
    else:
        verb = "would upload" if dry_run else "uploaded"
        click.echo(
            f"Publish ({s.publish.target}): {verb} {r.photos_uploaded} photos and "
            f"{r.feed_files_uploaded} feed files, {r.unchanged} unchanged, {r.deleted} orphans deleted"
            + (f", {r.orphans_kept} orphans kept" if r.orphans_kept else "")
        )
        for e in r.errors:
            click.echo(f"  ! {e}")
        for u in r.unreachable:
            click.echo(f"  ! does not answer: {u}")
        if r.feed_published:  # only a live feed has a URL worth giving to Satu
            click.echo(f"Feed URL: {r.feed_url or NO_URL}")
        elif not dry_run:
            click.echo("The feed was not published: the previous one (if any) stays live.")
    if not r.ok:
        raise SystemExit(1)


@click.command("sync")
@click.option("--partial", is_flag=True, help="prices and stock only: no photo processing")
@click.option("--dry-run", is_flag=True, help="build locally, upload and push nothing")
@click.option("--force", is_flag=True, help="pass the mass-change guards")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_app
@locked("sync")
def sync_cmd(app: AppContext, partial: bool, dry_run: bool, force: bool, as_json: bool) -> None:
    """Run the exchange: photos → feed → publish → API pushes."""
    from pipeline import sync

    s, journal, state = _stage_tools(app)
    r = sync.run(s, journal=journal, state=state, partial=partial, dry_run=dry_run, force=force)
    if as_json:
        click.echo(json.dumps(r.as_dict(), ensure_ascii=False, default=str))
    else:
        for st in r.stages:
            line = f"{st.name:<8} {st.status:<9} {st.seconds:6.1f} s"
            click.echo(line + (f"  {st.detail}" if st.detail else ""))
        if r.feed_url:
            click.echo(f"Feed URL: {r.feed_url}")
    if not r.ok:
        raise SystemExit(1)


NO_URL = "not set — set [publish] public_base_url to the address that serves the published folder"

COMMANDS = [photos_cmd, publish_cmd, sync_cmd]
