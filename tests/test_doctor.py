"""`doctor`: the real command against real files — a demo shop, a damaged SQLite file (garbage written
into its pages), a missing inbox, a missing database, a broken mapping; `--online` against the Satu
sandbox and a real FTP server."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.journal import Journal
from pipeline.state import State
from tests.servers import ftp_server

ROOT = Path(__file__).resolve().parent.parent


def _shop(tmp_path: Path, demo_db_template: Path, extra: str = "", torgsoft: str = "") -> Path:
    shutil.copy(demo_db_template / "torgsoft.fdb", tmp_path / "torgsoft.fdb")
    shutil.copytree(demo_db_template / "photos", tmp_path / "photos")
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[torgsoft]\ndatabase = "torgsoft.fdb"\n{torgsoft}[photos]\nsource_dir = "photos"\n'
        '[satu]\ntoken_env = "TEST_DOCTOR_TOKEN"\nbase_url = "http://127.0.0.1:9/api/v1"\nmax_retries = 0\n'
        + extra,
        encoding="utf-8",
    )
    return settings


def _files(settings: Path) -> None:
    """State and journal with some rows, as after a few runs; the inbox with its folders."""
    from pipeline.settings import load

    s = load(settings)
    state = State.from_settings(s)
    state.put_many("test.rows", ((f"k{i}", "x" * 200) for i in range(400)))  # several pages
    state.close()
    journal = Journal.from_settings(s)
    for i in range(300):
        journal.event("test", f"event {i} " + "y" * 100)
    journal.close()
    for sub in ("", "processing", "done", "quarantine"):
        (settings.parent / "inbox" / sub).mkdir(parents=True, exist_ok=True, mode=0o700)


def doctor(
    settings: Path, *args: str, token: str | None = "t", env_more: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORGSOFT_", "TEST_DOCTOR"))}
    env.update(env_more or {})
    if token is not None:
        env["TEST_DOCTOR_TOKEN"] = token
    r = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(settings), "doctor", *args],
        cwd=settings.parent,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


def _lines(r: subprocess.CompletedProcess, name: str) -> list[str]:
    return [line for line in r.stdout.splitlines() if line[5:].startswith(f"{name} ")]


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the main file, so that the pages below are the file's real content."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def test_a_healthy_shop_is_all_ok(tmp_path, demo_db_template):
    settings = _shop(tmp_path, demo_db_template)
    _files(settings)
    r = doctor(settings)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [line.split()[0] for line in r.stdout.splitlines()[:-1]] == ["OK"] * (
        len(r.stdout.splitlines()) - 1
    )
    assert _lines(r, "database") == [f"OK   database   {tmp_path / 'torgsoft.fdb'}: connected"]
    assert len(_lines(r, "mapping")) == 2  # the catalog queries and the order statements
    assert f"{tmp_path / 'var' / 'state.sqlite'}: intact" in r.stdout
    assert "TEST_DOCTOR_TOKEN is set (not tried" in r.stdout  # offline: no call to 127.0.0.1:9
    assert r.stdout.splitlines()[-1].endswith(" 0 WARN, 0 FAIL")
    report = json.loads(doctor(settings, "--json").stdout)
    assert report["ok"] is True
    assert {c["check"] for c in report["checks"]} >= {
        "settings",
        "database",
        "mapping",
        "state",
        "journal",
        "inbox",
        "disk",
        "satu",
        "publish",
    }


@pytest.mark.parametrize("which", ["state", "journal"])
def test_a_damaged_sqlite_file_fails_naming_it_and_the_restore(tmp_path, demo_db_template, which):
    settings = _shop(tmp_path, demo_db_template)
    _files(settings)
    path = tmp_path / "var" / f"{which}.sqlite"
    _checkpoint(path)
    with open(path, "r+b") as fh:  # garbage over pages 3 and 4: the header stays, the b-tree breaks
        fh.seek(2 * 4096)
        fh.write(os.urandom(2 * 4096))
    r = doctor(settings)
    assert r.returncode == 1, r.stdout
    [line] = _lines(r, which)
    assert line.startswith(f"FAIL {which:<10} {path} is damaged: "), line
    assert (
        "restore the file from the last backup" in line
        and "docs/troubleshooting.md#backup-and-restore" in line
    )
    other = "journal" if which == "state" else "state"
    assert _lines(r, other)[0].startswith("OK "), r.stdout  # the other file is judged on its own


def test_a_missing_inbox_is_reported_not_created(tmp_path, demo_db_template):
    settings = _shop(tmp_path, demo_db_template, '[orders]\ninbox = "nowhere/inbox"\n')
    r = doctor(settings)
    assert r.returncode == 0, r.stdout
    [line] = _lines(r, "inbox")
    assert line.startswith(f"WARN inbox      {tmp_path / 'nowhere' / 'inbox'} does not exist yet"), line
    assert not (tmp_path / "nowhere").exists()  # doctor changes nothing
    assert not (tmp_path / "var" / "state.sqlite").exists()
    assert "WARN state" in r.stdout and "a new, empty one is started" in r.stdout


def test_an_inbox_that_is_a_file_fails(tmp_path, demo_db_template):
    (tmp_path / "afile").write_text("x")
    r = doctor(_shop(tmp_path, demo_db_template, '[orders]\ninbox = "afile"\n'))
    assert r.returncode == 1
    assert _lines(r, "inbox") == [
        f"FAIL inbox      {tmp_path / 'afile'} is not a folder — fix: set orders.inbox to a folder (or move the file aside)"
    ]


def test_personal_data_open_to_others_and_quarantine_are_warned(tmp_path, demo_db_template):
    settings = _shop(tmp_path, demo_db_template)
    _files(settings)
    order = tmp_path / "inbox" / "done" / "order-1.json"
    order.write_text("{}")
    order.chmod(0o644)
    (tmp_path / "inbox" / "quarantine" / "bad.json").write_text("{")
    (tmp_path / "inbox" / "quarantine" / "bad.json").chmod(0o600)
    (tmp_path / "inbox" / "quarantine").chmod(0o755)
    r = doctor(settings)
    assert r.returncode == 0, r.stdout  # warnings, not failures
    text = "\n".join(_lines(r, "inbox"))
    assert f"WARN inbox      1 file(s) with personal data readable by others: {order}" in text
    assert f"chmod 600 {order}" in text
    assert f"folders open to others: {tmp_path / 'inbox' / 'quarantine'}" in text
    assert "1 file(s) in quarantine" in text


def test_a_missing_database_and_no_token_fail(tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_text('[torgsoft]\ndatabase = "gone.fdb"\n[satu]\ntoken_env = "TEST_DOCTOR_TOKEN"\n')
    r = doctor(settings, token=None)
    assert r.returncode == 1, r.stdout
    [db] = _lines(r, "database")
    assert db.startswith(
        f"FAIL database   torgsoft.database: {tmp_path / 'gone.fdb'} does not exist — fix: set torgsoft.database"
    )
    [satu] = _lines(r, "satu")
    assert (
        satu.startswith("FAIL satu       TEST_DOCTOR_TOKEN is not set")
        and "export TEST_DOCTOR_TOKEN=" in satu
    )
    assert "OK   disk" in r.stdout  # the other checks still ran


def test_a_broken_mapping_fails_naming_the_file(tmp_path, demo_db_template):
    mapping = tmp_path / "mapping"
    mapping.mkdir()
    (mapping / "products.sql").write_text("SELECT NO_SUCH_COLUMN FROM GOOD\n")
    r = doctor(_shop(tmp_path, demo_db_template, torgsoft=f'mapping_dir = "{mapping}"\n'))
    assert r.returncode == 1, r.stdout
    catalog, orders = _lines(r, "mapping")
    assert catalog.startswith(f"FAIL mapping    catalog SQL: {mapping / 'products.sql'}: does not run"), (
        catalog
    )
    assert orders.startswith("OK   mapping    order SQL"), orders


def test_settings_that_do_not_load_are_the_report(tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_text("[schedule]\ninterval_minutes = -5\n")
    r = doctor(settings)
    assert r.returncode == 1
    assert r.stdout.startswith("FAIL settings   schedule.interval_minutes: "), r.stdout


def test_online_tries_the_satu_token_and_the_publish_target(tmp_path, demo_db_template):
    from pipeline.devtools.sandbox import SandboxServer

    with (
        SandboxServer(tmp_path / "sandbox", token="good") as sb,
        ftp_server(tmp_path / "ftp", "shop", "pw") as ftp,
    ):
        settings = _shop(tmp_path, demo_db_template)
        settings.write_text(
            settings.read_text().replace("http://127.0.0.1:9/api/v1", sb.url)
            + f'[publish]\ntarget = "ftp"\nhost = "127.0.0.1"\nport = {ftp.port}\nuser = "shop"\n'
            'password_env = "TEST_DOCTOR_FTP"\nremote_dir = "/"\n'
            'public_base_url = "http://127.0.0.1:8765"\nallow_private_urls = true\n'
        )
        good = doctor(settings, "--online", token="good", env_more={"TEST_DOCTOR_FTP": "pw"})
        bad = doctor(settings, "--online", token="wrong", env_more={"TEST_DOCTOR_FTP": "pw"})
        no_ftp = doctor(settings, "--online", token="good", env_more={"TEST_DOCTOR_FTP": "not-the-password"})
    assert _lines(good, "satu") == [f"OK   satu       {sb.url}: the token is accepted"], good.stdout
    assert _lines(good, "publish")[0].startswith("OK   publish    ftp: connected"), good.stdout
    assert bad.returncode == 1 and _lines(bad, "satu")[0].startswith("FAIL satu"), bad.stdout
    assert no_ftp.returncode == 1 and _lines(no_ftp, "publish")[0].startswith("FAIL publish"), no_ftp.stdout


def test_a_lost_state_file_is_not_taken_for_a_first_run(tmp_path, demo_db_template):
    settings = _shop(tmp_path, demo_db_template)
    from pipeline.settings import load

    Journal.from_settings(load(settings)).event("feed", "feed published: 250 offers, 0 hidden")
    r = doctor(settings)
    assert r.returncode == 1, r.stdout
    [line] = _lines(r, "state")
    assert line.startswith(
        f"FAIL state      {tmp_path / 'var' / 'state.sqlite'} does not exist, but the journal"
    ), line
    assert "'feed published'" in line and "restore the file from the last backup" in line
    assert not (tmp_path / "var" / "state.sqlite").exists()
