"""Helpers shared by the Satu tests: a feed + pictures served by a real local HTTP server."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass


@contextmanager
def serve_dir(folder: Path) -> Iterator[str]:
    """Serve a folder over HTTP on 127.0.0.1:0; yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def offer_xml(
    oid: str,
    *,
    price: str = "1950",
    qty: int | None = 5,
    available: bool = True,
    pictures: tuple[str, ...] = (),
    name: str = "Товар",
    vendor_code: str = "",
) -> str:
    """One <offer> element; out of stock is `available=""`, as the feed writes it (Satu reads "false" as
    made to order)."""
    pics = "".join(f"<picture>{p}</picture>" for p in pictures)
    q = f"<quantity_in_stock>{qty}</quantity_in_stock>" if qty is not None else ""
    vc = f"<vendorCode>{vendor_code}</vendorCode>" if vendor_code else ""
    return (
        f'<offer id="{oid}" available="{"true" if available else ""}" selling_type="r">'
        f"<name>{name} {oid}</name><price>{price}</price><currencyId>KZT</currencyId>"
        f"<categoryId>10</categoryId>{pics}{vc}{q}<description><![CDATA[<p>Описание</p>]]></description></offer>"
    )


def feed_xml(offers: list[str]) -> str:
    """A whole YML feed around the given offers."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<yml_catalog date="2026-11-27 14:05"><shop>'
        "<name>Demo</name><company>Demo</company><url>https://shop.example.kz</url>"
        '<currencies><currency id="KZT" rate="1"/></currencies>'
        '<categories><category id="10">Мебель</category></categories><offers>'
        + "".join(offers)
        + "</offers></shop></yml_catalog>\n"
    )
