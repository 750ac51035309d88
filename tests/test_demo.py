"""The demo end to end (`run.py demo`): embedded database, FTP + HTTP + Satu sandbox on loopback,
catalog out, orders in, states back. Marked `e2e`; it runs in `make test` like every other test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.journal import Journal

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.e2e


def test_demo_end_to_end(tmp_path: Path):
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[feed]\ntemplate = "{ROOT / "templates" / "satu.yml.j2"}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORGSOFT_SATU_")}
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run.py"),
            "--settings",
            str(settings),
            "demo",
            "--products",
            "40",
            "--orders",
            "6",
            "--seed",
            "3",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "Demo report" in out and "WITH PROBLEMS" not in out

    # The database was created; the catalog went out and Satu imported every offer.
    assert (tmp_path / "var" / "torgsoft.fdb").exists()
    offers = int(re.search(r"Catalog:\s+(\d+) offers", out).group(1))
    assert offers > 20
    assert re.search(
        rf"import SUCCESS: {offers} created, 0 updated; {offers} products on Satu; "
        rf"stock push {offers} accepted",
        out,
    ), out
    feed_url = re.search(r"Feed URL:\s+(\S+)", out).group(1)
    assert feed_url.startswith("http://127.0.0.1:") and feed_url.endswith("/satu.yml")
    public = tmp_path / "var" / "demo" / "public"
    assert (public / "satu.yml").read_bytes() == (tmp_path / "feeds" / "satu.yml").read_bytes()
    assert any(public.rglob("*.jpg")), "photos were uploaded over FTP"

    # The stock watcher's tick pushed what the imported orders reserved.
    m = re.search(r"stock watcher\s+(\d+) offer\(s\) changed by the reservations, (\d+) acknowledged", out)
    assert m and int(m.group(1)) >= 1 and m.group(1) == m.group(2), out

    # Orders came in with customers, reservations and invoices.
    m = re.search(
        r"Orders:\s+(\d+) imported \((\d+) invoices\); Torgsoft now has (\d+) customers, (\d+) Satu orders, "
        r"(\d+) reservations, (\d+) invoices",
        out,
    )
    assert m, out
    imported, invoices, customers, orders, reservations, invoices_db = map(int, m.groups())
    assert imported == orders == 6 and customers >= 1 and reservations >= 6 and invoices == invoices_db >= 1
    new = re.search(r"New:\s+(\d+) order\(s\) placed on Satu this run, (\d+) of them in Torgsoft", out)
    assert new and new.groups() == ("6", "6"), out

    # The order states changed in the database reached the sandbox.
    changed = dict(
        pair.split()
        for pair in re.search(r"changed in Torgsoft\s*4 order\(s\): (.+)", out).group(1).split(", ")
    )
    assert sorted(changed.values()) == ["accepted", "cancelled", "paid", "shipped"]
    from pipeline.devtools.sandbox import SandboxServer

    sandbox = SandboxServer(tmp_path / "var" / "demo" / "satu-sandbox")  # not started: read its state
    try:
        by_id = {str(o["id"]): o for o in sandbox.orders()}
    finally:
        sandbox.stop()
    satu = {"accepted": "received", "paid": "paid", "shipped": "delivered", "cancelled": "canceled"}
    assert {oid: by_id[oid]["status"] for oid in changed} == {oid: satu[a] for oid, a in changed.items()}
    first = min(changed)

    # Everything is in the journal under the demo's run id, and `log` finds it.
    run_id = re.search(r"log --run (\S+)", out).group(1)
    journal = Journal(tmp_path / "var" / "journal.sqlite")
    stages = {e.stage for e in journal.search(run_id=run_id, limit=None)}
    assert {"demo", "photos", "feed", "publish", "import", "push", "orders", "status", "stock"} <= stages
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run.py"),
            "--settings",
            str(settings),
            "log",
            "--order",
            str(first),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert {"orders", "status"} <= {e["stage"] for e in events}

    # A second and a third run each bring all their new orders into Torgsoft (issue 13).
    for run_no in (2, 3):
        again = subprocess.run(
            [sys.executable, str(ROOT / "run.py"), "--settings", str(settings), "demo", "--products", "40"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert again.returncode == 0 and "WITH PROBLEMS" not in again.stdout, again.stdout + again.stderr
        new = re.search(
            r"New:\s+(\d+) order\(s\) placed on Satu this run, (\d+) of them in Torgsoft", again.stdout
        )
        assert new and new.groups() == ("6", "6"), (run_no, again.stdout)
        m = re.search(r"Torgsoft now has \d+ customers, (\d+) Satu orders", again.stdout)
        assert m and int(m.group(1)) == 6 * run_no, again.stdout
