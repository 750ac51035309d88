"""Benchmark: 10k stock changes pushed to the Satu sandbox, batched vs one request per item.

The sandbox runs in its own process (as in the demo) on 127.0.0.1. Three measurements in one run:
- `push_run`: the real stage (`pipeline.satu.push.run`): diff against the acknowledged state,
  batches of 100, acknowledgements written to SQLite state;
- `client_batched`: the same 10k changes through `SatuClient.edit_products` alone;
- `baseline_one_per_item`: the same 10k changes, one `edit_by_external_id` call per item.
Prints one JSON line.

    .venv/bin/python benchmarks/push.py [--items 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.journal import Journal  # noqa: E402
from pipeline.satu.client import SatuClient  # noqa: E402
from pipeline.satu.push import ACKED_NS, FEED_NS, desired_state, run  # noqa: E402
from pipeline.settings import build  # noqa: E402
from pipeline.state import State  # noqa: E402

_SERVER = """
import sys
from pipeline.devtools.sandbox import SandboxServer
s = SandboxServer(sys.argv[1], port=0).start()
print(s.url, s.token, flush=True)
s.serve_forever()
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=10_000)
    n = ap.parse_args().items
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
            settings = build(
                {
                    "satu": {"base_url": url, "token_env": "SATU_BENCH_TOKEN"},
                    "journal": {
                        "path": str(base / "j.sqlite"),
                        "log_file": str(base / "sync.log"),
                        "state_path": str(base / "state.sqlite"),
                    },
                },
                base,
            )
            state, journal = State.from_settings(settings), Journal.from_settings(settings)
            record = {
                k: {"price": "1000", "quantity": i % 4, "presence": "available" if i % 4 else "waiting"}
                for i, k in enumerate(ids)
            }
            state.put_many(FEED_NS, record.items())
            state.put_many(
                ACKED_NS,
                (
                    (k, {**desired_state(v), "quantity_in_stock": 5, "presence": "available"})
                    for k, v in record.items()
                ),
            )
            state.put("satu.push", "last_full", time.time())
            t = time.perf_counter()
            r = run(settings, journal=journal, state=state, client=client)
            push_s = time.perf_counter() - t
            assert r.ok and r.accepted == n and r.changed == n, r

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
                for i, k in enumerate(ids)
            ]
            before = client.requests
            t = time.perf_counter()
            accepted = 0
            for it in items:
                accepted += len(client.edit_products([it]).processed_ids)
            single_s = time.perf_counter() - t
            single_req = client.requests - before
            assert accepted == n
            client.close()
            journal.close()
            state.close()
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
                    "requests": r.requests,
                    "items_per_s": round(n / push_s),
                },
                "client_batched": {
                    "seconds": round(batched_s, 3),
                    "requests": batched_req,
                    "items_per_s": round(n / batched_s),
                },
                "baseline_one_per_item": {
                    "seconds": round(single_s, 3),
                    "requests": single_req,
                    "items_per_s": round(n / single_s),
                },
                "speedup_push_vs_baseline": round(single_s / push_s, 1),
                "request_ratio": round(single_req / r.requests, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
