"""Benchmark: 10k stock changes pushed to the Satu sandbox, batched vs one request per item.

The sandbox runs in its own process (as in the demo) on 127.0.0.1. Three measurements in one run:
- `push_run`: the real stage (`pipeline.satu.push.run`) in a fresh process of its own: diff against
  the acknowledged state, batches of 100, acknowledgements written to SQLite state; with that
  process's RSS before the push (`rss_start_mb`: the interpreter and its imports) and its peak
  (`peak_rss_mb`, VmHWM), so the memory the push itself holds is `push_rss_mb`;
- `client_batched`: the same changes through `SatuClient.edit_products` alone;
- `baseline_one_per_item`: `--per-item` of the changes (all by default, up to 10k), one
  `edit_by_external_id` call per item.
Prints one JSON line.

    .venv/bin/python benchmarks/push.py [--items 10000] [--per-item 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.satu.client import SatuClient  # noqa: E402
from pipeline.satu.push import ACKED_NS, FEED_NS, desired_state  # noqa: E402
from pipeline.settings import build  # noqa: E402
from pipeline.state import State  # noqa: E402

_SERVER = """
import sys
from pipeline.devtools.sandbox import SandboxServer
s = SandboxServer(sys.argv[1], port=0).start()
print(s.url, s.token, flush=True)
s.serve_forever()
"""
# The push stage alone in a fresh process: its figures and its memory, as one JSON line.
_PUSH = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)

from pipeline.journal import Journal
from pipeline.satu.client import SatuClient
from pipeline.satu.push import run
from pipeline.settings import build
from pipeline.state import State
settings = build(json.loads(sys.argv[2]), Path(sys.argv[3]))
state, journal = State.from_settings(settings), Journal.from_settings(settings)
client = SatuClient(sys.argv[4], sys.argv[5], timeout=60)
start = status("VmRSS")
t, c = time.perf_counter(), time.process_time()
r = run(settings, journal=journal, state=state, client=client)
seconds, cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"seconds": seconds, "cpu_s": round(cpu, 3), "requests": r.requests, "accepted": r.accepted, "changed": r.changed,
                  "ok": r.ok, "rss_start_mb": start, "peak_rss_mb": status("VmHWM")}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--per-item", type=int, default=None, help="items of the one-per-item baseline")
    args = ap.parse_args()
    n = args.items
    single_n = min(n, args.per_item if args.per_item is not None else 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(base / "sandbox")],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            url, token = proc.stdout.readline().split()
            root = url.rsplit("/api/v1", 1)[0]
            client = SatuClient(url, token, timeout=30)
            import httpx

            ids = [str(100000 + i) for i in range(n)]
            for i in range(0, n, 2000):
                httpx.post(
                    f"{root}/_sandbox/products",
                    timeout=120,
                    headers={"X-Sandbox": "1"},
                    json=[
                        {"external_id": k, "name": f"Товар {k}", "price": 1000, "quantity_in_stock": 5}
                        for k in ids[i : i + 2000]
                    ],
                ).raise_for_status()

            # 1. the real stage: every offer's stock changed since Satu's last acknowledgement
            os.environ["SATU_BENCH_TOKEN"] = token
            data = {
                # the request budget is not what is measured here
                "satu": {"base_url": url, "token_env": "SATU_BENCH_TOKEN", "max_requests_per_minute": 0},
                "journal": {
                    "path": str(base / "j.sqlite"),
                    "log_file": str(base / "sync.log"),
                    "state_path": str(base / "state.sqlite"),
                },
            }
            settings = build(data, base)
            state = State.from_settings(settings)

            def record() -> Iterator[tuple[str, dict]]:
                for i, k in enumerate(ids):
                    yield (
                        k,
                        {"price": "1000", "quantity": i % 4, "presence": "available" if i % 4 else "waiting"},
                    )

            state.put_many(FEED_NS, record())
            state.put_many(
                ACKED_NS,
                (
                    (k, {**desired_state(v), "quantity_in_stock": 5, "presence": "available"})
                    for k, v in record()
                ),
            )
            state.put("satu.push", "last_full", time.time())
            state.close()
            child = subprocess.run(
                [sys.executable, "-c", _PUSH, str(ROOT), json.dumps(data), str(base), url, token],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            pushed = json.loads(child.stdout.strip().splitlines()[-1])
            push_s = pushed["seconds"]
            assert pushed["ok"] and pushed["accepted"] == n and pushed["changed"] == n, pushed

            # 2. client only, batched
            items = [
                {"id": k, "quantity_in_stock": (i % 7) + 1, "presence": "available"}
                for i, k in enumerate(ids)
            ]
            before = client.requests
            t = time.perf_counter()
            res = client.edit_products(items)
            batched_s = time.perf_counter() - t
            batched_req = client.requests - before
            assert res.ok and len(res.processed_ids) == n

            # 3. baseline: one request per item
            items = [
                {"id": k, "quantity_in_stock": (i % 5) + 10, "presence": "available"}
                for i, k in enumerate(ids[:single_n])
            ]
            before = client.requests
            t = time.perf_counter()
            accepted = 0
            for it in items:
                accepted += len(client.edit_products([it]).processed_ids)
            single_s = time.perf_counter() - t
            single_req = client.requests - before
            assert accepted == single_n
            client.close()
        finally:
            proc.terminate()
            proc.wait(10)
    print(
        json.dumps(
            {
                "benchmark": "push",
                "items": n,
                "push_run": {
                    "seconds": round(push_s, 3),
                    "cpu_s": pushed["cpu_s"],
                    "requests": pushed["requests"],
                    "items_per_s": round(n / push_s),
                    "rss_start_mb": pushed["rss_start_mb"],
                    "peak_rss_mb": pushed["peak_rss_mb"],
                    "push_rss_mb": round(pushed["peak_rss_mb"] - pushed["rss_start_mb"], 1),
                },
                "client_batched": {
                    "seconds": round(batched_s, 3),
                    "requests": batched_req,
                    "items_per_s": round(n / batched_s),
                },
                "baseline_one_per_item": {
                    "items": single_n,
                    "seconds": round(single_s, 3),
                    "requests": single_req,
                    "items_per_s": round(single_n / single_s),
                },
                # per item: the baseline may have sent a sample only
                "speedup_push_vs_baseline": round((single_s / single_n) / (push_s / n), 1),
                "request_ratio": round((single_req / single_n) / (pushed["requests"] / n), 1),
                "peak_rss_mb": pushed["peak_rss_mb"],
            }
        )
    )


if __name__ == "__main__":
    main()
