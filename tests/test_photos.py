"""The photos stage on the real demo catalog (embedded Firebird) and real image files."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from PIL import Image

from photo_helpers import add_photo_rows, sellable_good_ids, write_hostile_files
from pipeline import photos
from pipeline.contracts.photo_urls import PUBLISHED_NS, PhotoIndex
from pipeline.journal import Journal
from pipeline.model import Photo
from pipeline.settings import Settings
from pipeline.stage import StageResult, Status, outcome_of
from pipeline.state import State


def _stage(settings: Settings) -> tuple[Journal, State]:
    return Journal.from_settings(settings), State.from_settings(settings)


def _small(settings: Settings, **photo_keys) -> Settings:
    values = {"max_size": 300, "workers": 2, **photo_keys}
    return settings.replace(photos=dataclasses.replace(settings.photos, **values))


def test_processes_every_sellable_photo_once_and_caches_by_content(demo_env: Settings):
    s = _small(demo_env)
    journal, state = _stage(s)
    first = photos.run(s, journal=journal, state=state, progress=False)
    assert first.processed > 10 and first.failed == 0 and first.refused == 0 and first.ok
    published = dict(state.items(PUBLISHED_NS))
    assert len(published) == first.referenced == first.processed + first.unchanged
    for name, entry in published.items():
        assert entry["ok"], name
        out = Path(s.photos.cache_dir) / entry["name"]
        assert entry["name"].startswith("photos/") and entry["name"].endswith(".jpg")
        with Image.open(out) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert max(im.size) <= 300
            assert not im.getexif() and "icc_profile" not in im.info
    # The feed's view of the same state.
    some = next(iter(published))
    url = PhotoIndex(state, "https://cdn.example.kz/shop").url_for(Photo(0, some))
    assert url == "https://cdn.example.kz/shop/" + published[some]["name"]

    second = photos.run(s, journal=journal, state=state, progress=False)
    assert (second.processed, second.unchanged) == (0, first.processed + first.unchanged)
    assert dict(state.items(PUBLISHED_NS)) == published

    # Touched but identical bytes: confirmed by hash, not processed again.
    touched = Path(s.photos.source_dir) / sorted(published)[0]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 5_000_000_000))
    third = photos.run(s, journal=journal, state=state, progress=False)
    assert third.processed == 0

    # Changed bytes: only that photo is processed, under a new name.
    with Image.open(touched) as im:
        im.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(touched, "JPEG", quality=70)
    fourth = photos.run(s, journal=journal, state=state, progress=False)
    assert fourth.processed == 1
    assert (
        state.get(PUBLISHED_NS, touched.relative_to(s.photos.source_dir).as_posix())["name"]
        != published[touched.relative_to(s.photos.source_dir).as_posix()]["name"]
    )

    # Other photo settings: everything is processed again (names depend on the settings too).
    webp = _small(demo_env, format="webp", quality=60)
    fifth = photos.run(webp, journal=journal, state=state, progress=False)
    after = dict(state.items(PUBLISHED_NS))
    # Every distinct output is made once (files with equal bytes share one output).
    assert fifth.processed == len({e["name"] for e in after.values()})
    assert all(e["name"].endswith(".webp") for e in after.values())


def test_conversions_orientation_alpha_cmyk(demo_env: Settings):
    src = Path(demo_env.photos.source_dir) / "conv"
    src.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: the camera says "rotate 90° clockwise to view"
    Image.new("RGB", (400, 200), (200, 10, 10)).save(src / "rotated.jpg", "JPEG", exif=exif.tobytes())
    Image.new("RGBA", (100, 100), (0, 0, 0, 0)).save(src / "clear.png")
    Image.new("RGB", (800, 600), (10, 200, 10)).convert("CMYK").save(src / "cmyk.jpg", "JPEG")
    pal = Image.new("P", (120, 80), 0)
    pal.putpalette([0, 0, 255] * 256)
    pal.info["transparency"] = 0
    pal.save(src / "palette.gif", transparency=0)
    Image.new("RGB", (4000, 3000), (90, 90, 90)).save(src / "big.jpg", "JPEG", quality=90)
    good = sellable_good_ids(demo_env, 2)[1]
    add_photo_rows(
        demo_env,
        good,
        ["conv/rotated.jpg", "conv/clear.png", "conv/cmyk.jpg", "conv/palette.gif", "conv/big.jpg"],
    )
    s = _small(demo_env, max_size=1000)
    journal, state = _stage(s)
    result = photos.run(s, journal=journal, state=state, progress=False)
    assert result.failed == 0

    def out(name: str) -> Image.Image:
        return Image.open(Path(s.photos.cache_dir) / state.get(PUBLISHED_NS, name)["name"])

    with out("conv/rotated.jpg") as im:
        assert im.size == (200, 400) and not im.getexif()
    with out("conv/clear.png") as im:
        assert im.mode == "RGB" and im.getpixel((50, 50)) == (255, 255, 255)
    with out("conv/cmyk.jpg") as im:
        assert im.mode == "RGB"
        r, g, b = im.getpixel((10, 10))
        assert g > 150 and r < 60 and b < 60
    with out("conv/palette.gif") as im:
        assert im.mode == "RGB" and im.getpixel((5, 5)) == (255, 255, 255)
    with out("conv/big.jpg") as im:
        assert im.size == (1000, 750)


def test_broken_and_hostile_files_are_logged_and_never_stop_the_run(demo_env: Settings, tmp_path: Path):
    hostile = write_hostile_files(Path(demo_env.photos.source_dir), tmp_path / "outside")
    good = sellable_good_ids(demo_env, 1)[0]
    add_photo_rows(demo_env, good, list(hostile))
    s = _small(demo_env)
    journal, state = _stage(s)
    result = photos.run(s, journal=journal, state=state, progress=False)
    refused = [n for n, kind in hostile.items() if kind == "refused"]
    assert result.refused == len(refused)
    assert result.failed == len(hostile) - len(refused)
    assert result.processed > 10 and not result.ok
    for name, kind in hostile.items():
        entry = state.get(PUBLISHED_NS, name)
        assert entry["ok"] is False and entry["reason"], name
        if kind == "refused":
            assert entry["reason"].startswith("refused")
        events = [
            e
            for e in journal.search(stage="photos", product_id=good)
            if e.data and e.data.get("file") == name
        ]
        assert events and events[0].level == "warning", name
    reasons = {n: state.get(PUBLISHED_NS, n)["reason"] for n in hostile}
    assert "bomb" in reasons["hostile/bomb.png"] and "bomb" in reasons["hostile/bomb_warning.png"]
    assert "0 bytes" in reasons["hostile/zero.jpg"]
    assert "not found" in reasons["hostile/missing.jpg"]
    assert "truncated" in reasons["pool/corrupt_truncated.jpg"]
    assert "not an image" in reasons["pool/corrupt_not_image.jpg"]
    # Nothing from outside the photo folder reached the cache.
    assert not any("secret" in str(p) for p in Path(s.photos.cache_dir).rglob("*"))
    # The failed files are not decoded again while unchanged, and still reported.
    again = photos.run(s, journal=journal, state=state, progress=False)
    assert again.processed == 0 and again.failed == result.failed and again.refused == result.refused


def test_resolve_source_refuses_escapes(tmp_path: Path):
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    assert photos.resolve_source(root, "a\\b.jpg")[0] == (root / "a" / "b.jpg").resolve()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.jpg").write_bytes(b"x")
    os.symlink(outside, root / "linkdir")
    os.symlink(outside / "x.jpg", root / "a" / "link.jpg")
    os.symlink(root / "a", root / "inner")  # a link that stays inside is fine
    assert photos.resolve_source(root, "inner/b.jpg")[0] == (root / "a" / "b.jpg").resolve()
    for bad in (
        "../x.jpg",
        "a/../../x.jpg",
        "/etc/passwd",
        "C:/x.jpg",
        "c:\\x.jpg",
        "",
        "a/\x00.jpg",
        "linkdir/x.jpg",
        "a/link.jpg",
        "./",
    ):
        assert photos.resolve_source(root, bad)[0] is None, bad


def test_stop_request_ends_the_run_with_finished_photos_recorded(demo_env: Settings):
    """Inline (one worker) and pool modes: a stop keeps every finished photo; the next run does the rest."""
    for workers in (1, 2):
        s = _small(demo_env, workers=workers, cache_dir=str(Path(demo_env.base_dir) / f"cache-{workers}"))
        journal, state = _stage(s)
        state.delete(PUBLISHED_NS)
        state.delete(photos.CACHE_NS)

        def stop_soon(asked: list[int] = []) -> bool:  # noqa: B006 (one list per loop turn, on purpose)
            asked.append(1)
            return len(asked) > 3

        stopped = photos.run(s, journal=journal, state=state, progress=False, should_stop=stop_soon)
        assert stopped.interrupted and stopped.processed > 0, workers
        if workers == 1:  # inline: the stop is asked before each photo, so exactly three were done
            assert stopped.processed == 3 < stopped.referenced
        assert isinstance(stopped, StageResult) and outcome_of("photos", stopped).status is Status.STOPPED
        done = {k for k, v in state.items(PUBLISHED_NS) if v.get("ok")}
        assert all((Path(s.photos.cache_dir) / v["name"]).exists() for k, v in state.items(PUBLISHED_NS))
        rest = photos.run(s, journal=journal, state=state, progress=False)
        assert not rest.interrupted and rest.ok
        assert rest.unchanged >= len(done) and rest.processed + rest.unchanged == rest.referenced
