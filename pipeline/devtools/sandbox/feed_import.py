"""The sandbox's import by URL: download a YML feed, check every offer as Satu would, apply it."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.devtools.sandbox.store import SandboxStore
from pipeline.devtools.sandbox.vocab import SATU_TZ, _decimal, is_loopback_url, satu_time
from pipeline.satu.api import IMPORT_PICTURE_ERROR_CODE


def parse_feed(content: bytes) -> tuple[dict[str, str], list[dict]]:
    """Parse a YML feed: (categories {id: name}, offers [dict with raw fields]). Raises ValueError."""
    from lxml import etree

    head = content[:200].decode("ascii", errors="replace")
    m = re.search(r"encoding=[\"']([^\"']+)", head)
    if m and m.group(1).lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise ValueError(f"the feed is in {m.group(1)}; Satu reads UTF-8 only")
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the feed is not valid UTF-8 (byte {exc.start})") from None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"the feed is not well-formed XML: {exc}") from None
    shop = root.find("shop")
    if root.tag != "yml_catalog" or shop is None:
        raise ValueError("not a YML catalog (<yml_catalog><shop> expected)")
    categories = {c.get("id", ""): (c.text or "").strip() for c in shop.iterfind("categories/category")}
    offers = []
    for o in shop.iterfind("offers/offer"):

        def text(tag: str, o: Any = o) -> str | None:
            el = o.find(tag)
            return None if el is None else (el.text or "").strip()

        prices = [
            {"price": (p.findtext("value") or "").strip(), "quantity": (p.findtext("quantity") or "").strip()}
            for p in o.iterfind("prices/price")
        ]
        offers.append(
            {
                "id": o.get("id"),
                "available": o.get("available"),
                "group_id": o.get("group_id"),
                "selling_type": o.get("selling_type"),
                "name": text("name"),
                "price": text("price"),
                "oldprice": text("oldprice"),
                "currencyId": text("currencyId"),
                "categoryId": text("categoryId"),
                "vendorCode": text("vendorCode"),
                "description": text("description"),
                "quantity_in_stock": text("quantity_in_stock"),
                "pictures": [(p.text or "").strip() for p in o.iterfind("picture")],
                "has_prices_block": o.find("prices") is not None,
                "prices": prices,
                "vendor": text("vendor"),
                "barcode": text("barcode"),
            }
        )
    return categories, offers


def check_offer(offer: dict, categories: dict[str, str]) -> list[str]:
    """What Satu would reject in one offer (empty = importable, pictures not yet checked)."""
    problems = []
    if not offer.get("id"):
        problems.append("offer has no id")
    if not offer.get("name"):
        problems.append("name is required")
    price = _decimal(offer.get("price"))
    if price is None or price < 0:
        problems.append(f"invalid price {offer.get('price')!r}")
    if offer.get("currencyId") not in (None, "KZT"):
        problems.append(f"unknown currency {offer.get('currencyId')!r}")
    if offer.get("categoryId") and categories and offer["categoryId"] not in categories:
        problems.append(f"categoryId {offer['categoryId']} is not in <categories>")
    if offer.get("vendorCode") and len(offer["vendorCode"]) > 25:
        problems.append("vendorCode is longer than 25 characters")
    if len(offer.get("pictures") or []) > 10:
        problems.append("more than 10 pictures")
    for url in offer.get("pictures") or []:
        if not url.lower().startswith(("http://", "https://")):
            problems.append(f"picture {url!r} is not an absolute http(s) URL")
    q = offer.get("quantity_in_stock")
    if q not in (None, "") and not re.fullmatch(r"\d+", q):
        problems.append(f"invalid quantity_in_stock {q!r}")
    if offer.get("selling_type") not in (None, "", "r", "w", "u", "s"):
        problems.append(f"invalid selling_type {offer['selling_type']!r}")
    if offer.get("description") and len(offer["description"]) > 12000:
        problems.append("description is longer than 12000 characters")
    return problems


class FeedImporter(SandboxStore):
    """Imports by URL (a background thread, one at a time) and from a local feed file."""

    def start_import(self, url: str, opts: dict) -> tuple[int, dict]:
        """Begin an import (what POST /products/import_url does): (HTTP status, reply).

        Satu allows one import at a time and limits how often they start: a start while one runs, or
        sooner than `import_min_gap` seconds after the previous start, is refused with HTTP 400 and
        the refusal shape `{"status": "error", "message": …}` (no id).
        """
        if not is_loopback_url(url):
            return 400, {
                "error": {"message": "url: the sandbox only downloads from loopback (127.0.0.1) URLs"}
            }
        with self._lock:
            if self._import_thread is not None and self._import_thread.is_alive():
                return 400, {
                    "status": "error",
                    "message": "Превышено ограничение на запуск одновременных импортов: "
                    "another import is in progress; wait for it to finish",
                }
            since = time.time() - self._last_import_start
            if since < self.import_min_gap:
                return 400, {
                    "status": "error",
                    "message": "Превышено ограничение на запуск импортов: "
                    f"too many import starts, try again in {self.import_min_gap - since:.0f} s",
                }
            self._last_import_start = time.time()
            rec = {
                "id": uuid.uuid4().hex[:16],
                "url": url,
                "started": time.time(),
                "status": "PROCESSING",
                "total": 0,
                "created": 0,
                "updated": 0,
                "not_changed": 0,
                "with_errors_count": 0,
                "errors": [],
                "options": opts,
            }
            self._save_import(rec)
            self._import_thread = threading.Thread(
                target=self._run_import, args=(rec,), daemon=True, name=f"satu-import-{rec['id']}"
            )
            self._import_thread.start()
        return 200, {"id": rec["id"], "status": "success"}

    def load_feed_file(self, path: Path | str, *, check_pictures: bool = False, **opts: Any) -> dict:
        """Import a feed from a local file synchronously (demo set-up); returns the status record.

        Picture URLs are not probed unless asked: at set-up time the photos are often not served yet.
        """
        rec = {
            "id": uuid.uuid4().hex[:16],
            "url": str(path),
            "started": time.time(),
            "status": "PROCESSING",
            "total": 0,
            "created": 0,
            "updated": 0,
            "not_changed": 0,
            "with_errors_count": 0,
            "errors": [],
            "options": opts,
        }
        self._apply_feed(rec, Path(path).read_bytes(), check_pictures=check_pictures)
        return rec

    def _run_import(self, rec: dict) -> None:
        import httpx

        try:
            try:
                with httpx.Client(timeout=30, follow_redirects=False) as http:
                    r = http.get(rec["url"])
                if r.status_code != 200:
                    raise ValueError(f"the feed URL answered HTTP {r.status_code}")
                content = r.content
            except httpx.HTTPError as exc:
                raise ValueError(f"cannot download the feed: {type(exc).__name__}") from None
            self._stopping.wait(self.import_delay)
            self._apply_feed(rec, content)
        except ValueError as exc:  # Satu: FAIL, the error keyed by its kind
            rec.update(
                status="FAIL", errors=[{"download": {"extra": {"message": str(exc)}}}], with_errors_count=0
            )
        except Exception as exc:  # the sandbox must report, not die
            rec.update(status="FAIL", errors=[{"import": {"extra": {"message": f"internal error: {exc!r}"}}}])
        rec["finished"] = time.time()
        self._save_import(rec)

    def _pictures_ok(self, urls: set[str], check: bool) -> dict[str, bool]:
        """Which picture URLs answer (only loopback ones can: the sandbox never leaves the machine)."""
        if not check:
            return dict.fromkeys(urls, True)
        import httpx

        result = {u: False for u in urls}
        local = [u for u in urls if is_loopback_url(u)]

        def probe(url: str, http: httpx.Client) -> tuple[str, bool]:
            try:
                with http.stream("GET", url) as r:
                    return url, r.status_code == 200
            except httpx.HTTPError:
                return url, False

        if local:
            with httpx.Client(timeout=10, follow_redirects=False) as http, ThreadPoolExecutor(8) as pool:
                for url, ok in pool.map(lambda u: probe(u, http), local):
                    result[url] = ok
        return result

    def _apply_feed(self, rec: dict, content: bytes, check_pictures: bool | None = None) -> None:
        """Create/update products from a feed; fill the status record (PARTIAL when offers failed)."""
        opts = rec.get("options") or {}
        categories, offers = parse_feed(content)  # ValueError → FAIL
        rec["total"] = len(offers)
        check = self.check_pictures if check_pictures is None else check_pictures
        ready, errors = self._ready_offers(offers, categories, opts, check)
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        in_file = {str(o.get("id")) for o in offers}
        if opts.get("only_available"):  # offers skipped as not available count as missing
            in_file = {str(o.get("id")) for o in offers if (o.get("available") or "").lower() == "true"}
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for o in ready:
                    fields = _product_fields(o, self.availability)
                    counts[self._upsert(o, fields, opts.get("updated_fields"))] += 1
                not_in_file = self._not_in_file(in_file)
                mark = opts.get("mark_missing_product_as") or "none"
                if mark != "none":
                    self._mark_missing(mark, in_file)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        # Live: a picture that cannot be downloaded is listed in errors while with_errors_count stays 0.
        counted = [e for e in errors if "download_images" not in e]
        rec.update(
            created=counts["created"],
            updated=counts["updated"],
            not_changed=counts["unchanged"],
            not_in_file=not_in_file,
            with_errors_count=len(counted),
            errors=errors,
            status="PARTIAL" if errors else "SUCCESS",
        )

    def _ready_offers(
        self, offers: list[dict], categories: dict[str, str], opts: dict, check_pictures: bool
    ) -> tuple[list[dict], list[dict]]:
        """(offers Satu would import, errors of the others): offer checks first, then the pictures."""
        errors: list[dict] = []
        good: list[dict] = []
        for o in offers:
            if opts.get("only_available") and (o.get("available") or "").lower() != "true":
                continue
            problems = check_offer(o, categories)
            if problems:
                # The kind key is documented; the offer id and message inside `extra` are assumed.
                extra = {"external_id": o.get("id"), "message": "; ".join(problems)}
                errors.append({"validation": {"extra": extra}})
            else:
                good.append(o)
        pics = self._pictures_ok({u for o in good for u in o["pictures"]}, check_pictures)
        ready = []
        for o in good:
            bad = [u for u in o["pictures"] if not pics[u]]
            if bad:
                # The live shape: code 2004 with the picture's HTTP status (404 when it did not answer).
                extra = {"status_code": 404, "external_id": o["id"], "url": bad[0]}
                errors.append({"download_images": {"code": IMPORT_PICTURE_ERROR_CODE, "extra": extra}})
            else:
                ready.append(o)
        return ready, errors

    def _upsert(self, o: dict, fields: dict, updated_fields: list[str] | None) -> str:
        """Create or update one product from an offer: "created", "updated" or "unchanged"."""
        row = self._db.execute("SELECT data FROM products WHERE external_id = ?", (o["id"],)).fetchone()
        if row is None:
            extra = {"_visible_after": time.time() + self.appear_delay} if self.appear_delay else {}
            self._create_product({"external_id": o["id"], **fields, **extra})
            return "created"
        data = json.loads(row[0])
        if updated_fields:
            fields = {k: v for k, v in fields.items() if k in updated_fields}
        changed = {k: v for k, v in fields.items() if data.get(k) != v}
        if data.get("status") == "deleted":
            changed["status"] = "on_display"
        if not changed:
            return "unchanged"
        data.update(changed)
        data["date_modified"] = satu_time(datetime.now(SATU_TZ))
        self._save_product(data)
        return "updated"

    def _not_in_file(self, in_file: set[str]) -> int:
        """How many shown products the feed lacks (the `not_in_file` counter)."""
        rows = self._db.execute("SELECT external_id, data FROM products").fetchall()
        return sum(
            1 for ext, raw in rows if ext not in in_file and json.loads(raw).get("status") != "deleted"
        )

    def _mark_missing(self, mark: str, keep: set[Any]) -> None:
        """`mark_missing_product_as`: products not in the feed become not available / hidden / deleted."""
        for (raw,) in self._db.execute("SELECT data FROM products").fetchall():
            data = json.loads(raw)
            if data["external_id"] in keep:
                continue
            if mark == "not_available":
                data["presence"] = "not_available"
            else:
                data["status"] = mark
            self._save_product(data)


def presence_of(available: str | None, quantity: str | None, dialect: str = "satu") -> str:
    """The presence an offer's `available=` gives on Satu.

    "satu" (Satu/Prom's dialect, the default): `"true"` in stock; `"false"` is YML's "под заказ" —
    made to order, *orderable* (`order`); `""` not in stock; no attribute at all: in stock when
    `quantity_in_stock` is above 0, else not in stock. "yml" reads anything but `"true"` as not in stock
    (what a plain YML reader assumes): the two differ exactly where `[satu] unavailable_value` matters."""
    value = (available or "").strip().lower() if available is not None else None
    if value == "true":
        return "available"
    if dialect == "satu" and value == "false":
        return "order"
    if dialect == "satu" and value is None:
        qty = _decimal(quantity)
        return "available" if qty is not None and qty > 0 else "not_available"
    return "not_available"


def _product_fields(o: dict, dialect: str = "satu") -> dict[str, Any]:
    """The product fields an offer of the feed sets."""
    qty = o.get("quantity_in_stock")
    fields: dict[str, Any] = {
        "name": o["name"],
        "price": str(_decimal(o["price"])),
        "sku": o.get("vendorCode") or "",
        "presence": presence_of(o.get("available"), qty, dialect),
        "quantity_in_stock": int(qty) if qty else None,
        "description": o.get("description") or "",
        "images": o["pictures"],
        "main_image": o["pictures"][0] if o["pictures"] else "",
        "group_id": int(o["group_id"]) if (o.get("group_id") or "").isdigit() else None,
        "category_id": o.get("categoryId"),
        "prices": [_ladder_step(p) for p in o["prices"]],
    }
    if o["has_prices_block"] and not o["prices"]:
        fields["presence"] = "order"  # the documented quirk: an empty <prices> = on order
    return fields


def _ladder_step(p: dict) -> dict[str, Any]:
    quantity = _decimal(p["quantity"])
    return {"price": str(_decimal(p["price"]) or 0), "minimum_order_quantity": quantity and float(quantity)}
