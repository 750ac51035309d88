"""The web page in a real browser: Debian's chromium (/usr/bin/chromium) driven by Playwright.

Nothing is downloaded at run time (never `playwright install`). Screenshots of every page are saved
under var/screenshots/ (git-ignored) as test artifacts; the path is printed.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from conftest import ROOT, make_settings
from pipeline.journal import Journal
from pipeline.web import start_in_thread
from web_helpers import HIDDEN_GOOD, demo_like_run, hide_on_site

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SHOTS = ROOT / "var" / "screenshots"

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture()
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@contextlib.contextmanager
def foreign_page(html: str):
    """Serve one HTML page from another loopback port (another origin), yield its URL."""
    body = html.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_every_page_in_the_browser(demo_env, tmp_path: Path, browser):
    settings = demo_like_run(tmp_path)
    hide_on_site(settings, HIDDEN_GOOD)
    handle = start_in_thread(settings, port=0)
    base = handle.url.rstrip("/")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/")
        assert page.locator("#runs").inner_text().count("sync") >= 1
        assert page.locator("svg.chart").count() == 5
        shot(page, "01-overview")

        page.click("text=Заказы")
        page.fill("input[name=q]", "Ерлан")
        page.click("button:has-text('Найти')")
        rows = page.locator("#orders").inner_text()
        assert "9002" in rows and "9001" not in rows
        shot(page, "02-orders")
        page.click("a:has-text('9002')")
        assert "order 9002 imported" in page.locator("#story").inner_text()
        shot(page, "03-order-story")

        page.goto(base + "/products")
        page.fill("input[name=q]", f"ART-00000{HIDDEN_GOOD}")
        page.click("button:has-text('Найти')")
        page.click(f"a:has-text('{HIDDEN_GOOD}')")
        verdict = page.locator("#verdict").inner_text()
        assert "Не в фиде" in verdict and "показывать на сайте" in verdict
        assert page.locator(".thumbs img").count() > 0
        # every thumbnail loads (waiting for the loads first: a busy machine serves them slowly)
        page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=30_000)
        assert page.evaluate("Array.from(document.images).every(i => i.naturalWidth > 0)")
        shot(page, "04-product-hidden")

        # Quarantine: the administrator fixed the file; retry, then import it from the Actions page.
        quarantined = Path(settings.orders.inbox) / "quarantine" / "satu-order-9003.json"
        page.goto(base + "/quarantine")
        assert "satu-order-9003.json" in page.content()
        shot(page, "05-quarantine")
        quarantined.write_text((tmp_path / "9003.json").read_text(encoding="utf-8"), encoding="utf-8")
        page.click("button.retry")
        assert "satu-order-9003.json →" in page.locator(".flash").inner_text()
        page.click("text=Действия")
        shot(page, "06-actions")
        page.click("#act-import")
        page.wait_for_selector("#action-state[data-running='0']", timeout=60_000)
        assert "успешно" in page.locator("#action-state").inner_text()
        shot(page, "07-action-done")
        page.goto(base + "/orders/9003")
        assert "order 9003 imported" in page.locator("#story").inner_text()

        page.goto(base + "/log")
        page.select_option("select[name=level]", "error")
        page.click("button:has-text('Показать')")
        log = page.locator("#log").inner_text()
        assert "quarantined satu-order-9003.json" in log and "sync finished" not in log
        shot(page, "08-log-errors")
        page.check("#live")  # live updates: a new matching event appears without reloading
        journal = Journal.from_settings(settings)
        journal.event("orders", "order 9555 could not be imported: test live line", "error", order_id=9555)
        journal.close()
        page.wait_for_selector("#log tr:has-text('test live line')", timeout=15_000)
        page.goto(base + "/history")
        shot(page, "09-feed-history")
        page.goto(base + "/settings")
        page.click("button:has-text('database')")
        assert "connected" in page.locator("#check-database").inner_text()
        shot(page, "10-settings")
        page.goto(base + "/?lang=en")
        assert "Last runs" in page.content()
        shot(page, "11-overview-en")
        runs_before = len(handle.server.config.app.state.actions.runs)
        form = f'<form method="post" action="{base}/actions/sync"><input name="csrf" value="x"></form>'
        with foreign_page(form) as url:
            page.goto(url)  # another local program's page: same site, so the cookie goes along
            with page.expect_navigation():
                page.evaluate("document.forms[0].submit()")
        assert "403" in page.content()  # on loopback too: no token, no action
        assert len(handle.server.config.app.state.actions.runs) == runs_before
    finally:
        handle.stop()


def test_login_and_a_foreign_page_cannot_act(tmp_path: Path, browser, monkeypatch):
    monkeypatch.setenv("TEST_WEB_PASSWORD", "пароль-1")
    s = make_settings(tmp_path, web={"password_env": "TEST_WEB_PASSWORD"})
    (Path(s.orders.inbox)).mkdir(parents=True, exist_ok=True)
    handle = start_in_thread(s, port=0)
    base = handle.url.rstrip("/")
    try:
        page = browser.new_page()
        page.goto(base + "/actions")
        assert page.url.endswith("/login")
        shot(page, "12-login")
        page.fill("input[name=password]", "пароль-1")
        page.click("button:has-text('Вход')")
        assert page.url == base + "/" and "Последние запуски" in page.content()
        # A page from elsewhere posting to the control room: no token, and the strict cookie stays home.
        # A page from another site (an opaque data: origin) posting to the control room.
        form = f'<form method="post" action="{base}/actions/sync"><input name="csrf" value="guess"></form>'
        page.goto("data:text/html," + form)
        with page.expect_navigation():
            page.evaluate("document.forms[0].submit()")
        assert page.url.endswith("/login")  # the strict session cookie was not sent along
        assert not any(r for r in handle.server.config.app.state.actions.runs)
    finally:
        handle.stop()
    shutil.rmtree(tmp_path / "inbox", ignore_errors=True)
