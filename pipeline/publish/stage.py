"""The publish stage: what to upload, in which order, and what the manifest remembers.

What is uploaded: every photo the photos stage published (`photos.published` in state) and exactly
the files the feed stage reports (`pipeline.contracts.feed_files`); when no feed run recorded them,
only the configured feed file `[feed] output` itself. Nothing else found in the feed folder goes out.

A manifest in local state (remote path → content hash) remembers what the server holds; only what
changed is uploaded. On the first run against a target, or with `verify`, the server is listed and
the manifest corrected from what is really there. A manifest entry is written only after the target
confirmed the whole file (reply code and remote size), so a cut upload is never recorded.

Order matters: photos first (the new feed may refer to them), then each feed file under a temporary
name renamed over the live one, so Satu never downloads half a feed. Photos no product refers to any
more are deleted only after the new feed is live, only with `delete_orphans`, and never more than
`[feed] max_drop_percent` of the published photos at once (unless forced).
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.contracts import feed_files
from pipeline.contracts.photo_urls import PUBLISHED_NS, join_url
from pipeline.errors import DiskFullError, PipelineError, SettingsError
from pipeline.progress import Progress
from pipeline.publish.session import STAGE, Session
from pipeline.publish.targets import make_target, target_identity
from pipeline.settings import Settings
from pipeline.stage import ResultBase, StopCheck, never_stop

MANIFEST_NS = "publish.manifest"
META_NS = "publish.meta"
PHOTO_DIR = "photos"
# Journal one event per this many uploaded photos (with their names), not one per file.
JOURNAL_BATCH = 100
URL_SAMPLE = 5


@dataclass
class PublishResult(ResultBase):
    """What the publish stage did (or, in a dry run, would do).

    `feed_url` is set only when the feed is live at it after this run (`feed_published`).
    """

    uploaded: int = 0
    photos_uploaded: int = 0
    feed_files_uploaded: int = 0
    unchanged: int = 0
    deleted: int = 0
    orphans: int = 0
    orphans_kept: int = 0
    failed: int = 0
    retries: int = 0
    feed_published: bool = False
    feed_url: str = ""
    unreachable: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    interrupted: bool = False
    ok: bool = True

    @property
    def problems(self) -> Sequence[str]:  # type: ignore[override]
        """What went wrong: failed uploads, then URLs that do not answer."""
        return [*self.errors, *(f"does not answer: {u}" for u in self.unreachable)]


@dataclass(frozen=True)
class Item:
    """A file to have on the server: its path under remote_dir, local source and content hash."""

    remote: str
    local: Path
    hash: str
    size: int


def feed_url(settings: Settings) -> str:
    """Where Satu fetches the published feed: `[publish] public_base_url` + the feed's file name,
    quoted. The one place this URL is built. Empty while `public_base_url` is not set."""
    if not settings.publish.public_base_url.strip():
        return ""
    return join_url(settings.publish.public_base_url, Path(settings.feed.output).name)


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def feed_names(settings: Settings, state: Any) -> list[str]:
    """The feed folder's files to publish, feed last: what the feed stage recorded, or the feed alone.

    A record for another feed file name (the setting changed since) or with a name that is not a plain
    file name is ignored: only the configured feed goes out then."""
    feed = Path(settings.feed.output).name
    recorded = feed_files.read(state)
    if recorded is None or recorded.feed != feed:
        return [feed]
    plain = [n for n in recorded.companions if n and n == posixpath.basename(n) and n not in (".", "..")]
    return [*plain, feed]


def _feed_items(settings: Settings, state: Any, result: PublishResult) -> list[Item]:
    folder = Path(settings.feed.output).parent
    feed = Path(settings.feed.output)
    if not feed.exists():
        result.errors.append(f"no feed at {feed} (run `feed` first)")
        return []
    items: list[Item] = []
    for name in feed_names(settings, state):
        path = folder / name
        if not path.is_file():
            result.errors.append(f"the feed stage reported {path}, but it is not there (run `feed` again)")
            continue
        items.append(Item(name, path, file_hash(path), path.stat().st_size))
    return items


def photo_items(settings: Settings, state: Any) -> tuple[dict[str, Item], list[str]]:
    """The published photos to have on the server (by remote name), and names missing from the cache."""
    cache_dir = Path(settings.photos.cache_dir)
    items: dict[str, Item] = {}
    missing: list[str] = []
    for _source, entry in state.items(PUBLISHED_NS):
        if not entry.get("ok") or not entry.get("name"):
            continue
        name = entry["name"]
        if name in items:
            continue
        local = cache_dir / name
        try:
            size = local.stat().st_size
        except OSError:
            missing.append(name)
            continue
        # Names are content hashes (source bytes + photo settings): same name, same content.
        items[name] = Item(name, local, Path(name).stem, size)
    return items, missing


def check_urls(urls: list[str], timeout: float) -> list[str]:
    """URLs that do not answer HEAD with 200 (with the reason)."""
    import httpx

    bad: list[str] = []
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        for url in urls:
            try:
                status = client.head(url).status_code
            except httpx.HTTPError as exc:
                bad.append(f"{url} ({type(exc).__name__}: {exc})")
                continue
            if status != 200:
                bad.append(f"{url} (HTTP {status})")
    return bad


def _tmp_name(remote: str) -> str:
    head, tail = posixpath.split(remote)
    # A fixed name: a temp file left by a killed run is simply overwritten by the next one.
    return posixpath.join(head, f".{tail}.uploading")


@dataclass
class _Run:
    """One publish run's working set, passed between its phases."""

    settings: Settings
    session: Session
    journal: Any
    state: Any
    result: PublishResult
    manifest: dict[str, dict[str, Any]]
    photos: dict[str, Item]
    feed_items: list[Item]
    should_stop: StopCheck = never_stop

    def changed(self, item: Item) -> bool:
        return self.manifest.get(item.remote, {}).get("hash") != item.hash

    def record(self, item: Item) -> None:
        """The target confirmed the whole file: only now is it in the manifest."""
        entry = {"hash": item.hash, "size": item.size}
        self.state.put(MANIFEST_NS, item.remote, entry)
        self.manifest[item.remote] = entry


def run(
    settings: Settings,
    *,
    journal: Any,
    state: Any,
    verify: bool = False,
    dry_run: bool = False,
    force: bool = False,
    feed_only: bool = False,
    progress: bool = True,
    backoff: float = 1.0,
    on_retry: Callable[[str], None] | None = None,
    should_stop: StopCheck = never_stop,
) -> PublishResult:
    """Upload what changed: photos first, then the feed files atomically; optionally prune orphans.

    verify: list the server and correct the manifest first (automatic on the first run to a target).
    dry_run: only count what would be uploaded. force: lift the orphan-deletion guard.
    feed_only (partial sync): no verification and no orphan pruning; photos the feed needs that are
    not on the server yet are still uploaded first (normally none).
    on_retry: called with one line per retry as it happens (the CLI prints it).
    should_stop: checked between photo uploads; when it says stop, the feed is not published.
    """
    result = PublishResult(dry_run=dry_run)
    manifest, verify = _load_manifest(settings, journal, state, verify=verify, dry_run=dry_run)
    photos, missing = photo_items(settings, state)
    for name in missing:
        result.failed += 1
        result.errors.append(f"processed photo {name} is missing from the cache (run `photos` again)")
    items = _feed_items(settings, state, result)
    if dry_run:
        return _plan(result, manifest, photos, items)

    p = settings.publish
    session = Session(make_target(settings), p.retries, journal, backoff=backoff, on_retry=on_retry)
    r = _Run(settings, session, journal, state, result, manifest, photos, items, should_stop)
    try:
        _publish(r, verify=verify and not feed_only, force=force, feed_only=feed_only, progress=progress)
    except SettingsError:
        raise
    except PipelineError as exc:
        result.failed += 1
        result.errors.append(str(exc))
        if isinstance(exc, DiskFullError):
            result.disk_full = str(exc)
        journal.event(STAGE, f"publish failed: {exc}", "error")
    finally:
        result.retries = session.retried
        session.close()
    result.ok = not result.errors and not result.unreachable and not result.interrupted
    _journal_summary(journal, result)
    return result


def _load_manifest(
    settings: Settings, journal: Any, state: Any, *, verify: bool, dry_run: bool
) -> tuple[dict[str, dict[str, Any]], bool]:
    """The manifest for the configured target; a new target starts over (and forces a verify)."""
    manifest: dict[str, dict[str, Any]] = dict(state.items(MANIFEST_NS))
    known = state.get(META_NS, "target")
    if known == target_identity(settings):
        return manifest, verify
    # A new server or folder: what the manifest says is about another place.
    if not dry_run:
        if known is not None:
            journal.event(STAGE, "publish target changed: the manifest starts over from a server listing")
        state.delete(MANIFEST_NS)
    return {}, True


def _plan(
    result: PublishResult, manifest: dict[str, dict[str, Any]], photos: dict[str, Item], items: list[Item]
) -> PublishResult:
    def changed(i: Item) -> bool:
        return manifest.get(i.remote, {}).get("hash") != i.hash

    result.photos_uploaded = sum(1 for i in photos.values() if changed(i))
    result.feed_files_uploaded = sum(1 for i in items if changed(i))
    result.uploaded = result.photos_uploaded + result.feed_files_uploaded
    result.unchanged = len(photos) + len(items) - result.uploaded
    result.ok = not result.errors
    return result


def _journal_summary(journal: Any, result: PublishResult) -> None:
    journal.event(
        STAGE,
        f"publish: {result.photos_uploaded} photos and {result.feed_files_uploaded} feed "
        f"files uploaded, {result.unchanged} unchanged, {result.deleted} orphans deleted"
        + (f"; feed at {result.feed_url}" if result.feed_published and result.feed_url else ""),
        "info" if result.ok else "warning",
        uploaded=result.uploaded,
        unchanged=result.unchanged,
        deleted=result.deleted,
        failed=result.failed,
        feed_url=result.feed_url,
        feed_published=result.feed_published,
    )


def _publish(r: _Run, *, verify: bool, force: bool, feed_only: bool, progress: bool) -> None:
    """The phases in their order; each later one runs only when the earlier ones allow it."""
    remote_photos = _verify(r) if verify else None
    _upload_photos(r, progress=progress)
    r.state.put(META_NS, "target", target_identity(r.settings))
    if r.result.interrupted:
        r.journal.event(STAGE, "stopped on request before the feed: the previous feed stays live", "warning")
        return
    if r.result.errors:
        # A photo the feed may refer to is not on the server: keep the previous feed live.
        r.journal.event(STAGE, "the feed is not published because some photos could not be uploaded", "error")
        return
    if r.settings.publish.check_urls:
        _check_before(r)
    _publish_feed(r)
    if not feed_only and r.feed_items:
        _prune_orphans(r, remote_photos, force=force)


def _verify(r: _Run) -> set[str]:
    """List the server, keep the manifest entries it confirms; returns the photos found there."""
    listing = r.session.call("listing the server", r.session.target.listing)
    fixed = {k: e for k, e in r.manifest.items() if listing.get(k) == e.get("size")}
    for item in r.photos.values():
        # A photo already on the server with the right size is the same content (content-named).
        if item.remote not in fixed and listing.get(item.remote) == item.size:
            fixed[item.remote] = {"hash": item.hash, "size": item.size}
    dropped = set(r.manifest) - set(fixed)
    for remote in dropped:
        r.state.delete(MANIFEST_NS, remote)
    r.state.put_many(MANIFEST_NS, [(k, v) for k, v in fixed.items() if r.manifest.get(k) != v])
    r.manifest.clear()
    r.manifest.update(fixed)
    r.state.put(META_NS, "target", target_identity(r.settings))
    r.journal.event(
        STAGE,
        f"verified against the server: {len(listing)} files there, "
        f"{len(fixed)} known good, {len(dropped)} manifest entries corrected",
    )
    return {k for k in listing if k.startswith(PHOTO_DIR + "/")}


def _upload_photos(r: _Run, *, progress: bool) -> None:
    """Photos first: the new feed may refer to them."""
    todo = [i for i in r.photos.values() if r.changed(i)]
    r.result.unchanged += len(r.photos) - len(todo)
    batch: list[str] = []
    with Progress(len(todo), "upload photos", enabled=progress) as bar:
        for item in todo:
            if r.should_stop():
                r.result.interrupted = True
                break
            r.session.call(
                f"uploading {item.remote}", functools.partial(r.session.target.put, item.local, item.remote)
            )
            r.record(item)
            r.result.photos_uploaded += 1
            r.result.uploaded += 1
            batch.append(item.remote)
            bar.update()
            if len(batch) >= JOURNAL_BATCH:
                r.journal.event(STAGE, f"uploaded {len(batch)} photos", files=batch)
                batch = []
    if batch:
        r.journal.event(STAGE, f"uploaded {len(batch)} photos", files=batch)


def _check_before(r: _Run) -> None:
    """Before the feed goes live: a sample of photo URLs, and the feed URL itself when a feed was
    published there before (a wrong public_base_url shows up here)."""
    p = r.settings.publish
    names = sorted(r.photos)
    urls = [
        join_url(p.public_base_url, n)
        for n in random.Random(len(names)).sample(names, min(URL_SAMPLE, len(names)))
    ]
    if any(i.remote in r.manifest for i in r.feed_items[-1:]):
        urls.append(feed_url(r.settings))
    _unreachable(r, check_urls(urls, p.timeout), "URL does not answer")


def _unreachable(r: _Run, bad: list[str], what: str) -> None:
    for b in bad:
        r.journal.event(STAGE, f"{what}: {b}", "warning")
        r.result.unreachable.append(b)


def _publish_feed(r: _Run) -> None:
    """Each feed file under a temporary name, then renamed over the live one (the YML feed last)."""
    for item in r.feed_items:
        if not r.changed(item):
            r.result.unchanged += 1
            continue
        tmp = _tmp_name(item.remote)

        def upload_and_swap(item: Item = item, tmp: str = tmp) -> None:
            r.session.target.put(item.local, tmp)  # returns only when the server holds all of it
            r.session.target.replace(tmp, item.remote)

        r.session.call(f"publishing {item.remote}", upload_and_swap)
        r.record(item)
        r.result.feed_files_uploaded += 1
        r.result.uploaded += 1
        r.journal.event(STAGE, f"published {item.remote}", file=item.remote, size=item.size)
    if not r.feed_items:
        return
    r.result.feed_published = True
    r.result.feed_url = url = feed_url(r.settings)
    if url and r.settings.publish.check_urls and url not in " ".join(r.result.unreachable):
        _unreachable(r, check_urls([url], r.settings.publish.timeout), "feed URL does not answer")


def _prune_orphans(r: _Run, remote_photos: set[str] | None, *, force: bool) -> None:
    """Orphans: only after the feed that no longer refers to them is live, and within the guard."""
    settings, result = r.settings, r.result
    known = {k for k in r.manifest if k.startswith(PHOTO_DIR + "/")} | (remote_photos or set())
    orphans = sorted(known - set(r.photos))
    result.orphans = len(orphans)
    if not orphans:
        return
    if not settings.publish.delete_orphans:
        result.orphans_kept = len(orphans)
        return
    limit = settings.feed.max_drop_percent / 100 * max(len(known), 1)
    if len(orphans) > limit and not force:
        result.orphans_kept = len(orphans)
        r.journal.event(
            STAGE,
            f"{len(orphans)} orphan photos of {len(known)} exceed the "
            f"{settings.feed.max_drop_percent:g}% guard: none deleted (use --force)",
            "warning",
        )
        return
    for remote in orphans:
        r.session.call(f"deleting {remote}", functools.partial(r.session.target.remove, remote))
        r.state.delete(MANIFEST_NS, remote)
        result.deleted += 1
    r.journal.event(STAGE, f"deleted {len(orphans)} orphan photos", files=orphans[:JOURNAL_BATCH])
