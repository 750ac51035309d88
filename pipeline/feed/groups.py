"""The companion groups file: section texts and images in the columns of Satu's XLSX/CSV import.

YML has no tag for a section's text before/after the product list or for its image, but Satu's
spreadsheet import (the same format the seller cabinet exports) has group columns. The file lists
the sections of the feed, keyed by `Идентификатор_группы` = the YML category id, so Satu matches the
rows to the groups the feed created.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from pipeline.feed.rules import Section
from pipeline.feed.sanitize import LinkPolicy, clean_html
from pipeline.fsutil import atomic_writer, write_atomic
from pipeline.model import Photo

# Satu / Prom group sheet columns (spelling as in the cabinet's export).
COLUMNS = (
    "Номер_группы",
    "Название_группы",
    "Идентификатор_группы",
    "Номер_родителя",
    "Идентификатор_родителя",
    "HTML_описание_группы",
    "Ссылка_изображения_группы",
)
# Extra columns for people and other tools (CSV only; Satu ignores what it does not know).
EXTRA = ("Текст_до_списка", "Текст_после_списка", "URL_группы", "Слаг_группы")
SHEET = "Export Groups Sheet"


def group_rows(
    sections: Iterable[Section], photo_url, links: LinkPolicy | None = None
) -> list[dict[str, str]]:
    """One row per section: Satu's columns plus the extras. Section texts keep only the links `links`
    allows (Satu moderates group descriptions as it does product ones)."""
    rows = []
    for s in sections:
        before, after = clean_html(s.text_before, links=links), clean_html(s.text_after, links=links)
        image = photo_url(Photo(0, s.image_file)) if s.image_file else None
        rows.append(
            {
                "Номер_группы": "",
                "Название_группы": s.name,
                "Идентификатор_группы": str(s.id),
                "Номер_родителя": "",
                "Идентификатор_родителя": "" if s.parent_id is None else str(s.parent_id),
                # Satu has one description per group: the text before the list, then the text after it.
                "HTML_описание_группы": "\n".join(t for t in (before, after) if t),
                "Ссылка_изображения_группы": image or "",
                "Текст_до_списка": before,
                "Текст_после_списка": after,
                "URL_группы": s.url,
                "Слаг_группы": s.slug,
            }
        )
    return rows


def write_groups(rows: list[dict[str, str]], feed_path: Path, kind: str) -> list[Path]:
    """Write `<feed stem>-groups.xlsx` and/or `.csv` next to the feed (atomically); returns the paths."""
    written: list[Path] = []
    base = feed_path.with_name(feed_path.stem + "-groups")
    if kind in ("xlsx", "both"):
        from openpyxl import Workbook

        path = base.with_suffix(".xlsx")
        wb = Workbook(write_only=True)
        ws = wb.create_sheet(SHEET)
        ws.append(list(COLUMNS))
        for row in rows:
            ws.append([row[c] for c in COLUMNS])
        with atomic_writer(path) as fh:
            wb.save(fh)
        written.append(path)
    if kind in ("csv", "both"):
        path = base.with_suffix(".csv")
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=list(COLUMNS + EXTRA), delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(path, text.getvalue().encode("utf-8-sig"))  # BOM: Excel opens it as UTF-8
        written.append(path)
    return written
