"""Issue 15, a person can tell what went wrong: real processes (`run.py …`) given the bad inputs a
newcomer gives them; each must exit with the documented code, name the setting, and show no traceback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.journal import Journal
from pipeline.settings import load

ROOT = Path(__file__).resolve().parent.parent


def run_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python run.py ARGS` in `cwd` with no TORGSOFT_* variables but those given; never a traceback."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("TORGSOFT_")}
    e.update(env or {})
    r = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        env=e,
    )
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


def _settings_file(folder: Path, text: str = "") -> Path:
    path = folder / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the database path ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "empty", "junk", "empty-file", "short-junk"])
def test_a_bad_database_path_is_a_settings_problem(tmp_path, kind):
    """A zero-byte file (`touch`) or a few bytes of text used to exit 1 with the engine's raw
    "I/O error … File size is less than expected" (found by the newcomer audit): the engine reads a
    1024-byte header before it can say "not a database"."""
    value = {"missing": "nope/missing.fdb", "empty": "", "junk": "junk.fdb"}.get(kind, f"{kind}.fdb")
    (tmp_path / "junk.fdb").write_bytes(os.urandom(4096))
    (tmp_path / "empty-file.fdb").write_bytes(b"")
    (tmp_path / "short-junk.fdb").write_bytes(b"junk\n")
    s = _settings_file(tmp_path, f'[torgsoft]\ndatabase = "{value}"\n')
    r = run_cli(tmp_path, "--settings", str(s), "catalog")
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "torgsoft.database" in out
    assert "SQLCODE" not in out and "I/O error" not in out


# --- the inbox path ------------------------------------------------------------------------------------


def test_an_inbox_that_is_a_file_is_a_settings_problem(tmp_path):
    (tmp_path / "afile").write_text("x")
    s = _settings_file(tmp_path, '[orders]\ninbox = "afile"\n')
    r = run_cli(tmp_path, "--settings", str(s), "orders", "import")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "orders.inbox" in r.stderr and "not a folder" in r.stderr


def test_a_missing_inbox_is_created_and_journaled(tmp_path):
    s = _settings_file(tmp_path, '[orders]\ninbox = "new/inbox"\n')
    r = run_cli(tmp_path, "--settings", str(s), "orders", "import")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "new" / "inbox").is_dir()
    events = list(Journal.from_settings(load(s)).search(grep="created"))
    assert any(str(tmp_path / "new" / "inbox") in e.message for e in events), [e.message for e in events]


# --- finding the settings file --------------------------------------------------------------------------


def test_no_settings_file_outside_the_demo_is_refused(tmp_path):
    r = run_cli(tmp_path, "catalog")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--settings" in r.stderr and "TORGSOFT_SATU_SETTINGS" in r.stderr
    assert "init-db" not in r.stdout + r.stderr  # no demo suggestion for a missing settings file


def test_the_settings_file_from_the_environment_is_used_and_named(tmp_path):
    shop = tmp_path / "shop"
    shop.mkdir()
    s = _settings_file(shop, '[orders]\ninbox = "inbox"\n')
    elsewhere = tmp_path / "cron"
    elsewhere.mkdir()
    r = run_cli(elsewhere, "orders", "import", env={"TORGSOFT_SATU_SETTINGS": str(s)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.splitlines()[0] == f"Settings: {s}"
    assert (shop / "inbox").is_dir() and not (elsewhere / "inbox").exists()


def test_the_current_folder_settings_file_is_named_too(tmp_path):
    _settings_file(tmp_path, '[orders]\ninbox = "inbox"\n')
    r = run_cli(tmp_path, "orders", "import")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.splitlines()[0] == f"Settings: {tmp_path / 'settings.toml'}"


# --- all problems at once ------------------------------------------------------------------------------


def test_single_key_and_two_key_problems_are_reported_together(tmp_path):
    s = _settings_file(
        tmp_path, '[feed]\nzero_stok = "hide"\n\n[publish]\ntarget = "ftp"\n'
    )  # a typo and an ftp target with no host
    r = run_cli(tmp_path, "--settings", str(s), "catalog")
    assert r.returncode == 2
    assert "feed.zero_stok" in r.stderr and "publish.host" in r.stderr


# --- journal lines -------------------------------------------------------------------------------------


def test_one_event_is_one_line(tmp_path):
    j = Journal(tmp_path / "journal.sqlite", tmp_path / "sync.log")
    j.event("publish", "upload failed: 530 Login incorrect.\nDebugging info: ftputil 5.1.0", "error")
    j.close()
    (event,) = list(Journal(tmp_path / "journal.sqlite").search())
    assert "\n" not in event.message and "Login incorrect" in event.message
    assert len((tmp_path / "sync.log").read_text(encoding="utf-8").splitlines()) == 1


def test_normal_exclusions_are_info_not_warnings(demo_env):
    from pipeline import feed
    from pipeline.state import State

    journal = Journal.from_settings(demo_env)
    feed.run(demo_env, journal=journal, state=State.from_settings(demo_env), dry_run=True)
    left_out = [e for e in journal.search(grep="left out")]
    normal = [e for e in left_out if (e.data or {}).get("reason") in ("deleted", "hidden_on_site")]
    assert normal, "the demo has deleted and hidden goods"
    assert {e.level for e in normal} == {"info"}


# --- Satu unreachable / wrong URL / no token -----------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _shop(tmp_path: Path, demo_db_template: Path, satu: str) -> Path:
    shutil.copy(demo_db_template / "torgsoft.fdb", tmp_path / "torgsoft.fdb")
    shutil.copytree(demo_db_template / "photos", tmp_path / "photos")
    return _settings_file(
        tmp_path,
        '[torgsoft]\ndatabase = "torgsoft.fdb"\n[photos]\nsource_dir = "photos"\n'
        f'[publish]\ntarget = "local"\n[satu]\n{satu}\nmax_retries = 0\n',
    )


def test_push_with_satu_unreachable_names_the_reason_and_the_setting(tmp_path, demo_db_template):
    url = f"http://127.0.0.1:{_closed_port()}/api/v1"
    s = _shop(tmp_path, demo_db_template, f'base_url = "{url}"\ntoken_env = "TEST_SATU_TOKEN"')
    assert run_cli(tmp_path, "--settings", str(s), "feed").returncode == 0
    r = run_cli(tmp_path, "--settings", str(s), "push", env={"TEST_SATU_TOKEN": "t"})
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "satu.base_url" in out and "127.0.0.1" in out


def test_push_with_a_wrong_base_url_says_404_and_the_setting(tmp_path, demo_db_template):
    from pipeline.devtools.sandbox import SandboxServer

    with SandboxServer(tmp_path / "sandbox", token="t") as sb:
        s = _shop(
            tmp_path, demo_db_template, f'base_url = "{sb.root_url}/wrong/v1"\ntoken_env = "TEST_SATU_TOKEN"'
        )
        assert run_cli(tmp_path, "--settings", str(s), "feed").returncode == 0
        r = run_cli(tmp_path, "--settings", str(s), "push", env={"TEST_SATU_TOKEN": "t"})
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "404" in out and "satu.base_url" in out


def test_sync_without_a_token_says_so(tmp_path, demo_db_template):
    s = _shop(tmp_path, demo_db_template, 'token_env = "TEST_SATU_TOKEN_UNSET"')
    r = run_cli(tmp_path, "--settings", str(s), "sync")
    out = r.stdout + r.stderr
    assert "nothing to do" not in out
    assert "TEST_SATU_TOKEN_UNSET" in out and "satu.token_env" in out


# --- a missing database: every command that opens it says so, naming the key (exit code 2) -------------

MISSING_DB = "torgsoft.database: "


def _no_database(tmp_path: Path) -> Path:
    from tests.order_factory import satu_order, write_order

    (tmp_path / "inbox").mkdir()
    write_order(tmp_path / "inbox", satu_order(101))  # so that the import has an order to write
    return _settings_file(
        tmp_path,
        '[torgsoft]\ndatabase = "gone.fdb"\n[satu]\ntoken_env = "TEST_SATU_TOKEN"\n[web]\nenabled = false\n',
    )


@pytest.mark.parametrize(
    "command",
    [
        ("sync",),
        ("sync", "--partial"),
        ("feed",),
        ("photos",),
        ("catalog",),
        ("discover",),
        ("categories", "list"),
        ("stock",),
        ("status", "push"),
        ("orders", "import"),
        ("orders", "watch"),
    ],
    ids=" ".join,
)
def test_every_command_that_opens_a_missing_database_says_so_with_exit_2(tmp_path, command):
    s = _no_database(tmp_path)
    r = run_cli(tmp_path, "--settings", str(s), *command, env={"TEST_SATU_TOKEN": "t"})
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Settings problem(s):" in r.stderr, out
    assert f"  - {MISSING_DB}{tmp_path / 'gone.fdb'} does not exist" in r.stderr, out
    if command[0] == "orders":  # the order waits in the inbox for the database, never in quarantine
        assert (tmp_path / "inbox" / "satu-order-101-2026-11-27T100000.json").is_file()


def test_the_service_with_a_missing_database_alerts_and_keeps_serving(tmp_path):
    from tests.test_notify import Receiver

    receiver = Receiver()
    s = _settings_file(
        tmp_path,
        '[torgsoft]\ndatabase = "gone.fdb"\n[satu]\nbase_url = "http://127.0.0.1:9/api/v1"\n'
        'token_env = "TEST_SATU_TOKEN_UNSET"\nmax_retries = 0\n[publish]\ntarget = "local"\n'
        f'[notify]\nchannels = ["webhook"]\nwebhook_url = "{receiver.url}/hook"\n'
        "[schedule]\ninterval_minutes = 1\norders_minutes = 1\nlock_wait_seconds = 0.5\n[web]\nenabled = false\n",
    )
    e = {k: v for k, v in os.environ.items() if not k.startswith("TORGSOFT_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline._testing",
            "--minute-seconds",
            "1",
            "--",
            "--settings",
            str(s),
            "serve",
        ],
        cwd=tmp_path,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    journal = tmp_path / "var" / "journal.sqlite"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # three exchange runs: it goes on after the first failure
            if journal.exists() and len(list(Journal(journal).search(grep="exchange: run finished"))) >= 3:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        receiver.close()
    assert proc.returncode == 0, out + err
    assert "Traceback" not in out + err
    assert len(list(Journal(journal).search(grep="exchange: run finished"))) >= 3
    assert f"exchange/sync: FAILED settings problem: {MISSING_DB}" in out, out
    failed = list(Journal(journal).search(level="error", grep="settings problem: torgsoft.database"))
    assert failed, "the failure is journaled"
    alerts = [b for _, b in receiver.requests if b["kind"] == "alert" and MISSING_DB in b["text"]]
    # One alert per stage that needs the database (not one per run), naming the file and the key.
    assert sorted(a["subject"] for a in alerts) == ["status: settings problem", "sync: settings problem"]
    assert all(str(tmp_path / "gone.fdb") in a["text"] for a in alerts), alerts


def test_orders_reconcile_with_a_missing_database_says_so_with_exit_2(tmp_path):
    from pipeline.devtools.sandbox import SandboxServer

    with SandboxServer(tmp_path / "sandbox") as sb:
        sb.create_orders(1, seed=5, products=[("1", "ART-000001", "Товар 1", 1000)])  # one to look up
        s = _settings_file(
            tmp_path,
            f'[torgsoft]\ndatabase = "gone.fdb"\n[satu]\nbase_url = "{sb.url}"\ntoken_env = "TEST_SATU_TOKEN"\n'
            "max_retries = 0\n",
        )
        r = run_cli(tmp_path, "--settings", str(s), "orders", "reconcile", env={"TEST_SATU_TOKEN": sb.token})
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"  - {MISSING_DB}{tmp_path / 'gone.fdb'} does not exist" in r.stderr


def test_a_photo_problem_is_named_on_the_sync_console_line(demo_env, tmp_path):
    """Found by the newcomer audit: after the demo, `sync` said `photos  problems … finished with
    problems` and nothing else; which photo, and why, was only in the journal. The demo database
    held a file that is not an image; here one sellable good gets one."""
    from photo_helpers import add_photo_rows, sellable_good_ids
    from test_sync import settings_file

    (Path(demo_env.photos.source_dir) / "corrupt_not_image.jpg").write_bytes(b"this is no picture")
    add_photo_rows(demo_env, sellable_good_ids(demo_env, 1)[0], ["corrupt_not_image.jpg"])
    r = run_cli(tmp_path, "--settings", str(settings_file(demo_env, tmp_path)), "sync")
    (line,) = [x for x in (r.stdout + r.stderr).splitlines() if x.startswith("photos ")]
    assert "corrupt_not_image.jpg" in line and "not an image" in line, r.stdout + r.stderr


def test_orders_watch_on_an_inbox_that_is_a_file_never_says_it_is_watching(tmp_path):
    """Found by the newcomer audit: `orders watch` printed `Watching /x/afile (Ctrl+C to stop)` and then
    the settings problem; it now says it watches only a folder it really watches."""
    (tmp_path / "afile").write_text("x")
    s = _settings_file(tmp_path, '[orders]\ninbox = "afile"\n')
    r = run_cli(tmp_path, "--settings", str(s), "orders", "watch")
    assert r.returncode == 2 and "orders.inbox" in r.stderr, r.stdout + r.stderr
    assert "Watching" not in r.stdout + r.stderr
