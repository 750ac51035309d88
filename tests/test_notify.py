"""Notifications over real loopback servers: SMTP (aiosmtpd, plain and STARTTLS), a webhook receiver
and a fake Telegram Bot API (http.server); alert rules and de-duplication."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from pipeline.errors import AuthError, DatabaseUnavailable, RetryableError
from pipeline.feed import FeedResult
from pipeline.journal import Journal
from pipeline.notify import Message, Notifier, RunReport, assess
from pipeline.orders.fetch import FetchResult
from pipeline.orders.inbox import InboxResult
from pipeline.satu.client import SatuAuthError
from pipeline.satu.push import ImportResult
from pipeline.settings import build
from pipeline.stage import StageOutcome, Status
from pipeline.state import State
from pipeline.sync import SyncResult

TOKEN = "123456:SECRET-bot-token-xyz"


# --- real loopback servers ------------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self):
        self.messages: list = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.tls.append(session.ssl is not None)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def smtp_server():
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=_free_port())
    ctl.start()
    yield box, ctl.port
    ctl.stop()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Receiver:
    """A loopback HTTP server recording POSTs; `status` is what it answers."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((self.path, json.loads(body)))
                reply = json.dumps({"ok": receiver.status == 200, "result": {}}).encode()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


# --- helpers --------------------------------------------------------------------------------------


def _settings(tmp_path: Path, **notify):
    return build(
        {
            "journal": {
                "path": str(tmp_path / "journal.sqlite"),
                "log_file": str(tmp_path / "sync.log"),
                "state_path": str(tmp_path / "state.sqlite"),
                "lock_file": str(tmp_path / "run.lock"),
            },
            "feed": {"output": str(tmp_path / "feeds" / "satu.yml")},
            "orders": {"inbox": str(tmp_path / "inbox")},
            "notify": notify,
        },
        tmp_path,
    )


def _sync_with_import(status: str, errors: int) -> SyncResult:
    """A sync run whose import-by-URL stage came back with `status`."""
    result = ImportResult("i1", status, errors=errors, ok=status.upper() == "SUCCESS")
    done = Status.OK if result.ok else Status.PROBLEMS
    return SyncResult(stages=[StageOutcome("import", done, result=result)], ok=result.ok)


def _env_token(monkeypatch):
    monkeypatch.setenv("TEST_TG_TOKEN", TOKEN)


# --- delivery -------------------------------------------------------------------------------------


def test_new_orders_go_out_by_email_webhook_and_telegram(tmp_path, smtp_server, receiver, monkeypatch):
    box, port = smtp_server
    _env_token(monkeypatch)
    s = _settings(
        tmp_path,
        channels=["email", "webhook", "telegram"],
        smtp_host="127.0.0.1",
        smtp_port=port,
        email_from="shop@example.kz",
        email_to=["owner@example.kz", "manager@example.kz"],
        webhook_url=receiver.url + "/hook",
        telegram_api=receiver.url + "/tg",
        telegram_token_env="TEST_TG_TOKEN",
        telegram_chat_id="-1001",
    )
    journal, state = Journal.from_settings(s), State.from_settings(s)
    printed: list[str] = []
    report = RunReport("orders", time.time(), results={"orders.inbox": InboxResult(imported=3, invoices=2)})
    sent = Notifier(s, journal=journal, state=state, echo=printed.append).after_run(report)
    assert [m.subject for m in sent] == ["3 new orders, 2 new invoices"]
    assert printed == ["[orders] 3 new orders, 2 new invoices"]
    # e-mail
    assert len(box.messages) == 1
    mail = box.messages[0]
    assert mail["Subject"] == "[Torgsoft⇄Satu] 3 new orders, 2 new invoices"
    assert mail["To"] == "owner@example.kz, manager@example.kz"
    assert "3 order(s) imported" in mail.get_content()
    # webhook + telegram
    paths = {p: body for p, body in receiver.requests}
    hook = paths["/hook"]
    assert hook["kind"] == "orders" and hook["data"] == {"new_orders": 3, "new_invoices": 2}
    tg = paths[f"/tg/bot{TOKEN}/sendMessage"]
    assert tg["chat_id"] == "-1001" and tg["text"].startswith("3 new orders, 2 new invoices")
    # the console/log line, and the token nowhere in the log or journal
    events = list(journal.search(stage="notify"))
    assert any(e.message == "3 new orders, 2 new invoices" and e.data["new_orders"] == 3 for e in events)
    journal.close()
    assert TOKEN not in (tmp_path / "sync.log").read_text(encoding="utf-8")
    assert TOKEN.encode() not in (tmp_path / "journal.sqlite").read_bytes()


def test_nothing_new_sends_nothing(tmp_path, receiver):
    s = _settings(tmp_path, channels=["webhook"], webhook_url=receiver.url)
    report = RunReport("orders", time.time(), results={"orders.inbox": InboxResult(updated=4)})
    sent = Notifier(s, journal=Journal.from_settings(s), state=State.from_settings(s), echo=None).after_run(
        report
    )
    assert sent == [] and receiver.requests == []


def test_email_with_starttls_and_login(tmp_path, monkeypatch):
    from aiosmtpd.smtp import AuthResult

    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"smtp-pass")

    ctl = Controller(
        box,
        hostname="127.0.0.1",
        port=_free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    ctl.start()
    try:
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "smtp-pass")
        s = _settings(
            tmp_path,
            channels=["email"],
            smtp_host="127.0.0.1",
            smtp_port=ctl.port,
            smtp_tls="starttls",
            smtp_cafile=str(cert),
            smtp_user="shop",
            smtp_password_env="TEST_SMTP_PASSWORD",
            email_to=["owner@example.kz"],
        )
        n = Notifier(s, journal=Journal.from_settings(s), state=State.from_settings(s), echo=None)
        assert n.deliver(Message("orders", "1 new order, 0 new invoices", "text")) == {"email": True}
        assert box.tls == [True] and logins == [(b"shop", b"smtp-pass")]
        # Without STARTTLS this server refuses the message: the failure is logged, not raised.
        s2 = _settings(
            tmp_path,
            channels=["email"],
            smtp_host="127.0.0.1",
            smtp_port=ctl.port,
            email_to=["owner@example.kz"],
        )
        journal = Journal.from_settings(s2)
        n2 = Notifier(s2, journal=journal, state=State.from_settings(s2), echo=None)
        assert n2.deliver(Message("orders", "x", "y")) == {"email": False}
        assert list(journal.search(grep="email delivery failed", level="error"))
    finally:
        ctl.stop()


def test_a_failing_channel_is_logged_and_the_others_still_deliver(
    tmp_path, smtp_server, receiver, monkeypatch
):
    box, port = smtp_server
    _env_token(monkeypatch)
    receiver.status = 500  # the fake Telegram API fails
    s = _settings(
        tmp_path,
        channels=["webhook", "telegram", "email"],
        webhook_url=f"http://127.0.0.1:{_free_port()}/x",
        telegram_api=receiver.url,
        telegram_token_env="TEST_TG_TOKEN",
        telegram_chat_id="1",
        smtp_host="127.0.0.1",
        smtp_port=port,
        email_to=["a@example.kz"],
        timeout=3,
    )
    journal = Journal.from_settings(s)
    n = Notifier(s, journal=journal, state=State.from_settings(s), echo=None)
    results = n.deliver(Message("alert", "feed rejected", "details"))
    assert results == {"webhook": False, "telegram": False, "email": True}
    assert len(box.messages) == 1
    errors = [e.message for e in journal.search(stage="notify", level="error")]
    assert any(m.startswith("webhook delivery failed") for m in errors)
    assert any("telegram delivery failed" in m and "HTTP 500" in m for m in errors)
    # Telegram unreachable: the URL (with the token) must not leak through httpx's message either.
    s3 = _settings(
        tmp_path,
        channels=["telegram"],
        telegram_api=f"http://127.0.0.1:{_free_port()}",
        telegram_token_env="TEST_TG_TOKEN",
        telegram_chat_id="1",
        timeout=3,
    )
    Notifier(s3, journal=journal, state=State.from_settings(s3), echo=None).deliver(
        Message("alert", "a", "b")
    )
    journal.close()
    text = (tmp_path / "sync.log").read_text(encoding="utf-8")
    assert "telegram delivery failed" in text and TOKEN not in text
    assert TOKEN.encode() not in (tmp_path / "journal.sqlite").read_bytes()


# --- alert rules and de-duplication ---------------------------------------------------------------


def test_expired_token_alerts_once_then_resolves(tmp_path, receiver):
    s = _settings(tmp_path, channels=["webhook"], webhook_url=receiver.url)
    journal, state = Journal.from_settings(s), State.from_settings(s)
    n = Notifier(s, journal=journal, state=state, echo=None)
    failing = RunReport("orders", time.time(), errors={"orders.fetch": SatuAuthError("HTTP 401")})
    assert [m.key for m in n.after_run(failing)] == ["auth"]
    assert n.after_run(failing) == []  # still open: not repeated within repeat_hours
    assert [b["kind"] for _, b in receiver.requests] == ["alert"]
    assert "SATU_TOKEN" in receiver.requests[0][1]["text"]  # says which variable to renew

    class RefusedPassword(AuthError):
        """Any AuthError alerts, whichever adapter raised it."""

    class SatuAuthErrorLookalike(Exception):
        """Only the type counts: a class merely named like the Satu client's error is not an auth error."""

    SatuAuthErrorLookalike.__name__ = "SatuAuthError"
    assert [
        m.key
        for m in assess(RunReport("x", 0, errors={"push": RefusedPassword()}), settings=s, state=state)[0]
    ] == ["auth"]
    lookalike = RunReport("x", 0, errors={"push": SatuAuthErrorLookalike("HTTP 401")})
    assert "auth" not in [m.key for m in assess(lookalike, settings=s, state=state)[0]]
    n.after_run(RunReport("orders", time.time(), results={"orders.fetch": FetchResult()}))
    assert [b["kind"] for _, b in receiver.requests] == ["alert", "resolved"]
    assert state.get("notify.alerts", "auth") is None
    assert n.after_run(failing)  # a new occurrence alerts again


def test_repeat_hours_zero_repeats_every_run(tmp_path, receiver):
    s = _settings(tmp_path, channels=["webhook"], webhook_url=receiver.url, repeat_hours=0)
    n = Notifier(s, journal=Journal.from_settings(s), state=State.from_settings(s), echo=None)
    failing = RunReport("orders", time.time(), errors={"push": SatuAuthError("401")})
    n.after_run(failing)
    n.after_run(failing)
    assert len(receiver.requests) == 2


def test_unreachable_alerts_after_n_runs_in_a_row(tmp_path):
    s = _settings(tmp_path, unreachable_runs=3)
    journal, state = Journal.from_settings(s), State.from_settings(s)
    n = Notifier(s, journal=journal, state=state, echo=None)
    down = RunReport("orders", time.time(), errors={"orders.fetch": RetryableError("connection refused")})
    assert n.after_run(down) == [] and n.after_run(down) == []
    sent = n.after_run(down)
    assert [m.subject for m in sent] == ["orders.fetch: server unreachable for 3 runs in a row"]
    assert n.after_run(down) == []  # de-duplicated
    # Recovery resets the counter; two failures are not enough again.
    n.after_run(RunReport("orders", time.time(), results={"orders.fetch": FetchResult(written=1)}))
    assert list(journal.search(grep="resolved: orders.fetch: server unreachable"))
    assert n.after_run(down) == [] and n.after_run(down) == []
    db = RunReport("exchange", time.time(), errors={"sync": DatabaseUnavailable("no answer")})
    assert assess(db, settings=s, state=state)[0] == []
    # A plain bug is not "unreachable".
    bug = RunReport("exchange", time.time(), errors={"sync": ValueError("bug")})
    for _ in range(4):
        assert assess(bug, settings=s, state=state)[0] == []


def test_feed_rejected_partial_import_quarantine_and_stale_feed(tmp_path):
    s = _settings(tmp_path)
    state = State.from_settings(s)
    rejected = RunReport("exchange", time.time(), results={"feed": FeedResult(ok=False)})
    assert [m.key for m in assess(rejected, settings=s, state=state)[0]] == ["feed"]
    partial = RunReport("exchange", time.time(), results={"sync": _sync_with_import("partial", 7)})
    msgs = assess(partial, settings=s, state=state)[0]
    assert [m.subject for m in msgs] == ["Satu feed import PARTIAL"] and "7 error(s)" in msgs[0].text
    # The push stage's ImportResult, alone or as a stage of a sync.
    msgs = assess(
        RunReport("e", 0, results={"import": ImportResult("i1", "FATAL", errors=1)}), settings=s, state=state
    )[0]
    assert [m.subject for m in msgs] == ["Satu feed import FATAL"]
    msgs = assess(
        RunReport("e", 0, results={"sync": _sync_with_import("PARTIAL", 2)}),
        settings=s,
        state=state,
    )[0]
    assert [m.data for m in msgs] == [{"status": "PARTIAL", "errors": 2}]
    ok = RunReport("exchange", time.time(), results={"sync": _sync_with_import("SUCCESS", 0)})
    msgs, cleared = assess(ok, settings=s, state=state)
    assert msgs == [] and cleared == {
        "auth",
        "disk-full",  # a run that wrote again ends a disk-full alert
        "import",
        "settings:sync",
        "settings:sync.import",
        "stale-feed",
        "unreachable:sync",
        "unreachable:sync.import",
    }

    q = tmp_path / "inbox" / "quarantine"
    q.mkdir(parents=True)
    (q / "order-1.json").write_text("{broken")
    (q / "order-2.json").write_text("[]")
    report = RunReport("orders", time.time(), results={"orders.inbox": InboxResult(quarantined=2)})
    msgs = assess(report, settings=s, state=state)[0]
    assert [m.subject for m in msgs] == ["2 order file(s) quarantined"]
    assert "order-1.json, order-2.json" in msgs[0].text
    assert assess(RunReport("orders", time.time()), settings=s, state=state)[0] == []  # reported once
    (q / "order-3.json").write_text("")
    assert [m.data["files"] for m in assess(RunReport("o", 0), settings=s, state=state)[0]] == [
        ["order-3.json"]
    ]

    feed = Path(s.feed.output)
    feed.parent.mkdir(parents=True)
    feed.write_text("<yml_catalog/>")
    assert assess(RunReport("exchange", time.time()), settings=s, state=state)[0] == []
    old = time.time() - 30 * 3600
    os.utime(feed, (old, old))
    msgs = assess(RunReport("exchange", time.time()), settings=s, state=state)[0]
    assert [m.key for m in msgs] == ["stale-feed"] and msgs[0].subject == "feed not refreshed for 30 hours"
    # Partial mode does not render the feed, so it does not complain about its age.
    assert assess(RunReport("exchange", time.time(), partial=True), settings=s, state=state)[0] == []


def test_reconcile_alerts_by_its_result_only_when_it_had_to_fix_something(tmp_path):
    from pipeline.orders.reconcile import ReconcileResult

    s = _settings(tmp_path)
    state = State.from_settings(s)
    clean = ReconcileResult(days=14, checked=9, in_inbox=9)
    assert (
        assess(RunReport("reconcile", 0, results={"orders.reconcile": clean}), settings=s, state=state)[0]
        == []
    )
    fixed = ReconcileResult(days=14, checked=9, in_inbox=7, missing=[301, 302], fixed=[301, 302])
    [msg] = assess(RunReport("reconcile", 0, results={"orders.reconcile": fixed}), settings=s, state=state)[0]
    assert msg.kind == "alert" and msg.data["orders"] == [301, 302] and "301, 302" in msg.text
    assert "2 Satu order(s) missed" in msg.subject


def test_a_settings_problem_alerts_per_stage_and_resolves_when_the_stage_runs(tmp_path, receiver):
    from pipeline.errors import Problem, SettingsError

    s = _settings(tmp_path, channels=["webhook"], webhook_url=receiver.url)
    journal, state = Journal.from_settings(s), State.from_settings(s)
    n = Notifier(s, journal=journal, state=state, echo=None)
    missing = SettingsError(
        Problem("torgsoft.database", "/x/gone.fdb does not exist", "set torgsoft.database")
    )
    failing = RunReport("orders", time.time(), errors={"status": missing})
    assert [m.key for m in n.after_run(failing)] == ["settings:status"]
    assert n.after_run(failing) == []  # still open: not repeated every run
    assert "torgsoft.database: /x/gone.fdb does not exist" in receiver.requests[0][1]["text"]
    n.after_run(RunReport("orders", time.time(), results={"status": FetchResult()}))
    assert [b["kind"] for _, b in receiver.requests] == ["alert", "resolved"]
