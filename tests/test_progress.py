"""Progress: plain lines when the output is not a terminal."""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.progress import Progress


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    with Progress(3, "upload photos", stream=out, interval=0) as bar:
        for _ in range(3):
            bar.update()
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("upload photos: 3/3 files")
    assert len(lines) == 4  # one per update and the final one; no bar control characters
    assert "\r" not in out.getvalue()


def test_a_step_quicker_than_the_interval_writes_nothing():
    out = io.StringIO()
    with Progress(3, "feed", stream=out, interval=3600) as bar:
        for _ in range(3):
            bar.update()
    assert out.getvalue() == ""  # no final line either: a quick run adds nothing to a cron mail


def test_silent_when_disabled_or_empty():
    out = io.StringIO()
    with Progress(5, "x", stream=out, enabled=False) as bar:
        bar.update(5)
    with Progress(0, "y", stream=out) as bar:
        pass
    assert out.getvalue() == ""


# --- the real commands: periodic lines in a pipe, a bar on a terminal, nothing from the service ---------

ROOT = Path(__file__).resolve().parent.parent


def _shop(tmp_path: Path, demo_db_template: Path) -> Path:
    shutil.copy(demo_db_template / "torgsoft.fdb", tmp_path / "torgsoft.fdb")
    shutil.copytree(demo_db_template / "photos", tmp_path / "photos")
    settings = tmp_path / "settings.toml"
    settings.write_text(
        '[torgsoft]\ndatabase = "torgsoft.fdb"\n[photos]\nsource_dir = "photos"\n[web]\nenabled = false\n',
        encoding="utf-8",
    )
    return settings


def _argv(settings: Path, *args: str, interval: float = 0) -> list[str]:
    """The CLI through the test seam, with a plain progress line every `interval` seconds."""
    seam = ["-m", "pipeline._testing", "--progress-seconds", str(interval), "--"]
    return [sys.executable, *seam, "--settings", str(settings), *args]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TORGSOFT_") and k != "SATU_TOKEN"}


def _piped(settings: Path, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run(
        _argv(settings, *args), cwd=settings.parent, capture_output=True, text=True, timeout=180, env=_env()
    )
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


def _on_a_terminal(settings: Path, *args: str) -> str:
    """Run with stdin, stdout and stderr on a pseudo-terminal (80 columns); everything it wrote."""
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        _argv(settings, *args, interval=3600),
        cwd=settings.parent,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=_env(),
        close_fds=True,
    )
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=180) == 0, out
    return out.decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("catalog",), r"^catalog: (\d+) products \("),
        (("feed",), r"^feed: (?:done: )?(\d+) products read, \d+ offers rendered \("),
    ],
)
def test_long_commands_write_periodic_lines_when_not_on_a_terminal(tmp_path, demo_db_template, args, pattern):
    r = _piped(_shop(tmp_path, demo_db_template), *args)
    assert r.returncode == 0, r.stdout + r.stderr
    counts = [int(m.group(1)) for m in re.finditer(pattern, r.stderr, re.MULTILINE)]
    assert len(counts) >= 3, r.stderr
    assert counts == sorted(counts), counts
    assert counts[-1] == 300, counts  # the last line counts the whole catalog
    assert "\r" not in r.stderr  # lines, no redrawn bar
    assert not re.search(pattern, r.stdout, re.MULTILINE)  # progress is on stderr, the summary on stdout


def test_init_db_writes_periodic_lines(tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_text(
        '[torgsoft]\ndatabase = "new.fdb"\n[photos]\nsource_dir = "photos"\n', encoding="utf-8"
    )
    r = _piped(settings, "init-db", "--products", "120")
    assert r.returncode == 0, r.stdout + r.stderr
    goods = re.findall(r"^demo goods: (\d+)/120 goods", r.stderr, re.MULTILINE)
    assert len(goods) >= 3 and goods[-1] == "120", r.stderr
    assert re.search(r"^demo images: \d+/30 images", r.stderr, re.MULTILINE), r.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
@pytest.mark.parametrize("command", ["catalog", "feed"])
def test_on_a_terminal_a_bar_is_drawn(tmp_path, demo_db_template, command):
    out = _on_a_terminal(_shop(tmp_path, demo_db_template), command)
    assert re.search(rf"\r{command}(: offers rendered)?: \d+ (products|offers) \[", out), out
    assert not re.search(r"^(catalog|feed): \d+ products(?: read)?.*\(\d", out, re.MULTILINE), out


def test_the_service_shows_no_progress(tmp_path, demo_db_template):
    r = _piped(_shop(tmp_path, demo_db_template), "serve", "--once", "--no-watch")
    out = r.stdout + r.stderr
    assert not re.search(r"^(feed|photos): .*\(\d+\.\d s\)$", out, re.MULTILINE), out
    assert (tmp_path / "feeds" / "satu.yml").is_file(), out  # the feed ran, silently


HOLDER = """
import sys, time
from pathlib import Path
from pipeline.lock import run_lock
with run_lock(sys.argv[1], "serve: exchange"):
    Path(sys.argv[2]).write_text("x")
    while not Path(sys.argv[3]).exists():
        time.sleep(0.05)
"""


def test_the_lock_wait_says_who_holds_it_and_how_long(tmp_path, demo_db_template):
    settings = _shop(tmp_path, demo_db_template)
    held, release = tmp_path / "held", tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "var" / "run.lock"), str(held), str(release)],
        env={**_env(), "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while not held.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        waiter = subprocess.Popen(
            _argv(settings, "--set", "schedule.lock_wait_seconds=120", "feed", interval=0.05),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        assert waiter.stderr is not None
        waiting = []
        for line in waiter.stderr:  # the waiting lines come while the holder still holds the lock
            if line.startswith("waiting for the run lock"):
                waiting.append(line.rstrip("\n"))
            if len(waiting) >= 3:
                break
        release.write_text("go")
        rest = waiter.stderr.read()
        assert waiter.wait(timeout=120) == 0, rest
    finally:
        release.write_text("go")
        holder.wait(timeout=30)
    first = waiting[0]
    assert f"held by pid {holder.pid} ('serve: exchange' on " in first, waiting
    assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, \d+ s / 120 s$", first), waiting
    assert re.search(r"^waited \d+ s for the run lock$", rest, re.MULTILINE), rest
