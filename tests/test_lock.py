"""The run lock: one run at a time across real processes, released even after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.errors import LockedError
from pipeline.lock import holder, run_lock

ROOT = Path(__file__).resolve().parent.parent

HOLDER = """
import sys, time
from pathlib import Path
from pipeline.lock import run_lock
with run_lock(sys.argv[1], sys.argv[2]):
    Path(sys.argv[3]).write_text("locked")
    deadline = time.time() + float(sys.argv[4])
    while time.time() < deadline and not Path(sys.argv[3] + ".release").exists():
        time.sleep(0.05)
"""

WAITER = """
import sys, time
from pipeline.errors import LockedError
from pipeline.lock import run_lock
t0 = time.monotonic()
try:
    with run_lock(sys.argv[1], "waiter", wait=float(sys.argv[2])):
        print(f"GOT {time.monotonic() - t0:.2f}")
except LockedError as exc:
    print(f"LOCKED {exc}")
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _start_holder(lock: Path, what: str, marker: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), what, str(marker), str(seconds)], env=_env()
    )
    deadline = time.time() + 20
    while not marker.exists():
        assert proc.poll() is None, "holder died"
        assert time.time() < deadline, "holder never took the lock"
        time.sleep(0.05)
    return proc


def _waiter(lock: Path, wait: float) -> str:
    r = subprocess.run(
        [sys.executable, "-c", WAITER, str(lock), str(wait)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_second_process_refuses_naming_the_holder(tmp_path: Path):
    lock, marker = tmp_path / "run.lock", tmp_path / "held"
    proc = _start_holder(lock, "serve: exchange", marker, 30)
    try:
        out = _waiter(lock, 0)
        assert out.startswith("LOCKED"), out
        assert f"pid {proc.pid}" in out and '"serve: exchange"' in out and "cannot start 'waiter'" in out
        info = holder(lock)
        assert info is not None and info.pid == proc.pid and info.command == "serve: exchange"
        # The CLI shows the holder too (exit 1 while someone runs).
        (tmp_path / "s.toml").write_text(f'[journal]\nlock_file = "{lock}"\n', encoding="utf-8")
        r = subprocess.run(
            [sys.executable, str(ROOT / "run.py"), "--settings", str(tmp_path / "s.toml"), "lock"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 1 and f"pid {proc.pid}" in r.stdout
    finally:
        (tmp_path / "held.release").write_text("")
        proc.wait(timeout=20)
    assert holder(lock) is None


def test_second_process_waits_until_the_holder_is_done(tmp_path: Path):
    lock, marker = tmp_path / "run.lock", tmp_path / "held"
    proc = _start_holder(lock, "sync", marker, 1.5)
    try:
        out = _waiter(lock, 30)
    finally:
        proc.wait(timeout=20)
    assert out.startswith("GOT"), out
    assert float(out.split()[1]) > 0.3  # it really waited for the holder


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path):
    lock, marker = tmp_path / "run.lock", tmp_path / "held"
    proc = _start_holder(lock, "sync", marker, 60)
    assert _waiter(lock, 0).startswith("LOCKED")
    proc.send_signal(signal.SIGKILL)  # a crash: no finally block runs
    proc.wait(timeout=20)
    assert _waiter(lock, 0).startswith("GOT")
    assert holder(lock) is None


def test_nested_use_in_one_thread_is_allowed_other_threads_are_refused(tmp_path: Path):
    lock = tmp_path / "sub" / "run.lock"
    errors: list[str] = []

    def other() -> None:
        try:
            with run_lock(lock, "thread", wait=0):
                pass
        except LockedError as exc:
            errors.append(str(exc))

    with run_lock(lock, "outer") as info:
        assert info.command == "outer" and info.pid == os.getpid()
        with run_lock(lock, "inner") as inner:
            assert inner.command == "outer"
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert len(errors) == 1 and '"outer"' in errors[0]
    with run_lock(lock, "again"):
        pass


def test_wait_gives_up_after_the_timeout(tmp_path: Path):
    lock = tmp_path / "run.lock"
    result: list[str] = []

    def other() -> None:
        t0 = time.monotonic()
        with pytest.raises(LockedError) as exc, run_lock(lock, "late", wait=0.6):
            pass
        result.append(f"{time.monotonic() - t0:.2f} {exc.value}")

    with run_lock(lock, "first"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    seconds, text = result[0].split(" ", 1)
    assert 0.5 <= float(seconds) < 5
    assert "after waiting 0.6 s" in text
