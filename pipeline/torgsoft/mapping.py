"""The SQL mapping: every read and write of Torgsoft data is a named .sql file.

The built-in files (queries/) target the reference schema. `[torgsoft] mapping_dir` may hold an
installer's own copies; a file found there wins over the built-in one. Result columns are aliased to
canonical names; `check()` prepares every query against the live database and reports each missing
alias as a settings problem naming the file and the column, before any work starts.

Queries use named parameters (`:price_center`); they are turned into positional `?` markers here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import Problem, SettingsError

BUILTIN_DIR = Path(__file__).with_name("queries")

# Canonical result columns each read must deliver. Writes declare their parameters instead.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "accounting_centers": ("id", "name"),
    "sections": ("id", "parent_id", "name", "text_before", "text_after", "image_file"),
    "products": (
        "good_id",
        "model_id",
        "section_id",
        "name",
        "short_name",
        "description_html",
        "articul",
        "barcode",
        "producer",
        "country",
        "unit",
        "length_cm",
        "width_cm",
        "height_cm",
        "weight_kg",
        "production_date",
        "min_order_qty",
        "wholesale_min_qty",
        "display_on_site",
        "deleted",
        "retail_price",
        "wholesale_price",
        "old_price",
    ),
    "stock": ("good_id", "center_id", "qty", "reserved"),
    # The stock watcher (pipeline.stock); deleted / display_on_site are optional there.
    "stock_levels": ("good_id", "accounting_center_id", "qty", "reserved_qty", "retail_price"),
    "stock_changes": ("good_id", "accounting_center_id", "qty", "reserved_qty", "retail_price", "changed_at"),
    "stock_digests": ("good_id", "digest"),
    "stock_of_good": ("good_id", "accounting_center_id", "qty", "reserved_qty", "retail_price"),
    "photos": ("good_id", "pos", "file_name"),
    "characteristics": ("good_id", "name", "unit", "dynamic", "value"),
    # changed_at is optional here: without it the status push compares every order by a local hash.
    "orders_for_status": ("external_id", "status", "is_paid", "ttn"),
}

# The reads the catalog needs; the catalog checks only these, so a site that does not use the
# order features is not stopped by an order query its database cannot run.
CATALOG_QUERIES: tuple[str, ...] = (
    "accounting_centers",
    "sections",
    "products",
    "stock",
    "photos",
    "characteristics",
)

_PARAM = re.compile(r"""('(?:[^']|'')*')|("(?:[^"]|"")*")|(--[^\n]*)|(?<![:\w]):([A-Za-z_]\w*)""")


@dataclass(frozen=True)
class Query:
    """A named query: its file, its SQL with `?` markers, and the parameter names in order."""

    name: str
    path: Path
    sql: str
    params: tuple[str, ...]

    def args(self, values: dict[str, Any]) -> tuple[Any, ...]:
        """Positional arguments for this query from a dict of named values."""
        missing = [p for p in self.params if p not in values]
        if missing:
            raise SettingsError(
                Problem(
                    str(self.path),
                    f"uses parameter(s) {missing} that the program does not supply",
                    f"use only: {', '.join(sorted(values)) or '(none)'}",
                )
            )
        return tuple(values[p] for p in self.params)


def compile_sql(text: str) -> tuple[str, tuple[str, ...]]:
    """Replace `:name` parameters by `?` (outside strings and comments); return SQL and names."""
    names: list[str] = []

    def repl(m: re.Match[str]) -> str:
        if m.group(4):
            names.append(m.group(4).lower())
            return "?"
        if m.group(3):
            return ""  # drop comments so a `?` or `:x` inside one does not count
        return m.group(0)

    sql = _PARAM.sub(repl, text).strip().rstrip(";").strip()
    return sql, tuple(names)


class Mapping:
    """Loads named queries from the override folder or the built-in one."""

    def __init__(self, override_dir: Path | None = None):
        self.override_dir = Path(override_dir) if override_dir else None
        if self.override_dir is not None and not self.override_dir.is_dir():
            raise SettingsError(
                Problem(
                    "torgsoft.mapping_dir",
                    f"{self.override_dir} is not a folder",
                    "point it at a folder with your .sql files, or leave it empty",
                )
            )
        self._cache: dict[str, Query] = {}

    def path(self, name: str) -> Path:
        """The file that defines query `name` (override first)."""
        if self.override_dir is not None:
            candidate = self.override_dir / f"{name}.sql"
            if candidate.exists():
                return candidate
        return BUILTIN_DIR / f"{name}.sql"

    def query(self, name: str) -> Query:
        """The compiled query `name`; a missing file is a settings error."""
        if name not in self._cache:
            path = self.path(name)
            if not path.exists():
                raise SettingsError(
                    Problem(
                        str(path),
                        f"query {name!r} not found",
                        f"copy {BUILTIN_DIR / (name + '.sql')} into your mapping_dir",
                    )
                )
            sql, params = compile_sql(path.read_text(encoding="utf-8"))
            self._cache[name] = Query(name, path, sql, params)
        return self._cache[name]

    def check(self, con: Any, names: list[str] | None = None) -> None:
        """Prepare each read query and verify its aliases; raise one SettingsError with every problem."""
        problems: list[Problem] = []
        for name in names or list(REQUIRED_COLUMNS):
            try:
                q = self.query(name)
            except SettingsError as exc:
                problems.extend(exc.problems)
                continue
            try:
                cur = con.cursor()
                prepared = cur.prep(q.sql)
                columns = {d[0].lower() for d in prepared.description or ()}
            except Exception as exc:  # fdb.DatabaseError: translated into a settings problem
                problems.append(
                    Problem(
                        str(q.path),
                        f"does not run against this database: "
                        f"{' '.join(str(exc.args[0] if exc.args else exc).split())}",
                        "fix the SQL (use `python run.py discover` to see the tables)",
                    )
                )
                continue
            for column in REQUIRED_COLUMNS.get(name, ()):
                if column not in columns:
                    problems.append(
                        Problem(
                            str(q.path), f"result column {column!r} is missing", f"alias a column AS {column}"
                        )
                    )
        if problems:
            raise SettingsError(problems)
