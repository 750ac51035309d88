"""Typed settings: TOML file + `--set` overrides + secrets from environment variables.

Every section is a dataclass; each field carries its documentation and its checks in `metadata`.
`load()` reads the file, applies overrides, converts and validates every key, and raises one
`SettingsError` listing *all* problems (key, what is wrong, how to fix it). Relative paths are
resolved against the folder of the settings file. Secrets are never stored here: a `*_env` key
names the environment variable, and `secret()` reads it when it is needed.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import Problem, SettingsError
from pipeline.feed.sanitize import YOUTUBE_HOSTS
from pipeline.satu.api import CANCELLATION_REASONS
from pipeline.settings_checks import cross_check
from pipeline.settings_values import _check, _convert, opt, parse_override


@dataclass(frozen=True)
class TorgsoftSettings:
    """`[torgsoft]`: where the accounting database is and how to read it."""

    source: str = opt("database", "catalog source", choices=("database", "tsgoods"))
    database: Path = opt(Path("var/torgsoft.fdb"), "embedded database file (used when dsn is empty)")
    dsn: str = opt("", "server DSN host/port:path; empty = embedded file above")
    user: str = opt("SYSDBA", "database user")
    password_env: str = opt("TORGSOFT_DB_PASSWORD", "env var holding the database password")
    charset: str = opt("UTF8", "connection character set (WIN1251 for old Torgsoft databases)")
    shared_access: bool = opt(
        True, "embedded engine in SuperClassic mode: several processes may open the file"
    )
    accounting_centers: list[int] = opt(
        None, "accounting centers whose stock is sold on Satu; [] = all", factory=list
    )
    price_center: int = opt(0, "accounting center whose prices are used (0 = common prices)", min=0)
    mapping_dir: Path | None = opt(None, "folder with your own copies of the .sql mapping; empty = built-in")
    change_query: bool = opt(
        True,
        "stock watcher reads changes by CHANGED_AT (stock_changes.sql); false = compare a stock-only read",
    )
    tsgoods_file: Path | None = opt(None, 'TSGoods.trs export file (when source = "tsgoods")')
    tsgoods_encoding: str = opt("cp1251", "encoding of the TSGoods.trs file")
    tsgoods_header: bool = opt(True, "the TSGoods.trs file starts with a header row")
    tsgoods_columns: list[str] = opt(
        None, "column names in file order when there is no header; [] = vendor default", factory=list
    )
    lock_timeout: int = opt(
        15, "seconds a write waits for a row another transaction holds, then retries", min=1, max=600
    )


@dataclass(frozen=True)
class FeedSettings:
    """`[feed]`: what goes into the Satu YML feed."""

    output: Path = opt(Path("feeds/satu.yml"), "where the rendered feed is written")
    template: Path = opt(Path("templates/satu.yml.j2"), "Jinja template of the feed")
    shop_name: str = opt("Demo shop", "shop name (<name>)")
    company: str = opt("Demo company", "company name (<company>)")
    url: str = opt(
        "", "the shop's own site (<url>, offer and section URLs); empty = no <url> anywhere in the feed"
    )
    currency: str = opt("KZT", "currency of all prices", choices=("KZT",))
    zero_stock: str = opt(
        "hide", "products with no stock: hide them or show as awaiting", choices=("hide", "awaiting")
    )
    only_in_stock: bool = opt(False, "publish only products with stock > 0")
    only_with_photos: bool = opt(False, "publish only products with at least one photo")
    wholesale: bool = opt(True, "publish the wholesale price ladder where a product has one")
    long_articul: str = opt(
        "skip",
        "an article longer than 25 chars: skip the offer, omit the tag, or cut it",
        choices=("skip", "omit", "truncate"),
    )
    max_drop_percent: float = opt(
        20.0, "refuse a feed that drops more than this share of offers (unless --force)", min=0, max=100
    )
    keep_feeds: int = opt(10, "how many previous feeds (and diff reports) to keep", min=1)
    history_max_mb: int = opt(
        2048,
        "most disk space (MB) the kept feeds (gzip), snapshots and diffs may take; the oldest go first, "
        "the newest is always kept",
        min=1,
    )
    long_name: str = opt(
        "truncate",
        "a name longer than 110 chars (Satu's limit): cut it at a word boundary, or skip the offer",
        choices=("truncate", "skip"),
    )
    product_url: str = opt(
        "{url}/p/{slug}", "offer <url> pattern ({url} = feed.url, {slug}, {id}); empty = no <url>"
    )
    category_url: str = opt(
        "{url}/c/{slug}", "section URL pattern for templates and the groups file; empty = none"
    )
    param_release_date: str = opt("Дата выпуска", "param name for the release date; empty = don't send")
    release_date_format: str = opt("%d.%m.%Y", "strftime format of the release date param")
    param_length: str = opt("Длина", "param name for the length; empty = don't send")
    param_width: str = opt("Ширина", "param name for the width; empty = don't send")
    param_height: str = opt("Высота", "param name for the height; empty = don't send")
    dimension_unit: str = opt("см", "unit of length, width and height params")
    param_weight: str = opt("Вес", "param name for the weight; empty = don't send")
    weight_unit: str = opt("кг", "unit of the weight param")
    fallback_category: str = opt("", "category for products without a section; empty = skip such products")
    fallback_category_id: int = opt(
        999999999, "category id of fallback_category (must not clash with a section id)", min=1
    )
    groups_file: str = opt(
        "both",
        "companion file with section texts and images for Satu's group import",
        choices=("xlsx", "csv", "both", "none"),
    )
    history_dir: Path = opt(
        Path("feeds/history"), "previous feeds, their offer snapshots and per-run diff reports"
    )
    category_map: Path | None = opt(
        None,
        "CSV (';', UTF-8, header section_id;portal_id[;portal_name]) mapping sections to Satu portal "
        "categories; a section without a row inherits its nearest mapped ancestor; empty = none",
    )
    in_stock_flag: bool = opt(False, 'write in_stock="true" ("ready to ship") on offers with stock')
    vendor: str = opt(
        "emit",
        "<vendor> (brand): emit every producer, omit the tag, or emit only brands in vendor_allowlist "
        "(Satu imports only brands it knows; unknown ones cause import errors)",
        choices=("emit", "omit", "allowlist"),
    )
    vendor_allowlist: Path | None = opt(
        None, 'file with the brands to emit (one a line) when vendor = "allowlist"'
    )
    allowed_link_hosts: list[str] = opt(
        None,
        "hosts (subdomains included) whose links stay in descriptions besides the shop's own (feed.url); "
        "links to any other site are taken out, their text kept (Satu's moderation allows only YouTube)",
        factory=lambda: list(YOUTUBE_HOSTS),
    )


@dataclass(frozen=True)
class PhotosSettings:
    """`[photos]`: product photo processing."""

    source_dir: Path = opt(Path("var/photos"), "Torgsoft photo folder (photo file names are relative to it)")
    cache_dir: Path = opt(Path("photos_cache"), "resized photos")
    max_size: int = opt(1200, "longest side in pixels", min=100, max=10000)
    format: str = opt("jpeg", "output format", choices=("jpeg", "webp"))
    quality: int = opt(85, "output quality", min=1, max=100)
    workers: int = opt(0, "parallel processes; 0 = one per CPU", min=0)


@dataclass(frozen=True)
class PublishSettings:
    """`[publish]`: where the feed and photos are uploaded for Satu to pull."""

    target: str = opt("local", "upload target", choices=("local", "ftp", "ftps", "sftp"))
    local_dir: Path = opt(Path("var/public"), "folder served at public_base_url (target = local)")
    host: str = opt("", "FTP/SFTP host")
    port: int = opt(0, "port; 0 = protocol default", min=0, max=65535)
    user: str = opt("", "FTP/SFTP user")
    password_env: str = opt("PUBLISH_PASSWORD", "env var holding the FTP/SFTP password")
    key_file: Path | None = opt(None, "SFTP private key file (instead of a password)")
    host_key: str = opt("", 'SFTP server host key ("ssh-ed25519 AAAA…"); or use known_hosts')
    known_hosts: Path | None = opt(None, "known_hosts file with the SFTP server's key")
    remote_dir: str = opt("/", "folder on the server that public_base_url serves")
    public_base_url: str = opt(
        "", "URL at which remote_dir (or local_dir) is served; empty = not set yet (no pictures in the feed)"
    )
    allow_private_urls: bool = opt(
        False,
        "a loopback/private public_base_url (127.0.0.1, 192.168.…, localhost, .local) is meant: no "
        "warning (tests, the demo; Satu cannot download from such hosts)",
    )
    delete_orphans: bool = opt(False, "remove published photos no product refers to any more")
    check_urls: bool = opt(False, "before publishing, check that the feed URL and sample photo URLs answer")
    timeout: float = opt(30.0, "network timeout, seconds", min=1)
    retries: int = opt(4, "retries of a failed network operation", min=0, max=20)
    tls_ca_file: Path | None = opt(None, "FTPS: CA or self-signed certificate to trust; empty = system CAs")


@dataclass(frozen=True)
class SatuSettings:
    """`[satu]`: the Satu.kz seller API."""

    base_url: str = opt(
        "https://my.satu.kz/api/v1", "API base URL (the sandbox: http://127.0.0.1:PORT/api/v1)"
    )
    token_env: str = opt("SATU_TOKEN", "env var holding the API token")
    timeout: float = opt(30.0, "HTTP timeout, seconds", min=1)
    max_retries: int = opt(5, "retries on 429/5xx/timeouts", min=0, max=20)
    push: bool = opt(True, "push stock/price/presence changes through the API after each catalog run")
    full_push_hours: float = opt(6.0, "re-send stock for every product this often; 0 = never", min=0)
    max_requests_per_minute: int = opt(
        30, "requests to Satu per minute, shared by every push and the stock watcher; 0 = no limit", min=0
    )
    import_after_publish: bool = opt(False, "ask Satu to import the feed by URL after publishing")
    available_value: str = opt("true", "value of offer available= for an item in stock")
    unavailable_value: str = opt(
        "", 'value of offer available= for an item out of stock ("" = not in stock; "false" = made to order)'
    )
    query_timezone: str = opt(
        "UTC",
        "time zone of the dates sent in order queries: UTC (what the evidence says), +05:00, or an IANA name",
    )
    language: str = opt("ru", "X-LANGUAGE header: the language of Satu's texts in replies (ru, kk)")
    import_wait_minutes: float = opt(
        15.0, "how long to wait for a feed import to become final (a live one took ~9.5 min)", min=15
    )
    import_min_hours: float = opt(
        4.0,
        "hours between automatic imports after publishing (Satu limits import starts); "
        "sooner only when products are missing on Satu",
        min=0,
    )


@dataclass(frozen=True)
class OrdersSettings:
    """`[orders]`: Satu orders into Torgsoft."""

    inbox: Path = opt(Path("inbox"), "drop folder for order files")
    sink: str = opt("database", "where orders go", choices=("database", "torgsoft-json"))
    json_dir: str = opt(
        "var/torgsoft-orders",
        "folder (or ftps://… URL, explicit TLS; ftp://… is plain) for Torgsoft order files",
    )
    reserve_days: int = opt(3, "reserve goods for this many days when the customer gave no date", min=0)
    fetch_overlap_hours: float = opt(
        6.0,
        "each order download re-reads this many hours before its cursor (versions already there are skipped)",
        min=0,
    )
    reconcile_days: int = opt(
        14, "orders reconcile looks at Satu orders created or modified in the last N days", min=1, max=365
    )
    reconcile_hours: float = opt(6.0, "the service runs orders reconcile this often, hours; 0 = never", min=0)
    auto_invoice: bool = opt(False, "create an invoice for every new order, not only paid ones")
    accounting_center: int = opt(1, "accounting center the order is served from", min=1)
    price_kind: str = opt(
        "order",
        "line price: as in the order, or Torgsoft's retail/wholesale price",
        choices=("order", "retail", "wholesale"),
    )
    transliterate_unsupported: bool = opt(False, "transliterate text the database charset cannot hold")
    settle_seconds: float = opt(2.0, "a file is taken once it has not changed for this long", min=0)
    max_file_bytes: int = opt(5_000_000, "larger order files are quarantined", min=1024)
    reserve_date_field: str = opt(
        "delivery_date", "order field with the date the customer gave (reserve until); empty = none"
    )
    json_password_env: str = opt(
        "ORDERS_FTP_PASSWORD", "env var holding the FTP password when json_dir is ftp:// or ftps://"
    )
    json_tls_ca_file: Path | None = opt(
        None, "FTPS (json_dir = ftps://…): CA or self-signed certificate to trust; empty = system CAs"
    )
    json_prefix: str = opt(
        "satu-order-", "file name prefix of Torgsoft order files (name = prefix + order id)"
    )
    keep_done_days: int = opt(
        90,
        "imported order files (personal data) in inbox/done are deleted after this many days; 0 = kept",
        min=0,
    )
    import_workers: int = opt(
        2,
        "orders imported in parallel, each over its own connection (each order is still one transaction)",
        min=1,
        max=16,
    )


@dataclass(frozen=True)
class StatusSettings:
    """`[status]`: order states from Torgsoft back to Satu."""

    enabled: bool = opt(True, "push order status changes to Satu")
    accepted: str = opt("received", "Satu status for an accepted order")
    paid: str = opt("paid", "Satu status for a paid order")
    shipped: str = opt("delivered", "Satu status for a shipped order")
    delivered: str = opt("delivered", "Satu status for a delivered order")
    cancelled: str = opt("canceled", "Satu status for a cancelled order")
    cancellation_reason: str = opt(
        "another",
        "reason sent with a cancellation",
        choices=CANCELLATION_REASONS,
    )
    cancellation_text: str = opt("Заказ отменён магазином", "text sent where the reason requires one")
    carrier: str = opt("", "delivery_type sent with a waybill number (carrier code); empty = don't send TTNs")
    keep_custom_statuses: bool = opt(
        True, "never overwrite a seller's own Satu status (custom-<id>, e.g. monthly folders)"
    )
    overlap_minutes: float = opt(
        60.0,
        "re-read orders changed this long before the saved change-time cursor "
        "(late commits); unchanged ones are skipped by their hash",
        min=0,
    )
    retry_seconds: float = opt(
        60.0, "first retry delay of a failed push; doubles each attempt (max 6 h)", min=0
    )
    max_attempts: int = opt(
        8, "give up on one order's push after this many failed attempts (journal error)", min=1
    )
    verify_before_push: bool = opt(
        True,
        "read each order from Satu before writing: skip what Satu already has "
        "(e.g. a change that came from Satu) and spot unknown order ids",
    )


@dataclass(frozen=True)
class ScheduleSettings:
    """`[schedule]`: the service timer."""

    interval_minutes: int = opt(30, "full exchange every N minutes (at least 10)", min=1)
    partial: bool = opt(False, "timer runs prices and stock only (no order download)")
    orders_minutes: int = opt(
        10, "order download/import and status push every N minutes (at least 10)", min=1
    )
    stock_seconds: int = opt(
        60, "stock watcher: push stock and price changes every N seconds (at least 15); 0 = off", min=0
    )
    lock_wait_seconds: float = opt(
        120.0, "a run that finds another one going waits this long, then gives up", min=0
    )


@dataclass(frozen=True)
class NotifySettings:
    """`[notify]`: who hears about new orders and failures."""

    channels: list[str] = opt(None, 'any of "email", "telegram", "webhook"', factory=list)
    smtp_host: str = opt("", "SMTP server")
    smtp_port: int = opt(25, "SMTP port", min=1, max=65535)
    smtp_tls: str = opt(
        "none",
        'TLS to the SMTP server: "starttls" (port 587), "implicit" (port 465) or "none" (no login then)',
        choices=("starttls", "implicit", "none"),
    )
    smtp_user: str = opt("", "SMTP user; empty = no login")
    smtp_password_env: str = opt("SMTP_PASSWORD", "env var holding the SMTP password")
    email_from: str = opt("", "sender address")
    email_to: list[str] = opt(None, "recipients", factory=list)
    telegram_token_env: str = opt("TELEGRAM_TOKEN", "env var holding the Telegram bot token")
    telegram_chat_id: str = opt("", "Telegram chat id")
    telegram_api: str = opt("https://api.telegram.org", "Telegram Bot API base URL")
    webhook_url: str = opt("", "URL that receives a JSON POST per notification")
    unreachable_runs: int = opt(3, "alert when a server is unreachable this many runs in a row", min=1)
    stale_feed_hours: float = opt(24.0, "alert when the feed was not refreshed for this long", min=1)
    repeat_hours: float = opt(24.0, "repeat an alert that is still open at most this often", min=0)
    smtp_cafile: Path | None = opt(None, "CA certificates (PEM) to trust for SMTP TLS; empty = the system's")
    timeout: float = opt(20.0, "network timeout of a notification channel, seconds", min=1)


@dataclass(frozen=True)
class JournalSettings:
    """`[journal]`: the searchable event log and local state."""

    path: Path = opt(Path("var/journal.sqlite"), "SQLite journal of every event")
    log_file: Path = opt(Path("var/sync.log"), "human-readable log file (rotated)")
    retention_days: int = opt(90, "prune journal entries older than this", min=1)
    state_path: Path = opt(
        Path("var/state.sqlite"), "local state: id maps, cursors, published hashes, outbox"
    )
    lock_file: Path = opt(Path("var/run.lock"), "lock that keeps to one run at a time")


@dataclass(frozen=True)
class WebSettings:
    """`[web]`: the local control-room web page (`run.py web`, and inside `serve`)."""

    enabled: bool = opt(True, "serve the web page inside `serve`")
    host: str = opt("127.0.0.1", "address to bind; anything but loopback needs password_env")
    port: int = opt(8780, "port of the web page", min=1, max=65535)
    password_env: str = opt("", "env var holding the web page password; empty = no login (loopback only)")


SECTIONS: dict[str, type] = {
    "torgsoft": TorgsoftSettings,
    "feed": FeedSettings,
    "photos": PhotosSettings,
    "publish": PublishSettings,
    "satu": SatuSettings,
    "orders": OrdersSettings,
    "status": StatusSettings,
    "schedule": ScheduleSettings,
    "notify": NotifySettings,
    "journal": JournalSettings,
    "web": WebSettings,
}


@dataclass(frozen=True)
class Settings:
    """All settings; `base_dir` is the folder of the settings file (relative paths hang from it)."""

    base_dir: Path
    torgsoft: TorgsoftSettings
    feed: FeedSettings
    photos: PhotosSettings
    publish: PublishSettings
    satu: SatuSettings
    orders: OrdersSettings
    status: StatusSettings
    schedule: ScheduleSettings
    notify: NotifySettings
    journal: JournalSettings
    web: WebSettings = WebSettings()
    source: Path | None = None

    def secret(self, dotted_key: str, required: bool = True) -> str:
        """Read the secret named by a `*_env` setting, e.g. `secret("satu.token_env")`.

        Raises SettingsError naming the setting and the variable when it is required and unset.
        """
        section, key = dotted_key.split(".", 1)
        return read_secret(dotted_key, getattr(getattr(self, section), key), required)

    def replace(self, **sections: Any) -> Settings:
        """A copy with some sections replaced (sections are frozen dataclasses)."""
        return dataclasses.replace(self, **sections)


def build(data: dict[str, Any], base_dir: Path, source: Path | None = None) -> Settings:
    """Validate a settings mapping (as read from TOML) and return Settings, or raise SettingsError."""
    problems: list[Problem] = []
    sections: dict[str, Any] = {}
    for name in data:
        if name not in SECTIONS:
            close = difflib.get_close_matches(name, SECTIONS, n=1)
            problems.append(
                Problem(
                    f"[{name}]",
                    "unknown section",
                    f"did you mean [{close[0]}]?" if close else f"known sections: {', '.join(SECTIONS)}",
                )
            )
    for name, cls in SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            problems.append(Problem(f"[{name}]", "must be a table", f"write [{name}] on its own line"))
            raw = {}
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                problems.append(
                    Problem(
                        f"{name}.{key}",
                        "unknown setting",
                        f"did you mean {name}.{close[0]}?"
                        if close
                        else "remove it (see settings.toml for the known keys)",
                    )
                )
                continue
            meta = fields[key].metadata
            try:
                converted = _convert(value, hints[key], base_dir)
            except ValueError as exc:
                problems.append(Problem(f"{name}.{key}", str(exc), f"expected: {meta.get('doc', '')}"))
                continue
            items = converted if isinstance(converted, list) else [converted]
            for item in items:
                err = _check(item, meta)
                if err:
                    problems.append(Problem(f"{name}.{key}", err, f"{meta.get('doc', '')}"))
                    break
            else:
                values[key] = converted
        # Relative path defaults hang from the settings folder too.
        for fname, f in fields.items():
            if (
                fname not in values
                and hints[fname] is Path
                and isinstance(f.default, Path)
                and not f.default.is_absolute()
            ):
                values[fname] = base_dir / f.default
        sections[name] = cls(**values)
    settings = Settings(base_dir=base_dir, source=source, **sections)
    # Rules over two keys are checked too (a key that failed its own check has its default here), so
    # every problem shows at once; a key already reported is not reported twice.
    reported = {p.key for p in problems}
    problems += [p for p in cross_check(settings) if p.key not in reported]
    if problems:
        raise SettingsError(problems)
    return settings


#: the environment variable naming the settings file when --settings is not given (cron, services)
SETTINGS_ENV = "TORGSOFT_SATU_SETTINGS"


def find_settings(path: Path | str | None = None) -> Path | None:
    """The settings file of this run, found deliberately: `path` (--settings), else the file named by
    $TORGSOFT_SATU_SETTINGS, else ./settings.toml; None when there is none. A named file that does not
    exist is a SettingsError (never a silent fall back to the defaults)."""
    if path:
        named = Path(path).expanduser()
        if not named.is_file():
            raise SettingsError(
                Problem(str(named), "settings file not found", "give an existing file with --settings")
            )
        return named.resolve()
    env = os.environ.get(SETTINGS_ENV, "")
    if env:
        named = Path(env).expanduser()
        if not named.is_file():
            raise SettingsError(
                Problem(SETTINGS_ENV, f"names {env}, which is not a file", f"fix or unset {SETTINGS_ENV}")
            )
        return named.resolve()
    here = Path("settings.toml")
    return here.resolve() if here.is_file() else None


def read_secret(dotted_key: str, var: str, required: bool = True) -> str:
    """The one place a secret is read: the value of the environment variable `var` that the setting
    `dotted_key` names (see `Settings.secret`); SettingsError when required and unset."""
    value = os.environ.get(var, "") if var else ""
    if required and not value:
        raise SettingsError(
            Problem(
                dotted_key,
                f"environment variable {var or '(none)'} is not set",
                f"export {var or 'SOME_VAR'}=… before running, or name another variable in {dotted_key}",
            )
        )
    return value


def load(
    path: Path | str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    defaults_ok: bool = False,
) -> Settings:
    """Load the settings file (see `find_settings`) with `section.key=value` overrides. Without a file
    only `defaults_ok` callers (the demo) run on the built-in defaults, rooted at the current folder."""
    found = find_settings(path)
    if found is None and not defaults_ok:
        raise SettingsError(
            Problem(
                "--settings",
                f"no settings file: none given with --settings, {SETTINGS_ENV} is not set, "
                f"and {Path.cwd()} has no settings.toml",
                f"pass --settings /path/to/settings.toml or export {SETTINGS_ENV}=/path/to/settings.toml "
                "(only `demo` runs on the built-in defaults)",
            )
        )
    data: dict[str, Any] = {}
    if found is not None:
        try:
            data = tomllib.loads(found.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(
                Problem(str(found), f"is not valid TOML: {exc}", "fix the syntax at the line shown")
            ) from None
    for text in overrides:
        section, key, value = parse_override(text)
        data.setdefault(section, {})
        if isinstance(data[section], dict):
            data[section][key] = value
    base = found.parent if found is not None else Path.cwd().resolve()
    return build(data, base, source=found)


def _default_of(f: dataclasses.Field[Any]) -> Any:
    """A field's default value (made by its factory when it has one)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def describe() -> dict[str, dict[str, dict[str, Any]]]:
    """Every section, key, default and doc (for the README check and `settings.toml` tests)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, cls in SECTIONS.items():
        out[name] = {
            f.name: {
                "doc": f.metadata.get("doc", ""),
                "default": _default_of(f),
            }
            for f in dataclasses.fields(cls)
        }
    return out
