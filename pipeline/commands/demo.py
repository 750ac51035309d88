"""`demo`: the whole exchange on one machine with the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli import AppContext, pass_app


@click.command("demo")
@click.option("--products", default=1000, show_default=True, type=click.IntRange(1),
              help="demo goods to create when the database does not exist yet")
@pass_app
def demo(app: AppContext, products: int) -> None:
    """Create the demo database when missing, then run the exchange and report what happened."""
    ctx = click.get_current_context()
    s = app.settings
    if not Path(s.torgsoft.database).exists():
        from pipeline.commands.database import init_db

        ctx.invoke(init_db, products=products, seed=1, force=False)
    from pipeline.commands.database import catalog

    ctx.invoke(catalog, as_json=False)


COMMANDS = [demo]
