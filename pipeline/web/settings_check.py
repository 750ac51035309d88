"""The Settings check page: the file in use, what the validator finds, secrets present or missing,
and connectivity checks run on demand. Secret values are never read into the page, only their presence."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from pipeline.errors import PipelineError, SettingsError


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
    """Try one connection: `database` (Torgsoft), `publish` (the FTP/SFTP/local target) or `satu`
    (the API token). Returns (ok, message)."""
    try:
        if what == "database":
            from pipeline.torgsoft.connection import connect

            con = connect(settings)
            con.close()
            return True, f"{settings.torgsoft.database}: connected"
        if what == "publish":
            from pipeline.publish.targets import make_target

            target = make_target(settings)
            try:
                target.connect()
                files = target.listing()
            finally:
                target.close()
            return True, f"{settings.publish.target}: connected, {len(files)} file(s) there"
        if what == "satu":
            from pipeline.satu.client import SatuClient

            settings.secret("satu.token_env")  # a missing variable is named, not sent as an empty token
            with SatuClient.from_settings(settings) as client:
                next(iter(client.iter_products(limit=1)), None)
            return True, f"{settings.satu.base_url}: the token is accepted"
    except SettingsError as exc:
        return False, "; ".join(str(p) for p in exc.problems)
    except PipelineError as exc:
        return False, str(exc)
    return False, f"unknown check {what!r}"
