"""`sync` and the `photos` / `publish` / `sync` commands on the demo catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import sync
from pipeline.cli import cli
from pipeline.journal import Journal
from pipeline.settings import Settings
from pipeline.state import State


def settings_file(s: Settings, tmp_path: Path, **extra: str) -> Path:
    """A settings.toml for the CLI pointing at the test's demo database and folders."""
    b = tmp_path
    text = f"""
[torgsoft]
database = "{s.torgsoft.database}"
[photos]
source_dir = "{s.photos.source_dir}"
cache_dir = "{b / "cache"}"
max_size = 160
workers = 2
[feed]
output = "{b / "feeds" / "satu.yml"}"
[publish]
target = "local"
local_dir = "{b / "public"}"
public_base_url = "http://127.0.0.1:8765"
allow_private_urls = true
[satu]
push = false
[journal]
path = "{b / "journal.sqlite"}"
log_file = "{b / "sync.log"}"
state_path = "{b / "state.sqlite"}"
lock_file = "{b / "run.lock"}"
"""
    for section, body in extra.items():
        text += f"\n[{section}]\n{body}\n"
    path = b / "settings.toml"
    path.write_text(text)
    return path


def test_photos_command_then_second_run_processes_nothing(demo_env: Settings, tmp_path: Path):
    path = settings_file(demo_env, tmp_path)
    runner = CliRunner()
    first = runner.invoke(cli, ["--settings", str(path), "photos", "--json"])
    assert first.exit_code == 0, first.output
    data = json.loads(first.output.strip().splitlines()[-1])
    assert data["processed"] > 10 and data["failed"] == 0
    second = runner.invoke(cli, ["--settings", str(path), "photos"])
    assert second.exit_code == 0 and "0 processed" in second.output


def test_publish_command_prints_the_feed_url(demo_env: Settings, tmp_path: Path):
    path = settings_file(demo_env, tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["--settings", str(path), "photos"]).exit_code == 0
    no_feed = runner.invoke(cli, ["--settings", str(path), "publish"])
    assert no_feed.exit_code == 1 and "run `feed` first" in no_feed.output
    (tmp_path / "feeds").mkdir(exist_ok=True)
    (tmp_path / "feeds" / "satu.yml").write_text("<yml_catalog/>\n")
    ok = runner.invoke(cli, ["--settings", str(path), "publish", "--verify"])
    assert ok.exit_code == 0, ok.output
    assert "Feed URL: http://127.0.0.1:8765/satu.yml" in ok.output
    assert (tmp_path / "public" / "satu.yml").read_text() == "<yml_catalog/>\n"
    again = runner.invoke(cli, ["--settings", str(path), "publish"])
    assert "uploaded 0 photos and 0 feed files" in again.output


def test_sync_runs_stages_in_order_and_reports_each(demo_env: Settings, tmp_path: Path):
    from pipeline.settings import load

    s = load(settings_file(demo_env, tmp_path))
    result = sync.run(s, journal=Journal.from_settings(s), state=State.from_settings(s))
    names = [st.name for st in result.stages]
    assert names == ["photos", "feed", "publish", "push"]
    assert result.stage("photos").status == "ok" and result.stage("photos").counts["processed"] > 10
    assert result.stage("feed").status in ("ok", "problems")
    assert result.stage("push").status == "skipped"
    partial = sync.run(s, journal=Journal.from_settings(s), state=State.from_settings(s), partial=True)
    assert partial.stage("photos").status == "skipped"


def test_sync_command_json(demo_env: Settings, tmp_path: Path):
    path = settings_file(demo_env, tmp_path)
    out = CliRunner().invoke(cli, ["--settings", str(path), "sync", "--partial", "--dry-run", "--json"])
    data = json.loads(out.output.strip().splitlines()[-1])
    assert data["partial"] and data["dry_run"]
    assert [s["name"] for s in data["stages"]] == ["photos", "feed", "publish", "push"]
    assert out.exit_code == (0 if data["ok"] else 1)


def test_sync_end_to_end_feed_photos_publish_import_push(demo_env: Settings, tmp_path: Path, monkeypatch):
    """The whole chain on loopback: Satu (the sandbox) imports the published feed by URL and downloads
    every picture it names from our HTTP server; then the API push runs."""
    import dataclasses
    import re

    pytest.importorskip("pipeline.feed")
    pytest.importorskip("pipeline.satu.push")
    from pipeline.devtools.sandbox import SandboxServer
    from servers import http_server

    public = tmp_path / "public"
    public.mkdir()
    sandbox = SandboxServer(tmp_path / "sandbox", import_delay=0.05, check_pictures=True).start()
    monkeypatch.setenv("SYNC_E2E_TOKEN", sandbox.token)
    try:
        with http_server(public) as base:
            s = demo_env.replace(
                photos=dataclasses.replace(demo_env.photos, max_size=160, workers=2),
                publish=dataclasses.replace(
                    demo_env.publish, target="local", local_dir=public, public_base_url=base, check_urls=True
                ),
                satu=dataclasses.replace(
                    demo_env.satu,
                    base_url=sandbox.url,
                    token_env="SYNC_E2E_TOKEN",
                    import_after_publish=True,
                    push=True,
                ),
            )
            journal, state = Journal.from_settings(s), State.from_settings(s)
            first = sync.run(s, journal=journal, state=state)
            status = {st.name: st.status for st in first.stages}
            assert [st.name for st in first.stages] == ["photos", "feed", "publish", "import", "push"]
            assert status["photos"] == "ok" and status["publish"] == "ok", first.stages
            assert status["import"] == "ok", first.stage("import")
            assert first.feed_url == base + "/satu.yml"
            feed = (public / "satu.yml").read_text(encoding="utf-8")
            pictures = re.findall(r"<picture>([^<]+)</picture>", feed)
            assert pictures and all(p.startswith(base + "/photos/") for p in pictures)
            assert all((public / p[len(base) + 1 :]).is_file() for p in pictures)
            offers = len(re.findall(r"<offer ", feed))
            assert len(sandbox.products()) == offers
            # Nothing changed: no photo work, no photo upload.
            second = sync.run(s, journal=journal, state=state)
            assert second.stage("photos").counts["processed"] == 0
            assert second.stage("publish").counts["photos_uploaded"] == 0
            partial = sync.run(s, journal=journal, state=state, partial=True)
            assert partial.stage("photos").status == "skipped"
            assert partial.stage("publish").counts["photos_uploaded"] == 0
    finally:
        sandbox.stop()


def test_a_stop_request_ends_the_photos_stage_early_and_starts_no_further_stage(
    demo_env: Settings, tmp_path: Path
):
    """`should_stop` reaches the stages: asked between photos, the run ends early with what was done
    recorded, and no later stage starts."""
    import dataclasses

    from pipeline.contracts.photo_urls import PUBLISHED_NS
    from pipeline.stage import Status

    s = demo_env.replace(photos=dataclasses.replace(demo_env.photos, max_size=160, workers=1))
    cache = Path(s.photos.cache_dir)

    def after_two_photos() -> bool:  # a stop that lands while photos are being processed
        return cache.is_dir() and sum(1 for p in cache.rglob("*") if p.is_file()) >= 2

    journal, state = Journal.from_settings(s), State.from_settings(s)
    result = sync.run(s, journal=journal, state=state, should_stop=after_two_photos)
    photos = result.stage("photos")
    assert photos.status == Status.STOPPED and result.interrupted and not result.ok
    assert [(st.name, st.status) for st in result.stages[1:]] == [
        ("feed", Status.SKIPPED),
        ("publish", Status.SKIPPED),
        ("push", Status.SKIPPED),
    ]
    assert result.stage("feed").detail == "stop requested: not started"
    done = photos.counts["processed"] + photos.counts["unchanged"] + photos.counts["failed"]
    assert 0 < done < photos.counts["referenced"]
    assert len([k for k, v in state.items(PUBLISHED_NS) if v.get("ok")]) == photos.counts["processed"]
    # The next run picks up where this one stopped.
    again = sync.run(s, journal=journal, state=state)
    assert again.stage("photos").counts["unchanged"] >= photos.counts["processed"]
