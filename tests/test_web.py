"""The web page over real HTTP on a loopback port: pages from a demo-like run, quarantine retry,
log filters, actions under the run lock, and the security rules (CSRF everywhere, login off loopback)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from conftest import make_settings
from order_factory import satu_order, write_order
from pipeline.errors import SettingsError
from pipeline.journal import Journal
from pipeline.lock import run_lock
from pipeline.orders import inbox
from pipeline.state import State
from pipeline.web import start_in_thread
from web_helpers import HIDDEN_GOOD, demo_like_run, hide_on_site


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


@pytest.fixture()
def site(demo_env, tmp_path: Path):
    settings = demo_like_run(tmp_path)
    handle = start_in_thread(settings, port=0)
    client = httpx.Client(base_url=handle.url, timeout=60)
    yield settings, client
    client.close()
    handle.stop()


def test_pages_show_the_run_orders_products_and_quarantine(site, monkeypatch):
    monkeypatch.delenv("SATU_TOKEN", raising=False)  # the check must name the variable, never go online
    settings, c = site
    home = c.get("/")
    assert home.status_code == 200
    assert "sync" in home.text and "<svg" in home.text and "Заказы в день" in home.text
    offers = re.search(r'id="feed-offers">(\d+)<', home.text)
    assert offers and int(offers.group(1)) > 100
    assert "2 импортировано" in home.text  # today's orders
    assert "Orders per day" in c.get("/?lang=en").text
    assert "Orders per day" in c.get("/").text  # the language sticks (cookie)
    c.get("/?lang=ru")

    orders = c.get("/orders").text
    assert "9001" in orders and "9002" in orders and "Ерлан" in orders
    by_phone = c.get("/orders", params={"q": "702 555"}).text
    assert "9002" in by_phone and "9001" not in by_phone
    assert "9002" in c.get("/orders", params={"q": "ерлан"}).text

    story = c.get("/orders/9001").text
    assert "order 9001 imported (Torgsoft order" in story and "Айгерим" in story

    found = c.get("/products", params={"q": "ART-000005"}).text
    assert 'href="/products/5"' in found
    page = c.get("/products/5").text
    assert "В фиде" in page and "/photo?name=" in page
    assert "нет в наличии" in c.get("/products/3").text  # out of stock, hidden by [feed] zero_stock
    thumb = re.search(r'src="(/photo\?name=[^"]+)"', page)
    assert thumb and c.get(thumb.group(1).replace("&amp;", "&")).headers["content-type"] == "image/jpeg"
    assert c.get("/photo", params={"name": "../torgsoft.fdb"}).status_code == 404

    q = c.get("/quarantine").text
    assert "satu-order-9003.json" in q and "Повторить" in q
    hist = c.get("/history").text
    assert re.search(r"<td>\d{3}</td>", hist)  # offers of the kept feed
    settings_page = c.get("/settings").text
    assert "SATU_TOKEN" in settings_page and "satu.token_env" in settings_page
    csrf = csrf_of(settings_page)
    checked = c.post("/settings/check", data={"what": "publish", "csrf": csrf}).text
    assert re.search(r'id="check-publish">publish: local: connected, \d+ file', checked), checked[-800:]
    no_token = c.post("/settings/check", data={"what": "satu", "csrf": csrf}).text
    assert "SATU_TOKEN is not set" in no_token


def test_product_hidden_on_site_says_why(site):
    settings, c = site
    hide_on_site(settings, HIDDEN_GOOD)
    page = c.get(f"/products/{HIDDEN_GOOD}").text
    assert "Не в фиде" in page and "показывать на сайте" in page and "hidden_on_site" in page
    assert "Ушло в последний фид" in page  # what the last feed sent is still shown
    assert c.get("/products/999999").status_code == 404


def test_retry_from_quarantine_then_the_importer_takes_it(site, tmp_path: Path):
    settings, c = site
    name = "satu-order-9003.json"
    quarantined = Path(settings.orders.inbox) / "quarantine" / name
    quarantined.write_text((tmp_path / "9003.json").read_text(encoding="utf-8"), encoding="utf-8")  # the fix
    csrf = csrf_of(c.get("/quarantine").text)
    refused = c.post("/quarantine/retry", data={"name": name, "csrf": "forged"})
    assert refused.status_code == 403 and quarantined.exists()
    r = c.post("/quarantine/retry", data={"name": name, "csrf": csrf}, follow_redirects=True)
    assert r.status_code == 200 and name not in r.text.split("flash")[-1].split("</p>", 1)[1]
    assert not quarantined.exists() and (Path(settings.orders.inbox) / name).exists()
    journal, state = Journal.from_settings(settings), State.from_settings(settings)
    try:
        assert inbox.run(settings, journal=journal, state=state).imported == 1
    finally:
        journal.close()
        state.close()
    assert "order 9003 imported" in c.get("/orders/9003").text
    bad = c.post("/quarantine/retry", data={"name": "../settings.toml", "csrf": csrf}, follow_redirects=True)
    assert "not a quarantined file name" in bad.text


def test_set_aside_moves_never_deletes(site):
    settings, c = site
    csrf = csrf_of(c.get("/quarantine").text)
    c.post("/quarantine/set-aside", data={"name": "satu-order-9003.json", "csrf": csrf})
    kept = Path(settings.orders.inbox) / "quarantine" / "kept"
    assert (kept / "satu-order-9003.json").exists() and (kept / "satu-order-9003.json.reason.txt").exists()
    assert "satu-order-9003.json" not in c.get("/quarantine").text


def test_log_filters_like_the_log_command(site):
    _, c = site
    everything = c.get("/log", params={"limit": 0}).text
    assert "sync finished" in everything
    errors = c.get("/log", params={"level": "error"}).text
    assert "quarantined satu-order-9003.json" in errors and "sync finished" not in errors
    one = c.get("/log", params={"order": "9002"}).text
    assert "order 9002 imported" in one and "order 9001" not in one
    text = c.get("/log", params={"grep": "ИМПОРТ", "stage": "orders"}).text  # no match: English words
    assert "order 9001 imported" not in text
    assert "order 9001 imported" in c.get("/log", params={"grep": "IMPORTED", "stage": "orders"}).text
    assert "sync" not in c.get("/log", params={"until": "2000-01-01"}).text.split('id="log"')[1].split(
        "</table>"
    )[0].replace("sync ", "")
    bad = c.get("/log", params={"since": "soonish"})
    assert bad.status_code == 200 and "neither a relative time" in bad.text
    rows = c.get("/log.json", params={"stage": "orders", "after": 0}).json()
    assert rows and all(r["stage"].startswith("orders") for r in rows)


def test_actions_need_csrf_and_go_through_the_run_lock(site):
    settings, c = site
    assert c.post("/actions/import", data={}).status_code == 403
    csrf = csrf_of(c.get("/actions").text)
    with run_lock(settings, "someone else"):
        r = c.post("/actions/import", data={"csrf": csrf}, follow_redirects=True)
        url = str(r.url)
        for _ in range(100):
            page = c.get(url).text
            if 'data-running="0"' in page:
                break
            time.sleep(0.1)
    assert "another run holds the lock" in page and "someone else" in page
    write_order(Path(settings.orders.inbox), satu_order(9004))
    r = c.post("/actions/import", data={"csrf": csrf}, follow_redirects=True)
    for _ in range(300):
        page = c.get(str(r.url)).text
        if 'data-running="0"' in page:
            break
        time.sleep(0.1)
    assert "успешно" in page and "order 9004 imported" in page


def test_beyond_loopback_needs_a_password_and_login(tmp_path: Path, monkeypatch):
    plain = make_settings(tmp_path, web={"host": "0.0.0.0"})
    with pytest.raises(SettingsError) as exc:
        start_in_thread(plain, host="0.0.0.0", port=0)
    assert "web.password_env" in str(exc.value.problems[0])
    monkeypatch.setenv("TEST_WEB_PASSWORD", "s3cret-пароль")
    s = make_settings(tmp_path, web={"password_env": "TEST_WEB_PASSWORD"})
    handle = start_in_thread(s, host="127.0.0.1", port=0)
    try:
        with httpx.Client(base_url=handle.url) as c:
            r = c.get("/orders")
            assert r.status_code == 303 and r.headers["location"] == "/login"
            cookie = r.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            login = c.get("/login").text
            assert c.post("/login", data={"password": "s3cret-пароль"}).status_code == 403  # no CSRF token
            wrong = c.post("/login", data={"password": "nope", "csrf": csrf_of(login)})
            assert wrong.status_code == 401 and "Неверный пароль" in wrong.text
            ok = c.post("/login", data={"password": "s3cret-пароль", "csrf": csrf_of(login)})
            assert ok.status_code == 303 and "httponly" in ok.headers["set-cookie"].lower()
            assert c.get("/orders").status_code == 200
            csrf = csrf_of(c.get("/actions").text)
            assert c.post("/actions/import", data={"csrf": "x"}).status_code == 403
            assert c.post("/logout", data={"csrf": csrf}).status_code == 303
            assert c.get("/orders").status_code == 303
        log_text = Path(s.journal.log_file).read_text() if Path(s.journal.log_file).exists() else ""
        assert "s3cret" not in log_text
    finally:
        handle.stop()


def test_run_py_web_serves_and_stops_on_sigterm(tmp_path: Path):
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    settings = tmp_path / "settings.toml"
    settings.write_text('[journal]\npath = "var/j.sqlite"\nstate_path = "var/s.sqlite"\n', encoding="utf-8")
    cmd = [sys.executable, str(ROOT / "run.py"), "--settings", str(settings), "web", "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"Web page: (http://127\.0\.0\.1:\d+/)", line)
        assert m, line + proc.stderr.read()
        assert "Последние запуски" in httpx.get(m.group(1), timeout=30).text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    beyond = subprocess.run(cmd[:-2] + ["--host", "0.0.0.0"], cwd=tmp_path, capture_output=True, text=True)
    assert beyond.returncode == 2 and "web.password_env" in beyond.stderr and "Traceback" not in beyond.stderr


def test_loopback_page_refuses_foreign_host_names(site):
    _, c = site
    assert c.get("/", headers={"Host": "rebound.example:8780"}).status_code == 400
    assert c.get("/", headers={"Host": "localhost"}).status_code == 200
    with run_lock(site[0], "sync"):
        assert "sync" in c.get("/").text.split('id="now-running"')[1].split("</p>")[0]
