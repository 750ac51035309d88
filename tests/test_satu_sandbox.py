"""The Satu sandbox: realistic orders, import_url of a real local feed, persistence, control, CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from pipeline.devtools.sandbox import SandboxServer, format_price, generate_orders
from pipeline.satu.api import import_errors, import_finished, parse_price, parse_quantity
from pipeline.satu.client import SatuApiError, SatuClient
from satu_helpers import feed_xml, offer_xml, serve_dir

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def sandbox(tmp_path: Path):
    server = SandboxServer(tmp_path / "sandbox", import_delay=0.3).start()
    yield server
    server.stop()


@pytest.fixture()
def client(sandbox: SandboxServer):
    c = SatuClient(sandbox.url, sandbox.token, timeout=5, max_retries=3, backoff_base=0.01)
    yield c
    c.close()


def test_format_price_like_satu():
    assert format_price(1950) == "1 950 ₸"
    assert format_price("650.5") == "650,50 ₸"
    assert format_price(1234567, nbsp=True) == "1\u00a0234\u00a0567\u00a0₸"
    assert format_price(0) == "0 ₸"
    for v in ("1950", "650.50", "1234567.05", "0"):
        assert parse_price(format_price(v, nbsp=True)) == Decimal(v)


def test_generated_orders_are_realistic_and_deterministic():
    products = [(str(i), f"ART-{i}", f"Товар {i}", Decimal("1950") + i) for i in range(1, 30)]
    now = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    orders = generate_orders(300, seed=11, products=products, now=now)
    assert orders == generate_orders(300, seed=11, products=products, now=now)
    assert orders != generate_orders(300, seed=12, products=products, now=now)
    known = {p[0] for p in products}
    lines = [ln for o in orders for ln in o["products"]]
    assert any(ln["external_id"] in known for ln in lines)
    unknown = [ln for ln in lines if ln["external_id"] not in known]
    assert 0 < len(unknown) < len(lines) * 0.15
    assert any(parse_quantity(ln["quantity"]) % 1 for ln in lines)  # fractional quantities
    assert any("\u00a0" in o["price"] for o in orders) and any(" " in o["price"] for o in orders)
    for o in orders:
        total = sum(parse_price(ln["total_price"]) for ln in o["products"])
        assert parse_price(o["price"]) == total
        assert o["date_created"].endswith("+05:00") and "." in o["date_created"]
        if o["phone"]:
            assert re.sub(r"\D", "", o["phone"])[-10:].startswith("7")
            assert o["phone"].startswith(("+7", "8", "7"))
    spellings = {re.sub(r"\d", "9", o["phone"]) for o in orders if o["phone"]}
    assert len(spellings) >= 5
    statuses = {o["status"] for o in orders}
    assert {"pending", "received", "paid", "delivered", "canceled"} <= statuses
    assert any((o["payment_data"] or {}).get("status") in ("paid", "paid_out") for o in orders)
    assert any((o["delivery_provider_data"] or {}).get("declaration_number") for o in orders)
    # issue 13: cancellation is {title, initiator}; the `reason` key was only ever in the sandbox
    assert all(
        o["cancellation"]["title"] and o["cancellation"]["initiator"]
        for o in orders
        if o["status"] == "canceled"
    )
    for field in ("client_last_name", "phone", "email", "client_first_name"):
        assert any(not o[field] for o in orders), field
    names = " ".join(o["client_first_name"] + o["client_last_name"] for o in orders)
    assert re.search("[әғқңөұүһі]", names, re.IGNORECASE)  # Kazakh letters


def test_sandbox_orders_use_its_products(sandbox: SandboxServer, client: SatuClient):
    sandbox.put_products(
        [
            {"external_id": str(i), "name": f"Товар {i}", "sku": f"A{i}", "price": 1000 + i}
            for i in range(1, 6)
        ]
    )
    made = sandbox.create_orders(40, seed=3)
    assert len(made) == 40 and len({o["id"] for o in made}) == 40
    exts = {ln["external_id"] for o in made for ln in o["products"]}
    assert exts & {"1", "2", "3", "4", "5"}
    assert client.get_order(made[0]["id"]) == made[0]


def test_state_persists_across_restarts(tmp_path: Path):
    with SandboxServer(tmp_path / "sb") as first:
        token = first.token
        first.put_products([{"external_id": "7", "price": 500, "quantity_in_stock": 3}])
        [order] = first.create_orders(1)
    with SandboxServer(tmp_path / "sb") as second:
        assert second.token == token
        with SatuClient(second.url, token) as c:
            assert c.product_by_external_id("7")["quantity_in_stock"] == 3
            assert c.get_order(order["id"])["id"] == order["id"]
        [again] = second.create_orders(1)
        assert again["id"] > order["id"]


def test_control_endpoints(sandbox: SandboxServer, client: SatuClient):
    CONTROL = {"X-Sandbox": "1"}  # control calls need it (or the token): no cross-site form POST
    r = httpx.post(sandbox.root_url + "/_sandbox/orders", json={"count": 3, "seed": 4}, headers=CONTROL)
    ids = r.json()["created"]
    assert len(ids) == 3
    r = httpx.post(
        sandbox.root_url + f"/_sandbox/orders/{ids[0]}", json={"status": "received"}, headers=CONTROL
    )
    assert r.json()["order"]["status_name"] == "Принят"
    httpx.post(sandbox.root_url + "/_sandbox/fail", json={"count": 2, "mode": "429"}, headers=CONTROL)
    assert sandbox.pending_faults() == 2
    assert client.get_order(ids[0])["status"] == "received"
    state = httpx.get(sandbox.root_url + "/_sandbox/state", headers=CONTROL).json()
    assert state["orders"] == 3 and state["pending_faults"] == 0
    r = httpx.post(sandbox.root_url + "/_sandbox/fail", json={"count": 1, "mode": "teapot"}, headers=CONTROL)
    assert r.status_code == 400


# --- import_url ---------------------------------------------------------------------------------------


def _poll(client: SatuClient, import_id: str) -> dict:
    return client.wait_import(import_id, poll=0.05, timeout=30)


def test_import_url_downloads_parses_and_reports(sandbox: SandboxServer, client: SatuClient, tmp_path: Path):
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "img" / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0fakejpeg")
    with serve_dir(site) as base:
        offers = [
            offer_xml("1", pictures=(f"{base}/img/a.jpg",)),
            offer_xml("2", price="650.50", qty=0, available=False),
            offer_xml("3", pictures=(f"{base}/img/missing.jpg",)),  # unreachable picture
            offer_xml("4", price="дорого"),  # invalid price
            offer_xml("5", vendor_code="X" * 26),  # vendorCode too long
            offer_xml("6", pictures=("https://example.com/x.jpg",)),
        ]  # not reachable from here
        (site / "satu.yml").write_text(feed_xml(offers), encoding="utf-8")
        import_id = client.import_url(f"{base}/satu.yml", mark_missing_product_as="none")
        # only one import at a time
        with pytest.raises(SatuApiError, match="in progress") as exc:
            client.import_url(f"{base}/satu.yml")
        assert exc.value.status == 400
        status = _poll(client, import_id)
        assert status["status"] == "PARTIAL"
        # live: picture errors (3, 6) are listed but not counted in with_errors_count
        assert (status["total"], status["created"], status["with_errors_count"]) == (6, 2, 2)
        assert {p.product_id for p in import_errors(status["errors"])} == {"3", "4", "5", "6"}
        p1, p2 = client.product_by_external_id("1"), client.product_by_external_id("2")
        assert p1["presence"] == "available" and p1["quantity_in_stock"] == 5
        assert p2["presence"] == "not_available" and parse_price(p2["price"]) == Decimal("650.50")
        assert client.product_by_external_id("3") is None
        # a corrected feed: updates and creates, nothing fails
        offers = [
            offer_xml("1", price="2100", pictures=(f"{base}/img/a.jpg",)),
            offer_xml("2", price="650.50", qty=0, available=False),
            offer_xml("3"),
        ]
        (site / "satu.yml").write_text(feed_xml(offers), encoding="utf-8")
        status = _poll(
            client, client.import_url(f"{base}/satu.yml", mark_missing_product_as="not_on_display")
        )
        assert status["status"] == "SUCCESS"
        assert (status["created"], status["updated"], status["not_changed"]) == (1, 1, 1)
        assert parse_price(client.product_by_external_id("1")["price"]) == Decimal("2100")


def test_imported_products_appear_after_a_delay(tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "satu.yml").write_text(feed_xml([offer_xml("1"), offer_xml("2")]), encoding="utf-8")
    with (
        SandboxServer(tmp_path / "sb", import_delay=0, appear_delay=1.5) as sb,
        serve_dir(site) as base,
        SatuClient(sb.url, sb.token) as c,
    ):
        assert _poll(c, c.import_url(f"{base}/satu.yml"))["created"] == 2
        assert c.product_by_external_id("1") is None and list(c.iter_products()) == []
        assert "not found" in c.edit_products([{"id": "1", "quantity_in_stock": 3}]).errors["1"]
        time.sleep(1.6)
        assert c.product_by_external_id("1")["name"] == "Товар 1"
        assert "_visible_after" not in c.product_by_external_id("1")
        assert c.edit_products([{"id": "1", "quantity_in_stock": 3}]).processed_ids == ["1"]


def test_import_fatal_and_refusals(sandbox: SandboxServer, client: SatuClient, tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "broken.yml").write_text("<yml_catalog><shop><offers><offer", encoding="utf-8")
    (site / "cp1251.yml").write_bytes(
        feed_xml([offer_xml("1")]).replace("UTF-8", "windows-1251").encode("cp1251")
    )
    with serve_dir(site) as base:
        for name in ("broken.yml", "cp1251.yml", "absent.yml"):
            assert _poll(client, client.import_url(f"{base}/{name}"))["status"] == "FAIL", name  # Satu's word
    with pytest.raises(SatuApiError, match="loopback"):
        client.import_url("https://example.com/satu.yml")
    with pytest.raises(SatuApiError, match="loopback"):
        client.import_url("file:///etc/passwd")


# --- the command --------------------------------------------------------------------------------------


def test_load_feed_file_then_orders_refer_to_its_products(tmp_path: Path):
    feed = tmp_path / "satu.yml"
    feed.write_text(
        feed_xml([offer_xml(str(i), pictures=("http://127.0.0.1:9/none.jpg",)) for i in range(1, 9)]),
        encoding="utf-8",
    )
    with SandboxServer(tmp_path / "sb") as sb:
        rec = sb.load_feed_file(feed)
        assert rec["status"] == "SUCCESS" and rec["created"] == 8
        orders = sb.create_orders(30, seed=9)
        exts = {ln["external_id"] for o in orders for ln in o["products"]}
        assert len(exts & {str(i) for i in range(1, 9)}) >= 5
        assert sb.load_feed_file(feed, check_pictures=True)["status"] == "PARTIAL"


def test_satu_sandbox_command(tmp_path: Path):
    settings = tmp_path / "settings.toml"
    settings.write_text('[satu]\ntoken_env = "SANDBOX_TEST_TOKEN_UNSET"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_TEST_TOKEN_UNSET"}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "run.py"),
            "--settings",
            str(settings),
            "satu-sandbox",
            "--port",
            "0",
            "--state-dir",
            str(tmp_path / "sb"),
            "--seed-orders",
            "12",
            "--token",
            "cli-token",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        url = None
        deadline = time.monotonic() + 30
        lines = []
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+/api/v1)", line)
            url = m.group(1) if m else None
        assert url, lines
        assert "cli-token" not in "".join(lines)
        with SatuClient(url, "cli-token") as c:
            assert len(list(c.iter_orders())) == 12
    finally:
        proc.terminate()
        proc.wait(10)


def test_import_status_plays_the_live_sequence(tmp_path: Path):
    """Issue 13: SUCCESS with zero counters, then PARTIAL with zeros, then the real result."""
    server = SandboxServer(tmp_path / "slow", import_delay=1.2).start()
    try:
        site = tmp_path / "site-slow"
        site.mkdir()
        (site / "satu.yml").write_text(feed_xml([offer_xml("1"), offer_xml("2")]), encoding="utf-8")
        with serve_dir(site) as base, SatuClient(server.url, server.token) as c:
            import_id = c.import_url(f"{base}/satu.yml")
            seen = []
            while True:
                reply = c.import_status(import_id)
                seen.append((reply["status"].upper(), reply["total"]))
                if import_finished(reply):
                    break
                time.sleep(0.05)
        assert seen[0] == ("SUCCESS", 0) and ("PARTIAL", 0) in seen
        assert seen[-1] == ("SUCCESS", 2)
    finally:
        server.stop()
