"""The `sftp` target: paramiko, with the server's host key checked against a pinned key.

The key comes from `[publish] host_key` or the `known_hosts` file; an unknown or different key is
refused, never accepted blindly. `put` confirms the remote size after the upload.
"""

from __future__ import annotations

import base64
import contextlib
import posixpath
import stat as statmod
from pathlib import Path
from typing import Any

import paramiko

from pipeline.errors import PipelineError, Problem, RetryableError, SettingsError, StopError
from pipeline.publish.targets import Target, connect_error, one_line, translate_os, walk_cause


class UnknownHostKey(StopError):
    """The server's host key is not pinned: refused, never added."""


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Never AutoAddPolicy: a key that is not pinned is refused, with our own error type."""

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        raise UnknownHostKey(
            f"the SFTP server's host key is unknown ({key.get_name()} for {hostname}) — set "
            f"[publish] host_key or add it to the known_hosts file; it is never accepted blindly"
        )


class SftpTarget(Target):
    """SFTP through paramiko, with the server's host key checked against a pinned key."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        root: str,
        *,
        key_file: Path | None,
        host_key: str,
        known_hosts: Path | None,
        timeout: float,
    ):
        self.host, self.port, self.user, self.password = host, port or 22, user, password
        self.root = root or "/"
        self.key_file, self.host_key, self.known_hosts, self.timeout = (
            key_file,
            host_key,
            known_hosts,
            timeout,
        )
        self.label = f"sftp://{user}@{host}:{self.port}{self.root}"
        self._client: Any = None
        self._sftp: Any = None
        self._dirs: set[str] = set()

    def _abs(self, rel: str) -> str:
        return posixpath.join(self.root, rel)

    def _pinned_keys(self, client: Any) -> None:
        if self.known_hosts is not None:
            client.load_host_keys(str(self.known_hosts))
        if self.host_key:
            parts = self.host_key.split()
            if len(parts) < 2:
                raise SettingsError(
                    Problem(
                        "publish.host_key",
                        'is not "<type> <base64>"',
                        "copy the key line, e.g. from ssh-keyscan",
                    )
                )
            try:
                key = paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1]))
            except Exception as exc:
                raise SettingsError(
                    Problem(
                        "publish.host_key",
                        f"cannot be read: {exc}",
                        "copy the key line, e.g. from ssh-keyscan",
                    )
                ) from None
            names = [self.host] if self.port == 22 else [f"[{self.host}]:{self.port}"]
            for name in names:
                client.get_host_keys().add(name, parts[0], key)

    def connect(self) -> None:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_RejectUnknown())
        self._pinned_keys(client)
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.user,
                password=self.password or None,
                key_filename=str(self.key_file) if self.key_file else None,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                allow_agent=False,
                look_for_keys=False,
            )
            self._sftp = client.open_sftp()
            self._sftp.get_channel().settimeout(self.timeout)
        except Exception as exc:
            client.close()
            err = self._key_or_login_error(exc, f"connecting to {self.label}") or connect_error(
                exc, self.label, self.host, self.port
            )
            if err is None:
                raise
            raise err from exc
        except BaseException:
            client.close()
            raise
        self._client = client
        self._dirs = set()

    def close(self) -> None:
        for obj in (self._sftp, self._client):
            if obj is not None:
                with contextlib.suppress(Exception):
                    obj.close()
        self._sftp = self._client = None

    def listing(self) -> dict[str, int]:
        out: dict[str, int] = {}
        stack = [""]
        while stack:
            rel = stack.pop()
            try:
                entries = self._sftp.listdir_attr(self._abs(rel) if rel else self.root)
            except FileNotFoundError:
                continue
            for e in entries:
                child = posixpath.join(rel, e.filename) if rel else e.filename
                if statmod.S_ISDIR(e.st_mode or 0):
                    stack.append(child)
                else:
                    out[child] = e.st_size or 0
        return out

    def _makedirs(self, rel_dir: str) -> None:
        if not rel_dir or rel_dir in self._dirs:
            return
        path = "/" if self.root.startswith("/") else ""
        # From the top: remote_dir itself may not exist yet on a fresh account.
        for part in [*self.root.strip("/").split("/"), *rel_dir.split("/")]:
            if not part:
                continue
            path = posixpath.join(path, part) if path else part
            try:
                self._sftp.stat(path)
            except FileNotFoundError:
                self._sftp.mkdir(path)
        self._dirs.add(rel_dir)

    def put(self, local: Path, remote: str) -> None:
        self._makedirs(posixpath.dirname(remote))
        # confirm=True: the size is checked on the server after the upload.
        self._sftp.put(str(local), self._abs(remote), confirm=True)

    def replace(self, tmp: str, live: str) -> None:
        try:
            self._sftp.posix_rename(self._abs(tmp), self._abs(live))
        except OSError as exc:
            # paramiko raises a bare IOError (no errno, no subclass) for SFTP's OP_UNSUPPORTED status,
            # so its text is the only sign that the server lacks the extension.
            if "unsupported" not in str(exc).lower() and "not supported" not in str(exc).lower():
                raise
            # Server without the posix-rename extension: plain SFTP rename cannot overwrite.
            with contextlib.suppress(FileNotFoundError):
                self._sftp.remove(self._abs(live))
            self._sftp.rename(self._abs(tmp), self._abs(live))

    def remove(self, remote: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._sftp.remove(self._abs(remote))

    def _key_or_login_error(self, exc: BaseException, what: str) -> PipelineError | None:
        for e in walk_cause(exc):
            if isinstance(e, PipelineError):
                return e
            if isinstance(e, paramiko.BadHostKeyException):
                return StopError(
                    f"{what}: the SFTP server's host key does NOT match the pinned key "
                    f"([publish] host_key / known_hosts) — refusing to connect (possible "
                    f"man-in-the-middle, or the server was reinstalled: verify and update the key)"
                )
            if isinstance(e, paramiko.AuthenticationException):
                return PipelineError(f"{what}: login refused — check [publish] user and the password/key")
        return None

    def translate(self, exc: BaseException, what: str) -> PipelineError:
        known = self._key_or_login_error(exc, what)
        if known is not None:
            return known
        if isinstance(exc, paramiko.SSHException):
            return RetryableError(f"{what}: {one_line(str(exc)) or type(exc).__name__}")
        return translate_os(exc, what)
