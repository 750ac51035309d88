"""`init-db`, `discover` and `catalog`: the Torgsoft side of the command line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

from pipeline.cli import AppContext, pass_app


@click.command("init-db")
@click.option(
    "--products", default=1000, show_default=True, type=click.IntRange(1), help="number of demo goods"
)
@click.option("--seed", default=1, show_default=True, type=int, help="random seed (same seed, same data)")
@click.option("--force", is_flag=True, help="replace an existing database file")
@pass_app
def init_db(app: AppContext, products: int, seed: int, force: bool) -> None:
    """Create the embedded reference database with demo data and demo photos."""
    from pipeline.devtools.demo_data import build_demo_database

    s = app.settings
    path = Path(s.torgsoft.database)
    if s.torgsoft.dsn:
        raise click.UsageError("init-db creates an embedded file; torgsoft.dsn points at a server")
    if path.exists():
        if not force:
            raise click.UsageError(f"{path} exists; add --force to replace it")
        path.unlink()
    summary = build_demo_database(
        path, s.photos.source_dir, products=products, seed=seed, shared_access=s.torgsoft.shared_access
    )
    click.echo(
        f"Created {path}: {summary.products} goods in {summary.sections} sections "
        f"(depth {summary.max_depth}), {summary.photos} photo links over {summary.image_files} "
        f"image files in {s.photos.source_dir} — {summary.seconds:.1f} s"
    )


@click.command("discover")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_app
def discover(app: AppContext, as_json: bool) -> None:
    """List the user tables and columns of the connected database (to adapt the SQL mapping)."""
    from pipeline.torgsoft.connection import connect
    from pipeline.torgsoft.schema import user_tables

    con = connect(app.settings)
    try:
        tables = user_tables(con)
    finally:
        con.close()
    if as_json:
        click.echo(json.dumps(tables, ensure_ascii=False, indent=2))
        return
    for table, columns in tables.items():
        click.echo(table)
        for name, type_text in columns:
            click.echo(f"    {name:<32} {type_text}")
    click.echo(f"{len(tables)} tables")


@click.command("catalog")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_app
def catalog(app: AppContext, as_json: bool) -> None:
    """Read the catalog through the SQL mapping (or TSGoods.trs) and print a summary."""
    from pipeline.progress import Progress
    from pipeline.torgsoft.catalog import open_catalog

    counts: Counter[str] = Counter()
    with open_catalog(app.settings) as source, Progress(None, "catalog", "product") as bar:
        sections = source.sections()
        for p in bar.counted(source.products()):
            counts["products"] += 1
            counts["hidden"] += not p.display_on_site
            counts["deleted"] += p.deleted
            counts["in_stock"] += p.available_qty > 0
            counts["with_photos"] += bool(p.photos)
            counts["photos"] += len(p.photos)
            counts["wholesale"] += bool(p.wholesale_price and p.wholesale_min_qty)
        # A file source (TSGoods.trs) skips broken rows and lists them; the database reader has none.
        problems: list[tuple[int, str]] = list(getattr(source, "problems", []))
    summary = {
        "sections": len(sections),
        **{
            k: counts[k]
            for k in ("products", "in_stock", "with_photos", "photos", "wholesale", "hidden", "deleted")
        },
        "skipped": len(problems),
    }
    if as_json:
        click.echo(
            json.dumps(
                {**summary, "problems": [{"line": n, "reason": r} for n, r in problems]}, ensure_ascii=False
            )
        )
    else:
        click.echo("Catalog: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
        for line, reason in problems:
            click.echo(f"  line {line}: {reason} (row skipped)", err=True)
    if problems:
        click.get_current_context().exit(1)


COMMANDS = [init_db, discover, catalog]
