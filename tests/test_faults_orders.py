"""Issue 12 (orders): faults that lost or duplicated data — each test failed before its fix."""

from __future__ import annotations

from dataclasses import replace

import pytest

from order_factory import satu_order, write_order
from pipeline.journal import Journal
from pipeline.orders import inbox
from pipeline.settings import Settings
from pipeline.state import State
from pipeline.torgsoft.connection import connect


def _settings(env: Settings, **orders) -> Settings:
    return env.replace(orders=replace(env.orders, **{"settle_seconds": 0, "import_workers": 1, **orders}))


def _run(settings: Settings) -> inbox.InboxResult:
    return inbox.run(settings, journal=Journal.from_settings(settings), state=State.from_settings(settings))


def _scalar(settings: Settings, sql: str, *args):
    con = connect(settings)
    try:
        cur = con.cursor()
        cur.execute(sql, args)
        return cur.fetchone()[0]
    finally:
        con.close()


def test_a_customer_known_only_by_name_is_not_duplicated_by_updates(demo_env):
    s = _settings(demo_env)
    clients = _scalar(s, "SELECT COUNT(*) FROM CLIENT")
    for version in range(3):
        write_order(
            s.orders.inbox,
            satu_order(
                811,
                phone="",
                email="",
                modified=f"2026-11-27T10:0{version}:00.000000+05:00",
                lines=[{"external_id": "5", "quantity": 1 + version}],
            ),
        )
        result = _run(s)
        assert result.imported + result.updated == 1, result
    assert _scalar(s, "SELECT COUNT(*) FROM CLIENT") == clients + 1
    client_id = _scalar(s, "SELECT CLIENT_ID FROM CUSTOMER_ORDER WHERE EXTERNAL_ID = '811'")
    assert _scalar(s, "SELECT NAME FROM CLIENT WHERE ID = ?", client_id) == "Сейтқали Айгерим"


def _messages(settings: Settings) -> list[str]:
    return [e.message for e in Journal.from_settings(settings).search()]


def test_symlinks_fifos_and_folders_named_json_are_journaled(demo_env, tmp_path):
    import os

    s = _settings(demo_env)
    box = s.orders.inbox
    box.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "elsewhere.json"
    target.write_text("{}", encoding="utf-8")
    (box / "link.json").symlink_to(target)
    os.mkfifo(box / "pipe.json")
    (box / "folder.json").mkdir()
    write_order(box, satu_order(812))
    result = _run(s)
    assert result.imported == 1, result
    text = "\n".join(_messages(s))
    for name in ("link.json", "pipe.json", "folder.json"):
        assert name in text, text
    assert (box / "link.json").is_symlink() and target.read_text(encoding="utf-8") == "{}"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400", "1e24"])
def test_nan_infinity_and_absurd_numbers_are_data_problems(demo_env, value):
    s = _settings(demo_env)
    box = s.orders.inbox
    order = satu_order(813, lines=[{"external_id": "5", "quantity": 1}])
    import json

    text = json.dumps({"order": order}, ensure_ascii=False).replace('"quantity": 1', f'"quantity": {value}')
    box.mkdir(parents=True, exist_ok=True)
    (box / "weird.json").write_text(text, encoding="utf-8")
    result = _run(s)
    assert result.quarantined == 1, result
    reason = (box / "quarantine" / "weird.json.reason.txt").read_text(encoding="utf-8")
    assert "internal error" not in reason and "quantity" in reason, reason


def test_a_slow_writer_loses_nothing_its_file_is_retried_once_complete(demo_env):
    import json

    s = _settings(demo_env)
    box = s.orders.inbox
    box.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"order": satu_order(814)}, ensure_ascii=False).encode("utf-8")
    with open(box / "slow.json", "wb") as writer:  # the writer keeps its file open and pauses
        writer.write(data[:100])
        writer.flush()
        first = _run(s)  # settle_seconds elapsed: the half-written file is taken
        assert first.imported == 0, first
        writer.write(data[100:])
    second = _run(s)
    assert first.imported + second.imported == 1, (first, second)
    assert _scalar(s, "SELECT COUNT(*) FROM CUSTOMER_ORDER WHERE EXTERNAL_ID = '814'") == 1
    assert not list((box / "quarantine").glob("slow.json*"))


def test_lock_files_of_killed_importers_without_claims_are_cleared(demo_env):
    import os
    import time

    s = _settings(demo_env)
    processing = s.orders.inbox / "processing"
    processing.mkdir(parents=True, exist_ok=True)
    litter = processing / ".owner-0123456789ab.lock"  # a killed importer's: nobody holds it
    litter.write_bytes(b"")
    young = processing / ".owner-ba9876543210.lock"  # one that is just starting: left alone
    young.write_bytes(b"")
    old = time.time() - 3600
    os.utime(litter, (old, old))
    write_order(s.orders.inbox, satu_order(841))
    assert _run(s).imported == 1
    assert not litter.exists() and young.exists()


def test_a_move_to_done_cut_between_link_and_unlink_leaves_one_file(demo_env):
    import os

    from pipeline.orders.claims import Inbox

    s = _settings(demo_env)
    path = write_order(s.orders.inbox, satu_order(842))
    assert _run(s).imported == 1  # the order is in the database …
    done = s.orders.inbox / "done"
    (done / path.name).rename(path)  # … and its file comes again, e.g. from a second fetch
    dead = Inbox(s.orders.inbox)
    claim = dead.claim(path)
    assert claim is not None
    os.link(claim, done / path.name)  # killed right after the link of the move to done/ …
    dead.close()  # … its owner lock is gone with it
    result = _run(s)
    assert (result.recovered, result.unchanged) == (1, 1), result
    assert sorted(p.name for p in done.iterdir()) == [path.name]
    assert [p for p in (s.orders.inbox / "processing").iterdir() if not p.name.startswith(".")] == []


def test_side_files_of_gone_claims_are_cleared(demo_env):
    """Found by the kill campaign: a kill between writing a claim's name file and the claim's rename
    (or between a claim leaving processing/ and forgetting its name) left `.name-<hash>` files for good."""
    import os
    import time

    from pipeline.orders.claims import name_hash

    s = _settings(demo_env)
    processing = s.orders.inbox / "processing"
    processing.mkdir(parents=True, exist_ok=True)
    stray = processing / f".name-{name_hash('gone.json')}"
    stray.write_bytes(b"gone.json")
    half = processing / f".name-{name_hash('half.json')}.0123abcd.tmp"
    half.write_bytes(b"half.json")
    young = processing / f".name-{name_hash('starting.json')}"  # an importer about to rename its claim
    young.write_bytes(b"starting.json")
    old = time.time() - 3600
    for p in (stray, half):
        os.utime(p, (old, old))
    write_order(s.orders.inbox, satu_order(843))
    assert _run(s).imported == 1
    assert not stray.exists() and not half.exists() and young.exists()
    assert [p.name for p in processing.iterdir() if not p.name.startswith(".owner-")] == [young.name]


def test_a_quarantined_file_completed_later_is_read_again_and_imported(demo_env):
    """Issue 12 (slow writer): "a quarantined file that later parses is retried". The writer finished
    its file after the importer had set it aside as cut; the next pass takes it back from quarantine
    (its reason file goes), imports it and journals why. This behaviour had no test (audit)."""
    import json
    import os
    import time

    s = _settings(demo_env)
    box = s.orders.inbox
    data = json.dumps({"order": satu_order(931)}, ensure_ascii=False).encode("utf-8")
    box.mkdir(parents=True, exist_ok=True)
    (box / "late.json").write_bytes(data[: len(data) // 2])  # the writer paused half-way
    first = _run(s)
    assert first.quarantined == 1
    kept = box / "quarantine" / "late.json"
    reason = box / "quarantine" / "late.json.reason.txt"
    assert kept.exists() and reason.exists()
    kept.write_bytes(data)  # ... and then finished the file where the importer had put it
    later = reason.stat().st_mtime_ns + 1_000_000
    os.utime(kept, ns=(later, later))  # a coarse clock must not hide the change
    time.sleep(0.01)
    second = _run(s)
    assert (second.imported, second.quarantined) == (1, 0), second.errors
    assert not kept.exists() and not reason.exists()
    assert _scalar(s, "SELECT COUNT(*) FROM CUSTOMER_ORDER WHERE EXTERNAL_ID = ?", "931") == 1
    said = [e.message for e in Journal.from_settings(s).search(grep="changed after quarantine")]
    assert said and "late.json" in said[0]
