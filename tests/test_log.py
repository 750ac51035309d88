"""The journal search behind `log`: every filter, relative times, JSON output, pruning."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.journal import Journal, parse_when


@pytest.fixture()
def logged(tmp_path: Path) -> Path:
    """A settings file and a journal with events of two runs, some of them days old."""
    settings = tmp_path / "settings.toml"
    settings.write_text(
        '[journal]\npath = "j.sqlite"\nlog_file = "sync.log"\nretention_days = 30\n', encoding="utf-8"
    )
    a = Journal(tmp_path / "j.sqlite", tmp_path / "sync.log", run_id="runA")
    a.event("photos", "photo resized", product_id=101, file="101.jpg")
    a.event("publish", "FTP connection refused by 127.0.0.1", "error", attempt=3)
    a.event("orders.inbox", "order imported", order_id=5001, client="Айгерим Касымова")
    a.event("orders.inbox", "order file quarantined: not JSON", "warning", file="x.json")
    b = Journal(tmp_path / "j.sqlite", run_id="runB")
    b.event("status", "status pushed: received", order_id=5001)
    b.event("push", "API call failed: HTTP 500 Timeout", "error", product_id=202)
    b.event("feed", "feed rendered", offers=290)
    a.close()
    b.close()
    con = sqlite3.connect(tmp_path / "j.sqlite")
    now = datetime.now(UTC)
    # Backdate: the photo event 3 days, the publish error 40 days (beyond the retention).
    con.execute(
        "UPDATE events SET ts = ? WHERE message = 'photo resized'",
        ((now - timedelta(days=3)).isoformat(timespec="milliseconds"),),
    )
    con.execute(
        "UPDATE events SET ts = ? WHERE stage = 'publish'",
        ((now - timedelta(days=40)).isoformat(timespec="milliseconds"),),
    )
    con.commit()
    con.close()
    return settings


def _log(settings: Path, *args: str) -> list[dict]:
    r = CliRunner().invoke(cli, ["--settings", str(settings), "log", "--json", *args])
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.output.splitlines() if line.strip()]


def _messages(settings: Path, *args: str) -> list[str]:
    return [e["message"] for e in _log(settings, *args)]


def test_filters(logged: Path):
    assert len(_log(logged)) == 7
    assert _messages(logged, "--grep", "timeout") == ["API call failed: HTTP 500 Timeout"]  # case-insensitive
    assert _messages(logged, "--grep", "айгерим") == ["order imported"]  # data, Cyrillic, any case
    assert _messages(logged, "--level", "error") == [
        "FTP connection refused by 127.0.0.1",
        "API call failed: HTTP 500 Timeout",
    ]
    assert len(_log(logged, "--level", "warning")) == 3
    assert _messages(logged, "--stage", "orders") == ["order imported", "order file quarantined: not JSON"]
    assert _messages(logged, "--stage", "orders.inbox", "--level", "warning") == [
        "order file quarantined: not JSON"
    ]
    assert _messages(logged, "--order", "5001") == ["order imported", "status pushed: received"]
    assert _messages(logged, "--product", "202") == ["API call failed: HTTP 500 Timeout"]
    assert {e["run_id"] for e in _log(logged, "--run", "runB")} == {"runB"}
    assert len(_log(logged, "--run", "runB")) == 3
    assert len(_log(logged, "--since", "2h")) == 5
    assert _messages(logged, "--since", "5d", "--until", "2d") == ["photo resized"]
    assert _messages(logged, "--until", "30d") == ["FTP connection refused by 127.0.0.1"]
    today = datetime.now().date().isoformat()
    assert len(_log(logged, "--since", today, "--until", today)) == 5  # a bare --until date = the whole day
    newest = _messages(logged, "--limit", "2")
    assert newest == ["API call failed: HTTP 500 Timeout", "feed rendered"]
    event = _log(logged, "--order", "5001", "--stage", "status")[0]
    assert set(event) == {"id", "ts", "run_id", "stage", "level", "message", "order_id", "product_id", "data"}


def test_human_output_and_bad_input(logged: Path):
    r = CliRunner().invoke(cli, ["--settings", str(logged), "log", "--order", "5001"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert "INFO" in lines[0] and "order imported order=5001" in lines[0] and "[run runA]" in lines[0]
    assert "Айгерим" in lines[0]
    r = CliRunner().invoke(cli, ["--settings", str(logged), "log", "--since", "last tuesday"])
    assert r.exit_code == 2 and "relative time" in r.output
    r = CliRunner().invoke(cli, ["--settings", str(logged), "log", "--level", "loud"])
    assert r.exit_code == 2


def test_prune_keeps_the_retention(logged: Path):
    r = CliRunner().invoke(cli, ["--settings", str(logged), "log", "--prune"])
    assert r.exit_code == 0 and "Pruned 1 journal entries older than 30 days" in r.output
    assert len(_log(logged)) == 6
    assert _messages(logged, "--stage", "publish") == []


def test_parse_when():
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_when("2h", now=now) == now - timedelta(hours=2)
    assert parse_when("30m", now=now) == now - timedelta(minutes=30)
    assert parse_when("3d", now=now) == now - timedelta(days=3)
    assert parse_when("1w ago", now=now) == now - timedelta(days=7)
    assert parse_when("2026-11-20T10:00+00:00") == datetime(2026, 11, 20, 10, tzinfo=UTC)
    start, end = parse_when("2026-11-20"), parse_when("2026-11-20", end=True)
    assert timedelta(hours=23, minutes=59) < end - start < timedelta(days=1)
    with pytest.raises(ValueError):
        parse_when("soon")


def test_follow_prints_new_matching_events(logged: Path):
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [
            sys.executable,
            str(root / "run.py"),
            "--settings",
            str(logged),
            "log",
            "--follow",
            "--level",
            "error",
            "--limit",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        assert "API call failed" in first  # the newest matching event so far
        time.sleep(0.5)
        j = Journal(logged.parent / "j.sqlite", run_id="runC")
        j.event("push", "fine", order_id=1)
        j.event("push", "token rejected", "error")
        assert "token rejected" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
