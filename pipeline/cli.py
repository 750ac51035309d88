"""The command line: `python run.py [--settings FILE] [--set section.key=value …] COMMAND …`.

Commands live in `pipeline/commands/*.py`; each module lists its click commands in `COMMANDS` and
is picked up here, so adding a command never touches this file. Exit codes: 0 ok, 1 the job found
problems, 2 bad usage or settings.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import click

from pipeline.errors import PipelineError, SettingsError
from pipeline.fsutil import disk_full, is_disk_full
from pipeline.settings import SETTINGS_ENV, Settings, load
from pipeline.settings_checks import warnings as settings_warnings


class AppContext:
    """What every command gets: the settings (loaded on first use)."""

    def __init__(self, settings_path: Path | None, overrides: tuple[str, ...]):
        self.settings_path = settings_path
        self.overrides = overrides
        #: set by the demo: it may run on the built-in defaults when no settings file is found
        self.defaults_ok = False
        #: set by commands that only read the journal: no `Settings:` line above their output
        self.quiet = False
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The validated settings; a problem exits with code 2 and lists every problem. The file used
        (and any risky setting) is said first, on stderr, so a cron mail shows which shop ran."""
        if self._settings is None:
            self._settings = load(self.settings_path, self.overrides, defaults_ok=self.defaults_ok)
            self._announce(self._settings)
        return self._settings

    def _announce(self, settings: Settings) -> None:
        """`Settings: FILE` and the warnings, on stderr; not for machine-readable (`--json`) output and
        not for the commands that only read the journal (`quiet`)."""
        ctx = click.get_current_context(silent=True)
        if self.quiet or (ctx is not None and ctx.params.get("as_json")):
            return
        source = settings.source
        click.echo(f"Settings: {source if source else '(built-in defaults, demo)'}", err=True)
        for problem in settings_warnings(settings):
            click.echo(f"Warning: {problem}", err=True)


pass_app = click.make_pass_decorator(AppContext)


class Group(click.Group):
    """Turns the project's errors into clear messages and the documented exit codes."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        from pipeline import progress

        progress.set_console(True)  # a command run by a person or cron; `serve` and `web` turn it off
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            click.echo("Settings problem(s):", err=True)
            for p in exc.problems:
                click.echo(f"  - {p}", err=True)
            ctx.exit(2)
        except PipelineError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except OSError as exc:
            # A full disk is never the program's bug: a message naming the folder, not a traceback
            # (the stages translate it where they write; this is the net under them).
            if not is_disk_full(exc):
                raise
            click.echo(f"Error: {disk_full(exc)}", err=True)
            ctx.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(path_type=Path),
    default=None,
    help=f"settings file (default: ${SETTINGS_ENV}, else ./settings.toml); relative paths in it hang "
    "from its folder",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="override one setting for this run (repeatable)",
)
@click.pass_context
def cli(ctx: click.Context, settings_path: Path | None, overrides: tuple[str, ...]) -> None:
    """Torgsoft ⇄ Satu.kz exchange: catalog feed, photos, publishing, orders, statuses."""
    ctx.obj = AppContext(settings_path, overrides)


def _register() -> None:
    from pipeline import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"pipeline.commands.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point for run.py and the console script."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="run.py")
