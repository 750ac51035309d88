"""Benchmark: Satu orders → inbox files → Torgsoft, and the idempotent re-run.

    .venv/bin/python benchmarks/orders.py [--orders 5000] [--products 2000] [--seed 1]

Builds a private demo database, puts N orders made by the Satu sandbox's order generator (lines use
the demo catalog; a few lines are unknown goods; some orders paid, some cancelled) into a sandbox
served over real HTTP on 127.0.0.1, downloads them with `orders fetch` into the inbox, imports them
(one transaction per order), then drops the very same files into the inbox again and imports them a
second time: that re-run must create 0 new documents.

Baseline, measured in the same run on the same database file: the floor cost of one committed
transaction per order (one INSERT + COMMIT into a scratch table), i.e. what the engine's forced
writes allow at most with one transaction per order.

Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.devtools.demo_data import generate  # noqa: E402
from pipeline.devtools.sandbox import SandboxServer, generate_orders  # noqa: E402
from pipeline.journal import Journal  # noqa: E402
from pipeline.orders import fetch, inbox  # noqa: E402
from pipeline.settings import build  # noqa: E402
from pipeline.state import State  # noqa: E402
from pipeline.torgsoft.connection import connect, create_database  # noqa: E402
from pipeline.torgsoft.schema import create_schema  # noqa: E402

TABLES = ("CUSTOMER_ORDER", "CUSTOMER_ORDER_ITEM", "CLIENT", "RESERVATION", "INVOICE", "INVOICE_ITEM")


def counts(settings) -> dict[str, int]:
    con = connect(settings)
    try:
        cur = con.cursor()
        out = {}
        for t in TABLES:
            cur.execute(f"SELECT COUNT(*) FROM {t}")
            out[t] = cur.fetchone()[0]
        return out
    finally:
        con.close()


def baseline(settings, n: int) -> float:
    """Committed one-row transactions per second on the same database file."""
    con = connect(settings)
    try:
        cur = con.cursor()
        cur.execute("CREATE TABLE BENCH_BASELINE (ID INTEGER NOT NULL PRIMARY KEY, TXT VARCHAR(200))")
        con.commit()
        started = time.perf_counter()
        for i in range(n):
            cur.execute("INSERT INTO BENCH_BASELINE (ID, TXT) VALUES (?, ?)", (i, f"order {i}"))
            con.commit()
        return n / (time.perf_counter() - started)
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=5000)
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    try:
        con = create_database(work / "torgsoft.fdb")
        try:
            create_schema(con)
            generate(con, work / "photos", products=args.products, seed=args.seed, image_pool=10)
            cur = con.cursor()
            cur.execute(
                "SELECT g.GOOD_ID, g.ARTICUL, g.NAME, p.RETAIL_PRICE FROM GOOD g "
                "JOIN GOOD_PRICE p ON p.GOOD_ID = g.GOOD_ID AND p.ACCOUNTING_CENTER_ID = 0"
            )
            products = [(str(g), a or "", n, price) for g, a, n, price in cur.fetchall()]
        finally:
            con.close()
        sandbox = SandboxServer(work / "sandbox").start()
        os.environ["SATU_TOKEN"] = sandbox.token
        settings = build(
            {
                "torgsoft": {"database": str(work / "torgsoft.fdb")},
                "photos": {"source_dir": str(work / "photos")},
                "satu": {"base_url": sandbox.url},
                "orders": {"inbox": str(work / "inbox"), "settle_seconds": 0},
                "journal": {
                    "path": str(work / "journal.sqlite"),
                    "log_file": str(work / "sync.log"),
                    "state_path": str(work / "state.sqlite"),
                    "lock_file": str(work / "run.lock"),
                },
            },
            work,
        )
        journal, state = Journal.from_settings(settings), State.from_settings(settings)
        try:
            sandbox.create_orders(orders=generate_orders(args.orders, args.seed, products))
            t0 = time.perf_counter()
            fetched = fetch.run(settings, journal=journal, state=state)
            fetch_s = time.perf_counter() - t0
        finally:
            sandbox.stop()
        files = sorted((work / "inbox").glob("*.json"))
        keep = work / "copies"
        keep.mkdir()
        for f in files:
            shutil.copy2(f, keep / f.name)
        base_tps = baseline(settings, 300)

        before = counts(settings)
        t0 = time.perf_counter()
        first = inbox.run(settings, journal=journal, state=state)
        first_s = time.perf_counter() - t0
        after_first = counts(settings)

        for f in keep.iterdir():  # the very same files again
            shutil.copy2(f, work / "inbox" / f.name)
        t0 = time.perf_counter()
        second = inbox.run(settings, journal=journal, state=state)
        second_s = time.perf_counter() - t0
        after_second = counts(settings)
        new_docs = sum(after_second[t] - after_first[t] for t in TABLES)

        print(
            json.dumps(
                {
                    "benchmark": "orders",
                    "orders": args.orders,
                    "order_source": "pipeline.devtools.sandbox.generate_orders via the sandbox over HTTP + orders fetch",
                    "products": args.products,
                    "fetch_seconds": round(fetch_s, 2),
                    "fetched_files": fetched.written,
                    "import_seconds": round(first_s, 2),
                    "orders_per_second": round(args.orders / first_s, 1),
                    "imported": first.imported,
                    "updated": first.updated,
                    "unchanged": first.unchanged,
                    "quarantined": first.quarantined,
                    "failed": first.failed,
                    "invoices": first.invoices,
                    "unmatched_lines": first.unmatched_lines,
                    "documents_created": {t: after_first[t] - before[t] for t in TABLES},
                    "rerun_seconds": round(second_s, 2),
                    "rerun_files_per_second": round(len(files) / second_s, 1),
                    "rerun_unchanged": second.unchanged,
                    "rerun_new_documents": new_docs,
                    "baseline_commits_per_second": round(base_tps, 1),
                    "baseline": "one INSERT + COMMIT per transaction on the same database file (forced writes): "
                    "the ceiling for one transaction per order",
                    "cpu_count": os.cpu_count(),
                },
                ensure_ascii=False,
            )
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
