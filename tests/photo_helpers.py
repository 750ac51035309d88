"""Helpers for photo tests: hostile image files and extra photo rows in the demo database."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.devtools.demo_data import bulk_insert
from pipeline.settings import Settings
from pipeline.torgsoft.catalog import open_catalog
from pipeline.torgsoft.connection import connect, transaction


def sellable_good_ids(settings: Settings, n: int = 1) -> list[int]:
    """The first n goods that can go out (shown on the site, not deleted)."""
    out: list[int] = []
    with open_catalog(settings) as source:
        for p in source.products():
            if p.display_on_site and not p.deleted:
                out.append(p.good_id)
                if len(out) >= n:
                    break
    return out


def add_photo_rows(settings: Settings, good_id: int, names: list[str], start_pos: int = 100) -> None:
    """Give a good more photo rows (the database values are what the photos stage must judge)."""
    con = connect(settings)
    try:
        with transaction(con):
            bulk_insert(
                con,
                "GOOD_PHOTO",
                ("GOOD_ID", "POS", "FILE_NAME"),
                [(good_id, start_pos + i, name) for i, name in enumerate(names)],
            )
    finally:
        con.close()


def write_hostile_files(photo_dir: Path, outside: Path) -> dict[str, str]:
    """Broken and hostile photo files; returns {database file name: what it is}."""
    from PIL import Image

    photo_dir = Path(photo_dir)
    (photo_dir / "hostile").mkdir(parents=True, exist_ok=True)
    (photo_dir / "hostile/zero.jpg").write_bytes(b"")
    # A decompression bomb: 12000×12000 pixels (144 MP) in a few kilobytes of PNG.
    Image.new("1", (12000, 12000), 0).save(photo_dir / "hostile/bomb.png", optimize=True)
    # Over the limit but under twice it: Pillow only warns (72 MP); that counts as a failure too.
    Image.new("1", (9000, 8000), 0).save(photo_dir / "hostile/bomb_warning.png", optimize=True)
    outside.mkdir(parents=True, exist_ok=True)
    secret = outside / "secret.jpg"
    Image.new("RGB", (50, 50), (1, 2, 3)).save(secret, "JPEG")
    os.symlink(secret, photo_dir / "hostile/link_out.jpg")
    return {
        "pool/corrupt_truncated.jpg": "truncated",
        "pool/corrupt_not_image.jpg": "not an image",
        "hostile/zero.jpg": "zero bytes",
        "hostile/bomb.png": "bomb",
        "hostile/bomb_warning.png": "bomb",
        "hostile/missing.jpg": "missing",
        "../outside/secret.jpg": "refused",
        "hostile\\..\\..\\outside\\secret.jpg": "refused",
        str(secret): "refused",
        "C:\\Windows\\win.ini": "refused",
        "hostile/link_out.jpg": "refused",
    }
