"""Issue 12 (state): a lost, emptied or damaged state file is never silent loss — each test failed before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.settings import Settings
from test_sync import settings_file

ROOT = Path(__file__).resolve().parent.parent


def _run_cli(settings: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI in a process of its own (as cron or the service would run it)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(settings), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _pictures(feed: Path) -> int:
    return feed.read_text(encoding="utf-8").count("<picture>")


@pytest.mark.parametrize("loss", ["deleted", "emptied"])
def test_feed_after_a_lost_state_never_drops_every_picture(demo_env: Settings, tmp_path: Path, loss: str):
    path = settings_file(demo_env, tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["--settings", str(path), "photos"]).exit_code == 0
    first = runner.invoke(cli, ["--settings", str(path), "feed"])
    assert first.exit_code == 0, first.output
    feed = tmp_path / "feeds" / "satu.yml"
    pictures = _pictures(feed)
    assert pictures > 10
    state = tmp_path / "state.sqlite"
    if loss == "deleted":
        state.unlink()
    else:
        state.write_bytes(b"")
    # `feed` before `photos`, in a process of its own (as cron or the service would run it)
    again = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(path), "feed"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert again.returncode != 0, again.stdout + again.stderr
    said = again.stdout + again.stderr
    assert "Traceback" not in said, said
    # Either way out is named: the guard names the pictures (a new, empty state), or, when a
    # write-ahead log is left beside the deleted or emptied file (a connection of the first runs not
    # closed yet keeps it), SQLite cannot use it and the state file is named with the way out.
    assert "picture" in said or str(state) in said, said
    assert _pictures(feed) == pictures  # the live feed keeps its pictures


def test_a_damaged_state_file_is_named_with_a_way_out(demo_env: Settings, tmp_path: Path):
    path = settings_file(demo_env, tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["--settings", str(path), "feed"]).exit_code == 0
    state = tmp_path / "state.sqlite"
    data = bytearray(state.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the header survives, the first page is garbage
    state.write_bytes(bytes(data))
    result = runner.invoke(cli, ["--settings", str(path), "feed"])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and str(state) in result.output, result.output
    assert "doctor" in result.output or "restore" in result.output, result.output


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    path.write_bytes(bytes(data))


def test_a_damaged_journal_never_stops_the_order_import(demo_env: Settings, tmp_path: Path):
    from order_factory import satu_order, write_order
    from pipeline.torgsoft.connection import connect

    path = settings_file(demo_env, tmp_path, orders=f'inbox = "{tmp_path / "inbox"}"\nsettle_seconds = 0')
    write_order(tmp_path / "inbox", satu_order(821))
    assert _run_cli(path, "orders", "import").returncode == 0
    journal = tmp_path / "journal.sqlite"
    _damage(journal)
    write_order(tmp_path / "inbox", satu_order(822))
    result = _run_cli(path, "orders", "import")
    said = result.stdout + result.stderr
    assert result.returncode == 0 and str(journal) in said and "Traceback" not in said, said
    con = connect(demo_env)
    try:
        cur = con.cursor()
        cur.execute("SELECT COUNT(*) FROM CUSTOMER_ORDER WHERE EXTERNAL_ID = '822'")
        assert cur.fetchone()[0] == 1
    finally:
        con.close()
    assert (tmp_path / "inbox" / "done").exists() and len(list((tmp_path / "inbox" / "done").iterdir())) == 2


def test_a_second_connection_in_another_thread_keeps_the_writes_visible_to_other_processes(tmp_path):
    """Opening the state file again (a thread's own connection) must not drop this process's SQLite
    locks: before the fix another process then deleted the WAL still written to and saw no more writes."""
    import threading

    from pipeline.state import State

    path = tmp_path / "state.sqlite"
    main = State(path)
    main.put("t", "n", 0)
    other = State(path)
    opened = threading.Thread(target=lambda: other.get("t", "n"))  # its own connection, in its thread
    opened.start()
    opened.join()
    reader = "import sys; from pipeline.state import State; print(State(sys.argv[1]).get('t', 'n'))"
    for n in (1, 2, 3):
        main.put("t", "n", n)
        seen = subprocess.run(
            [sys.executable, "-c", reader, str(path)], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert seen.stdout.strip() == str(n), seen.stderr
    main.close()
    other.close()


@pytest.mark.skipif(os.name != "posix", reason="file modes and symlinks are POSIX")
def test_an_existing_state_file_is_made_private_and_a_symlink_refused(tmp_path):
    from pipeline.fsutil import create_private

    existing = tmp_path / "state.sqlite"
    existing.write_bytes(b"")
    existing.chmod(0o644)
    create_private(existing)
    assert existing.stat().st_mode & 0o777 == 0o600
    link = tmp_path / "link.sqlite"
    link.symlink_to(existing)
    with pytest.raises(OSError):
        create_private(link)


def test_sync_partial_after_a_lost_state_keeps_the_pictures_and_says_why(demo_env: Settings, tmp_path: Path):
    """`sync --partial` is the service's partial mode (issue 12: it published 0 pictures after a lost
    state). The guard keeps the live feed, and the console line of the feed stage carries the guard's
    reason — it used to say only "finished with problems" (found by the audit), the reason being in
    the journal alone."""
    path = settings_file(demo_env, tmp_path)
    first = _run_cli(path, "sync")
    assert first.returncode == 0, first.stdout + first.stderr
    live = tmp_path / "public" / "satu.yml"
    pictures = _pictures(live)
    assert pictures > 10
    state = tmp_path / "state.sqlite"
    for leftover in tmp_path.glob("state.sqlite*"):
        leftover.unlink()
    again = _run_cli(path, "sync", "--partial")
    said = again.stdout + again.stderr
    assert again.returncode != 0 and "Traceback" not in said, said
    assert _pictures(live) == pictures, said  # the published feed keeps its pictures
    (feed_line,) = [line for line in said.splitlines() if line.startswith("feed ")]
    assert "picture" in feed_line or str(state) in feed_line, said
