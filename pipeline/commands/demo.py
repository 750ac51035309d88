"""`demo`: the whole exchange end to end on one machine, with no accounts (see pipeline/devtools/demo.py)."""

from __future__ import annotations

import time

import click

from pipeline.cli import AppContext, pass_app


@click.command("demo")
@click.option(
    "--products",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="demo goods to create when the database does not exist yet",
)
@click.option(
    "--orders",
    default=6,
    show_default=True,
    type=click.IntRange(1, 100),
    help="orders the Satu sandbox creates",
)
@click.option(
    "--seed", default=1, show_default=True, type=int, help="random seed of the demo data and orders"
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="keep the FTP/HTTP servers and the sandbox up after the report (Ctrl+C stops)",
)
@pass_app
def demo(app: AppContext, products: int, orders: int, seed: int, keep_running: bool) -> None:
    """Run the demo: embedded database, local FTP + HTTP servers and the Satu sandbox on 127.0.0.1;
    photos, feed, publish, import by URL, stock push; orders from the sandbox into Torgsoft; order
    states changed in the database and pushed back; then a short report."""
    from pipeline.devtools.demo import format_report, run

    app.defaults_ok = True  # the demo builds everything it needs under the current folder
    s = app.settings

    def wait(report) -> None:  # noqa: ANN001 - DemoReport, imported lazily
        click.echo(format_report(report, s))
        click.echo(
            f"\nServers stay up: feed {report.feed_url}, Satu sandbox {report.sandbox_url}. Ctrl+C stops."
        )
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            click.echo("Stopping.")

    report = run(
        s,
        products=products,
        orders=orders,
        seed=seed,
        echo=click.echo,
        keep_running=wait if keep_running else None,
    )
    if not keep_running:
        click.echo(format_report(report, s))
    if not report.ok:
        click.get_current_context().exit(1)


COMMANDS = [demo]
