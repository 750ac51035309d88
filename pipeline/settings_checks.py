"""The settings rules that look at more than one key (`cross_check`, part of every `load`) and the
settings that work but put a secret at risk (`warnings`, said at the top of every run)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipeline import _testing
from pipeline.errors import Problem
from pipeline.satu.api import query_zone

if TYPE_CHECKING:
    from pipeline.settings import Settings


def cross_check(settings: Settings) -> list[Problem]:
    """Rules that involve more than one key."""
    problems: list[Problem] = []
    t = settings.torgsoft
    if t.source == "tsgoods" and t.tsgoods_file is None:
        problems.append(
            Problem(
                "torgsoft.tsgoods_file",
                'is empty while torgsoft.source = "tsgoods"',
                "set it to the path of your TSGoods.trs export",
            )
        )
    try:
        query_zone(settings.satu.query_timezone)
    except ValueError as exc:
        problems.append(
            Problem(
                "satu.query_timezone",
                str(exc),
                'write "UTC", an offset like "+05:00" or a name like "Asia/Almaty"',
            )
        )
    p = settings.publish
    if p.target in ("ftp", "ftps", "sftp") and not p.host:
        problems.append(
            Problem(
                "publish.host",
                f'is empty while publish.target = "{p.target}"',
                "set the FTP/SFTP server name",
            )
        )
    if p.target == "sftp" and not p.host_key and p.known_hosts is None:
        problems.append(
            Problem(
                "publish.host_key",
                "SFTP needs the server's host key (never accepted blindly)",
                'set publish.host_key = "ssh-ed25519 AAAA…" or publish.known_hosts',
            )
        )
    if not p.public_base_url.startswith(("http://", "https://")):
        problems.append(
            Problem(
                "publish.public_base_url",
                f"{p.public_base_url!r} is not an http(s) URL",
                "set the URL at which publish.remote_dir is served",
            )
        )
    floor = f"{_testing.interval_floor_minutes():g}"  # 10, unless a test lowered it
    s = settings.schedule
    for key in ("interval_minutes", "orders_minutes"):
        if getattr(s, key) < float(floor):
            problems.append(
                Problem(
                    f"schedule.{key}",
                    f"{getattr(s, key)} is more often than every {floor} minutes",
                    f"set it to {floor} or more",
                )
            )
    if 0 < s.stock_seconds < 15:
        problems.append(
            Problem(
                "schedule.stock_seconds",
                f"{s.stock_seconds} is more often than every 15 seconds",
                "set it to 15 or more, or 0 to switch the stock watcher off",
            )
        )
    n = settings.notify
    if n.smtp_user and n.smtp_tls == "none":
        problems.append(
            Problem(
                "notify.smtp_tls",
                f'is "none" while notify.smtp_user = "{n.smtp_user}": the password would cross the network in clear text',
                'set smtp_tls = "starttls" (port 587) or "implicit" (port 465), or leave smtp_user empty',
            )
        )
    bad = [c for c in settings.notify.channels if c not in ("email", "telegram", "webhook")]
    if bad:
        problems.append(
            Problem(
                "notify.channels", f"unknown channel(s) {bad}", 'use any of "email", "telegram", "webhook"'
            )
        )
    return problems


def warnings(settings: Settings) -> list[Problem]:
    """Settings that work but put a secret at risk: said at the top of every run, never fatal."""
    out: list[Problem] = []
    for key, value in (
        ("satu.base_url", settings.satu.base_url),
        ("notify.telegram_api", settings.notify.telegram_api),
    ):
        url = urlsplit(value)
        if url.scheme == "http" and not _is_loopback(url.hostname or ""):
            out.append(
                Problem(
                    key,
                    f"{value} is plain http: the token (and what is sent) crosses the network unencrypted",
                    "use the https:// URL (plain http is meant for a local test server on 127.0.0.1)",
                )
            )
    return out


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
