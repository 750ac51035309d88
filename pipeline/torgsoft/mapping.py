"""The SQL mapping: every read and write of Torgsoft data is a named .sql file.

The built-in files (queries/) target the reference schema. `[torgsoft] mapping_dir` may hold an
installer's own copies; a file found there wins over the built-in one.

Each built-in file opens with a header comment that is the one list of what the program and the file
exchange (read here, nowhere else):

    -- params: :source, :external_id          what the program supplies (a file may use fewer)
    -- columns: id, status, is_paid           result columns the program reads (aliases)
    -- optional columns: changed_at           read when present, never required

A line indented under a key (`--     more, names`) continues it; a write has no `columns:` line and
`-- params: none` means none. The header of the built-in file is the contract even when an own copy
in mapping_dir is used, so a copy without a header is checked all the same. `check()` prepares each
query against the live database and reports, as settings problems naming the file, every result
column that is missing and every parameter the program does not supply, before any work starts.

Queries use named parameters (`:price_center`); they are turned into positional `?` markers here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import Problem, SettingsError

BUILTIN_DIR = Path(__file__).with_name("queries")

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
_KEY = re.compile(r"--\s?(params|columns|optional columns):(.*)")
_CONTINUED = re.compile(r"--\s{3,}(\S.*)")
_NAME = re.compile(r"[a-z_]\w*")


@dataclass(frozen=True)
class Header:
    """What a query file declares in its header comment: parameters and result columns."""

    params: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


def read_header(text: str, source: str = "query") -> Header:
    """The declarations in the leading comment block of a .sql text (see the module doc).

    A malformed name in the header is a settings problem naming `source`."""
    values: dict[str, list[str]] = {"params": [], "columns": [], "optional columns": []}
    key: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            break  # the header ends where the SQL starts
        m = _KEY.match(line)
        if m:
            key = m.group(1)
            values[key] += _names(m.group(2), source)
            continue
        c = _CONTINUED.match(raw.rstrip())
        if key is not None and c:
            values[key] += _names(c.group(1), source)
        else:
            key = None
    return Header(
        tuple(p.lstrip(":") for p in values["params"]),
        tuple(values["columns"]),
        tuple(values["optional columns"]),
    )


def _names(text: str, source: str) -> list[str]:
    items = [t.strip().lower() for t in text.strip().rstrip(".").split(",") if t.strip()]
    if items == ["none"]:
        return []
    for item in items:
        if not _NAME.fullmatch(item.lstrip(":")):
            raise SettingsError(
                Problem(source, f"header names {item!r}", "list names separated by commas: a, b, c")
            )
    return items


@dataclass(frozen=True)
class Query:
    """A named query: its file, its SQL with `?` markers, the parameter names in order, and the
    contract of its built-in file (parameters the program supplies, columns it reads)."""

    name: str
    path: Path
    sql: str
    params: tuple[str, ...]
    header: Header = Header()

    @property
    def columns(self) -> tuple[str, ...]:
        """The result columns the program reads (required)."""
        return self.header.columns

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

    def problems(self, delivered: Iterable[str]) -> list[Problem]:
        """What this query's file lacks against its contract, given the columns it `delivered`."""
        have = {c.lower() for c in delivered}
        out = [
            Problem(
                str(self.path),
                f"uses parameter :{p} that the program does not supply",
                f"use only: {', '.join(':' + d for d in self.header.params) or '(none)'}",
            )
            for p in dict.fromkeys(self.params)
            if p not in self.header.params
        ]
        out += [
            Problem(str(self.path), f"result column {c!r} is missing", f"alias a column AS {c}")
            for c in self.header.columns
            if c not in have
        ]
        return out


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
    """Loads named queries from the override folder or the built-in one (`builtin_dir`, by default
    the production queries; the demo passes its own folder)."""

    def __init__(self, override_dir: Path | None = None, *, builtin_dir: Path = BUILTIN_DIR):
        self.override_dir = Path(override_dir) if override_dir else None
        self.builtin_dir = Path(builtin_dir)
        if self.override_dir is not None and not self.override_dir.is_dir():
            raise SettingsError(
                Problem(
                    "torgsoft.mapping_dir",
                    f"{self.override_dir} is not a folder",
                    "point it at a folder with your .sql files, or leave it empty",
                )
            )
        self._cache: dict[str, Query] = {}

    def names(self) -> list[str]:
        """The names of every built-in query."""
        return sorted(p.stem for p in self.builtin_dir.glob("*.sql"))

    def path(self, name: str) -> Path:
        """The file that defines query `name` (override first)."""
        if self.override_dir is not None:
            candidate = self.override_dir / f"{name}.sql"
            if candidate.exists():
                return candidate
        return self.builtin_dir / f"{name}.sql"

    def query(self, name: str) -> Query:
        """The compiled query `name` with the contract of its built-in file; a missing file is a
        settings error."""
        if name not in self._cache:
            path = self.path(name)
            if not path.exists():
                raise SettingsError(
                    Problem(
                        str(path),
                        f"query {name!r} not found",
                        f"copy {self.builtin_dir / (name + '.sql')} into your mapping_dir",
                    )
                )
            text = path.read_text(encoding="utf-8")
            builtin = self.builtin_dir / f"{name}.sql"
            contract = builtin.read_text(encoding="utf-8") if builtin.exists() else text
            sql, params = compile_sql(text)
            self._cache[name] = Query(name, path, sql, params, read_header(contract, str(builtin)))
        return self._cache[name]

    def check(self, con: Any, names: Iterable[str] | None = None) -> None:
        """Prepare each query (default: every built-in one) and check it against its header; raise one
        SettingsError with every problem (file and column or parameter)."""
        from pipeline.torgsoft.db import driver_errors  # db builds on this module

        problems: list[Problem] = []
        for name in self.names() if names is None else names:
            try:
                q = self.query(name)
            except SettingsError as exc:
                problems.extend(exc.problems)
                continue
            try:
                prepared = con.cursor().prep(q.sql)
                delivered = [d[0] for d in prepared.description or ()]
            except driver_errors() as exc:  # translated into a settings problem naming the file
                problems.append(
                    Problem(
                        str(q.path),
                        f"does not run against this database: "
                        f"{' '.join(str(exc.args[0] if exc.args else exc).split())}",
                        "fix the SQL (use `python run.py discover` to see the tables)",
                    )
                )
                continue
            problems += q.problems(delivered)
        if problems:
            raise SettingsError(problems)
