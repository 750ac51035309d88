"""The second sink: Torgsoft's own order file, into a folder or an FTP directory, exactly once."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from order_factory import satu_order, write_order
from pipeline.journal import Journal
from pipeline.orders import inbox
from pipeline.orders.jsonsink import order_document
from pipeline.orders.parse import parse_order
from pipeline.settings import Settings
from pipeline.state import State


def _settings(env: Settings, **orders) -> Settings:
    return env.replace(orders=replace(env.orders, **{"settle_seconds": 0, "sink": "torgsoft-json", **orders}))


def _run(settings: Settings) -> inbox.InboxResult:
    return inbox.run(settings, journal=Journal.from_settings(settings), state=State.from_settings(settings))


def test_order_document_is_the_vendor_format():
    order = parse_order(
        json.dumps(
            satu_order(
                77,
                lines=[
                    {"external_id": "38280", "quantity": "1,5", "price": "1 450,30 ₸"},
                    {"external_id": "x-1", "sku": "S", "quantity": 1},
                ],
                delivery_date="2026-12-03",
            )
        ).encode()
    )
    doc, unmatched = order_document(order, reserve_days=3)
    assert doc["Goods"] == [{"GoodID": "38280", "Price": "1450.30", "Count": "1.5"}]
    assert len(unmatched) == 1 and "line 2" in doc["Options"]["Comment"]
    assert doc["Options"]["ReserveDate"] == "03122026"
    assert doc["Options"]["OrderDate"] == "2026-11-27 09:30:00"
    assert doc["Options"]["OrderNumber"] == "77" and doc["Options"]["SaleType"] == "1"
    assert doc["Client"]["MPhone"] == "+77011234567" and doc["Client"]["Name"] == "Сейтқали Айгерим"
    for section in (doc["Client"], doc["Options"], *doc["Goods"]):
        assert all(isinstance(v, str) for v in section.values())


def test_json_sink_writes_each_order_once_into_a_folder(demo_env):
    out = Path(demo_env.base_dir) / "torgsoft-orders"
    s = _settings(demo_env, json_dir=str(out), reserve_days=5)
    write_order(s.orders.inbox, satu_order(801, lines=[{"external_id": "3", "quantity": 2, "price": "500"}]))
    write_order(s.orders.inbox, satu_order(802, status="canceled"))
    result = _run(s)
    assert result.imported == 1 and result.unchanged == 1
    assert sorted(p.name for p in out.iterdir()) == ["satu-order-801.json"]
    doc = json.loads((out / "satu-order-801.json").read_text(encoding="ascii"))
    assert doc["Options"]["ReserveDate"] == "02122026" and doc["Goods"][0]["Count"] == "2"
    # Torgsoft consumes (removes) the file; the same order arriving again is not written twice.
    (out / "satu-order-801.json").unlink()
    write_order(s.orders.inbox, satu_order(801, lines=[{"external_id": "3", "quantity": 2, "price": "500"}]))
    assert _run(s).unchanged == 1 and list(out.iterdir()) == []
    # A change after the file went out is reported for a person, not re-sent as a second order.
    write_order(s.orders.inbox, satu_order(801, status="canceled", modified="2026-11-28T10:00:00+05:00"))
    result = _run(s)
    assert result.updated == 1 and list(out.iterdir()) == []
    assert any("cannot carry changes" in e.message for e in Journal.from_settings(s).search(order_id=801))


@pytest.fixture()
def ftp_server(tmp_path: Path):
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    root = tmp_path / "ftproot"
    root.mkdir()
    auth = DummyAuthorizer()
    auth.add_user("torg", "s3cret", str(root), perm="elradfmwMT")
    handler = type("Handler", (FTPHandler,), {"authorizer": auth, "passive_ports": None})
    server = FTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    yield root, server.address[1]
    server.close_all()
    thread.join(5)


def test_json_sink_over_ftp(demo_env, ftp_server, monkeypatch):
    root, port = ftp_server
    monkeypatch.setenv("ORDERS_FTP_PASSWORD", "s3cret")
    s = _settings(demo_env, json_dir=f"ftp://torg@127.0.0.1:{port}/incoming/orders")
    write_order(s.orders.inbox, satu_order(803, lines=[{"external_id": "4", "quantity": 1}]))
    write_order(s.orders.inbox, satu_order(804, lines=[{"external_id": "5", "quantity": 3}]))
    assert _run(s).imported == 2
    folder = root / "incoming" / "orders"
    assert sorted(p.name for p in folder.iterdir()) == ["satu-order-803.json", "satu-order-804.json"]
    assert json.loads((folder / "satu-order-804.json").read_text())["Goods"] == [
        {"GoodID": "5", "Price": "100.00", "Count": "3"}
    ]
    write_order(s.orders.inbox, satu_order(804, lines=[{"external_id": "5", "quantity": 3}]), name="dup.json")
    assert _run(s).unchanged == 1


def test_json_sink_ftp_down_leaves_files_for_later(demo_env, monkeypatch):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    s = _settings(demo_env, json_dir=f"ftp://torg@127.0.0.1:{port}/orders")
    s = s.replace(publish=replace(s.publish, timeout=2.0))
    path = write_order(s.orders.inbox, satu_order(805))
    with pytest.raises(Exception) as info:
        _run(s)
    assert "FTP" in str(info.value)
    assert path.exists()  # not taken, not lost


def test_json_sink_local_files_are_private(demo_env):
    out = Path(demo_env.base_dir) / "private-orders"
    s = _settings(demo_env, json_dir=str(out))
    write_order(s.orders.inbox, satu_order(811, lines=[{"external_id": "3", "quantity": 1}]))
    assert _run(s).imported == 1
    (written,) = out.iterdir()
    assert written.stat().st_mode & 0o777 == 0o600  # names, phones, addresses
    assert out.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_json_sink_over_ftps_checks_the_certificate(demo_env, tmp_path, monkeypatch):
    from servers import ftp_server as real_ftp_server

    monkeypatch.setenv("ORDERS_FTP_PASSWORD", "s3cret")
    with real_ftp_server(tmp_path / "ftps", "torg", "s3cret", tls=True) as srv:
        url = f"ftps://torg@127.0.0.1:{srv.port}/in"
        s = _settings(demo_env, json_dir=url, json_tls_ca_file=srv.cafile)
        write_order(s.orders.inbox, satu_order(812, lines=[{"external_id": "4", "quantity": 1}]))
        assert _run(s).imported == 1
        assert "AUTH" in srv.commands and "PROT" in srv.commands
        assert (
            json.loads((srv.root / "in" / "satu-order-812.json").read_text())["Options"]["OrderNumber"]
            == "812"
        )
        # Without the CA the server's certificate is refused, naming the setting; the order file stays.
        untrusted = _settings(demo_env, json_dir=url)
        path = write_order(untrusted.orders.inbox, satu_order(813))
        with pytest.raises(Exception) as info:
            _run(untrusted)
        assert "certificate" in str(info.value) and "orders.json_tls_ca_file" in str(info.value)
        assert path.exists() and not (srv.root / "in" / "satu-order-813.json").exists()


def test_json_sink_cut_upload_is_not_recorded_and_goes_again(demo_env, tmp_path, monkeypatch):
    from servers import ftp_server as real_ftp_server

    monkeypatch.setenv("ORDERS_FTP_PASSWORD", "s3cret")
    with real_ftp_server(
        tmp_path / "ftp", "torg", "s3cret", cut_after=40, cut_match="satu-order-814", cuts=1
    ) as srv:
        s = _settings(demo_env, json_dir=f"ftp://torg@127.0.0.1:{srv.port}/in")
        path = write_order(s.orders.inbox, satu_order(814, lines=[{"external_id": "4", "quantity": 1}]))
        assert _run(s).imported == 0  # the file is given back to the inbox for a retry
        assert path.exists() and not (srv.root / "in" / "satu-order-814.json").exists()
        told = [e.message for e in Journal.from_settings(s).search(order_id=814)]
        assert any("left in the inbox to retry" in m and "426" in m for m in told), told
        assert State.from_settings(s).get("orders.json_sink", "814") is None
        assert _run(s).imported == 1
        doc = json.loads((srv.root / "in" / "satu-order-814.json").read_text())
        assert doc["Goods"] == [{"GoodID": "4", "Price": "100.00", "Count": "1"}]
        warned = [e.message for e in Journal.from_settings(s).search(level="warning")]
        assert any("plain ftp://" in m and "ftps://" in m for m in warned)
