"""Publish targets: one class per way of putting files where the web host serves them.

Every target offers the same few operations on paths relative to its root (`connect`, `close`,
`listing`, `put`, `replace`, `remove`) and translates its own library's exceptions into
`pipeline.errors` types in `translate`, by type (`isinstance`), at its own boundary. The retry session
(`pipeline.publish.session`) only ever sees `RetryableError` (try again), `StopError`/`AuthError`
(a person must act) or another `PipelineError`.

`put` returns only when the whole file is on the server: a transfer the server did not confirm, or
whose remote size differs from the local one, raises `IncompleteUpload` (retryable).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError, RetryableError

if TYPE_CHECKING:
    from pipeline.settings import Settings


class IncompleteUpload(RetryableError):
    """The server did not end up with the whole file (a cut transfer, a 426 reply, a size mismatch)."""


class Target:
    """One way of putting files where the web host serves them. Paths are relative to the root."""

    label = "target"

    def connect(self) -> None:
        """Open the connection (no-op for local)."""

    def close(self) -> None:
        """Close the connection; never raises."""

    def listing(self) -> dict[str, int]:
        """Every file under the root: relative path → size."""
        raise NotImplementedError

    def put(self, local: Path, remote: str) -> None:
        """Upload a local file to a path (parent folders are created); returns only when the server
        holds the whole file, else raises (`IncompleteUpload` when it holds a part)."""
        raise NotImplementedError

    def replace(self, tmp: str, live: str) -> None:
        """Rename tmp over live in one step (or as close to it as the server allows)."""
        raise NotImplementedError

    def remove(self, remote: str) -> None:
        """Delete a file (missing is fine)."""
        raise NotImplementedError

    def translate(self, exc: BaseException, what: str) -> PipelineError:
        """This target's foreign exception → a `pipeline.errors` type (see the module docstring)."""
        return translate_os(exc, what)


def one_line(text: str) -> str:
    """A message as one journal/console line: one event is one line."""
    return " ".join(str(text).split())


def translate_os(exc: BaseException, what: str) -> PipelineError:
    """The common part of every target's translation: our own errors pass, OS errors by type."""
    if isinstance(exc, PipelineError):
        return exc
    text = one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError):
        return PipelineError(f"{what}: {text}")
    if isinstance(exc, socket.timeout | TimeoutError | ConnectionError | EOFError | OSError):
        return RetryableError(f"{what}: {text}")
    return PipelineError(f"{what}: {type(exc).__name__}: {text}")


def walk_cause(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the exceptions behind it (`__cause__`, `__context__`), each once."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def connect_error(
    exc: BaseException,
    label: str,
    host: str,
    port: int,
    *,
    keys: tuple[str, str] = ("publish.host", "publish.port"),
) -> PipelineError | None:
    """A failure to reach the server at all (`exc` or one behind it), as a message naming the setting,
    what was tried and the fix; None when it is not such a failure. A name that does not resolve is not
    retried: it will not resolve on the next attempt either."""
    for cause in walk_cause(exc):
        err = _connect_error(cause, label, host, port, keys)
        if err is not None:
            return err
    return None


def _connect_error(
    exc: BaseException, label: str, host: str, port: int, keys: tuple[str, str]
) -> PipelineError | None:
    host_key, port_key = keys
    tried = f"tried {label} ({host_key} = {host!r}, {port_key} = {port})"
    if host_key == port_key:
        tried = f"tried {label} ({host_key})"
    if isinstance(exc, socket.gaierror):
        if exc.errno == socket.EAI_AGAIN:
            return RetryableError(f"cannot resolve {host!r} right now: {tried} — DNS did not answer")
        return PipelineError(
            f"the host name {host!r} does not resolve: {tried} — "
            f"fix {host_key} (the server name your web host gave you)"
        )
    if isinstance(exc, ConnectionRefusedError):
        return RetryableError(
            f"connection refused: {tried} — check {host_key} and {port_key}, and that the server is up"
        )
    if isinstance(exc, socket.timeout | TimeoutError):
        return RetryableError(
            f"no answer (timed out): {tried} — check {host_key} and {port_key}, "
            f"a firewall, or raise the timeout"
        )
    if isinstance(exc, OSError) and exc.errno is not None:
        return RetryableError(
            f"cannot connect ({one_line(exc.strerror or str(exc))}): {tried} — "
            f"check {host_key} and {port_key}"
        )
    return None


def make_target(settings: Settings) -> Target:
    """The configured target; secrets are read from the environment here (never logged)."""
    p = settings.publish
    if p.target == "local":
        from pipeline.publish.targets.local import LocalTarget

        return LocalTarget(p.local_dir)
    if p.target in ("ftp", "ftps"):
        from pipeline.publish.targets.ftp import FtpTarget

        return FtpTarget(
            p.host,
            p.port,
            p.user,
            settings.secret("publish.password_env"),
            p.remote_dir,
            tls=p.target == "ftps",
            timeout=p.timeout,
            ca_file=p.tls_ca_file,
        )
    from pipeline.publish.targets.sftp import SftpTarget

    password = settings.secret("publish.password_env", required=p.key_file is None)
    return SftpTarget(
        p.host,
        p.port,
        p.user,
        password,
        p.remote_dir,
        key_file=p.key_file,
        host_key=p.host_key,
        known_hosts=p.known_hosts,
        timeout=p.timeout,
    )


def target_identity(settings: Settings) -> str:
    """What the manifest is valid for: another server or folder means starting over."""
    p = settings.publish
    if p.target == "local":
        return f"local|{Path(p.local_dir).resolve()}"
    return f"{p.target}|{p.host}|{p.port}|{p.user}|{p.remote_dir}"
