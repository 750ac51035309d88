"""Notifications: new orders and invoices, and alerts for failures that need a person.

Channels (`[notify] channels`): e-mail over SMTP (optional STARTTLS and login), a Telegram bot
(`{telegram_api}/bot<token>/sendMessage`), and a generic webhook (one JSON POST per message). Every
message also goes to the journal (stage "notify") and the console.

Alerts are de-duplicated through the state (namespace `notify.alerts`): an alert key is sent once,
then again only every `repeat_hours` while the condition lasts; when the condition clears a short
"resolved" message follows. A channel that fails is logged and never stops the caller. Secrets (the
bot token, the SMTP password) never reach a log: they are masked in every error text.

`assess(report, …)` turns one timer run (its stage results and errors) into messages; the service
calls `Notifier.after_run(report)` after each job.
"""

from __future__ import annotations

import dataclasses
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

from pipeline.errors import LockedError, RetryableError

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
    """What one timer run did: each stage's result object and each stage's exception."""

    job: str
    started: float
    finished: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    run_id: str = ""
    partial: bool = False

    @property
    def ok(self) -> bool:
        """No stage raised and no stage reported ok = False."""
        return not self.errors and all(getattr(r, "ok", True) is not False for r in self.results.values())


# --- what needs a person --------------------------------------------------------------------------


def is_auth_error(exc: BaseException) -> bool:
    """An expired or insufficient API token (matched by name so this module needs no Satu import)."""
    if getattr(exc, "alert", None) == "auth":
        return True
    return any(cls.__name__ in ("SatuAuthError", "AuthError") for cls in type(exc).__mro__)


def is_unreachable(exc: BaseException) -> bool:
    """A server that did not answer: network errors and transient failures (not our own lock)."""
    if isinstance(exc, LockedError):
        return False
    if getattr(exc, "alert", None) == "unreachable":
        return True
    return isinstance(exc, RetryableError | ConnectionError | TimeoutError | socket.gaierror)


def _count(result: Any, *names: str) -> int:
    """The first integer count a result carries under one of `names` (0 when none)."""
    for name in names:
        value = result.get(name) if isinstance(result, dict) else getattr(result, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def _attr(result: Any, name: str) -> Any:
    return result.get(name) if isinstance(result, dict) else getattr(result, name, None)


def import_outcome(result: Any, depth: int = 0) -> tuple[str | None, int]:
    """(Satu import status in upper case, error count) carried by a stage result, if any.

    Understands the push stage's ImportResult (`import_id` + `status` + `errors`), an `import_status`
    field, and an orchestrating result holding one of those in a field (one level down).
    """
    status = _attr(result, "import_status")
    if isinstance(status, str) and status:
        return status.upper(), _count(result, "import_errors", "with_errors_count")
    if _attr(result, "import_id") is not None and isinstance(_attr(result, "status"), str):
        return (_attr(result, "status") or "").upper() or None, _count(result, "errors", "with_errors_count")
    if depth == 0 and dataclasses.is_dataclass(result) and not isinstance(result, type):
        for f in dataclasses.fields(result):
            found = import_outcome(getattr(result, f.name), 1)
            if found[0]:
                return found
    return None, 0


def new_orders_and_invoices(report: RunReport) -> tuple[int, int]:
    """Exact numbers of orders newly imported and invoices created by the run's inbox stages."""
    orders = invoices = 0
    for stage, result in report.results.items():
        if stage.startswith(("inbox", "watch", "orders.inbox", "import")):
            orders += _count(result, "imported", "new_orders")
            invoices += _count(result, "invoices", "new_invoices")
    return orders, invoices


class StageFailure(Exception):
    """A failure an orchestrating stage (sync) reported as text; `alert` is inferred from the text."""

    def __init__(self, text: str):
        super().__init__(text)
        low = text.lower()
        if "token expired or lacks rights" in low or "http 401" in low or "http 403" in low:
            self.alert = "auth"
        elif any(hint in low for hint in UNREACHABLE_HINTS):
            self.alert = "unreachable"
        else:
            self.alert = ""


# Words in the messages of the adapters' RetryableError/DatabaseUnavailable (Satu client, publish,
# Firebird) that mean "the other side did not answer".
UNREACHABLE_HINTS = (
    "connection failed",
    "connection refused",
    "connection lost",
    "connection reset",
    "timed out",
    "timeout",
    "unreachable",
    "gave up after",
    "unable to complete network request",
    "name or service not known",
    "no route to host",
    "temporary failure in name resolution",
)


def expand(report: RunReport) -> tuple[dict[str, Any], dict[str, BaseException]]:
    """The run's results and errors, with an orchestrating stage's sub-stages as `sync.<name>` entries.

    `pipeline.sync` catches each stage's error and reports it as an outcome (name, status, detail,
    counts): a "failed" outcome becomes a StageFailure, an "ok"/"problems" one a result (its counts).
    Skipped and missing stages are neither.
    """
    results: dict[str, Any] = dict(report.results)
    errors: dict[str, BaseException] = dict(report.errors)
    for stage, result in report.results.items():
        for outcome in _attr(result, "stages") or ():
            name, status = getattr(outcome, "name", None), getattr(outcome, "status", None)
            if not name:
                continue
            key = f"{stage}.{name}"
            if status == "failed":
                errors[key] = StageFailure(getattr(outcome, "detail", "") or "failed")
            elif status in ("ok", "problems"):
                counts = dict(getattr(outcome, "counts", None) or {})
                counts.setdefault("ok", status == "ok")
                if status == "problems" and getattr(outcome, "detail", ""):
                    counts.setdefault("reason", outcome.detail)
                results[key] = counts
    return results, errors


def assess(
    report: RunReport, *, settings: Any, state: Any, now: float | None = None
) -> tuple[list[Message], set[str]]:
    """Messages one run calls for, and the alert keys whose condition is over (to resolve).

    Counters for "unreachable N runs in a row" live in the state (namespace `notify.unreachable`).
    """
    now = time.time() if now is None else now
    n = settings.notify
    messages: list[Message] = []
    cleared: set[str] = set()
    results, errors = expand(report)

    orders, invoices = new_orders_and_invoices(report)
    if orders or invoices:
        messages.append(
            Message(
                "orders",
                f"{orders} new order{'s' if orders != 1 else ''}, {invoices} new invoice"
                f"{'s' if invoices != 1 else ''}",
                f"New from Satu: {orders} order(s) imported into Torgsoft, {invoices} invoice(s) created.",
                data={"new_orders": orders, "new_invoices": invoices},
            )
        )

    # Expired or insufficient token: one alert for the whole API, cleared by an API stage succeeding.
    auth = [(s, e) for s, e in errors.items() if is_auth_error(e)]
    api_stages = ("push", "fetch", "status", "import", "orders.fetch", "sync.push")
    if auth:
        stage, exc = auth[0]
        messages.append(
            Message(
                "alert",
                "Satu API token expired or lacks rights",
                f"The Satu API refused the token during {stage}: {exc}\n"
                f"Make a new token in the Satu cabinet (Settings → API tokens, read/write for products and "
                f"orders), put it into the environment variable {settings.satu.token_env} and restart the service.",
                key="auth",
                data={"stage": stage},
            )
        )
    elif any(s.startswith(api_stages) for s in results):
        cleared.add("auth")

    # Unreachable servers: count consecutive failed runs per stage.
    for stage in set(results) | set(errors):
        exc = errors.get(stage)
        key = f"unreachable:{stage}"
        if exc is not None and is_unreachable(exc):
            runs = int(state.get("notify.unreachable", stage, 0)) + 1
            state.put("notify.unreachable", stage, runs)
            if runs >= n.unreachable_runs:
                messages.append(
                    Message(
                        "alert",
                        f"{stage}: server unreachable for {runs} runs in a row",
                        f"{stage} failed {runs} runs in a row: {exc}\nCheck the network, the server and "
                        f"the settings; the service keeps trying.",
                        key=key,
                        data={"stage": stage, "runs": runs},
                    )
                )
        elif stage in results:
            if state.get("notify.unreachable", stage) is not None:
                state.delete("notify.unreachable", stage)
            cleared.add(key)

    # The feed: rejected by our validation, or Satu's import came back PARTIAL/FATAL.
    for stage, result in results.items():
        leaf = stage.rsplit(".", 1)[-1]
        rejected = _attr(result, "feed_rejected")
        if leaf == "feed" and rejected is None:
            rejected = _attr(result, "ok") is False
        if rejected:
            problems = _attr(result, "problems")
            why = (
                _attr(result, "stopped")
                or _attr(result, "reason")
                or (problems[0] if isinstance(problems, list) and problems else "")
                or "validation failed"
            )
            messages.append(
                Message(
                    "alert",
                    "feed rejected",
                    f"The feed was not published ({why}); Satu keeps the previous one. "
                    f"See: run.py log --run {report.run_id} --level warning",
                    key="feed",
                    data={"stage": stage, "reason": str(why)[:300]},
                )
            )
        elif leaf == "feed":
            cleared.add("feed")
        status, count = import_outcome(result)
        if status in ("PARTIAL", "FATAL"):
            messages.append(
                Message(
                    "alert",
                    f"Satu feed import {status}",
                    f"Satu imported the feed with status {status} ({count} error(s)). "
                    f"See: run.py log --stage import --level warning",
                    key="import",
                    data={"status": status, "errors": count},
                )
            )
        elif status == "SUCCESS":
            cleared.add("import")

    # Orders that could not be read were moved aside.
    quarantined = sum(
        _count(r, "quarantined")
        for s, r in report.results.items()
        if s.startswith(("inbox", "watch", "orders.inbox", "import"))
    )
    new_files = new_quarantined_files(settings, state)
    if quarantined or new_files:
        names = ", ".join(new_files[:10]) + (" …" if len(new_files) > 10 else "")
        messages.append(
            Message(
                "alert",
                f"{max(quarantined, len(new_files))} order file(s) quarantined",
                f"Order file(s) could not be imported and were moved to {quarantine_dir(settings)}: "
                f"{names or '(see the journal)'}\nSee: run.py log --stage inbox --level warning",
                data={"files": new_files},
            )
        )  # no key: each file is reported once (notify.quarantine)

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
