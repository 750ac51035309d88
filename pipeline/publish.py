"""The publish stage: upload changed photos, then the feed atomically, to where Satu pulls them.

Targets: `local` (a folder served by a web server), `ftp` / `ftps` (ftputil; explicit TLS with the
data channel protected too), `sftp` (paramiko; the server's host key must match `[publish] host_key`
or the `known_hosts` file — an unknown or different key is refused, never accepted blindly).

What is uploaded: every photo the photos stage published (`photos.published` in state) and the feed
file `[feed] output` plus its companion files next to it (`<feed stem>*.xlsx`, `<feed stem>*.csv`).
A manifest in local state (remote path → content hash) remembers what the server holds; only what
changed is uploaded. On the first run against a target, or with `verify`, the server is listed and
the manifest corrected from what is really there. A manifest entry is written only after its file
was uploaded completely, so a run killed mid-way uploads just what is missing the next time.

Order matters: photos first (the new feed may refer to them), then each feed file under a
temporary name renamed over the live one (SFTP posix-rename; FTP RNFR/RNTO, or delete-then-rename on
servers that refuse to overwrite), so Satu never downloads half a feed. Photos no product refers to
any more are deleted only after the new feed is live, only with `delete_orphans`, and never more
than `[feed] max_drop_percent` of the published photos at once (unless forced).

Network errors are retried with exponential backoff (`[publish] retries`), reconnecting each time;
foreign exceptions become RetryableError (transient) or PipelineError (needs a person).
"""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import os
import posixpath
import random
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import PipelineError, Problem, RetryableError, SettingsError, StopError
from pipeline.photo_urls import PUBLISHED_NS, join_url
from pipeline.progress import Progress
from pipeline.settings import Settings
from pipeline.stage import ResultBase, StopCheck, never_stop

STAGE = "publish"
MANIFEST_NS = "publish.manifest"
META_NS = "publish.meta"
PHOTO_DIR = "photos"
# Journal one event per this many uploaded photos (with their names), not one per file.
JOURNAL_BATCH = 100
URL_SAMPLE = 5
T = TypeVar("T")


@dataclass
class PublishResult(ResultBase):
    """What the publish stage did (or, in a dry run, would do)."""

    uploaded: int = 0
    photos_uploaded: int = 0
    feed_files_uploaded: int = 0
    unchanged: int = 0
    deleted: int = 0
    orphans: int = 0
    orphans_kept: int = 0
    failed: int = 0
    retries: int = 0
    feed_published: bool = False
    feed_url: str = ""
    unreachable: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    ok: bool = True


@dataclass(frozen=True)
class Item:
    """A file to have on the server: its path under remote_dir, local source and content hash."""

    remote: str
    local: Path
    hash: str
    size: int
    atomic: bool = False


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def feed_files(settings: Settings) -> list[Path]:
    """The feed file and its companions (`<stem>*.xlsx|csv` next to it), feed last."""
    feed = Path(settings.feed.output)
    companions = (
        sorted(
            p
            for p in feed.parent.glob(f"{feed.stem}*")
            if p.is_file() and p.suffix.lower() in (".xlsx", ".csv")
        )
        if feed.parent.exists()
        else []
    )
    return [*companions, feed]


def _tmp_name(remote: str) -> str:
    head, tail = posixpath.split(remote)
    # A fixed name: a temp file left by a killed run is simply overwritten by the next one.
    return posixpath.join(head, f".{tail}.uploading")


def _walk_cause(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__ or getattr(cur, "original_error", None)


def translate(exc: BaseException, what: str) -> PipelineError:
    """A foreign exception from ftplib/ftputil/paramiko/OS → RetryableError or PipelineError."""
    if isinstance(exc, PipelineError):
        return exc
    chain = list(_walk_cause(exc))
    text = str(exc) or type(exc).__name__
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return PipelineError(
                f"{what}: the server's TLS certificate is not trusted ({e.verify_message}); "
                f"set [publish] tls_ca_file to the CA or certificate that signed it"
            )
        if type(e).__name__ == "BadHostKeyException":
            return StopError(
                f"{what}: the SFTP server's host key does NOT match the pinned key "
                f"([publish] host_key / known_hosts) — refusing to connect (possible "
                f"man-in-the-middle, or the server was reinstalled: verify and update the key)"
            )
        if type(e).__name__ == "AuthenticationException" or (
            isinstance(e, ftplib.error_perm) and str(e).startswith("530")
        ):
            return PipelineError(f"{what}: login refused — check [publish] user and the password/key")
        if type(e).__name__ == "SSHException" and "known_hosts" in str(e):
            return StopError(
                f"{what}: the SFTP server's host key is unknown ({e}) — set [publish] host_key "
                f"or add it to the known_hosts file; it is never accepted blindly"
            )
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith("ftputil"):
        if name in ("TemporaryError", "FTPIOError", "FTPOSError") or name == "InaccessibleLoginDirError":
            return RetryableError(f"{what}: {text}")
        return PipelineError(f"{what}: {text}")
    if isinstance(exc, ftplib.error_temp | ftplib.error_reply | ftplib.error_proto):
        return RetryableError(f"{what}: {text}")
    if isinstance(exc, ftplib.error_perm):
        return PipelineError(f"{what}: {text}")
    if module.startswith("paramiko"):
        return RetryableError(f"{what}: {text}")
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError):
        return PipelineError(f"{what}: {text}")
    if isinstance(exc, socket.timeout | TimeoutError | ConnectionError | EOFError | OSError):
        return RetryableError(f"{what}: {text}")
    return PipelineError(f"{what}: {name}: {text}")


# --- targets ---------------------------------------------------------------------------------------


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
        """Upload a local file to a path (parent folders are created)."""
        raise NotImplementedError

    def replace(self, tmp: str, live: str) -> None:
        """Rename tmp over live in one step (or as close to it as the server allows)."""
        raise NotImplementedError

    def remove(self, remote: str) -> None:
        """Delete a file (missing is fine)."""
        raise NotImplementedError


class LocalTarget(Target):
    """A folder on this machine (served by a local web server)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.label = f"local folder {self.root}"

    def connect(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def listing(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if not self.root.exists():
            return out
        for dirpath, _dirs, files in os.walk(self.root):
            for f in files:
                p = Path(dirpath) / f
                out[p.relative_to(self.root).as_posix()] = p.stat().st_size
        return out

    def put(self, local: Path, remote: str) -> None:
        dest = self.root / remote
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.uploading")
        with open(local, "rb") as src, open(tmp, "wb") as out:
            while block := src.read(1 << 20):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)

    def replace(self, tmp: str, live: str) -> None:
        os.replace(self.root / tmp, self.root / live)

    def remove(self, remote: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / remote).unlink()


def ftp_session_factory(tls: bool, port: int, timeout: float, ca_file: Path | None) -> Callable[..., Any]:
    """An ftputil session factory: plain FTP, or explicit TLS (AUTH TLS + PROT P, certificate checked)."""

    base: type = ftplib.FTP_TLS if tls else ftplib.FTP

    class Session(base):  # type: ignore[misc, valid-type]
        def __init__(self, host: str, user: str, password: str):
            if tls:
                context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
                # Many FTP servers close the TLS data channel without close_notify. For uploads that
                # is harmless: the server's 226 reply on the (protected) control channel is what
                # confirms the file arrived whole, and that reply is still required.
                context.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
                super().__init__(context=context, timeout=timeout, encoding="utf-8")
            else:
                super().__init__(timeout=timeout, encoding="utf-8")
            self.connect(host, port or 21)
            self.login(user, password)  # FTP_TLS.login sends AUTH TLS first
            if tls:
                self.prot_p()  # the data channel is encrypted too
            self.set_pasv(True)

    return Session


def _ftputil() -> Any:
    with warnings.catch_warnings():
        # ftputil 5 warns on import about its future default path encoding; sessions here are UTF-8.
        warnings.simplefilter("ignore", DeprecationWarning)
        import ftputil
        import ftputil.error
    return ftputil


class FtpTarget(Target):
    """FTP or explicit FTPS through ftputil."""

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
    ):
        self.host, self.port, self.user, self.password = host, port, user, password
        self.root = root or "/"
        self.tls, self.timeout, self.ca_file = tls, timeout, ca_file
        self.label = f"{'ftps' if tls else 'ftp'}://{user}@{host}:{port or 21}{self.root}"
        self._ftp: Any = None
        self._dirs: set[str] = set()

    def _abs(self, rel: str) -> str:
        return posixpath.join(self.root, rel)

    def connect(self) -> None:
        ftputil = _ftputil()
        factory = ftp_session_factory(self.tls, self.port, self.timeout, self.ca_file)
        self._ftp = ftputil.FTPHost(self.host, self.user, self.password, session_factory=factory)
        self._dirs = set()

    def close(self) -> None:
        if self._ftp is not None:
            with contextlib.suppress(Exception):
                self._ftp.close()
        self._ftp = None

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
        if rel_dir and rel_dir not in self._dirs:
            self._ftp.makedirs(self._abs(rel_dir), exist_ok=True)
            self._dirs.add(rel_dir)

    def put(self, local: Path, remote: str) -> None:
        self._makedirs(posixpath.dirname(remote))
        self._ftp.upload(str(local), self._abs(remote))

    def replace(self, tmp: str, live: str) -> None:
        ftputil = _ftputil()
        try:
            self._ftp.rename(self._abs(tmp), self._abs(live))
        except ftputil.error.PermanentError:
            # Some servers refuse RNTO onto an existing file: delete the live one, then rename.
            # The feed is missing for the moment between the two commands — the best such a server allows.
            if not self._ftp.path.exists(self._abs(live)):
                raise
            self._ftp.remove(self._abs(live))
            self._ftp.rename(self._abs(tmp), self._abs(live))

    def remove(self, remote: str) -> None:
        ftputil = _ftputil()
        with contextlib.suppress(ftputil.error.PermanentError):
            self._ftp.remove(self._abs(remote))


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
        import base64

        import paramiko

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
        import paramiko

        client = paramiko.SSHClient()
        # Never AutoAddPolicy: a key that is not pinned is refused.
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
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
        import stat as statmod

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
            if "unsupported" not in str(exc).lower() and "not supported" not in str(exc).lower():
                raise
            # Server without the posix-rename extension: plain SFTP rename cannot overwrite.
            with contextlib.suppress(FileNotFoundError):
                self._sftp.remove(self._abs(live))
            self._sftp.rename(self._abs(tmp), self._abs(live))

    def remove(self, remote: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._sftp.remove(self._abs(remote))


def make_target(settings: Settings) -> Target:
    """The configured target; secrets are read from the environment here (never logged)."""
    p = settings.publish
    if p.target == "local":
        return LocalTarget(p.local_dir)
    if p.target in ("ftp", "ftps"):
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


# --- the stage ---------------------------------------------------------------------------------------


class _Session:
    """A target plus retry-with-reconnect around every operation."""

    def __init__(
        self, target: Target, retries: int, journal: Any, result: PublishResult, backoff: float = 1.0
    ):
        self.target = target
        self.retries = retries
        self.journal = journal
        self.result = result
        self.backoff = backoff
        self.connected = False

    def _connect(self) -> None:
        if not self.connected:
            self.target.connect()
            self.connected = True
            self.journal.event(STAGE, f"connected to {self.target.label}")

    def call(self, what: str, op: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                self._connect()
                return op()
            except Exception as exc:
                err = translate(exc, f"{what} ({self.target.label})")
                if not isinstance(err, RetryableError) or attempt >= self.retries:
                    if err is exc:
                        raise
                    raise err from exc
                attempt += 1
                self.result.retries += 1
                delay = min(self.backoff * 2 ** (attempt - 1), 30.0) * (0.75 + random.random() / 2)
                self.journal.event(
                    STAGE, f"{err} — retry {attempt}/{self.retries} in {delay:.1f} s", "warning"
                )
                self.close()
                time.sleep(delay)

    def close(self) -> None:
        self.target.close()
        self.connected = False


def _photo_items(settings: Settings, state: Any) -> tuple[dict[str, Item], list[str]]:
    cache_dir = Path(settings.photos.cache_dir)
    items: dict[str, Item] = {}
    missing: list[str] = []
    for _source, entry in state.items(PUBLISHED_NS):
        if not entry.get("ok") or not entry.get("name"):
            continue
        name = entry["name"]
        if name in items:
            continue
        local = cache_dir / name
        try:
            size = local.stat().st_size
        except OSError:
            missing.append(name)
            continue
        # Names are content hashes (source bytes + photo settings): same name, same content.
        items[name] = Item(name, local, Path(name).stem, size)
    return items, missing


def _check_urls(urls: list[str], timeout: float) -> list[str]:
    """URLs that do not answer HEAD with 200 (with the reason)."""
    import httpx

    bad: list[str] = []
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        for url in urls:
            try:
                status = client.head(url).status_code
            except httpx.HTTPError as exc:
                bad.append(f"{url} ({type(exc).__name__}: {exc})")
                continue
            if status != 200:
                bad.append(f"{url} (HTTP {status})")
    return bad


def run(
    settings: Settings,
    *,
    journal: Any,
    state: Any,
    verify: bool = False,
    dry_run: bool = False,
    force: bool = False,
    feed_only: bool = False,
    progress: bool = True,
    backoff: float = 1.0,
    should_stop: StopCheck = never_stop,  # honoured by the upload loop (r-publish)
) -> PublishResult:
    """Upload what changed: photos first, then the feed files atomically; optionally prune orphans.

    verify: list the server and correct the manifest first (automatic on the first run to a target).
    dry_run: only count what would be uploaded. force: lift the orphan-deletion guard.
    feed_only (partial sync): no verification and no orphan pruning; photos the feed needs that are
    not on the server yet are still uploaded first (normally none).
    """
    result = PublishResult(dry_run=dry_run)
    p = settings.publish
    feed_path = Path(settings.feed.output)
    result.feed_url = join_url(p.public_base_url, feed_path.name)
    identity = target_identity(settings)
    manifest: dict[str, dict[str, Any]] = dict(state.items(MANIFEST_NS))
    if state.get(META_NS, "target") != identity:
        # A new server or folder: what the manifest says is about another place.
        manifest = {}
        verify = True
        if not dry_run:
            if state.get(META_NS, "target") is not None:
                journal.event(STAGE, "publish target changed: the manifest starts over from a server listing")
            state.delete(MANIFEST_NS)

    photos, missing = _photo_items(settings, state)
    for name in missing:
        result.failed += 1
        result.errors.append(f"processed photo {name} is missing from the cache (run `photos` again)")
    feed_items: list[Item] = []
    if feed_path.exists():
        for f in feed_files(settings):
            feed_items.append(Item(f.name, f, file_hash(f), f.stat().st_size, atomic=True))
    else:
        result.errors.append(f"no feed at {feed_path} (run `feed` first)")

    if dry_run:
        todo_photos = [i for i in photos.values() if manifest.get(i.remote, {}).get("hash") != i.hash]
        todo_feed = [i for i in feed_items if manifest.get(i.remote, {}).get("hash") != i.hash]
        result.photos_uploaded = len(todo_photos)
        result.feed_files_uploaded = len(todo_feed)
        result.uploaded = len(todo_photos) + len(todo_feed)
        result.unchanged = len(photos) + len(feed_items) - result.uploaded
        result.ok = not result.errors
        return result

    session = _Session(make_target(settings), p.retries, journal, result, backoff=backoff)
    try:
        _publish(
            settings,
            session,
            journal,
            state,
            result,
            manifest,
            photos,
            feed_items,
            verify=verify and not feed_only,
            force=force,
            feed_only=feed_only,
            progress=progress,
        )
    except PipelineError as exc:
        if isinstance(exc, SettingsError):
            raise
        result.failed += 1
        result.errors.append(str(exc))
        journal.event(STAGE, f"publish failed: {exc}", "error")
    finally:
        session.close()
    result.ok = not result.errors and not result.unreachable
    journal.event(
        STAGE,
        f"publish: {result.photos_uploaded} photos and {result.feed_files_uploaded} feed "
        f"files uploaded, {result.unchanged} unchanged, {result.deleted} orphans deleted"
        + (f"; feed at {result.feed_url}" if result.feed_published else ""),
        "info" if result.ok else "warning",
        uploaded=result.uploaded,
        unchanged=result.unchanged,
        deleted=result.deleted,
        failed=result.failed,
        feed_url=result.feed_url,
        feed_published=result.feed_published,
    )
    return result


def _publish(
    settings: Settings,
    session: _Session,
    journal: Any,
    state: Any,
    result: PublishResult,
    manifest: dict[str, dict[str, Any]],
    photos: dict[str, Item],
    feed_items: list[Item],
    *,
    verify: bool,
    force: bool,
    feed_only: bool,
    progress: bool,
) -> None:
    p = settings.publish
    identity = target_identity(settings)
    remote_photos: set[str] | None = None
    if verify:
        listing = session.call("listing the server", session.target.listing)
        remote_photos = {k for k in listing if k.startswith(PHOTO_DIR + "/")}
        fixed = {}
        for remote, entry in manifest.items():
            if listing.get(remote) == entry.get("size"):
                fixed[remote] = entry
        for item in photos.values():
            # A photo already on the server with the right size is the same content (content-named).
            if item.remote not in fixed and listing.get(item.remote) == item.size:
                fixed[item.remote] = {"hash": item.hash, "size": item.size}
        dropped = set(manifest) - set(fixed)
        for remote in dropped:
            state.delete(MANIFEST_NS, remote)
        state.put_many(MANIFEST_NS, [(k, v) for k, v in fixed.items() if manifest.get(k) != v])
        manifest.clear()
        manifest.update(fixed)
        state.put(META_NS, "target", identity)
        journal.event(
            STAGE,
            f"verified against the server: {len(listing)} files there, "
            f"{len(fixed)} known good, {len(dropped)} manifest entries corrected",
        )

    # 1. Photos (before the feed that refers to them).
    todo = [i for i in photos.values() if manifest.get(i.remote, {}).get("hash") != i.hash]
    result.unchanged += len(photos) - len(todo)
    batch: list[str] = []
    with Progress(len(todo), "upload photos", enabled=progress) as bar:
        for item in todo:
            session.call(
                f"uploading {item.remote}", lambda item=item: session.target.put(item.local, item.remote)
            )
            # The upload returned: the server confirmed the whole file. Only now is it recorded.
            state.put(MANIFEST_NS, item.remote, {"hash": item.hash, "size": item.size})
            manifest[item.remote] = {"hash": item.hash, "size": item.size}
            result.photos_uploaded += 1
            result.uploaded += 1
            batch.append(item.remote)
            bar.update()
            if len(batch) >= JOURNAL_BATCH:
                journal.event(STAGE, f"uploaded {len(batch)} photos", files=batch)
                batch = []
    if batch:
        journal.event(STAGE, f"uploaded {len(batch)} photos", files=batch)
    state.put(META_NS, "target", identity)
    if result.errors:
        # A photo the feed may refer to is not on the server: keep the previous feed live.
        journal.event(STAGE, "the feed is not published because some photos could not be uploaded", "error")
        return

    # Optional reachability check before the feed goes live: a sample of photo URLs, and the feed
    # URL itself when a feed was published there before (a wrong public_base_url shows up here).
    if p.check_urls:
        urls = [
            join_url(p.public_base_url, n)
            for n in random.Random(len(photos)).sample(sorted(photos), min(URL_SAMPLE, len(photos)))
        ]
        live_before = any(i.remote in manifest for i in feed_items[-1:])
        if live_before:
            urls.append(result.feed_url)
        for b in _check_urls(urls, p.timeout):
            journal.event(STAGE, f"URL does not answer: {b}", "warning")
            result.unreachable.append(b)

    # 2. Feed files: temporary name, then renamed over the live one.
    for item in feed_items:
        if manifest.get(item.remote, {}).get("hash") == item.hash:
            result.unchanged += 1
            continue
        tmp = _tmp_name(item.remote)

        def upload_and_swap(item: Item = item, tmp: str = tmp) -> None:
            session.target.put(item.local, tmp)
            session.target.replace(tmp, item.remote)

        session.call(f"publishing {item.remote}", upload_and_swap)
        state.put(MANIFEST_NS, item.remote, {"hash": item.hash, "size": item.size})
        manifest[item.remote] = {"hash": item.hash, "size": item.size}
        result.feed_files_uploaded += 1
        result.uploaded += 1
        journal.event(STAGE, f"published {item.remote}", file=item.remote, size=item.size)
    result.feed_published = bool(feed_items)
    if p.check_urls and feed_items and result.feed_url not in " ".join(result.unreachable):
        for b in _check_urls([result.feed_url], p.timeout):  # the new feed must answer too
            journal.event(STAGE, f"feed URL does not answer: {b}", "warning")
            result.unreachable.append(b)

    # 3. Orphans: only after the feed that no longer refers to them is live.
    if feed_only or not feed_items:
        return
    known = {k for k in manifest if k.startswith(PHOTO_DIR + "/")}
    if remote_photos is not None:
        known |= remote_photos
    orphans = sorted(known - set(photos))
    result.orphans = len(orphans)
    if not orphans:
        return
    if not p.delete_orphans:
        result.orphans_kept = len(orphans)
        return
    limit = settings.feed.max_drop_percent / 100 * max(len(known), 1)
    if len(orphans) > limit and not force:
        result.orphans_kept = len(orphans)
        journal.event(
            STAGE,
            f"{len(orphans)} orphan photos of {len(known)} exceed the "
            f"{settings.feed.max_drop_percent:g}% guard: none deleted (use --force)",
            "warning",
        )
        return
    for remote in orphans:
        session.call(f"deleting {remote}", lambda remote=remote: session.target.remove(remote))
        state.delete(MANIFEST_NS, remote)
        result.deleted += 1
    journal.event(STAGE, f"deleted {len(orphans)} orphan photos", files=orphans[:JOURNAL_BATCH])
