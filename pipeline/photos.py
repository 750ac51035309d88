"""The photos stage: resize every photo the catalog can publish, once per content, in parallel.

For each photo file a sellable product (not deleted, shown on the site) or a section refers to, the
source bytes are hashed; the hash plus the photo settings name the output
(`photos/<hh>/<hash>.jpg` under `[photos] cache_dir`), so the same bytes are never processed twice
and a change of size/format/quality re-processes everything. A cheap size+mtime check skips
reading files that did not change since the last run.

Processing (Pillow): JPEG draft mode (decode at a reduced scale — the biggest speed-up), EXIF
orientation applied, CMYK / palette / alpha turned into RGB on white, longest side limited to
`max_size`, saved as JPEG or WebP at `quality` with no metadata (no EXIF, no ICC, no comments).

Results go to local state namespace `photos.published` (the contract in `pipeline.contracts.photo_urls`):
that is what the feed reads and what `publish` uploads. A missing, empty, truncated, non-image or
oversized (decompression bomb) file is recorded `ok: false` with the reason and logged with the
product; a file name reaching outside the photo folder is refused. Nothing here stops the run.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import multiprocessing
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.contracts.photo_urls import PUBLISHED_NS
from pipeline.errors import DiskFullError
from pipeline.fsutil import write_atomic
from pipeline.progress import Progress
from pipeline.settings import Settings
from pipeline.stage import ResultBase, StopCheck, never_stop

STAGE = "photos"
CACHE_NS = "photos.cache"
# Bump when the processing itself changes, so cached outputs are rebuilt.
PROCESS_VERSION = 2
# 64 megapixels: more than any shop camera (a 4000×3000 photo is 12 MP) but far below what would
# exhaust memory. Pillow warns above this and refuses above twice this; both count as failure here.
MAX_PIXELS = 64_000_000
# Below this many photos to (re)check, starting worker processes costs more than it saves.
INLINE_BELOW = 6
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class PhotosResult(ResultBase):
    """What the photos stage did (`interrupted`: a stop was asked; what was processed is recorded)."""

    processed: int = 0
    unchanged: int = 0
    failed: int = 0
    refused: int = 0
    referenced: int = 0
    ok: bool = True
    interrupted: bool = False
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cached(self) -> int:
        """Alias: photos served from the cache (not re-processed)."""
        return self.unchanged

    @property
    def problems(self) -> list[str]:  # type: ignore[override]
        """The unusable and refused photos in one short text (the console line of the stage), the first
        one named with its reason; every one is in the journal."""
        if not self.failures:
            return []
        first = self.failures[0]
        more = len(self.failures) - 1
        tail = f" (+{more} more: `log --stage photos --level warning`)" if more else ""
        return [
            f"{self.failed} unusable, {self.refused} refused photo(s): {first['file']}: {first['reason']}{tail}"
        ]


@dataclass(frozen=True)
class _Job:
    """One source photo to check and, when needed, process (sent to a worker process)."""

    file_name: str
    path: str
    known_hash: str | None
    max_size: int
    fmt: str
    quality: int
    settings_key: str
    cache_dir: str


def settings_key(settings: Settings) -> str:
    """The photo settings that change an output; part of every output's content hash."""
    p = settings.photos
    return f"v{PROCESS_VERSION}|{p.max_size}|{p.format}|{p.quality}"


def output_name(source_hash: str, key: str, fmt: str) -> str:
    """Deterministic, URL-safe name of the processed photo, relative to the cache/remote folder."""
    digest = hashlib.sha256(f"{source_hash}|{key}".encode()).hexdigest()[:40]
    ext = "webp" if fmt == "webp" else "jpg"
    return f"photos/{digest[:2]}/{digest}.{ext}"


class SourceResolver:
    """Turns database photo names into real paths inside the photo folder, refusing escapes.

    Torgsoft runs on Windows, so backslashes are separators. Absolute paths, drive letters, `..`
    and symlinks that lead out of the folder are refused: a database value must never make the
    program read (and publish) an arbitrary file of the machine. Folder real paths are cached, so a
    catalog of thousands of photos costs one lstat per file, not one per path component.
    """

    def __init__(self, source_dir: Path):
        self.root = os.path.realpath(source_dir)
        self._dirs: dict[str, str] = {}

    def __call__(self, file_name: str) -> tuple[Path | None, str]:
        name = file_name.strip().replace("\\", "/")
        if not name:
            return None, "empty file name"
        if "\x00" in name:
            return None, "file name contains a NUL character"
        if name.startswith("/") or _DRIVE.match(name):
            return None, "absolute path outside the photo folder"
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            return None, "'..' points outside the photo folder"
        if not parts:
            return None, "empty file name"
        rel_dir = "/".join(parts[:-1])
        real_dir = self._dirs.get(rel_dir)
        if real_dir is None:
            real_dir = os.path.realpath(os.path.join(self.root, rel_dir)) if rel_dir else self.root
            self._dirs[rel_dir] = real_dir
        real = os.path.join(real_dir, parts[-1])
        if os.path.islink(real):
            real = os.path.realpath(real)
        if real != self.root and not real.startswith(self.root + os.sep):
            return None, "symlink leads outside the photo folder"
        return Path(real), ""


def resolve_source(source_dir: Path, file_name: str) -> tuple[Path | None, str]:
    """The real path of one photo inside the photo folder, or (None, why it is refused)."""
    return SourceResolver(source_dir)(file_name)


def _to_rgb(im: Any) -> Any:
    """Any mode → RGB; transparent pixels become white (marketplaces show photos on white)."""
    from PIL import Image

    if im.mode == "RGB":
        return im
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("LA", "La", "PA"):
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "RGBa"):
        if im.mode == "RGBa":
            im = im.convert("RGBA")
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im, mask=im.getchannel("A"))
        return background
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale into 8 bits before converting.
        im = im.point(lambda v: v / 256).convert("L")
    return im.convert("RGB")


def render(data: bytes, max_size: int, fmt: str, quality: int) -> bytes:
    """Process one photo's bytes into the published form; raises on anything unusable."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as im:
            if im.format == "JPEG" and max(im.size) > max_size:
                # Decode at 1/2, 1/4 or 1/8 scale straight away (libjpeg DCT scaling): the target
                # is the final size, so the decoded image is never smaller than what is needed.
                ratio = max_size / max(im.size)
                im.draft("RGB", (max(1, int(im.width * ratio)), max(1, int(im.height * ratio))))
            im.load()
            # Turn the pixels upright as the camera's orientation tag says (the tag itself is not
            # written out: no metadata is saved). Untagged photos skip the copy exif_transpose makes.
            out = ImageOps.exif_transpose(im) if im.getexif().get(0x0112, 1) not in (0, 1) else im
            out = _to_rgb(out)
            if max(out.size) > max_size:
                # Bicubic with Pillow's antialiasing support; after draft decoding the remaining
                # reduction is under 2×, where Lanczos costs twice as much for no visible gain.
                out.thumbnail((max_size, max_size), Image.Resampling.BICUBIC, reducing_gap=2.0)
            buf = io.BytesIO()
            if fmt == "webp":
                out.save(buf, "WEBP", quality=quality, method=4)
            else:
                out.save(buf, "JPEG", quality=quality, optimize=False, progressive=False)
            return buf.getvalue()


def _failure_reason(exc: BaseException) -> str:
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"too many pixels (decompression bomb?): {exc}"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (unknown format)"
    if isinstance(exc, MemoryError):
        return "image too large for memory"
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower():
        return f"truncated image: {text}"
    return f"unreadable image: {type(exc).__name__}: {text}"


def process_job(job: _Job) -> dict[str, Any]:
    """Worker: hash the source, and process it unless an identical output already exists."""
    try:
        st = os.stat(job.path)
        with open(job.path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return {"file_name": job.file_name, "status": "failed", "reason": "file not found"}
    except OSError as exc:
        return {
            "file_name": job.file_name,
            "status": "failed",
            "reason": f"cannot read file: {exc.strerror or exc}",
        }
    base = {"file_name": job.file_name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if not data:
        return {**base, "status": "failed", "reason": "empty file (0 bytes)"}
    source_hash = hashlib.sha256(data).hexdigest()
    name = output_name(source_hash, job.settings_key, job.fmt)
    out = Path(job.cache_dir) / name
    base.update(hash=source_hash, name=name)
    if out.exists():
        # Same bytes and settings were processed before (this file, or another with equal content).
        return {**base, "status": "unchanged"}
    try:
        result = render(data, job.max_size, job.fmt, job.quality)
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError… for broken files
        return {**base, "status": "failed", "reason": _failure_reason(exc)}
    write_atomic(out, result)  # durable before the stage records its name
    return {**base, "status": "processed"}


def _process_chunk(jobs: list[_Job]) -> list[dict[str, Any]]:
    return [process_job(j) for j in jobs]


def collect(settings: Settings) -> tuple[dict[str, dict[str, Any]], int]:
    """Every photo file the catalog can publish: {file name: {"product_id", "section_id", "uses"}}."""
    from pipeline.torgsoft.catalog import open_catalog

    refs: dict[str, dict[str, Any]] = {}
    products = 0
    with open_catalog(settings) as source:
        for section in source.sections():
            name = section.image_file
            if name and not name.lower().startswith(("http://", "https://")):
                ref = refs.setdefault(name, {"product_id": None, "section_id": section.id, "uses": 0})
                ref["uses"] += 1
        for product in source.products():
            if product.deleted or not product.display_on_site:
                continue
            products += 1
            for photo in product.photos:
                if not photo.file_name or photo.is_url:
                    continue
                ref = refs.setdefault(
                    photo.file_name, {"product_id": product.good_id, "section_id": None, "uses": 0}
                )
                if ref["product_id"] is None:
                    ref["product_id"] = product.good_id
                ref["uses"] += 1
    return refs, products


def _workers(settings: Settings) -> int:
    return settings.photos.workers or os.cpu_count() or 1


def run(
    settings: Settings,
    *,
    journal: Any,
    state: Any,
    progress: bool = True,
    should_stop: StopCheck = never_stop,
) -> PhotosResult:
    """Process every referenced photo that changed; record the published names in state.

    `should_stop` is asked between batches; a stop ends the run with every finished photo recorded."""
    refs, _ = collect(settings)
    photo_run = _PhotoRun(settings, journal, state, refs)
    jobs = photo_run.plan()
    with Progress(len(jobs), "photos", enabled=progress) as bar:
        workers = min(_workers(settings), len(jobs))
        if workers <= 1 or len(jobs) < INLINE_BELOW:
            photo_run.process_inline(jobs, bar, should_stop)
        else:
            photo_run.process_pool(jobs, workers, bar, should_stop)
    photo_run.forget_unreferenced()
    return photo_run.finish()


class _PhotoRun:
    """One run of the stage: what is cached, what to process, and recording outcomes as they come."""

    def __init__(self, settings: Settings, journal: Any, state: Any, refs: dict[str, dict[str, Any]]):
        self.settings, self.journal, self.state, self.refs = settings, journal, state, refs
        self.result = PhotosResult(referenced=len(refs))
        self.key = settings_key(settings)
        self.cache_dir = Path(settings.photos.cache_dir)
        self.cache: dict[str, dict[str, Any]] = dict(state.items(CACHE_NS))
        self.published: dict[str, dict[str, Any]] = dict(state.items(PUBLISHED_NS))

    def fail(self, name: str, reason: str, *, refused: bool = False) -> None:
        """Count and journal an unusable (or refused) photo."""
        ref = self.refs[name]
        if refused:
            self.result.refused += 1
        else:
            self.result.failed += 1
        self.result.failures.append({"file": name, "product_id": ref["product_id"], "reason": reason})
        self.journal.event(
            STAGE,
            f"photo {'refused' if refused else 'unusable'}: {name}: {reason}",
            "warning",
            product_id=ref["product_id"],
            file=name,
            reason=reason,
            section_id=ref["section_id"],
        )

    def plan(self) -> list[_Job]:
        """The photos to (re)process; cached and refused ones are recorded right away."""
        jobs: list[_Job] = []
        quick: list[tuple[str, Any]] = []
        resolve = SourceResolver(self.settings.photos.source_dir)
        for name in sorted(self.refs):
            real, why = resolve(name)
            if real is None:
                self.fail(name, why, refused=True)
                entry: dict[str, Any] | None = {"ok": False, "reason": f"refused: {why}"}
            else:
                entry = self._from_cache(name, real)
                if entry is None:
                    jobs.append(self._job(name, real))
                    continue
            if self.published.get(name) != entry:
                quick.append((name, entry))
        if quick:
            self.state.put_many(PUBLISHED_NS, quick)
        return jobs

    def _from_cache(self, name: str, real: Path) -> dict[str, Any] | None:
        """The published entry when the cache still describes this exact file, else None (process it)."""
        cached = self.cache.get(name)
        try:
            st = real.stat()
        except OSError:
            return None
        if not cached or cached.get("settings") != self.key:
            return None
        if cached.get("size") != st.st_size or cached.get("mtime_ns") != st.st_mtime_ns:
            return None
        if cached.get("ok") and (self.cache_dir / cached["name"]).exists():
            self.result.unchanged += 1
            return {"name": cached["name"], "ok": True}
        if not cached.get("ok"):
            # Same bytes failed before: don't decode them again, but keep saying so.
            self.fail(name, cached.get("reason", "unusable"))
            return {"ok": False, "reason": cached.get("reason", "unusable")}
        return None

    def _job(self, name: str, real: Path) -> _Job:
        p = self.settings.photos
        cached = self.cache.get(name)
        return _Job(
            name,
            str(real),
            cached.get("hash") if cached else None,
            p.max_size,
            p.format,
            p.quality,
            self.key,
            str(self.cache_dir),
        )

    def record(self, outcomes: list[dict[str, Any]]) -> None:
        """Save the outcomes of processed photos (their output files are already durable)."""
        cache_rows: list[tuple[str, Any]] = []
        pub_rows: list[tuple[str, Any]] = []
        for o in outcomes:
            name = o["file_name"]
            if o["status"] == "failed":
                self.fail(name, o["reason"])
                pub_rows.append((name, {"ok": False, "reason": o["reason"]}))
                if "size" in o:  # the file exists: remember the failure until it changes
                    cache_rows.append((name, self._failed_entry(o)))
                else:
                    self.state.delete(CACHE_NS, name)
                continue
            if o["status"] == "processed":
                self.result.processed += 1
            else:
                self.result.unchanged += 1
            cache_rows.append((name, self._ok_entry(o)))
            pub_rows.append((name, {"name": o["name"], "ok": True}))
        self.state.put_many(CACHE_NS, cache_rows)
        self.state.put_many(PUBLISHED_NS, pub_rows)

    def _failed_entry(self, o: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": False,
            "reason": o["reason"],
            "size": o["size"],
            "mtime_ns": o["mtime_ns"],
            "hash": o.get("hash"),
            "settings": self.key,
        }

    def _ok_entry(self, o: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "name": o["name"],
            "hash": o["hash"],
            "size": o["size"],
            "mtime_ns": o["mtime_ns"],
            "settings": self.key,
        }

    def process_inline(self, jobs: list[_Job], bar: Any, should_stop: StopCheck) -> None:
        """Few photos (or one worker): process in this process, recording every 50."""
        batch: list[dict[str, Any]] = []
        for job in jobs:
            if should_stop():
                self.result.interrupted = True
                break
            batch.append(process_job(job))
            bar.update()
            if len(batch) >= 50:
                self.record(batch)
                batch = []
        self.record(batch)

    def process_pool(self, jobs: list[_Job], workers: int, bar: Any, should_stop: StopCheck) -> None:
        """Many photos: chunks in worker processes, each chunk recorded as it completes."""
        size = max(1, min(25, -(-len(jobs) // (workers * 4))))
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        # spawn: the parent may hold database-engine threads; forking those is unsafe.
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(_process_chunk, c): c for c in chunks}
            recorded: set[cf.Future] = set()
            for fut in cf.as_completed(futures):
                self.record(_chunk_outcomes(fut, futures[fut]))
                recorded.add(fut)
                bar.update(len(futures[fut]))
                if should_stop():
                    self.result.interrupted = True
                    pool.shutdown(wait=True, cancel_futures=True)
                    break
        # After a stop: chunks that still completed have their files written; record them too.
        for fut, chunk in futures.items():
            if fut not in recorded and fut.done() and not fut.cancelled():
                self.record(_chunk_outcomes(fut, chunk))

    def forget_unreferenced(self) -> None:
        """Forget photos no product or section refers to any more, so publish stops treating them as wanted."""
        for name in set(self.published) - set(self.refs):
            self.state.delete(PUBLISHED_NS, name)
        for name in set(self.cache) - set(self.refs):
            self.state.delete(CACHE_NS, name)

    def finish(self) -> PhotosResult:
        """Journal the run; `ok` says whether it found photos the operator should look at."""
        r = self.result
        self.journal.event(
            STAGE,
            f"photos: {r.processed} processed, {r.unchanged} unchanged, "
            f"{r.failed} unusable, {r.refused} refused" + ("; stopped on request" if r.interrupted else ""),
            "warning" if r.failed or r.refused else "info",
            processed=r.processed,
            unchanged=r.unchanged,
            failed=r.failed,
            refused=r.refused,
            referenced=r.referenced,
        )
        r.ok = not (r.failed or r.refused)
        return r


def _chunk_outcomes(fut: cf.Future, chunk: list[_Job]) -> list[dict[str, Any]]:
    try:
        return fut.result()
    except DiskFullError:
        raise  # not the photos' fault, and no other photo fits either: the stage stops, naming the folder
    except Exception as exc:  # a worker died (out of memory, killed): retry next run
        reason = f"photo worker crashed: {type(exc).__name__}"
        return [{"file_name": j.file_name, "status": "failed", "reason": reason} for j in chunk]
