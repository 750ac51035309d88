"""Issue 12, done-when: SIGTERM, SIGKILL and connection loss at random moments of `orders import`,
`orders watch`, `serve`, `feed` and `publish` (local and FTP) lose nothing, duplicate nothing,
quarantine nothing good, never leave a broken live feed, and leave no temp files after a clean run.

The short, deterministic version of `benchmarks/kill_campaign.py` (real processes, real signals, the
embedded engine, a real FTP server in a child process that is killed): every command once, with each
kind of fault at least once; the moments come from a fixed seed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PLAN = [
    ("orders import", "SIGKILL"),
    ("orders watch", "SIGTERM"),
    ("publish ftp", "ftp_down"),
    ("feed", "SIGKILL"),
    ("orders import", "db_shutdown"),
    ("publish local", "SIGKILL"),
    ("serve", "SIGTERM"),
]


def _campaign_module():
    spec = importlib.util.spec_from_file_location("kill_campaign", ROOT / "benchmarks" / "kill_campaign.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_campaign"] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def test_kill_campaign_loses_nothing_and_never_breaks_a_live_feed(tmp_path):
    campaign = _campaign_module()
    figures = campaign.run_campaign(tmp_path / "work", seed=12, orders=6, products=60, plan=PLAN)
    assert_nothing_lost(figures, PLAN)


def assert_nothing_lost(figures: dict, plan: list[tuple[str, str]]) -> None:
    """Every invariant of the campaign's figures (see benchmarks/kill_campaign.py)."""
    assert figures["runs"] == len(plan)
    assert set(figures["kills_per_command"]) == {c for c, _ in plan}
    bad = ("lost", "duplicated", "duplicated_lines", "duplicated_clients", "quarantined_good")
    bad += ("broken_live_feeds", "broken_photos", "left_in_inbox", "left_claimed", "done_twice")
    assert {k: figures[k] for k in bad} == dict.fromkeys(bad, 0), figures
    assert figures["leftover_temps"] == 0, figures["leftover_samples"]
    assert figures["final_run_failures"] == [], figures
    assert figures["final_feeds_match"] and figures["hung_after_sigterm"] == 0, figures
