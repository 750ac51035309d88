"""The settings rules that look at more than one key (`cross_check`, part of every `load`) and the
settings that work but put a secret at risk (`warnings`, said at the top of every run)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipeline import _testing
from pipeline.errors import Problem
from pipeline.feed.urls import is_http_url, private_url
from pipeline.satu.api import query_zone

if TYPE_CHECKING:
    from pipeline.settings import Settings


REMOTE_TARGETS = ("ftp", "ftps", "sftp")


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
    problems += _public_url_problems(settings)
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


def _public_url_problems(settings: Settings) -> list[Problem]:
    """`[publish] public_base_url`: an http(s) URL when set; set when something must reach Satu by it."""
    p = settings.publish
    url = p.public_base_url
    if url and not is_http_url(url):
        return [
            Problem(
                "publish.public_base_url",
                f"{url!r} is not an http(s) URL (or holds a space)",
                "set the URL at which publish.remote_dir is served",
            )
        ]
    if url:
        return []
    needs = [
        reason
        for reason, on in (
            (f'publish.target = "{p.target}"', p.target in REMOTE_TARGETS),
            ("satu.import_after_publish = true", settings.satu.import_after_publish),
            ("publish.check_urls = true", p.check_urls),
        )
        if on
    ]
    if not needs:
        return []  # a local folder nobody serves yet: the feed just goes out without pictures
    return [
        Problem(
            "publish.public_base_url",
            f"is empty while {needs[0]}: Satu gets the feed and its pictures from that URL",
            "set the public https:// address at which publish.remote_dir is served",
        )
    ]


def warnings(settings: Settings) -> list[Problem]:
    """Settings that work but put a secret at risk, or a feed Satu cannot use: said at the top of every
    run, never fatal."""
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
    private = _private_public_url(settings)
    if private is not None:
        out.append(private)
    return out


def _private_public_url(settings: Settings) -> Problem | None:
    """The feed's pictures (and its own URL) on a host Satu cannot reach, unless that is meant."""
    p = settings.publish
    if not p.public_base_url or p.allow_private_urls or not private_url(p.public_base_url):
        return None
    where = (
        f'publish.target = "{p.target}" uploads to a server, but '
        if p.target in REMOTE_TARGETS
        else "the local folder is served at "
    )
    return Problem(
        "publish.public_base_url",
        f"{where}{p.public_base_url}, a loopback/private address: Satu, on the internet, cannot download "
        "the feed or its pictures from it",
        "set the public https:// address of the published folder, or publish.allow_private_urls = true "
        "for a test on this machine",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
