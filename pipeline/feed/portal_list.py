"""Reading Satu's list of portal categories (the cabinet's export) for `categories suggest`.

The seller downloads the list from the Satu cabinet as XLS or XLSX, or keeps a CSV
`portal_id;name;path`. The export's exact column titles are not documented where we can read them, so
the reader is tolerant (to verify on a live shop): it looks in the first rows of each sheet for a
header naming an id column and a name column (Russian, Ukrainian or English titles; see `_ALIASES`),
optionally a path column (`Категория > Подкатегория > …`, the leaf included or not) or several
level columns (`Уровень 1`, `Уровень 2`, …). A sheet with no such header whose rows start with a
number is read by position: id, name, path. Rows without a numeric id (group titles, notes) are
skipped and counted.

Every problem with the file (missing, unreadable, empty, damaged, no categories in it) is an
`InputFileError` naming the file and what to do.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import InputFileError

HEADER_ROWS = 20  # how far down a sheet the header may be (exports often start with a title block)
# Path separators seen in category exports: "A > B", "A » B", "A → B", "A | B", "A \ B" and "A / B"
# with spaces (a bare slash stays: "ж/д транспорт" is one name).
_PATH_SPLIT = re.compile(r"\s*(?:>|»|→|\||\\)\s*|\s+/\s+")

# Column titles by role, compared after `_title()` (casefolded, `_`/`-` as spaces, ё as е).
_ALIASES: dict[str, tuple[str, ...]] = {
    "id": (
        "portal id",
        "portal category id",
        "id",
        "ид",
        "идентификатор",
        "идентификатор подраздела",
        "идентификатор категории",
        "ідентифікатор",
        "ідентифікатор підрозділу",
        "id подраздела",
        "id категории",
        "номер",
        "номер категории",
        "код",
        "код категории",
        "category id",
        "subdivision id",
    ),
    "name": (
        "name",
        "название",
        "наименование",
        "название подраздела",
        "название категории",
        "назва",
        "назва підрозділу",
        "категория",
        "подраздел",
        "підрозділ",
        "category",
        "category name",
        "subdivision",
    ),
    "path": (
        "path",
        "full path",
        "путь",
        "полный путь",
        "путь категории",
        "шлях",
        "повний шлях",
        "category path",
    ),
    "parent": ("parent path", "путь родителя", "родитель", "родительская категория", "parent"),
}
_LEVEL = re.compile(r"^(?:уровень|level|рівень|раздел|розділ)\s*(\d+)$")


@dataclass(frozen=True, slots=True)
class PortalEntry:
    """One Satu portal category: its id, its own name and the names of its ancestors (root first)."""

    portal_id: int
    name: str
    parents: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """`Root > … > Name`, as the review file shows it."""
        return " > ".join((*self.parents, self.name))


@dataclass(frozen=True)
class PortalList:
    """What the file held: the categories and how many rows were skipped (no numeric id)."""

    entries: list[PortalEntry]
    skipped_rows: int
    source: str


@dataclass(frozen=True)
class _Columns:
    id: int
    name: int | None
    path: int | None
    parent: int | None
    levels: tuple[int, ...]


def _title(value: Any) -> str:
    text = str(value if value is not None else "").replace("\ufeff", "").strip().casefold()
    return re.sub(r"[\s_\-]+", " ", text.replace("ё", "е")).strip(" :.")


def _find_columns(row: Sequence[Any]) -> _Columns | None:
    """The roles of a header row's cells, or None when the row is not a header."""
    titles = [_title(c) for c in row]
    found: dict[str, int] = {}
    for role, aliases in _ALIASES.items():
        for alias in aliases:  # the aliases are in order of preference
            if alias in titles:
                found[role] = titles.index(alias)
                break
    levels = sorted(
        ((int(m.group(1)), i) for i, t in enumerate(titles) if (m := _LEVEL.match(t))), key=lambda x: x[0]
    )
    if "id" not in found or ("name" not in found and "path" not in found and len(levels) < 1):
        return None
    return _Columns(
        found["id"], found.get("name"), found.get("path"), found.get("parent"), tuple(i for _, i in levels)
    )


def _cell(row: Sequence[Any], index: int | None) -> str:
    if index is None or index >= len(row) or row[index] is None:
        return ""
    value = row[index]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def _portal_id(text: str) -> int | None:
    text = text.strip()
    if text.endswith(".0"):  # a number cell read as text by some exporters
        text = text[:-2]
    if not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value <= 999_999_999 else None


def split_path(text: str) -> list[str]:
    """The names of a category path (`A > B > C`, `A / B`, …), empty parts left out."""
    return [part for part in (p.strip() for p in _PATH_SPLIT.split(text)) if part]


def _entry(row: Sequence[Any], cols: _Columns) -> PortalEntry | None:
    pid = _portal_id(_cell(row, cols.id))
    if pid is None:
        return None
    name = _cell(row, cols.name)
    path = split_path(_cell(row, cols.path)) if cols.path is not None else []
    if not path and cols.levels:
        path = [v for v in (_cell(row, i) for i in cols.levels) if v]
    if not path and cols.parent is not None:
        path = [*split_path(_cell(row, cols.parent)), name]
    if not name:
        name = path[-1] if path else ""
    if not name:
        return None
    if path and _title(path[-1]) == _title(name):
        path = path[:-1]  # the path carried the leaf itself
    return PortalEntry(pid, name, tuple(path))


def _positional(row: Sequence[Any]) -> _Columns | None:
    """A sheet without a header: id, name[, path] by position, if the row starts with an id."""
    if len(row) >= 2 and _portal_id(_cell(row, 0)) is not None and _cell(row, 1):
        return _Columns(0, 1, 2 if len(row) > 2 else None, None, ())
    return None


def _nonempty(row: Sequence[Any]) -> bool:
    return any(_cell(row, i) for i in range(len(row)))


def _header(rows: Sequence[Sequence[Any]]) -> tuple[_Columns, int] | None:
    """The columns and the index of the first data row: a header among the first rows, else the
    first non-empty row read by position when it starts with an id."""
    for i, row in enumerate(rows[:HEADER_ROWS]):
        cols = _find_columns(row)
        if cols is not None:
            return cols, i + 1
    first = next((i for i, row in enumerate(rows[:HEADER_ROWS]) if _nonempty(row)), None)
    if first is not None and (cols := _positional(rows[first])) is not None:
        return cols, first
    return None


def read_rows(rows: Sequence[Sequence[Any]]) -> tuple[list[PortalEntry], int] | None:
    """Entries from one sheet's rows and how many rows had no usable id (None: no header found)."""
    found = _header(rows)
    if found is None:
        return None
    cols, start = found
    entries: list[PortalEntry] = []
    skipped = 0
    for row in rows[start:]:
        if not _nonempty(row):
            continue
        e = _entry(row, cols)
        if e is None:
            skipped += 1
        else:
            entries.append(e)
    return entries, skipped


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else windows-1251 — the two encodings Kazakh sellers' tools write."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251")


def _csv_rows(data: bytes) -> list[list[str]]:
    text = _decode(data)
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    # The delimiter the header line uses most: `;` (Satu's and our own), `,` or a tab.
    delimiter = max(";,\t", key=first.count) if first else ";"
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def _xlsx_sheets(path: Path) -> Iterator[list[tuple[Any, ...]]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        for ws in wb.worksheets:
            yield [tuple(r) for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def _xls_sheets(path: Path) -> Iterator[list[list[Any]]]:
    import xlrd

    book = xlrd.open_workbook(str(path), on_demand=True)
    try:
        for i in range(book.nsheets):
            sheet = book.sheet_by_index(i)
            yield [sheet.row_values(r) for r in range(sheet.nrows)]
    finally:
        book.release_resources()


def _kind(path: Path, data: bytes) -> str:
    """What the file is, by its first bytes (a renamed file is common), else by its extension."""
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"
    if data.startswith(b"\xd0\xcf\x11\xe0"):  # OLE2 compound document: the old Excel format
        return "xls"
    suffix = path.suffix.lower()
    return suffix.lstrip(".") if suffix in (".xlsx", ".xls") else "csv"


def _sheets(path: Path, data: bytes, kind: str) -> list[Sequence[Sequence[Any]]]:
    """Every sheet's rows, read whole (a category list is a few thousand rows), so that only the
    reader libraries run inside the translation of their exceptions."""
    if kind == "csv":
        return [_csv_rows(data)]
    if kind == "xlsx":
        return list(_xlsx_sheets(path))
    return list(_xls_sheets(path))


def _damaged(path: Path, kind: str, exc: BaseException) -> InputFileError:
    what = {"xlsx": "an Excel (XLSX) workbook", "xls": "an Excel 97-2003 (XLS) workbook"}.get(kind, "a CSV")
    return InputFileError(
        f"{path}: cannot read it as {what} ({type(exc).__name__}: {exc}); "
        "export the category list from the Satu cabinet again, or save it as CSV portal_id;name;path"
    )


def _foreign_errors() -> tuple[type[BaseException], ...]:
    """The reader libraries' own exceptions for a damaged file, translated at this boundary."""
    import xlrd
    from openpyxl.utils.exceptions import InvalidFileException

    return (
        zipfile.BadZipFile,
        InvalidFileException,
        xlrd.XLRDError,
        xlrd.compdoc.CompDocError,
        KeyError,  # openpyxl: a zip without the workbook parts
        ValueError,
        EOFError,
        csv.Error,
    )


def load_portal_list(path: Path) -> PortalList:
    """Every portal category in the file; an `InputFileError` when there is nothing usable in it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file; give the category list exported from Satu") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not data.strip():
        raise InputFileError(f"{path}: the file is empty; export the category list from Satu again")
    kind = _kind(path, data)
    try:
        raw = _sheets(path, data, kind)
    except _foreign_errors() as exc:
        raise _damaged(path, kind, exc) from None
    sheets = [r for r in (read_rows(s) for s in raw) if r is not None]
    entries = [e for found, _ in sheets for e in found]
    if not entries:
        raise InputFileError(
            f"{path}: no categories found (expected a header with an id and a name column, e.g. "
            "portal_id;name;path, and rows with numeric Satu category ids)"
        )
    unique = list({e.portal_id: e for e in entries}.values())
    return PortalList(unique, sum(skipped for _, skipped in sheets), str(path))
