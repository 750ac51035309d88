"""Benchmark of the `feed` stage against its floor, at 100k and 300k demo products.

Floor (measured in the same run, same database, same photo URLs): stream the catalog through the
reader and serialise the same offers (same filters, same fields, raw text) with `lxml.etree.xmlfile`
— the cost any feed writer must pay. The feed run does everything `feed` does: rules, sanitising,
slugs, template render to a temp file, full validation (XSD + rules), diff, history, groups file and
the per-offer state for the API push. Each measurement runs in a fresh subprocess; peak RSS is that
process's maximum resident set (the feed's validation helper is reported apart, helper_peak_rss_mb).

    .venv/bin/python benchmarks/feed.py [--sizes 100000,300000] [--repeat 1]

Demo databases are cached under var/bench/ (built once with pipeline.devtools.demo_data.generate).
Prints one JSON line: wall seconds and CPU seconds (user + system of the child, which includes the
embedded Firebird engine, plus its own children: the feed's validation helper process) for both, their ratios, and peak RSS. On a shared machine the CPU ratio is
the steadier figure; both are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "var" / "bench"
TARGET_RATIO = 1.5
TARGET_RSS_MB = 300


def settings_for(base: Path, out_dir: Path):
    from pipeline.settings import build

    return build(
        {
            "torgsoft": {"database": str(base / "torgsoft.fdb")},
            "photos": {"source_dir": str(base / "photos")},
            "journal": {
                "path": str(out_dir / "journal.sqlite"),
                "log_file": str(out_dir / "sync.log"),
                "state_path": str(out_dir / "state.sqlite"),
                "lock_file": str(out_dir / "run.lock"),
            },
            "feed": {
                "output": str(out_dir / "feeds" / "satu.yml"),
                "history_dir": str(out_dir / "feeds" / "history"),
                "template": str(ROOT / "templates" / "satu.yml.j2"),
                "url": "https://shop.example.kz",  # (the settings ship none: offers would have no <url>)
            },
            # a public-looking address, so the feed carries every picture (the settings ship none)
            "publish": {"public_base_url": "https://img.shop.example.kz"},
        },
        out_dir,
    )


def ensure_db(n: int) -> Path:
    """The cached demo database of n products (built on first use), with every pool photo 'published'.

    The build runs in its own interpreter: built here, the builder's memory would stay in this process
    and every measurement child forked from it would start from it (and report it as its peak RSS)."""
    base = CACHE / f"demo-{n}"
    if (base / "ready").exists():
        return base
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, __file__, "--build", str(n)], capture_output=True, text=True, check=False
    )
    if proc.returncode or not (base / "ready").exists():
        raise SystemExit(f"building the {n}-product database failed:\n{proc.stderr[-3000:]}")
    print(f"built {base} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return base


def build_db(n: int) -> None:
    """Build the demo database of n products under var/bench/ (run in a child: see `ensure_db`)."""
    base = CACHE / f"demo-{n}"
    from pipeline.devtools.demo_data import generate
    from pipeline.state import State
    from pipeline.torgsoft.connection import create_database
    from pipeline.torgsoft.schema import create_schema

    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    con = create_database(base / "torgsoft.fdb")
    try:
        create_schema(con)
        generate(con, base / "photos", products=n, seed=1)
    finally:
        con.close()
    photo_dir = base / "photos"
    state = State(base / "published.sqlite")
    state.put_many(
        "photos.published",
        [
            (p.relative_to(photo_dir).as_posix(), {"name": f"photos/{p.stem}.jpg", "ok": True})
            for p in photo_dir.rglob("*.*")
            if "corrupt" not in p.name
        ],
    )
    state.close()
    (base / "ready").write_text("ok")


def child_floor(base: Path, out_dir: Path) -> dict:
    """Reader + lxml xmlfile serialisation of the same offers (same filters and fields, no rules/template)."""
    from lxml import etree

    from pipeline.contracts.photo_urls import PhotoIndex
    from pipeline.state import State
    from pipeline.torgsoft.catalog import open_catalog

    s = settings_for(base, out_dir)
    index = PhotoIndex(State(out_dir / "state.sqlite"), s.publish.public_base_url)
    offers = 0
    with open_catalog(s) as source, etree.xmlfile(str(out_dir / "floor.yml"), encoding="utf-8") as xf:
        sections = source.sections()
        xf.write_declaration()
        with xf.element("yml_catalog", date="2026-01-01 00:00"), xf.element("shop"):
            with xf.element("categories"):
                for c in sections:
                    el = etree.Element("category", id=str(c.id))
                    if c.parent_id is not None:
                        el.set("parentId", str(c.parent_id))
                    el.text = c.name
                    xf.write(el)
            with xf.element("offers"):
                for p in source.products():
                    qty = p.available_qty
                    if (
                        p.deleted
                        or not p.display_on_site
                        or p.section_id is None
                        or not p.retail_price
                        or qty <= 0
                    ):
                        continue
                    offers += 1
                    o = etree.Element("offer", id=p.offer_id, available="true", selling_type="r")
                    for tag, value in (
                        ("name", p.name),
                        ("description", p.description_html),
                        ("price", str(p.retail_price)),
                        ("currencyId", "KZT"),
                        ("categoryId", str(p.section_id)),
                        ("vendor", p.producer),
                        ("vendorCode", p.articul),
                        ("barcode", p.barcode),
                        ("country", p.country),
                        ("keywords", p.keywords),
                        ("quantity_in_stock", str(qty)),
                    ):
                        if value:
                            etree.SubElement(o, tag).text = value
                    for photo in p.photos[:10]:
                        url = index.url_for(photo)
                        if url:
                            etree.SubElement(o, "picture").text = url
                    for ch in p.characteristics:
                        etree.SubElement(o, "param", name=ch.name, unit=ch.unit).text = ch.value
                    xf.write(o)
    return {"offers": offers}


def child_feed(base: Path, out_dir: Path) -> dict:
    """The full feed stage."""
    from pipeline import feed
    from pipeline.journal import Journal
    from pipeline.state import State

    s = settings_for(base, out_dir)
    result = feed.run(s, journal=Journal.from_settings(s), state=State.from_settings(s))
    if not result.ok:
        raise SystemExit(f"feed failed: {result.problems[:5]} {result.stopped}")
    return {
        "offers": result.offers,
        "hidden": result.hidden,
        "skip_reasons": result.skip_reasons,
        "pictures_dropped": result.pictures_dropped,
        "bytes": Path(result.output).stat().st_size,
    }


def run_child(kind: str, base: Path) -> dict:
    """Run one measurement in a fresh interpreter; returns seconds, peak RSS and the child's counts."""
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        out_dir = Path(tmp)
        shutil.copy(base / "published.sqlite", out_dir / "state.sqlite")
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(base), str(out_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.monotonic() - started
        if proc.returncode:
            raise SystemExit(f"{kind} child failed:\n{proc.stderr[-3000:]}")
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        data["wall_s"] = round(elapsed, 2)
        # progress on stderr (a 1M run takes long; stdout keeps its one JSON line)
        load = [round(x, 2) for x in os.getloadavg()]
        print(f"{kind} {base.name}: {json.dumps(data)} load {load}", file=sys.stderr, flush=True)
        return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,300000")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (the best is kept)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "BASE", "OUT"))
    ap.add_argument("--build", type=int, metavar="N", help=argparse.SUPPRESS)  # (ensure_db's child)
    args = ap.parse_args()
    if args.build:
        build_db(args.build)
        return
    if args.child:
        kind, base, out = args.child
        started = time.monotonic()
        data = (child_floor if kind == "floor" else child_feed)(Path(base), Path(out))
        data["seconds"] = round(time.monotonic() - started, 2)
        usage = resource.getrusage(resource.RUSAGE_SELF)  # the embedded engine runs in-process: included
        helper = resource.getrusage(resource.RUSAGE_CHILDREN)  # the feed's validation helper (waited for)
        data["cpu_s"] = round(usage.ru_utime + usage.ru_stime + helper.ru_utime + helper.ru_stime, 2)
        data["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
        data["helper_peak_rss_mb"] = round(helper.ru_maxrss / 1024, 1)
        print(json.dumps(data))
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for n in (int(x) for x in args.sizes.split(",")):
        base = ensure_db(n)
        floors = [run_child("floor", base) for _ in range(args.repeat)]
        feeds = [run_child("feed", base) for _ in range(args.repeat)]
        floor = min(floors, key=lambda d: d["seconds"])
        full = min(feeds, key=lambda d: d["seconds"])
        results[str(n)] = {
            "feed_s": full["seconds"],
            "floor_s": floor["seconds"],
            "ratio": round(full["seconds"] / floor["seconds"], 2),
            "feed_cpu_s": full["cpu_s"],
            "floor_cpu_s": floor["cpu_s"],
            "cpu_ratio": round(full["cpu_s"] / floor["cpu_s"], 2),
            "feed_peak_rss_mb": max(d["peak_rss_mb"] for d in feeds),
            "floor_peak_rss_mb": max(d["peak_rss_mb"] for d in floors),
            "helper_peak_rss_mb": max(d["helper_peak_rss_mb"] for d in feeds),
            "offers": full["offers"],
            "floor_offers": floor["offers"],
            "feed_mb": round(full["bytes"] / 1e6, 1),
        }
    sizes = sorted(results, key=int)
    rss = [results[k]["feed_peak_rss_mb"] for k in sizes]
    print(
        json.dumps(
            {
                "benchmark": "feed",
                "cpus": os.cpu_count(),
                "results": results,
                "targets": {"ratio_max": TARGET_RATIO, "peak_rss_mb_max": TARGET_RSS_MB},
                "load_avg": [round(x, 2) for x in os.getloadavg()],
                "met": {
                    "ratio": all(r["ratio"] <= TARGET_RATIO for r in results.values()),
                    "cpu_ratio": all(r["cpu_ratio"] <= TARGET_RATIO for r in results.values()),
                    "rss": all(x <= TARGET_RSS_MB for x in rss),
                    "rss_growth_mb": round(rss[-1] - rss[0], 1) if len(rss) > 1 else 0.0,
                },
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
