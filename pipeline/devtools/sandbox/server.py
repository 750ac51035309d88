"""The sandbox's HTTP server: auth, fault injection and JSON in/out around the API handlers."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pipeline.devtools.sandbox.handlers import ApiHandlers
from pipeline.devtools.sandbox.vocab import API_PREFIX

#: the header that marks a control call as not coming from a web page (any value)
CONTROL_HEADER = "X-Sandbox"
#: the largest request body read (API and control calls; the real API's limits are lower still)
MAX_BODY = 8 * 1024 * 1024

_HTML_401 = (
    "<!DOCTYPE html>\n<html><head><title>401 Unauthorized</title></head>"
    "<body><h1>Unauthorized</h1><p>Авторизуйтесь, чтобы продолжить.</p></body></html>\n"
)
_HTML_403 = (
    "<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>"
    "<body><h1>Forbidden</h1><p>Недостаточно прав для этого действия.</p></body></html>\n"
)
_HTML_404 = (
    "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
    "<body><h1>Страница не найдена</h1></body></html>\n"
)
_HTML_500 = (
    "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>"
    "<body><h1>Internal Server Error</h1></body></html>\n"
)


class SandboxServer(ApiHandlers):
    """The Satu sandbox. `SandboxServer(state_dir).start()`; `.url` is the API base URL; `.stop()`.

    `token`: the API token it accepts (default: the one saved in the state folder, or a new random
    one). `readonly_token`: a token that may read but gets 403 on writes. `import_delay`: seconds an
    import stays PROCESSING (so concurrency can be observed). `appear_delay`: seconds before products
    an import created become visible to the API (Satu: 1–3 minutes).
    """

    # --- life cycle -----------------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Bind and serve in a background thread; returns self."""
        handler = type("Handler", (_Handler,), {"sandbox": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="satu-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (for the CLI)."""
        if self._httpd is None:
            self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving, wait for a running import, close the state file."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._import_thread is not None:
            self._import_thread.join(10)
        with self._lock:
            self._db.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        """`http://host:port` (control endpoints live under `/_sandbox/`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL, e.g. `http://127.0.0.1:PORT/api/v1` (what `[satu] base_url` takes)."""
        return self.root_url + API_PREFIX


class _Handler(BaseHTTPRequestHandler):
    """HTTP plumbing: auth, fault injection, JSON in/out. HTTP/1.1 keep-alive like the real API."""

    sandbox: SandboxServer
    protocol_version = "HTTP/1.1"
    # One segment per reply: unbuffered header and body writes plus Nagle and delayed ACKs would add
    # ~40 ms to every keep-alive request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server_version = "nginx"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and demo read the journal
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _send(
        self,
        status: int,
        payload: Any = None,
        *,
        html: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if status == 404 and html is None:
            html = _HTML_404  # Satu answers a missing order, product, import or endpoint with an HTML page
        if html is not None:
            raw, ctype = html.encode("utf-8"), "text/html; charset=utf-8"
        else:
            raw, ctype = json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _control_allowed(self) -> bool:
        """A control call carries the API token or the `X-Sandbox` header: a web page cannot send
        either cross-site without a CORS preflight, which the sandbox never grants."""
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        return bool(self.headers.get(CONTROL_HEADER)) or secrets.compare_digest(token, self.sandbox.token)

    def _dispatch(self, method: str) -> None:
        sb = self.sandbox
        parts = urlsplit(self.path)
        if parts.path.startswith("/_sandbox/") and not self._control_allowed():
            self.close_connection = True
            self._send(
                403, {"error": {"message": f"control calls need the {CONTROL_HEADER} header or the token"}}
            )
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            self._send(413, {"error": {"message": f"request body over {MAX_BODY} bytes"}})
            return
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, {"error": {"message": "request body is not valid JSON"}})
                return
        if parts.path.startswith("/_sandbox/"):
            status, reply = sb.handle_control(method, parts.path[len("/_sandbox") :], body or {})
            self._send(status, reply)
            return
        if not parts.path.startswith(API_PREFIX + "/"):
            self._send(404, html=_HTML_404)
            return
        path = parts.path[len(API_PREFIX) :]
        fault = sb._take_fault(path)
        if fault is not None:
            if fault.mode == "timeout":
                sb._stopping.wait(fault.delay)
                self.close_connection = True
                return
            if fault.mode == "429":
                headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                self._send(429, {"error": {"message": "Too many requests"}}, headers=headers)
                return
            if fault.mode == "200-error":
                self._send(200, {"error": "Внутренняя ошибка сервера. Попробуйте позже."})
                return
            self._send(int(fault.mode), html=_HTML_500)
            return
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if token is None or not (
            secrets.compare_digest(token, sb.token)
            or (sb.readonly_token and secrets.compare_digest(token, sb.readonly_token))
        ):
            self._send(401, html=_HTML_401)
            return
        if method == "POST" and token != sb.token:
            self._send(403, html=_HTML_403)
            return
        sb.last_language = self.headers.get("X-LANGUAGE")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            status, reply = sb.handle_api(method, path, query, body)
        except Exception as exc:  # a sandbox bug must show as a 500, like a real server
            status, reply = 500, {"error": {"message": f"sandbox internal error: {exc!r}"}}
        self._send(status, reply)
