"""Benchmark: how fast a stock change in the database reaches Satu through the stock watcher (issue 17).

One run, everything real and on 127.0.0.1:
- a demo database of `--products` goods (embedded Firebird) and the Satu sandbox in its own process,
  seeded with the feed's products (as after an import by URL);
- baseline: the shortest path before the watcher, `run.py sync --partial` end to end after one sale;
- for each detection mode (the change query `stock_changes.sql`, then the per-good hash without it):
  `run.py serve` with `[schedule] stock_seconds` (default 15) in its own process, while a second
  process changes the stock of random goods at random moments (`--changes`); per change, the time
  from its commit until the sandbox holds the new quantity: p50, p95, max; the CPU seconds of an idle
  watcher tick (measured in this process: the embedded engine's work counts); the serve process's RSS
  at the start and the end of the changes;
- memory over an hour of ticks: the service's watcher loop (`watch_loop`) in a child process, its
  interval compressed to nothing, for `--idle-ticks` ticks (240 = an hour at 15 s) in each mode, the
  child's RSS sampled after every tick: `rss_first_mb` (after the first idle tick), `rss_last_mb`,
  `rss_growth_mb` (top level: the hash mode, which keeps the digests in memory).
Prints one JSON line.

    .venv/bin/python benchmarks/stock_latency.py [--products 2000] [--changes 8] [--stock-seconds 15]
        [--idle-ticks 240]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.contracts import feed_offers  # noqa: E402
from pipeline.devtools.demo_data import build_demo_database  # noqa: E402
from pipeline.journal import Journal  # noqa: E402
from pipeline.satu.client import SatuClient  # noqa: E402
from pipeline.settings import load  # noqa: E402
from pipeline.state import State  # noqa: E402
from pipeline.stock.watch import StockWatcher  # noqa: E402
from pipeline.torgsoft.connection import connect  # noqa: E402

TOKEN_ENV = "SATU_STOCK_BENCH_TOKEN"
_SERVER = """
import sys
from pipeline.devtools.sandbox import SandboxServer
s = SandboxServer(sys.argv[1], port=0, check_pictures=False).start()
print(s.url, s.token, flush=True)
s.serve_forever()
"""
# The second process: K changes to random goods at random moments; one JSON line per committed change.
_CHANGER = """
import json, random, sys, time
sys.path.insert(0, sys.argv[1])
from pipeline.settings import load
from pipeline.torgsoft.connection import connect
settings = load(sys.argv[2])
goods = json.loads(open(sys.argv[3], encoding="utf-8").read())  # a file: 100k ids overflow argv
changes, gap = int(sys.argv[4]), float(sys.argv[5])
rng = random.Random(sys.argv[6])
con = connect(settings)
cur = con.cursor()
for _ in range(changes):
    time.sleep(rng.uniform(0, gap))
    good, units = rng.choice(goods), rng.randint(1, 40)
    cur.execute("UPDATE GOOD_STOCK SET QTY = RESERVED_QTY WHERE GOOD_ID = ?", (good,))
    cur.execute(
        "UPDATE GOOD_STOCK SET QTY = RESERVED_QTY + ? WHERE GOOD_ID = ? AND ACCOUNTING_CENTER_ID = "
        "(SELECT MIN(ACCOUNTING_CENTER_ID) FROM GOOD_STOCK WHERE GOOD_ID = ?)", (units, good, good))
    con.commit()
    print(json.dumps({"good": str(good), "units": units, "t": time.time()}), flush=True)
con.close()
"""

# The watcher loop of the service for N ticks with no wait between them, RSS sampled after each tick.
_TICKER = """
import json, sys, threading
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from pipeline.settings import load
from pipeline.stock import watch

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

ticks, stop, samples = int(sys.argv[3]), threading.Event(), []
real_tick = watch.StockWatcher.tick

def tick(self, **kwargs):
    result = real_tick(self, **kwargs)
    samples.append(rss_mb())
    if len(samples) >= ticks:
        stop.set()
    return result

watch.StockWatcher.tick = tick
watch.watch_loop(load(sys.argv[2]), interval=0, stop_event=stop, wake_event=threading.Event())
print(json.dumps(samples))
"""


def _settings_file(base: Path, url: str, stock_seconds: int, change_query: bool) -> Path:
    path = base / "settings.toml"
    path.write_text(
        f"""
[torgsoft]
database = "{base / "torgsoft.fdb"}"
change_query = {str(change_query).lower()}
[photos]
source_dir = "{base / "photos"}"
cache_dir = "{base / "photos_cache"}"
[feed]
output = "{base / "feeds" / "satu.yml"}"
template = "{ROOT / "templates" / "satu.yml.j2"}"
history_dir = "{base / "feeds" / "history"}"
[publish]
local_dir = "{base / "public"}"
[satu]
base_url = "{url}"
token_env = "{TOKEN_ENV}"
max_requests_per_minute = 600
[schedule]
partial = true
stock_seconds = {stock_seconds}
[orders]
inbox = "{base / "inbox"}"
[journal]
path = "{base / "journal.sqlite"}"
log_file = "{base / "sync.log"}"
state_path = "{base / "state.sqlite"}"
lock_file = "{base / "run.lock"}"
[web]
enabled = false
""",
        encoding="utf-8",
    )
    return path


def _run(*args: str, timeout: float = 1800) -> float:
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "run.py", *args], cwd=ROOT, timeout=timeout, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"run.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - t0


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _idle_tick_cpu(settings_path: Path) -> float:
    """CPU seconds of one idle tick (after a first tick that reads everything), in this process."""
    settings = load(settings_path)
    journal, state = Journal.from_settings(settings), State.from_settings(settings)
    client = SatuClient.from_settings(settings)
    watcher = StockWatcher(settings)
    try:
        watcher.tick(journal=journal, state=state, client=client)
        watcher.tick(journal=journal, state=state, client=client)  # warm (prepared, cached)
        c0 = time.process_time()
        watcher.tick(journal=journal, state=state, client=client)
        return round(time.process_time() - c0, 4)
    finally:
        watcher.close()
        client.close()
        journal.close()
        state.close()


def _memory(settings_path: Path, ticks: int) -> dict[str, Any]:
    """RSS of the watcher loop over `ticks` ticks in a child process (the first tick reads everything:
    the baseline is the first idle tick after it)."""
    done = subprocess.run(
        [sys.executable, "-c", _TICKER, str(ROOT), str(settings_path), str(max(3, ticks + 1))],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=ticks * 60 + 600,
    )
    samples = json.loads(done.stdout.strip().splitlines()[-1])
    first, last = samples[1], samples[-1]
    return {
        "ticks": len(samples) - 1,
        "rss_first_mb": round(first, 1),
        "rss_max_mb": round(max(samples[1:]), 1),
        "rss_last_mb": round(last, 1),
        "rss_growth_mb": round(last - first, 1),
    }


def _latencies(settings_path: Path, goods: list[int], changes: int, gap: float, client: SatuClient) -> dict:
    """serve + the changer process; per change the seconds until the sandbox shows it."""
    state = State(load(settings_path).journal.state_path)
    state.delete("stock.watch", "last")  # (the previous mode's) so the wait below sees this serve's jobs
    state.delete("service.jobs", "exchange")
    state.close()
    goods_file = settings_path.parent / "goods.json"
    goods_file.write_text(json.dumps(goods), encoding="utf-8")
    serve = subprocess.Popen(
        [sys.executable, "run.py", "--settings", str(settings_path), "serve"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        state = State(load(settings_path).journal.state_path)
        deadline = time.monotonic() + 600
        while state.get("stock.watch", "last") is None or state.get("service.jobs", "exchange") is None:
            if time.monotonic() > deadline or serve.poll() is not None:
                raise SystemExit("serve did not start its jobs")
            time.sleep(0.5)
        rss_start = _rss_mb(serve.pid)
        changer = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHANGER,
                str(ROOT),
                str(settings_path),
                str(goods_file),
                str(changes),
                str(gap),
                str(time.time_ns()),  # a seed of its own per mode: not the values the last mode left
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert changer.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        out = changer.stdout

        def read_lines() -> None:
            for ln in out:
                lines.put(ln)

        reader = threading.Thread(target=read_lines, daemon=True)
        reader.start()
        pending: list[dict[str, Any]] = []
        seen: list[float] = []
        deadline = time.monotonic() + changes * gap + 300
        while time.monotonic() < deadline:
            while not lines.empty():
                pending.append(json.loads(lines.get()))
            for ch in list(pending):
                if any(o["good"] == ch["good"] and o["t"] > ch["t"] for o in pending):
                    pending.remove(ch)  # overwritten by a later change before it showed: not counted
                    continue
                p = client.product_by_external_id(ch["good"]) or {}
                if p.get("quantity_in_stock") == ch["units"]:
                    seen.append(time.time() - ch["t"])
                    pending.remove(ch)
            if changer.poll() is not None and not reader.is_alive() and lines.empty() and not pending:
                break
            time.sleep(0.2)
        rss_end = _rss_mb(serve.pid)
        state.close()
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=120)
        except subprocess.TimeoutExpired:
            serve.kill()
    seen.sort()
    return {
        "measured": len(seen),
        "missed": len(pending),
        "p50_s": round(statistics.median(seen), 2) if seen else None,
        "p95_s": round(seen[min(len(seen) - 1, int(round(0.95 * (len(seen) - 1))))], 2) if seen else None,
        "max_s": round(seen[-1], 2) if seen else None,
        "serve_rss_mb": [rss_start, rss_end],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--changes", type=int, default=8)
    ap.add_argument("--stock-seconds", type=int, default=15)
    ap.add_argument("--idle-ticks", type=int, default=240, help="ticks of the memory sampling (0 = none)")
    args = ap.parse_args()
    out: dict[str, Any] = {
        "products": args.products,
        "changes": args.changes,
        "stock_seconds": args.stock_seconds,
    }
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        build_demo_database(
            base / "torgsoft.fdb", base / "photos", products=args.products, seed=7, image_pool=20
        )
        sandbox = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(base / "sandbox")],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert sandbox.stdout is not None
            url, token = sandbox.stdout.readline().split()
            os.environ[TOKEN_ENV] = token
            path = _settings_file(base, url, args.stock_seconds, change_query=True)
            settings = load(path)
            _run("--settings", str(path), "feed")
            state = State(settings.journal.state_path)
            offers = feed_offers.read_all(state)
            state.close()
            import httpx

            products = [
                {"external_id": k, "name": f"Товар {k}", "price": 1, "quantity_in_stock": 999} for k in offers
            ]
            for i in range(0, len(products), 2000):
                httpx.post(
                    url.rsplit("/api/v1", 1)[0] + "/_sandbox/products",
                    json=products[i : i + 2000],
                    headers={"X-Sandbox": "1"},
                    timeout=120,
                ).raise_for_status()
            _run("--settings", str(path), "push")  # Satu and the record agree
            goods = [int(k) for k, o in offers.items() if o.presence == "available"]
            # baseline: one sale, then the shortest path there was (a partial sync, end to end)
            con = connect(settings)
            con.cursor().execute(
                "UPDATE GOOD_STOCK SET QTY = QTY - 1 WHERE GOOD_ID = ?", (random.choice(goods),)
            )
            con.commit()
            con.close()
            out["baseline_partial_sync_s"] = round(_run("--settings", str(path), "sync", "--partial"), 2)
            client = SatuClient(url, token, timeout=30)
            gap = max(1.0, args.stock_seconds * 1.5)
            for mode, change_query in (("query", True), ("hash", False)):
                path = _settings_file(base, url, args.stock_seconds, change_query=change_query)
                res = _latencies(path, goods, args.changes, gap, client)
                res["idle_tick_cpu_s"] = _idle_tick_cpu(path)
                if args.idle_ticks > 0:
                    res["memory"] = _memory(path, args.idle_ticks)
                out[mode] = res
            client.close()
        finally:
            sandbox.kill()
    q = out["query"]
    out.update({k: q[k] for k in ("p50_s", "p95_s", "max_s", "idle_tick_cpu_s")})
    out["idle_tick_cpu_s_hash"] = out["hash"]["idle_tick_cpu_s"]
    if args.idle_ticks > 0:
        out.update({k: out["hash"]["memory"][k] for k in ("rss_first_mb", "rss_last_mb", "rss_growth_mb")})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
