"""Issue 15, security: each threat reproduced with real components (an SMTP server, a real process running
check-feed, symlinks and FIFOs in a real inbox, the sandbox over HTTP, file modes on disk)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from order_factory import satu_order
from pipeline.errors import SettingsError
from pipeline.journal import Journal
from pipeline.settings import build
from pipeline.state import State

ROOT = Path(__file__).resolve().parent.parent
POSIX = os.name == "posix"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _base(tmp_path: Path, **sections: dict) -> dict:
    data: dict = {
        "journal": {
            "path": str(tmp_path / "var" / "journal.sqlite"),
            "log_file": str(tmp_path / "var" / "sync.log"),
            "state_path": str(tmp_path / "var" / "state.sqlite"),
            "lock_file": str(tmp_path / "var" / "run.lock"),
        },
        "feed": {"output": str(tmp_path / "feeds" / "satu.yml")},
        "orders": {"inbox": str(tmp_path / "inbox")},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


# --- SMTP: never a password over plain TCP ------------------------------------------------------------


def test_smtp_login_without_tls_is_a_settings_error_naming_the_key(tmp_path):
    with pytest.raises(SettingsError) as err:
        build(
            _base(tmp_path, notify={"smtp_host": "127.0.0.1", "smtp_user": "shop", "smtp_tls": "none"}),
            tmp_path,
        )
    keys = {p.key: p for p in err.value.problems}
    assert "notify.smtp_tls" in keys
    assert "unknown" not in keys["notify.smtp_tls"].message
    assert "clear text" in str(keys["notify.smtp_tls"])


def test_smtp_user_with_the_default_tls_setting_is_refused_too(tmp_path):
    with pytest.raises(SettingsError) as err:
        build(_base(tmp_path, notify={"smtp_host": "127.0.0.1", "smtp_user": "shop"}), tmp_path)
    assert [p.key for p in err.value.problems] == ["notify.smtp_tls"]


def test_smtp_implicit_tls_logs_in_over_tls_only(tmp_path, monkeypatch):
    from aiosmtpd.smtp import AuthResult

    from pipeline.notify import Message, Notifier
    from test_notify import Mailbox, _self_signed

    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    logins: list[bytes] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append(auth_data.password)
        return AuthResult(success=auth_data.password == b"smtp-pass")

    # Implicit TLS (port 465 style): the whole SMTP session is inside TLS from the first byte.
    ctl = Controller(
        box,
        hostname="127.0.0.1",
        port=_free_port(),
        ssl_context=context,
        authenticator=authenticator,
        auth_require_tls=False,  # aiosmtpd counts only STARTTLS as TLS; this session is all TLS anyway
    )
    ctl.start()
    try:
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "smtp-pass")
        s = build(
            _base(
                tmp_path,
                notify={
                    "channels": ["email"],
                    "smtp_host": "127.0.0.1",
                    "smtp_port": ctl.port,
                    "smtp_tls": "implicit",
                    "smtp_cafile": str(cert),
                    "smtp_user": "shop",
                    "smtp_password_env": "TEST_SMTP_PASSWORD",
                    "email_to": ["owner@example.kz"],
                },
            ),
            tmp_path,
        )
        n = Notifier(s, journal=Journal.from_settings(s), state=State.from_settings(s), echo=None)
        assert n.deliver(Message("orders", "1 new order, 0 new invoices", "text")) == {"email": True}
        assert len(box.messages) == 1 and logins == [b"smtp-pass"]
        # the server speaks TLS from the first byte: a plain SMTP client cannot even say hello
        import smtplib

        with pytest.raises((smtplib.SMTPException, OSError)):
            smtplib.SMTP("127.0.0.1", ctl.port, timeout=3).ehlo()
    finally:
        ctl.stop()


# --- check-feed: no entity is ever expanded -------------------------------------------------------------


def _check_feed(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "check-feed", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=path.parent,
    )


@pytest.mark.parametrize("kind", ["external", "internal"])
def test_check_feed_refuses_a_doctype_and_prints_no_entity_content(tmp_path, kind):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    entity = f'SYSTEM "file://{secret}"' if kind == "external" else '"TOP-SECRET-CONTENT"'
    feed = tmp_path / "evil.yml"
    feed.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<!DOCTYPE yml_catalog [<!ENTITY leak {entity}>]>\n"
        '<yml_catalog date="2026-01-01 00:00"><shop><name>&leak;</name><company>c</company>'
        '<url>https://x.kz</url><currencies><currency id="KZT" rate="1"/></currencies>'
        '<categories><category id="1">&leak;</category></categories>'
        '<offers><offer id="1" available="true"><name>&leak;</name><price>1</price>'
        "<currencyId>KZT</currencyId><categoryId>1</categoryId></offer></offers></shop></yml_catalog>\n",
        encoding="utf-8",
    )
    r = _check_feed(feed)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "TOP-SECRET-CONTENT" not in out
    assert "DOCTYPE" in out
    assert "Traceback" not in out


# --- the inbox reads regular files only -----------------------------------------------------------------


def _inbox_run(settings):
    from pipeline.orders import inbox

    journal = Journal.from_settings(settings)
    return inbox.run(settings, journal=journal, state=State.from_settings(settings), max_wait=0), journal


def _settle0(env):
    from dataclasses import replace

    return env.replace(orders=replace(env.orders, settle_seconds=0))


@pytest.mark.skipif(not POSIX, reason="symlinks need POSIX")
def test_a_symlink_planted_in_processing_is_not_followed(demo_env, tmp_path):
    s = _settle0(demo_env)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "order.json"
    body = json.dumps({"order": satu_order(701)}, ensure_ascii=False)
    target.write_text(body, encoding="utf-8")
    processing = s.orders.inbox / "processing"
    processing.mkdir(parents=True)
    (processing / "deadhost-1-abcdef~planted.json").symlink_to(target)
    result, journal = _inbox_run(s)
    assert result.imported == 0
    assert target.read_text(encoding="utf-8") == body  # untouched, still where it was
    for sub in ("done", "processing", "."):  # set aside in quarantine/, moved as a link, never opened
        folder = s.orders.inbox / sub
        assert not [p for p in folder.iterdir() if p.is_symlink()], sub
    (kept,) = [p for p in (s.orders.inbox / "quarantine").iterdir() if p.is_symlink()]
    assert os.readlink(kept) == str(target)
    assert "not a regular file" in Path(str(kept) + ".reason.txt").read_text(encoding="utf-8")
    events = list(journal.search(grep="planted.json"))
    assert any("not a regular file" in e.message for e in events), [e.message for e in events]


@pytest.mark.skipif(not POSIX, reason="symlinks need POSIX")
def test_a_symlink_in_the_inbox_folder_is_skipped_and_journaled(demo_env, tmp_path):
    s = _settle0(demo_env)
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"order": satu_order(702)}), encoding="utf-8")
    s.orders.inbox.mkdir(parents=True)
    (s.orders.inbox / "link.json").symlink_to(target)
    result, journal = _inbox_run(s)
    assert result.imported == 0 and (s.orders.inbox / "link.json").is_symlink()
    events = list(journal.search(grep="link.json"))
    assert [e.level for e in events] == ["warning"]
    assert "not a regular file (symbolic link)" in events[0].message


@pytest.mark.skipif(not POSIX, reason="FIFOs need POSIX")
def test_a_fifo_in_processing_does_not_hang_the_importer(demo_env):
    s = _settle0(demo_env)
    processing = s.orders.inbox / "processing"
    processing.mkdir(parents=True)
    os.mkfifo(processing / "deadhost-1-abcdef~pipe.json")
    code = (
        "import sys; sys.path.insert(0, {!r}); sys.path.insert(0, {!r})\n"
        "from pipeline.settings import build\n"
        "from pipeline.journal import Journal\nfrom pipeline.state import State\n"
        "from pipeline.orders import inbox\nfrom conftest import make_settings\n"
        "from pathlib import Path\nfrom dataclasses import replace\n"
        "s = make_settings(Path({!r}))\n"
        "s = s.replace(orders=replace(s.orders, settle_seconds=0))\n"
        "r = inbox.run(s, journal=Journal.from_settings(s), state=State.from_settings(s), max_wait=0)\n"
        "print('imported', r.imported)\n"
    ).format(str(ROOT), str(ROOT / "tests"), str(s.base_dir))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "imported 0" in r.stdout
    events = list(Journal.from_settings(s).search(grep="pipe.json"))
    assert any("not a regular file" in e.message for e in events)


# --- the sandbox's control endpoints: no cross-site POST --------------------------------------------


@pytest.fixture()
def sandbox(tmp_path):
    from pipeline.devtools.sandbox import SandboxServer

    with SandboxServer(tmp_path / "sandbox", token="sb-token") as sb:
        yield sb


def test_sandbox_control_refuses_a_browser_form_post(sandbox):
    # What a web page can send cross-site without a preflight: a form (text/plain body shaped as JSON).
    r = httpx.post(
        sandbox.root_url + "/_sandbox/orders",
        content=b'{"count": 3, "x": "=1"}',
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 403
    assert sandbox.orders() == []


def test_sandbox_control_accepts_the_token_or_the_custom_header(sandbox):
    r = httpx.post(
        sandbox.root_url + "/_sandbox/orders",
        json={"count": 1, "seed": 1},
        headers={"Authorization": "Bearer sb-token"},
    )
    assert r.status_code == 200, r.text
    r = httpx.post(
        sandbox.root_url + "/_sandbox/orders", json={"count": 1, "seed": 2}, headers={"X-Sandbox": "1"}
    )
    assert r.status_code == 200, r.text
    assert len(sandbox.orders()) == 2


def test_sandbox_caps_request_bodies(sandbox):
    big = b'{"count": 1, "pad": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    r = httpx.post(
        sandbox.root_url + "/_sandbox/orders",
        content=big,
        headers={"X-Sandbox": "1", "Content-Type": "application/json"},
    )
    assert r.status_code == 413


# --- personal data on disk: 0600 files, 0700 folders, done/ pruned ---------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(not POSIX, reason="file modes are POSIX")
def test_state_journal_and_sandbox_db_are_private(tmp_path):
    from pipeline.devtools.sandbox import SandboxServer

    s = build(_base(tmp_path), tmp_path)
    old = os.umask(0o022)
    try:
        j = Journal.from_settings(s)
        j.event("test", "hello")
        st = State.from_settings(s)
        st.put("ns", "k", 1)
        with SandboxServer(tmp_path / "sandbox"):
            pass
    finally:
        os.umask(old)
    for f in (
        s.journal.path,
        s.journal.state_path,
        s.journal.log_file,
        tmp_path / "sandbox" / "sandbox.sqlite",
    ):
        assert _mode(f) == 0o600, (f, oct(_mode(f)))
    assert _mode(s.journal.path.parent) == 0o700
    assert _mode(tmp_path / "sandbox") == 0o700


@pytest.mark.skipif(not POSIX, reason="file modes are POSIX")
def test_fetched_order_files_and_the_inbox_are_private(tmp_path, sandbox, monkeypatch):
    from pipeline.orders import fetch

    monkeypatch.setenv("TEST_SATU_TOKEN", "sb-token")
    s = build(_base(tmp_path, satu={"base_url": sandbox.url, "token_env": "TEST_SATU_TOKEN"}), tmp_path)
    sandbox.create_orders(2, seed=3)
    old = os.umask(0o022)
    try:
        result = fetch.run(s, journal=Journal.from_settings(s), state=State.from_settings(s))
    finally:
        os.umask(old)
    assert result.written == 2
    files = [p for p in s.orders.inbox.iterdir() if p.is_file()]
    assert len(files) == 2
    assert all(_mode(p) == 0o600 for p in files)
    assert _mode(s.orders.inbox) == 0o700


def test_keep_done_days_prunes_old_files_from_done(tmp_path):
    from pipeline.orders.claims import prune_done

    s = build(_base(tmp_path), tmp_path)
    assert s.orders.keep_done_days == 90
    done = s.orders.inbox / "done"
    done.mkdir(parents=True)
    old, new = done / "old.json", done / "new.json"
    old.write_text("{}")
    new.write_text("{}")
    ninety_one_days_ago = time.time() - 91 * 86400
    os.utime(old, (ninety_one_days_ago, ninety_one_days_ago))
    journal = Journal.from_settings(s)
    assert prune_done(s, journal=journal) == 1
    assert not old.exists() and new.exists()
    assert list(journal.search(grep="removed 1"))


# --- token-bearing URLs over plain http ------------------------------------------------------------------


def test_plain_http_satu_url_warns_at_the_top_of_the_run(tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_text('[satu]\nbase_url = "http://my.satu.kz/api/v1"\n', encoding="utf-8")
    r = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(settings), "orders", "import"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "satu.base_url" in r.stderr and "https" in r.stderr
    # a loopback sandbox is fine over http
    settings.write_text('[satu]\nbase_url = "http://127.0.0.1:9/api/v1"\n', encoding="utf-8")
    r = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(settings), "orders", "import"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert "satu.base_url" not in r.stderr


def test_the_service_prune_job_removes_old_order_files(tmp_path):
    from pipeline.service import StepContext, jobs_from_settings

    s = build(_base(tmp_path, orders={"keep_done_days": 30}), tmp_path)
    done = s.orders.inbox / "done"
    done.mkdir(parents=True)
    old = done / "satu-1.json"
    old.write_text("{}")
    forty_days_ago = time.time() - 40 * 86400
    os.utime(old, (forty_days_ago, forty_days_ago))
    (job,) = [j for j in jobs_from_settings(s) if j.name == "prune"]
    ctx = StepContext(s, Journal.from_settings(s), State.from_settings(s))
    results = [step.func(ctx) for step in job.steps]
    assert [r.order_files for r in results] == [1]
    assert not old.exists()


def test_the_web_settings_page_lists_the_plain_http_warning(tmp_path):
    from pipeline.web.settings_check import settings_report

    s = build(_base(tmp_path, notify={"telegram_api": "http://tg.example.kz"}), tmp_path)
    problems = settings_report(s)["problems"]
    assert [p for p in problems if "notify.telegram_api" in p and "plain http" in p]
    assert not [p for p in problems if "satu.base_url" in p]  # the https default is fine


@pytest.mark.skipif(not POSIX, reason="symlinks need POSIX")
def test_the_web_quarantine_page_never_shows_what_a_symlink_points_at(tmp_path):
    from pipeline.web.quarantine import listing

    s = build(_base(tmp_path), tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    quarantine = s.orders.inbox / "quarantine"
    quarantine.mkdir(parents=True)
    (quarantine / "planted.json").symlink_to(secret)
    (quarantine / "planted.json.reason.txt").write_text("not a regular file (symbolic link)\n")
    (quarantine / "bad.json").write_text('{"order": ', encoding="utf-8")
    shown = {q.name: q.preview for q in listing(s)}
    assert shown["planted.json"] == "(symbolic link: not shown)"
    assert shown["bad.json"] == '{"order": '


def test_secrets_are_read_only_through_settings_secret():
    """Issue 15: the database and order-FTP passwords were read with `os.environ.get` beside
    `Settings.secret`, so a secret's rules (one home, the setting named when it is missing) could be
    bypassed. No module but settings.py reads a variable named by a `*_env` setting, a token or a
    password (devtools/, the local test stand-ins, aside). The audit found one left: the database
    password's fallback in torgsoft/connection.py."""
    import ast
    import re

    root = Path(__file__).resolve().parent.parent / "pipeline"
    secretish = re.compile(r"_env\b|token|passw", re.IGNORECASE)
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == "settings.py" or rel.startswith("devtools/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                args = node.args[:1]
            elif isinstance(node, ast.Subscript):
                name, args = ast.unparse(node.value), [node.slice]
            else:
                continue
            if (
                name in ("os.environ.get", "os.getenv", "os.environ")
                and args
                and secretish.search(ast.unparse(args[0]))
            ):
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert found == [], found
