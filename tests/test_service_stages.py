"""The service with the real stages: the live inbox watcher imports a dropped order file and the
webhook hears the exact count; the notifier reads a real `sync` run against the Satu sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from order_factory import satu_order, write_order
from pipeline.journal import Journal
from pipeline.notify import Notifier, RunReport, assess
from pipeline.settings import Settings
from pipeline.state import State
from test_notify import Receiver

ROOT = Path(__file__).resolve().parent.parent


def _wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _toml(settings: Settings, path: Path, **sections: dict) -> Path:
    """A settings file for a subprocess, pointing at the fixture's database, photos and folders."""
    base = {
        "torgsoft": {"database": str(settings.torgsoft.database)},
        "photos": {"source_dir": str(settings.photos.source_dir), "cache_dir": str(path.parent / "cache")},
        "feed": {"template": str(settings.feed.template)},
        "orders": {"inbox": str(settings.orders.inbox), "settle_seconds": 0.3},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        for key, value in values.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, int | float):
                lines.append(f"{key} = {value}")
            elif isinstance(value, list):
                lines.append(f"{key} = [" + ", ".join(f'"{v}"' for v in value) + "]")
            else:
                lines.append(f'{key} = "{value}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_watcher_imports_a_dropped_file_and_the_webhook_hears_it(demo_env: Settings, tmp_path: Path):
    receiver = Receiver()
    cfg = _toml(
        demo_env,
        tmp_path / "settings.toml",
        satu={"base_url": "http://127.0.0.1:9/api/v1", "max_retries": 0, "timeout": 2},
        schedule={"interval_minutes": 30, "orders_minutes": 1},
        notify={"channels": ["webhook"], "webhook_url": receiver.url + "/hook"},
    )
    env = {**os.environ, "SATU_TOKEN": "x"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline._testing",
            "--minute-seconds",
            "2",
            "--",
            "--settings",
            str(cfg),
            "serve",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    journal_path = tmp_path / "var" / "journal.sqlite"

    def seen(grep: str) -> bool:
        return journal_path.exists() and bool(list(Journal(journal_path).search(grep=grep)))

    try:
        _wait_for(lambda: seen("watching"), 120, "the inbox watcher")
        write_order(
            Path(demo_env.orders.inbox),
            satu_order(777001, lines=[{"external_id": "1", "quantity": 2, "price": "1 950 ₸"}], paid=True),
        )
        _wait_for(lambda: seen("order 777001 imported"), 60, "the import")
        _wait_for(
            lambda: any(b.get("kind") == "orders" for _, b in receiver.requests), 60, "the notification"
        )
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        receiver.close()
    assert proc.returncode == 0, err
    orders = [b for _, b in receiver.requests if b.get("kind") == "orders"]
    assert len(orders) == 1 and orders[0]["data"] == {"new_orders": 1, "new_invoices": 1}
    assert "[orders] 1 new order, 1 new invoice" in out
    assert (Path(demo_env.orders.inbox) / "done").is_dir() and any(
        (Path(demo_env.orders.inbox) / "done").iterdir()
    )


def test_notifier_reads_a_real_sync_run(demo_env: Settings, tmp_path: Path, monkeypatch):
    """A sync whose push meets a refused token (the sandbox) raises the token alert; a later sync
    with the right token resolves it."""
    import dataclasses

    from pipeline import sync
    from pipeline.devtools.sandbox import SandboxServer

    # Pictures are not served in this test: the sandbox must not refuse offers for them.
    sandbox = SandboxServer(tmp_path / "sandbox", check_pictures=False).start()
    try:
        monkeypatch.setenv("TEST_SYNC_TOKEN", "wrong-token")
        s = demo_env.replace(
            satu=dataclasses.replace(
                demo_env.satu, base_url=sandbox.url, token_env="TEST_SYNC_TOKEN", max_retries=0
            ),
            publish=dataclasses.replace(demo_env.publish, local_dir=tmp_path / "public"),
        )
        journal, state = Journal.from_settings(s), State.from_settings(s)
        result = sync.run(s, journal=journal, state=state)
        assert result.stage("push").status == "failed"
        report = RunReport("exchange", time.time(), results={"sync": result}, run_id=journal.run_id)
        messages, _ = assess(report, settings=s, state=state)
        assert [m.key for m in messages] == ["auth"]
        assert "sync.push" in messages[0].text and "TEST_SYNC_TOKEN" in messages[0].text
        n = Notifier(s, journal=journal, state=state, echo=None)
        assert [m.key for m in n.after_run(report)] == ["auth"]

        sandbox.load_feed_file(s.feed.output)  # Satu knows the products now (as after an import by URL)
        monkeypatch.setenv("TEST_SYNC_TOKEN", sandbox.token)
        result = sync.run(s, journal=journal, state=state)
        assert result.stage("push").status == "ok"
        n.after_run(RunReport("exchange", time.time(), results={"sync": result}))
        assert state.get("notify.alerts", "auth") is None
        assert list(journal.search(stage="notify", grep="resolved: Satu API token"))
    finally:
        sandbox.stop()


def test_notifier_reads_sync_stage_outcomes(tmp_path: Path):
    """sync reports its stages as outcomes keeping their errors: feed refused, FTP down N runs (the
    error's type says "unreachable", not its text)."""
    from pipeline.errors import RetryableError, StopError
    from pipeline.settings import build
    from pipeline.stage import StageOutcome
    from pipeline.sync import SyncResult

    s = build(
        {
            "journal": {
                "path": str(tmp_path / "j.sqlite"),
                "state_path": str(tmp_path / "s.sqlite"),
                "log_file": str(tmp_path / "sync.log"),
            },
            "notify": {"unreachable_runs": 2},
        },
        tmp_path,
    )
    state = State.from_settings(s)
    refused = SyncResult(
        stages=[
            StageOutcome("photos", "ok", counts={"processed": 3, "ok": True}),
            StageOutcome(
                "feed",
                "problems",
                "mass-change guard: 60% of the offers would go",
                counts={
                    "offers": 40,
                    "ok": False,
                    "stopped": "mass-change guard: 60% of the offers would go",
                },
            ),
            StageOutcome("publish", "skipped", "no fresh, valid feed to publish"),
        ],
        ok=False,
    )
    msgs = assess(RunReport("exchange", time.time(), results={"sync": refused}), settings=s, state=state)[0]
    assert [m.subject for m in msgs] == ["feed rejected"] and "mass-change guard" in msgs[0].text

    ftp_down = SyncResult(
        stages=[
            StageOutcome("feed", "ok", counts={"offers": 90, "ok": True}),
            StageOutcome(
                "publish",
                "failed",
                "FTP 127.0.0.1:21: connection refused",
                error=RetryableError("FTP 127.0.0.1:21: connection refused"),
            ),
        ],
        ok=False,
    )
    report = RunReport("exchange", time.time(), results={"sync": ftp_down})
    assert assess(report, settings=s, state=state)[0] == []
    msgs, cleared = assess(report, settings=s, state=state)
    assert [m.key for m in msgs] == ["unreachable:sync.publish"] and "feed" in cleared
    # The same words in a refusal that is not transient are not "unreachable".
    refused = SyncResult(
        stages=[
            StageOutcome(
                "publish",
                "failed",
                "connection refused",
                error=StopError("remote folder refused: connection refused by policy"),
            )
        ],
        ok=False,
    )
    for _ in range(3):
        assert (
            assess(RunReport("exchange", time.time(), results={"sync": refused}), settings=s, state=state)[0]
            == []
        )


def test_exchange_job_survives_a_stage_that_finishes_with_problems(demo_env: Settings, tmp_path: Path):
    """A broken photo makes the photos stage report ok=False; sync must report it, not crash."""
    import dataclasses

    from pipeline.service import Service, jobs_from_settings

    for photo in Path(demo_env.photos.source_dir).rglob("*.jpg"):
        photo.write_bytes(b"not a JPEG at all")  # every photo the catalog refers to is now unusable
    s = demo_env.replace(
        satu=dataclasses.replace(demo_env.satu, push=False),
        publish=dataclasses.replace(demo_env.publish, local_dir=tmp_path / "public"),
    )
    service = Service(s, jobs_from_settings(s)[:1], watcher=False, echo=None)
    report = service.run_job(service.jobs[0])
    assert "sync" in report.results and not report.errors, report.errors
    photos = report.results["sync"].stage("photos")
    assert photos.status == "problems" and report.results["sync"].stage("feed").status == "ok"


def test_token_alert_fires_from_the_order_download_and_the_import_by_url(
    demo_env: Settings, tmp_path: Path, monkeypatch
):
    """Every stage that calls Satu raises the refused token as an `AuthError` (the sandbox answers
    HTTP 401): the order download in the service's orders job, and the import by URL after publish."""
    import dataclasses

    from pipeline import sync
    from pipeline.devtools.sandbox import SandboxServer
    from pipeline.errors import AuthError
    from pipeline.service import Job, Service, Step, _fetch

    sandbox = SandboxServer(tmp_path / "sandbox", check_pictures=False).start()
    try:
        monkeypatch.setenv("TEST_SYNC_TOKEN", "expired-token")
        s = demo_env.replace(
            satu=dataclasses.replace(
                demo_env.satu,
                base_url=sandbox.url,
                token_env="TEST_SYNC_TOKEN",
                max_retries=0,
                push=False,
                import_after_publish=True,
            ),
            publish=dataclasses.replace(demo_env.publish, local_dir=tmp_path / "public"),
        )
        service = Service(s, [Job("orders", 60, [Step("orders.fetch", _fetch)])], watcher=False, echo=None)
        report = service.run_job(service.jobs[0])
        assert isinstance(report.errors["orders.fetch"], AuthError)
        sent = list(service.journal.search(stage="notify", grep="Satu API token expired"))
        assert [e.data["about_stage"] for e in sent] == ["orders.fetch"]

        journal, state = Journal.from_settings(s), State.from_settings(s)
        result = sync.run(s, journal=journal, state=state)
        imported = result.stage("import")
        assert imported is not None and imported.status == "failed" and isinstance(imported.error, AuthError)
        messages, _ = assess(
            RunReport("exchange", time.time(), results={"sync": result}), settings=s, state=state
        )
        assert [(m.key, m.data["stage"]) for m in messages if m.key == "auth"] == [("auth", "sync.import")]
        # With the right token both work again and the alert resolves.
        monkeypatch.setenv("TEST_SYNC_TOKEN", sandbox.token)
        report = service.run_job(service.jobs[0])
        assert not report.errors
        assert list(service.journal.search(stage="notify", grep="resolved: Satu API token"))
    finally:
        sandbox.stop()
