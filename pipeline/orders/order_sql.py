"""The statements the order import runs, and the check that the SQL mapping delivers what it reads.

`check_mapping` prepares every order statement against the live database before any order is touched;
one SettingsError lists every problem (file and missing column).
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import Problem, SettingsError
from pipeline.torgsoft.mapping import Mapping

# Every query the importer runs, with the result columns it reads (writes have none).
QUERY_COLUMNS: dict[str, tuple[str, ...]] = {
    "order_find": ("id", "status", "is_paid", "client_id", "external_modified", "external_hash"),
    "order_lock": ("id",),
    "order_next_id": ("id",),
    "order_insert": (),
    "order_update": (),
    "order_items": ("line_no", "good_id", "qty", "price"),
    "order_items_delete": (),
    "order_item_insert": (),
    "client_find_by_phone": ("id", "name", "phone", "email", "city", "address"),
    "client_find_by_email": ("id", "name", "phone", "email", "city", "address"),
    "client_next_id": ("id",),
    "client_insert": (),
    "client_update": (),
    "client_key_insert": (),
    "good_find_by_id": ("good_id", "retail_price", "wholesale_price"),
    "good_find_by_articul": ("good_id", "retail_price", "wholesale_price"),
    "stock_lock": ("qty", "reserved"),
    "stock_reserve": (),
    "stock_write_off": (),
    "reservation_next_id": ("id",),
    "reservation_insert": (),
    "reservations_of_order": ("id", "good_id", "center_id", "qty", "state"),
    "reservation_set_state": (),
    "reservation_set_until": (),
    "invoice_find": ("id",),
    "invoice_next_id": ("id",),
    "invoice_insert": (),
    "invoice_item_insert": (),
}


def check_mapping(con: Any, mapping: Mapping) -> None:
    """Prepare every order query against the live database and check the aliases it must deliver;
    one SettingsError lists every problem (file and column) before any order is touched."""
    problems: list[Problem] = []
    try:
        mapping.check(con, list(QUERY_COLUMNS))  # files that are missing or do not prepare
    except SettingsError as exc:
        problems += exc.problems
    broken = {p.key for p in problems}
    cur = con.cursor()
    for name, columns in QUERY_COLUMNS.items():
        if not columns or str(mapping.path(name)) in broken or not mapping.path(name).exists():
            continue
        q = mapping.query(name)
        try:
            have = {d[0].lower() for d in cur.prep(q.sql).description or ()}
        except Exception:  # already reported by mapping.check
            continue
        problems += [
            Problem(str(q.path), f"result column {c!r} is missing", f"alias a column AS {c}")
            for c in columns
            if c not in have
        ]
    con.rollback()
    if problems:
        raise SettingsError(problems)
