"""Orders into the real embedded Torgsoft database: documents, reservations, invoices, updates, charsets."""

from __future__ import annotations

from decimal import Decimal

import pytest

from order_factory import satu_order, write_order
from pipeline.journal import Journal
from pipeline.orders import inbox
from pipeline.settings import Settings
from pipeline.state import State
from pipeline.torgsoft.connection import connect


def _settings(env: Settings, **orders) -> Settings:
    from dataclasses import replace

    # One worker: these tests drop several files at once and check the order they were applied in.
    return env.replace(orders=replace(env.orders, **{"settle_seconds": 0, "import_workers": 1, **orders}))


def _run(settings: Settings) -> inbox.InboxResult:
    return inbox.run(settings, journal=Journal.from_settings(settings), state=State.from_settings(settings))


def _rows(settings: Settings, sql: str, *args) -> list[tuple]:
    con = connect(settings)
    try:
        cur = con.cursor()
        cur.execute(sql, args)
        return cur.fetchall()
    finally:
        con.close()


def _stock(settings: Settings, good_id: int, center: int = 1) -> tuple[Decimal, Decimal]:
    (row,) = _rows(
        settings,
        "SELECT QTY, RESERVED_QTY FROM GOOD_STOCK WHERE GOOD_ID = ? AND ACCOUNTING_CENTER_ID = ?",
        good_id,
        center,
    )
    return Decimal(row[0]), Decimal(row[1])


def _set_stock(settings: Settings, good_id: int, qty: int, reserved: int = 0, center: int = 1) -> None:
    con = connect(settings)
    try:
        con.cursor().execute(
            "UPDATE GOOD_STOCK SET QTY = ?, RESERVED_QTY = ? WHERE GOOD_ID = ? AND ACCOUNTING_CENTER_ID = ?",
            (qty, reserved, good_id, center),
        )
        con.commit()
    finally:
        con.close()


def _order(settings: Settings, satu_id: int) -> dict:
    con = connect(settings)
    try:
        cur = con.cursor()
        cur.execute(
            "SELECT * FROM CUSTOMER_ORDER WHERE EXTERNAL_SOURCE = 'satu' AND EXTERNAL_ID = ?", (str(satu_id),)
        )
        cols = [d[0].lower() for d in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    assert len(rows) == 1, rows
    return rows[0]


def _reservations(settings: Settings, order_id: int) -> list[tuple]:
    return _rows(
        settings,
        "SELECT GOOD_ID, QTY, STATE, RESERVED_UNTIL FROM RESERVATION WHERE ORDER_ID = ? ORDER BY ID",
        order_id,
    )


def _counts(settings: Settings) -> dict[str, int]:
    return {
        t: _rows(settings, f"SELECT COUNT(*) FROM {t}")[0][0]
        for t in ("CUSTOMER_ORDER", "CUSTOMER_ORDER_ITEM", "CLIENT", "RESERVATION", "INVOICE", "INVOICE_ITEM")
    }


def test_new_order_creates_customer_order_lines_and_reservation(demo_env):
    s = _settings(demo_env, reserve_days=4)
    _set_stock(s, 5, 10, 1)
    write_order(
        s.orders.inbox,
        satu_order(
            501,
            lines=[{"external_id": "5", "quantity": 2, "price": "1 950 ₸"}],
            delivery_provider_data={"declaration_number": "KZ123456"},
        ),
    )
    result = _run(s)
    assert (result.imported, result.quarantined, result.invoices) == (1, 0, 0), result
    order = _order(s, 501)
    assert order["status"] == 0 and order["accounting_center_id"] == 1 and order["ttn"] == "KZ123456"
    assert str(order["reserve_until"]) == "2026-12-01"  # created 2026-11-27 + 4 days
    (client,) = _rows(s, "SELECT NAME, PHONE, EMAIL, ADDRESS FROM CLIENT WHERE ID = ?", order["client_id"])
    assert client == ("Сейтқали Айгерим", "77011234567", "aigerim@example.kz", "Алматы, ул. Абая 10")
    assert _rows(
        s, "SELECT LINE_NO, GOOD_ID, QTY, PRICE FROM CUSTOMER_ORDER_ITEM WHERE ORDER_ID = ?", order["id"]
    ) == [(1, 5, Decimal("2"), Decimal("1950"))]
    assert [(g, q, st) for g, q, st, _ in _reservations(s, order["id"])] == [(5, Decimal(2), 0)]
    assert _stock(s, 5) == (Decimal(10), Decimal(3))
    assert list((s.orders.inbox / "done").iterdir())


def test_duplicate_file_and_rerun_create_nothing_twice(demo_env):
    s = _settings(demo_env)
    order = satu_order(502, paid=True, lines=[{"external_id": "7", "quantity": 1}])
    write_order(s.orders.inbox, order)
    assert _run(s).imported == 1
    before = _counts(s)
    stock = _stock(s, 7)
    write_order(s.orders.inbox, order)  # the same file again
    write_order(s.orders.inbox, order, name="copy-of-502.json")
    result = _run(s)
    assert (result.imported, result.updated, result.unchanged) == (0, 0, 2)
    assert _counts(s) == before and _stock(s, 7) == stock
    names = sorted(p.name for p in (s.orders.inbox / "done").iterdir())
    assert len(names) == 3  # nothing overwritten, nothing deleted


def test_customer_matched_by_phone_then_email_and_updated(demo_env):
    s = _settings(demo_env)
    write_order(s.orders.inbox, satu_order(503, phone="8 701 123 45 67", email=""))
    write_order(
        s.orders.inbox, satu_order(504, phone="+7 701 123-45-67", email="new@example.kz", first="Айгуль")
    )
    write_order(s.orders.inbox, satu_order(505, phone="", email="NEW@example.kz", first="Айгуль"))
    write_order(s.orders.inbox, satu_order(506, phone="+7 777 000 00 00", email="other@example.kz"))
    assert _run(s).imported == 4
    ids = {i: _order(s, i)["client_id"] for i in (503, 504, 505, 506)}
    assert ids[503] == ids[504] == ids[505] != ids[506]
    assert _rows(s, "SELECT NAME, EMAIL FROM CLIENT WHERE ID = ?", ids[503]) == [
        ("Сейтқали Айгуль", "new@example.kz")
    ]
    assert _counts(s)["CLIENT"] == 2


def test_changed_order_updates_lines_and_reservations(demo_env):
    s = _settings(demo_env)
    _set_stock(s, 10, 20)
    _set_stock(s, 11, 20)
    write_order(s.orders.inbox, satu_order(507, lines=[{"external_id": "10", "quantity": 2}]))
    _run(s)
    write_order(
        s.orders.inbox,
        satu_order(
            507,
            modified="2026-11-27T11:00:00+05:00",
            status="received",
            lines=[{"external_id": "10", "quantity": 1}, {"external_id": "11", "quantity": 3}],
            delivery_provider_data={"declaration_number": "TTN-9"},
        ),
    )
    result = _run(s)
    assert (result.imported, result.updated) == (0, 1), result
    order = _order(s, 507)
    assert order["status"] == 1 and order["ttn"] == "TTN-9"
    assert _rows(
        s, "SELECT GOOD_ID, QTY FROM CUSTOMER_ORDER_ITEM WHERE ORDER_ID = ? ORDER BY LINE_NO", order["id"]
    ) == [(10, Decimal(1)), (11, Decimal(3))]
    states = [(g, q, st) for g, q, st, _ in _reservations(s, order["id"])]
    assert states == [(10, Decimal(2), 2), (10, Decimal(1), 0), (11, Decimal(3), 0)]
    assert _stock(s, 10) == (Decimal(20), Decimal(1)) and _stock(s, 11) == (Decimal(20), Decimal(3))
    # An older version arriving late never overwrites the newer one.
    write_order(
        s.orders.inbox, satu_order(507, lines=[{"external_id": "10", "quantity": 9}]), name="late.json"
    )
    assert _run(s).unchanged == 1
    assert _order(s, 507)["status"] == 1 and _stock(s, 10) == (Decimal(20), Decimal(1))


def test_cancelled_order_releases_its_reservations(demo_env):
    s = _settings(demo_env)
    _set_stock(s, 12, 5, 0)
    write_order(s.orders.inbox, satu_order(508, lines=[{"external_id": "12", "quantity": 4}]))
    _run(s)
    assert _stock(s, 12) == (Decimal(5), Decimal(4))
    write_order(
        s.orders.inbox,
        satu_order(
            508,
            status="canceled",
            modified="2026-11-27T12:00:00+05:00",
            lines=[{"external_id": "12", "quantity": 4}],
        ),
    )
    assert _run(s).updated == 1
    order = _order(s, 508)
    assert order["status"] == 4
    assert [st for _, _, st, _ in _reservations(s, order["id"])] == [2]
    assert _stock(s, 12) == (Decimal(5), Decimal(0))
    # Cancelled on first sight: imported as cancelled, nothing reserved.
    write_order(
        s.orders.inbox, satu_order(509, status="canceled", lines=[{"external_id": "12", "quantity": 1}])
    )
    _run(s)
    assert _order(s, 509)["status"] == 4 and _reservations(s, _order(s, 509)["id"]) == []


def test_paid_order_gets_an_invoice_that_consumes_the_reservation(demo_env):
    s = _settings(demo_env)
    _set_stock(s, 13, 6, 1)
    write_order(s.orders.inbox, satu_order(510, lines=[{"external_id": "13", "quantity": 2, "price": "500"}]))
    assert _run(s).invoices == 0
    assert _stock(s, 13) == (Decimal(6), Decimal(3))
    write_order(
        s.orders.inbox,
        satu_order(
            510,
            paid=True,
            modified="2026-11-27T13:00:00+05:00",
            lines=[{"external_id": "13", "quantity": 2, "price": "500"}],
        ),
    )
    result = _run(s)
    assert (result.updated, result.invoices) == (1, 1)
    order = _order(s, 510)
    assert order["is_paid"] == 1
    assert _rows(s, "SELECT TOTAL FROM INVOICE WHERE ORDER_ID = ?", order["id"]) == [(Decimal("1000"),)]
    assert _rows(
        s,
        "SELECT I.GOOD_ID, I.QTY, I.PRICE FROM INVOICE_ITEM I JOIN INVOICE V ON V.ID = I.INVOICE_ID "
        "WHERE V.ORDER_ID = ?",
        order["id"],
    ) == [(13, Decimal(2), Decimal(500))]
    assert [st for _, _, st, _ in _reservations(s, order["id"])] == [3]
    assert _stock(s, 13) == (Decimal(4), Decimal(1))
    # Paid again (a later edit) never makes a second invoice.
    write_order(
        s.orders.inbox,
        satu_order(
            510,
            paid=True,
            modified="2026-11-27T14:00:00+05:00",
            lines=[{"external_id": "13", "quantity": 2, "price": "500"}],
            client_notes="changed",
        ),
    )
    assert _run(s).invoices == 0
    assert _counts(s)["INVOICE"] == 1 and _stock(s, 13) == (Decimal(4), Decimal(1))


def test_auto_invoice_and_retail_price_kind(demo_env):
    s = _settings(demo_env, auto_invoice=True, price_kind="retail")
    (retail,) = _rows(
        s, "SELECT RETAIL_PRICE FROM GOOD_PRICE WHERE GOOD_ID = 14 AND ACCOUNTING_CENTER_ID = 0"
    )[0]
    write_order(s.orders.inbox, satu_order(511, lines=[{"external_id": "14", "quantity": 1, "price": "1"}]))
    assert _run(s).invoices == 1
    order = _order(s, 511)
    assert _rows(s, "SELECT PRICE FROM CUSTOMER_ORDER_ITEM WHERE ORDER_ID = ?", order["id"]) == [(retail,)]


def test_reserve_days_versus_customer_date(demo_env):
    s = _settings(demo_env, reserve_days=2)
    write_order(s.orders.inbox, satu_order(512, lines=[{"external_id": "15", "quantity": 1}]))
    write_order(
        s.orders.inbox,
        satu_order(513, lines=[{"external_id": "15", "quantity": 1}], delivery_date="2026-12-10"),
    )
    _run(s)
    assert str(_order(s, 512)["reserve_until"]) == "2026-11-29"
    assert str(_order(s, 513)["reserve_until"]) == "2026-12-10"
    assert {str(r[3]) for r in _reservations(s, _order(s, 513)["id"])} == {"2026-12-10"}


def test_shortage_is_reserved_as_awaiting_stock(demo_env):
    s = _settings(demo_env)
    _set_stock(s, 16, 3, 1)
    write_order(s.orders.inbox, satu_order(514, lines=[{"external_id": "16", "quantity": 5}]))
    _run(s)
    order = _order(s, 514)
    assert [(q, st) for _, q, st, _ in _reservations(s, order["id"])] == [(Decimal(2), 0), (Decimal(3), 1)]
    assert _stock(s, 16) == (Decimal(3), Decimal(3))
    events = [e.message for e in Journal.from_settings(s).search(grep="shortage")]
    assert any("514" in m and "3 of 5 awaiting" in m for m in events)


def test_unmatched_line_keeps_the_order_and_is_flagged(demo_env):
    s = _settings(demo_env)
    good, articul = _rows(
        s, "SELECT FIRST 1 GOOD_ID, ARTICUL FROM GOOD WHERE ARTICUL IS NOT NULL AND GOOD_ID > 20"
    )[0]
    write_order(
        s.orders.inbox,
        satu_order(
            515,
            lines=[
                {"external_id": "", "sku": articul, "quantity": 1},  # matched by article
                {"external_id": "999999", "sku": "NO-SUCH", "name": "Призрак", "quantity": 2},
            ],
        ),
    )
    result = _run(s)
    assert (result.imported, result.unmatched_lines, result.quarantined) == (1, 1, 0)
    order = _order(s, 515)
    assert _rows(
        s, "SELECT LINE_NO, GOOD_ID FROM CUSTOMER_ORDER_ITEM WHERE ORDER_ID = ? ORDER BY LINE_NO", order["id"]
    ) == [(1, good), (2, None)]
    assert "line 2 not matched" in order["comment_text"] and "NO-SUCH" in order["comment_text"]
    events = [e for e in Journal.from_settings(s).search(order_id=515, level="warning")]
    assert any("line 2 not matched" in e.message and "Призрак" in e.message for e in events)


def _win1251_client_name(settings: Settings) -> None:
    """Make CLIENT.NAME a WIN1251 column, as in an old Torgsoft database."""
    con = connect(settings)
    try:
        cur = con.cursor()
        cur.execute("ALTER TABLE CLIENT DROP NAME")
        con.commit()
        cur.execute("ALTER TABLE CLIENT ADD NAME VARCHAR(200) CHARACTER SET WIN1251")
        con.commit()
    finally:
        con.close()


def test_kazakh_text_in_a_win1251_column_is_a_clear_error(demo_env):
    s = _settings(demo_env)
    _win1251_client_name(s)
    write_order(s.orders.inbox, satu_order(516, last="Қасымов", phone="+7 700 111 22 33"))
    write_order(s.orders.inbox, satu_order(517, last="Иванов", phone="+7 700 111 22 44"))
    result = _run(s)
    assert (result.imported, result.quarantined) == (1, 1)
    reason = (s.orders.inbox / "quarantine").glob("*516*.reason.txt").__next__().read_text(encoding="utf-8")
    assert "order 516" in reason and "customer name" in reason and "transliterate_unsupported" in reason
    assert _rows(s, "SELECT COUNT(*) FROM CUSTOMER_ORDER WHERE EXTERNAL_ID = '516'") == [(0,)]


def test_kazakh_text_is_transliterated_when_asked(demo_env):
    s = _settings(demo_env, transliterate_unsupported=True)
    _win1251_client_name(s)
    write_order(s.orders.inbox, satu_order(518, last="Қасымова", first="Әйгерім"))
    assert _run(s).imported == 1
    assert _rows(s, "SELECT NAME FROM CLIENT WHERE ID = ?", _order(s, 518)["client_id"]) == [
        ("Касымова Айгерим",)
    ]


def test_connection_charset_win1251(demo_env):
    from dataclasses import replace

    s = _settings(demo_env)
    s = s.replace(torgsoft=replace(s.torgsoft, charset="WIN1251"))
    write_order(s.orders.inbox, satu_order(519, last="Құлжанов"))
    result = _run(s)
    assert result.quarantined == 1
    reason = next((s.orders.inbox / "quarantine").glob("*.reason.txt")).read_text(encoding="utf-8")
    assert "order 519" in reason and "customer name" in reason


@pytest.mark.parametrize("kind", ["wholesale"])
def test_wholesale_price_kind_falls_back_to_retail(demo_env, kind):
    s = _settings(demo_env, price_kind=kind)
    rows = _rows(
        s,
        "SELECT FIRST 1 GOOD_ID, RETAIL_PRICE FROM GOOD_PRICE WHERE WHOLESALE_PRICE IS NULL "
        "AND ACCOUNTING_CENTER_ID = 0 AND GOOD_ID NOT IN (SELECT GOOD_ID FROM GOOD_PRICE "
        "WHERE ACCOUNTING_CENTER_ID = 1)",
    )
    good, retail = rows[0]
    write_order(
        s.orders.inbox, satu_order(520, lines=[{"external_id": str(good), "quantity": 1, "price": "3"}])
    )
    _run(s)
    assert _rows(s, "SELECT PRICE FROM CUSTOMER_ORDER_ITEM WHERE ORDER_ID = ?", _order(s, 520)["id"]) == [
        (retail,)
    ]


def test_a_broken_mapping_is_a_settings_error_before_any_file_is_touched(demo_env, tmp_path):
    from dataclasses import replace

    from pipeline.errors import SettingsError

    mapping = tmp_path / "mapping"
    mapping.mkdir()
    (mapping / "order_find.sql").write_text(
        "SELECT o.ID AS id FROM CUSTOMER_ORDER o "
        "WHERE o.EXTERNAL_SOURCE = :source AND o.EXTERNAL_ID = :external_id",
        encoding="utf-8",
    )
    (mapping / "client_insert.sql").write_text(
        "INSERT INTO NO_SUCH_TABLE (ID) VALUES (:client_id)", encoding="utf-8"
    )
    s = _settings(demo_env)
    s = s.replace(torgsoft=replace(s.torgsoft, mapping_dir=mapping))
    path = write_order(s.orders.inbox, satu_order(530))
    with pytest.raises(SettingsError) as info:
        _run(s)
    text = str(info.value)
    assert "client_insert.sql" in text and "NO_SUCH_TABLE" in text.upper()
    assert "order_find.sql" in text and "external_hash" in text  # every problem at once
    assert path.exists()


def test_an_order_the_database_refuses_is_quarantined_and_the_batch_goes_on(demo_env):
    s = _settings(demo_env)
    write_order(
        s.orders.inbox, satu_order(531, lines=[{"external_id": "3", "quantity": "100000000000000000"}])
    )
    write_order(s.orders.inbox, satu_order(532, lines=[{"external_id": "3", "quantity": 1}]))
    result = _run(s)
    assert (result.imported, result.quarantined, result.failed) == (1, 1, 0)
    reason = next((s.orders.inbox / "quarantine").glob("*531*.reason.txt")).read_text(encoding="utf-8")
    assert "database refused" in reason and "order 531" in reason
    assert _rows(s, "SELECT COUNT(*) FROM CUSTOMER_ORDER WHERE EXTERNAL_ID = '531'") == [(0,)]


def test_reopened_order_is_reserved_again_and_invoiced_lines_are_kept(demo_env):
    s = _settings(demo_env)
    _set_stock(s, 17, 10)
    line = [{"external_id": "17", "quantity": 2}]
    write_order(s.orders.inbox, satu_order(533, lines=line))
    _run(s)
    write_order(
        s.orders.inbox, satu_order(533, lines=line, status="canceled", modified="2026-11-27T11:00:00+05:00")
    )
    _run(s)
    assert _stock(s, 17) == (Decimal(10), Decimal(0))
    write_order(
        s.orders.inbox, satu_order(533, lines=line, status="received", modified="2026-11-27T12:00:00+05:00")
    )
    _run(s)
    order = _order(s, 533)
    assert order["status"] == 1 and _stock(s, 17) == (Decimal(10), Decimal(2))
    assert [st for _, _, st, _ in _reservations(s, order["id"])] == [2, 0]
    write_order(s.orders.inbox, satu_order(533, lines=line, paid=True, modified="2026-11-27T13:00:00+05:00"))
    assert _run(s).invoices == 1
    assert _stock(s, 17) == (Decimal(8), Decimal(0))
    # Lines edited on Satu after the invoice: the invoice and lines stay, a person is told.
    write_order(
        s.orders.inbox,
        satu_order(
            533, lines=[{"external_id": "17", "quantity": 5}], paid=True, modified="2026-11-27T14:00:00+05:00"
        ),
    )
    assert _run(s).updated == 1
    assert _rows(s, "SELECT QTY FROM CUSTOMER_ORDER_ITEM WHERE ORDER_ID = ?", order["id"]) == [(Decimal(2),)]
    assert _stock(s, 17) == (Decimal(8), Decimal(0))
    assert any("after the invoice" in e.message for e in Journal.from_settings(s).search(order_id=533))


def test_satus_service_notes_go_into_the_comment_and_warnings_into_the_journal(demo_env):
    s = _settings(demo_env)
    write_order(
        s.orders.inbox,
        satu_order(
            512,
            lines=[{"external_id": "5", "quantity": 1, "price": "150 USD"}],
            price="150 USD",
            full_price="150 USD",
            price_with_special_offer="135 USD",
            special_offer_promocode="ZIMA10",
            special_offer_discount="15 USD",
            delivery_recipient={"first_name": "Дана", "last_name": "Ким", "phone": "+77015550199"},
            dont_call_customer_back=True,
        ),
    )
    assert _run(s).imported == 1
    comment = _order(s, 512)["comment_text"]
    assert comment.splitlines()[0] == "Позвоните заранее"  # the buyer's own note first
    assert "Промокод: ZIMA10, скидка 15" in comment
    assert "Получатель: Ким Дана, 77015550199" in comment  # the person the courier calls
    assert "Покупатель просит не перезванивать" in comment
    journal = Journal.from_settings(s)
    warned = [e.message for e in journal.search(stage="orders", level="warning", order_id=512)]
    assert any("USD" in m and "not the shop's KZT" in m for m in warned), warned
