"""Second sink: Torgsoft's own order file (TORGSOFT.md), written to a folder or an FTP directory.

With `[orders] sink = "torgsoft-json"` orders are not written to the database: each new Satu order
becomes one JSON file (values as strings, ReserveDate DDMMYYYY) named `<json_prefix><order id>.json` in
`[orders] json_dir`, which Torgsoft's "synchronization with an online store" option imports.

Exactly once: the file name is fixed by the order id and the content by the order, and the state
namespace `orders.json_sink` records each order after its file is durable (written under a temporary
name, then renamed). A re-run skips recorded orders; a crash between the rename and the record rewrites
the same file with the same content. The vendor's format has no way to say "this order changed", so a
later version of an order (edited, cancelled) is not sent again: the journal says so, for a person to
act on in Torgsoft.
"""

from __future__ import annotations

import json
import os
import posixpath
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pipeline.errors import Problem, RetryableError, SettingsError
from pipeline.model import Order
from pipeline.orders.importer import CANCELLED, ImportOutcome, order_hash, reserve_until, torgsoft_status
from pipeline.orders.parse import SATU_TZ

STATE_NS = "orders.json_sink"


def _num(value: Decimal) -> str:
    """A number as Torgsoft's file wants it: dot decimal, no exponent, no trailing zeros (`2`, `1.5`)."""
    text = format(Decimal(value).normalize(), "f")
    return text


def _price(value: Decimal) -> str:
    return format(Decimal(value).quantize(Decimal("0.01")), "f")


def order_document(
    order: Order, *, reserve_days: int, currency: str = "KZT"
) -> tuple[dict[str, Any], list[str]]:
    """The vendor's order object for an order (pure), and the lines that could not be expressed
    (their offer id is not a GoodID)."""
    goods, unmatched = [], []
    for n, line in enumerate(order.lines, 1):
        ext = line.external_id.strip()
        if ext.isdigit():
            goods.append({"GoodID": ext, "Price": _price(line.price), "Count": _num(line.quantity)})
        else:
            unmatched.append(
                f"line {n} has no GoodID (external_id {line.external_id!r}, sku {line.sku!r}, "
                f"{line.name!r} x {line.quantity}): left out of the file"
            )
    comment = order.comment
    if unmatched:
        comment = (comment + "\n" if comment else "") + "\n".join(f"[satu] {u}" for u in unmatched)
    until: date = reserve_until(order, reserve_days)
    created = order.created.astimezone(SATU_TZ)
    doc = {
        "Client": {
            "Name": order.customer.name,
            "MPhone": f"+{order.customer.phone}" if order.customer.phone else "",
            "CPhone": "",
            "ZIP": "",
            "Country": "",
            "Region": "",
            "City": order.customer.city,
            "Address": order.delivery_address,
            "EMail": order.customer.email,
        },
        "Options": {
            "SaleType": "1",
            "Comment": comment,
            "OrderNumber": str(order.id),
            "DeliveryCondition": order.delivery_method,
            "DeliveryAddress": order.delivery_address,
            "ReserveDate": until.strftime("%d%m%Y"),
            "BonusPay": "0",
            "GiftCertificate": "",
            "OrderDate": created.strftime("%Y-%m-%d %H:%M:%S"),
            "CurrencyInternationalCode": currency,
        },
        "Goods": goods,
    }
    return doc, unmatched


class _LocalTarget:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, data: bytes) -> str:
        tmp = self.folder / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.folder / name)
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return str(self.folder / name)

    def close(self) -> None:
        pass


class _FtpTarget:
    def __init__(self, url: str, password: str, timeout: float):
        import ftplib

        import ftputil

        parts = urlsplit(url)
        self.dir = unquote(parts.path) or "/"
        port = parts.port or 21

        class Session(ftplib.FTP):
            def __init__(self, host: str, user: str, passwd: str):
                super().__init__(timeout=timeout, encoding="utf-8")
                self.connect(host, port)
                self.login(user, passwd)

        try:
            self.host = ftputil.FTPHost(
                parts.hostname, unquote(parts.username or "anonymous"), password, session_factory=Session
            )
            self.host.makedirs(self.dir, exist_ok=True)
        except (ftputil.error.FTPError, OSError) as exc:
            raise RetryableError(f"FTP {parts.hostname}:{parts.port or 21}: {exc}") from None
        self.url = url

    def write(self, name: str, data: bytes) -> str:
        import ftputil

        tmp = posixpath.join(self.dir, f".{name}.tmp")
        final = posixpath.join(self.dir, name)
        try:
            with self.host.open(tmp, "wb") as fh:
                fh.write(data)
            if self.host.path.exists(final):
                self.host.remove(final)  # the same order's file from an interrupted run (same content)
            self.host.rename(tmp, final)
        except (ftputil.error.FTPError, OSError) as exc:
            raise RetryableError(f"FTP upload of {name}: {exc}") from None
        return final

    def close(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            self.host.close()


class JsonSink:
    """Writes Torgsoft order files instead of database documents (same interface as the database sink)."""

    def __init__(self, settings: Any, *, journal: Any, state: Any):
        self.settings = settings
        self.cfg = settings.orders
        self.journal = journal
        self.state = state
        target = self.cfg.json_dir
        if target.startswith(("ftp://", "FTP://")):
            var = self.cfg.json_password_env
            password = os.environ.get(var, "") if var else ""
            self.target: Any = _FtpTarget(target, password, settings.publish.timeout)
        elif "://" in target:
            raise SettingsError(
                Problem(
                    "orders.json_dir",
                    f"{target!r}: only a folder or an ftp:// URL is supported",
                    "write a folder path or ftp://user@host:port/dir",
                )
            )
        else:
            path = Path(target)
            self.target = _LocalTarget(path if path.is_absolute() else Path(settings.base_dir) / path)

    def import_order(self, order: Order) -> ImportOutcome:
        """Write the order's file once; later versions are reported, not re-sent."""
        key = str(order.id)
        known = self.state.get(STATE_NS, key)
        if known is not None:
            if known.get("hash") == order_hash(order) or known.get("modified", "") >= str(
                order.modified or ""
            ):
                return ImportOutcome("unchanged", order.id)
            self.state.put(
                STATE_NS, key, {**known, "hash": order_hash(order), "modified": str(order.modified or "")}
            )
            return ImportOutcome(
                "updated",
                order.id,
                notes=[
                    f"changed on Satu (status {order.status!r}) after its file {known.get('file')} was written; "
                    f"Torgsoft's order file cannot carry changes: update the order in Torgsoft by hand"
                ],
            )
        if torgsoft_status(order.status) == CANCELLED:
            self.state.put(
                STATE_NS,
                key,
                {
                    "file": None,
                    "hash": order_hash(order),
                    "modified": str(order.modified or ""),
                    "skipped": "cancelled",
                },
            )
            return ImportOutcome(
                "unchanged", order.id, notes=["cancelled before it was sent: no file written"]
            )
        doc, unmatched = order_document(
            order, reserve_days=self.cfg.reserve_days, currency=self.settings.feed.currency
        )
        name = f"{self.cfg.json_prefix}{order.id}.json"
        data = json.dumps(doc, ensure_ascii=True, indent=1).encode("ascii")
        where = self.target.write(name, data)
        self.state.put(
            STATE_NS, key, {"file": where, "hash": order_hash(order), "modified": str(order.modified or "")}
        )
        return ImportOutcome("imported", order.id, unmatched=unmatched)

    def close(self) -> None:
        """Close the FTP session, if any."""
        self.target.close()
