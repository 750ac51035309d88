"""Sessions, login and CSRF for the web page.

Every visitor gets a server-side session (an unguessable id in an HttpOnly, SameSite=Strict cookie)
holding a CSRF token; every POST must carry that token, so a page elsewhere in the browser cannot
trigger an action even on loopback. With `[web] password_env` set, every page but the login page
needs a logged-in session. The password is compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass, field

COOKIE = "tss_session"
SESSION_SECONDS = 12 * 3600


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Session:
    """One browser's session."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    authenticated: bool = False
    last_seen: float = field(default_factory=time.time)


class Sessions:
    """Sessions kept in memory (a restart logs everyone out, which is fine for a local page)."""

    def __init__(self, password: str = ""):
        self.password = password
        self._sessions: dict[str, Session] = {}
        self._mutex = threading.Lock()

    @property
    def login_required(self) -> bool:
        """True when a password is configured."""
        return bool(self.password)

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie value, or None."""
        if not token:
            return None
        with self._mutex:
            s = self._sessions.get(token)
            if s is None or time.time() - s.last_seen > SESSION_SECONDS:
                self._sessions.pop(token, None)
                return None
            s.last_seen = time.time()
            return s

    def new(self) -> tuple[str, Session]:
        """A fresh anonymous session and its cookie value."""
        token = secrets.token_urlsafe(32)
        s = Session()
        with self._mutex:
            cutoff = time.time() - SESSION_SECONDS
            for k in [k for k, v in self._sessions.items() if v.last_seen < cutoff]:
                del self._sessions[k]
            self._sessions[token] = s
        return token, s

    def drop(self, token: str | None) -> None:
        """End a session (log out)."""
        with self._mutex:
            self._sessions.pop(token or "", None)

    def check_password(self, given: str) -> bool:
        """Constant-time comparison with the configured password."""
        return bool(self.password) and hmac.compare_digest(given.encode(), self.password.encode())


def csrf_ok(session: Session | None, given: str | None) -> bool:
    """True when the form's token is this session's."""
    return session is not None and bool(given) and hmac.compare_digest(session.csrf, str(given))
