"""What the web page shows, read from the same journal, state and folders the command line reads.

Read-only: nothing here changes the exchange's files (actions live in `actions.py`, quarantine moves
in `quarantine.py`). Stage results are read from the journal's structured data, never its message text.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.journal import LEVELS, Event, Journal
from pipeline.state import State

#: The jobs of the Overview: (journal stage, what it is). A job's run is the events of one run id.
JOBS = ("sync", "feed", "photos", "publish", "push", "stock", "orders", "status", "service")
ORDER_STAGES = ("orders", "status")


def local_time(ts: str) -> str:
    """A stored UTC timestamp in the machine's local time, to the second."""
    try:
        return datetime.fromisoformat(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return ts


def _age_seconds(ts: str) -> float | None:
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(ts)).total_seconds()
    except ValueError:
        return None


@dataclass
class JobRun:
    """The last run of one job, from its events in the journal."""

    stage: str
    run_id: str
    started: str
    finished: str
    seconds: float
    level: str
    counts: dict[str, Any]
    last_message: str


def last_runs(journal: Journal) -> list[JobRun]:
    """Each job's newest run: when, how long, its worst level and the counts its last event carried."""
    out = []
    for stage in JOBS:
        newest = list(journal.search(stage=stage, limit=1))
        if not newest:
            continue
        run_id = newest[0].run_id
        events = [e for e in journal.search(stage=stage, run_id=run_id)]
        worst = max(events, key=lambda e: LEVELS.get(e.level, 20))
        counts: dict[str, Any] = {}
        for e in events:  # the last event carrying numbers is the run's summary
            numbers = {k: v for k, v in (e.data or {}).items() if isinstance(v, int | float | bool)}
            if numbers:
                counts = numbers
        t0, t1 = datetime.fromisoformat(events[0].ts), datetime.fromisoformat(events[-1].ts)
        out.append(
            JobRun(
                stage,
                run_id,
                events[0].ts,
                events[-1].ts,
                (t1 - t0).total_seconds(),
                worst.level,
                counts,
                events[-1].message,
            )
        )
    return out


def state_rows(state_path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Rows of a read-only query on the state file (a missing file reads as empty)."""
    if not Path(state_path).exists():
        return []
    con = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # the table does not exist yet (no run so far)
        return []
    finally:
        con.close()


def outbox_sizes(state_path: Path) -> dict[str, int]:
    """Pending API writes per kind."""
    return dict(state_rows(state_path, "SELECT kind, COUNT(*) FROM outbox GROUP BY kind ORDER BY kind"))


def open_alerts(state: State) -> list[dict[str, Any]]:
    """Alerts notify keeps open (until their cause goes away)."""
    out = []
    for key, record in state.items("notify.alerts"):
        record = record if isinstance(record, dict) else {"value": record}
        out.append({"key": key, **record})
    return out


@dataclass
class FeedInfo:
    """The published feed at a glance."""

    path: Path
    exists: bool
    age_seconds: float | None
    url: str
    summary: dict[str, Any] = field(default_factory=dict)
    satu_import: Any = None


def feed_info(settings: Any, journal: Journal, state: State) -> FeedInfo:
    """The feed file, its age, the last run's counts (from history) and the last Satu import result."""
    path = Path(settings.feed.output)
    exists = path.exists()
    age = time.time() - path.stat().st_mtime if exists else None
    url = ""
    for e in journal.search(stage="sync", grep="feed_url", limit=20):
        if (e.data or {}).get("feed_url"):
            url = e.data["feed_url"]  # type: ignore[index]
    if not url and settings.publish.public_base_url:
        url = settings.publish.public_base_url.rstrip("/") + "/" + path.name
    runs = history_runs(settings)
    summary = runs[-1]["summary"] if runs else {}
    imports = list(state.items("satu.import"))
    return FeedInfo(path, exists, age, url, summary, imports[-1][1] if imports else None)


def history_runs(settings: Any) -> list[dict[str, Any]]:
    """The kept feeds, oldest first: stamp, summary (offers, hidden, diff…) and the diff file."""
    from pipeline.feed.history import History

    output = Path(settings.feed.output)
    history = History(settings.feed.history_dir, output.stem)
    out = []
    for stamp in history.runs():
        summary_file = history.path(stamp, ".json")
        try:
            summary = json.loads(summary_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {}
        out.append({"stamp": stamp, "summary": summary, "diff_file": history.path(stamp, ".diff.tsv")})
    return out


def diff_lines(path: Path, limit: int = 300) -> list[list[str]]:
    """The first lines of a kept diff report (tab-separated), for the Feed history page."""
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rows.append(line.rstrip("\n").split("\t"))
            if len(rows) >= limit:
                break
    return rows


def today_counts(journal: Journal) -> dict[str, int]:
    """Orders imported/updated and invoices created today (local day), from the inbox passes' data."""
    start = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    totals: dict[str, int] = defaultdict(int)
    for e in journal.search(stage="orders", since=start):
        data = e.data or {}
        if "imported" in data and "invoices" in data:
            for key in ("imported", "updated", "invoices", "quarantined"):
                totals[key] += int(data.get(key) or 0)
    return dict(totals)


def daily_series(settings: Any, journal: Journal, days: int = 30) -> dict[str, list[tuple[str, float]]]:
    """Per local day over the last `days`: orders imported, offers in the feed, push accepted/refused, errors."""
    today = datetime.now().astimezone().date()
    keys = [(today - timedelta(days=i)).isoformat() for i in range(days - 1, -1, -1)]
    orders: dict[str, float] = dict.fromkeys(keys, 0)
    errors: dict[str, float] = dict.fromkeys(keys, 0)
    accepted: dict[str, float] = dict.fromkeys(keys, 0)
    refused: dict[str, float] = dict.fromkeys(keys, 0)
    since = datetime.now().astimezone() - timedelta(days=days)
    for e in journal.search(since=since):
        day = datetime.fromisoformat(e.ts).astimezone().date().isoformat()
        if day not in orders:
            continue
        data = e.data or {}
        if LEVELS.get(e.level, 20) >= LEVELS["error"]:
            errors[day] += 1
        if e.stage == "orders" and "imported" in data and "invoices" in data:
            orders[day] += int(data.get("imported") or 0)
        if e.stage == "push" and "accepted" in data:
            accepted[day] += int(data.get("accepted") or 0)
            refused[day] += int(data.get("rejected") or 0)
    offers: dict[str, float] = dict.fromkeys(keys, 0)
    for run in history_runs(settings):
        day = datetime.strptime(run["stamp"][:8], "%Y%m%d").date().isoformat()
        if day in offers:
            offers[day] = float(run["summary"].get("offers") or 0)
    return {
        "orders": list(orders.items()),
        "offers": list(offers.items()),
        "accepted": list(accepted.items()),
        "refused": list(refused.items()),
        "errors": list(errors.items()),
    }


# --- orders ---------------------------------------------------------------------------------------------


@dataclass
class OrderRow:
    """One Satu order as the journal and the status state know it."""

    order_id: str
    first_seen: str
    last_seen: str
    fate: str  # imported | updated | waiting | quarantined | seen
    torgsoft_order: Any = None
    customer: str = ""
    phone: str = ""
    total: str = ""
    satu_status: str = ""
    events: int = 0


def _fate(events: list[Event]) -> tuple[str, Any]:
    """The order's fate from its newest telling event (by its data, not its words)."""
    fate, doc = "seen", None
    for e in events:
        data = e.data or {}
        if "quarantine" in data:
            fate = "quarantined"
        elif "torgsoft_order" in data:
            doc = data["torgsoft_order"]
            fate = "updated" if fate in ("imported", "updated") else "imported"
        elif e.stage == "orders" and "file" in data and LEVELS.get(e.level, 20) >= LEVELS["warning"]:
            fate = "waiting" if fate in ("seen", "waiting") else fate
    return fate, doc


_ORDER_FILE = re.compile(r"(?:^|[^0-9])(\d+)(?:[-.][^/]*)?\.json$")


def order_files(settings: Any) -> dict[str, Path]:
    """The newest order file (inbox, done/ or quarantine/) per Satu order id, from the file names
    the fetcher writes (`<prefix><id>-<modified>.json`)."""
    inbox = Path(settings.orders.inbox)
    newest: dict[str, tuple[float, Path]] = {}
    for folder in (inbox, inbox / "done", inbox / "quarantine"):
        if not folder.is_dir():
            continue
        for p in folder.glob("*.json"):
            m = _ORDER_FILE.search(p.name)
            if not m:
                continue
            mtime = p.stat().st_mtime
            if m.group(1) not in newest or mtime > newest[m.group(1)][0]:
                newest[m.group(1)] = (mtime, p)
    return {k: v[1] for k, v in newest.items()}


def order_details(settings: Any, order_id: str, files: dict[str, Path] | None = None) -> dict[str, Any]:
    """Customer, phone, total and Satu status of an order from its newest file."""
    path = (files if files is not None else order_files(settings)).get(str(order_id))
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"file": str(path)}
    order = raw.get("order", raw) if isinstance(raw, dict) else {}
    order = order if isinstance(order, dict) else {}
    client = order.get("client_first_name", ""), order.get("client_last_name", "")
    return {
        "file": str(path),
        "customer": " ".join(str(x) for x in client if x) or str(order.get("email") or ""),
        "phone": str(order.get("phone") or ""),
        "total": str(order.get("price") or ""),
        "status": str(order.get("status") or ""),
    }


def orders(
    settings: Any, journal: Journal, state: State, query: str = "", limit: int = 200
) -> list[OrderRow]:
    """Satu orders the journal knows, newest first; `query` matches the id, phone or customer name."""
    by_order: dict[str, list[Event]] = defaultdict(list)
    for stage in ORDER_STAGES:
        for e in journal.search(stage=stage):
            if e.order_id:
                by_order[e.order_id].append(e)
    rows = []
    q = query.strip().casefold()
    digits = "".join(ch for ch in q if ch.isdigit())
    files = order_files(settings)
    for oid, events in by_order.items():
        events.sort(key=lambda e: e.id)
        fate, doc = _fate(events)
        info = order_details(settings, oid, files)
        row = OrderRow(
            oid,
            events[0].ts,
            events[-1].ts,
            fate,
            doc,
            info.get("customer", ""),
            info.get("phone", ""),
            info.get("total", ""),
            info.get("status", ""),
            len(events),
        )
        if q:
            phone_digits = "".join(ch for ch in row.phone if ch.isdigit())
            hit = q in oid.casefold() or q in row.customer.casefold() or (digits and digits in phone_digits)
            if not hit:
                continue
        pushed = state.get("status.orders", oid)
        if isinstance(pushed, dict) and pushed.get("status"):
            row.satu_status = str(pushed["status"])
        rows.append(row)
    rows.sort(key=lambda r: r.last_seen, reverse=True)
    return rows[:limit]


def order_story(journal: Journal, order_id: str) -> list[Event]:
    """Every journal event about one order, oldest first (downloaded, imported, status pushed…)."""
    return list(journal.search(order_id=order_id))


def next_sync(settings: Any, journal: Journal) -> str:
    """When `serve` should start the next exchange (its last start + the interval); "" without a service."""
    for e in reversed(list(journal.search(stage="service", grep="steps", limit=200))):
        steps = (e.data or {}).get("steps")
        if isinstance(steps, list) and "sync" in steps:
            when = datetime.fromisoformat(e.ts) + timedelta(minutes=settings.schedule.interval_minutes)
            return when.astimezone().strftime("%Y-%m-%d %H:%M")
    return ""
