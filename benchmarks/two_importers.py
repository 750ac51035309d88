"""Benchmark: two `orders watch` processes and a cron-like `orders import` on ONE embedded database.

    .venv/bin/python benchmarks/two_importers.py [--rounds 20] [--orders 80] [--round-timeout 90]

Each round copies a fresh demo database, starts two real `run.py orders watch` processes (each with
two import workers) on one inbox, and drops order files into the inbox while they run: new orders of
a few shared customers (they race to create the customer), duplicates under other names, and updates
of orders already imported (they take the order-row lock). A cron-like `orders import` is started
every `--cron-every` seconds. The round ends when every file is in done/ or quarantine/, or after
`--round-timeout` seconds (a stall: the watchers are then killed with SIGKILL).

Measured: the longest no-progress gap of the round — the longest time during which files were
waiting (in the inbox or claimed) and no file finished — and its distribution over the rounds
(min, p50, p90, p95, max by nearest rank, and every gap). The baseline is the same load on ONE watcher
(no cron run), measured in the same invocation.

Prints ONE JSON line.

Measured (2 shared cores, 250 orders = 362 files per round, 60 s round cap):
- without the write gate (pipeline/torgsoft/writegate.py): 4 of 50 rounds stalled until killed
  (no file finished for 54–117 s, every watcher needing SIGKILL); the others' longest gap 0.5–2.3 s;
- with it: 0 of 60 rounds stalled; longest gap median 1.2 s, max 3.3 s (under heavy machine load);
  a round takes ~7 s instead of ~6 s (orders are written one at a time per database file).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from order_factory import satu_order  # noqa: E402
from pipeline.devtools.demo_data import build_demo_database  # noqa: E402


def _settings_file(base: Path) -> Path:
    text = f"""
[torgsoft]
database = "{base / "torgsoft.fdb"}"
[photos]
source_dir = "{base / "photos"}"
[orders]
inbox = "{base / "inbox"}"
settle_seconds = 0
import_workers = 2
[journal]
path = "{base / "journal.sqlite"}"
log_file = "{base / "sync.log"}"
state_path = "{base / "state.sqlite"}"
lock_file = "{base / "run.lock"}"
"""
    path = base / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _order(i: int, version: int) -> dict:
    return satu_order(
        10_000 + i,
        phone=f"+7 701 000 00 {i % 5:02d}",
        email="",
        paid=i % 4 == 0,
        modified=f"2026-11-27T10:{version:02d}:00.000000+05:00",
        comment_version=version,
        lines=[
            {"external_id": str(30 + i % 7), "quantity": 1 + (i + version) % 3},
            {"external_id": str(40 + i % 3), "quantity": 1},
        ],
    )


def _drop(box: Path, name: str, data: dict) -> None:
    tmp = box / f".{name}.tmp"
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, box / name)


def _plan(n: int) -> list[tuple[str, dict]]:
    """The files of one round in arrival order: new orders, duplicates and updates interleaved."""
    files: list[tuple[str, dict]] = []
    for i in range(n):
        files.append((f"satu-order-{10_000 + i}-v0.json", _order(i, 0)))
        if i % 5 == 4:
            files.append((f"again-{10_000 + i - 2}.json", _order(i - 2, 0)))
        if i % 4 == 3:
            files.append((f"satu-order-{10_000 + i - 3}-v1.json", _order(i - 3, 1)))
    return files


def _finished(box: Path) -> int:
    return sum(
        1
        for d in ("done", "quarantine")
        if (box / d).exists()
        for p in (box / d).iterdir()
        if p.suffix == ".json"
    )


def _start(settings: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(settings), "orders", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(procs: list[subprocess.Popen], grace: float = 10.0) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds; returns how many needed SIGKILL."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    killed = 0
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            killed += 1
    return killed


def one_round(template: Path, work: Path, args: argparse.Namespace, watchers: int, cron: bool) -> dict:
    """Run one round; returns its longest no-progress gap and whether it finished."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    shutil.copy(template / "torgsoft.fdb", work / "torgsoft.fdb")
    (work / "photos").mkdir()
    box = work / "inbox"
    box.mkdir()
    settings = _settings_file(work)
    plan = _plan(args.orders)
    procs = [_start(settings, "watch") for _ in range(watchers)]
    crons: list[subprocess.Popen] = []
    started = time.monotonic()
    last_progress = started
    finished_before = 0
    longest = 0.0
    next_cron = started + args.cron_every
    sent = 0
    dumped = False
    while True:
        now = time.monotonic()
        while sent < len(plan) and sent < (now - started) / args.interval:
            _drop(box, *plan[sent])
            sent += 1
        if cron and now >= next_cron and not any(c.poll() is None for c in crons):
            crons.append(_start(settings, "import"))
            next_cron = now + args.cron_every
        finished = _finished(box)
        if finished != finished_before:
            finished_before = finished
            last_progress = now
        waiting = sent - finished
        if waiting <= 0:
            last_progress = now  # nothing to do is not a stall
        longest = max(longest, now - last_progress)
        if sent == len(plan) and finished >= len(plan):
            break
        if args.dump_stacks and now - last_progress > args.dump_after and not dumped:
            dumped = True
            _dump_stacks(procs + crons, args.dump_stacks)
        if now - started > args.round_timeout:
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    killed = _stop(procs + crons)
    return {
        "gap": round(longest, 2),
        "finished": finished_before >= len(plan),
        "files": len(plan),
        "done": finished_before,
        "quarantined": len(list((box / "quarantine").glob("*.json"))),
        "seconds": round(elapsed, 1),
        "sigkill_needed": killed,
    }


def _dump_stacks(procs: list[subprocess.Popen], folder: str) -> None:
    """Diagnostics of a stall: every native thread's stack of every importer (needs gdb)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for p in procs:
        if p.poll() is not None or shutil.which("gdb") is None:
            continue
        with open(out / f"stall-{int(time.time())}-{p.pid}.txt", "w") as fh:
            subprocess.run(
                ["gdb", "-p", str(p.pid), "-batch", "-ex", "thread apply all bt"],
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )


def _rank(sorted_values: list[float], pct: int) -> float:
    """The nearest-rank percentile (a value that was measured, never an interpolation)."""
    n = len(sorted_values)
    return sorted_values[min(n - 1, max(0, -(-pct * n // 100) - 1))]


def _dist(rounds: list[dict]) -> dict:
    gaps = sorted(r["gap"] for r in rounds)
    return {
        "rounds": len(rounds),
        "gap_min": gaps[0],
        "gap_p50": _rank(gaps, 50),
        "gap_median": statistics.median(gaps),
        "gap_p90": _rank(gaps, 90),
        "gap_p95": _rank(gaps, 95),
        "gap_max": gaps[-1],
        "gaps": gaps,
        "stalled_rounds": sum(1 for r in rounds if not r["finished"]),
        "quarantined": sum(r["quarantined"] for r in rounds),
        "sigkill_needed": sum(r["sigkill_needed"] for r in rounds),
        "round_seconds_median": statistics.median(r["seconds"] for r in rounds),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--baseline-rounds", type=int, default=3)
    ap.add_argument("--orders", type=int, default=80, help="new orders per round (plus duplicates, updates)")
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between two arriving files")
    ap.add_argument("--cron-every", type=float, default=3.0)
    ap.add_argument("--round-timeout", type=float, default=90.0)
    ap.add_argument("--dump-stacks", default="", help="folder for gdb stacks of stalled importers")
    ap.add_argument("--dump-after", type=float, default=20.0, help="seconds without progress before a dump")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-two-importers-"))
    try:
        template = work / "template"
        build_demo_database(
            template / "torgsoft.fdb", template / "photos", products=300, seed=7, image_pool=5
        )
        base = [one_round(template, work / "round", args, 1, False) for _ in range(args.baseline_rounds)]
        rounds = []
        for n in range(args.rounds):
            rounds.append(one_round(template, work / "round", args, 2, True))
            print(f"round {n + 1}: {rounds[-1]}", file=sys.stderr, flush=True)
        print(
            json.dumps(
                {
                    "benchmark": "two_importers",
                    "orders_per_round": args.orders,
                    "files_per_round": rounds[0]["files"] if rounds else 0,
                    "round_timeout": args.round_timeout,
                    "two_watchers_and_cron": _dist(rounds) if rounds else None,
                    "baseline_one_watcher": _dist(base) if base else None,
                }
            )
        )
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
