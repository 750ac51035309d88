"""The Settings check page: the file in use, what the validator finds, secrets present or missing,
and connectivity checks run on demand. Secret values are never read into the page, only their presence."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from pipeline.errors import SettingsError


def settings_report(settings: Any) -> dict[str, Any]:
    """{file, problems: [text], secrets: [(setting, variable, present)]}."""
    from pipeline.settings import SECTIONS, load
    from pipeline.settings_checks import warnings

    problems: list[str] = []
    if settings.source is not None:
        try:
            load(settings.source)
        except SettingsError as exc:
            problems = [str(p) for p in exc.problems]
    # settings that work but put a secret at risk (plain http for a token) are shown with the problems
    problems += [f"warning: {p}" for p in warnings(settings)]
    secrets = []
    for name in SECTIONS:
        section = getattr(settings, name, None)
        if section is None:
            continue
        for f in dataclasses.fields(section):
            if f.name.endswith("_env"):
                var = getattr(section, f.name)
                secrets.append((f"{name}.{f.name}", var, bool(var and os.environ.get(var))))
    return {
        "file": str(settings.source) if settings.source else "(built-in defaults)",
        "problems": problems,
        "secrets": secrets,
    }


def check_connection(settings: Any, what: str) -> tuple[bool, str]:
    """Try one connection: `database` (Torgsoft, with the SQL mapping), `publish` (the FTP/SFTP/local
    target) or `satu` (the API token) — the `doctor` checks, run online. Returns (ok, message)."""
    from pipeline import doctor

    checks = {"database": doctor.check_database, "publish": doctor.check_publish, "satu": doctor.check_satu}
    check = checks.get(what)
    if check is None:
        return False, f"unknown check {what!r}"
    found = list(check(settings, True))
    failed = [c for c in found if c.status is not doctor.Status.OK]  # (an unset token asked to be tried)
    if failed:
        return False, "; ".join(f"{c.message} — {c.fix}" if c.fix else c.message for c in failed)
    return True, "; ".join(c.message for c in found)
