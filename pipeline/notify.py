"""Notifications: new orders and invoices, and alerts for failures that need a person.

Channels (`[notify] channels`): e-mail over SMTP (optional STARTTLS and login), a Telegram bot
(`{telegram_api}/bot<token>/sendMessage`), and a generic webhook (one JSON POST per message). Every
message also goes to the journal (stage "notify") and the console.

Alerts are de-duplicated through the state (namespace `notify.alerts`): an alert key is sent once,
then again only every `repeat_hours` while the condition lasts; when the condition clears a short
"resolved" message follows. A channel that fails is logged and never stops the caller. Secrets (the
bot token, the SMTP password) never reach a log: they are masked in every error text.

`assess(report, …)` turns one timer run (its stage results and errors) into messages, classifying
errors by type only: an `AuthError` from any stage that calls Satu (push, import, orders fetch, status
push) raises the token alert; a `RetryableError` (`DatabaseUnavailable` included) or a network error
counts towards "unreachable". The service calls `Notifier.after_run(report)` after each job.
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from pipeline.errors import AuthError, DiskFullError, LockedError, RetryableError, SettingsError
from pipeline.feed import FeedResult
from pipeline.fsutil import disk_full, is_disk_full
from pipeline.orders.inbox import InboxResult
from pipeline.orders.reconcile import ReconcileResult
from pipeline.satu.push import ImportResult
from pipeline.stage import StageOutcome, StageResult, Status, outcome_of
from pipeline.sync import SyncResult

PREFIX = "Torgsoft⇄Satu"


@dataclass
class Message:
    """One notification: `kind` is "orders", "alert" or "resolved"; `key` de-duplicates alerts."""

    kind: str
    subject: str
    text: str
    key: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunReport:
    """What one timer run did: each stage's result and each stage's exception, by stage name."""

    job: str
    started: float
    finished: float = 0.0
    results: dict[str, StageResult] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    run_id: str = ""
    partial: bool = False

    @property
    def ok(self) -> bool:
        """No stage raised and every stage did its job (or had nothing to do)."""
        return not self.errors and all(r.ok or r.skipped for r in self.results.values())


# --- what needs a person --------------------------------------------------------------------------

#: Stages that talk to the Satu API: one of them running without a refused token clears the alert.
API_STAGES = (
    "push",
    "fetch",
    "status",
    "import",
    "orders.fetch",
    "orders.reconcile",
    "sync.push",
    "sync.import",
)
#: Stages whose results are order imports (the service's inbox step and the live watcher).
INBOX_STAGES = ("inbox", "watch", "orders.inbox")


def is_auth_error(exc: BaseException | None) -> bool:
    """Credentials refused (an expired or insufficient Satu token, whichever stage met it)."""
    return isinstance(exc, AuthError)


def is_unreachable(exc: BaseException | None) -> bool:
    """A server that did not answer: transient failures and network errors (not our own lock)."""
    if isinstance(exc, LockedError):
        return False
    return isinstance(exc, RetryableError | ConnectionError | TimeoutError | socket.gaierror)


def outcomes(report: RunReport) -> dict[str, StageOutcome]:
    """Every stage of the run as an outcome, with a sync run's stages as `sync.<name>` entries."""
    out: dict[str, StageOutcome] = {}
    for name, result in report.results.items():
        out[name] = outcome_of(name, result)
        if isinstance(result, SyncResult):
            for o in result.stages:
                out[f"{name}.{o.name}"] = o
    for name, exc in report.errors.items():
        out[name] = StageOutcome(name, Status.FAILED, str(exc), error=exc)
    return out


def _inbox_results(outs: dict[str, StageOutcome]) -> list[InboxResult]:
    return [
        o.result for s, o in outs.items() if s.startswith(INBOX_STAGES) and isinstance(o.result, InboxResult)
    ]


def new_orders_and_invoices(report: RunReport) -> tuple[int, int]:
    """Exact numbers of orders newly imported and invoices created by the run's inbox stages."""
    found = _inbox_results(outcomes(report))
    return sum(r.imported for r in found), sum(r.invoices for r in found)


def _orders_message(report: RunReport) -> list[Message]:
    orders, invoices = new_orders_and_invoices(report)
    if not (orders or invoices):
        return []
    return [
        Message(
            "orders",
            f"{orders} new order{'s' if orders != 1 else ''}, {invoices} new invoice"
            f"{'s' if invoices != 1 else ''}",
            f"New from Satu: {orders} order(s) imported into Torgsoft, {invoices} invoice(s) created.",
            data={"new_orders": orders, "new_invoices": invoices},
        )
    ]


def _ran(outcome: StageOutcome) -> bool:
    """The stage ran without raising (whatever it found)."""
    return outcome.status not in (Status.FAILED, Status.SKIPPED)


def _auth(outs: dict[str, StageOutcome], settings: Any) -> tuple[list[Message], set[str]]:
    """One alert for the whole API, cleared by an API stage running without a refused token."""
    refused = [(stage, o) for stage, o in outs.items() if is_auth_error(o.error)]
    if refused:
        stage, o = refused[0]
        text = (
            f"The Satu API refused the token during {stage}: {o.error}\n"
            f"Make a new token in the Satu cabinet (Settings → API tokens, read/write for products and "
            f"orders), put it into the environment variable {settings.satu.token_env} and restart the service."
        )
        msg = Message(
            "alert", "Satu API token expired or lacks rights", text, key="auth", data={"stage": stage}
        )
        return [msg], set()
    if any(s.startswith(API_STAGES) and _ran(o) for s, o in outs.items()):
        return [], {"auth"}
    return [], set()


def _unreachable(outs: dict[str, StageOutcome], settings: Any, state: Any) -> tuple[list[Message], set[str]]:
    """Count consecutive runs a stage found its server unreachable; alert at `unreachable_runs`."""
    messages: list[Message] = []
    cleared: set[str] = set()
    for stage, o in outs.items():
        key = f"unreachable:{stage}"
        if is_unreachable(o.error):
            runs = int(state.get("notify.unreachable", stage, 0)) + 1
            state.put("notify.unreachable", stage, runs)
            if runs >= settings.notify.unreachable_runs:
                messages.append(
                    Message(
                        "alert",
                        f"{stage}: server unreachable for {runs} runs in a row",
                        f"{stage} failed {runs} runs in a row: {o.error}\nCheck the network, the server and "
                        f"the settings; the service keeps trying.",
                        key=key,
                        data={"stage": stage, "runs": runs},
                    )
                )
        elif _ran(o):
            if state.get("notify.unreachable", stage) is not None:
                state.delete("notify.unreachable", stage)
            cleared.add(key)
    return messages, cleared


def _feed_rejected(stage: str, o: StageOutcome, run_id: str) -> Message:
    why = (o.result.stopped if isinstance(o.result, FeedResult) else "") or o.detail or "validation failed"
    return Message(
        "alert",
        "feed rejected",
        f"The feed was not published ({why}); Satu keeps the previous one. "
        f"See: run.py log --run {run_id} --level warning",
        key="feed",
        data={"stage": stage, "reason": str(why)[:300]},
    )


def _feed_and_import(outs: dict[str, StageOutcome], run_id: str) -> tuple[list[Message], set[str]]:
    """The feed refused by our checks; Satu's import of it coming back PARTIAL or FATAL."""
    messages: list[Message] = []
    cleared: set[str] = set()
    for stage, o in outs.items():
        if stage.rsplit(".", 1)[-1] == "feed" and _ran(o):
            if o.status == Status.PROBLEMS:
                messages.append(_feed_rejected(stage, o, run_id))
            else:
                cleared.add("feed")
        if not isinstance(o.result, ImportResult):
            continue
        status = (o.result.status or "").upper()
        if status in ("PARTIAL", "FATAL"):
            messages.append(
                Message(
                    "alert",
                    f"Satu feed import {status}",
                    f"Satu imported the feed with status {status} ({o.result.errors} error(s)). "
                    f"See: run.py log --stage import --level warning",
                    key="import",
                    data={"status": status, "errors": o.result.errors},
                )
            )
        elif status == "SUCCESS":
            cleared.add("import")
    return messages, cleared


def _reconcile_message(outs: dict[str, StageOutcome]) -> list[Message]:
    """The order reconcile had to download orders the regular download missed (by the typed result)."""
    messages = []
    for stage, o in outs.items():
        if not isinstance(o.result, ReconcileResult) or not o.result.fixed:
            continue
        r = o.result
        ids = ", ".join(str(i) for i in r.fixed[:20]) + (" …" if len(r.fixed) > 20 else "")
        messages.append(
            Message(
                "alert",
                f"{len(r.fixed)} Satu order(s) missed by the download were fetched now",
                f"The check of the last {r.days} day(s) found Satu order(s) neither in the inbox nor in "
                f"Torgsoft: {ids}. They are in the inbox now and will be imported. The download cursor "
                f"missed them: check [satu] query_timezone and [orders] fetch_overlap_hours.\n"
                f"See: run.py log --stage orders --level warning",
                data={"stage": stage, "orders": r.fixed[:100]},
            )
        )  # no key: each fix is reported once
    return messages


def _quarantine_message(outs: dict[str, StageOutcome], settings: Any, state: Any) -> list[Message]:
    """Order files that could not be read were moved aside (each file is reported once)."""
    quarantined = sum(r.quarantined for r in _inbox_results(outs))
    new_files = new_quarantined_files(settings, state)
    if not (quarantined or new_files):
        return []
    names = ", ".join(new_files[:10]) + (" …" if len(new_files) > 10 else "")
    return [
        Message(
            "alert",
            f"{max(quarantined, len(new_files))} order file(s) quarantined",
            f"Order file(s) could not be imported and were moved to {quarantine_dir(settings)}: "
            f"{names or '(see the journal)'}\nSee: run.py log --stage inbox --level warning",
            data={"files": new_files},
        )
    ]  # no key: each file is reported once (notify.quarantine)


def _stall_message(outs: dict[str, StageOutcome]) -> tuple[list[Message], set[str]]:
    """An order import the watchdog found stuck (no progress far beyond every bounded wait), or a worker
    left behind inside the database when its pass ended (orders/workers.py)."""
    found = _inbox_results(outs)
    stuck = sum(r.stalled + r.abandoned for r in found)
    if not stuck:  # cleared by an import that ran without a stall, not by a run without one
        return [], {"inbox-stall"} if found else set()
    return [
        Message(
            "alert",
            "order import stuck",
            f"{stuck} order import(s) made no progress or never came back from the database (most "
            "likely waiting for a database server that no longer answers). "
            "Restart the service: its claims are taken over. "
            "See: run.py log --stage orders --level error",
            key="inbox-stall",
            data={"stalled": stuck},
        )
    ], set()


def _settings_problems(outs: dict[str, StageOutcome]) -> tuple[list[Message], set[str]]:
    """A stage the settings stop (a database file that is not there, a key that is wrong): one alert
    per stage, cleared when that stage runs again. The service keeps going: the file may be on a share
    that is not mounted yet, and the other stages may not need it."""
    messages: list[Message] = []
    cleared: set[str] = set()
    for stage, o in outs.items():
        key = f"settings:{stage}"
        if isinstance(o.error, SettingsError):
            problems = "\n".join(f"  - {p}" for p in o.error.problems)
            text = (
                f"{stage} cannot run: a settings problem.\n{problems}\n"
                "Fix the settings file (or the missing file); the service keeps trying every run."
            )
            messages.append(
                Message("alert", f"{stage}: settings problem", text, key=key, data={"stage": stage})
            )
        elif _ran(o):
            cleared.add(key)
    return messages, cleared


def _disk_full_message(outs: dict[str, StageOutcome]) -> tuple[list[Message], set[str]]:
    """A stage stopped because a disk was full (raised DiskFullError, or said so in its result): one
    alert naming the folder, open until a run of those stages writes again."""
    full = []
    for stage, o in outs.items():
        error = o.error
        if error is not None and is_disk_full(error):
            text = str(error if isinstance(error, DiskFullError) else disk_full(error))
        else:
            text = getattr(o.result, "disk_full", "")
        if text:
            full.append((stage, text))
    if not full:
        return [], {"disk-full"} if any(_ran(o) for o in outs.values()) else set()
    stage, text = full[0]
    return [
        Message(
            "alert",
            "disk full",
            f"{stage} stopped: {text}\nNothing was lost: the orders wait in the inbox, the last good "
            "feed stays live. Free space, then the service goes on by itself. "
            "See: run.py log --level error",
            key="disk-full",
            data={"stage": stage, "stages": [s for s, _ in full]},
        )
    ], set()


def assess(
    report: RunReport, *, settings: Any, state: Any, now: float | None = None
) -> tuple[list[Message], set[str]]:
    """Messages one run calls for, and the alert keys whose condition is over (to resolve).

    Errors are classified by type only (`AuthError`, `RetryableError`, …); counters for "unreachable
    N runs in a row" live in the state (namespace `notify.unreachable`).
    """
    now = time.time() if now is None else now
    outs = outcomes(report)
    messages = _orders_message(report)
    cleared: set[str] = set()
    for found, done in (
        _auth(outs, settings),
        _unreachable(outs, settings, state),
        _feed_and_import(outs, report.run_id),
        _stall_message(outs),
        _settings_problems(outs),
        _disk_full_message(outs),
    ):
        messages += found
        cleared |= done
    messages += _quarantine_message(outs, settings, state)
    messages += _reconcile_message(outs)
    # The feed on disk has not been refreshed for too long (not in partial mode: it does not render).
    if not report.partial:
        msg = stale_feed_message(settings, now)
        if msg:
            messages.append(msg)
        else:
            cleared.add("stale-feed")
    return messages, cleared


def quarantine_dir(settings: Any) -> Path:
    """Where the inbox moves damaged order files."""
    return Path(settings.orders.inbox) / "quarantine"


def new_quarantined_files(settings: Any, state: Any) -> list[str]:
    """Quarantined files not reported before (remembered in state `notify.quarantine`)."""
    folder = quarantine_dir(settings)
    if not folder.is_dir():
        return []
    seen = {k for k, _ in state.items("notify.quarantine")}
    new = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file()
        and p.name not in seen
        and not p.name.endswith((".reason", ".reason.txt", ".error.txt"))
    )
    if new:
        state.put_many("notify.quarantine", [(name, time.time()) for name in new])
    return new


def stale_feed_message(settings: Any, now: float) -> Message | None:
    """An alert when the feed file is older than `stale_feed_hours` (or missing that long)."""
    limit = settings.notify.stale_feed_hours * 3600
    path = Path(settings.feed.output)
    try:
        age = now - path.stat().st_mtime
    except OSError:
        return None  # no feed yet: the first full run makes one, a failing one alerts on its own
    if age <= limit:
        return None
    return Message(
        "alert",
        f"feed not refreshed for {age / 3600:.0f} hours",
        f"{path} was last written {datetime.fromtimestamp(path.stat().st_mtime, UTC):%Y-%m-%d %H:%M} "
        f"UTC; Satu sees old prices and stock. See: run.py log --stage sync --level warning",
        key="stale-feed",
        data={"hours": round(age / 3600, 1)},
    )


# --- delivery -------------------------------------------------------------------------------------


class Notifier:
    """Send messages through the configured channels; de-duplicate alerts through the state."""

    def __init__(
        self, settings: Any, *, journal: Any, state: Any, echo: Callable[[str], None] | None = print
    ):
        self.settings = settings
        self.journal = journal
        self.state = state
        self.echo = echo

    # Secrets we know of, so that no error text can carry them into a log.
    def _secrets(self) -> list[str]:
        out = []
        for key in ("notify.telegram_token_env", "notify.smtp_password_env"):
            value = self.settings.secret(key, required=False)
            if value:
                out.append(value)
        return out

    def _mask(self, text: str) -> str:
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    def after_run(self, report: RunReport) -> list[Message]:
        """Assess one run, send what is new, resolve what cleared; returns the messages sent."""
        messages, cleared = assess(report, settings=self.settings, state=self.state)
        sent = []
        for msg in messages:
            if self.send(msg):
                sent.append(msg)
        for key in cleared:
            self.resolve(key)
        return sent

    def send(self, msg: Message) -> bool:
        """Deliver one message unless it is a repeat of an alert sent recently; True when delivered."""
        if msg.kind == "alert" and msg.key and not self._due(msg.key):
            self.journal.event(
                "notify", f"alert still open (not repeated): {msg.subject}", "debug", key=msg.key
            )
            return False
        level = "warning" if msg.kind == "alert" else "info"
        self.journal.event("notify", f"{msg.subject}", level, kind=msg.kind, **_event_data(msg.data))
        if self.echo:
            self.echo(f"[{msg.kind}] {msg.subject}")
        results = self.deliver(msg)
        if msg.kind == "alert" and msg.key:
            record = self.state.get("notify.alerts", msg.key) or {"first": time.time(), "count": 0}
            record.update(last_sent=time.time(), count=record["count"] + 1, subject=msg.subject)
            self.state.put("notify.alerts", msg.key, record)
        return bool(results) is False or any(results.values())

    def _due(self, key: str) -> bool:
        record = self.state.get("notify.alerts", key)
        if not record:
            return True
        return time.time() - float(record.get("last_sent", 0)) >= self.settings.notify.repeat_hours * 3600

    def resolve(self, key: str) -> None:
        """The condition behind an alert is over: forget it and say so once."""
        record = self.state.get("notify.alerts", key)
        if not record:
            return
        self.state.delete("notify.alerts", key)
        self.deliver(
            Message(
                "resolved",
                f"resolved: {record.get('subject', key)}",
                f"The problem reported earlier is over: {record.get('subject', key)}",
                key=key,
            )
        )
        self.journal.event("notify", f"resolved: {record.get('subject', key)}", key=key)

    def deliver(self, msg: Message) -> dict[str, bool]:
        """Send through every configured channel; a failing channel is logged, never raised."""
        results: dict[str, bool] = {}
        for channel in self.settings.notify.channels:
            sender = {"email": self._email, "telegram": self._telegram, "webhook": self._webhook}[channel]
            try:
                sender(msg)
                results[channel] = True
                self.journal.event("notify", f"sent via {channel}: {msg.subject}", "debug", channel=channel)
            except Exception as exc:  # noqa: BLE001 - a channel must never bring the service down
                results[channel] = False
                self.journal.event(
                    "notify",
                    f"{channel} delivery failed: {self._mask(f'{type(exc).__name__}: {exc}')}",
                    "error",
                    channel=channel,
                )
        return results

    def _text(self, msg: Message) -> str:
        return f"{msg.subject}\n\n{msg.text}"

    def _email(self, msg: Message) -> None:
        n = self.settings.notify
        if not n.smtp_host or not n.email_to:
            raise ValueError("notify.smtp_host and notify.email_to must be set for e-mail")
        email = EmailMessage()
        email["Subject"] = f"[{PREFIX}] {msg.subject}"
        email["From"] = n.email_from or f"torgsoft-satu@{socket.gethostname()}"
        email["To"] = ", ".join(n.email_to)
        email.set_content(msg.text)
        context = ssl.create_default_context(cafile=str(n.smtp_cafile) if n.smtp_cafile else None)
        smtp: smtplib.SMTP
        if n.smtp_tls == "implicit":
            smtp = smtplib.SMTP_SSL(n.smtp_host, n.smtp_port, timeout=n.timeout, context=context)
        else:
            smtp = smtplib.SMTP(n.smtp_host, n.smtp_port, timeout=n.timeout)
        with smtp:
            if n.smtp_tls == "starttls":
                smtp.starttls(context=context)
            if n.smtp_user:  # settings refuse a login with smtp_tls = "none": never a password in clear
                smtp.login(n.smtp_user, self.settings.secret("notify.smtp_password_env"))
            smtp.send_message(email)

    def _telegram(self, msg: Message) -> None:
        import httpx

        n = self.settings.notify
        token = self.settings.secret("notify.telegram_token_env")
        if not n.telegram_chat_id:
            raise ValueError("notify.telegram_chat_id must be set for Telegram")
        url = f"{n.telegram_api.rstrip('/')}/bot{token}/sendMessage"
        try:
            reply = httpx.post(
                url,
                json={
                    "chat_id": n.telegram_chat_id,
                    "text": self._text(msg)[:4000],
                    "disable_web_page_preview": True,
                },
                timeout=n.timeout,
            )
        except httpx.HTTPError as exc:
            # httpx puts the URL (and so the token) into some messages: keep only the kind of failure.
            raise ConnectionError(f"Telegram API unreachable ({type(exc).__name__})") from None
        if reply.status_code != 200 or not _json_ok(reply):
            raise RuntimeError(f"Telegram API answered HTTP {reply.status_code}: {reply.text[:200]}")

    def _webhook(self, msg: Message) -> None:
        import httpx

        n = self.settings.notify
        if not n.webhook_url:
            raise ValueError("notify.webhook_url must be set for the webhook")
        body = {
            "source": "torgsoft-satu",
            "kind": msg.kind,
            "subject": msg.subject,
            "text": msg.text,
            "key": msg.key,
            "data": msg.data,
            "host": socket.gethostname(),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            reply = httpx.post(
                n.webhook_url,
                content=json.dumps(body, ensure_ascii=False, default=str).encode(),
                headers={"Content-Type": "application/json"},
                timeout=n.timeout,
            )
        except httpx.HTTPError as exc:
            raise ConnectionError(f"webhook unreachable: {type(exc).__name__}: {exc}") from None
        if reply.status_code >= 300:
            raise RuntimeError(f"webhook answered HTTP {reply.status_code}: {reply.text[:200]}")


def _event_data(data: dict[str, Any]) -> dict[str, Any]:
    """Message data as journal keywords (names the journal uses itself get a prefix)."""
    reserved = {"stage", "message", "level", "order_id", "product_id", "run_id"}
    return {(f"about_{k}" if k in reserved else k): v for k, v in data.items()}


def _json_ok(reply: Any) -> bool:
    try:
        return bool(reply.json().get("ok"))
    except ValueError:
        return False


def channels_summary(channels: Iterable[str]) -> str:
    """`e-mail, webhook` or `console only`."""
    names = {"email": "e-mail", "telegram": "Telegram", "webhook": "webhook"}
    listed = [names.get(c, c) for c in channels]
    return ", ".join(listed) if listed else "console and log only"
