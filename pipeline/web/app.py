"""The control room's pages: a Starlette app rendering Jinja2 templates on the server.

Pages work without JavaScript; `static/live.js` only refreshes the log and an action's progress.
Plain `def` endpoints run in Starlette's thread pool (they read SQLite and the catalog, which block).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.errors import PipelineError
from pipeline.journal import LEVELS, Journal, parse_when
from pipeline.lock import holder
from pipeline.state import State
from pipeline.web import charts, data, products, quarantine
from pipeline.web.actions import ACTIONS, Actions
from pipeline.web.i18n import LANGS, translator
from pipeline.web.security import COOKIE, Sessions, csrf_ok
from pipeline.web.settings_check import check_connection, settings_report

HERE = Path(__file__).resolve().parent
PUBLIC = ("/login", "/static/")
LOG_FILTERS = ("grep", "level", "stage", "since", "until", "order", "product", "run")


class SessionMiddleware(BaseHTTPMiddleware):
    """Attach the session (creating one), send to /login when a password is set and not given."""

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        sessions: Sessions = request.app.state.sessions
        allowed = request.app.state.allowed_hosts
        if allowed is not None and request.url.hostname not in allowed:
            # Without a password only loopback names are served: a site whose DNS name is rebound
            # to 127.0.0.1 must not read these pages (nor their CSRF tokens) from a browser.
            return Response("400: this page answers only to 127.0.0.1 / localhost", status_code=400)
        token = request.cookies.get(COOKIE)
        session = sessions.get(token)
        new_token = None
        if session is None:
            new_token, session = sessions.new()
        request.state.session = session
        request.state.token = new_token or token
        path = request.url.path
        if sessions.login_required and not session.authenticated and not path.startswith(PUBLIC):
            response: Response = RedirectResponse("/login", status_code=303)
        else:
            response = await call_next(request)
        if new_token:
            response.set_cookie(COOKIE, new_token, httponly=True, samesite="strict", path="/")
        return response


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or "ru"
    return lang if lang in LANGS else "ru"


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    """A page from templates/ with the common context (words, language, CSRF token, navigation)."""
    lang = _lang(request)
    env: Environment = request.app.state.env
    html = env.get_template(name).render(
        t=translator(lang),
        lang=lang,
        csrf=request.state.session.csrf,
        path=request.url.path,
        login_required=request.app.state.sessions.login_required,
        **ctx,
    )
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie("lang", lang, samesite="strict", path="/")
    return response


async def checked_form(request: Request) -> Any:
    """The POSTed form, or a 403 page when its CSRF token is not this session's."""
    form = await request.form()
    if not csrf_ok(request.state.session, str(form.get("csrf") or "")):
        return None
    return form


def refused(request: Request) -> HTMLResponse:
    """The answer to a POST without the right CSRF token."""
    return HTMLResponse("403: the form is stale or came from another site (CSRF token missing)", 403)


# --- pages ----------------------------------------------------------------------------------------------


def overview(request: Request) -> HTMLResponse:
    s, journal, state = _stores(request)
    series = data.daily_series(s, journal)
    pics = [
        charts.bars(series["orders"], translator(_lang(request))("chart_orders")),
        charts.bars(series["offers"], translator(_lang(request))("chart_offers"), "#3a8d5c"),
        charts.bars(series["accepted"], translator(_lang(request))("chart_accepted"), "#3a8d5c"),
        charts.bars(series["refused"], translator(_lang(request))("chart_refused"), "#c2772b"),
        charts.bars(series["errors"], translator(_lang(request))("chart_errors"), "#b33a3a"),
    ]
    return render(
        request,
        "overview.html",
        runs=data.last_runs(journal),
        holder=holder(s),
        schedule=s.schedule,
        next_sync=data.next_sync(s, journal),
        feed=data.feed_info(s, journal, state),
        alerts=data.open_alerts(state),
        outbox=data.outbox_sizes(s.journal.state_path),
        today=data.today_counts(journal),
        charts=pics,
        local_time=data.local_time,
    )


def orders_page(request: Request) -> HTMLResponse:
    s, journal, state = _stores(request)
    q = request.query_params.get("q", "")
    return render(
        request, "orders.html", rows=data.orders(s, journal, state, q), q=q, local_time=data.local_time
    )


def order_page(request: Request) -> HTMLResponse:
    s, journal, state = _stores(request)
    oid = request.path_params["order_id"]
    story = data.order_story(journal, oid)
    info = data.order_details(s, oid)
    status = 200 if story or info else 404
    return render(request, "order.html", status, oid=oid, story=story, info=info, local_time=data.local_time)


def products_page(request: Request) -> HTMLResponse:
    s, _, _ = _stores(request)
    q = request.query_params.get("q", "")
    error, found = "", []
    try:
        found = products.search(s, q) if q else []
    except PipelineError as exc:
        error = str(exc)
    return render(request, "products.html", found=found, q=q, error=error)


def product_page(request: Request) -> HTMLResponse:
    s, journal, state = _stores(request)
    try:
        good_id = int(request.path_params["good_id"])
        v = products.verdict(s, state, good_id)
    except ValueError:
        v = None
    except PipelineError as exc:
        return render(request, "products.html", 503, found=[], q="", error=str(exc))
    if v is None:
        return render(request, "products.html", 404, found=[], q=request.path_params["good_id"], error="")
    key = str(good_id)
    return render(
        request,
        "product.html",
        v=v,
        reason=products.reason_text(v.reason, _lang(request)) if v.reason else "",
        went_out=state.get("feed.offers", key),
        acked=state.get("satu.acked", key),
        events=list(journal.search(product_id=key, limit=200))[::-1],
        local_time=data.local_time,
    )


def photo(request: Request) -> Response:
    s, _, _ = _stores(request)
    path = products.photo_file(s, request.query_params.get("name", ""))
    if path is None:
        return Response("no such photo", 404)
    try:
        return Response(products.thumbnail(path), media_type="image/jpeg")
    except OSError:
        return Response("unreadable photo", 404)


def quarantine_page(request: Request) -> HTMLResponse:
    s, _, _ = _stores(request)
    msg = request.query_params.get("msg", "")
    return render(request, "quarantine.html", files=quarantine.listing(s), msg=msg)


async def quarantine_action(request: Request) -> Response:
    form = await checked_form(request)
    if form is None:
        return refused(request)
    s, journal, _ = _stores(request)
    move = quarantine.retry if request.path_params["what"] == "retry" else quarantine.set_aside
    try:
        target = await run_in_threadpool(move, s, str(form.get("name") or ""), journal)
        msg = f"{form.get('name')} → {target.parent}"
    except PipelineError as exc:
        msg = str(exc)
    return RedirectResponse("/quarantine?" + urlencode({"msg": msg}), status_code=303)


def _log_query(request: Request) -> tuple[dict[str, Any], str]:
    """The log command's filters from the query string; a bad time gives a message, not a crash."""
    p = request.query_params
    filters: dict[str, Any] = {
        "grep": p.get("grep") or None,
        "level": p.get("level") if p.get("level") in LEVELS else None,
        "stage": p.get("stage") or None,
        "order_id": p.get("order") or None,
        "product_id": p.get("product") or None,
        "run_id": p.get("run") or None,
    }
    error = ""
    for key, end in (("since", False), ("until", True)):
        if p.get(key):
            try:
                filters[key] = parse_when(p[key], end=end)
            except ValueError as exc:
                error = f"{key}: {exc}"
    return filters, error


def log_page(request: Request) -> HTMLResponse:
    _, journal, _ = _stores(request)
    filters, error = _log_query(request)
    raw_limit = request.query_params.get("limit", "")
    limit = int(raw_limit) if raw_limit.isdigit() else 200  # 0 = all, as `log --limit 0`
    events = list(journal.search(**filters, limit=limit or None))[::-1]
    values = {k: request.query_params.get(k, "") for k in LOG_FILTERS}
    return render(
        request,
        "log.html",
        events=events,
        values=values,
        levels=list(LEVELS),
        error=error,
        local_time=data.local_time,
        limit=limit,
    )


def log_json(request: Request) -> JSONResponse:
    """Events after `after` matching the filters (for live.js)."""
    _, journal, _ = _stores(request)
    filters, _ = _log_query(request)
    after = request.query_params.get("after", "0")
    events = list(journal.search(**filters, after_id=int(after) if after.isdigit() else 0, limit=200))
    return JSONResponse([{**e.as_dict(), "local": data.local_time(e.ts)} for e in events])


def history_page(request: Request) -> HTMLResponse:
    s, _, _ = _stores(request)
    runs = data.history_runs(s)[::-1]
    stamp = request.query_params.get("stamp") or (runs[0]["stamp"] if runs else "")
    chosen = next((r for r in runs if r["stamp"] == stamp), None)
    diff = data.diff_lines(chosen["diff_file"]) if chosen else []
    return render(request, "history.html", runs=runs, chosen=chosen, diff=diff)


def settings_page(request: Request) -> HTMLResponse:
    s, _, _ = _stores(request)
    return render(request, "settings.html", report=settings_report(s), checks={})


async def settings_check(request: Request) -> Response:
    form = await checked_form(request)
    if form is None:
        return refused(request)
    s, _, _ = _stores(request)
    what = str(form.get("what") or "")
    checks = {what: await run_in_threadpool(check_connection, s, what)}
    return render(request, "settings.html", report=settings_report(s), checks=checks)


def actions_page(request: Request) -> HTMLResponse:
    actions: Actions = request.app.state.actions
    return render(request, "actions.html", names=list(ACTIONS), runs=actions.runs[::-1], datetime=datetime)


async def action_start(request: Request) -> Response:
    form = await checked_form(request)
    if form is None:
        return refused(request)
    actions: Actions = request.app.state.actions
    try:
        run = actions.start(request.path_params["name"])
    except PipelineError as exc:
        return HTMLResponse(str(exc), 404)
    return RedirectResponse(f"/actions/run/{run.id}", status_code=303)


def action_run(request: Request) -> Response:
    _, journal, _ = _stores(request)
    run = request.app.state.actions.get(request.path_params["run_id"])
    if run is None:
        return HTMLResponse("no such action run", 404)
    events = list(journal.search(run_id=run.id))
    return render(
        request, "action_run.html", run=run, events=events, local_time=data.local_time, datetime=datetime
    )


def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", error="")


async def login_post(request: Request) -> Response:
    form = await checked_form(request)
    if form is None:
        return refused(request)
    sessions: Sessions = request.app.state.sessions
    if not sessions.check_password(str(form.get("password") or "")):
        return render(request, "login.html", 401, error="wrong_password")
    # A new session id at login: a cookie planted before cannot ride into the logged-in session.
    sessions.drop(request.state.token)
    token, session = sessions.new()
    session.authenticated = True
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


async def logout(request: Request) -> Response:
    form = await checked_form(request)
    if form is None:
        return refused(request)
    request.app.state.sessions.drop(request.state.token)
    response = RedirectResponse("/login" if request.app.state.sessions.login_required else "/", 303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _stores(request: Request) -> tuple[Any, Journal, State]:
    st = request.app.state
    return st.settings, st.journal, st.state


def create_app(settings: Any, password: str = "") -> Starlette:
    """The web app over these settings; `password` empty = no login (the caller allows that on loopback only)."""
    routes = [
        Route("/", overview),
        Route("/orders", orders_page),
        Route("/orders/{order_id}", order_page),
        Route("/products", products_page),
        Route("/products/{good_id}", product_page),
        Route("/photo", photo),
        Route("/quarantine", quarantine_page),
        Route("/quarantine/{what:str}", quarantine_action, methods=["POST"]),
        Route("/log", log_page),
        Route("/log.json", log_json),
        Route("/history", history_page),
        Route("/settings", settings_page),
        Route("/settings/check", settings_check, methods=["POST"]),
        Route("/actions", actions_page),
        Route("/actions/run/{run_id}", action_run),
        Route("/actions/{name}", action_start, methods=["POST"]),
        Route("/login", login_page),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SessionMiddleware)])
    app.state.settings = settings
    app.state.journal = Journal(settings.journal.path, None)
    app.state.state = State.from_settings(settings)
    app.state.sessions = Sessions(password)
    app.state.allowed_hosts = None if password else {"127.0.0.1", "localhost", "::1", "[::1]"}
    app.state.actions = Actions(settings)
    app.state.env = Environment(
        loader=PackageLoader("pipeline.web", "templates"), autoescape=select_autoescape(["html"])
    )
    app.state.env.globals["urlencode"] = urlencode
    app.state.env.globals["reasons"] = products.REASONS
    app.state.env.globals["getenv_present"] = lambda var: bool(var and os.environ.get(var))
    return app
