"""Issue 12 (orders): faults that lost or duplicated data — each test failed before its fix."""

from __future__ import annotations

from dataclasses import replace

import pytest

from order_factory import satu_order, write_order
from pipeline.journal import Journal
from pipeline.orders import inbox
from pipeline.settings import Settings
from pipeline.state import State
from pipeline.torgsoft.connection import connect


def _settings(env: Settings, **orders) -> Settings:
    return env.replace(orders=replace(env.orders, **{"settle_seconds": 0, "import_workers": 1, **orders}))


def _run(settings: Settings) -> inbox.InboxResult:
    return inbox.run(settings, journal=Journal.from_settings(settings), state=State.from_settings(settings))


def _scalar(settings: Settings, sql: str, *args):
    con = connect(settings)
    try:
        cur = con.cursor()
        cur.execute(sql, args)
        return cur.fetchone()[0]
    finally:
        con.close()


@pytest.mark.xfail(strict=True, reason="issue 12: the update path inserts a new client")
def test_a_customer_known_only_by_name_is_not_duplicated_by_updates(demo_env):
    s = _settings(demo_env)
    clients = _scalar(s, "SELECT COUNT(*) FROM CLIENT")
    for version in range(3):
        write_order(
            s.orders.inbox,
            satu_order(
                811,
                phone="",
                email="",
                modified=f"2026-11-27T10:0{version}:00.000000+05:00",
                lines=[{"external_id": "5", "quantity": 1 + version}],
            ),
        )
        result = _run(s)
        assert result.imported + result.updated == 1, result
    assert _scalar(s, "SELECT COUNT(*) FROM CLIENT") == clients + 1
    client_id = _scalar(s, "SELECT CLIENT_ID FROM CUSTOMER_ORDER WHERE EXTERNAL_ID = '811'")
    assert _scalar(s, "SELECT NAME FROM CLIENT WHERE ID = ?", client_id) == "Сейтқали Айгерим"
