"""Issue 13: the sandbox plays Satu's quirks from public evidence and the client reads them right.

Real sandbox over real HTTP on 127.0.0.1; the values are our own (docs/satu-api.md lists the sources).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from pipeline.devtools.sandbox import SandboxServer, generate_orders
from pipeline.satu.api import ImportProblem, import_errors, import_finished, import_not_in_file
from pipeline.satu.client import SatuApiError, SatuClient
from satu_helpers import feed_xml, offer_xml, serve_dir

TOKEN = "quirks-token-Hk2-never-print"


@pytest.fixture()
def sandbox(tmp_path: Path):
    server = SandboxServer(tmp_path / "sandbox", token=TOKEN, import_delay=0.05).start()
    yield server
    server.stop()


@pytest.fixture()
def client(sandbox: SandboxServer):
    c = SatuClient(sandbox.url, sandbox.token, timeout=5, max_retries=2, backoff_base=0.01)
    yield c
    c.close()


def _wait(client: SatuClient, import_id: str) -> dict:
    return client.wait_import(import_id, poll=0.02, timeout=10)


# --- 404 is an HTML page ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/orders/999999999", "/products/import/status/feedbeef", "/no/such/call"])
def test_404_is_an_html_page_and_the_client_says_so(sandbox: SandboxServer, client: SatuClient, path: str):
    r = httpx.get(sandbox.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html") and "<html" in r.text
    with pytest.raises(SatuApiError) as exc:
        client._request("GET", path)
    assert exc.value.status == 404 and "HTML page" in exc.value.message and "<" not in exc.value.message


def test_a_missing_product_is_none_despite_the_html(client: SatuClient):
    assert client.product_by_external_id("never-there") is None
    assert client.get_product(123) is None


# --- edit_by_external_id refuses an empty minimum_order_quantity -----------------------------------------


def test_price_step_without_minimum_order_quantity_is_refused(sandbox: SandboxServer, client: SatuClient):
    sandbox.put_products([{"external_id": "w1", "price": 1000}, {"external_id": "w2", "price": 1000}])
    res = client.edit_products(
        [
            {"id": "w1", "prices": [{"price": 900, "minimum_order_quantity": 10}]},
            {"id": "w2", "prices": [{"price": 900, "minimum_order_quantity": None}]},
        ]
    )
    assert res.processed_ids == ["w1"]
    assert "minimum_order_quantity" in res.errors["w2"]
    assert (sandbox.product("w2") or {})["prices"] == []


# --- import starts are rate-limited -------------------------------------------------------------------


def test_import_starts_are_limited_one_at_a_time_and_by_a_gap(tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "satu.yml").write_text(feed_xml([offer_xml("1")]), encoding="utf-8")
    with (
        SandboxServer(tmp_path / "sb", token=TOKEN, import_delay=0.3, import_min_gap=1.0) as sb,
        SatuClient(sb.url, TOKEN, max_retries=0) as c,
        serve_dir(site) as base,
    ):
        first = c.import_url(f"{base}/satu.yml")
        with pytest.raises(SatuApiError, match="одновременных импортов") as running:
            c.import_url(f"{base}/satu.yml")
        assert running.value.status == 400 and running.value.payload["status"] == "error"
        assert "id" not in running.value.payload  # a refusal has no import id
        assert _wait(c, first)["status"] == "SUCCESS"
        started = sb.imports()[-1]["started"]
        if time.time() - started < 0.9:  # finished, yet too soon after the previous start
            with pytest.raises(SatuApiError, match="too many import starts"):
                c.import_url(f"{base}/satu.yml")
        time.sleep(max(0.0, started + 1.05 - time.time()))
        assert _wait(c, c.import_url(f"{base}/satu.yml"))["status"] == "SUCCESS"
        assert len(sb.imports()) == 2


# --- the real import error shape --------------------------------------------------------------------


def test_import_errors_come_in_the_live_shape_and_are_read_with_the_product(
    sandbox: SandboxServer, client: SatuClient, tmp_path: Path
):
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "img" / "ok.jpg").write_bytes(b"\xff\xd8\xff\xe0jpeg")
    sandbox.put_products([{"external_id": "gone-1", "price": 5}, {"external_id": "gone-2", "price": 5}])
    with serve_dir(site) as base:
        offers = [
            offer_xml("p1", pictures=(f"{base}/img/ok.jpg",)),
            offer_xml("p2", pictures=(f"{base}/img/absent.jpg",)),
            offer_xml("p3", price="дёшево"),
        ]
        (site / "satu.yml").write_text(feed_xml(offers), encoding="utf-8")
        status = _wait(client, client.import_url(f"{base}/satu.yml"))
    assert status["status"] == "PARTIAL"
    pictures = [e for e in status["errors"] if "download_images" in e]
    assert [e["download_images"]["code"] for e in pictures] == [2004]
    assert pictures[0]["download_images"]["extra"]["status_code"] == 404
    # live: a picture error is listed while with_errors_count does not count it
    assert status["with_errors_count"] == 1
    assert import_not_in_file(status) == 2  # gone-1, gone-2 are on Satu but not in the file
    problems = import_errors(status["errors"])
    assert {(p.kind, p.product_id) for p in problems} == {("download_images", "p2"), ("validation", "p3")}
    by_id = {p.product_id: p for p in problems}
    assert by_id["p2"].code == 2004 and "picture cannot be downloaded" in by_id["p2"].message
    assert "price" in by_id["p3"].message


def test_a_feed_that_cannot_be_downloaded_fails_with_a_keyed_error(
    sandbox: SandboxServer, client: SatuClient
):
    with serve_dir(Path(__file__).parent) as base:
        status = _wait(client, client.import_url(f"{base}/no-such-feed.yml"))
    assert status["status"] == "FAIL"
    [problem] = import_errors(status["errors"])
    assert problem.kind == "download" and "HTTP 404" in problem.message


@pytest.mark.parametrize(
    "errors, expected",
    [
        (
            [{"download_images": {"code": 2004, "extra": {"status_code": 404}}}],
            [ImportProblem("download_images", 2004, None, "picture cannot be downloaded (HTTP 404)")],
        ),
        (
            [{"validation": {"code": "17", "extra": {"offer_id": "A-9", "field": "price"}}}],
            [ImportProblem("validation", 17, "A-9", "validation code 17 field=price")],
        ),
        ([{"external_id": "7", "message": "bad price"}], [ImportProblem("", None, "7", "bad price")]),
        (["feed is not UTF-8"], [ImportProblem("", None, None, "feed is not UTF-8")]),
        (None, []),
    ],
)
def test_import_errors_read_every_shape(errors, expected):
    assert import_errors(errors) == expected


def test_not_in_file_is_read_under_both_spellings():
    assert import_not_in_file({"not_in_file": 3}) == 3
    assert import_not_in_file({"not_in_fle": "4"}) == 4
    assert import_not_in_file({}) == 0
    # a not_in_file counter alone makes a SUCCESS final (something was really counted)
    assert import_finished({"status": "success", "not_in_file": 2}) == "SUCCESS"


# --- generated orders: a product made in the cabinet -------------------------------------------------


def test_generated_orders_have_cabinet_products_without_external_id():
    products = [(str(i), f"SKU-{i}", f"Товар {i}", 1000 + i) for i in range(1, 20)]
    lines = [ln for o in generate_orders(400, seed=5, products=products) for ln in o["products"]]
    cabinet = [ln for ln in lines if ln["external_id"] is None]
    assert cabinet and len(cabinet) < len(lines) * 0.1
    assert all(ln["sku"].startswith("SKU-") and isinstance(ln["id"], int) for ln in cabinet)


# --- shop options and custom statuses ---------------------------------------------------------------


def test_options_lists(sandbox: SandboxServer, client: SatuClient):
    delivery = client.delivery_options()
    payment = client.payment_options()
    statuses = client.order_status_options()
    assert delivery and all(o.id and o.name for o in delivery)
    assert payment and all(o.id and o.name for o in payment)
    values = {s.value: s for s in statuses}
    assert {"pending", "received", "paid", "delivered", "canceled"} <= set(values)
    assert values["custom-1002"].custom and values["custom-1002"].name == "Декабрь"
    assert not values["received"].custom


def test_set_status_takes_the_shops_custom_statuses_only(sandbox: SandboxServer, client: SatuClient):
    [order] = sandbox.create_orders(1, seed=2)
    assert client.set_status([order["id"]], "custom-1002") == [order["id"]]
    assert client.get_order(order["id"])["status_name"] == "Декабрь"
    with pytest.raises(SatuApiError, match="status_str") as exc:
        client.set_status([order["id"]], "custom-424242")
    assert exc.value.status == 200  # live: HTTP 200 with {"error": …}


def _options_cli(sandbox: SandboxServer, tmp_path: Path, *args: str, **status: str):
    from pipeline.cli import cli

    lines = ["[satu]", f'base_url = "{sandbox.url}"', 'token_env = "QUIRKS_SATU_TOKEN"', "max_retries = 0"]
    if status:
        lines += ["[status]", *(f'{k} = "{v}"' for k, v in status.items())]
    (tmp_path / "settings.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "QUIRKS_SATU_TOKEN": TOKEN}
    return CliRunner().invoke(
        cli, ["--settings", str(tmp_path / "settings.toml"), "satu", "options", *args], env=env
    )


def test_satu_options_command_lists_and_checks_the_status_settings(sandbox: SandboxServer, tmp_path: Path):
    r = _options_cli(sandbox, tmp_path, shipped="custom-1002")
    assert r.exit_code == 0, r.output
    assert "Order statuses (7):" in r.output and "custom-1002" in r.output and "Самовывоз" in r.output
    r = _options_cli(sandbox, tmp_path, "--json", paid="оплачен", cancelled="custom-9")
    assert r.exit_code == 2
    data = json.loads(r.stdout)
    assert data["unknown_status_settings"] == [
        {"key": "status.paid", "value": "оплачен"},
        {"key": "status.cancelled", "value": "custom-9"},
    ]
    assert {o["value"] for o in data["order_statuses"]} >= {"received", "custom-1001"}
    assert TOKEN not in r.output
