"""The Satu client against the sandbox over real HTTP on 127.0.0.1: every error shape, retries, paging."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from conftest import make_settings
from pipeline.devtools.sandbox import SandboxServer
from pipeline.errors import RetryableError
from pipeline.satu.api import format_date, import_finished, parse_date, parse_price, query_zone
from pipeline.satu.client import SatuApiError, SatuAuthError, SatuClient

TOKEN = "sekret-token-Zq81xx-never-print-me"


@pytest.fixture()
def sandbox(tmp_path: Path):
    server = SandboxServer(tmp_path / "sandbox", token=TOKEN, readonly_token="read-only-token").start()
    yield server
    server.stop()


@pytest.fixture()
def client(sandbox: SandboxServer):
    c = SatuClient(sandbox.url, sandbox.token, timeout=2, max_retries=4, backoff_base=0.01)
    yield c
    c.close()


def _raw(sandbox: SandboxServer, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(
        method, sandbox.url + path, headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=5, **kw
    )


# --- pure helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 950 ₸", Decimal("1950")),
        ("1\u00a0950\u00a0₸", Decimal("1950")),
        ("650,50 ₸", Decimal("650.50")),
        ("1\u202f234\u00a0567,05 ₸", Decimal("1234567.05")),
        ("12990", Decimal("12990")),
        (650, Decimal("650")),
        (650.5, Decimal("650.5")),
        ("1,950.25", Decimal("1950.25")),
        ("1.950,25 ₸", Decimal("1950.25")),
        ("0 ₸", Decimal("0")),
        ("", None),
        (None, None),
        ("15 000 тг", Decimal("15000")),
    ],
)
def test_parse_price(text, expected):
    assert parse_price(text) == expected


def test_parse_price_refuses_garbage():
    with pytest.raises(ValueError):
        parse_price("договорная")


def test_format_date_is_exactly_the_accepted_form():
    assert format_date("2026-11-27T10:00:00") == "2026-11-27T10:00:00"
    # issue 13: Satu reads query dates as UTC, so UTC is the default zone
    assert format_date("2026-11-27T05:00:00Z") == "2026-11-27T05:00:00"
    assert format_date("2026-11-27T10:00:00.123+05:00") == "2026-11-27T05:00:00"
    assert format_date(datetime(2026, 11, 27, 10, 0, 0, 999999)) == "2026-11-27T10:00:00"
    assert format_date(datetime(2026, 11, 27, 5, 0, tzinfo=UTC)) == "2026-11-27T05:00:00"
    # a shop whose first live run shows local time sets [satu] query_timezone = "+05:00"
    plus5 = query_zone("+05:00")
    assert format_date("2026-11-27T05:00:00Z", plus5) == "2026-11-27T10:00:00"
    assert format_date(datetime(2026, 11, 27, 5, 0, tzinfo=UTC), plus5) == "2026-11-27T10:00:00"
    assert format_date(datetime(2026, 11, 27, 5, 0, tzinfo=UTC), query_zone("Asia/Almaty")) in (
        "2026-11-27T10:00:00",
        "2026-11-27T11:00:00",
    )
    assert parse_date("2026-11-27T12:34:56.588791+05:00") == datetime(
        2026, 11, 27, 7, 34, 56, 588791, tzinfo=UTC
    )


def test_import_status_case_varies():
    assert import_finished({"status": "success", "total": 3, "created": 3}) == "SUCCESS"
    assert import_finished({"status": "Partial", "total": 2, "with_errors_count": 1}) == "PARTIAL"
    assert import_finished({"status": "FATAL"}) == "FATAL"
    assert import_finished({"status": "PROCESSING"}) is None
    assert import_finished({}) is None


def test_import_status_sequence_as_satu_plays_it():
    """Issue 13: SUCCESS with all counters 0 comes first and is not final; PARTIAL with zeros neither;
    FAIL (Satu) and FATAL (docs) are final at once, in any case."""
    zeros = dict.fromkeys(("total", "created", "updated", "not_changed", "with_errors_count"), 0)
    assert import_finished({"status": "SUCCESS", **zeros}) is None
    assert import_finished({"status": "success", **zeros}) is None
    assert import_finished({"status": "PARTIAL", **zeros}) is None
    assert import_finished({"status": "PARTIAL", **zeros, "not_in_file": 4}) == "PARTIAL"
    assert import_finished({"status": "SUCCESS", **zeros, "not_in_fle": 1}) == "SUCCESS"
    assert import_finished({"status": "SUCCESS", **zeros, "updated": "7"}) == "SUCCESS"
    errors = [{"download_images": {"code": 2004, "extra": {"status_code": 404}}}]
    assert import_finished({"status": "PARTIAL", **zeros, "errors": errors}) == "PARTIAL"
    assert import_finished({"status": "fail"}) == "FAIL"
    assert import_finished({"status": "Fatal", **zeros}) == "FATAL"


def test_from_settings_reads_url_token_timeout_retries(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MY_SATU_TOKEN", TOKEN)
    s = make_settings(
        tmp_path,
        satu={
            "base_url": "http://127.0.0.1:1/api/v1",
            "token_env": "MY_SATU_TOKEN",
            "timeout": 7,
            "max_retries": 2,
        },
    )
    with SatuClient.from_settings(s) as c:
        assert c.base_url == "http://127.0.0.1:1/api/v1"
        assert c.max_retries == 2
        assert c._http.timeout.read == 7
        assert TOKEN not in repr(c)


# --- error shapes -------------------------------------------------------------------------------------


def test_html_401_is_a_clear_auth_error(sandbox: SandboxServer):
    r = httpx.get(sandbox.url + "/orders/list", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
    with SatuClient(sandbox.url, "wrong-token", backoff_base=0.01) as c, pytest.raises(SatuAuthError) as exc:
        list(c.iter_orders())
    assert "token expired or lacks rights" in str(exc.value)


def test_html_403_for_a_token_without_write_rights(sandbox: SandboxServer):
    sandbox.put_products([{"external_id": "1", "price": 10}])
    with SatuClient(sandbox.url, "read-only-token") as c:
        assert c.product_by_external_id("1")["external_id"] == "1"
        with pytest.raises(SatuAuthError, match="lacks rights"):
            c.edit_products([{"id": "1", "quantity_in_stock": 1}])


def test_200_with_error_is_an_api_error(sandbox: SandboxServer, client: SatuClient):
    r = _raw(sandbox, "POST", "/products/edit_by_external_id", json={"id": "1"})  # not a bare array
    assert r.status_code == 200 and r.json() == {"error": "expected a list"}
    with pytest.raises(SatuApiError, match="Order not found") as exc:
        client.save_declaration(424242, "1234567890123", "kazpost")
    assert exc.value.status == 200
    sandbox.fail_next(1, "200-error")
    with pytest.raises(SatuApiError, match="Попробуйте позже"):
        list(client.iter_orders())


def test_400_with_error_message(sandbox: SandboxServer, client: SatuClient):
    [order] = sandbox.create_orders(1, seed=1)
    with pytest.raises(SatuApiError, match="'pending' cannot be set") as exc:
        client.set_status([order["id"]], "pending")
    assert exc.value.status == 400
    with pytest.raises(SatuApiError, match="cancellation_reason"):
        client.set_status([order["id"]], "canceled", cancellation_reason="покупатель передумал")
    with pytest.raises(SatuApiError, match="cancellation_text: required"):
        client.set_status([order["id"]], "canceled", cancellation_reason="another")
    assert client.set_status([order["id"]], "canceled", cancellation_reason="buyers_request") == [order["id"]]
    got = client.get_order(order["id"])
    # issue 13: the order shows cancellation{title, initiator}; the reason code is not in it
    assert got["status"] == "canceled" and got["cancellation"] == {
        "title": "По просьбе покупателя",
        "initiator": "seller",
    }
    assert sandbox.cancellation_reasons[order["id"]] == "buyers_request"
    with pytest.raises(SatuApiError) as exc:
        client.get_order(999)
    assert exc.value.status == 404


def test_write_counts_only_for_processed_ids(sandbox: SandboxServer, client: SatuClient):
    sandbox.put_products([{"external_id": str(i), "price": 100, "quantity_in_stock": 1} for i in range(1, 4)])
    result = client.edit_products(
        [
            {"id": "1", "quantity_in_stock": 7, "presence": "available"},
            {"id": "2", "presence": "soon"},  # bad field → per-item error
            {"id": "404", "quantity_in_stock": 1},  # unknown external id → per-item error
            {"id": "3", "price": 650.5},
        ]
    )
    assert result.processed_ids == ["1", "3"]
    assert set(result.errors) == {"2", "404"} and "presence" in result.errors["2"]
    assert "not found" in result.errors["404"]
    assert sandbox.product("1")["quantity_in_stock"] == 7
    assert sandbox.product("2")["presence"] == "available"  # untouched
    assert parse_price(client.product_by_external_id("3")["price"]) == Decimal("650.50")
    assert client.product_by_external_id("404") is None


def test_sandbox_refuses_more_than_100_items_and_client_batches(sandbox: SandboxServer, client: SatuClient):
    sandbox.put_products([{"external_id": str(i), "price": 100} for i in range(250)])
    r = _raw(sandbox, "POST", "/products/edit_by_external_id", json=[{"id": str(i)} for i in range(101)])
    assert r.status_code == 400 and "at most 100" in r.json()["error"]["message"]
    before = client.requests
    result = client.edit_products([{"id": str(i), "quantity_in_stock": 2} for i in range(250)])
    assert len(result.processed_ids) == 250 and result.ok
    assert client.requests - before == 3 == result.requests


# --- retries ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["429", "500", "503"])
def test_transient_failures_are_retried(sandbox: SandboxServer, client: SatuClient, mode: str):
    sandbox.create_orders(3)
    sandbox.fail_next(3, mode)
    before = client.requests
    assert len(list(client.iter_orders())) == 3
    assert client.requests - before == 3 + 2  # 3 faults; then the page, and the repeat that ends paging
    assert sandbox.pending_faults() == 0


def test_timeouts_are_retried(sandbox: SandboxServer):
    sandbox.create_orders(2)
    sandbox.fail_next(1, "timeout", delay=3)
    with SatuClient(sandbox.url, sandbox.token, timeout=0.5, max_retries=2, backoff_base=0.01) as c:
        assert len(list(c.iter_orders())) == 2
        assert c.requests == 1 + 2


def test_retries_are_bounded(sandbox: SandboxServer):
    sandbox.fail_next(10, "500")
    with (
        SatuClient(sandbox.url, sandbox.token, max_retries=2, backoff_base=0.01) as c,
        pytest.raises(RetryableError, match="gave up after 2 retries"),
    ):
        c.get_order(1)
    assert c.requests == 3
    assert sandbox.pending_faults() == 7


def test_retry_after_is_honoured(sandbox: SandboxServer, client: SatuClient):
    sandbox.fail_next(1, "429", retry_after=1)
    t = time.monotonic()
    list(client.iter_orders())
    assert time.monotonic() - t >= 1.0


def test_backoff_grows_exponentially_with_jitter():
    c = SatuClient("http://127.0.0.1:9/api/v1", "t", backoff_base=1, backoff_max=30)
    try:
        waits = [[c._delay(a, None) for _ in range(50)] for a in (1, 2, 3, 4, 8)]
    finally:
        c.close()
    for (lo, hi), w in zip([(0.5, 1), (1, 2), (2, 4), (4, 8), (15, 30)], waits, strict=True):
        assert all(lo <= x <= hi for x in w)
        assert len(set(w)) > 1  # jitter


def test_unreachable_server_becomes_retryable(tmp_path: Path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with (
        SatuClient(f"http://127.0.0.1:{port}/api/v1", TOKEN, max_retries=1, backoff_base=0.01) as c,
        pytest.raises(RetryableError, match="connection failed"),
    ):
        c.get_order(1)


# --- paging and dates ---------------------------------------------------------------------------------


def test_inclusive_cursor_is_deduplicated(sandbox: SandboxServer, client: SatuClient):
    made = sandbox.create_orders(250, seed=5)
    ids = sorted(o["id"] for o in made)
    page = _raw(sandbox, "GET", "/orders/list", params={"limit": 100}).json()["orders"]
    assert [o["id"] for o in page] == ids[::-1][:100]  # newest first
    nxt = _raw(sandbox, "GET", "/orders/list", params={"limit": 100, "last_id": page[-1]["id"]}).json()[
        "orders"
    ]
    assert nxt[0]["id"] == page[-1]["id"]  # inclusive: the cursor row comes again
    before = client.requests
    got = [o["id"] for o in client.iter_orders()]
    assert sorted(got) == ids and len(got) == len(set(got))
    assert client.requests - before == 4  # 100 + 99 new + 50 new + the repeated last id
    # a server that caps the page lower than asked does not end the walk early
    sandbox.max_limit = 30
    got = [o["id"] for o in client.iter_orders()]
    assert sorted(got) == ids
    products = [{"external_id": f"p{i}", "price": i} for i in range(205)]
    sandbox.put_products(products)
    ext = [p["external_id"] for p in client.iter_products()]
    assert sorted(ext) == sorted(p["external_id"] for p in products)


def test_date_format_quirk(sandbox: SandboxServer, client: SatuClient):
    made = sandbox.create_orders(20, seed=2)
    old = datetime.now(UTC) - timedelta(days=30)
    exact = format_date(old)
    assert (
        len(_raw(sandbox, "GET", "/orders/list", params={"last_modified_from": exact}).json()["orders"]) == 20
    )
    for bad in (exact + "Z", exact + ".000", old.isoformat()):
        assert _raw(sandbox, "GET", "/orders/list", params={"last_modified_from": bad}).json() == {
            "orders": []
        }
    # the client turns any form into the exact one
    assert len(list(client.iter_orders(last_modified_from=old.isoformat()))) == 20
    assert len(list(client.iter_orders(last_modified_from=old.strftime("%Y-%m-%dT%H:%M:%S.123Z")))) == 20
    # a modified order shows up after a cursor set before the change (new orders are dated now:
    # let their second pass first, the API's resolution is one second)
    time.sleep(1.1)
    mark = datetime.now(UTC)
    time.sleep(1.1)  # the API's resolution is one second
    changed = sandbox.modify_order(made[3]["id"], client_notes="Позвоните после 18:00")
    assert parse_date(changed["date_modified"]) > mark
    recent = list(client.iter_orders(last_modified_from=mark))
    assert [o["id"] for o in recent] == [made[3]["id"]]
    assert recent[0]["date_modified"].endswith("+05:00")
    assert [o["id"] for o in client.iter_orders(status="canceled")] == sorted(
        (o["id"] for o in made if o["status"] == "canceled"), reverse=True
    )


def test_declaration_is_saved(sandbox: SandboxServer, client: SatuClient):
    [order] = sandbox.create_orders(1)
    assert client.save_declaration(order["id"], "KZ123456789", "kazpost") is True
    data = client.get_order(order["id"])["delivery_provider_data"]
    assert data["declaration_number"] == "KZ123456789" and data["provider"] == "kazpost"


# --- the token stays secret ---------------------------------------------------------------------------


def test_token_never_appears_in_logs_or_errors(sandbox: SandboxServer, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    with SatuClient(sandbox.url, TOKEN, max_retries=1, backoff_base=0.01) as c:
        messages.append(repr(c))
        sandbox.fail_next(5, "500")
        for call in (
            lambda: c.get_order(1),
            lambda: c.set_status([1], "pending"),
            lambda: c.save_declaration(1, "x", "kazpost"),
        ):
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - every error text is checked
                messages.append(str(exc))
                messages.append(repr(exc))
        sandbox.fail_next(1, "200-error")
        try:
            c.get_order(1)
        except SatuApiError as exc:
            messages.append(str(exc))
    with SatuClient(sandbox.url, TOKEN + "x") as bad:
        try:
            bad.get_order(1)
        except SatuAuthError as exc:
            messages.append(str(exc))
    assert len(messages) >= 7
    text = "\n".join(messages + [r.getMessage() for r in caplog.records])
    assert "retry" in text and "HTTP 500" in text
    assert TOKEN not in text


def test_query_dates_go_in_the_query_zone_and_the_language_header(sandbox: SandboxServer, client: SatuClient):
    """Issue 13: Satu reads query dates as UTC. A client that sent Satu's local time (UTC+5) would
    ask for orders five hours in the future and miss every order of those hours, silently."""
    sandbox.create_orders(3, seed=4)
    since = datetime.now(UTC) - timedelta(hours=2)
    assert len(list(client.iter_orders(last_modified_from=since))) == 3
    assert sandbox.last_language == "ru"
    wrong = SatuClient(sandbox.url, sandbox.token, query_timezone=query_zone("+05:00"), language="kk")
    try:
        assert list(wrong.iter_orders(last_modified_from=since)) == []  # the five lost hours
        assert sandbox.last_language == "kk"
    finally:
        wrong.close()


def test_query_timezone_setting_is_checked(tmp_path: Path, monkeypatch):
    from pipeline.errors import SettingsError
    from pipeline.settings import cross_check

    monkeypatch.setenv("SATU_TEST_TOKEN", TOKEN)
    good = make_settings(tmp_path, satu={"token_env": "SATU_TEST_TOKEN", "query_timezone": "+05:00"})
    with SatuClient.from_settings(good) as c:
        assert c.query_timezone.utcoffset(None) == timedelta(hours=5)
    with pytest.raises(SettingsError, match="satu.query_timezone"):
        make_settings(tmp_path, satu={"token_env": "SATU_TEST_TOKEN", "query_timezone": "Mars/Olympus"})
    bad = dataclasses.replace(good, satu=dataclasses.replace(good.satu, query_timezone="Mars/Olympus"))
    assert [p.key for p in cross_check(bad)] == ["satu.query_timezone"]
    with pytest.raises(SettingsError, match="satu.query_timezone"):
        SatuClient.from_settings(bad)


def test_set_status_result_tells_already_there_from_processed(sandbox: SandboxServer, client: SatuClient):
    """Issue 13: an empty processed_ids without an error means "already at this status" on Satu."""
    a, b = (sandbox.modify_order(o["id"], status="pending") for o in sandbox.create_orders(2, seed=6))
    first = client.set_status_result([a["id"]], "received")
    assert (first.processed, first.already) == ([a["id"]], [])
    again = client.set_status_result([a["id"], b["id"]], "received")
    assert (again.processed, again.already) == ([b["id"]], [a["id"]])
    assert client.get_order(a["id"])["status"] == "received"
