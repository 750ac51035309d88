"""The statements the order import runs, and the check that the SQL mapping delivers what it reads.

The columns each statement must deliver and the parameters it may use are declared once, in the
header of its built-in .sql file (see `pipeline.torgsoft.mapping`). `check_mapping` prepares every
order statement against the live database before any order is touched; one SettingsError lists every
problem (file and missing column).
"""

from __future__ import annotations

from typing import Any

from pipeline.torgsoft.db import rollback
from pipeline.torgsoft.mapping import Mapping

# Every query the importer runs.
ORDER_QUERIES: tuple[str, ...] = (
    "order_find",
    "order_lock",
    "order_next_id",
    "order_insert",
    "order_update",
    "order_items",
    "order_items_delete",
    "order_item_insert",
    "client_find_by_phone",
    "client_find_by_email",
    "client_next_id",
    "client_insert",
    "client_update",
    "client_key_insert",
    "good_find_by_id",
    "good_find_by_articul",
    "stock_lock",
    "stock_reserve",
    "stock_write_off",
    "reservation_next_id",
    "reservation_insert",
    "reservations_of_order",
    "reservation_set_state",
    "reservation_set_until",
    "invoice_find",
    "invoice_next_id",
    "invoice_insert",
    "invoice_item_insert",
)


def check_mapping(con: Any, mapping: Mapping) -> None:
    """Prepare every order query against the live database and check it against its header; one
    SettingsError lists every problem (file and column) before any order is touched."""
    try:
        mapping.check(con, ORDER_QUERIES)
    finally:
        rollback(con)
