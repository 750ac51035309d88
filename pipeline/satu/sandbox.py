"""A local Satu.kz sandbox: an HTTP server that behaves like the seller API, quirks included.

It is a test and demo tool (nobody can reach the real Satu from our machines). It binds to 127.0.0.1
by default, keeps its state in SQLite under a state folder (it survives restarts), and reproduces
every quirk listed in SATU.md section 2:

- HTML 401 for a missing or wrong token (403 for a read-only token that tries to write);
- errors as HTTP 200 `{"error": "…"}`, HTTP 400 `{"error": {"message": "…"}}`, per-item `errors`;
- prices as strings with `₸`, spaces or NBSP as thousands separators and a decimal comma;
- strict date parameters: anything but `YYYY-MM-DDTHH:MM:SS` (a `Z`, milliseconds) silently
  returns zero orders; response dates carry `+05:00` and microseconds;
- an inclusive `last_id` cursor, newest first, `limit` ≤ 100;
- `edit_by_external_id` wants a bare JSON array (an object → "expected a list"), ≤ 100 items, and
  answers `processed_ids` + per-item `errors` (unknown external ids, bad fields);
- `pending` cannot be set; `cancellation_reason` is validated; some reasons need `cancellation_text`;
- `import_url` really downloads the feed (loopback URLs only), parses it and creates/updates
  products in a background thread; a second import while one runs → HTTP 400; the status goes
  `PROCESSING` → `SUCCESS` / `PARTIAL` (bad offers, unreachable pictures) / `FATAL`;
- order lines with fractional quantities and any client field possibly empty.

Tests drive it in-process (`SandboxServer(tmp).start()`; `fail_next`, `create_orders`,
`modify_order`, `products()`, `orders()`); operators run `python run.py satu-sandbox`.
Control endpoints under `/_sandbox/` (no token needed, loopback only) do the same over HTTP.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SATU_TZ = timezone(timedelta(hours=5))
API_PREFIX = "/api/v1"
MAX_LIMIT = 100
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
PRESENCES = ("available", "not_available", "order", "waiting", "service")
PRODUCT_STATUSES = (
    "on_display",
    "draft",
    "deleted",
    "not_on_display",
    "editing_required",
    "approval_pending",
    "deleted_by_moderator",
)
SETTABLE_ORDER_STATUSES = ("received", "paid", "delivered", "canceled")
STATUS_NAMES = {
    "pending": "Новый",
    "received": "Принят",
    "paid": "Оплачен",
    "delivered": "Выполнен",
    "canceled": "Отменен",
    "draft": "Черновик",
}
CANCELLATION_REASONS = {
    "not_available": "Нет в наличии",
    "price_changed": "Цена изменилась",
    "buyers_request": "По просьбе покупателя",
    "not_enough_fields": "Недостаточно данных",
    "duplicate": "Дубликат заказа",
    "invalid_phone_number": "Неверный номер телефона",
    "less_than_minimal_price": "Сумма меньше минимальной",
    "another": "Другое",
}
REASONS_WITH_TEXT = ("price_changed", "not_enough_fields", "another")
FAULT_MODES = ("429", "500", "502", "503", "200-error", "timeout")
#: SQL condition: a product an import created is visible only after its appear delay.
_VISIBLE = "COALESCE(json_extract(data, '$._visible_after'), 0) <= ?"

_HTML_401 = (
    "<!DOCTYPE html>\n<html><head><title>401 Unauthorized</title></head>"
    "<body><h1>Unauthorized</h1><p>Авторизуйтесь, чтобы продолжить.</p></body></html>\n"
)
_HTML_403 = (
    "<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>"
    "<body><h1>Forbidden</h1><p>Недостаточно прав для этого действия.</p></body></html>\n"
)
_HTML_500 = (
    "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>"
    "<body><h1>Internal Server Error</h1></body></html>\n"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY,
    external_id TEXT UNIQUE,
    group_id INTEGER,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS imports (id TEXT PRIMARY KEY, started REAL NOT NULL, data TEXT NOT NULL);
"""


# --- formatting, the way Satu does it ---------------------------------------------------------------


def format_price(value: Any, *, nbsp: bool = False) -> str:
    """A price as Satu writes it: `"1 950 ₸"`, `"650,50 ₸"`; NBSP separators when `nbsp`."""
    d = Decimal(str(value)).quantize(Decimal("0.01"))
    whole, frac = f"{d:.2f}".split(".")
    sign = "-" if whole.startswith("-") else ""
    whole = whole.lstrip("-")
    sep = "\u00a0" if nbsp else " "
    groups = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    text = sign + sep.join(groups or ["0"])
    if frac != "00":
        text += "," + frac
    return text + sep + "₸"


def satu_time(dt: datetime) -> str:
    """A response date: `2026-11-27T12:34:56.588791+05:00`."""
    return dt.astimezone(SATU_TZ).isoformat(timespec="microseconds")


def _parse_param_date(text: str) -> float | None:
    """A strict query date (naive, Satu time) as epoch seconds; None when not in the exact form."""
    if not _DATE_RE.match(text):
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=SATU_TZ).timestamp()
    except ValueError:
        return None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def is_loopback_url(url: str) -> bool:
    """True for an http(s) URL whose host is this machine (the sandbox never leaves loopback)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


# --- realistic orders ---------------------------------------------------------------------------------

_FIRST_M = [
    "Нурлан",
    "Ерлан",
    "Дамир",
    "Бауыржан",
    "Ержан",
    "Айдос",
    "Арман",
    "Талгат",
    "Ерболат",
    "Қуаныш",
    "Асқар",
    "Мұрат",
    "Дәулет",
    "Серік",
    "Жандос",
    "Алексей",
    "Сергей",
]
_FIRST_F = [
    "Айгерим",
    "Асель",
    "Жанар",
    "Гульнара",
    "Динара",
    "Мадина",
    "Сауле",
    "Алия",
    "Жансая",
    "Әсем",
    "Аружан",
    "Гүлжан",
    "Інжу",
    "Ольга",
    "Наталья",
]
_LAST = [
    "Нурланов",
    "Сейтказиев",
    "Жумабеков",
    "Омаров",
    "Тулегенов",
    "Байжанов",
    "Серікбаев",
    "Ахметов",
    "Абдрахманов",
    "Касымов",
    "Есенов",
    "Құдайбергенов",
    "Исмаилов",
    "Иванов",
    "Ким",
]
_PATRONYMIC_M = ["Ерланұлы", "Болатұлы", "Серікович", "Маратович", "Нурланович", ""]
_PATRONYMIC_F = ["Ерланқызы", "Болатқызы", "Сериковна", "Маратовна", "Нурлановна", ""]
_CITIES = [
    ("Алматы", "ул. Абая"),
    ("Астана", "пр. Кабанбай батыра"),
    ("Шымкент", "ул. Байтурсынова"),
    ("Караганда", "ул. Ерубаева"),
    ("Актобе", "пр. Абилкайыр хана"),
    ("Павлодар", "ул. Торайгырова"),
    ("Усть-Каменогорск", "ул. Казахстан"),
    ("Атырау", "ул. Сатпаева"),
    ("Костанай", "ул. Байтурсынова"),
]
_MAIL = ["mail.ru", "gmail.com", "inbox.kz", "yandex.kz", "list.ru"]
_LATIN = str.maketrans(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяәғқңөұүһі", "abvgdeejziiklmnoprstufhccss_y_euaagqnouuhi"
)
_DELIVERY = [
    ({"id": 1001, "name": "Самовывоз", "shipping_service": None}, None),
    ({"id": 1002, "name": "Курьером по городу", "shipping_service": None}, None),
    ({"id": 1003, "name": "Казпочта", "shipping_service": "kazpost"}, "kazpost"),
    ({"id": 1004, "name": "СДЭК", "shipping_service": "cdek"}, "cdek"),
]
_PAYMENT = [
    {"id": 2001, "name": "Наличными при получении"},
    {"id": 2002, "name": "Kaspi.kz"},
    {"id": 2003, "name": "Картой онлайн"},
    {"id": 2004, "name": "Безналичный расчёт"},
]
_SOURCES = ["portal", "portal", "company_site", "company_cabinet", "mobile_app"]
_NOTES = [
    "",
    "",
    "",
    "Позвоните перед доставкой",
    "Нужен чек",
    "Доставка после 18:00",
    "Упакуйте, пожалуйста, как подарок",
]
_DEFAULT_PRODUCTS = [
    ("9000001", "DEMO-1", "Чайник электрический", Decimal("12990")),
    ("9000002", "DEMO-2", "Кружка керамическая", Decimal("1950")),
    ("9000003", "DEMO-3", "Ткань хлопок (метр)", Decimal("650.50")),
]


def _phone(rng: random.Random) -> str:
    """A Kazakh mobile number in one of the spellings buyers really type."""
    code = rng.choice(["701", "702", "705", "707", "747", "771", "775", "777", "778"])
    n = f"{rng.randrange(10**7):07d}"
    a, b, c = n[:3], n[3:5], n[5:]
    return rng.choice(
        [
            f"+7{code}{n}",
            f"+7 ({code}) {a}-{b}-{c}",
            f"8 {code} {a} {b} {c}",
            f"8{code}{n}",
            f"+7 {code} {a} {b} {c}",
            f"{code}{n}",
            f"+7-{code}-{a}-{b}-{c}",
            f"7{code}{n}",
        ]
    )


def _as_product_tuple(p: Any) -> tuple[str, str, str, Decimal]:
    if isinstance(p, dict):
        return (
            str(p.get("external_id") or p.get("id")),
            str(p.get("sku") or ""),
            str(p.get("name") or ""),
            _decimal(p.get("price")) or Decimal(1000),
        )
    ext, sku, name, price = p
    return str(ext), str(sku or ""), str(name or ""), _decimal(price) or Decimal(1000)


def generate_orders(
    n: int,
    seed: int = 1,
    products: Sequence[Any] | None = None,
    *,
    start_id: int = 100_001,
    now: datetime | None = None,
    unknown_share: float = 0.05,
) -> list[dict]:
    """`n` realistic Satu orders (dicts exactly as `GET /orders/{id}` returns the inner order).

    Deterministic for a seed. `products` = [(external_id, sku, name, price), …] (or product dicts);
    order lines use them, plus a few lines with external ids the shop does not know. Kazakh names,
    +7 phones in many spellings, some paid, some with waybills, some cancelled, some client fields
    empty, some fractional quantities, prices as `"1 950 ₸"` strings (sometimes with NBSP).
    """
    rng = random.Random(seed)
    catalog = [_as_product_tuple(p) for p in (products or _DEFAULT_PRODUCTS)]
    now = now or datetime.now(SATU_TZ)
    orders = []
    for i in range(n):
        oid = start_id + i
        female = rng.random() < 0.5
        first = rng.choice(_FIRST_F if female else _FIRST_M)
        last = rng.choice(_LAST)
        if female and last.endswith(("ов", "ев")):
            last += "а"
        second = rng.choice(_PATRONYMIC_F if female else _PATRONYMIC_M)
        phone = _phone(rng)
        email = f"{first.lower().translate(_LATIN)}.{oid % 1000}@{rng.choice(_MAIL)}"
        # Any client field may be empty.
        r = rng.random()
        if r < 0.06:
            last, second = "", ""
        elif r < 0.10:
            phone = ""
        elif r < 0.14:
            first = ""
        if rng.random() < 0.4:
            email = ""
        created = now - timedelta(minutes=rng.randint(5, 14 * 24 * 60), microseconds=rng.randrange(10**6))
        nbsp = rng.random() < 0.5
        lines, total = [], Decimal(0)
        for _pos in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
            if rng.random() < unknown_share:
                ext, sku, name, price = (
                    f"unknown-{rng.randrange(10**6)}",
                    "",
                    "Товар не из каталога",
                    Decimal(rng.randrange(500, 30000)),
                )
            else:
                ext, sku, name, price = rng.choice(catalog)
            if rng.random() < 0.12:
                qty: Any = rng.choice([0.5, 1.5, 2.25, 0.75, 3.5])
                unit = rng.choice(["м", "кг"])
            else:
                qty, unit = rng.choice([1, 1, 1, 1, 2, 2, 3, 5]), "шт."
            line_total = (price * Decimal(str(qty))).quantize(Decimal("0.01"))
            total += line_total
            lines.append(
                {
                    "id": rng.randrange(1_000_000_000, 2_000_000_000),
                    "external_id": ext,
                    "sku": sku,
                    "name": name,
                    "name_multilang": {"ru": name},
                    "quantity": qty,
                    "price": format_price(price, nbsp=nbsp),
                    "total_price": format_price(line_total, nbsp=nbsp),
                    "measure_unit": unit,
                    "image": f"https://images.satu.kz/{ext}_w200_h200.jpg",
                    "url": f"https://satu.kz/p{ext}.html",
                    "cpa_commission": {"amount": "0"},
                }
            )
        status = rng.choices(
            ["pending", "received", "paid", "delivered", "canceled", "custom-1001"],
            weights=[45, 20, 10, 10, 10, 5],
        )[0]
        delivery_option, carrier = rng.choice(_DELIVERY)
        delivery_cost = (
            Decimal(0)
            if carrier is None and delivery_option["id"] == 1001
            else Decimal(rng.choice([0, 1000, 1500, 2500]))
        )
        city, street = rng.choice(_CITIES)
        address = "" if delivery_option["id"] == 1001 else f"{city}, {street}, {rng.randint(1, 200)}"
        paid = status in ("paid", "delivered") or (status == "received" and rng.random() < 0.3)
        provider_data = None
        if carrier:
            waybill = status in ("delivered", "paid") or (status == "received" and rng.random() < 0.5)
            provider_data = {
                "provider": carrier,
                "type": "W2D" if address else "W2W",
                "recipient_warehouse_id": str(rng.randint(100, 999)),
                "declaration_number": f"{rng.randrange(10**13):013d}" if waybill else None,
                "unified_status": "in_transit" if waybill else None,
            }
        cancellation = None
        if status == "canceled":
            reason = rng.choice(["buyers_request", "not_available", "another"])
            cancellation = {"reason": reason, "title": CANCELLATION_REASONS[reason]}
        modified = created + timedelta(minutes=rng.randint(0, 600)) if status != "pending" else created
        modified = min(modified, now)
        orders.append(
            {
                "id": oid,
                "date_created": satu_time(created),
                "date_modified": satu_time(modified),
                "client_first_name": first,
                "client_second_name": second,
                "client_last_name": last,
                "client_id": rng.randint(10**6, 10**7),
                "client_notes": rng.choice(_NOTES),
                "phone": phone,
                "email": email,
                "price": format_price(total, nbsp=nbsp),
                "full_price": format_price(total + delivery_cost, nbsp=nbsp),
                "delivery_cost": float(delivery_cost) if delivery_cost else 0,
                "delivery_address": address,
                "delivery_option": dict(delivery_option),
                "delivery_provider_data": provider_data,
                "payment_option": dict(rng.choice(_PAYMENT)),
                "payment_data": {
                    "type": "prosale" if paid else "cash",
                    "status": "paid" if paid else "unpaid",
                },
                "status": status,
                "status_name": STATUS_NAMES.get(status, "Ждёт оплаты"),
                "source": rng.choice(_SOURCES),
                "cancellation": cancellation,
                "has_order_promo_free_delivery": False,
                "products": lines,
            }
        )
    return orders


# --- the feed importer (pure parts) -------------------------------------------------------------------


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


# --- the server ---------------------------------------------------------------------------------------


class _Fault:
    def __init__(self, count: int, mode: str, retry_after: float | None, delay: float, path: str | None):
        self.count, self.mode, self.retry_after, self.delay, self.path = count, mode, retry_after, delay, path


class SandboxServer:
    """The Satu sandbox. `SandboxServer(state_dir).start()`; `.url` is the API base URL; `.stop()`.

    `token`: the API token it accepts (default: the one saved in the state folder, or a new random
    one). `readonly_token`: a token that may read but gets 403 on writes. `import_delay`: seconds an
    import stays PROCESSING (so concurrency can be observed). `appear_delay`: seconds before products
    an import created become visible to the API (Satu: 1–3 minutes).
    """

    def __init__(
        self,
        state_dir: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        readonly_token: str | None = None,
        import_delay: float = 0.3,
        check_pictures: bool = True,
        appear_delay: float = 0.0,
    ):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.host, self.port = host, port
        self.import_delay = import_delay
        self.appear_delay = appear_delay
        self.check_pictures = check_pictures
        self.readonly_token = readonly_token
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.state_dir / "sandbox.sqlite", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        saved = self._meta("token")
        self.token = token or saved or secrets.token_urlsafe(24)
        if self.token != saved:
            self._set_meta("token", self.token)
        self._faults: list[_Fault] = []
        self._import_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: API calls received, by "METHOD /path-pattern" (control calls excluded)
        self.calls: dict[str, int] = {}
        #: the largest page the lists return (a larger `limit` is silently capped)
        self.max_limit = MAX_LIMIT

    # --- life cycle -----------------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Bind and serve in a background thread; returns self."""
        handler = type("Handler", (_Handler,), {"sandbox": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="satu-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (for the CLI)."""
        if self._httpd is None:
            self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving, wait for a running import, close the state file."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._import_thread is not None:
            self._import_thread.join(10)
        with self._lock:
            self._db.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        """`http://host:port` (control endpoints live under `/_sandbox/`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL, e.g. `http://127.0.0.1:PORT/api/v1` (what `[satu] base_url` takes)."""
        return self.root_url + API_PREFIX

    # --- state helpers --------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _next_id(self, key: str, start: int, count: int = 1) -> int:
        """Reserve `count` ids from a counter; returns the first."""
        with self._lock:
            first = int(self._meta(key) or start)
            self._set_meta(key, str(first + count))
            return first

    # --- fault injection ------------------------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        mode: str = "500",
        *,
        retry_after: float | None = 0,
        delay: float = 3.0,
        path: str | None = None,
    ) -> None:
        """Make the next `count` API calls fail: `429` (with Retry-After), `500`/`502`/`503` (HTML body),
        `200-error` (HTTP 200 with {"error": …}) or `timeout` (no answer for `delay` seconds, then the
        connection drops). `path`: only calls whose path starts with it (after /api/v1)."""
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {FAULT_MODES}")
        with self._lock:
            self._faults.append(_Fault(count, mode, retry_after, delay, path))

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.count > 0 and (f.path is None or path.startswith(f.path)):
                    f.count -= 1
                    if f.count == 0:
                        self._faults.remove(f)
                    return f
        return None

    def pending_faults(self) -> int:
        """How many injected failures are still to come."""
        with self._lock:
            return sum(f.count for f in self._faults)

    # --- products -------------------------------------------------------------------------------------

    def put_products(self, products: Iterable[dict]) -> int:
        """Create or update products directly (tests, benchmarks). Keys: external_id (required), name,
        sku, price, quantity_in_stock, presence, status, prices, group_id. Returns how many."""
        rows = list(products)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for p in rows:
                    ext = str(p["external_id"])
                    row = self._db.execute(
                        "SELECT id, data FROM products WHERE external_id = ?", (ext,)
                    ).fetchone()
                    if row:
                        data = json.loads(row[1])
                        data.update({k: v for k, v in p.items() if k != "id"})
                        if "price" in p:
                            data["price"] = str(_decimal(p["price"]))
                        self._save_product(data)
                    else:
                        self._create_product({**p, "external_id": ext})
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def _create_product(self, p: dict) -> dict:
        pid = self._next_id("next_product_id", 2_000_000_001)
        data = {
            "id": pid,
            "external_id": str(p["external_id"]),
            "name": p.get("name") or f"Товар {p['external_id']}",
            "sku": p.get("sku") or "",
            "keywords": "",
            "description": p.get("description") or "",
            "selling_type": p.get("selling_type") or "retail",
            "presence": p.get("presence") or "available",
            "presence_sure": True,
            "price": str(_decimal(p.get("price")) or Decimal(0)),
            "minimum_order_quantity": None,
            "discount": None,
            "prices": p.get("prices") or [],
            "currency": "KZT",
            "group_id": p.get("group_id"),
            "category_id": p.get("category_id"),
            "main_image": p.get("main_image") or "",
            "images": p.get("images") or [],
            "status": p.get("status") or "on_display",
            "quantity_in_stock": p.get("quantity_in_stock"),
            "measure_unit": "шт.",
            "date_modified": satu_time(datetime.now(SATU_TZ)),
        }
        if p.get("_visible_after"):
            data["_visible_after"] = p["_visible_after"]
        self._save_product(data)
        return data

    def _save_product(self, data: dict) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO products (id, external_id, group_id, data) VALUES (?, ?, ?, ?)",
            (data["id"], data["external_id"], data.get("group_id"), json.dumps(data, ensure_ascii=False)),
        )

    def products(self) -> list[dict]:
        """Every product as stored (price as a plain decimal string), by id."""
        with self._lock:
            return [json.loads(r[0]) for r in self._db.execute("SELECT data FROM products ORDER BY id")]

    def product(self, external_id: str) -> dict | None:
        """One stored product by external id."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM products WHERE external_id = ?", (str(external_id),)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def delete_product(self, external_id: str) -> None:
        """Remove a product outright (tests of 'missing on Satu')."""
        with self._lock:
            self._db.execute("DELETE FROM products WHERE external_id = ?", (str(external_id),))

    @staticmethod
    def _product_view(data: dict) -> dict:
        """A product as the API shows it: prices as strings with ₸."""
        nbsp = data["id"] % 2 == 0
        view = {k: v for k, v in data.items() if not k.startswith("_")}
        view["price"] = format_price(data["price"], nbsp=nbsp)
        view["prices"] = [
            {
                "price": format_price(p["price"], nbsp=nbsp),
                "minimum_order_quantity": p.get("minimum_order_quantity"),
            }
            for p in data.get("prices") or []
        ]
        return view

    # --- orders ---------------------------------------------------------------------------------------

    def create_orders(
        self,
        n: int | None = None,
        *,
        seed: int = 1,
        orders: list[dict] | None = None,
        products: Sequence[Any] | None = None,
    ) -> list[dict]:
        """Add orders: the given dicts, or `n` generated ones whose lines use `products` (default: the
        sandbox's own products, else a tiny built-in list). Ids are assigned by the sandbox."""
        if orders is None:
            if products is None:
                products = [
                    (p["external_id"], p.get("sku", ""), p.get("name", ""), p["price"])
                    for p in self.products()
                    if p.get("status") != "deleted"
                ] or None
            orders = generate_orders(n or 0, seed, products)
        first = self._next_id("next_order_id", 300_000_001, len(orders))
        out = []
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for i, o in enumerate(orders):
                    o = {**o, "id": first + i}
                    now = satu_time(datetime.now(SATU_TZ))
                    o.setdefault("date_created", now)
                    o.setdefault("date_modified", o["date_created"])
                    o.setdefault("status", "pending")
                    o.setdefault("status_name", STATUS_NAMES.get(o["status"], o["status"]))
                    o.setdefault("products", [])
                    self._save_order(o)
                    out.append(o)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def _save_order(self, o: dict) -> None:
        created = datetime.fromisoformat(o["date_created"]).timestamp()
        modified = datetime.fromisoformat(o["date_modified"]).timestamp()
        self._db.execute(
            "INSERT OR REPLACE INTO orders (id, created, modified, status, data) VALUES (?, ?, ?, ?, ?)",
            (o["id"], created, modified, o["status"], json.dumps(o, ensure_ascii=False)),
        )

    def _bump(self, o: dict) -> None:
        """Move date_modified forward (strictly later than before, even within one microsecond)."""
        old = datetime.fromisoformat(o["date_modified"])
        new = max(datetime.now(SATU_TZ), old + timedelta(microseconds=1))
        o["date_modified"] = satu_time(new)

    def modify_order(self, order_id: int, **changes: Any) -> dict:
        """Change fields of an order as a buyer or manager would on Satu; bumps date_modified."""
        with self._lock:
            o = self.order(order_id)
            if o is None:
                raise KeyError(order_id)
            o.update(changes)
            if "status" in changes and "status_name" not in changes:
                o["status_name"] = STATUS_NAMES.get(o["status"], o["status"])
            self._bump(o)
            self._save_order(o)
            return o

    def orders(self) -> list[dict]:
        """Every order as stored, by id."""
        with self._lock:
            return [json.loads(r[0]) for r in self._db.execute("SELECT data FROM orders ORDER BY id")]

    def order(self, order_id: int) -> dict | None:
        """One stored order."""
        with self._lock:
            row = self._db.execute("SELECT data FROM orders WHERE id = ?", (int(order_id),)).fetchone()
        return json.loads(row[0]) if row else None

    # --- imports --------------------------------------------------------------------------------------

    def imports(self) -> list[dict]:
        """Every import's status record, oldest first."""
        with self._lock:
            return [json.loads(r[0]) for r in self._db.execute("SELECT data FROM imports ORDER BY started")]

    def _save_import(self, rec: dict) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO imports (id, started, data) VALUES (?, ?, ?)",
                (rec["id"], rec["started"], json.dumps(rec, ensure_ascii=False)),
            )

    def start_import(self, url: str, opts: dict) -> tuple[int, dict]:
        """Begin an import (what POST /products/import_url does): (HTTP status, reply)."""
        if not is_loopback_url(url):
            return 400, {
                "error": {"message": "url: the sandbox only downloads from loopback (127.0.0.1) URLs"}
            }
        with self._lock:
            if self._import_thread is not None and self._import_thread.is_alive():
                return 400, {
                    "error": {
                        "message": "Импорт уже выполняется. Another import is in progress; "
                        "wait for it to finish before starting a new one"
                    }
                }
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
        except ValueError as exc:
            rec.update(status="FATAL", errors=[{"message": str(exc)}], with_errors_count=0)
        except Exception as exc:  # the sandbox must report, not die
            rec.update(status="FATAL", errors=[{"message": f"internal error: {exc!r}"}])
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
        categories, offers = parse_feed(content)  # ValueError → FATAL
        rec["total"] = len(offers)
        errors: list[dict] = []
        good: list[dict] = []
        for o in offers:
            if opts.get("only_available") and (o.get("available") or "").lower() != "true":
                continue
            problems = check_offer(o, categories)
            if problems:
                errors.append({"external_id": o.get("id"), "message": "; ".join(problems), "critical": True})
            else:
                good.append(o)
        pics = self._pictures_ok(
            {u for o in good for u in o["pictures"]},
            self.check_pictures if check_pictures is None else check_pictures,
        )
        ready = []
        for o in good:
            bad = [u for u in o["pictures"] if not pics[u]]
            if bad:
                errors.append(
                    {
                        "external_id": o["id"],
                        "critical": True,
                        "message": f"picture cannot be downloaded: {bad[0]}",
                    }
                )
            else:
                ready.append(o)
        updated_fields = opts.get("updated_fields")
        created = updated = unchanged = 0
        seen = set()
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for o in ready:
                    seen.add(o["id"])
                    available = (o.get("available") or "").lower() == "true"
                    qty = o.get("quantity_in_stock")
                    fields = {
                        "name": o["name"],
                        "price": str(_decimal(o["price"])),
                        "sku": o.get("vendorCode") or "",
                        "presence": "available" if available else "not_available",
                        "quantity_in_stock": int(qty) if qty else None,
                        "description": o.get("description") or "",
                        "images": o["pictures"],
                        "main_image": o["pictures"][0] if o["pictures"] else "",
                        "group_id": int(o["group_id"]) if (o.get("group_id") or "").isdigit() else None,
                        "category_id": o.get("categoryId"),
                        "prices": [
                            {
                                "price": str(_decimal(p["price"]) or 0),
                                "minimum_order_quantity": _decimal(p["quantity"])
                                and float(_decimal(p["quantity"])),
                            }
                            for p in o["prices"]
                        ],
                    }
                    if o["has_prices_block"] and not o["prices"]:
                        fields["presence"] = "order"  # the documented quirk: an empty <prices> = on order
                    row = self._db.execute(
                        "SELECT data FROM products WHERE external_id = ?", (o["id"],)
                    ).fetchone()
                    if row is None:
                        extra = (
                            {"_visible_after": time.time() + self.appear_delay} if self.appear_delay else {}
                        )
                        self._create_product({"external_id": o["id"], **fields, **extra})
                        created += 1
                        continue
                    data = json.loads(row[0])
                    if updated_fields:
                        fields = {k: v for k, v in fields.items() if k in updated_fields}
                    changed = {k: v for k, v in fields.items() if data.get(k) != v}
                    if data.get("status") == "deleted":
                        changed["status"] = "on_display"
                    if changed:
                        data.update(changed)
                        data["date_modified"] = satu_time(datetime.now(SATU_TZ))
                        self._save_product(data)
                        updated += 1
                    else:
                        unchanged += 1
                mark = opts.get("mark_missing_product_as") or "none"
                if mark != "none":
                    for (raw,) in self._db.execute("SELECT data FROM products").fetchall():
                        data = json.loads(raw)
                        if data["external_id"] in seen or data["external_id"] in {
                            e.get("external_id") for e in errors
                        }:
                            continue
                        if mark == "not_available":
                            data["presence"] = "not_available"
                        else:
                            data["status"] = mark
                        self._save_product(data)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        rec.update(
            created=created,
            updated=updated,
            not_changed=unchanged,
            with_errors_count=len(errors),
            errors=errors,
            status="PARTIAL" if errors else "SUCCESS",
        )

    # --- API handlers (called by _Handler with the decoded request) -----------------------------------

    def handle_api(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        """Route one authenticated API call; returns (HTTP status, JSON reply)."""
        routes = [
            ("GET", r"/orders/list", self._orders_list),
            ("GET", r"/orders/(\d+)", self._order_get),
            ("POST", r"/orders/set_status", self._set_status),
            ("POST", r"/delivery/save_declaration_id", self._save_declaration),
            ("GET", r"/products/list", self._products_list),
            ("GET", r"/products/by_external_id/(.+)", self._product_by_external_id),
            ("GET", r"/products/(\d+)", self._product_get),
            ("POST", r"/products/edit_by_external_id", self._edit_by_external_id),
            ("POST", r"/products/import_url", self._import_url),
            ("GET", r"/products/import/status/([^/]+)", self._import_status),
        ]
        for m, pattern, fn in routes:
            match = re.fullmatch(pattern, path)
            if match and m == method:
                with self._lock:
                    key = f"{method} {pattern}"
                    self.calls[key] = self.calls.get(key, 0) + 1
                return fn(query, body, *match.groups())
        return 404, {"error": {"message": f"no such endpoint: {method} {path}"}}

    def _orders_list(self, q: dict[str, str], _body: Any) -> tuple[int, Any]:
        where, args = [], []
        for param, column, op in (
            ("date_from", "created", ">="),
            ("date_to", "created", "<="),
            ("last_modified_from", "modified", ">="),
            ("last_modified_to", "modified", "<="),
        ):
            if param in q:
                ts = _parse_param_date(q[param])
                if ts is None:
                    return 200, {"orders": []}  # the quirk: a Z or milliseconds silently match nothing
                where.append(f"{column} {op} ?")
                args.append(ts)
        if q.get("status"):
            where.append("status = ?")
            args.append(q["status"])
        if q.get("last_id"):
            if not q["last_id"].isdigit():
                return 400, {"error": {"message": "last_id: invalid integer"}}
            where.append("id <= ?")
            args.append(int(q["last_id"]))
        limit = self._limit(q)
        if limit is None:
            return 400, {"error": {"message": "limit: invalid integer"}}
        sql = "SELECT data FROM orders" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, [*args, limit]).fetchall()
        return 200, {"orders": [json.loads(r[0]) for r in rows]}

    def _limit(self, q: dict[str, str]) -> int | None:
        raw = q.get("limit") or str(self.max_limit)
        if not raw.isdigit():
            return None
        return max(1, min(int(raw), self.max_limit))

    def _order_get(self, _q: dict, _body: Any, oid: str) -> tuple[int, Any]:
        o = self.order(int(oid))
        if o is None:
            return 404, {"error": "Order not found"}
        return 200, {"order": o}

    def _set_status(self, _q: dict, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
            return 400, {"error": {"message": "ids: expected a list of order ids"}}
        status = body.get("status")
        if status == "pending":
            return 400, {"error": {"message": "status: 'pending' cannot be set"}}
        if (
            status not in SETTABLE_ORDER_STATUSES
            and status != "draft"
            and not (isinstance(status, str) and re.fullmatch(r"custom-\d+", status))
        ):
            return 400, {"error": {"message": f"status: unknown status {status!r}"}}
        reason, text = body.get("cancellation_reason"), body.get("cancellation_text")
        if status == "canceled":
            if reason not in CANCELLATION_REASONS:
                return 400, {
                    "error": {
                        "message": f"cancellation_reason: {reason!r} is not one of "
                        f"{', '.join(CANCELLATION_REASONS)}"
                    }
                }
            if reason in REASONS_WITH_TEXT and not (isinstance(text, str) and text.strip()):
                return 400, {"error": {"message": f"cancellation_text: required for reason {reason!r}"}}
        if len(body["ids"]) > MAX_LIMIT:
            return 400, {"error": {"message": f"ids: at most {MAX_LIMIT} per call"}}
        done = []
        with self._lock:
            for oid in body["ids"]:
                o = self.order(oid) if isinstance(oid, int) or str(oid).isdigit() else None
                if o is None:
                    continue
                o["status"] = status
                o["status_name"] = STATUS_NAMES.get(status, status)
                if status == "canceled":
                    o["cancellation"] = {"reason": reason, "title": text or CANCELLATION_REASONS[reason]}
                if status == "paid":
                    o["payment_data"] = {**(o.get("payment_data") or {}), "status": "paid"}
                self._bump(o)
                self._save_order(o)
                done.append(o["id"])
        return 200, {"processed_ids": done}

    def _save_declaration(self, _q: dict, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, {"error": {"message": "expected an object"}}
        if not body.get("declaration_id") or not body.get("delivery_type"):
            return 400, {"error": {"message": "declaration_id and delivery_type are required"}}
        with self._lock:
            oid = body.get("order_id")
            o = self.order(oid) if str(oid).isdigit() else None
            if o is None:
                return 200, {"error": "Order not found"}  # the 200-with-error shape
            pd = dict(o.get("delivery_provider_data") or {})
            pd.update(provider=body["delivery_type"], declaration_number=str(body["declaration_id"]))
            o["delivery_provider_data"] = pd
            self._bump(o)
            self._save_order(o)
        return 200, {"status": "success"}

    def _products_list(self, q: dict[str, str], _body: Any) -> tuple[int, Any]:
        where, args = [_VISIBLE], [time.time()]
        if q.get("last_id"):
            if not q["last_id"].isdigit():
                return 400, {"error": {"message": "last_id: invalid integer"}}
            where.append("id <= ?")
            args.append(int(q["last_id"]))
        if q.get("group_id"):
            where.append("group_id = ?")
            args.append(int(q["group_id"]) if q["group_id"].isdigit() else -1)
        limit = self._limit(q)
        if limit is None:
            return 400, {"error": {"message": "limit: invalid integer"}}
        sql = "SELECT data FROM products" + (" WHERE " + " AND ".join(where) if where else "")
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
        return 200, {"products": [self._product_view(json.loads(r[0])) for r in rows]}

    def _product_get(self, _q: dict, _body: Any, pid: str) -> tuple[int, Any]:
        with self._lock:
            row = self._db.execute(
                f"SELECT data FROM products WHERE id = ? AND {_VISIBLE}", (int(pid), time.time())
            ).fetchone()
        if row is None:
            return 404, {"error": "Product not found"}
        return 200, {"product": self._product_view(json.loads(row[0]))}

    def _product_by_external_id(self, _q: dict, _body: Any, ext: str) -> tuple[int, Any]:
        p = self.product(unquote(ext))
        if p is None or p.get("_visible_after", 0) > time.time():
            return 404, {"error": "Product not found"}
        return 200, {"product": self._product_view(p)}

    def _edit_by_external_id(self, _q: dict, body: Any) -> tuple[int, Any]:
        if not isinstance(body, list):
            return 200, {"error": "expected a list"}
        if len(body) > MAX_LIMIT:
            return 400, {"error": {"message": f"at most {MAX_LIMIT} products per call"}}
        processed, errors = [], {}
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for item in body:
                    ext = (
                        str(item.get("id"))
                        if isinstance(item, dict) and item.get("id") not in (None, "")
                        else None
                    )
                    if ext is None:
                        errors[str(len(errors))] = {"id": "required"}
                        continue
                    problems = self._edit_problems(item)
                    row = self._db.execute(
                        f"SELECT data FROM products WHERE external_id = ? AND {_VISIBLE}", (ext, time.time())
                    ).fetchone()
                    if row is None:
                        problems["id"] = f"product with external_id {ext!r} not found"
                    if problems:
                        errors[ext] = problems
                        continue
                    data = json.loads(row[0])
                    for k in (
                        "presence",
                        "presence_sure",
                        "status",
                        "quantity_in_stock",
                        "name",
                        "keywords",
                        "description",
                    ):
                        if k in item:
                            data[k] = item[k]
                    if "price" in item:
                        data["price"] = str(_decimal(item["price"]))
                    if "prices" in item:
                        data["prices"] = [
                            {
                                "price": str(_decimal(p["price"])),
                                "minimum_order_quantity": p.get("minimum_order_quantity"),
                            }
                            for p in item["prices"]
                        ]
                    data["date_modified"] = satu_time(datetime.now(SATU_TZ))
                    self._save_product(data)
                    processed.append(ext)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return 200, {"processed_ids": processed, "errors": errors}

    @staticmethod
    def _edit_problems(item: dict) -> dict[str, str]:
        problems = {}
        for fixed in ("sku", "external_id"):
            if fixed in item:
                problems[fixed] = f"{fixed} can be changed only by an import"
        if "presence" in item and item["presence"] not in PRESENCES:
            problems["presence"] = f"must be one of {', '.join(PRESENCES)}"
        if "status" in item and item["status"] not in ("on_display", "not_on_display", "draft", "deleted"):
            problems["status"] = "must be on_display or not_on_display"
        if "price" in item:
            d = _decimal(item["price"])
            if d is None or d < 0 or isinstance(item["price"], str) and "₸" in item["price"]:
                problems["price"] = "must be a non-negative number"
        if "quantity_in_stock" in item:
            q = item["quantity_in_stock"]
            if q is not None and (isinstance(q, bool) or not isinstance(q, int) or q < 0):
                problems["quantity_in_stock"] = "must be a non-negative integer or null"
        if "prices" in item:
            ok = isinstance(item["prices"], list) and all(
                isinstance(p, dict) and _decimal(p.get("price")) is not None for p in item["prices"]
            )
            if not ok:
                problems["prices"] = "must be a list of {price, minimum_order_quantity}"
        return problems

    def _import_url(self, _q: dict, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            return 400, {"error": {"message": "url: required"}}
        mark = body.get("mark_missing_product_as", "none")
        if mark not in ("none", "not_available", "not_on_display", "deleted"):
            return 400, {"error": {"message": "mark_missing_product_as: invalid value"}}
        opts = {
            k: body[k]
            for k in ("force_update", "only_available", "mark_missing_product_as", "updated_fields")
            if k in body
        }
        return self.start_import(body["url"], opts)

    def _import_status(self, _q: dict, _body: Any, import_id: str) -> tuple[int, Any]:
        with self._lock:
            row = self._db.execute("SELECT data FROM imports WHERE id = ?", (import_id,)).fetchone()
        if row is None:
            return 404, {"error": "Import not found"}
        rec = json.loads(row[0])
        reply = {
            k: rec[k]
            for k in ("status", "total", "created", "updated", "not_changed", "with_errors_count", "errors")
        }
        if re.fullmatch(r"[0-9a-f]+", import_id) and int(import_id[-1], 16) % 2:
            reply["status"] = reply["status"].capitalize()  # the quirk: the case of the status varies
        return 200, reply

    # --- control endpoints ----------------------------------------------------------------------------

    def handle_control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """`/_sandbox/...`: fault injection, order creation/modification, a state summary."""
        try:
            if method == "POST" and path == "/fail":
                self.fail_next(
                    int(body.get("count", 1)),
                    str(body.get("mode", "500")),
                    retry_after=body.get("retry_after", 0),
                    delay=float(body.get("delay", 3.0)),
                    path=body.get("path"),
                )
                return 200, {"pending_faults": self.pending_faults()}
            if method == "POST" and path == "/orders":
                made = self.create_orders(int(body.get("count", 1)), seed=int(body.get("seed", 1)))
                return 200, {"created": [o["id"] for o in made]}
            m = re.fullmatch(r"/orders/(\d+)", path)
            if method == "POST" and m:
                return 200, {"order": self.modify_order(int(m.group(1)), **body)}
            if method == "POST" and path == "/products":
                return 200, {"count": self.put_products(body if isinstance(body, list) else [body])}
            if method == "GET" and path == "/state":
                with self._lock:
                    n_products = self._db.execute("SELECT COUNT(*) FROM products").fetchone()[0]
                    n_orders = self._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
                return 200, {
                    "products": n_products,
                    "orders": n_orders,
                    "imports": self.imports()[-5:],
                    "pending_faults": self.pending_faults(),
                    "calls": dict(self.calls),
                }
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            return 400, {"error": {"message": f"{type(exc).__name__}: {exc}"}}
        return 404, {"error": {"message": f"no such control endpoint: {method} {path}"}}


class _Handler(BaseHTTPRequestHandler):
    """HTTP plumbing: auth, fault injection, JSON in/out. HTTP/1.1 keep-alive like the real API."""

    sandbox: SandboxServer
    protocol_version = "HTTP/1.1"
    # One segment per reply: unbuffered header and body writes plus Nagle and delayed ACKs would add
    # ~40 ms to every keep-alive request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server_version = "nginx"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and demo read the journal
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _send(
        self,
        status: int,
        payload: Any = None,
        *,
        html: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if html is not None:
            raw, ctype = html.encode("utf-8"), "text/html; charset=utf-8"
        else:
            raw, ctype = json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _dispatch(self, method: str) -> None:
        sb = self.sandbox
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, {"error": {"message": "request body is not valid JSON"}})
                return
        if parts.path.startswith("/_sandbox/"):
            status, reply = sb.handle_control(method, parts.path[len("/_sandbox") :], body or {})
            self._send(status, reply)
            return
        if not parts.path.startswith(API_PREFIX + "/"):
            self._send(404, html="<html><body><h1>404 Not Found</h1></body></html>")
            return
        path = parts.path[len(API_PREFIX) :]
        fault = sb._take_fault(path)
        if fault is not None:
            if fault.mode == "timeout":
                sb._stopping.wait(fault.delay)
                self.close_connection = True
                return
            if fault.mode == "429":
                headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                self._send(429, {"error": {"message": "Too many requests"}}, headers=headers)
                return
            if fault.mode == "200-error":
                self._send(200, {"error": "Внутренняя ошибка сервера. Попробуйте позже."})
                return
            self._send(int(fault.mode), html=_HTML_500)
            return
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if token is None or not (
            secrets.compare_digest(token, sb.token)
            or (sb.readonly_token and secrets.compare_digest(token, sb.readonly_token))
        ):
            self._send(401, html=_HTML_401)
            return
        if method == "POST" and token != sb.token:
            self._send(403, html=_HTML_403)
            return
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            status, reply = sb.handle_api(method, path, query, body)
        except Exception as exc:  # a sandbox bug must show as a 500, like a real server
            status, reply = 500, {"error": {"message": f"sandbox internal error: {exc!r}"}}
        self._send(status, reply)
