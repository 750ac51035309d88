"""The one FTP/FTPS module: publish's `ftp`/`ftps` targets and the order-file sink both use it.

FTPS is explicit TLS (AUTH TLS, then PROT P so the data channel is encrypted too), with the server's
certificate checked against the system CAs or a given CA file. ftputil does the folder work (listing,
makedirs, rename, delete); uploads go through the session itself, because a transfer counts as done
only when the server answers 226/250 to STOR *and* the remote size equals the local one (SIZE, or
a directory listing on servers without SIZE). ftputil's own upload takes a `426 transfer aborted` for
success; here it is an `IncompleteUpload`, retried, and the cut file never goes live.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import posixpath
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pipeline.errors import PipelineError, RetryableError
from pipeline.publish.targets import (
    IncompleteUpload,
    Target,
    connect_error,
    one_line,
    translate_os,
    walk_cause,
)

BLOCK = 1 << 16


@dataclass(frozen=True)
class SettingNames:
    """Which settings an FTP target's messages point a person at (publish's, or the order-file sink's)."""

    host: str = "publish.host"
    port: str = "publish.port"
    ca_file: str = "[publish] tls_ca_file"
    login: str = "[publish] user and the password/key"


PUBLISH_SETTINGS = SettingNames()


def ftp_session_factory(
    tls: bool, port: int, timeout: float, ca_file: Path | None, opened: list[ftplib.FTP] | None = None
) -> Callable[..., Any]:
    """An ftputil session factory: plain FTP, or explicit TLS (AUTH TLS + PROT P, certificate checked).
    Each session it opens is appended to `opened` (the target stores files through it)."""

    base: type = ftplib.FTP_TLS if tls else ftplib.FTP

    class Session(base):  # type: ignore[misc, valid-type]
        def __init__(self, host: str, user: str, password: str):
            if tls:
                context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
                # Many FTP servers close the TLS data channel without close_notify. For uploads that
                # is harmless: the server's 226 reply on the (protected) control channel and the
                # remote size are what confirm the file arrived whole, and both are still required.
                context.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
                super().__init__(context=context, timeout=timeout, encoding="utf-8")
            else:
                super().__init__(timeout=timeout, encoding="utf-8")
            self.connect(host, port or 21)
            self.login(user, password)  # FTP_TLS.login sends AUTH TLS first
            if tls:
                self.prot_p()  # the data channel is encrypted too
            self.set_pasv(True)
            if opened is not None:
                opened.append(self)

    return Session


def _ftputil() -> Any:
    with warnings.catch_warnings():
        # ftputil 5 warns on import about its future default path encoding; sessions here are UTF-8.
        warnings.simplefilter("ignore", DeprecationWarning)
        import ftputil
        import ftputil.error
    return ftputil


class FtpTarget(Target):
    """FTP or explicit FTPS: folders through ftputil, files stored and checked through the session.

    `names` are the settings its error messages point at (publish's by default; the order-file sink
    passes its own).
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        root: str,
        *,
        tls: bool,
        timeout: float,
        ca_file: Path | None,
        names: SettingNames = PUBLISH_SETTINGS,
    ):
        self.host, self.port, self.user, self.password = host, port, user, password
        self.root = root or "/"
        self.tls, self.timeout, self.ca_file, self.names = tls, timeout, ca_file, names
        self.label = (
            f"{'FTPS' if tls else 'FTP'} server {host}:{port or 21} (user {user!r}, folder {self.root})"
        )
        self._ftp: Any = None
        self._session: Any = None
        self._dirs: set[str] = set()

    def _abs(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if rel else self.root

    def connect(self) -> None:
        ftputil = _ftputil()
        opened: list[ftplib.FTP] = []
        factory = ftp_session_factory(self.tls, self.port, self.timeout, self.ca_file, opened)
        try:
            self._ftp = ftputil.FTPHost(self.host, self.user, self.password, session_factory=factory)
        except Exception as exc:
            err = self._login_or_tls_error(exc, f"connecting to {self.label}") or connect_error(
                exc, self.label, self.host, self.port, keys=(self.names.host, self.names.port)
            )
            if err is None:
                raise
            raise err from exc
        self._session = opened[-1]
        self._dirs = set()

    def close(self) -> None:
        if self._ftp is not None:
            with contextlib.suppress(Exception):
                self._ftp.close()
        self._ftp = self._session = None

    def listing(self) -> dict[str, int]:
        out: dict[str, int] = {}
        ftp = self._ftp
        if not ftp.path.isdir(self.root):
            return out
        with warnings.catch_warnings():
            # ftputil warns about time shifts for any stat; only sizes are used here.
            warnings.simplefilter("ignore", DeprecationWarning)
            for dirpath, _dirs, files in ftp.walk(self.root):
                for f in files:
                    full = posixpath.join(dirpath, f)
                    out[posixpath.relpath(full, self.root)] = ftp.lstat(full).st_size
        return out

    def _makedirs(self, rel_dir: str) -> None:
        if rel_dir not in self._dirs:
            self._ftp.makedirs(self._abs(rel_dir), exist_ok=True)
            self._dirs.add(rel_dir)

    def put(self, local: Path, remote: str) -> None:
        with open(local, "rb") as fh:
            self._store(fh, remote, local.stat().st_size)

    def put_bytes(self, data: bytes, remote: str) -> None:
        """Upload `data` as a file (same checks as `put`)."""
        self._store(io.BytesIO(data), remote, len(data))

    def _store(self, fh: IO[bytes], remote: str, expected: int) -> None:
        self._makedirs(posixpath.dirname(remote))
        path = self._abs(remote)
        session = self._session
        session.voidcmd("TYPE I")
        conn = session.transfercmd(f"STOR {path}")
        try:
            while block := fh.read(BLOCK):
                conn.sendall(block)
            if isinstance(conn, ssl.SSLSocket):
                with contextlib.suppress(ssl.SSLError, OSError):
                    conn.unwrap()  # the server's reply below is what counts, not close_notify
        finally:
            conn.close()
        try:
            session.voidresp()
        except (ftplib.error_temp, ftplib.error_reply) as exc:
            raise IncompleteUpload(
                f"the server did not confirm the upload of {path} ({one_line(str(exc))})"
            ) from exc
        size = self._remote_size(path)
        if size != expected:
            raise IncompleteUpload(f"{path} on the server has {size} of {expected} bytes: the upload was cut")

    def _remote_size(self, path: str) -> int | None:
        """The file's size on the server: SIZE, or the folder listing where SIZE is not offered."""
        try:
            size = self._session.size(path)
        except ftplib.error_perm:
            size = None
        if size is not None:
            return int(size)
        self._ftp.stat_cache.invalidate(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return int(self._ftp.lstat(path).st_size)

    def replace(self, tmp: str, live: str) -> None:
        ftputil = _ftputil()
        self._ftp.stat_cache.invalidate(self._abs(live))
        try:
            self._ftp.rename(self._abs(tmp), self._abs(live))
        except ftputil.error.PermanentError:
            # Some servers refuse RNTO onto an existing file: delete the live one, then rename.
            # The file is missing for the moment between the two commands — the best such a server allows.
            if not self._ftp.path.exists(self._abs(live)):
                raise
            self._ftp.remove(self._abs(live))
            self._ftp.rename(self._abs(tmp), self._abs(live))

    def remove(self, remote: str) -> None:
        ftputil = _ftputil()
        with contextlib.suppress(ftputil.error.PermanentError):
            self._ftp.remove(self._abs(remote))

    def _login_or_tls_error(self, exc: BaseException, what: str) -> PipelineError | None:
        for e in walk_cause(exc):
            if isinstance(e, ssl.SSLCertVerificationError):
                return PipelineError(
                    f"{what}: the server's TLS certificate is not trusted ({e.verify_message}); "
                    f"set {self.names.ca_file} to the CA or certificate that signed it"
                )
            if isinstance(e, ftplib.error_perm) and str(e)[:3] == "530":
                return PipelineError(f"{what}: login refused — check {self.names.login}")
        return None

    def translate(self, exc: BaseException, what: str) -> PipelineError:
        if isinstance(exc, PipelineError):
            return exc
        known = self._login_or_tls_error(exc, what)
        if known is not None:
            return known
        ftputil = _ftputil()
        err = ftputil.error
        if isinstance(exc, err.FTPError):
            # strerror, not str(): ftputil appends a "Debugging info: ftputil …" second line.
            text = one_line(exc.strerror or type(exc).__name__)
            if isinstance(
                exc, err.TemporaryError | err.FTPIOError | err.FTPOSError | err.InaccessibleLoginDirError
            ):
                return RetryableError(f"{what}: {text}")
            return PipelineError(f"{what}: {text}")
        if isinstance(exc, ftplib.error_temp | ftplib.error_reply | ftplib.error_proto):
            return RetryableError(f"{what}: {one_line(str(exc))}")
        if isinstance(exc, ftplib.error_perm):
            return PipelineError(f"{what}: {one_line(str(exc))}")
        return translate_os(exc, what)
