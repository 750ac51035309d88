"""The sandbox's state: products, orders, imports and injected faults, kept in SQLite (survives restarts)."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pipeline.devtools.sandbox.orders_gen import generate_orders
from pipeline.devtools.sandbox.vocab import (
    CUSTOM_STATUSES,
    FAULT_MODES,
    MAX_LIMIT,
    SATU_TZ,
    STATUS_NAMES,
    _decimal,
    format_price,
    satu_time,
)
from pipeline.fsutil import create_private, make_dirs

#: the ways the import can read available= (see `feed_import.presence_of`)
AVAILABILITY_DIALECTS = ("satu", "yml")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY,
    external_id TEXT UNIQUE,
    group_id INTEGER,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS imports (id TEXT PRIMARY KEY, started REAL NOT NULL, data TEXT NOT NULL);
"""


class _Fault:
    def __init__(self, count: int, mode: str, retry_after: float | None, delay: float, path: str | None):
        self.count, self.mode, self.retry_after, self.delay, self.path = count, mode, retry_after, delay, path


class SandboxStore:
    """The sandbox's state and the direct (in-process) ways to change it (see `SandboxServer`)."""

    def __init__(
        self,
        state_dir: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        readonly_token: str | None = None,
        import_delay: float = 0.3,
        check_pictures: bool = True,
        appear_delay: float = 0.0,
        query_timezone: tzinfo = UTC,
        import_min_gap: float = 0.0,
        availability: str = "satu",
    ):
        self.state_dir = Path(state_dir)
        #: the zone query dates are read in (the evidence says Satu reads them as UTC)
        self.query_timezone = query_timezone
        #: the X-LANGUAGE header of the last API call (None when it had none)
        self.last_language: str | None = None
        #: the `cancellation_reason` code each cancelled order got through set_status (Satu shows only
        #: the title in the order, so the sandbox keeps the code aside for tests)
        self.cancellation_reasons: dict[int, str] = {}
        make_dirs(self.state_dir, private=True)  # its orders hold (generated) personal data
        self.host, self.port = host, port
        self.import_delay = import_delay
        #: seconds that must pass between two import starts (Satu rate-limits them; 0 = only one at a time)
        self.import_min_gap = import_min_gap
        if availability not in AVAILABILITY_DIALECTS:
            raise ValueError(f"availability must be one of {AVAILABILITY_DIALECTS}, not {availability!r}")
        #: how the import reads offer available=: "satu" (Prom/Satu: "false" = made to order) or "yml"
        #: (Yandex reading: anything but "true" = not available)
        self.availability = availability
        self._last_import_start = 0.0
        #: the shop's custom order statuses (`custom-<id>`: name); set_status refuses others
        self.custom_statuses: dict[str, str] = dict(CUSTOM_STATUSES)
        self.appear_delay = appear_delay
        self.check_pictures = check_pictures
        self.readonly_token = readonly_token
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            create_private(self.state_dir / "sandbox.sqlite"), check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        saved = self._meta("token")
        self.token = token or saved or secrets.token_urlsafe(24)
        if self.token != saved:
            self._set_meta("token", self.token)
        self._faults: list[_Fault] = []
        self._import_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: API calls received, by "METHOD /path-pattern" (control calls excluded)
        self.calls: dict[str, int] = {}
        #: the largest page the lists return (a larger `limit` is silently capped)
        self.max_limit = MAX_LIMIT

    # --- state helpers --------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _next_id(self, key: str, start: int, count: int = 1) -> int:
        """Reserve `count` ids from a counter; returns the first."""
        with self._lock:
            first = int(self._meta(key) or start)
            self._set_meta(key, str(first + count))
            return first

    # --- fault injection ------------------------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        mode: str = "500",
        *,
        retry_after: float | None = 0,
        delay: float = 3.0,
        path: str | None = None,
    ) -> None:
        """Make the next `count` API calls fail: `429` (with Retry-After), `500`/`502`/`503` (HTML body),
        `200-error` (HTTP 200 with {"error": …}) or `timeout` (no answer for `delay` seconds, then the
        connection drops). `path`: only calls whose path starts with it (after /api/v1)."""
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {FAULT_MODES}")
        with self._lock:
            self._faults.append(_Fault(count, mode, retry_after, delay, path))

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.count > 0 and (f.path is None or path.startswith(f.path)):
                    f.count -= 1
                    if f.count == 0:
                        self._faults.remove(f)
                    return f
        return None

    def pending_faults(self) -> int:
        """How many injected failures are still to come."""
        with self._lock:
            return sum(f.count for f in self._faults)

    # --- products -------------------------------------------------------------------------------------

    def put_products(self, products: Iterable[dict]) -> int:
        """Create or update products directly (tests, benchmarks). Keys: external_id (required), name,
        sku, price, quantity_in_stock, presence, status, prices, group_id. Returns how many."""
        rows = list(products)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for p in rows:
                    ext = str(p["external_id"])
                    row = self._db.execute(
                        "SELECT id, data FROM products WHERE external_id = ?", (ext,)
                    ).fetchone()
                    if row:
                        data = json.loads(row[1])
                        data.update({k: v for k, v in p.items() if k != "id"})
                        if "price" in p:
                            data["price"] = str(_decimal(p["price"]))
                        self._save_product(data)
                    else:
                        self._create_product({**p, "external_id": ext})
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def _create_product(self, p: dict) -> dict:
        pid = self._next_id("next_product_id", 2_000_000_001)
        data = {
            "id": pid,
            "external_id": str(p["external_id"]),
            "name": p.get("name") or f"Товар {p['external_id']}",
            "sku": p.get("sku") or "",
            "keywords": "",
            "description": p.get("description") or "",
            "selling_type": p.get("selling_type") or "retail",
            "presence": p.get("presence") or "available",
            "presence_sure": True,
            "price": str(_decimal(p.get("price")) or Decimal(0)),
            "minimum_order_quantity": None,
            "discount": None,
            "prices": p.get("prices") or [],
            "currency": "KZT",
            "group_id": p.get("group_id"),
            "category_id": p.get("category_id"),
            "main_image": p.get("main_image") or "",
            "images": p.get("images") or [],
            "status": p.get("status") or "on_display",
            "quantity_in_stock": p.get("quantity_in_stock"),
            "measure_unit": "шт.",
            "date_modified": satu_time(datetime.now(SATU_TZ)),
        }
        if p.get("_visible_after"):
            data["_visible_after"] = p["_visible_after"]
        self._save_product(data)
        return data

    def _save_product(self, data: dict) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO products (id, external_id, group_id, data) VALUES (?, ?, ?, ?)",
            (data["id"], data["external_id"], data.get("group_id"), json.dumps(data, ensure_ascii=False)),
        )

    def products(self) -> list[dict]:
        """Every product as stored (price as a plain decimal string), by id."""
        with self._lock:
            return [json.loads(r[0]) for r in self._db.execute("SELECT data FROM products ORDER BY id")]

    def product(self, external_id: str) -> dict | None:
        """One stored product by external id."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM products WHERE external_id = ?", (str(external_id),)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def delete_product(self, external_id: str) -> None:
        """Remove a product outright (tests of 'missing on Satu')."""
        with self._lock:
            self._db.execute("DELETE FROM products WHERE external_id = ?", (str(external_id),))

    @staticmethod
    def _product_view(data: dict) -> dict:
        """A product as the API shows it: prices as strings with ₸."""
        nbsp = data["id"] % 2 == 0
        view = {k: v for k, v in data.items() if not k.startswith("_")}
        view["price"] = format_price(data["price"], nbsp=nbsp)
        view["prices"] = [
            {
                "price": format_price(p["price"], nbsp=nbsp),
                "minimum_order_quantity": p.get("minimum_order_quantity"),
            }
            for p in data.get("prices") or []
        ]
        return view

    # --- orders ---------------------------------------------------------------------------------------

    def create_orders(
        self,
        n: int | None = None,
        *,
        seed: int = 1,
        orders: list[dict] | None = None,
        products: Sequence[Any] | None = None,
    ) -> list[dict]:
        """Add orders: the given dicts, or `n` generated ones whose lines use `products` (default: the
        sandbox's own products, else a tiny built-in list). Ids are assigned by the sandbox."""
        if orders is None:
            if products is None:
                products = [
                    (p["external_id"], p.get("sku", ""), p.get("name", ""), p["price"])
                    for p in self.products()
                    if p.get("status") != "deleted"
                ] or None
            orders = generate_orders(n or 0, seed, products)
        first = self._next_id("next_order_id", 300_000_001, len(orders))
        out = []
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for i, o in enumerate(orders):
                    o = {**o, "id": first + i}
                    now = satu_time(datetime.now(SATU_TZ))
                    o.setdefault("date_created", now)
                    o.setdefault("date_modified", o["date_created"])
                    o.setdefault("status", "pending")
                    o.setdefault("status_name", STATUS_NAMES.get(o["status"], o["status"]))
                    o.setdefault("products", [])
                    self._save_order(o)
                    out.append(o)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def _save_order(self, o: dict) -> None:
        created = datetime.fromisoformat(o["date_created"]).timestamp()
        modified = datetime.fromisoformat(o["date_modified"]).timestamp()
        self._db.execute(
            "INSERT OR REPLACE INTO orders (id, created, modified, status, data) VALUES (?, ?, ?, ?, ?)",
            (o["id"], created, modified, o["status"], json.dumps(o, ensure_ascii=False)),
        )

    def _bump(self, o: dict) -> None:
        """Move date_modified forward (strictly later than before, even within one microsecond)."""
        old = datetime.fromisoformat(o["date_modified"])
        new = max(datetime.now(SATU_TZ), old + timedelta(microseconds=1))
        o["date_modified"] = satu_time(new)

    def modify_order(self, order_id: int, **changes: Any) -> dict:
        """Change fields of an order as a buyer or manager would on Satu; bumps date_modified."""
        with self._lock:
            o = self.order(order_id)
            if o is None:
                raise KeyError(order_id)
            o.update(changes)
            if "status" in changes and "status_name" not in changes:
                status = o["status"]
                o["status_name"] = STATUS_NAMES.get(status) or self.custom_statuses.get(status, status)
            self._bump(o)
            self._save_order(o)
            return o

    def orders(self) -> list[dict]:
        """Every order as stored, by id."""
        with self._lock:
            return [json.loads(r[0]) for r in self._db.execute("SELECT data FROM orders ORDER BY id")]

    def order(self, order_id: int) -> dict | None:
        """One stored order."""
        with self._lock:
            row = self._db.execute("SELECT data FROM orders WHERE id = ?", (int(order_id),)).fetchone()
        return json.loads(row[0]) if row else None

    # --- imports --------------------------------------------------------------------------------------

    def imports(self) -> list[dict]:
        """Every import's status record, oldest first."""
        with self._lock:
            return [json.loads(r[0]) for r in self._db.execute("SELECT data FROM imports ORDER BY started")]

    def _save_import(self, rec: dict) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO imports (id, started, data) VALUES (?, ?, ?)",
                (rec["id"], rec["started"], json.dumps(rec, ensure_ascii=False)),
            )

    def close(self) -> None:
        """Close the state file."""
        with self._lock:
            self._db.close()
