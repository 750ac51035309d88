"""Publish when things go wrong (issues 12 and 15): cut uploads never go live, failures are clear.

Real servers on 127.0.0.1 (tests/servers.py): an FTP server that cuts the data channel after N bytes and
answers 426 (or, lying, 226 without a SIZE command), a port nobody listens on, a name that does not
resolve; the `publish` command itself through click.
"""

from __future__ import annotations

import socket
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.journal import Journal
from pipeline.publish import MANIFEST_NS
from pipeline.publish.stage import file_hash, photo_items
from pipeline.settings import Settings
from pipeline.state import State
from servers import ftp_server
from test_publish import PASSWORD, env, ftp, run, with_publish, write_feed

__all__ = ["env"]  # the fixture, shared with test_publish


def manifest(s: Settings) -> dict:
    return dict(State.from_settings(s).items(MANIFEST_NS))


def test_feed_cut_with_426_never_goes_live_and_is_retried(env: Settings, tmp_path: Path):
    with ftp_server(
        tmp_path / "ftp", "shop", PASSWORD, cut_after=65_536, cut_match=".satu.yml.uploading", cuts=1
    ) as srv:
        s = ftp(env, srv)
        srv.cuts_left = 0
        assert run(s).ok
        v1 = (srv.root / "shop/satu.yml").read_bytes()
        v2 = write_feed(s, "v2")
        assert len(v2) > 65_536 * 3
        srv.cuts_left = 1
        cut = run(s)
        assert not cut.ok and not cut.feed_published and cut.feed_url == ""
        assert "426" in cut.errors[0] and "did not confirm" in cut.errors[0]
        assert (srv.root / "shop/satu.yml").read_bytes() == v1  # the live feed is the whole old one
        assert manifest(s)["satu.yml"]["hash"] != file_hash(Path(s.feed.output))
        again = run(s)
        assert again.ok and again.feed_files_uploaded == 1
        assert (srv.root / "shop/satu.yml").read_bytes() == v2
    # With retries the same cut is repaired within the run.
    with ftp_server(
        tmp_path / "ftp2", "shop", PASSWORD, cut_after=65_536, cut_match=".satu.yml.uploading", cuts=1
    ) as srv:
        s = ftp(env, srv, retries=2)
        result = run(s)
        assert result.ok and result.retries == 1 and result.feed_published
        assert (srv.root / "shop/satu.yml").read_bytes() == v2


def test_photo_cut_short_is_not_recorded(env: Settings, tmp_path: Path):
    order = list(photo_items(env, State.from_settings(env))[0])
    victim = order[3]
    assert (Path(env.photos.cache_dir) / victim).stat().st_size > 2000
    with ftp_server(
        tmp_path / "ftp", "shop", PASSWORD, cut_after=1000, cut_match=victim.rsplit("/", 1)[1], cuts=1
    ) as srv:
        s = ftp(env, srv)
        cut = run(s)
        assert not cut.ok and not cut.feed_published
        assert victim not in manifest(s) and cut.photos_uploaded == 3  # the three before it
        assert (srv.root / "shop" / victim).stat().st_size == 1000  # the cut file the server kept
        assert not (srv.root / "shop/satu.yml").exists()  # no feed refers to a photo cut short
        fixed = run(s)
        assert fixed.ok and fixed.photos_uploaded == len(order) - 3 and fixed.feed_published
        assert (srv.root / "shop" / victim).read_bytes() == (Path(s.photos.cache_dir) / victim).read_bytes()


def test_server_that_says_226_for_a_cut_file_and_has_no_size_command(env: Settings, tmp_path: Path):
    with ftp_server(
        tmp_path / "ftp",
        "shop",
        PASSWORD,
        cut_after=50_000,
        cut_match=".satu.yml.uploading",
        cuts=1,
        cut_reply="226 Transfer complete.",
        no_size=True,
    ) as srv:
        s = ftp(env, srv)
        srv.cuts_left = 0
        assert run(s).ok
        v1 = (srv.root / "shop/satu.yml").read_bytes()
        write_feed(s, "v2")
        srv.cuts_left = 1
        lied = run(s)
        assert not lied.ok and not lied.feed_published
        assert "has 50000 of" in lied.errors[0] and "SIZE" in srv.commands
        assert (srv.root / "shop/satu.yml").read_bytes() == v1


def test_failed_local_put_leaves_no_temp_files_and_the_old_feed(env: Settings, tmp_path: Path):
    public = tmp_path / "public"
    s = with_publish(env, target="local", local_dir=public)
    assert run(s).ok
    v1 = (public / "satu.yml").read_bytes()
    write_feed(s, "v2")
    (public / ".satu.yml.uploading").mkdir()  # the temp name is taken: the copy cannot be renamed there
    failed = run(s)
    assert not failed.ok and not failed.feed_published
    assert (public / "satu.yml").read_bytes() == v1
    assert sorted(p.name for p in public.iterdir() if p.name.startswith(".")) == [".satu.yml.uploading"]
    assert not list((public / ".satu.yml.uploading").iterdir())


def test_wrong_host_names_the_setting_without_retrying(env: Settings):
    s = with_publish(env, target="ftp", host="no-such-host.invalid", port=2121, user="shop", retries=3)
    result = run(s)
    assert not result.ok and result.retries == 0 and not result.feed_published and result.feed_url == ""
    (error,) = result.errors
    assert "publish.host = 'no-such-host.invalid'" in error and "fix publish.host" in error
    assert "\n" not in error and "Debugging info" not in error


def test_retries_are_shown_as_they_happen(env: Settings):
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s = with_publish(env, target="ftp", host="127.0.0.1", port=port, user="shop", retries=2)
    lines: list[str] = []
    result = run(s, on_retry=lines.append)
    assert not result.ok and result.retries == 2
    assert len(lines) == 2 and "retry 1/2" in lines[0] and "retry 2/2" in lines[1]
    assert all("publish.host" in line and "publish.port" in line for line in lines)
    journal = [e.message for e in Journal.from_settings(s).search(stage="publish", level="warning")]
    assert [m for m in journal if "retry" in m] == lines
    assert (
        "connection refused" in result.errors[0] and "check publish.host and publish.port" in result.errors[0]
    )


def _toml(v: object) -> str:
    return str(v).lower() if isinstance(v, bool) else f"'{v}'" if isinstance(v, str) else repr(v)


def _settings_file(s: Settings, tmp_path: Path, **publish: object) -> Path:
    publish = {"public_base_url": "http://127.0.0.1:8765", "allow_private_urls": True, **publish}
    j = s.journal
    lines = [
        "[torgsoft]",
        f"database = '{s.torgsoft.database}'",
        "[photos]",
        f"source_dir = '{s.photos.source_dir}'",
        f"cache_dir = '{s.photos.cache_dir}'",
        "[journal]",
        f"path = '{j.path}'",
        f"log_file = '{j.log_file}'",
        f"state_path = '{j.state_path}'",
        f"lock_file = '{j.lock_file}'",
        "[feed]",
        f"output = '{s.feed.output}'",
        "[publish]",
        *(f"{k} = {_toml(v)}" for k, v in publish.items()),
    ]
    path = tmp_path / "settings.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_prints_the_feed_url_only_when_the_feed_is_live(env: Settings, tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = _settings_file(env, tmp_path, target="ftp", host="127.0.0.1", port=port, user="shop", retries=1)
    r = CliRunner().invoke(cli, ["--settings", str(down), "publish"])
    assert r.exit_code == 1, r.output
    assert "Feed URL" not in r.output and "not published" in r.output
    assert "retry 1/1" in r.output and "Debugging info" not in r.output and "Traceback" not in r.output
    with ftp_server(
        tmp_path / "ftp", "shop", PASSWORD, cut_after=10_000, cut_match="satu.yml", cuts=1
    ) as srv:
        live = _settings_file(
            env, tmp_path, target="ftp", host=srv.host, port=srv.port, user="shop", remote_dir="/", retries=0
        )
        cut = CliRunner().invoke(cli, ["--settings", str(live), "publish"])
        assert cut.exit_code == 1 and "Feed URL" not in cut.output and "426" in cut.output
        good = CliRunner().invoke(cli, ["--settings", str(live), "publish"])
        assert good.exit_code == 0, good.output
        assert "Feed URL: http://127.0.0.1:8765/satu.yml" in good.output


def test_an_ftp_refusal_is_one_line_without_ftputil_debugging_info(env: Settings, tmp_path: Path):
    with ftp_server(tmp_path / "ftp", "shop", PASSWORD) as srv:
        (srv.root / "shop").write_text("a file where the folder should be\n")
        s = ftp(env, srv)
        result = run(s)
        assert not result.ok and not result.feed_published
        (error,) = result.errors
        assert "\n" not in error and "Debugging info" not in error and "FTP server" in error
        for event in Journal.from_settings(s).search(stage="publish"):
            assert "\n" not in event.message and "Debugging info" not in event.message


def test_local_publish_removes_temp_files_of_a_killed_run(env: Settings, tmp_path: Path):
    public = tmp_path / "public"
    public.mkdir()
    leftover = public / "..satu.yml.uploading.k1ll3d.tmp"  # what atomic_writer leaves when killed
    leftover.write_bytes(b"<yml_catalog half")
    s = with_publish(env, target="local", local_dir=public)
    assert run(s).ok
    assert not leftover.exists() and (public / "satu.yml").exists()
    assert not [p.name for p in public.iterdir() if p.name.startswith(".")]


def test_a_stop_request_ends_the_photo_uploads_with_state_saved(env: Settings, tmp_path: Path):
    from pipeline.stage import StageResult, Status, outcome_of

    public = tmp_path / "public"
    s = with_publish(env, target="local", local_dir=public)
    asked = iter(range(1000))
    stopped = run(s, should_stop=lambda: next(asked) >= 3)
    assert isinstance(stopped, StageResult)
    assert stopped.interrupted and not stopped.ok and not stopped.feed_published
    assert stopped.photos_uploaded == 3 and len(manifest(s)) == 3 and not (public / "satu.yml").exists()
    assert outcome_of("publish", stopped).status is Status.STOPPED
    rest = run(s)
    assert rest.ok and rest.photos_uploaded == len(photo_items(s, State.from_settings(s))[0]) - 3
    assert (
        rest.feed_published and outcome_of("publish", rest).counts["photos_uploaded"] == rest.photos_uploaded
    )
