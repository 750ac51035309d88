"""The service: ticks on a short test-only interval, survives failing jobs, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.errors import SettingsError
from pipeline.journal import Journal
from pipeline.service import jobs_from_settings, minute_seconds
from pipeline.settings import build
from pipeline.state import State

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "service_harness.py"


def _wait_for(pred, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _state_value(base: Path, ns: str, key: str):
    if not (base / "state.sqlite").exists():
        return None
    st = State(base / "state.sqlite")
    try:
        return st.get(ns, key)
    finally:
        st.close()


def test_ticks_go_on_when_a_step_raises_and_sigterm_exits_0(tmp_path: Path):
    proc = subprocess.Popen(
        [sys.executable, str(HARNESS), str(tmp_path), "ticks"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Four counts mean three whole ticks (count + boom) are over, whenever the signal lands.
        _wait_for(lambda: (_state_value(tmp_path, "harness", "ticks") or 0) >= 4, 40, "four ticks")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "service stopped by SIGTERM" in out
    j = Journal(tmp_path / "journal.sqlite")
    failures = list(j.search(grep="this step always fails", level="error"))
    finished = list(j.search(grep="ticker: run finished"))
    assert len(failures) >= 3 and len(finished) >= 3
    assert all(e.data and "traceback" in e.data for e in failures)  # not our error type: traceback kept
    assert len({e.run_id for e in finished}) == len(finished)  # each tick is its own run
    last = _state_value(tmp_path, "service", "last_stop")
    assert last["clean"] is True and last["reason"] == "stopped by SIGTERM" and last["runs"] >= 3
    job = _state_value(tmp_path, "service.jobs", "ticker")
    assert job["ok"] is False and "boom" in job["errors"] and job["results"]["count"]["ticks"] >= 3


def test_sigterm_finishes_the_current_step_then_stops(tmp_path: Path):
    proc = subprocess.Popen(
        [sys.executable, str(HARNESS), str(tmp_path), "slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: _state_value(tmp_path, "harness", "slow_started") is not None, 40, "the slow step")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert _state_value(tmp_path, "harness", "slow_finished") is not None  # the "upload" completed
    assert _state_value(tmp_path, "harness", "after_ran") is None  # nothing new started
    assert _state_value(tmp_path, "service", "last_stop")["reason"] == "stopped by SIGTERM"
    j = Journal(tmp_path / "journal.sqlite")
    assert list(j.search(grep="skipping after"))


def test_sigterm_during_a_long_stage_ends_it_within_seconds_with_state_saved(tmp_path: Path):
    """The service passes `should_stop` into its stages: a long loop ends at the next item."""
    proc = subprocess.Popen(
        [sys.executable, str(HARNESS), str(tmp_path), "long"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: (_state_value(tmp_path, "harness", "long_items") or 0) >= 5, 40, "the long step")
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert took < 5, f"the stop took {took:.1f} s"
    items = _state_value(tmp_path, "harness", "long_items")
    assert 5 <= items < 1200  # ended early, its progress saved
    assert _state_value(tmp_path, "harness", "after_ran") is None  # nothing new started
    job = _state_value(tmp_path, "service.jobs", "long")
    assert job["results"]["long"] == {
        "ticks": 0,
        "uploaded": 0,
        "items": items,
        "ok": True,
        "interrupted": True,
    }
    assert _state_value(tmp_path, "service", "last_stop")["reason"] == "stopped by SIGTERM"
    assert "stopped on request" in out


def _serve_settings(tmp_path: Path, web: str = "enabled = false") -> Path:
    """Settings for `run.py serve` whose stages can only reach loopback (a closed port); the web page
    is off unless a test asks for it (`web` = the lines of its `[web]` section)."""
    text = f"""
[torgsoft]
database = "{tmp_path / "torgsoft.fdb"}"
[satu]
base_url = "http://127.0.0.1:9/api/v1"
token_env = "TEST_SERVICE_NO_TOKEN"
max_retries = 0
timeout = 2
[publish]
target = "local"
local_dir = "{tmp_path / "public"}"
[orders]
inbox = "{tmp_path / "inbox"}"
[schedule]
interval_minutes = 1
orders_minutes = 2
lock_wait_seconds = 0.5
[web]
{web}
"""
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _short_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TEST_SERVICE_NO_TOKEN", None)
    return env


def _serve(settings: Path, *args: str, minute: str = "1") -> list[str]:
    """`serve` in a child whose schedule minute lasts `minute` seconds (the `pipeline._testing` clock)."""
    return [
        sys.executable,
        "-m",
        "pipeline._testing",
        "--minute-seconds",
        minute,
        "--",
        "--settings",
        str(settings),
        "serve",
        *args,
    ]


def test_serve_command_keeps_ticking_through_failing_stages(tmp_path: Path):
    settings = _serve_settings(tmp_path)
    proc = subprocess.Popen(
        _serve(settings),
        env=_short_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    journal = tmp_path / "var" / "journal.sqlite"

    def exchange_runs() -> int:
        if not journal.exists():
            return 0
        return len(list(Journal(journal).search(grep="exchange: run finished")))

    try:
        _wait_for(lambda: exchange_runs() >= 3, 90, "three exchange runs")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "service started: exchange every 1 s, orders every 2 s" in out
    j = Journal(journal)
    assert list(j.search(grep="orders: run finished"))
    assert list(j.search(stage="service", grep="stopped by SIGINT"))


def test_other_processes_see_the_service_state_while_the_stock_watcher_runs(tmp_path: Path):
    """The stock watcher's own SQLite connections (another thread, same files) must not unlock the
    service's: before the fix, opening them released the service's POSIX locks, another process took
    itself for the only user and deleted the WAL, and saw no state write of the service until it
    exited."""
    settings = _serve_settings(tmp_path)
    text = settings.read_text(encoding="utf-8").replace("[schedule]\n", "[schedule]\nstock_seconds = 15\n")
    settings.write_text(text, encoding="utf-8")  # no database file: every watcher tick fails
    env = {**_short_env(), "TEST_SERVICE_NO_TOKEN": "a-token"}  # the watcher ticks only with a token
    proc = subprocess.Popen(
        _serve(settings), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    runs: set[str] = set()

    def seen_runs() -> int:
        job = _state_value(tmp_path / "var", "service.jobs", "exchange")
        if job:
            runs.add(job["run_id"])
        return len(runs)

    try:
        _wait_for(lambda: seen_runs() >= 4, 60, "four exchange runs seen by another process")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert ", stock every " in out
    failed = list(Journal(tmp_path / "var" / "journal.sqlite").search(grep="stock watcher tick failed"))
    assert failed and "torgsoft.database" in failed[0].message


def test_serve_skips_a_tick_while_a_manual_run_holds_the_lock(tmp_path: Path):
    settings = _serve_settings(tmp_path)
    marker = tmp_path / "held"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time\nfrom pathlib import Path\nfrom pipeline.lock import run_lock\n"
                "with run_lock(sys.argv[1], 'sync (manual)'):\n"
                "    Path(sys.argv[2]).write_text('x')\n    time.sleep(30)\n"
            ),
            str(tmp_path / "var" / "run.lock"),
            str(marker),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _wait_for(marker.exists, 20, "the manual run")
        r = subprocess.run(
            _serve(settings, "--once"),
            env=_short_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 0, r.stderr
    assert "exchange: skipped, another run holds the lock" in r.stdout
    skipped = list(
        Journal(tmp_path / "var" / "journal.sqlite").search(grep="skipped this tick", level="warning")
    )
    assert len(skipped) == 2 and all(
        f"pid {holder.pid}" in e.message and "sync (manual)" in e.message for e in skipped
    )


def test_ten_minute_floor_and_the_test_clock(tmp_path: Path, monkeypatch):
    from pipeline import _testing

    monkeypatch.setenv("TORGSOFT_SATU_TEST_SHORT_INTERVALS", "1")  # the old switch means nothing now
    monkeypatch.setenv("TORGSOFT_SATU_TEST_MINUTE_SECONDS", "1")
    with pytest.raises(SettingsError) as exc:
        build({"schedule": {"interval_minutes": 9}}, tmp_path)
    assert "schedule.interval_minutes" in str(exc.value) and "every 10 minutes" in str(exc.value)
    assert minute_seconds() == 60
    s = build({"schedule": {"interval_minutes": 10, "orders_minutes": 15}}, tmp_path)
    jobs = {j.name: j for j in jobs_from_settings(s)}
    assert jobs["exchange"].every_seconds == 600 and jobs["orders"].every_seconds == 900
    _testing.set_clock(minute_seconds=1)
    try:
        s = build({"schedule": {"interval_minutes": 1, "orders_minutes": 1}}, tmp_path)
        assert minute_seconds() == 1
        assert {j.name: j.every_seconds for j in jobs_from_settings(s)}["exchange"] == 1
    finally:
        _testing.clear()


def test_partial_mode_runs_prices_and_stock_only(tmp_path: Path, monkeypatch):
    s = build({"schedule": {"partial": True}}, tmp_path)
    jobs = jobs_from_settings(s)
    assert [j.name for j in jobs] == ["exchange", "prune"]  # no order download
    assert [(st.module, st.kwargs) for st in jobs[0].steps] == [("pipeline.sync", {"partial": True})]
    full = jobs_from_settings(build({}, tmp_path))
    assert [st.module for j in full for st in j.steps if st.module] == [
        "pipeline.sync",
        "pipeline.orders.fetch",
        "pipeline.orders.inbox",
        "pipeline.orders.status",
        "pipeline.orders.reconcile",
    ]
    assert {j.name: j.run_at_start for j in full}["reconcile"] is False
    assert "reconcile" not in {
        j.name for j in jobs_from_settings(build({"orders": {"reconcile_hours": 0}}, tmp_path))
    }


def test_serve_once_runs_each_job_once_and_exits_1_when_one_failed(tmp_path: Path):
    settings = _serve_settings(tmp_path)
    r = subprocess.run(
        _serve(settings, "--once"),
        env=_short_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1, r.stdout + r.stderr  # the stages cannot work here: no database, no Satu
    j = Journal(tmp_path / "var" / "journal.sqlite")
    finished = [e.message for e in j.search(grep="run finished")]
    assert sorted(finished) == ["exchange: run finished", "orders: run finished", "prune: run finished"]
    assert "service finished after 3 run(s)" in r.stdout


def test_serve_runs_the_control_room_beside_the_exchange(tmp_path: Path):
    """`[web] enabled`: serve prints the page's address, the page answers, and it stops with the service."""
    with socket.socket() as probe:  # a free loopback port for the page
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = _serve_settings(tmp_path, web=f'enabled = true\nhost = "127.0.0.1"\nport = {port}')
    proc = subprocess.Popen(
        _serve(settings, minute="30"),
        env={**_short_env(), "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "control room: " in line:
                url = line.split("control room: ", 1)[1].strip()
        assert url == f"http://127.0.0.1:{port}/", "serve did not print the control room's address"
        with urllib.request.urlopen(url, timeout=10) as reply:
            page = reply.read().decode("utf-8")
        assert reply.status == 200
        assert "<html" in page.lower()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=3)
