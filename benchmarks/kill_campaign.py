"""Benchmark: the kill campaign — SIGTERM, SIGKILL and connection loss at random moments, repeated.

    .venv/bin/python benchmarks/kill_campaign.py [--iterations 40] [--seed 1] [--orders 12]

One workspace (the embedded demo database, photos, an inbox, the feed folder, a local public folder and
a real FTP server in a child process) is attacked again and again: each iteration picks a command —
`orders import`, `orders watch`, `serve`, `feed`, `publish` to the local folder, `publish` over FTP —
starts it as a real process (`run.py`), and at a random moment sends SIGTERM or SIGKILL, or cuts its
connection: a forced shutdown of the database (`gfix -shut full -force 0`, through the engine's
services) under the order commands, the FTP server killed under an FTP publish. New order files (and
updates of earlier orders) arrive before or while the order commands run; prices change before every
feed, so a new feed differs from the previous one.

After every iteration the live feeds (feeds/satu.yml, the local public copy, the FTP server's copy)
must be well-formed and equal to a complete feed the feed stage put in place (the previous or the new
one). After a final clean run (`orders import`, `feed`, both publishes) the campaign counts:

- lost: orders whose file arrived but that are not in the database;
- duplicated: extra customer orders for one Satu order;
- quarantined_good: files in the quarantine (every file of the campaign is a good order);
- broken_live_feeds: live feeds that were not well-formed or not a complete feed (any check);
- leftover_temps: temp files (`*.tmp`, `*.uploading`, the render spool, side files of gone claims)
  anywhere in the workspace after the final run;
- final_feeds_match: both targets serve the final feed.

The baseline is the same commands run once each without a fault (their seconds), measured first in the
same run. Prints ONE JSON line. `run_campaign()` is what tests/test_kill_campaign.py runs, shorter.

`--server 127.0.0.1/3050` runs the campaign on a database of a Firebird server instead (created in
`--server-dir` with the same demo data, dropped at the end; SYSDBA's password in
TORGSOFT_TEST_FB_PASSWORD, as for tests/test_server.py): the forced shutdown then goes through the
server's service manager and cuts TCP attachments, where the client library can block for good
(`hung_after_sigterm` counts a command that did not end within 90–180 s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from order_factory import satu_order  # noqa: E402
from pipeline.devtools.demo_data import build_demo_database  # noqa: E402

FTP_USER, FTP_PASSWORD = "shop", "campaign-only"
COMMANDS = ("orders import", "orders watch", "serve", "feed", "publish local", "publish ftp")
CONNECTION_LOSS = {
    "orders import": "db_shutdown",
    "orders watch": "db_shutdown",
    "serve": "db_shutdown",
    "feed": "db_shutdown",
    "publish ftp": "ftp_down",
}
ONE_SHOT = ("orders import", "feed", "publish local", "publish ftp")


# --- the workspace ----------------------------------------------------------------------------------


def force_shutdown(database: str, seconds: float, *, host: str = "", password: str = "embedded") -> None:
    """`gfix -shut full -force 0` through the engine's (or `host`'s) service manager for `seconds`:
    every attachment is cut; then the database is brought back online."""
    from fdb import services

    from pipeline.torgsoft.connection import keep_signal_handlers

    with keep_signal_handlers():
        svc = services.connect(host=host, user="SYSDBA", password=password)
    try:
        svc.shutdown(database, services.SHUT_FULL, services.SHUT_FORCE, 0)
        time.sleep(seconds)
        svc.bring_online(database, services.SHUT_NORMAL)
    finally:
        svc.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER_PASSWORD_ENV = "TORGSOFT_TEST_FB_PASSWORD"


def _server_password() -> str:
    return os.environ.get(SERVER_PASSWORD_ENV, "ci-test-only")


def _database_text(work: Path, dsn: str | None) -> str:
    if dsn is None:
        return f'database = "{work / "torgsoft.fdb"}"'
    return f'dsn = "{dsn}"\nuser = "SYSDBA"\npassword_env = "{SERVER_PASSWORD_ENV}"'


def _settings_text(work: Path, target: str, ftp_port: int, dsn: str | None = None) -> str:
    publish = (
        f'target = "local"\nlocal_dir = "{work / "public"}"'
        if target == "local"
        else f'target = "ftp"\nhost = "127.0.0.1"\nport = {ftp_port}\nuser = "{FTP_USER}"\n'
        f'remote_dir = "/shop"\ntimeout = 5'
    )
    return f"""
[torgsoft]
{_database_text(work, dsn)}
[photos]
source_dir = "{work / "photos"}"
cache_dir = "{work / "photos_cache"}"
[feed]
output = "{work / "feeds" / "satu.yml"}"
template = "{ROOT / "templates" / "satu.yml.j2"}"
[publish]
{publish}
retries = 1
# The address the feed's pictures name (check_pictures reads them back); a loopback one on purpose.
public_base_url = "http://127.0.0.1:8765"
allow_private_urls = true
[satu]
base_url = "http://127.0.0.1:{_free_port()}"
max_retries = 0
push = false
[orders]
inbox = "{work / "inbox"}"
settle_seconds = 0
import_workers = 2
[schedule]
stock_seconds = 0
[journal]
path = "{work / "var" / "journal.sqlite"}"
log_file = "{work / "var" / "sync.log"}"
state_path = "{work / "var" / "state.sqlite"}"
lock_file = "{work / "var" / "run.lock"}"
[web]
enabled = false
"""


class FtpChild:
    """A real FTP server (pyftpdlib) in a child process, so a test can kill it: a lost connection."""

    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-ftp", str(self.root), str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # "ready"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def serve_ftp(root: str, port: int) -> None:
    """The FTP child's body (`--serve-ftp ROOT PORT`)."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    authorizer = DummyAuthorizer()
    authorizer.add_user(FTP_USER, FTP_PASSWORD, root, perm="elradfmwMT")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "passive_ports": None})
    import logging

    logging.getLogger("pyftpdlib").setLevel(logging.ERROR)
    server = FTPServer(("127.0.0.1", port), handler)
    print("ready", flush=True)
    server.serve_forever()


@dataclass
class Campaign:
    """The workspace and what the campaign saw."""

    work: Path
    rng: random.Random
    orders_per_batch: int
    dsn: str | None = None  # a Firebird server's database (host/port:path); None: the embedded file
    ftp: FtpChild = field(init=False)
    local: Path = field(init=False)
    remote: Path = field(init=False)
    dropped: set[int] = field(default_factory=set)
    next_id: int = 60_000
    feeds_seen: set[str] = field(default_factory=set)
    kills: Counter = field(default_factory=Counter)
    broken: list[str] = field(default_factory=list)
    broken_photos: list[str] = field(default_factory=list)
    hung_after_sigterm: int = 0
    sigterm_seconds: list[float] = field(default_factory=list)
    baseline: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        port = _free_port()
        self.ftp = FtpChild(self.work / "ftp", port)
        self.local = self.work / "settings-local.toml"
        self.remote = self.work / "settings-ftp.toml"
        self.local.write_text(_settings_text(self.work, "local", port, self.dsn), encoding="utf-8")
        self.remote.write_text(_settings_text(self.work, "ftp", port, self.dsn), encoding="utf-8")
        (self.work / "ftp" / "shop").mkdir(parents=True, exist_ok=True)
        (self.work / "inbox").mkdir(exist_ok=True)

    # --- processes ----------------------------------------------------------------------------------

    def start(self, command: str) -> subprocess.Popen:
        settings = self.remote if command == "publish ftp" else self.local
        args = {"publish local": ["publish"], "publish ftp": ["publish"]}.get(command, command.split())
        return subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), "--settings", str(settings), *args],
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "PUBLISH_PASSWORD": FTP_PASSWORD,
                SERVER_PASSWORD_ENV: _server_password(),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def clean(self, command: str, timeout: float = 300) -> tuple[int, str, float]:
        started = time.monotonic()
        proc = self.start(command)
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out, time.monotonic() - started

    # --- inputs -------------------------------------------------------------------------------------

    def drop_orders(self, n: int, pause: float = 0.0) -> None:
        box = self.work / "inbox"
        for _ in range(n):
            if self.dropped and self.rng.random() < 0.2:  # an update of an earlier order
                oid, version = self.rng.choice(sorted(self.dropped)), self.rng.randint(1, 50)
            else:
                oid, version = self.next_id, 0
                self.next_id += 1
            order = satu_order(
                oid,
                phone=f"+7 701 000 00 {oid % 7:02d}",
                email="",
                paid=oid % 3 == 0,
                modified=f"2026-11-27T{10 + version // 60:02d}:{version % 60:02d}:00.000000+05:00",
                lines=[{"external_id": str(30 + oid % 7), "quantity": 1 + oid % 3}],
            )
            name = f"satu-order-{oid}-v{version}-{self.rng.randrange(1 << 30):08x}.json"
            tmp = box / f".{name}.tmp"
            tmp.write_text(json.dumps({"order": order}, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, box / name)
            self.dropped.add(oid)
            if pause:
                time.sleep(pause)

    def change_prices(self) -> None:
        from pipeline.settings import load
        from pipeline.torgsoft.connection import connect

        con = connect(load(self.local))
        try:
            cur = con.cursor()
            goods = self.rng.sample(range(1, 200), 5)
            for good in goods:
                cur.execute(
                    "UPDATE GOOD_PRICE SET RETAIL_PRICE = RETAIL_PRICE + ? WHERE GOOD_ID = ?",
                    (self.rng.randint(1, 9), good),
                )
            con.commit()
        finally:
            con.close()

    # --- faults -------------------------------------------------------------------------------------

    def db_shutdown(self, seconds: float) -> None:
        if self.dsn is None:
            force_shutdown(str(self.work / "torgsoft.fdb"), seconds)
        else:
            host, _, database = self.dsn.partition(":")
            force_shutdown(database, seconds, host=host, password=_server_password())

    def stop(self, proc: subprocess.Popen, sig: int, grace: float = 90) -> str:
        """Send `sig` (0: none, the command ends by itself) and wait; SIGKILL after `grace` seconds.
        How long a SIGTERM took to end the command is kept (`sigterm_seconds`)."""
        running = proc.poll() is None
        asked = time.monotonic()
        if running and sig:
            os.killpg(proc.pid, sig) if sig == signal.SIGKILL else proc.send_signal(sig)
        try:
            out, _ = proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            self.hung_after_sigterm += 1
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        if running and sig == signal.SIGTERM:
            self.sigterm_seconds.append(time.monotonic() - asked)
        return out or ""

    # --- checks -------------------------------------------------------------------------------------

    def live_feeds(self) -> dict[str, Path]:
        return {
            "feed": self.work / "feeds" / "satu.yml",
            "local": self.work / "public" / "satu.yml",
            "ftp": self.work / "ftp" / "shop" / "satu.yml",
        }

    def check_live(self, when: str) -> None:
        """Every live feed well-formed and a complete feed the feed stage made (the previous or new)."""
        from lxml import etree

        feed = self.live_feeds()["feed"]
        if feed.exists():
            try:
                etree.parse(str(feed))
            except etree.XMLSyntaxError as exc:
                self.broken.append(f"{when}: feeds/satu.yml not well-formed: {exc}")
            else:
                self.feeds_seen.add(_digest(feed))
        for name, path in self.live_feeds().items():
            if name == "feed" or not path.exists():
                continue
            try:
                etree.parse(str(path))
            except etree.XMLSyntaxError as exc:
                self.broken.append(f"{when}: {name} live feed not well-formed: {exc}")
                continue
            if _digest(path) not in self.feeds_seen:
                self.broken.append(f"{when}: {name} live feed is no feed the feed stage put in place")
            self.check_pictures(when, name, path)

    def check_pictures(self, when: str, name: str, live: Path) -> None:
        """Every picture a live feed names is on that target, whole (the bytes of the processed photo)."""
        import re

        cache = self.work / "photos_cache"
        for url in sorted(set(re.findall(r"<picture>([^<]+)</picture>", live.read_text(encoding="utf-8")))):
            rel = url.split("/", 3)[-1]  # http://host:port/<rel>
            served, processed = live.parent / rel, cache / rel
            if not served.is_file() or served.read_bytes() != processed.read_bytes():
                self.broken_photos.append(f"{when}: {name} serves {rel} missing or cut")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- one iteration ----------------------------------------------------------------------------------


def _window(c: Campaign, command: str) -> float:
    """A random moment within the command's clean duration (a little beyond, to hit its end too)."""
    return c.rng.uniform(0.1, 1.2 * max(1.0, c.baseline.get(command, 3.0)))


def attack(c: Campaign, command: str, fault: str) -> None:
    """Run `command` and hit it with `fault` at a random moment (see the module docstring)."""
    if command in ("feed", "serve"):
        c.change_prices()
    if command == "publish local" or command == "publish ftp":
        c.change_prices()
        code, out, _ = c.clean("feed")
        if code != 0:
            c.broken.append(f"feed before publish failed: {out[-300:]}")
        c.check_live("after the feed before publish")
    if command == "orders import":
        c.drop_orders(c.orders_per_batch)
    proc = c.start(command)
    dropper = None
    if command in ("orders watch", "serve"):
        dropper = threading.Thread(target=c.drop_orders, args=(c.orders_per_batch, 0.05))
        dropper.start()
    time.sleep(_window(c, command))
    if fault == "db_shutdown":
        c.db_shutdown(c.rng.uniform(0.5, 2.0))
        sig = signal.SIGTERM
    elif fault == "ftp_down":
        c.ftp.kill()
        sig = 0
    else:
        sig = signal.SIGTERM if fault == "SIGTERM" else signal.SIGKILL
    if dropper is not None:
        dropper.join()
    if sig == 0 or (fault == "db_shutdown" and command in ONE_SHOT):
        c.stop(proc, 0, grace=180)  # the command ends by itself (a failed upload, a paused import)
    else:
        c.stop(proc, sig)
    if fault == "ftp_down":
        c.ftp.start()
    c.kills[f"{command}: {fault}"] += 1
    c.check_live(f"after {command} / {fault}")


# --- the final state --------------------------------------------------------------------------------


def _temp_files(work: Path, *, young: bool = False) -> list[str]:
    """Temp files left in the workspace. A claim's side file without its claim counts once it is older
    than the minute after which the importer clears it (`young=True`: the younger ones instead)."""
    found = []
    old = time.time() - 60
    for sub in ("inbox", "feeds", "public", "ftp"):
        for dirpath, _dirs, files in os.walk(work / sub):
            names = set(files)
            for f in files:
                path = os.path.join(dirpath, f)
                side = f.startswith(".name-") and not any(
                    n.endswith("~" + f[6:].split(".")[0]) for n in names
                )
                if side and (os.path.getmtime(path) >= old) != young:
                    continue
                if young and not side:
                    continue
                if side or f.endswith((".tmp", ".uploading", ".tmp.offers", ".part")):
                    found.append(os.path.relpath(path, work))
    return sorted(found)


def _order_counts(c: Campaign) -> dict[str, int]:
    """Lost and duplicated orders, order lines and customers (every campaign order has one line and
    one of seven phones)."""
    from pipeline.settings import load
    from pipeline.torgsoft.connection import connect

    con = connect(load(c.local))
    try:
        cur = con.cursor()
        cur.execute(
            "SELECT o.EXTERNAL_ID, COUNT(DISTINCT o.ID), COUNT(i.LINE_NO) FROM CUSTOMER_ORDER o "
            "LEFT JOIN CUSTOMER_ORDER_ITEM i ON i.ORDER_ID = o.ID GROUP BY o.EXTERNAL_ID"
        )
        rows = {int(k): (n, lines) for k, n, lines in cur.fetchall() if str(k).isdigit()}
        cur.execute(
            "SELECT COUNT(*) FROM CLIENT WHERE PHONE LIKE '7701000000%' GROUP BY PHONE HAVING COUNT(*) > 1"
        )
        clients = len(cur.fetchall())
    finally:
        con.close()
    ours = {oid: v for oid, v in rows.items() if oid in c.dropped}
    return {
        "lost": sum(1 for oid in c.dropped if oid not in rows),
        "duplicated": sum(n - 1 for n, _ in ours.values() if n > 1),
        "duplicated_lines": sum(1 for n, lines in ours.values() if n == 1 and lines != 1),
        "duplicated_clients": clients,
    }


def finish(c: Campaign) -> dict[str, Any]:
    """The final clean run, then the invariants."""
    failures = []
    for command in ("orders import", "feed", "publish local", "publish ftp"):
        code, out, _ = c.clean(command)
        if code != 0:
            failures.append(f"{command}: exit {code}: {out.strip().splitlines()[-1:] or ''}")
        c.check_live(f"final {command}")
    box = c.work / "inbox"
    counts = _order_counts(c)
    final = _digest(c.live_feeds()["feed"])
    match = all(_digest(c.live_feeds()[k]) == final for k in ("local", "ftp") if c.live_feeds()[k].exists())
    return {
        **counts,
        "quarantined_good": len([p for p in (box / "quarantine").glob("*") if not p.name.endswith(".txt")]),
        "left_in_inbox": len(list(box.glob("*.json"))),
        "left_claimed": len([p for p in (box / "processing").iterdir() if not p.name.startswith(".")]),
        "broken_live_feeds": len(c.broken),
        "broken_samples": c.broken[:5],
        "broken_photos": len(c.broken_photos),
        "broken_photo_samples": c.broken_photos[:5],
        "leftover_temps": len(_temp_files(c.work)),
        "leftover_samples": _temp_files(c.work)[:5],
        "young_side_files": len(_temp_files(c.work, young=True)),  # cleared by a pass a minute later
        "final_feeds_match": match,
        "final_run_failures": failures,
        "hung_after_sigterm": c.hung_after_sigterm,
        "sigterm_to_exit_seconds_max": round(max(c.sigterm_seconds, default=0.0), 2),
        "done_twice": len([p for p in (box / "done").glob("*.json.*") if p.suffix[1:].isdigit()]),
    }


def _server_database(server: str, folder: str, work: Path, products: int) -> str:
    """A new database on the Firebird server with the campaign's demo data; its dsn."""
    from pipeline.devtools.demo_data import generate
    from pipeline.torgsoft.connection import create_database
    from pipeline.torgsoft.schema import create_schema

    dsn = f"{server}:{folder.rstrip('/')}/kill-campaign-{os.getpid()}-{random.randrange(1 << 30):08x}.fdb"
    con = create_database(dsn=dsn, user="SYSDBA", password=_server_password())
    try:
        create_schema(con)
        generate(con, work / "photos", products=products, seed=7, image_pool=8)
        con.commit()
    finally:
        con.close()
    return dsn


def drop_server_database(dsn: str) -> None:
    """Drop the campaign's server database (the end of a `--server` run)."""
    import fdb

    from pipeline.torgsoft.connection import keep_signal_handlers

    with keep_signal_handlers():
        con = fdb.connect(dsn=dsn, user="SYSDBA", password=_server_password())
    con.drop_database()


def setup(
    work: Path, seed: int, orders: int, products: int, server: str | None = None, server_dir: str = ""
) -> Campaign:
    """Build the workspace and run every command once without a fault (the baseline seconds)."""
    dsn = None
    if server is None:
        build_demo_database(work / "torgsoft.fdb", work / "photos", products=products, seed=7, image_pool=8)
    else:
        dsn = _server_database(server, server_dir, work, products)
    os.environ.setdefault(SERVER_PASSWORD_ENV, _server_password())  # for this process's own look-ups
    c = Campaign(work, random.Random(seed), orders, dsn)
    c.ftp.start()
    for command in ("photos", "feed", "publish local", "publish ftp"):
        code, out, seconds = c.clean(command)
        if code != 0:
            raise SystemExit(f"setup: {command} failed: {out}")
        c.baseline[command] = round(seconds, 2)
        c.check_live(f"setup {command}")
    c.drop_orders(orders)
    code, out, seconds = c.clean("orders import")
    if code != 0:
        raise SystemExit(f"setup: orders import failed: {out}")
    c.baseline["orders import"] = round(seconds, 2)
    c.baseline["orders watch"] = c.baseline["serve"] = round(seconds + 1.0, 2)
    return c


def _random_plan(rng: random.Random, iterations: int) -> list[tuple[str, str]]:
    """Commands in turn (shuffled per round of six), each with a random fault."""
    plan: list[tuple[str, str]] = []
    round_: list[str] = []
    for _ in range(iterations):
        if not round_:
            round_ = list(COMMANDS)
            rng.shuffle(round_)
        command = round_.pop()
        faults = ["SIGTERM", "SIGKILL"] + ([CONNECTION_LOSS[command]] if command in CONNECTION_LOSS else [])
        plan.append((command, rng.choice(faults)))
    return plan


def run_campaign(
    work: Path,
    *,
    iterations: int = 0,
    seed: int = 1,
    orders: int = 12,
    products: int = 200,
    plan: list[tuple[str, str]] | None = None,
    server: str | None = None,
    server_dir: str = "/var/lib/firebird/3.0/data",
) -> dict[str, Any]:
    """Set up, attack (the given `plan` of (command, fault), else `iterations` random ones), finish;
    the figures. The moments of the faults come from `seed` either way. `server`: see the docstring."""
    started = time.monotonic()
    c = setup(work, seed, orders, products, server, server_dir)
    try:
        plan = plan if plan is not None else _random_plan(c.rng, iterations)
        for command, fault in plan:
            attack(c, command, fault)
        figures = finish(c)
    finally:
        c.ftp.kill()
        if c.dsn is not None:
            drop_server_database(c.dsn)
    by_command: Counter = Counter()
    for key, n in c.kills.items():
        by_command[key.split(":")[0]] += n
    return {
        "benchmark": "kill_campaign",
        "runs": len(plan),
        "seed": seed,
        "database": "server" if c.dsn else "embedded",
        "orders": len(c.dropped),
        "kills_per_command": dict(sorted(by_command.items())),
        "faults": dict(sorted(c.kills.items())),
        **figures,
        "baseline_clean_seconds": c.baseline,
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-ftp":
        serve_ftp(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--orders", type=int, default=12, help="order files per order-command iteration")
    ap.add_argument("--products", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--server", help="a Firebird server, host/port (e.g. 127.0.0.1/3050): its database")
    ap.add_argument("--server-dir", default="/var/lib/firebird/3.0/data", help="where on the server")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-kill-campaign-"))
    try:
        figures = run_campaign(
            work,
            iterations=args.iterations,
            seed=args.seed,
            orders=args.orders,
            products=args.products,
            server=args.server,
            server_dir=args.server_dir,
        )
        print(json.dumps(figures, ensure_ascii=False))
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
