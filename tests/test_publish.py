"""The publish stage against real servers on 127.0.0.1: local folder, FTP, FTPS, SFTP, HTTP checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline import photos, publish
from pipeline.contracts.feed_files import FeedFiles, record
from pipeline.contracts.photo_urls import PUBLISHED_NS
from pipeline.journal import Journal
from pipeline.publish.stage import photo_items
from pipeline.settings import Settings
from pipeline.state import State
from servers import ftp_server, http_server, sftp_server

PASSWORD = "s3cret-pw"


@pytest.fixture()
def env(demo_env: Settings, monkeypatch) -> Settings:
    """Demo catalog with processed photos (small) and a feed file of ~300 KB."""
    monkeypatch.setenv("PUBLISH_PASSWORD", PASSWORD)
    s = demo_env.replace(
        photos=dataclasses.replace(demo_env.photos, max_size=160, workers=2),
        publish=dataclasses.replace(demo_env.publish, retries=0),
    )
    r = photos.run(s, journal=Journal.from_settings(s), state=State.from_settings(s), progress=False)
    assert r.processed > 10
    write_feed(s, "v1")
    return s


def write_feed(s: Settings, version: str) -> bytes:
    body = (
        f"<?xml version='1.0' encoding='UTF-8'?>\n<yml_catalog version='{version}'>\n"
        + "".join(f"<offer id='{i}'>{version} offer {i}</offer>\n" for i in range(9000))
        + "</yml_catalog>\n"
    ).encode()
    out = Path(s.feed.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(body)
    return body


def run(s: Settings, **kw) -> publish.PublishResult:
    kw.setdefault("backoff", 0.01)
    return publish.run(
        s, journal=Journal.from_settings(s), state=State.from_settings(s), progress=False, **kw
    )


def photo_names(s: Settings) -> set[str]:
    return {e["name"] for _, e in State.from_settings(s).items(PUBLISHED_NS) if e.get("ok")}


def with_publish(s: Settings, **keys) -> Settings:
    return s.replace(publish=dataclasses.replace(s.publish, **keys))


def ftp(s: Settings, srv, **keys) -> Settings:
    keys = {
        "target": "ftp",
        "host": srv.host,
        "port": srv.port,
        "user": srv.user,
        "remote_dir": "/shop",
        **keys,
    }
    return with_publish(s, **keys)


def assert_mirror(s: Settings, root: Path) -> None:
    for name in photo_names(s):
        assert (root / name).read_bytes() == (Path(s.photos.cache_dir) / name).read_bytes()
    assert (root / "satu.yml").read_bytes() == Path(s.feed.output).read_bytes()


def test_local_target_uploads_only_what_changed_and_checks_urls(env: Settings, tmp_path: Path):
    public = tmp_path / "public"
    s = with_publish(env, target="local", local_dir=public)
    first = run(s)
    assert first.ok and first.feed_published
    assert first.photos_uploaded == len(photo_names(s)) and first.feed_files_uploaded == 1
    assert_mirror(s, public)
    assert not list(public.glob(".*uploading"))
    second = run(s)
    assert (second.uploaded, second.photos_uploaded) == (0, 0) and second.ok
    # A changed feed and the companion file the feed stage reports: both go out, nothing else —
    # not a stray `satu*.csv`/`satu*.xlsx` lying next to the feed (issue 15).
    write_feed(s, "v2")
    folder = Path(s.feed.output).parent
    (folder / "satu-groups.csv").write_text("id;name\n1;x\n")
    (folder / "satu-private.csv").write_text("phone;name\n+7701;someone\n")
    (folder / "satu-export.xlsx").write_bytes(b"PK stray")
    (folder / "other.csv").write_text("not ours\n")
    record(State.from_settings(s), FeedFiles("satu.yml", ("satu-groups.csv",)))
    third = run(s)
    assert (third.photos_uploaded, third.feed_files_uploaded) == (0, 2)
    assert (public / "satu-groups.csv").exists() and not (public / "other.csv").exists()
    assert not (public / "satu-private.csv").exists() and not (public / "satu-export.xlsx").exists()
    assert_mirror(s, public)
    with http_server(public) as base:
        good = run(with_publish(s, public_base_url=base, check_urls=True), verify=True)
        assert good.ok and good.unreachable == [] and good.feed_url == base + "/satu.yml"
        bad = run(with_publish(s, public_base_url=base + "/wrong", check_urls=True))
        assert not bad.ok and bad.unreachable and all("404" in u for u in bad.unreachable)


def test_dry_run_counts_without_touching_anything(env: Settings, tmp_path: Path):
    s = with_publish(env, target="local", local_dir=tmp_path / "public")
    plan = run(s, dry_run=True)
    assert plan.dry_run and plan.uploaded == len(photo_names(s)) + 1
    assert not (tmp_path / "public").exists()


def test_ftp_first_run_second_run_and_verify(env: Settings, tmp_path: Path):
    with ftp_server(tmp_path / "ftp", "shop", PASSWORD) as srv:
        s = ftp(env, srv)
        first = run(s)
        assert first.ok, first.errors
        assert first.photos_uploaded == len(photo_names(s)) and first.feed_files_uploaded == 1
        assert_mirror(s, srv.root / "shop")
        assert "RNFR" in srv.commands and "RNTO" in srv.commands and "DELE" not in srv.commands
        uploads = len(srv.uploads)
        second = run(s)
        assert second.ok and second.uploaded == 0 and len(srv.uploads) == uploads
        # Local state lost: the server listing shows the photos are there; only the feed is re-sent.
        State.from_settings(s).delete(publish.MANIFEST_NS)
        third = run(s, verify=True)
        assert third.ok and third.photos_uploaded == 0 and third.feed_files_uploaded == 1
        # A photo deleted on the server behind our back is found by --verify and sent again.
        victim = sorted(photo_names(s))[0]
        (srv.root / "shop" / victim).unlink()
        assert run(s).photos_uploaded == 0
        fourth = run(s, verify=True)
        assert fourth.photos_uploaded == 1 and (srv.root / "shop" / victim).exists()


def test_ftp_server_that_refuses_rename_over_existing(env: Settings, tmp_path: Path):
    with ftp_server(tmp_path / "ftp", "shop", PASSWORD, refuse_overwrite=True) as srv:
        s = ftp(env, srv)
        assert run(s).ok
        assert "DELE" not in srv.commands  # the first rename has nothing to overwrite
        write_feed(s, "v2")
        again = run(s)
        assert again.ok and again.feed_files_uploaded == 1
        assert "DELE" in srv.commands
        assert (srv.root / "shop/satu.yml").read_bytes() == Path(s.feed.output).read_bytes()


def test_connection_dropped_mid_feed_keeps_the_live_feed_whole(env: Settings, tmp_path: Path):
    with ftp_server(
        tmp_path / "ftp", "shop", PASSWORD, drop_after=64_000, drop_match=".satu.yml.uploading", drops=1
    ) as srv:
        s = ftp(env, srv)
        srv.drops_left = 0
        assert run(s).ok
        v1 = (srv.root / "shop/satu.yml").read_bytes()
        v2 = write_feed(s, "v2")
        srv.drops_left = 1
        broken = run(s)
        assert not broken.ok and not broken.feed_published and broken.errors
        assert (srv.root / "shop/satu.yml").read_bytes() == v1  # intact and complete
        assert (srv.root / "shop/.satu.yml.uploading").stat().st_size < len(v2)
        fixed = run(s)
        assert fixed.ok and fixed.uploaded == 1
        assert (srv.root / "shop/satu.yml").read_bytes() == v2


def test_connection_dropped_mid_photos_then_only_missing_ones_go(env: Settings, tmp_path: Path):
    order = list(photo_items(env, State.from_settings(env))[0])
    victim = order[4].rsplit("/", 1)[1]
    with ftp_server(tmp_path / "ftp", "shop", PASSWORD, drop_after=1, drop_match=victim, drops=1) as srv:
        s = ftp(env, srv)
        broken = run(s)
        assert not broken.ok and broken.photos_uploaded == 4 and not broken.feed_published
        assert not (srv.root / "shop/satu.yml").exists()  # no feed refers to photos that are not there
        fixed = run(s)
        assert fixed.ok and fixed.photos_uploaded == len(order) - 4 and fixed.feed_files_uploaded == 1
        assert_mirror(s, srv.root / "shop")


def test_transient_drop_is_retried_within_the_run(env: Settings, tmp_path: Path):
    with ftp_server(
        tmp_path / "ftp", "shop", PASSWORD, drop_after=1000, drop_match=".satu.yml", drops=1
    ) as srv:
        s = ftp(env, srv, retries=2)
        result = run(s)
        assert result.ok and result.retries == 1 and result.feed_published
        assert_mirror(s, srv.root / "shop")


def test_ftps_explicit_tls_with_pinned_certificate(env: Settings, tmp_path: Path):
    with ftp_server(tmp_path / "ftp", "shop", PASSWORD, tls=True) as srv:
        s = ftp(env, srv, target="ftps", tls_ca_file=srv.cafile)
        result = run(s)
        assert result.ok, result.errors
        assert "AUTH" in srv.commands and "PROT" in srv.commands
        assert_mirror(s, srv.root / "shop")
        untrusted = run(ftp(env, srv, target="ftps", tls_ca_file=None), verify=True)
        assert not untrusted.ok and "certificate" in untrusted.errors[0]


def test_sftp_with_pinned_host_key_and_a_wrong_key_refused(env: Settings, tmp_path: Path):
    with sftp_server(tmp_path / "sftp", "shop", PASSWORD) as srv:
        s = with_publish(
            env,
            target="sftp",
            host=srv.host,
            port=srv.port,
            user="shop",
            remote_dir="/shop",
            host_key=srv.host_key,
        )
        result = run(s)
        assert result.ok, result.errors
        assert "posix_rename" in srv.commands
        assert_mirror(s, srv.root / "shop")
        write_feed(s, "v2")
        assert run(s).uploaded == 1
        assert_mirror(s, srv.root / "shop")
        with sftp_server(tmp_path / "other", "shop", PASSWORD) as impostor:
            wrong = with_publish(s, port=impostor.port, host_key=srv.host_key)
            refused = run(wrong)
            assert not refused.ok and "does NOT match" in refused.errors[0]
            assert not list((tmp_path / "other").rglob("*"))
        # known_hosts instead of an inline key; a host missing from it is refused too.
        known = tmp_path / "known_hosts"
        known.write_text(f"[{srv.host}]:{srv.port} {srv.host_key}\n")
        via_file = run(with_publish(s, host_key="", known_hosts=known), verify=True)
        assert via_file.ok and via_file.photos_uploaded == 0
        known.write_text(f"[{srv.host}]:1 {srv.host_key}\n")
        unknown = run(with_publish(s, host_key="", known_hosts=known), verify=True)
        assert not unknown.ok and "unknown" in unknown.errors[0]


def test_orphans_deleted_only_when_enabled_and_within_the_guard(env: Settings, tmp_path: Path):
    public = tmp_path / "public"
    s = with_publish(env, target="local", local_dir=public, delete_orphans=True)
    assert run(s).ok
    before = photo_names(s)
    # Another quality: every photo gets a new name, so all old ones become orphans — over the guard.
    s2 = s.replace(photos=dataclasses.replace(s.photos, quality=50))
    photos.run(s2, journal=Journal.from_settings(s2), state=State.from_settings(s2), progress=False)
    guarded = run(s2)
    assert guarded.ok and guarded.deleted == 0 and guarded.orphans_kept == len(before)
    assert all((public / n).exists() for n in before)
    forced = run(s2, force=True)
    assert forced.deleted == len(before) and not any((public / n).exists() for n in before)
    # Off: orphans are counted but never deleted.
    s3 = with_publish(s, delete_orphans=False)
    photos.run(s3, journal=Journal.from_settings(s3), state=State.from_settings(s3), progress=False)
    kept = run(s3)
    assert kept.deleted == 0 and kept.orphans_kept == kept.orphans > 0


def test_unreachable_server_is_retried_then_reported(env: Settings):
    import socket

    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s = with_publish(env, target="ftp", host="127.0.0.1", port=port, user="shop", retries=2)
    result = run(s)
    assert not result.ok and result.retries == 2 and not result.feed_published
    assert "refused" in result.errors[0].lower()
    events = list(Journal.from_settings(s).search(stage="publish", level="warning"))
    assert any("retry 2/2" in e.message for e in events)


def test_sftp_with_a_key_file_and_no_password(env: Settings, tmp_path: Path, monkeypatch):
    import asyncssh

    monkeypatch.delenv("PUBLISH_PASSWORD")
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(key.export_private_key("openssh"))
    public = key.export_public_key("openssh").decode()
    with sftp_server(tmp_path / "sftp", "shop", "not-used", client_public_key=public) as srv:
        s = with_publish(
            env,
            target="sftp",
            host=srv.host,
            port=srv.port,
            user="shop",
            remote_dir="/",
            host_key=srv.host_key,
            key_file=key_file,
        )
        result = run(s)
        assert result.ok, result.errors
        assert_mirror(s, srv.root)


def test_sftp_server_without_posix_rename(env: Settings, tmp_path: Path):
    with sftp_server(tmp_path / "sftp", "shop", PASSWORD, posix_rename=False) as srv:
        s = with_publish(
            env,
            target="sftp",
            host=srv.host,
            port=srv.port,
            user="shop",
            remote_dir="/",
            host_key=srv.host_key,
        )
        assert run(s).ok
        write_feed(s, "v2")
        result = run(s)
        assert result.ok and result.feed_files_uploaded == 1, result.errors
        assert "rename" in srv.commands
        assert_mirror(s, srv.root)
