"""Benchmark of `status push`: detection cost by change-time cursor vs. by hash only, and push cost.

Builds a scratch embedded database with N Satu orders and a Satu sandbox holding K of them, takes the
baseline, then measures in the same run:
- an idle run (nothing changed) with the built-in query (cursor on CHANGED_AT) and with a mapping
  without changed_at (every order read, compared by hash) — the hash-only run is the baseline figure;
- K changed orders (status + waybill) pushed over real HTTP, with and without read-before-write.
Prints one JSON line. Usage: .venv/bin/python benchmarks/status_push.py [--orders N] [--changed K]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.devtools.demo_data import bulk_insert  # noqa: E402
from pipeline.devtools.sandbox import SandboxServer, generate_orders  # noqa: E402
from pipeline.journal import Journal  # noqa: E402
from pipeline.orders import status as st  # noqa: E402
from pipeline.settings import build  # noqa: E402
from pipeline.state import State  # noqa: E402
from pipeline.torgsoft.connection import connect, create_database  # noqa: E402
from pipeline.torgsoft.schema import create_schema  # noqa: E402

COLUMNS = (
    "ID",
    "DOC_NUMBER",
    "DOC_DATE",
    "ACCOUNTING_CENTER_ID",
    "STATUS",
    "IS_PAID",
    "TTN",
    "TOTAL",
    "EXTERNAL_SOURCE",
    "EXTERNAL_ID",
    "CHANGED_AT",
)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=20000)
    ap.add_argument("--changed", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="status-bench-") as tmp:
        base = Path(tmp)
        sandbox = SandboxServer(base / "sandbox").start()
        try:
            os.environ["BENCH_SATU_TOKEN"] = sandbox.token
            satu = generate_orders(args.changed * 2, seed=3)
            for o in satu:
                o.update(
                    status="pending",
                    payment_data={"type": "cash", "status": "unpaid"},
                    delivery_provider_data={},
                    cancellation=None,
                )
            satu_ids = [o["id"] for o in sandbox.create_orders(orders=satu)]
            con = create_database(base / "torgsoft.fdb")
            create_schema(con)
            rows = []
            for i in range(args.orders):
                ext = satu_ids[i] if i < len(satu_ids) else 900_000_000 + i
                # changed over the past weeks, one a minute: only the newest hour is inside the overlap
                changed = datetime(2026, 11, 27) - timedelta(minutes=args.orders - i)
                rows.append((i + 1, f"S-{i + 1}", changed, 1, i % 2, 0, None, 0, "satu", str(ext), changed))
            bulk_insert(con, "CUSTOMER_ORDER", COLUMNS, rows)
            con.close()
            mdir = base / "mapping"
            mdir.mkdir()
            (mdir / "orders_for_status.sql").write_text(
                "SELECT EXTERNAL_ID AS external_id, STATUS AS status, IS_PAID AS is_paid, TTN AS ttn "
                "FROM CUSTOMER_ORDER WHERE EXTERNAL_SOURCE = :source",
                encoding="utf-8",
            )
            settings = build(
                {
                    "torgsoft": {"database": str(base / "torgsoft.fdb")},
                    "satu": {"base_url": sandbox.url, "token_env": "BENCH_SATU_TOKEN"},
                    "status": {"carrier": "kazpost", "retry_seconds": 0},
                    "journal": {
                        "path": str(base / "j.sqlite"),
                        "log_file": str(base / "sync.log"),
                        "state_path": str(base / "state.sqlite"),
                    },
                },
                base,
            )
            hash_settings = settings.replace(
                torgsoft=dataclasses.replace(settings.torgsoft, mapping_dir=mdir)
            )
            journal, state = Journal.from_settings(settings), State.from_settings(settings)

            def run(s, **kw):
                return st.run(s, journal=journal, state=state, **kw)

            res, t_baseline = timed(lambda: run(settings))
            assert res.baseline == args.orders
            run(hash_settings)  # warm-up (connection, caches)
            idle_hash, t_idle_hash = timed(lambda: run(hash_settings))
            assert idle_hash.checked == args.orders and idle_hash.changed == 0
            idle_cursor, t_idle_cursor = timed(lambda: run(settings))
            assert idle_cursor.changed == 0

            def change(ids: list[int]) -> None:
                con = connect(settings)
                cur = con.cursor()
                for n, oid in enumerate(ids):
                    cur.execute(
                        "UPDATE CUSTOMER_ORDER SET STATUS = 2, IS_PAID = 1, TTN = ? "
                        "WHERE EXTERNAL_SOURCE = 'satu' AND EXTERNAL_ID = ?",
                        (f"KZ{n:08d}", str(oid)),
                    )
                con.commit()
                con.close()

            figures = {}
            for label, ids, verify in (
                ("verify", satu_ids[: args.changed], True),
                ("no_verify", satu_ids[args.changed :], False),
            ):
                change(ids)
                s = settings.replace(status=dataclasses.replace(settings.status, verify_before_push=verify))
                calls_before = sum(sandbox.calls.values())
                res, seconds = timed(lambda s=s: run(s))
                assert res.pushed == args.changed and res.waybills == args.changed and res.ok, res
                figures[label] = {
                    "seconds": round(seconds, 3),
                    "api_calls": sum(sandbox.calls.values()) - calls_before,
                }
            journal.close()
            state.close()
        finally:
            sandbox.stop()
    print(
        json.dumps(
            {
                "benchmark": "status_push",
                "orders": args.orders,
                "changed": args.changed,
                "baseline_run_s": round(t_baseline, 3),
                "idle_run_cursor_s": round(t_idle_cursor, 3),
                "idle_cursor_rows_read": idle_cursor.checked,
                "idle_run_hash_only_s (baseline)": round(t_idle_hash, 3),
                "push_with_verify": figures["verify"],
                "push_without_verify": figures["no_verify"],
                "push_per_order_ms_verify": round(1000 * figures["verify"]["seconds"] / args.changed, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
