"""A manual run while another one (the service) holds the run lock: it waits, or refuses naming the holder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HOLDER = """
import sys, time
from pathlib import Path
from pipeline.lock import run_lock
with run_lock(sys.argv[1], "serve: exchange"):
    Path(sys.argv[2]).write_text("x")
    time.sleep(float(sys.argv[3]))
"""


def _hold(lock: Path, marker: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(marker), str(seconds)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.time() + 20
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    return proc


def _run(settings: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SATU_TOKEN"}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(settings), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manual_commands_refuse_or_wait_while_the_service_runs(tmp_path: Path):
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[orders]\ninbox = "{tmp_path / "inbox"}"\n[satu]\nbase_url = "http://127.0.0.1:9/api/v1"\n',
        encoding="utf-8",
    )
    lock = tmp_path / "var" / "run.lock"
    holder = _hold(lock, tmp_path / "held", 60)
    try:
        for args in (["orders", "fetch"], ["sync"], ["status", "push"], ["push"], ["photos"], ["feed"]):
            r = _run(settings, "--set", "schedule.lock_wait_seconds=0", *args)
            assert r.returncode == 1, (args, r.stdout, r.stderr)
            assert f"cannot start '{' '.join(args)}'" in r.stderr, (args, r.stderr)
            assert f'"serve: exchange" (pid {holder.pid}' in r.stderr, (args, r.stderr)
    finally:
        holder.kill()
        holder.wait()
    # Now a holder that finishes after 1.5 s: the manual run waits for it and then runs.
    (tmp_path / "held").unlink()
    holder = _hold(lock, tmp_path / "held", 1.5)
    t0 = time.monotonic()
    r = _run(settings, "--set", "schedule.lock_wait_seconds=60", "orders", "fetch")
    holder.wait()
    assert time.monotonic() - t0 > 0.8
    assert "cannot start" not in r.stderr
    assert "SATU_TOKEN" in r.stderr  # it got the lock and ran: here it only lacks a token
    # The order importer takes no lock: importers may run side by side (each file is claimed).
    holder = _hold(lock, tmp_path / "held2", 30)
    try:
        r = _run(settings, "--set", "schedule.lock_wait_seconds=0", "orders", "import")
        assert r.returncode == 0 and "cannot start" not in r.stderr, r.stderr
    finally:
        holder.kill()
        holder.wait()
