"""The control room: a local web page showing what the exchange did, and letting a person act.

`run.py web` serves it in the foreground; `start_in_thread(settings)` serves it beside `serve`.
Binding to anything but loopback needs `[web] password_env` (see `security.py`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pipeline.errors import Problem, SettingsError
from pipeline.web.security import is_loopback


def password_for(settings: Any, host: str) -> str:
    """The login password for binding to `host`; a SettingsError when a non-loopback bind has none."""
    password = settings.secret("web.password_env") if settings.web.password_env else ""
    if not password and not is_loopback(host):
        raise SettingsError(
            Problem(
                "web.password_env",
                f"the web page would listen on {host}, beyond this computer, without a password",
                "name an environment variable holding a password in [web] password_env (and set it), "
                "or keep [web] host = 127.0.0.1",
            )
        )
    return password


def make_server(settings: Any, host: str | None = None, port: int | None = None) -> Any:
    """A uvicorn server for the app (not started); host/port default to `[web]`."""
    import uvicorn

    from pipeline.web.app import create_app

    host = host or settings.web.host
    port = settings.web.port if port is None else port
    app = create_app(settings, password_for(settings, host))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


@dataclass
class WebHandle:
    """A web page served by a background thread; `.stop()` ends it, `.url` is where it listens."""

    server: Any
    thread: threading.Thread
    url: str

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish its requests and wait for the thread."""
        self.server.should_exit = True
        self.thread.join(timeout)


def start_in_thread(
    settings: Any, host: str | None = None, port: int | None = None, timeout: float = 15.0
) -> WebHandle:
    """Serve the page in a daemon thread (for `serve`); returns once it listens. Port 0 = any free port."""
    server = make_server(settings, host, port)
    thread = threading.Thread(target=server.run, daemon=True, name="web")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise OSError(f"the web page could not listen on {server.config.host}:{server.config.port}")
        time.sleep(0.05)
    sock = server.servers[0].sockets[0].getsockname()
    host_shown = sock[0] if ":" not in sock[0] else f"[{sock[0]}]"
    return WebHandle(server, thread, f"http://{host_shown}:{sock[1]}/")
