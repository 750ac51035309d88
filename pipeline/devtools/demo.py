"""The demo: the whole exchange end to end on one machine, with no accounts and no outside host.

What it sets up (all on 127.0.0.1, under `<var>/demo/`, where `<var>` is the journal's folder):

- the embedded demo Torgsoft database (created with demo goods and photos when missing);
- a local FTP server (pyftpdlib) that receives the published feed and photos, and an HTTP server
  (http.server) that serves the same folder — the "public URL" Satu pulls from;
- the Satu sandbox (`pipeline.devtools.sandbox`), an emulator of the seller API.

What it runs, through the same stage entry points the service uses: photos → feed → publish (FTP)
→ Satu import by URL → stock/price push; then the sandbox creates orders, which are downloaded into
the inbox and imported into Torgsoft (customers, orders, reservations, invoices); then it changes
some order states in the database, as a shop manager would in Torgsoft, and pushes the statuses
back to Satu. It ends with a short report: counts, the feed URL, where to look, `log` examples.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from pipeline import feed, photos, publish
from pipeline.errors import PipelineError
from pipeline.orders import fetch, inbox, reconcile
from pipeline.orders import status as status_push
from pipeline.satu import push
from pipeline.stage import StageResult, summarise_counts

R = TypeVar("R", bound=StageResult)

FTP_PASSWORD_ENV = "TORGSOFT_SATU_DEMO_FTP_PASSWORD"
TOKEN_ENV = "TORGSOFT_SATU_DEMO_SATU_TOKEN"
FTP_USER = "demo"

# Torgsoft CUSTOMER_ORDER.STATUS (reference schema) and the demo's manager actions on imported orders.
ACCEPTED, SHIPPED, CANCELLED = 1, 2, 4
# Counts worth naming when a step finished with problems.
WARNING_COUNTS = (
    "failed",
    "refused",
    "rejected",
    "errors",
    "quarantined",
    "unsent",
    "unmatched_lines",
    "parked",
)
ACTIONS = (
    ("accepted", ACCEPTED, 0),
    ("paid", ACCEPTED, 1),
    ("shipped", SHIPPED, 1),
    ("cancelled", CANCELLED, 0),
)


@dataclass
class DemoReport:
    """What the demo did (counts per step) and where to look."""

    run_id: str = ""
    database: str = ""
    created_database: bool = False
    feed_url: str = ""
    sandbox_url: str = ""
    public_dir: str = ""
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    satu_products: int = 0
    satu_orders: int = 0
    satu_statuses: dict[str, int] = field(default_factory=dict)
    torgsoft: dict[str, int] = field(default_factory=dict)
    changed: dict[str, str] = field(default_factory=dict)  # Satu order id -> manager action
    new_orders: int = 0  # orders the demo created on Satu this run
    new_in_torgsoft: int = 0  # of those, the ones Torgsoft has after the run
    reconciled: list[int] = field(default_factory=list)  # orders the reconcile step had to fetch
    problems: list[str] = field(default_factory=list)  # steps that failed: the demo did not complete
    warnings: list[str] = field(default_factory=list)  # steps that finished but reported problems
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every step ran (warnings, such as a demo photo that is deliberately broken, are fine)."""
        return not self.problems


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class LocalServers:
    """The FTP server receiving the publish upload and the HTTP server serving the same folder."""

    def __init__(self, root: Path, password: str):
        self.root = root
        self.password = password
        self._ftp: Any = None
        self._http: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.ftp_port = 0
        self.http_url = ""

    def start(self) -> LocalServers:
        """Start both on 127.0.0.1, free ports."""
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import ThreadedFTPServer

        self.root.mkdir(parents=True, exist_ok=True)
        authorizer = DummyAuthorizer()
        authorizer.add_user(FTP_USER, self.password, str(self.root), perm="elradfmwMT")
        handler = type(
            "DemoFTPHandler",
            (FTPHandler,),
            {"authorizer": authorizer, "banner": "torgsoft-satu demo", "passive_ports": None},
        )
        import logging

        # pyftpdlib logs every command to stderr unless its logger is configured: keep the demo quiet.
        ftp_log = logging.getLogger("pyftpdlib")
        if not ftp_log.handlers:
            ftp_log.addHandler(logging.NullHandler())
        ftp_log.propagate = False
        self._ftp = ThreadedFTPServer(("127.0.0.1", 0), handler)
        self.ftp_port = self._ftp.address[1]
        t = threading.Thread(
            target=self._ftp.serve_forever,
            kwargs={"timeout": 0.5, "blocking": True},
            name="demo-ftp",
            daemon=True,
        )
        t.start()
        self._threads.append(t)
        self._http = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(self.root))
        )
        self._http.daemon_threads = True
        self.http_url = f"http://127.0.0.1:{self._http.server_address[1]}"
        t = threading.Thread(target=self._http.serve_forever, name="demo-http", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop both servers."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._ftp is not None:
            self._ftp.close_all()
            self._ftp = None


def ensure_database(settings: Any, products: int, seed: int, echo: Callable[[str], None]) -> bool:
    """Create the embedded demo database with demo goods and photos when it is missing; True if created."""
    path = Path(settings.torgsoft.database)
    if settings.torgsoft.dsn:
        raise PipelineError(
            "the demo uses the embedded database file; torgsoft.dsn points at a server "
            '(run the demo with --set torgsoft.dsn="")'
        )
    if path.exists():
        return False
    from pipeline.devtools.demo_data import build_demo_database

    echo(f"Creating the demo database {path} with {products} goods …")
    summary = build_demo_database(
        path,
        settings.photos.source_dir,
        products=products,
        seed=seed,
        shared_access=settings.torgsoft.shared_access,
    )
    echo(f"  {summary.products} goods in {summary.sections} sections, {summary.photos} photo links")
    return True


def demo_settings(settings: Any, servers: LocalServers, sandbox: Any) -> Any:
    """The user's settings pointed at the local FTP/HTTP servers and the sandbox (secrets via env)."""
    os.environ[FTP_PASSWORD_ENV] = servers.password
    os.environ[TOKEN_ENV] = sandbox.token
    publish = dataclasses.replace(
        settings.publish,
        target="ftp",
        host="127.0.0.1",
        port=servers.ftp_port,
        user=FTP_USER,
        password_env=FTP_PASSWORD_ENV,
        remote_dir="/",
        public_base_url=servers.http_url,
        allow_private_urls=True,  # the demo's "public" server is on 127.0.0.1, and that is meant
        key_file=None,
        timeout=15,
        retries=2,
    )
    satu = dataclasses.replace(
        settings.satu,
        base_url=sandbox.url,
        token_env=TOKEN_ENV,
        timeout=15,
        max_retries=2,
        import_after_publish=False,
    )
    return settings.replace(publish=publish, satu=satu)


def set_order_state(settings: Any, changes: dict[str, tuple[int, int]]) -> int:
    """Change the state of imported Satu orders in Torgsoft (what a manager does in the program).

    `changes`: Satu order id → (STATUS, IS_PAID). Goes through the named query
    `demo_set_order_state.sql`, in one transaction. Returns the rows changed.
    """
    from pipeline.devtools.demo_data import demo_mapping
    from pipeline.torgsoft.connection import connect, transaction

    q = demo_mapping(settings).query("demo_set_order_state")
    con = connect(settings)
    changed = 0
    try:
        with transaction(con) as cur:
            for order_id, (status, is_paid) in changes.items():
                cur.execute(
                    q.sql,
                    q.args(
                        {"status": status, "is_paid": is_paid, "source": "satu", "external_id": str(order_id)}
                    ),
                )
                changed += max(cur.rowcount, 0)
    finally:
        con.close()
    return changed


def torgsoft_counts(settings: Any) -> dict[str, int]:
    """Customers, Satu orders, reservations and invoices in the database (query `demo_counts.sql`)."""
    from pipeline.devtools.demo_data import demo_mapping
    from pipeline.torgsoft.connection import connect

    q = demo_mapping(settings).query("demo_counts")
    con = connect(settings)
    try:
        cur = con.cursor()
        cur.execute(q.sql, q.args({"source": "satu"}))
        row = cur.fetchone()
        names = [d[0].lower() for d in cur.description]
        return {n: int(v or 0) for n, v in zip(names, row, strict=True)}
    finally:
        con.close()


def run(
    settings: Any,
    *,
    products: int = 1000,
    orders: int = 6,
    seed: int = 1,
    echo: Callable[[str], None] = print,
    keep_running: Callable[[DemoReport], None] | None = None,
) -> DemoReport:
    """Run the demo end to end; see the module doc. `keep_running` is called with the report while
    the servers are still up (the CLI waits there for Ctrl+C)."""
    from pipeline.devtools.sandbox import SandboxServer
    from pipeline.journal import Journal
    from pipeline.lock import run_lock
    from pipeline.state import State

    started = time.monotonic()
    report = DemoReport(database=str(settings.torgsoft.database))
    var = Path(settings.journal.path).parent
    demo_dir = var / "demo"
    report.public_dir = str(demo_dir / "public")
    with run_lock(settings, "demo", wait=settings.schedule.lock_wait_seconds):
        report.created_database = ensure_database(settings, products, seed, echo)
        servers = LocalServers(demo_dir / "public", secrets.token_urlsafe(12)).start()
        sandbox = SandboxServer(demo_dir / "satu-sandbox").start()
        s = demo_settings(settings, servers, sandbox)
        journal = Journal.from_settings(s, run_id=f"demo-{secrets.token_hex(4)}")
        state = State.from_settings(s)
        report.run_id = journal.run_id
        report.sandbox_url = sandbox.url
        journal.event(
            "demo", "demo started", ftp_port=servers.ftp_port, public=servers.http_url, sandbox=sandbox.url
        )
        try:
            try:
                _exchange(s, report, journal, state, sandbox, orders, seed, echo)
            except Exception as exc:  # noqa: BLE001 - the report says what failed; the log has the rest
                if not report.problems:
                    report.problems.append(f"{type(exc).__name__}: {exc}")
                journal.event(
                    "demo",
                    f"demo stopped: {type(exc).__name__}: {exc}",
                    "error",
                    traceback=traceback.format_exc(limit=20),
                )
            if keep_running is not None:
                keep_running(report)
        finally:
            journal.event(
                "demo",
                "demo finished" if report.ok else f"demo did not complete: {report.problems}",
                "info" if report.ok else "error",
                warnings=report.warnings,
            )
            journal.close()
            state.close()
            sandbox.stop()
            servers.stop()
    report.seconds = round(time.monotonic() - started, 1)
    return report


def new_orders(sandbox: Any, n: int, seed: int) -> list[dict]:
    """`n` realistic orders over the sandbox's products; the first few are new ("pending"), so the
    manager actions of the demo (accept, mark paid, ship, cancel) are all meaningful."""
    from pipeline.devtools.sandbox import generate_orders

    products = [p for p in sandbox.products() if p.get("status") != "deleted"]
    # A new seed per run (the sandbox keeps its orders): each demo run brings new customers too.
    orders = generate_orders(n, seed + len(sandbox.orders()), products or None)
    for o in orders[: len(ACTIONS)]:
        o["status"] = "pending"  # new and unpaid, like an order a manager has not touched yet
        o["date_modified"] = o["date_created"]
        o["payment_data"] = {**(o.get("payment_data") or {}), "status": "unpaid"}
        for key in ("status_name", "cancellation"):
            o.pop(key, None)
    for o in orders[len(ACTIONS) : len(ACTIONS) + 1]:  # and one paid on Satu already: it gets an invoice
        o["status"], o["status_name"] = "paid", "Оплачен"
        o["payment_data"] = {**(o.get("payment_data") or {}), "status": "paid"}
        o.pop("cancellation", None)
    return orders


def _step(
    report: DemoReport,
    name: str,
    echo: Callable[[str], None],
    func: Callable[[], R],
    describe: Callable[[R], str] | None = None,
) -> R:
    """Run one stage, record its counts, print one line; a failure is recorded and re-raised."""
    t0 = time.monotonic()
    try:
        result = func()
    except Exception as exc:
        report.problems.append(f"{name}: {type(exc).__name__}: {exc}")
        echo(f"  {name:<18} FAILED: {exc}")
        raise
    counts = result.counts()
    report.steps[name] = counts
    if not result.ok:
        detail = summarise_counts({k: v for k, v in counts.items() if k in WARNING_COUNTS})
        report.warnings.append(f"{name}: finished with problems" + (f" ({detail})" if detail else ""))
    text = describe(result) if describe else summarise_counts(counts)
    echo(f"  {name:<18} {text}  ({time.monotonic() - t0:.1f} s)")
    return result


def _exchange(
    s: Any,
    report: DemoReport,
    journal: Any,
    state: Any,
    sandbox: Any,
    orders: int,
    seed: int,
    echo: Callable[[str], None],
) -> None:
    kw = {"journal": journal, "state": state}
    echo(
        f"Catalog → Satu (FTP 127.0.0.1:{s.publish.port}, public {s.publish.public_base_url}, "
        f"sandbox {sandbox.url})"
    )
    _step(
        report,
        "photos",
        echo,
        lambda: photos.run(s, **kw, progress=False),
        lambda r: f"{r.processed} resized, {r.unchanged} unchanged, {r.failed + r.refused} unusable",
    )
    _step(
        report,
        "feed",
        echo,
        lambda: feed.run(s, **kw),
        lambda r: f"{r.offers} offers, {r.hidden} hidden, {r.awaiting} awaiting, {r.categories} categories",
    )
    _step(
        report,
        "publish",
        echo,
        lambda: publish.run(s, **kw),
        lambda r: (
            f"{r.photos_uploaded} photos and {r.feed_files_uploaded} feed file(s) uploaded by FTP, "
            f"{r.unchanged} unchanged"
        ),
    )
    report.feed_url = push.feed_url(s)
    _step(
        report,
        "import by URL",
        echo,
        lambda: push.request_import(s, **kw, feed_url=report.feed_url, poll=0.3, timeout=300),
        lambda r: f"{r.status}: {r.created} created, {r.updated} updated, {r.errors} with errors",
    )
    _step(
        report,
        "stock push",
        echo,
        lambda: push.run(s, **kw, full=True),
        lambda r: f"{r.sent} offers sent, {r.accepted} accepted, {r.rejected} refused",
    )
    report.satu_products = len(sandbox.products())

    echo("Satu → Torgsoft")
    made = sandbox.create_orders(orders=new_orders(sandbox, orders, seed))
    echo(
        f"  {'sandbox orders':<18} {len(made)} new order(s) on Satu, ids {made[0]['id']}…{made[-1]['id']}"
        if made
        else "  sandbox orders     none"
    )
    _step(
        report,
        "download",
        echo,
        lambda: fetch.run(s, **kw),
        lambda r: f"{r.listed} order(s) listed on Satu, {r.written} written to the inbox {s.orders.inbox}",
    )
    _step(
        report,
        "import",
        echo,
        lambda: inbox.run(s, **kw),
        lambda r: (
            f"{r.imported} imported, {r.updated} updated, {r.invoices} invoices, {r.quarantined} quarantined"
        ),
    )
    checked = _step(
        report,
        "reconcile",
        echo,
        lambda: reconcile.run(s, **kw, fix=True),
        lambda r: (
            f"{r.checked} Satu order(s) of the last {r.days} days checked, "
            f"{len(r.missing)} missing, {len(r.fixed)} fetched now"
        ),
    )
    report.reconciled = list(checked.fixed)
    if checked.fixed:  # orders the download missed: the importer takes them now
        _step(report, "import (again)", echo, lambda: inbox.run(s, **kw), lambda r: f"{r.imported} imported")
    _check_imported(s, report, [o["id"] for o in made])
    _stock_tick(s, report, kw, echo)
    _step(
        report,
        "status baseline",
        echo,
        lambda: status_push.run(s, **kw),
        lambda r: (
            f"{r.checked} order(s) checked, {r.pushed} pushed"
            + (f" (first run: {r.baseline} recorded as already pushed)" if r.baseline else "")
        ),
    )

    echo("Torgsoft → Satu (order states changed in the database)")
    ids = [o["id"] for o in made]
    wanted = {oid: ACTIONS[i % len(ACTIONS)] for i, oid in enumerate(ids[: len(ACTIONS)])}
    changed = set_order_state(s, {oid: (st, paid) for oid, (_, st, paid) in wanted.items()})
    report.changed = {str(oid): action for oid, (action, _, _) in wanted.items()}
    echo(
        f"  {'changed in Torgsoft':<18} {changed} order(s): "
        + ", ".join(f"{oid} {action}" for oid, action in report.changed.items())
    )
    journal.event("demo", f"changed {changed} order state(s) in Torgsoft", changes=report.changed)
    _step(
        report,
        "status push",
        echo,
        lambda: status_push.run(s, **kw),
        lambda r: f"{r.changed} changed, {r.pushed} pushed, {r.failed} failed",
    )

    on_satu = {str(o["id"]): o for o in sandbox.orders()}
    report.satu_orders = len(on_satu)
    for oid in report.changed:
        st = on_satu.get(oid, {}).get("status", "?")
        report.satu_statuses[st] = report.satu_statuses.get(st, 0) + 1
    report.torgsoft = torgsoft_counts(s)


def _check_imported(s: Any, report: DemoReport, ids: list[int]) -> None:
    """Every order the demo made must be in Torgsoft now: the report says what really happened."""
    lookup = reconcile.torgsoft_lookup(s)
    have = lookup(ids) if lookup is not None and ids else set(ids)
    report.new_orders, report.new_in_torgsoft = len(ids), len(have)
    if lost := [str(i) for i in ids if i not in have]:
        report.problems.append(f"{len(lost)} of {len(ids)} new order(s) not in Torgsoft: {', '.join(lost)}")


def _stock_tick(s: Any, report: DemoReport, kw: dict[str, Any], echo: Callable[[str], None]) -> None:
    """The stock watcher's tick, as `serve` runs it every `[schedule] stock_seconds`: the units the
    imported orders reserved reach Satu now, not with the next exchange."""
    from pipeline.stock.watch import StockWatcher

    watcher = StockWatcher(s)
    try:
        _step(
            report,
            "stock watcher",
            echo,
            lambda: watcher.tick(**kw),
            lambda r: (
                f"{r.updated + r.hidden} offer(s) changed by the reservations, {r.accepted} acknowledged by Satu"
            ),
        )
    finally:
        watcher.close()


def format_report(report: DemoReport, settings: Any) -> str:
    """The short report printed at the end."""
    lines = ["", "Demo report" + ("" if report.ok else " — WITH PROBLEMS"), "-" * 60]
    step = report.steps
    feed = step.get("feed", {})
    lines.append(
        f"Catalog:   {feed.get('offers', 0)} offers in the feed ({feed.get('hidden', 0)} hidden), "
        f"{step.get('photos', {}).get('processed', 0)} photos processed"
    )
    imp = step.get("import by URL", {})
    lines.append(
        f"Satu:      import {imp.get('status', '?')}: {imp.get('created', 0)} created, "
        f"{imp.get('updated', 0)} updated; {report.satu_products} products on Satu; stock push "
        f"{step.get('stock push', {}).get('accepted', 0)} accepted"
    )
    inbox = step.get("import", {})
    t = report.torgsoft
    lines.append(
        f"Orders:    {inbox.get('imported', 0)} imported ({inbox.get('invoices', 0)} invoices); Torgsoft "
        f"now has {t.get('clients', 0)} customers, {t.get('orders', 0)} Satu orders, "
        f"{t.get('reservations', 0)} reservations, {t.get('invoices', 0)} invoices"
    )
    lines.append(
        f"New:       {report.new_orders} order(s) placed on Satu this run, {report.new_in_torgsoft} of them "
        f"in Torgsoft; the check of the last days fetched {len(report.reconciled)} the download missed"
    )
    pushed = step.get("status push", {})
    lines.append(
        f"Statuses:  {len(report.changed)} order(s) changed in Torgsoft, {pushed.get('pushed', 0)} "
        f"pushed; those orders on Satu now: "
        + (", ".join(f"{k} {v}" for k, v in sorted(report.satu_statuses.items())) or "-")
    )
    lines.append(
        f"Feed URL:  {report.feed_url}  (served while the demo runs; the file: {settings.feed.output})"
    )
    lines.append(
        f"Published: {report.public_dir}   Satu sandbox state: {Path(report.public_dir).parent / 'satu-sandbox'}"
    )
    lines.append(f"Database:  {report.database}")
    lines.append(f"Journal:   {settings.journal.path}   log file: {settings.journal.log_file}")
    run = _run_command()
    web = settings.web
    lines.append(
        f"Control room: {run} web   then open http://{web.host}:{web.port}/ (runs, orders, products, journal)"
    )
    lines.append("Look closer:")
    first = next(iter(report.changed), None)
    lines.append(f"  {run} log --run {report.run_id}")
    if first:
        lines.append(f"  {run} log --order {first}")
    lines.append(f"  {run} log --stage orders --since 1h")
    lines.append(f"  {run} log --level warning --since 1h")
    if report.warnings:
        lines.append(f"Warnings (details: {run} log --level warning --run {report.run_id}):")
        lines.extend(f"  - {w}" for w in report.warnings)
    if report.problems:
        lines.append("Problems:")
        lines.extend(f"  - {p}" for p in report.problems)
    lines.append(f"Done in {report.seconds} s.")
    return "\n".join(lines)


def _run_command() -> str:
    """How the reader starts the program again: the venv's python when the demo runs from it."""
    exe = Path(sys.executable)
    try:
        exe = exe.relative_to(Path.cwd())
    except ValueError:
        return "python run.py"
    return f"{exe} run.py"
