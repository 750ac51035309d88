"""Shared fixtures: real embedded Firebird databases built by the project's own generator."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.devtools.demo_data import build_demo_database
from pipeline.settings import Settings, build
from pipeline.torgsoft.connection import connect, create_database
from pipeline.torgsoft.schema import create_schema

ROOT = Path(__file__).resolve().parent.parent


def make_settings(base: Path, **sections: dict) -> Settings:
    """Settings rooted at `base` (all relative paths land there), with some keys overridden."""
    data: dict = {
        "torgsoft": {"database": str(base / "torgsoft.fdb")},
        "photos": {"source_dir": str(base / "photos")},
        "journal": {
            "path": str(base / "journal.sqlite"),
            "log_file": str(base / "sync.log"),
            "state_path": str(base / "state.sqlite"),
            "lock_file": str(base / "run.lock"),
        },
        "feed": {
            "output": str(base / "feeds" / "satu.yml"),
            "template": str(ROOT / "templates" / "satu.yml.j2"),
        },
        "orders": {"inbox": str(base / "inbox")},
        # the development case: a folder served on this machine (the shipped settings have no such URL)
        "publish": {"public_base_url": "http://127.0.0.1:8765", "allow_private_urls": True},
        "web": {"enabled": False},  # a service under test serves no page unless the test asks for one
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return build(data, base)


@pytest.fixture(scope="session")
def demo_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo database with 300 goods, built once per test session (copy it before writing)."""
    base = tmp_path_factory.mktemp("demo-template")
    build_demo_database(base / "torgsoft.fdb", base / "photos", products=300, seed=7, image_pool=30)
    return base


@pytest.fixture()
def demo_env(demo_db_template: Path, tmp_path: Path) -> Settings:
    """A private copy of the demo database and photos, with settings pointing at it."""
    shutil.copy(demo_db_template / "torgsoft.fdb", tmp_path / "torgsoft.fdb")
    shutil.copytree(demo_db_template / "photos", tmp_path / "photos")
    return make_settings(tmp_path)


@pytest.fixture()
def empty_db(tmp_path: Path) -> Settings:
    """An empty reference database (schema only) and its settings."""
    con = create_database(tmp_path / "torgsoft.fdb")
    try:
        create_schema(con)
    finally:
        con.close()
    return make_settings(tmp_path)


@pytest.fixture()
def db(demo_env: Settings):
    """An open connection to the private demo database."""
    con = connect(demo_env)
    yield con
    con.close()
