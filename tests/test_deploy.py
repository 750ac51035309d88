"""The systemd units (issue 15: the template unit serves several shops on one host).

Static checks of files a host installs as they are: they cannot be run here (no systemd as PID 1),
so each check pins one property the docs promise and that a careless edit would break."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ["torgsoft-satu.service", "torgsoft-satu@.service"]


def _service(name: str) -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((ROOT / "deploy" / name).read_text(encoding="utf-8"))
    return dict(parser["Service"])


@pytest.mark.parametrize("name", UNITS)
def test_the_unit_shares_temp_with_manual_and_cron_runs(name):
    """The embedded engine's lock table (/tmp/firebird) and the write gate (pipeline/torgsoft/
    writegate.py) live in /tmp and must be the same for the service and a cron or manual run on one
    database file: with PrivateTmp the service got a /tmp of its own, so two processes opened one
    file in SuperClassic mode with separate lock managers (found by the audit)."""
    assert _service(name).get("PrivateTmp", "false").lower() in ("false", "no", "0")


@pytest.mark.parametrize("name", UNITS)
def test_the_unit_keeps_personal_data_private_and_stops_cleanly(name):
    svc = _service(name)
    assert svc["UMask"] == "0077"
    assert svc["KillSignal"] == "SIGTERM" and int(svc["TimeoutStopSec"]) >= 120
    assert "--settings /etc/torgsoft-satu/" in svc["ExecStart"] and svc["ExecStart"].endswith(" serve")


def test_the_template_unit_keeps_every_shop_apart():
    """Settings, secrets, state folder and write access are all per instance (%i)."""
    svc = _service("torgsoft-satu@.service")
    assert "--settings /etc/torgsoft-satu/%i/settings.toml" in svc["ExecStart"]
    assert svc["EnvironmentFile"] == "/etc/torgsoft-satu/%i/env"
    assert svc["StateDirectory"] == "torgsoft-satu/%i" and svc["StateDirectoryMode"] == "0700"
    assert svc["WorkingDirectory"] == "/var/lib/torgsoft-satu/%i"
    assert svc["ReadWritePaths"] == "/var/lib/torgsoft-satu/%i"
    docs = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    assert "deploy/torgsoft-satu@.service" in docs and "torgsoft-satu@shop1" in docs
