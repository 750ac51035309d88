"""Satu's own categories: the seller's map from Torgsoft sections to Satu portal category ids.

Without a portal category Satu guesses each product's category from its name (wrong filters, wrong
attribute dictionary). `[feed] category_map` names a CSV (`;`-separated, UTF-8, header
`section_id;portal_id`, optional `portal_name`; further columns, such as the score and paths that
`categories suggest` writes, are ignored, and a row with an empty `portal_id` counts as no row). A
section without a row inherits its nearest mapped ancestor; the feed writes `portal_id="N"` on the mapped `<category>` elements and
`<portal_category_id>N</portal_category_id>` in every offer whose section resolves to N.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import Problem, SettingsError

KEY = "feed.category_map"
FIX = (
    "one row per section: `section_id;portal_id` (whole numbers), header `section_id;portal_id[;portal_name]`"
)
PORTAL_ID_MAX = 999_999_999


@dataclass(frozen=True, slots=True)
class PortalCategory:
    """One row of the map."""

    portal_id: int
    name: str = ""


def _bad(message: str, fix: str = FIX) -> SettingsError:
    return SettingsError(Problem(KEY, message, fix))


def _positive(text: str, what: str, where: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise _bad(f"{where}: {what} {text.strip()!r} is not a whole number") from None
    if not 0 < value <= PORTAL_ID_MAX:
        raise _bad(f"{where}: {what} {value} is out of range (1..{PORTAL_ID_MAX})")
    return value


def parse_category_map(text: str, source: str = "category map") -> dict[int, PortalCategory]:
    """The map from CSV text; a broken file is a `SettingsError` naming the line and the fix."""
    rows = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=";")
    header = [h.strip().lower() for h in rows.fieldnames or []]
    if "section_id" not in header or "portal_id" not in header:
        got = ";".join(rows.fieldnames or []) or "an empty file"
        raise _bad(f"{source}: the first line must be the header, got {got!r}")
    rows.fieldnames = header
    out: dict[int, PortalCategory] = {}
    for row in rows:
        where = f"{source}, line {rows.line_num}"
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        section = _positive(row.get("section_id") or "", "section_id", where)
        if not (row.get("portal_id") or "").strip():
            continue  # a row still to fill (`categories suggest` lists unmatched sections so): no row
        portal = _positive(row.get("portal_id") or "", "portal_id", where)
        if section in out and out[section].portal_id != portal:
            raise _bad(f"{where}: section {section} is mapped twice ({out[section].portal_id}, {portal})")
        out[section] = PortalCategory(portal, (row.get("portal_name") or "").strip())
    return out


def load_category_map(path: Path | None) -> dict[int, PortalCategory]:
    """Read `[feed] category_map` (an empty map when it is not set)."""
    if path is None:
        return {}
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise _bad(
            f"{path}: cannot read it ({exc.strerror or exc})", "fix the path or leave it empty"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(f"{path}: not UTF-8 (byte {exc.start})", "save the file as UTF-8") from None
    return parse_category_map(text, str(path))


def resolve(path: tuple[int, ...], mapping: Mapping[int, PortalCategory]) -> int | None:
    """The portal id of a section given its path (root … self): its own row, else its nearest mapped ancestor."""
    for sid in reversed(path):
        row = mapping.get(sid)
        if row is not None:
            return row.portal_id
    return None


def load_vendor_allowlist(feed_settings: Any) -> frozenset[str]:
    """The brands `[feed] vendor = "allowlist"` lets through (casefolded; `#` starts a comment)."""
    if feed_settings.vendor != "allowlist":
        return frozenset()
    path = feed_settings.vendor_allowlist
    if path is None:
        raise SettingsError(
            Problem(
                "feed.vendor_allowlist",
                'is empty but vendor = "allowlist"',
                "name the brand file, or set vendor",
            )
        )
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(
            Problem(
                "feed.vendor_allowlist", f"{path}: cannot read it ({exc})", "a UTF-8 file, one brand a line"
            )
        ) from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(line.casefold() for line in lines if line)
