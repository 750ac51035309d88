"""Benchmark: streaming the catalog through the reader vs. a bare cursor over the same queries.

For each size (100k and 300k goods) a demo database is built once and cached under var/bench/. Every
measurement runs in a fresh subprocess, so its peak RSS (`ru_maxrss`) is its own:
- floor:  a bare fdb cursor runs the four catalog queries of the SQL mapping (products, stock, photos,
          characteristics) one after the other and fetches every row, doing nothing with them;
- reader: `open_catalog(settings).products()` — the same queries, merged and mapped to Product objects.
Each is run `--repeat` times, alternating, and the fastest time (the machine is shared) and the highest
peak RSS are kept. Prints one JSON line; target: reader within 1.5× of the floor, RSS flat 100k → 300k.

    .venv/bin/python benchmarks/extract.py [--sizes 100000,300000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DIR = ROOT / "var" / "bench"
SEED = 1
DATA_VERSION = 3  # bump when the generator changes in a way that matters here


def _paths(size: int) -> tuple[Path, Path, Path]:
    base = BENCH_DIR / f"extract-{size}"
    return base / "torgsoft.fdb", base / "photos", base / "built.json"


def _cached(size: int) -> dict | None:
    db, _, marker = _paths(size)
    if marker.exists() and db.exists():
        info = json.loads(marker.read_text())
        if info.get("version") == DATA_VERSION and info.get("products") == size:
            return info
    return None


def ensure_db(size: int) -> dict:
    """The summary of the demo database of `size` goods, built first unless a complete one is cached.

    The build runs in its own interpreter: built here, the builder's memory would stay in this process
    and the measurement children started from it would carry it in their peak RSS."""
    info = _cached(size)
    if info is None:
        proc = subprocess.run(
            [sys.executable, __file__, "--build", str(size)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        info = _cached(size)
        if proc.returncode or info is None:
            raise SystemExit(f"building the {size}-good database failed:\n{proc.stderr[-3000:]}")
    return info


def build_db(size: int) -> None:
    """Build the demo database of `size` goods and its summary marker (run in a child: see ensure_db)."""
    db, photos, marker = _paths(size)
    from pipeline.devtools.demo_data import generate
    from pipeline.torgsoft.connection import create_database
    from pipeline.torgsoft.schema import create_schema

    marker.unlink(missing_ok=True)
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    cpu = time.process_time()
    con = create_database(db)
    try:
        create_schema(con)
        summary = generate(con, photos, products=size, seed=SEED)
    finally:
        con.close()
    info = {
        "version": DATA_VERSION,
        "products": size,
        "photos": summary.photos,
        "build_s": round(time.perf_counter() - started, 1),
        "build_cpu_s": round(time.process_time() - cpu, 1),
    }
    marker.write_text(json.dumps(info))


def _settings(db: Path):
    from pipeline.settings import build

    return build({"torgsoft": {"database": str(db)}}, db.parent)


def child(kind: str, db: Path) -> dict:
    """One measurement in this (fresh) process: rows/products seen, seconds, peak RSS."""
    from pipeline.torgsoft.catalog import FETCH_SIZE, open_catalog
    from pipeline.torgsoft.connection import connect
    from pipeline.torgsoft.mapping import Mapping

    settings = _settings(db)
    count = 0
    if kind == "floor":
        mapping = Mapping(None)
        con = connect(settings)
        started, cpu = time.perf_counter(), time.process_time()
        cur = con.cursor()
        for name in ("products", "stock", "photos", "characteristics"):
            q = mapping.query(name)
            cur.execute(q.sql, q.args({"price_center": 0}))
            while True:
                rows = cur.fetchmany(FETCH_SIZE)
                if not rows:
                    break
                count += len(rows)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        con.close()
    else:
        with open_catalog(settings, check=False) as cat:
            started, cpu = time.perf_counter(), time.process_time()
            for product in cat.products():
                count += 1 + len(product.stocks) + len(product.photos) + len(product.characteristics)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # CPU time counts the embedded engine's threads too (same process); it is less disturbed than the
    # wall clock when other work shares the machine.
    return {
        "kind": kind,
        "rows": count,
        "seconds": seconds,
        "cpu_s": cpu,
        "peak_rss_mb": round(rss_kb / 1024, 1),
    }


def measure(kind: str, db: Path) -> dict:
    """Run one measurement in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--database", str(db)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", choices=("reader", "floor"))
    parser.add_argument("--database", type=Path)
    parser.add_argument("--build", type=int, metavar="N", help=argparse.SUPPRESS)  # (ensure_db's child)
    args = parser.parse_args()
    if args.build:
        build_db(args.build)
        return
    if args.child:
        print(json.dumps(child(args.child, args.database)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    result: dict = {
        "benchmark": "extract",
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "loadavg_start": round(os.getloadavg()[0], 2),
        "sizes": {},
    }
    for size in sizes:
        built = ensure_db(size)
        db = _paths(size)[0]
        runs: dict[str, list[dict]] = {"floor": [], "reader": []}
        for _ in range(args.repeat):
            for kind in ("floor", "reader"):
                runs[kind].append(measure(kind, db))
        floor = min(r["seconds"] for r in runs["floor"])
        reader = min(r["seconds"] for r in runs["reader"])
        floor_cpu = min(r["cpu_s"] for r in runs["floor"])
        reader_cpu = min(r["cpu_s"] for r in runs["reader"])
        rows = {r["rows"] for r in runs["floor"] + runs["reader"]}
        result["sizes"][str(size)] = {
            "floor_s": round(floor, 2),
            "reader_s": round(reader, 2),
            "ratio": round(reader / floor, 3),
            "floor_cpu_s": round(floor_cpu, 2),
            "reader_cpu_s": round(reader_cpu, 2),
            "ratio_cpu": round(reader_cpu / floor_cpu, 3),
            "floor_rss_mb": max(r["peak_rss_mb"] for r in runs["floor"]),
            "reader_rss_mb": max(r["peak_rss_mb"] for r in runs["reader"]),
            "rows": sorted(rows),
            "db_build_s": built.get("build_s"),
            "db_build_cpu_s": built.get("build_cpu_s"),
        }
    first, last = str(sizes[0]), str(sizes[-1])
    result["ratio_reader_floor"] = max(v["ratio"] for v in result["sizes"].values())
    result["ratio_reader_floor_cpu"] = max(v["ratio_cpu"] for v in result["sizes"].values())
    result["reader_rss_mb_first"] = result["sizes"][first]["reader_rss_mb"]
    result["reader_rss_mb_last"] = result["sizes"][last]["reader_rss_mb"]
    result["rss_growth"] = round(result["reader_rss_mb_last"] / result["reader_rss_mb_first"], 3)
    result["target"] = "ratio <= 1.5 and rss_growth ~ 1.0"
    result["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
