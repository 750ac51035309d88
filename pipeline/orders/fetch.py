"""Download Satu orders into the inbox: one JSON file per order version, never half a file.

The cursor (state `orders.fetch` / `cursor`: the newest `date_modified` seen, and its order id) says
where the next poll starts; it is saved only after a complete pass, when every file of the pass is
durable (written under a temporary name, fsynced, renamed, folder fsynced). The poll starts
`[orders] fetch_overlap_hours` (default 6) before the cursor: Satu filters by whole seconds, a
just-saved order may show up late, and the zone Satu reads query dates in is not proven (issue 13).
The wide overlap costs nothing: versions already written are recognised by state `orders.fetched`
({order id: date_modified}) and skipped. A re-fetched order that changed on Satu gets a new file: the name carries the id and
the modification time (`satu-order-<id>-<YYYYmmddTHHMMSSffffff>.json`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.errors import DiskFullError, RetryableError, StopError
from pipeline.fsutil import write_atomic
from pipeline.orders.parse import SATU_TZ, parse_satu_datetime
from pipeline.stage import ResultBase, StopCheck, never_stop

STAGE = "orders"
NS = "orders.fetch"
SEEN_NS = "orders.fetched"
PREFIX = "satu-order-"
BATCH = 100  # files per folder fsync and state write


@dataclass
class FetchResult(ResultBase):
    """Counts of one download pass."""

    listed: int = 0
    written: int = 0
    already: int = 0  # versions already in the inbox
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the pass completed."""
        return not self.errors

    @property
    def problems(self) -> list[str]:  # type: ignore[override]
        """What went wrong (the pass was interrupted)."""
        return list(self.errors)

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"listed {self.listed}, written {self.written}, already there {self.already}"
            + (f", cursor {self.cursor}" if self.cursor else "")
            + (f", errors {len(self.errors)}" if self.errors else "")
        )


def file_name(order: dict[str, Any]) -> str:
    """The inbox file name of one order version: id + date_modified (or a content hash if unreadable)."""
    oid = order.get("id")
    stamp = order.get("date_modified") or order.get("date_created")
    try:
        tag = parse_satu_datetime(str(stamp)).astimezone(SATU_TZ).strftime("%Y%m%dT%H%M%S%f")
    except (ValueError, TypeError):
        tag = "h" + hashlib.sha256(json.dumps(order, sort_keys=True, default=str).encode()).hexdigest()[:16]
    safe_id = str(oid) if isinstance(oid, int) else "noid"
    return f"{PREFIX}{safe_id}-{tag}.json"


def write_version(inbox: Path, raw: dict[str, Any]) -> str:
    """Write one order version into the inbox, durably (temp name, fsync, rename; 0600: personal
    data), as `{"order": …}`; returns the file name. The caller records it in `orders.fetched`."""
    name = file_name(raw)
    data = json.dumps({"order": raw}, ensure_ascii=False, indent=None).encode("utf-8")
    write_atomic(inbox / name, data, private=True)
    return name


def overlap(settings: Any) -> timedelta:
    """How far before the cursor a poll starts (`[orders] fetch_overlap_hours`)."""
    return timedelta(hours=float(settings.orders.fetch_overlap_hours))


def _advance(
    state: Any, cursor: Any, newest: tuple[datetime, int] | None, newest_text: str | None
) -> str | None:
    """Move the saved cursor to the newest order seen (never back; kept after a stop). Returns it."""
    if newest is not None and (cursor is None or newest[0] >= parse_satu_datetime(cursor["modified"])):
        state.put(NS, "cursor", {"modified": newest_text, "id": newest[1]})
        return newest_text
    return cursor["modified"] if cursor else None


def run(
    settings: Any, *, journal: Any, state: Any, client: Any = None, should_stop: StopCheck = never_stop
) -> FetchResult:
    """Poll orders/list from the saved cursor and write every new or changed order into the inbox.

    `should_stop` is asked per order: a stop keeps the cursor (what was written stays recorded)."""
    from pipeline.satu.client import SatuClient

    result = FetchResult()
    inbox = Path(settings.orders.inbox)
    cursor = state.get(NS, "cursor")
    since: datetime | None = None
    if cursor:
        since = parse_satu_datetime(cursor["modified"]) - overlap(settings)
    own = client is None
    client = client or SatuClient.from_settings(settings)
    newest: tuple[datetime, int] | None = None
    newest_text = None
    pending: list[tuple[str, str]] = []

    def flush() -> None:
        # Each file of the batch is durable (write_atomic); only then is the batch recorded as written.
        if pending:
            state.put_many(SEEN_NS, pending)
            pending.clear()

    try:
        for raw in client.iter_orders(last_modified_from=since):
            if should_stop():
                result.interrupted = True
                break
            result.listed += 1
            oid = raw.get("id")
            stamp = str(raw.get("date_modified") or raw.get("date_created") or "")
            if isinstance(oid, int) and stamp and state.get(SEEN_NS, str(oid)) == stamp:
                result.already += 1
                continue
            write_version(inbox, raw)
            result.written += 1
            if isinstance(oid, int) and stamp:
                pending.append((str(oid), stamp))
                if len(pending) >= BATCH:
                    flush()
                try:
                    moment = parse_satu_datetime(stamp)
                except ValueError:
                    continue
                if newest is None or (moment, oid) > newest:
                    newest, newest_text = (moment, oid), stamp
        flush()
    except RetryableError as exc:
        flush()
        result.errors.append(str(exc))
        journal.event(
            STAGE, f"order download interrupted (cursor kept): {exc}", "warning", written=result.written
        )
        return result
    except DiskFullError as exc:
        # The order that did not fit left no temp file (write_atomic); the cursor stays, so the next
        # poll after space was freed lists it again. What was written is recorded if the state can be.
        with contextlib.suppress(DiskFullError):
            flush()
        journal.event(STAGE, f"order download stopped (cursor kept): {exc}", "error", written=result.written)
        raise
    except StopError as exc:
        journal.event(STAGE, f"order download refused: {exc}", "error")
        raise
    finally:
        if own:
            client.close()
    result.cursor = _advance(state, cursor, None if result.interrupted else newest, newest_text)
    journal.event(STAGE, f"order download: {result.summary()}", listed=result.listed, written=result.written)
    return result
