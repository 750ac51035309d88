"""The sandbox's API endpoints: each takes the decoded request and returns (HTTP status, JSON reply)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import unquote

from pipeline.devtools.sandbox.feed_import import FeedImporter
from pipeline.devtools.sandbox.orders_gen import DELIVERY_OPTIONS, PAYMENT_OPTIONS
from pipeline.devtools.sandbox.vocab import (
    _VISIBLE,
    CANCELLATION_REASONS,
    DEFAULT_STATUS_IDS,
    MAX_LIMIT,
    PRESENCES,
    REASONS_WITH_TEXT,
    SATU_TZ,
    SETTABLE_ORDER_STATUSES,
    STATUS_NAMES,
    _decimal,
    satu_time,
)
from pipeline.satu.api import parse_query_date


def _parse_param_date(text: str, zone: tzinfo) -> float | None:
    """A strict query date (naive, in `zone`) as epoch seconds; None when not in the exact form."""
    moment = parse_query_date(text, zone)
    return None if moment is None else moment.timestamp()


class ApiHandlers(FeedImporter):
    """Routes and answers the seller API calls and the `/_sandbox/` control calls."""

    def handle_api(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        """Route one authenticated API call; returns (HTTP status, JSON reply)."""
        routes: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("GET", r"/orders/list", self._orders_list),
            ("GET", r"/orders/(\d+)", self._order_get),
            ("POST", r"/orders/set_status", self._set_status),
            ("POST", r"/delivery/save_declaration_id", self._save_declaration),
            ("GET", r"/products/list", self._products_list),
            ("GET", r"/products/by_external_id/(.+)", self._product_by_external_id),
            ("GET", r"/products/(\d+)", self._product_get),
            ("POST", r"/products/edit_by_external_id", self._edit_by_external_id),
            ("POST", r"/products/import_url", self._import_url),
            ("GET", r"/products/import/status/([^/]+)", self._import_status),
            ("GET", r"/delivery_options/list", self._delivery_options),
            ("GET", r"/payment_options/list", self._payment_options),
            ("GET", r"/order_status_options/list", self._order_status_options),
        ]
        for m, pattern, fn in routes:
            match = re.fullmatch(pattern, path)
            if match and m == method:
                with self._lock:
                    key = f"{method} {pattern}"
                    self.calls[key] = self.calls.get(key, 0) + 1
                return fn(query, body, *match.groups())
        return 404, {"error": {"message": f"no such endpoint: {method} {path}"}}

    def _orders_list(self, q: dict[str, str], _body: Any) -> tuple[int, Any]:
        where: list[str] = []
        args: list[Any] = []
        for param, column, op in (
            ("date_from", "created", ">="),
            ("date_to", "created", "<="),
            ("last_modified_from", "modified", ">="),
            ("last_modified_to", "modified", "<="),
        ):
            if param in q:
                ts = _parse_param_date(q[param], self.query_timezone)
                if ts is None:
                    return 200, {"orders": []}  # the quirk: a Z or milliseconds silently match nothing
                where.append(f"{column} {op} ?")
                args.append(ts)
        if q.get("status"):
            where.append("status = ?")
            args.append(q["status"])
        if q.get("last_id"):
            if not q["last_id"].isdigit():
                return 400, {"error": {"message": "last_id: invalid integer"}}
            where.append("id <= ?")
            args.append(int(q["last_id"]))
        limit = self._limit(q)
        if limit is None:
            return 400, {"error": {"message": "limit: invalid integer"}}
        sql = "SELECT data FROM orders" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, [*args, limit]).fetchall()
        return 200, {"orders": [json.loads(r[0]) for r in rows]}

    def _limit(self, q: dict[str, str]) -> int | None:
        raw = q.get("limit") or str(self.max_limit)
        if not raw.isdigit():
            return None
        return max(1, min(int(raw), self.max_limit))

    def _order_get(self, _q: dict, _body: Any, oid: str) -> tuple[int, Any]:
        o = self.order(int(oid))
        if o is None:
            return 404, {"error": "Order not found"}
        return 200, {"order": o}

    def _set_status(self, _q: dict, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
            return 400, {"error": {"message": "ids: expected a list of order ids"}}
        status = body.get("status")
        if status == "pending":
            return 400, {"error": {"message": "status: 'pending' cannot be set"}}
        if status not in SETTABLE_ORDER_STATUSES and status != "draft" and status not in self.custom_statuses:
            # Live: an unknown value is refused with HTTP 200 and an error naming status_str.
            return 200, {"error": f"status_str: This status value is not allowed ({status!r})"}
        reason, text = body.get("cancellation_reason"), body.get("cancellation_text")
        if status == "canceled":
            if reason not in CANCELLATION_REASONS:
                return 400, {
                    "error": {
                        "message": f"cancellation_reason: {reason!r} is not one of "
                        f"{', '.join(CANCELLATION_REASONS)}"
                    }
                }
            if reason in REASONS_WITH_TEXT and not (isinstance(text, str) and text.strip()):
                return 400, {"error": {"message": f"cancellation_text: required for reason {reason!r}"}}
        if len(body["ids"]) > MAX_LIMIT:
            return 400, {"error": {"message": f"ids: at most {MAX_LIMIT} per call"}}
        done = []
        with self._lock:
            for oid in body["ids"]:
                o = self.order(oid) if isinstance(oid, int) or str(oid).isdigit() else None
                if o is None or o["status"] == status:
                    continue  # Satu: no error, no processed id = already at this status
                o["status"] = status
                o["status_name"] = STATUS_NAMES.get(status) or self.custom_statuses.get(status, status)
                if status == "canceled":
                    o["cancellation"] = {
                        "title": text or CANCELLATION_REASONS[str(reason)],
                        "initiator": "seller",
                    }
                    self.cancellation_reasons[o["id"]] = str(reason)
                if status == "paid":
                    o["payment_data"] = {"type": "evopay", **(o.get("payment_data") or {}), "status": "paid"}
                self._bump(o)
                self._save_order(o)
                done.append(o["id"])
        return 200, {"processed_ids": done}

    def _save_declaration(self, _q: dict, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, {"error": {"message": "expected an object"}}
        if not body.get("declaration_id") or not body.get("delivery_type"):
            return 400, {"error": {"message": "declaration_id and delivery_type are required"}}
        with self._lock:
            oid = body.get("order_id")
            o = self.order(int(str(oid))) if str(oid).isdigit() else None
            if o is None:
                return 200, {"error": "Order not found"}  # the 200-with-error shape
            pd = dict(o.get("delivery_provider_data") or {})
            pd.update(provider=body["delivery_type"], declaration_number=str(body["declaration_id"]))
            o["delivery_provider_data"] = pd
            self._bump(o)
            self._save_order(o)
        return 200, {"status": "success"}

    def _products_list(self, q: dict[str, str], _body: Any) -> tuple[int, Any]:
        where, args = [_VISIBLE], [time.time()]
        if q.get("last_id"):
            if not q["last_id"].isdigit():
                return 400, {"error": {"message": "last_id: invalid integer"}}
            where.append("id <= ?")
            args.append(int(q["last_id"]))
        if q.get("group_id"):
            where.append("group_id = ?")
            args.append(int(q["group_id"]) if q["group_id"].isdigit() else -1)
        limit = self._limit(q)
        if limit is None:
            return 400, {"error": {"message": "limit: invalid integer"}}
        sql = "SELECT data FROM products" + (" WHERE " + " AND ".join(where) if where else "")
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
        return 200, {"products": [self._product_view(json.loads(r[0])) for r in rows]}

    def _product_get(self, _q: dict, _body: Any, pid: str) -> tuple[int, Any]:
        with self._lock:
            row = self._db.execute(
                f"SELECT data FROM products WHERE id = ? AND {_VISIBLE}", (int(pid), time.time())
            ).fetchone()
        if row is None:
            return 404, {"error": "Product not found"}
        return 200, {"product": self._product_view(json.loads(row[0]))}

    def _product_by_external_id(self, _q: dict, _body: Any, ext: str) -> tuple[int, Any]:
        p = self.product(unquote(ext))
        if p is None or p.get("_visible_after", 0) > time.time():
            return 404, {"error": "Product not found"}
        return 200, {"product": self._product_view(p)}

    def _edit_by_external_id(self, _q: dict, body: Any) -> tuple[int, Any]:
        if not isinstance(body, list):
            return 200, {"error": "expected a list"}
        if len(body) > MAX_LIMIT:
            return 400, {"error": {"message": f"at most {MAX_LIMIT} products per call"}}
        processed: list[str] = []
        errors: dict[str, Any] = {}
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for item in body:
                    ext = (
                        str(item.get("id"))
                        if isinstance(item, dict) and item.get("id") not in (None, "")
                        else None
                    )
                    if ext is None:
                        errors[str(len(errors))] = {"id": "required"}
                        continue
                    problems = self._edit_problems(item)
                    row = self._db.execute(
                        f"SELECT data FROM products WHERE external_id = ? AND {_VISIBLE}", (ext, time.time())
                    ).fetchone()
                    if row is None:
                        problems["id"] = f"product with external_id {ext!r} not found"
                    if problems:
                        errors[ext] = problems
                        continue
                    data = json.loads(row[0])
                    for k in (
                        "presence",
                        "presence_sure",
                        "status",
                        "quantity_in_stock",
                        "name",
                        "keywords",
                        "description",
                    ):
                        if k in item:
                            data[k] = item[k]
                    if "price" in item:
                        data["price"] = str(_decimal(item["price"]))
                    if "prices" in item:
                        data["prices"] = [
                            {
                                "price": str(_decimal(p["price"])),
                                "minimum_order_quantity": p.get("minimum_order_quantity"),
                            }
                            for p in item["prices"]
                        ]
                    data["date_modified"] = satu_time(datetime.now(SATU_TZ))
                    self._save_product(data)
                    processed.append(ext)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return 200, {"processed_ids": processed, "errors": errors}

    @staticmethod
    def _edit_problems(item: dict) -> dict[str, str]:
        problems = {}
        for fixed in ("sku", "external_id"):
            if fixed in item:
                problems[fixed] = f"{fixed} can be changed only by an import"
        if "presence" in item and item["presence"] not in PRESENCES:
            problems["presence"] = f"must be one of {', '.join(PRESENCES)}"
        if "status" in item and item["status"] not in ("on_display", "not_on_display", "draft", "deleted"):
            problems["status"] = "must be on_display or not_on_display"
        if "price" in item:
            d = _decimal(item["price"])
            if d is None or d < 0 or isinstance(item["price"], str) and "₸" in item["price"]:
                problems["price"] = "must be a non-negative number"
        if "quantity_in_stock" in item:
            q = item["quantity_in_stock"]
            if q is not None and (isinstance(q, bool) or not isinstance(q, int) or q < 0):
                problems["quantity_in_stock"] = "must be a non-negative integer or null"
        if "prices" in item:
            ok = isinstance(item["prices"], list) and all(
                isinstance(p, dict) and _decimal(p.get("price")) is not None for p in item["prices"]
            )
            if not ok:
                problems["prices"] = "must be a list of {price, minimum_order_quantity}"
            elif any(_decimal(p.get("minimum_order_quantity")) is None for p in item["prices"]):
                # Satu (production notes): a wholesale step without its quantity is refused.
                problems["prices"] = "minimum_order_quantity is required for every price"
        return problems

    def _import_url(self, _q: dict, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            return 400, {"error": {"message": "url: required"}}
        mark = body.get("mark_missing_product_as", "none")
        if mark not in ("none", "not_available", "not_on_display", "deleted"):
            return 400, {"error": {"message": "mark_missing_product_as: invalid value"}}
        opts = {
            k: body[k]
            for k in ("force_update", "only_available", "mark_missing_product_as", "updated_fields")
            if k in body
        }
        return self.start_import(body["url"], opts)

    def _import_status(self, _q: dict, _body: Any, import_id: str) -> tuple[int, Any]:
        with self._lock:
            row = self._db.execute("SELECT data FROM imports WHERE id = ?", (import_id,)).fetchone()
        if row is None:
            return 404, {"error": "Import not found"}
        rec = json.loads(row[0])
        reply = {
            k: rec.get(k, 0)
            for k in (
                "status",
                "total",
                "created",
                "updated",
                "not_changed",
                "not_in_file",
                "with_errors_count",
                "errors",
            )
        }
        if rec["status"] == "PROCESSING":
            # The live sequence: SUCCESS with all counters 0 first, later PARTIAL with zeros, and only
            # then the real result. A client that stops at the first SUCCESS reads nothing.
            early = time.time() - rec["started"] < self.import_delay / 2
            reply = {**dict.fromkeys(reply, 0), "errors": [], "status": "SUCCESS" if early else "PARTIAL"}
        if re.fullmatch(r"[0-9a-f]+", import_id) and int(import_id[-1], 16) % 2:
            reply["status"] = reply["status"].capitalize()  # the quirk: the case of the status varies
        return 200, reply

    # --- shop options ---------------------------------------------------------------------------------
    # The endpoints are documented (an MCP client lists them); the reply shapes are assumed: a list
    # under the endpoint's name, items with `id` and `name` (statuses also `status` and `type`).

    def _delivery_options(self, _q: dict, _body: Any) -> tuple[int, Any]:
        return 200, {"delivery_options": [dict(d) for d, _carrier in DELIVERY_OPTIONS]}

    def _payment_options(self, _q: dict, _body: Any) -> tuple[int, Any]:
        return 200, {"payment_options": [dict(p) for p in PAYMENT_OPTIONS]}

    def _order_status_options(self, _q: dict, _body: Any) -> tuple[int, Any]:
        default = [
            {"id": code, "status": status, "name": STATUS_NAMES[status], "type": "default"}
            for status, code in DEFAULT_STATUS_IDS.items()
        ]
        custom = [
            {"id": int(status.split("-", 1)[1]), "status": status, "name": name, "type": "custom"}
            for status, name in self.custom_statuses.items()
        ]
        return 200, {"order_status_options": default + custom}

    # --- control endpoints ----------------------------------------------------------------------------

    def handle_control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """`/_sandbox/...`: fault injection, order creation/modification, a state summary."""
        try:
            if method == "POST" and path == "/fail":
                self.fail_next(
                    int(body.get("count", 1)),
                    str(body.get("mode", "500")),
                    retry_after=body.get("retry_after", 0),
                    delay=float(body.get("delay", 3.0)),
                    path=body.get("path"),
                )
                return 200, {"pending_faults": self.pending_faults()}
            if method == "POST" and path == "/orders":
                made = self.create_orders(int(body.get("count", 1)), seed=int(body.get("seed", 1)))
                return 200, {"created": [o["id"] for o in made]}
            m = re.fullmatch(r"/orders/(\d+)", path)
            if method == "POST" and m:
                return 200, {"order": self.modify_order(int(m.group(1)), **body)}
            if method == "POST" and path == "/products":
                return 200, {"count": self.put_products(body if isinstance(body, list) else [body])}
            if method == "GET" and path == "/state":
                with self._lock:
                    n_products = self._db.execute("SELECT COUNT(*) FROM products").fetchone()[0]
                    n_orders = self._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
                return 200, {
                    "products": n_products,
                    "orders": n_orders,
                    "imports": self.imports()[-5:],
                    "pending_faults": self.pending_faults(),
                    "calls": dict(self.calls),
                }
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            return 400, {"error": {"message": f"{type(exc).__name__}: {exc}"}}
        return 404, {"error": {"message": f"no such control endpoint: {method} {path}"}}
