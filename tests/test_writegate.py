"""Issue 12 (high): two importers of one embedded database stalled for good inside the engine (page
locks between SuperClassic processes). The fix is the write gate (pipeline/torgsoft/writegate.py): one
order write at a time per database file, across processes. benchmarks/two_importers.py measures the
stall rate; this test pins the mechanism itself with a real `orders import` process: while another
process holds the gate, the import claims the file but writes nothing, and it writes as soon as the
gate is free. Without the gate the order is in done/ within a fraction of a second of its claim."""

from __future__ import annotations

import fcntl
import os
import time

from order_factory import satu_order, write_order
from pipeline.torgsoft.writegate import gate_path
from test_orders_inbox import _clear_reserved, _files, _importer, _settings, _write_settings


def _wait(what, timeout: float = 120.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if what():
            return True
        time.sleep(0.02)
    return False


def test_an_import_waits_at_the_write_gate_held_by_another_process(demo_env):
    s = _settings(demo_env)
    _clear_reserved(s)
    box = s.orders.inbox
    write_order(box, satu_order(910))
    settings_file = _write_settings(s, workers=1)
    # The gate is named after the database's real path: what another importer process would hold.
    fd = os.open(gate_path(s.torgsoft.database), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = _importer(settings_file)
        claimed = _wait(lambda: bool(_files(box / "processing")) or proc.poll() is not None)
        assert claimed and proc.poll() is None, proc.communicate()[0] if proc.poll() is not None else ""
        time.sleep(2.0)  # far longer than one order's write
        assert _files(box / "done") == [] and proc.poll() is None  # waiting at the gate, not writing
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert len(_files(box / "done")) == 1 and _files(box / "quarantine") == [], out


def test_a_planted_symlink_at_the_gate_is_refused_and_its_target_left_alone(tmp_path):
    """The gate sits at a predictable path in the shared temp folder: a link planted there must not
    make the importer open (and chmod 0666) a file of the planter's choosing."""
    import pytest

    from pipeline.errors import DatabaseUnavailable
    from pipeline.torgsoft.writegate import WriteGate

    target = tmp_path / "secret.txt"
    target.write_text("private")
    target.chmod(0o600)
    gate = WriteGate(tmp_path / "shop.fdb", wait_seconds=1.0)
    assert gate.path is not None
    gate.path.unlink(missing_ok=True)
    gate.path.symlink_to(target)
    try:
        with pytest.raises(DatabaseUnavailable, match="symbolic link"), gate.held("order 1"):
            pass
    finally:
        gate.path.unlink()
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)
    assert target.read_text() == "private"
