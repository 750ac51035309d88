"""A clean stop never quarantines a good order (issue 12): real processes, real signals, real engine.

`orders import` and `orders watch` work through a batch of order files; SIGTERM or SIGINT arrives after
about twenty are imported. Whatever the engine's client library does with signals, the stop must end the
current order (commit or roll back), give every claimed file back to the inbox, quarantine nothing, and
the next run must import the rest exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.journal import Journal
from pipeline.settings import Settings
from test_orders_inbox import (
    _assert_exactly_once,
    _batch,
    _clear_reserved,
    _files,
    _settings,
    _write_settings,
)

ROOT = Path(__file__).resolve().parent.parent
N = 120


def _start(settings_file: Path, command: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(settings_file), "orders", command, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_done(box: Path, proc: subprocess.Popen, count: int) -> None:
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if len(_files(box / "done")) >= count:
            return
        time.sleep(0.02)
    out = proc.stdout.read() if proc.stdout and proc.poll() is not None else ""
    pytest.fail(f"the importer did not reach {count} imported files: {out}")


def _stop_and_check(s: Settings, proc: subprocess.Popen, sig: int) -> str:
    box = s.orders.inbox
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert _files(box / "quarantine") == [], out
    assert _files(box / "processing") == [], out  # every claim given back
    done = len(_files(box / "done"))
    assert 0 < done < N, out  # really stopped mid-batch
    waiting = [p for p in _files(box) if p.endswith(".json")]
    assert len(waiting) == N - done, out
    return out


def _finish_and_check(s: Settings, settings_file: Path) -> None:
    box = s.orders.inbox
    rerun = _start(settings_file, "import")
    out, _ = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, out
    assert len(_files(box / "done")) == N and _files(box / "quarantine") == []
    _assert_exactly_once(s, N)
    errors = Journal.from_settings(s).search(grep="quarantined", level="error")
    assert list(errors) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_orders_import_stopped_by_a_signal_quarantines_nothing(demo_env, sig):
    s = _settings(demo_env)
    _clear_reserved(s)
    _batch(s.orders.inbox, N)
    settings_file = _write_settings(s, workers=2)
    proc = _start(settings_file, "import")
    _wait_for_done(s.orders.inbox, proc, 20)
    _stop_and_check(s, proc, sig)
    assert proc.returncode != 0  # an interrupted import is not a success: the rest waits
    _finish_and_check(s, settings_file)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_orders_watch_stopped_by_a_signal_quarantines_nothing(demo_env, sig):
    s = _settings(demo_env)
    _clear_reserved(s)
    _batch(s.orders.inbox, N)
    settings_file = _write_settings(s, workers=1)
    proc = _start(settings_file, "watch")
    _wait_for_done(s.orders.inbox, proc, 20)
    out = _stop_and_check(s, proc, sig)
    assert proc.returncode == 0, out  # a requested stop of the watcher is a clean end
    _finish_and_check(s, settings_file)


def _force_shutdown(s: Settings, seconds: float) -> None:
    """Shut the database down by force (every attachment is cut) for `seconds`, then bring it online:
    what an administrator's `gfix -shut full -force 0` does, through the embedded engine's services."""
    from fdb import services

    from pipeline.torgsoft.connection import keep_signal_handlers

    with keep_signal_handlers():
        svc = services.connect(user="SYSDBA", password="embedded")
    try:
        svc.shutdown(str(s.torgsoft.database), services.SHUT_FULL, services.SHUT_FORCE, 0)
        time.sleep(seconds)
        svc.bring_online(str(s.torgsoft.database), services.SHUT_NORMAL)
    finally:
        svc.close()


def test_a_forced_database_shutdown_mid_batch_quarantines_nothing(demo_env):
    s = _settings(demo_env)
    _clear_reserved(s)
    _batch(s.orders.inbox, N)
    settings_file = _write_settings(s, workers=2)
    proc = _start(settings_file, "import")
    _wait_for_done(s.orders.inbox, proc, 20)
    _force_shutdown(s, 2.0)
    out, _ = proc.communicate(timeout=120)
    box = s.orders.inbox
    assert _files(box / "quarantine") == [], out
    assert _files(box / "processing") == [], out
    assert proc.returncode == 1, out  # the database went away: not a success, the rest waits
    assert len(_files(box / "done")) < N, out
    assert "unavailable" in out.lower() or "shutdown" in out.lower(), out
    _finish_and_check(s, settings_file)


# Run in a fresh process: the client library installs its handlers at the process's first attachment.
SIGNAL_PROBE = """
import os, signal, sys, time
from pipeline.settings import load
from pipeline.torgsoft.connection import connect
received = []
signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
con = connect(load(sys.argv[1]))
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(0.3)
cur = con.cursor()
cur.execute("SELECT COUNT(*) FROM GOOD")
print("rows", cur.fetchone()[0], "received", received)
"""


def signal_probe(settings_file: Path) -> subprocess.CompletedProcess:
    """Connect in a fresh process with our own SIGTERM handler, send SIGTERM to it, then query."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", SIGNAL_PROBE, str(settings_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_signal_reaches_the_program_and_leaves_the_attachment_alive(demo_env):
    """The engine's client installs SIGINT/SIGTERM handlers at the first attachment; ours must win."""
    done = signal_probe(_write_settings(_settings(demo_env)))
    assert done.returncode == 0 and "received [15]" in done.stdout, done.stdout + done.stderr


def test_an_idle_watcher_stops_at_once_on_sigterm(demo_env):
    """Found by the kill campaign: the idle watcher slept out its rescan interval (10 s) before it saw
    the stop, so every `systemctl stop` waited that long. The stop now ends the wait."""
    s = _settings(demo_env)
    settings_file = _write_settings(s, workers=1)
    proc = _start(settings_file, "watch")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    while line and "Watching" not in line:
        line = proc.stdout.readline()
    time.sleep(1.0)  # into the idle wait
    asked = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    took = time.monotonic() - asked
    assert proc.returncode == 0, out
    assert took < 5.0, f"the watcher took {took:.1f} s to stop (its rescan interval is 10 s)"
