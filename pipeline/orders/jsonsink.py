"""Second sink: Torgsoft's own order file (docs/orders.md), written to a folder or an FTP directory.

With `[orders] sink = "torgsoft-json"` orders are not written to the database: each new Satu order
becomes one JSON file (values as strings, ReserveDate DDMMYYYY) named `<json_prefix><order id>.json` in
`[orders] json_dir`, which Torgsoft's "synchronization with an online store" option imports. The
folder may be local (files 0600, folder 0700: they hold names, phones and addresses) or on an FTP
server: `ftps://` is explicit TLS (certificate checked, `[orders] json_tls_ca_file` for a private CA),
`ftp://` is plain and journaled as a warning. FTP goes through the one FTP module,
`pipeline.publish.targets.ftp`, so a cut upload is never taken for a written file.

Exactly once: the file name is fixed by the order id and the content by the order, and the state
namespace `orders.json_sink` records each order after its file is durable (written under a temporary
name, then renamed). A re-run skips recorded orders; a crash between the rename and the record rewrites
the same file with the same content. The vendor's format has no way to say "this order changed", so a
later version of an order (edited, cancelled) is not sent again: the journal says so, for a person to
act on in Torgsoft.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pipeline.errors import Problem, SettingsError
from pipeline.fsutil import make_dirs, write_atomic
from pipeline.model import Order
from pipeline.orders.order_rows import CANCELLED, ImportOutcome, order_hash, reserve_until, torgsoft_status
from pipeline.orders.parse import SATU_TZ, service_notes
from pipeline.publish.targets.ftp import FtpTarget, SettingNames

SINK_SETTINGS = SettingNames(
    host="orders.json_dir",
    port="orders.json_dir",
    ca_file="orders.json_tls_ca_file",
    login="the user in orders.json_dir and the password in orders.json_password_env",
)

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
    comment = "\n".join(x for x in (order.comment, *service_notes(order)) if x)
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


class _LocalFolder:
    """Order files in a folder: written atomically and privately (0600, folder 0700) — personal data."""

    def __init__(self, folder: Path):
        self.folder = make_dirs(folder, private=True)

    def write(self, name: str, data: bytes) -> str:
        return str(write_atomic(self.folder / name, data, private=True))

    def close(self) -> None:
        pass


class _FtpFolder:
    """Order files in an FTP/FTPS folder, through the one FTP module (pipeline.publish.targets.ftp):
    each file is stored under a temporary name, checked (reply code and size), then renamed."""

    def __init__(self, url: str, password: str, *, timeout: float, ca_file: Path | None):
        parts = urlsplit(url)
        self.ftp = FtpTarget(
            parts.hostname or "",
            parts.port or 21,
            unquote(parts.username or "anonymous"),
            password,
            unquote(parts.path) or "/",
            tls=parts.scheme.lower() == "ftps",
            timeout=timeout,
            ca_file=ca_file,
            names=SINK_SETTINGS,
        )
        self._call("connecting", self.ftp.connect)

    def _call(self, what: str, op: Callable[[], None]) -> None:
        try:
            op()
        except Exception as exc:
            err = self.ftp.translate(exc, f"{what} ({self.ftp.label})")
            if err is exc:
                raise
            raise err from exc

    def write(self, name: str, data: bytes) -> str:
        tmp = f".{name}.tmp"

        def upload() -> None:
            self.ftp.put_bytes(data, tmp)
            self.ftp.replace(tmp, name)  # the same order's file from an interrupted run has the same content

        self._call(f"FTP upload of {name}", upload)
        return posixpath.join(self.ftp.root, name)

    def close(self) -> None:
        self.ftp.close()


class JsonSink:
    """Writes Torgsoft order files instead of database documents (same interface as the database sink)."""

    def __init__(self, settings: Any, *, journal: Any, state: Any):
        self.settings = settings
        self.cfg = settings.orders
        self.journal = journal
        self.state = state
        target = self.cfg.json_dir
        scheme = target.split("://", 1)[0].lower() if "://" in target else ""
        if scheme in ("ftp", "ftps"):
            if scheme == "ftp":
                journal.event(
                    "orders",
                    "orders.json_dir is a plain ftp:// URL: the password and the customers' personal data "
                    "cross the network unencrypted — use ftps:// (explicit TLS) if the server offers it",
                    "warning",
                )
            password = settings.secret("orders.json_password_env", required=False)
            self.target: _LocalFolder | _FtpFolder = _FtpFolder(
                target, password, timeout=settings.publish.timeout, ca_file=self.cfg.json_tls_ca_file
            )
        elif scheme:
            raise SettingsError(
                Problem(
                    "orders.json_dir",
                    f"{target!r}: only a folder or an ftps:// (or ftp://) URL is supported",
                    "write a folder path or ftps://user@host:port/dir",
                )
            )
        else:
            path = Path(target)
            self.target = _LocalFolder(path if path.is_absolute() else Path(settings.base_dir) / path)

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
