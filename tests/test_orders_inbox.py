"""The inbox on a real folder: quarantine of every damaged kind, settling, a killed importer, two importers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from order_factory import satu_order, write_order
from pipeline.journal import Journal
from pipeline.orders import inbox
from pipeline.settings import Settings
from pipeline.state import State
from pipeline.torgsoft.connection import connect

ROOT = Path(__file__).resolve().parent.parent


def _settings(env: Settings, **orders) -> Settings:
    from dataclasses import replace

    return env.replace(orders=replace(env.orders, **{"settle_seconds": 0, **orders}))


def _run(settings: Settings, **kw) -> inbox.InboxResult:
    return inbox.run(
        settings, journal=Journal.from_settings(settings), state=State.from_settings(settings), **kw
    )


def _scalar(settings: Settings, sql: str):
    con = connect(settings)
    try:
        cur = con.cursor()
        cur.execute(sql)
        return cur.fetchone()[0]
    finally:
        con.close()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


def test_every_damaged_kind_is_quarantined_with_a_reason_and_the_batch_goes_on(demo_env):
    s = _settings(demo_env, max_file_bytes=20_000)
    box = s.orders.inbox
    box.mkdir(parents=True)
    good = json.dumps({"order": satu_order(601)}, ensure_ascii=False).encode("utf-8")
    no_id = satu_order(602)
    del no_id["id"]
    damaged = {
        "truncated.json": good[:-40],
        "invalid.json": b'{"order": {"id": 5 "x": 1}}',
        "wrongtype.json": json.dumps({"order": satu_order(603, products={"a": 1})}).encode(),
        "noid.json": json.dumps(no_id).encode(),
        "nolines.json": json.dumps(satu_order(604, lines=[])).encode(),
        "latin1.json": json.dumps({"order": satu_order(605)}, ensure_ascii=False)
        .encode("utf-8")
        .replace("Айгерим".encode(), "Aïgerim".encode("latin-1")),
        "junk.bin": bytes(range(256)) * 4,
        "huge.json": b'{"order": {"id": 1, "pad": "' + b"x" * 30_000 + b'"}}',
        "empty.json": b"",
    }
    for name, data in damaged.items():
        (box / name).write_bytes(data)
    write_order(box, satu_order(601))
    write_order(box, satu_order(606, lines=[{"external_id": "3", "quantity": 1}]))
    result = _run(s)
    assert (result.imported, result.quarantined) == (2, len(damaged))
    assert not result.ok
    quarantine = box / "quarantine"
    for name in damaged:
        assert (quarantine / name).read_bytes() == damaged[name]  # kept byte for byte
    reasons = {name: (quarantine / f"{name}.reason.txt").read_text(encoding="utf-8") for name in damaged}
    assert reasons["truncated.json"].startswith("truncated JSON")
    assert reasons["invalid.json"].startswith("invalid JSON")
    assert "'products'" in reasons["wrongtype.json"] and "wrong type" in reasons["wrongtype.json"]
    assert "missing order id" in reasons["noid.json"]
    assert "missing order lines" in reasons["nolines.json"]
    assert "not UTF-8" in reasons["latin1.json"]
    assert "binary junk" in reasons["junk.bin"]
    assert "absurdly large" in reasons["huge.json"] and "30" in reasons["huge.json"]
    assert "empty file" in reasons["empty.json"]
    logged = {e.data["file"] for e in Journal.from_settings(s).search(grep="quarantined", level="error")}
    assert logged == set(damaged)
    assert len(_files(box / "done")) == 2 and _files(box) == ["done", "processing", "quarantine"]
    assert _scalar(s, "SELECT COUNT(*) FROM CUSTOMER_ORDER") == 2


def test_a_file_still_being_written_is_not_taken(demo_env):
    s = _settings(demo_env, settle_seconds=30)
    path = write_order(s.orders.inbox, satu_order(610))
    (s.orders.inbox / ".hidden.json.tmp").write_text("{")  # a producer's temp file is never touched
    result = _run(s, max_wait=0.3)
    assert (result.imported, result.waiting) == (0, 1) and path.exists()
    old = time.time() - 60
    os.utime(path, (old, old))
    result = _run(s, max_wait=0)
    assert result.imported == 1 and not path.exists()
    assert (s.orders.inbox / ".hidden.json.tmp").exists()


def _write_settings(s: Settings, workers: int = 2) -> Path:
    base = Path(s.base_dir)
    text = f"""
[torgsoft]
database = "{s.torgsoft.database}"
[photos]
source_dir = "{base / "photos"}"
[orders]
inbox = "{s.orders.inbox}"
settle_seconds = 0
import_workers = {workers}
[journal]
path = "{s.journal.path}"
log_file = "{s.journal.log_file}"
state_path = "{s.journal.state_path}"
lock_file = "{s.journal.lock_file}"
"""
    path = base / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _importer(settings_file: Path, kill_at: str | None = None) -> subprocess.Popen:
    """`orders import` in a child process; `kill_at` (POINT#N) SIGKILLs it at a fault point."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seam = ["--kill-at", kill_at] if kill_at else []
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline._testing", *seam, "--"]
        + ["--settings", str(settings_file), "orders", "import"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _claimed_name(box: Path, claim: str) -> str:
    """The inbox name of a claim (claims are named by a hash; the name is in a side file)."""
    return (box / "processing" / f".name-{claim.split('~', 1)[1]}").read_text(encoding="utf-8")


def _batch(box: Path, n: int, start: int = 700) -> None:
    for i in range(n):
        # A few shared phones: orders of one new customer race for creating that customer.
        write_order(
            box,
            satu_order(
                start + i,
                phone=f"+7 701 000 00 {i % 5:02d}",
                email="",
                paid=i % 4 == 0,
                lines=[
                    {"external_id": str(30 + i % 7), "quantity": 1 + i % 3},
                    {"external_id": str(40 + i % 3), "quantity": 1},
                ],
            ),
        )


def _assert_exactly_once(s: Settings, n: int) -> None:
    assert _scalar(s, "SELECT COUNT(*) FROM CUSTOMER_ORDER") == n
    assert _scalar(s, "SELECT COUNT(DISTINCT EXTERNAL_ID) FROM CUSTOMER_ORDER") == n
    assert _scalar(s, "SELECT COUNT(*) FROM CUSTOMER_ORDER_ITEM") == 2 * n
    assert _scalar(s, "SELECT COUNT(*) FROM CLIENT") == 5
    assert _scalar(s, "SELECT COUNT(*) FROM INVOICE") == len([i for i in range(n) if i % 4 == 0])
    # one reservation row per line (stock is plentiful for these goods in center 1, or awaiting)
    assert (
        _scalar(
            s,
            "SELECT COUNT(*) FROM (SELECT ORDER_ID, GOOD_ID FROM RESERVATION WHERE STATE IN (0, 3) "
            "GROUP BY ORDER_ID, GOOD_ID HAVING COUNT(*) > 1)",
        )
        == 0
    )
    # RESERVED_QTY equals the sum of active reservations we added (the demo's own reserve was 0 for these)
    assert (
        _scalar(
            s,
            "SELECT COUNT(*) FROM GOOD_STOCK s WHERE s.ACCOUNTING_CENTER_ID = 1 AND s.GOOD_ID "
            "BETWEEN 30 AND 42 AND s.RESERVED_QTY <> (SELECT COALESCE(SUM(r.QTY), 0) FROM RESERVATION r "
            "WHERE r.GOOD_ID = s.GOOD_ID AND r.ACCOUNTING_CENTER_ID = 1 AND r.STATE = 0)",
        )
        == 0
    )


def _clear_reserved(s: Settings) -> None:
    con = connect(s)
    try:
        con.cursor().execute(
            "UPDATE GOOD_STOCK SET RESERVED_QTY = 0, QTY = 100 WHERE GOOD_ID BETWEEN 30 AND 42"
        )
        con.commit()
    finally:
        con.close()


def test_importer_killed_mid_transaction_and_after_commit_then_rerun(demo_env):
    s = _settings(demo_env)
    _clear_reserved(s)
    box = s.orders.inbox
    _batch(box, 12)
    settings_file = _write_settings(s, workers=1)  # one thread: the kill points are deterministic
    # Killed in the middle of the 5th order's transaction (after its first reservation row) …
    p = _importer(settings_file, "importer.after:reservation_insert#5")
    p.wait(120)
    assert p.returncode == -9, p.stdout.read() if p.stdout else ""
    (claim,) = _files(box / "processing")  # the claim of the order being written stays behind …
    killed_id = _claimed_name(box, claim).split("satu-order-")[1].split("-")[0]
    assert (
        _scalar(s, f"SELECT COUNT(*) FROM CUSTOMER_ORDER WHERE EXTERNAL_ID = '{killed_id}'") == 0
    )  # … rolled back
    assert _scalar(s, "SELECT COUNT(*) FROM CUSTOMER_ORDER") == len(_files(box / "done")) > 0
    # … then killed after a commit but before the file moved to done/ (it first took the dead claim over) …
    p = _importer(settings_file, "inbox.before_done#3")
    p.wait(120)
    assert p.returncode == -9
    (claim,) = _files(box / "processing")
    killed_id = _claimed_name(box, claim).split("satu-order-")[1].split("-")[0]
    assert (
        _scalar(s, f"SELECT COUNT(*) FROM CUSTOMER_ORDER WHERE EXTERNAL_ID = '{killed_id}'") == 1
    )  # committed
    # … and the re-run takes the dead importers' claims over: nothing lost, nothing twice.
    p = _importer(settings_file)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert len(_files(box / "done")) == 12 and _files(box / "processing") == []
    _assert_exactly_once(s, 12)
    assert any("taking over" in e.message for e in Journal.from_settings(s).search(level="warning"))


def test_two_importer_processes_on_one_inbox(demo_env):
    s = _settings(demo_env)
    _clear_reserved(s)
    box = s.orders.inbox
    # Enough files that the second process is still finding work when it has started (start-up skew
    # between the two processes is up to a second on a loaded machine).
    _batch(box, 150)
    # The same orders again under other names (a second fetch, a copied folder): must stay unique.
    for p in sorted(box.glob("*.json"))[:10]:
        (box / f"again-{p.name}").write_bytes(p.read_bytes())
    settings_file = _write_settings(s)
    procs = [_importer(settings_file) for _ in range(2)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]

    def count(output: str, what: str) -> int:
        return int(output.split(f"{what} ")[1].split(",")[0])

    # The embedded engine in shared mode may refuse a page lock between the two processes; such an
    # order is retried, and if it still fails it is given back to the inbox ("failed"), never lost
    # or quarantined. A last pass picks those up.
    for p, out in zip(procs, outputs, strict=True):
        assert count(out, "quarantined") == 0, out
        assert p.returncode == 0 or count(out, "failed") > 0, out
    imported = [count(o, "imported") for o in outputs]
    assert min(imported) > 0  # both really worked on the inbox at the same time
    last = _importer(settings_file)
    out, _ = last.communicate(timeout=240)
    assert last.returncode == 0, out
    assert sum(imported) + count(out, "imported") == 150
    assert sum(count(o, "unchanged") for o in outputs) + count(out, "unchanged") == 10
    assert len(_files(box / "done")) == 160
    _assert_exactly_once(s, 150)


def test_watch_imports_files_as_they_arrive(demo_env):
    s = _settings(demo_env, settle_seconds=0.3)
    stop = threading.Event()
    passes: list[inbox.InboxResult] = []
    t = threading.Thread(
        target=inbox.watch,
        kwargs={
            "settings": s,
            "journal": Journal.from_settings(s),
            "state": State.from_settings(s),
            "stop_event": stop,
            "on_pass": passes.append,
            "rescan_seconds": 1.0,
        },
    )
    t.start()
    try:
        time.sleep(0.5)
        # A slow producer: the file grows for a while before it is complete.
        path = s.orders.inbox / "slow.json"
        data = json.dumps({"order": satu_order(620)}, ensure_ascii=False).encode("utf-8")
        with open(path, "wb") as fh:
            for i in range(0, len(data), 200):
                fh.write(data[i : i + 200])
                fh.flush()
                time.sleep(0.1)
        write_order(s.orders.inbox, satu_order(621))
        deadline = time.time() + 20
        while time.time() < deadline and len(_files(s.orders.inbox / "done")) < 2:
            time.sleep(0.1)
    finally:
        stop.set()
        t.join(20)
    assert not t.is_alive()
    assert _files(s.orders.inbox / "done") == ["satu-order-621-2026-11-27T100000.json", "slow.json"]
    assert sum(p.imported for p in passes) == 2 and sum(p.quarantined for p in passes) == 0


def test_one_of_two_parallel_importers_is_killed_mid_batch(demo_env):
    s = _settings(demo_env)
    _clear_reserved(s)
    box = s.orders.inbox
    _batch(box, 24)
    settings_file = _write_settings(s, workers=2)
    victim = _importer(settings_file, "importer.after:reservation_insert#3")
    # Start the survivor once the victim is at work, so the kill lands mid-batch however loaded the
    # machine is (the victim dies in its second order's reservations).
    deadline = time.time() + 120
    while (
        time.time() < deadline
        and victim.poll() is None
        and not (_files(box / "processing") if (box / "processing").exists() else [])
    ):
        time.sleep(0.02)
    survivor = _importer(settings_file)
    victim.wait(120)
    out, _ = survivor.communicate(timeout=240)
    assert victim.returncode == -9 and survivor.returncode == 0, out
    rerun = _importer(settings_file)
    out, _ = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, out
    assert (
        len(_files(box / "done")) == 24
        and _files(box / "processing") == []
        and _files(box) == ["done", "processing", "quarantine"]
    )
    _assert_exactly_once(s, 24)


def test_a_very_long_file_name_is_imported_and_blocks_nothing(demo_env):
    """Issue 12: a 245-byte Cyrillic name used to fail the claim rename ("File name too long") and, sorted
    first with one worker, blocked every later file."""
    s = _settings(demo_env, import_workers=1)
    box = s.orders.inbox
    long_name = "0-" + "заказ" * 24 + ".json"  # 122 characters, 244 bytes in UTF-8
    assert len(long_name.encode()) > 240
    write_order(box, satu_order(640), name=long_name)
    broken = "1-" + "битый" * 24 + ".json"
    (box / broken).write_bytes(b'{"order": {"id": 5 "x": 1}}')
    for i in range(5):
        write_order(box, satu_order(641 + i))
    result = _run(s)
    assert (result.imported, result.quarantined, result.failed) == (6, 1, 0), result.errors
    done = _files(box / "done")
    assert len(done) == 6 and all(len(n.encode()) <= 255 for n in done)
    (kept,) = [n for n in done if n.startswith("0-")]
    assert kept.endswith(".json") and len(kept.encode()) <= 200
    (reason,) = [n for n in _files(box / "quarantine") if n.endswith(".reason.txt")]
    assert broken in (box / "quarantine" / reason).read_text(encoding="utf-8")  # the original name kept
    assert _files(box / "processing") == [] and not list((box / "processing").glob(".name-*"))
    logged = {e.data.get("file") for e in Journal.from_settings(s).search(grep="order 640")}
    assert long_name in logged
