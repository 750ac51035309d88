"""Real servers on 127.0.0.1 (port 0) for tests: FTP, FTPS, SFTP and a static HTTP server.

Importable from any test module (`from servers import ftp_server, sftp_server, http_server`).
Each is a context manager that serves a real folder and stops on exit:

    with ftp_server(root, "user", "pw") as srv:            # srv.host, srv.port, srv.commands
    with ftp_server(root, "u", "p", refuse_overwrite=True)  # RNTO onto an existing file → 550
    with ftp_server(root, "u", "p", drop_after=1000, drop_match=".satu.yml", drops=1)
                                                         # cut the connection mid-upload (once)
    with ftp_server(root, "u", "p", cut_after=65536, cut_match="satu.yml", cuts=1)
                                                         # store only 65536 bytes, answer 426 (once)
    with ftp_server(root, "u", "p", cut_after=8192, cut_reply="226 Transfer complete.", no_size=True)
                                                         # a lying server: cut, 226, no SIZE command
    with ftp_server(root, "u", "p", tls=True) as srv:      # explicit FTPS; srv.cafile to trust
    with sftp_server(root, "u", "p") as srv:               # srv.host_key = "ssh-ed25519 AAAA…"
    with http_server(root) as base_url:                    # GET/HEAD of the files under root
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import http.server
import ipaddress
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# pyftpdlib configures INFO logging to stderr unless its logger already has a handler.
logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())
logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
logging.getLogger("asyncssh").setLevel(logging.WARNING)


@dataclass
class ServerInfo:
    """Where a test server listens and what it saw."""

    host: str
    port: int
    root: Path
    user: str
    password: str
    commands: list[str] = field(default_factory=list)
    cafile: Path | None = None
    host_key: str = ""
    drops_left: int = 0
    cuts_left: int = 0
    uploads: list[str] = field(default_factory=list)


def self_signed_cert(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for `host` (IP SAN) and its key, as PEM files in `folder`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _faulty_dtp(
    base_dtp: Any,
    info: ServerInfo,
    drop_after: int | None,
    drop_match: str,
    cut_after: int | None,
    cut_match: str,
    cut_reply: str,
) -> Any:
    """The data-channel handler of `ftp_server`, with its drop and cut faults (see there)."""

    class DroppingDTP(base_dtp):  # type: ignore[misc, valid-type]
        cut = False

        def _cutting(self) -> bool:
            name = os.path.basename(str(getattr(self.file_obj, "name", "") or ""))
            if not self.cut and cut_after is not None and info.cuts_left > 0 and cut_match in name:
                info.cuts_left -= 1
                self.cut = True
            return self.cut

        def _read_cut(self) -> None:
            from pyftpdlib.exceptions import _RetryError as RetryError

            try:
                chunk = self.recv(self.ac_in_buffer_size)
            except RetryError:
                return
            except OSError:
                self.handle_error()
                return
            assert cut_after is not None
            keep = max(0, cut_after - self.tot_bytes_received)
            if keep:
                self.file_obj.write(chunk[:keep])
            self.tot_bytes_received += len(chunk)

        def handle_close(self) -> None:
            if self.cut and not self._closed:
                # The bytes past the cut never reached the file: answer as the server was told to.
                self.transfer_finished = cut_reply.startswith("2")
                self._resp = (cut_reply, logging.getLogger("pyftpdlib").debug)
                self.close()
                return
            super().handle_close()

        def handle_read(self) -> None:
            if self.receive and self._cutting():
                self._read_cut()
                return
            super().handle_read()
            name = getattr(self.file_obj, "name", "") or ""
            if (
                drop_after is not None
                and info.drops_left > 0
                and drop_match in os.path.basename(str(name))
                and self.tot_bytes_received >= drop_after
            ):
                info.drops_left -= 1
                # The network goes away: both connections close without a reply.
                cmd = self.cmd_channel
                self.close()
                cmd.close()

        handle_read_event = handle_read  # pyftpdlib aliases the base method; point it at ours

    return DroppingDTP


def _handler(base_handler: Any, info: ServerInfo, *, refuse_overwrite: bool, no_size: bool) -> Any:
    """The control-channel handler of `ftp_server`: records commands and uploads; its faults."""
    root = info.root

    class Handler(base_handler):  # type: ignore[misc, valid-type]
        def pre_process_command(self, line: str, cmd: str, arg: str) -> Any:
            info.commands.append(cmd)
            return super().pre_process_command(line, cmd, arg)

        def on_file_received(self, file: str) -> None:
            info.uploads.append(os.path.relpath(file, root))

        def ftp_SIZE(self, path: str) -> Any:
            if no_size:
                self.respond("502 Command not implemented.")
                return None
            return super().ftp_SIZE(path)

        def ftp_RNTO(self, path: str) -> Any:
            if refuse_overwrite and self._rnfr and self.fs.lexists(path):  # type: ignore[has-type]
                self._rnfr = None
                self.respond("550 Destination file exists.")
                return None
            return super().ftp_RNTO(path)

    return Handler


@contextlib.contextmanager
def ftp_server(
    root: Path,
    user: str = "user",
    password: str = "secret",
    *,
    refuse_overwrite: bool = False,
    tls: bool = False,
    drop_after: int | None = None,
    drop_match: str = "",
    drops: int = 1,
    cut_after: int | None = None,
    cut_match: str = "",
    cuts: int = 1,
    cut_reply: str = "426 Connection closed; transfer aborted.",
    no_size: bool = False,
    cert_dir: Path | None = None,
) -> Iterator[ServerInfo]:
    """A pyftpdlib server for `root` on 127.0.0.1, run in a thread.

    refuse_overwrite: RNTO onto an existing file answers 550, as some hosting servers do.
    drop_after/drop_match/drops: while storing a file whose name contains `drop_match`, cut the data
    and control connections once `drop_after` bytes arrived — `drops` times, then behave.
    cut_after/cut_match/cuts/cut_reply: while storing a file whose name contains `cut_match`, keep
    only the first `cut_after` bytes (the data channel is cut there; the rest is drained unseen) and
    answer `cut_reply` on the control channel, which stays open — `cuts` times (`info.cuts_left`).
    no_size: SIZE is not implemented (502), so a client must list the folder to learn a size.
    tls: explicit FTPS (AUTH TLS) with TLS required on control and data; `cafile` trusts the cert.
    """
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import DTPHandler, FTPHandler
    from pyftpdlib.servers import FTPServer

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    info = ServerInfo("127.0.0.1", 0, root, user, password, drops_left=drops if drop_after is not None else 0)
    info.cuts_left = cuts if cut_after is not None else 0
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(root), perm="elradfmwMT")

    base_handler: Any = FTPHandler
    base_dtp: Any = DTPHandler
    if tls:
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler

        base_handler, base_dtp = TLS_FTPHandler, TLS_DTPHandler

    DroppingDTP = _faulty_dtp(base_dtp, info, drop_after, drop_match, cut_after, cut_match, cut_reply)
    Handler = _handler(base_handler, info, refuse_overwrite=refuse_overwrite, no_size=no_size)
    Handler.authorizer = authorizer
    Handler.dtp_handler = DroppingDTP
    Handler.banner = "test ftp ready"
    Handler.timeout = 30
    if tls:
        cert, key = self_signed_cert(cert_dir or root.parent / f".cert-{os.getpid()}-{id(info)}")
        Handler.certfile, Handler.keyfile = str(cert), str(key)
        Handler.ssl_context = None  # built per server from the files above
        Handler.tls_control_required = True
        Handler.tls_data_required = True
        info.cafile = cert
    server = FTPServer(("127.0.0.1", 0), Handler)
    info.port = server.socket.getsockname()[1]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=loop, name="test-ftp", daemon=True)
    thread.start()
    try:
        yield info
    finally:
        stop.set()
        thread.join(10)


@contextlib.contextmanager
def sftp_server(
    root: Path,
    user: str = "user",
    password: str = "secret",
    *,
    client_public_key: str | None = None,
    host_key_type: str = "ssh-ed25519",
    posix_rename: bool = True,
) -> Iterator[ServerInfo]:
    """An asyncssh SFTP server chrooted to `root` on 127.0.0.1, with its own event loop in a thread.

    `info.host_key` is the server's public host key line ("ssh-ed25519 AAAA…"), for pinning.
    Password login, or public-key login when `client_public_key` (OpenSSH format) is given.
    posix_rename=False: behave like an old server without the posix-rename@openssh.com extension.
    """
    import asyncssh

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key(host_key_type)
    public = key.export_public_key("openssh").decode().split()
    info = ServerInfo("127.0.0.1", 0, root, user, password, host_key=f"{public[0]} {public[1]}")
    authorized = asyncssh.import_authorized_keys(client_public_key) if client_public_key else None

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, pw: str) -> bool:
            return username == user and pw == password

    class SFTP(asyncssh.SFTPServer):
        def __init__(self, chan: Any):
            super().__init__(chan, chroot=str(root).encode())

        def rename(self, oldpath: bytes, newpath: bytes) -> None:
            info.commands.append("rename")
            super().rename(oldpath, newpath)

        def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
            info.commands.append("posix_rename")
            if not posix_rename:
                raise asyncssh.SFTPOpUnsupported("posix-rename not supported")
            super().posix_rename(oldpath, newpath)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-sftp", daemon=True)
    thread.start()

    async def start() -> Any:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[key],
            server_factory=Server,
            sftp_factory=SFTP,
            authorized_client_keys=authorized,
            allow_scp=False,
        )

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    info.port = acceptor.sockets[0].getsockname()[1]
    try:
        yield info
    finally:

        async def stop() -> None:
            acceptor.close()
            await acceptor.wait_closed()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def http_server(root: Path) -> Iterator[str]:
    """A static HTTP server for `root` on 127.0.0.1; yields its base URL (no trailing slash)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
