"""Issue 12, disk full: every stage on a REAL full disk (a small tmpfs, `tests/fulldisk.py`).

What a full disk must never do: end in a traceback, leave temp files, quarantine a good order (or any
order without its reason file), or take the live feed down. What it must do: a message naming the
folder and the fix, exit code 1, a journal line, the "disk full" alert, and the work waiting — the
same run after space is freed does everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fulldisk import small_disk
from order_factory import satu_order, write_order
from pipeline import _testing
from pipeline.errors import DiskFullError
from pipeline.journal import Journal
from pipeline.notify import RunReport, assess
from pipeline.orders import inbox
from pipeline.settings import Settings
from pipeline.stage import run_step
from pipeline.state import State

ROOT = Path(__file__).resolve().parent.parent


def _write_settings(base: Path, env: Settings, satu_url: str = "http://127.0.0.1:9", **paths: Path) -> Path:
    """A settings file for a child `run.py`: the demo database, folders from `paths` (else under base)."""
    p = {
        "inbox": base / "inbox",
        "feeds": base / "feeds",
        "public": base / "public",
        "var": base / "var",
        "journal": base / "var",
        **paths,
    }
    text = f"""
[torgsoft]
database = "{env.torgsoft.database}"
[photos]
source_dir = "{base / "photos"}"
cache_dir = "{base / "photos_cache"}"
[feed]
output = "{p["feeds"] / "satu.yml"}"
template = "{ROOT / "templates" / "satu.yml.j2"}"
history_dir = "{p["feeds"] / "history"}"
[publish]
target = "local"
local_dir = "{p["public"]}"
retries = 0
[satu]
base_url = "{satu_url}"
max_retries = 1
[orders]
inbox = "{p["inbox"]}"
settle_seconds = 0
import_workers = 1
[journal]
path = "{p["journal"] / "journal.sqlite"}"
log_file = "{p["journal"] / "sync.log"}"
state_path = "{p["var"] / "state.sqlite"}"
lock_file = "{base / "run.lock"}"
[web]
enabled = false
"""
    path = base / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _cli(settings_file: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(settings_file), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _assert_disk_message(done: subprocess.CompletedProcess, folder: Path) -> None:
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out, out
    assert "no space left on the disk of" in out and str(folder) in out and "free space" in out, out


def _temps(folder: Path) -> list[str]:
    """Hidden temp files anywhere under `folder` (but the test's own filler)."""
    found = []
    for dirpath, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".filler"]
        found += [os.path.join(dirpath, f) for f in files if f.startswith(".") and ".tmp" in f]
        found += [os.path.join(dirpath, f) for f in files if f.endswith((".uploading", ".tmp.offers"))]
    return found


def _journal_errors(journal_path: Path, grep: str) -> list[str]:
    events = Journal(journal_path).search(grep=grep, level="error")
    return [e.message for e in events]


# --- orders -----------------------------------------------------------------------------------------


def test_orders_import_into_a_full_inbox_quarantines_nothing_and_leaves_no_temp(demo_env, tmp_path):
    disk_root = tmp_path / "disk"
    with small_disk(disk_root, "1m") as disk:
        box = disk_root / "inbox"
        for n in range(3):
            write_order(box, satu_order(1201 + n))
        (box / "damaged.json").write_text('{"order": {"id": ', encoding="utf-8")
        settings_file = _write_settings(tmp_path, demo_env, inbox=box)
        disk.fill()
        done = _cli(settings_file, "orders", "import")
        _assert_disk_message(done, box)
        assert sorted(p.name for p in box.glob("*.json")) == sorted(
            [*(f"satu-order-{1201 + n}-2026-11-27T100000.json" for n in range(3)), "damaged.json"]
        ), done.stdout
        assert not (box / "quarantine").exists() or list((box / "quarantine").iterdir()) == []
        assert _temps(box) == []
        assert _journal_errors(tmp_path / "var" / "journal.sqlite", "no space left"), done.stdout
        disk.free()
        again = _cli(settings_file, "orders", "import")
        assert "imported 3" in again.stdout and "quarantined 1" in again.stdout, again.stdout + again.stderr
        assert (box / "quarantine" / "damaged.json.reason.txt").is_file()
        assert _temps(box) == []


def test_an_order_whose_reason_file_cannot_be_written_stays_claimable(demo_env, tmp_path):
    disk_root = tmp_path / "disk"
    with small_disk(disk_root, "1m") as disk:
        box = disk_root / "inbox"
        s = demo_env.replace(orders=replace(demo_env.orders, inbox=box, settle_seconds=0, import_workers=1))
        box.mkdir(parents=True)
        (box / "a-damaged.json").write_text('{"order": [1, 2', encoding="utf-8")
        write_order(box, satu_order(1211), name="b-good.json")
        # The disk fills up right after the damaged file was claimed (another program's log, say).
        _testing.on("inbox.claimed", disk.fill)
        try:
            first = inbox.run(s, journal=Journal.from_settings(s), state=State.from_settings(s))
        finally:
            _testing.clear()
        assert first.disk_full and first.quarantined == 0 and not first.ok, first
        assert sorted(p.name for p in box.glob("*.json")) == ["a-damaged.json", "b-good.json"]
        assert list((box / "quarantine").iterdir()) == []  # nothing set aside without its reason
        assert [p.name for p in (box / "processing").iterdir() if not p.name.startswith(".")] == []
        assert _temps(box) == []
        disk.free()
        second = inbox.run(s, journal=Journal.from_settings(s), state=State.from_settings(s))
        assert (second.imported, second.quarantined) == (1, 1), second
        reason = (box / "quarantine" / "a-damaged.json.reason.txt").read_text(encoding="utf-8")
        assert reason.strip(), reason


def test_orders_fetch_into_a_full_inbox_keeps_the_cursor_and_leaves_no_temp(demo_env, tmp_path):
    from pipeline.devtools.sandbox import SandboxServer

    server = SandboxServer(tmp_path / "sandbox").start()
    try:
        server.create_orders(30, seed=12)
        disk_root = tmp_path / "disk"
        with small_disk(disk_root, "1m") as disk:
            box = disk_root / "inbox"
            box.mkdir()
            settings_file = _write_settings(tmp_path, demo_env, satu_url=server.url, inbox=box)
            env = {"SATU_TOKEN": server.token}
            disk.fill()
            done = _cli(settings_file, "orders", "fetch", env=env)
            _assert_disk_message(done, box)
            assert _temps(box) == [] and not list(box.glob("*.json"))
            assert State(tmp_path / "var" / "state.sqlite").get("orders.fetch", "cursor") is None
            assert _journal_errors(tmp_path / "var" / "journal.sqlite", "no space left")
            disk.free()
            again = _cli(settings_file, "orders", "fetch", env=env)
            assert again.returncode == 0, again.stdout + again.stderr
            assert len(list(box.glob("*.json"))) == 30 and _temps(box) == []
    finally:
        server.stop()


# --- feed and publish -------------------------------------------------------------------------------


def test_feed_into_a_full_feeds_folder_keeps_the_last_good_feed(demo_env, tmp_path):
    disk_root = tmp_path / "disk"
    with small_disk(disk_root, "3m") as disk:
        feeds = disk_root / "feeds"
        settings_file = _write_settings(tmp_path, demo_env, feeds=feeds)
        first = _cli(settings_file, "feed")
        assert first.returncode == 0, first.stdout + first.stderr
        live = (feeds / "satu.yml").read_bytes()
        disk.fill()
        done = _cli(settings_file, "feed", "--force")
        _assert_disk_message(done, feeds)
        assert (feeds / "satu.yml").read_bytes() == live
        assert _temps(feeds) == []
        assert _journal_errors(tmp_path / "var" / "journal.sqlite", "no space left")
        disk.free()
        again = _cli(settings_file, "feed", "--force")
        assert again.returncode == 0, again.stdout + again.stderr
        assert _temps(feeds) == []


def test_local_publish_into_a_full_public_folder_keeps_the_previous_feed_live(demo_env, tmp_path):
    disk_root = tmp_path / "disk"
    with small_disk(disk_root, "2m") as disk:
        public = disk_root / "public"
        settings_file = _write_settings(tmp_path, demo_env, public=public)
        feed = tmp_path / "feeds" / "satu.yml"
        feed.parent.mkdir(parents=True)
        feed.write_bytes(b"<?xml version='1.0'?>\n<yml_catalog><shop>v1</shop></yml_catalog>\n")
        first = _cli(settings_file, "publish")
        assert first.returncode == 0, first.stdout + first.stderr
        live = (public / "satu.yml").read_bytes()
        feed.write_bytes(
            b"<?xml version='1.0'?>\n<yml_catalog><shop>v2" + b" " * 300_000 + b"</shop></yml_catalog>\n"
        )
        disk.fill()
        done = _cli(settings_file, "publish")
        _assert_disk_message(done, public)
        assert "previous one (if any) stays live" in done.stdout
        assert (public / "satu.yml").read_bytes() == live
        assert _temps(public) == []
        disk.free()
        again = _cli(settings_file, "publish")
        assert again.returncode == 0, again.stdout + again.stderr
        assert (public / "satu.yml").read_bytes() == feed.read_bytes() and _temps(public) == []


# --- state and journal ------------------------------------------------------------------------------


def test_a_full_state_disk_is_a_message_naming_the_state_file(demo_env, tmp_path):
    disk_root = tmp_path / "disk"
    with small_disk(disk_root, "1m") as disk:
        var = disk_root / "var"
        settings_file = _write_settings(tmp_path, demo_env, var=var, journal=tmp_path / "log")
        write_order(tmp_path / "inbox", satu_order(1221))
        first = _cli(settings_file, "orders", "import")
        assert first.returncode == 0, first.stdout + first.stderr
        before = (var / "state.sqlite").read_bytes()
        disk.fill()
        done = _cli(settings_file, "feed")
        _assert_disk_message(done, var)
        assert "state file" in done.stderr and "cannot be used" not in done.stderr, done.stderr
        assert (var / "state.sqlite").read_bytes() == before  # not "damaged", not replaced
        disk.free()
        again = _cli(settings_file, "feed")
        assert again.returncode == 0, again.stdout + again.stderr


def test_a_full_journal_disk_never_stops_the_import(demo_env, tmp_path):
    disk_root = tmp_path / "disk"
    with small_disk(disk_root, "1m") as disk:
        logs = disk_root / "log"
        settings_file = _write_settings(tmp_path, demo_env, journal=logs)
        write_order(tmp_path / "inbox", satu_order(1231))
        assert _cli(settings_file, "orders", "import").returncode == 0  # journal and log file exist
        write_order(tmp_path / "inbox", satu_order(1232))
        disk.fill()
        done = _cli(settings_file, "orders", "import")
        out = done.stdout + done.stderr
        assert done.returncode == 0 and "imported 1" in done.stdout, out
        assert "Traceback" not in out and "Logging error" not in out, out
        # One warning for the journal file, and one for the log file if its last page is full too.
        assert 1 <= out.count("no space left on the disk of") <= 2 and str(logs) in out, out
        assert "cannot be used" not in out  # a full disk is not a damaged journal
        disk.free()
        write_order(tmp_path / "inbox", satu_order(1233))
        again = _cli(settings_file, "orders", "import")
        assert again.returncode == 0 and "no space" not in again.stderr, again.stderr
        assert any("1233" in e.message for e in Journal(logs / "journal.sqlite").search(order_id=1233))


def test_a_stage_stopped_by_a_full_disk_raises_the_disk_full_alert(demo_env, tmp_path):
    from pipeline import feed as feed_stage

    disk_root = tmp_path / "disk"
    with small_disk(disk_root, "1m") as disk:
        s = demo_env.replace(
            feed=replace(demo_env.feed, output=disk_root / "satu.yml", history_dir=disk_root / "history")
        )
        journal, state = Journal.from_settings(s), State.from_settings(s)
        disk.fill()
        outcome = run_step("feed", lambda: feed_stage.run(s, journal=journal, state=state, force=True))
        assert isinstance(outcome.error, DiskFullError) and str(disk_root) in str(outcome.error)
        report = RunReport("exchange", time.time())
        report.errors["feed"] = outcome.error
        messages, _cleared = assess(report, settings=s, state=state)
        alerts = [m for m in messages if m.key == "disk-full"]
        assert len(alerts) == 1 and str(disk_root) in alerts[0].text, messages
        assert not [m for m in messages if m.key == "feed"]  # not "feed rejected": the catalog is fine
        # The live watcher does not raise: its pass says so, and the service reports the pass.
        box = disk_root / "inbox"
        disk.free()
        write_order(box, satu_order(1241))
        disk.fill()
        watched = inbox.run(s.replace(orders=replace(s.orders, inbox=box)), journal=journal, state=state)
        assert watched.disk_full and not watched.ok, watched
        report = RunReport("orders", time.time(), results={"inbox.watch": watched})
        alerts = [m for m in assess(report, settings=s, state=state)[0] if m.key == "disk-full"]
        assert len(alerts) == 1 and str(box) in alerts[0].text
        disk.free()
        report = RunReport("exchange", time.time())
        report.results["feed"] = feed_stage.run(s, journal=journal, state=state, force=True)
        _messages, cleared = assess(report, settings=s, state=state)
        assert "disk-full" in cleared


@pytest.fixture(autouse=True)
def _no_fault_points():
    yield
    _testing.clear()


def test_a_feed_whose_history_is_on_another_disk_is_filed_whole(demo_env, tmp_path):
    """Found while testing the full disk: a history folder on another file system (a small system disk,
    history on a big one) broke every feed run after the feed was in place (EXDEV, a traceback)."""
    from pipeline import feed as feed_stage

    disk_root = tmp_path / "disk"
    with small_disk(disk_root, "4m"):
        s = demo_env.replace(
            feed=replace(demo_env.feed, output=disk_root / "satu.yml", history_dir=tmp_path / "history")
        )
        journal, state = Journal.from_settings(s), State.from_settings(s)
        for _ in range(2):
            result = feed_stage.run(s, journal=journal, state=state, force=True)
            assert result.ok, result.problems
        kept = sorted(p.name for p in (tmp_path / "history").iterdir())
        assert len([n for n in kept if n.endswith(".yml.gz")]) == 2 and any(
            n.endswith(".offers.tsv") for n in kept
        )
        assert _temps(disk_root) == [] and _temps(tmp_path / "history") == []


def test_photos_into_a_full_cache_are_not_called_unusable(demo_env, tmp_path):
    disk_root = tmp_path / "disk"
    with small_disk(disk_root, "1m") as disk:
        cache = disk_root / "photos_cache"
        settings_file = _write_settings(tmp_path, demo_env)
        text = settings_file.read_text(encoding="utf-8")
        settings_file.write_text(
            text.replace(f'cache_dir = "{tmp_path / "photos_cache"}"', f'cache_dir = "{cache}"'),
            encoding="utf-8",
        )
        cache.mkdir()
        disk.fill()
        done = _cli(settings_file, "photos")
        _assert_disk_message(done, cache)
        assert "unusable" not in done.stdout and "crashed" not in done.stdout + done.stderr, done.stdout
        assert _temps(cache) == []
        disk.free()
        again = _cli(settings_file, "photos")
        assert again.returncode == 0 and " 0 unusable" in again.stdout, again.stdout + again.stderr
