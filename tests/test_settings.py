"""Settings: defaults, overrides, every problem reported at once, secrets from env."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pipeline.errors import SettingsError
from pipeline.settings import describe, load, parse_override

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_settings_file_lists_every_key_and_loads():
    data = tomllib.loads((ROOT / "settings.toml").read_text(encoding="utf-8"))
    spec = describe()
    assert set(data) == set(spec)
    for section, keys in spec.items():
        assert set(data[section]) == set(keys), section
    s = load(ROOT / "settings.toml")
    assert s.feed.zero_stock == "hide"
    assert s.torgsoft.database == ROOT / "var" / "torgsoft.fdb"


def test_overrides_parse_toml_values_or_strings():
    assert parse_override("feed.max_drop_percent=35") == ("feed", "max_drop_percent", 35)
    assert parse_override("feed.zero_stock=awaiting") == ("feed", "zero_stock", "awaiting")
    assert parse_override('feed.shop_name="A = B"') == ("feed", "shop_name", "A = B")
    assert parse_override("torgsoft.accounting_centers=[1, 2]") == ("torgsoft", "accounting_centers", [1, 2])


def test_every_problem_is_reported_at_once(tmp_path: Path):
    f = tmp_path / "s.toml"
    f.write_text(
        '[feed]\nzero_stock = "maybe"\nmax_drop_percent = "lots"\nonly_in_stok = true\n'
        "[photos]\nquality = 500\n[schedule]\ninterval_minutes = 5\n[bogus]\nx = 1\n",
        encoding="utf-8",
    )
    with pytest.raises(SettingsError) as exc:
        load(f)
    keys = {p.key for p in exc.value.problems}
    assert {
        "feed.zero_stock",
        "feed.max_drop_percent",
        "feed.only_in_stok",
        "photos.quality",
        "[bogus]",
    } <= keys
    text = str(exc.value)
    assert "did you mean feed.only_in_stock" in text
    assert "'hide', 'awaiting'" in text


def test_cross_checks_name_the_key_and_fix(tmp_path: Path):
    f = tmp_path / "s.toml"
    f.write_text('[publish]\ntarget = "sftp"\n[schedule]\ninterval_minutes = 5\n', encoding="utf-8")
    with pytest.raises(SettingsError) as exc:
        load(f)
    keys = {p.key for p in exc.value.problems}
    assert {"publish.host", "publish.host_key", "schedule.interval_minutes"} <= keys


def test_relative_paths_hang_from_the_settings_folder(tmp_path: Path):
    f = tmp_path / "conf" / "s.toml"
    f.parent.mkdir()
    f.write_text('[orders]\ninbox = "drop"\n', encoding="utf-8")
    s = load(f)
    assert s.orders.inbox == f.parent / "drop"
    assert s.feed.output == f.parent / "feeds" / "satu.yml"


def test_secret_comes_from_env_and_missing_one_names_the_variable(tmp_path: Path, monkeypatch):
    s = load(ROOT / "settings.toml", ["satu.token_env=MY_TEST_TOKEN"])
    monkeypatch.delenv("MY_TEST_TOKEN", raising=False)
    with pytest.raises(SettingsError) as exc:
        s.secret("satu.token_env")
    assert "MY_TEST_TOKEN" in str(exc.value)
    monkeypatch.setenv("MY_TEST_TOKEN", "abc")
    assert s.secret("satu.token_env") == "abc"


def test_cli_exits_2_and_lists_problems(tmp_path: Path):
    f = tmp_path / "s.toml"
    f.write_text('[feed]\nzero_stock = "maybe"\n[photos]\nquality = 0\n', encoding="utf-8")
    r = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(f), "catalog"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "feed.zero_stock" in r.stderr and "photos.quality" in r.stderr
    r = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--settings", str(f), "--set", "nodot=1", "catalog"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "section.key=value" in r.stderr
