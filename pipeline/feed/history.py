"""Feed history, diffs and the mass-change guard.

Every published feed leaves, in `[feed] history_dir`, a gzip copy of the feed (`.yml.gz`, written
streamed), a compact snapshot of its offers (`id price quantity presence wholesale`, one line each, in
offer-id order) and a diff report against the feed before it. Diffs are a merge of two sorted
snapshots, so they stream whatever the catalog size. The guard refuses a run that would remove too many
offers. History is bounded by count (`keep_feeds`) and by total size (`history_max_mb`); older versions
kept plain `.yml` copies, which are still read (`feed_file`, `restore`) and pruned the same way.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from pipeline.contracts.feed_offers import FeedOffer
from pipeline.fsutil import atomic_writer, fsync_dir, write_atomic

SAMPLE = 20
SNAPSHOT_SUFFIX = ".offers.tsv"
FEED_SUFFIX = ".yml.gz"
OLD_FEED_SUFFIX = ".yml"  # plain copies (hard links) filed by earlier versions
#: gzip level of the kept copies: level 1 packs a feed (repetitive XML) several times over at a small
#: fraction of level 6's CPU, which matters on a million-offer feed rendered every run
GZIP_LEVEL = 1
CHUNK = 1 << 20


@dataclass(slots=True)
class SnapRow:
    """One offer as the snapshot records it."""

    id: str
    price: str
    quantity: str
    presence: str
    wholesale: str = ""  # "price@qty;price@qty"

    def line(self) -> str:
        """The snapshot line (tab-separated)."""
        return f"{self.id}\t{self.price}\t{self.quantity}\t{self.presence}\t{self.wholesale}\n"

    @classmethod
    def parse(cls, line: str) -> SnapRow:
        """Read a snapshot line."""
        parts = line.rstrip("\n").split("\t")
        parts += [""] * (5 - len(parts))
        return cls(*parts[:5])

    def offer(self) -> FeedOffer:
        """The per-offer record of the `feed.offers` contract (what the API push compares)."""
        qty: int | str = int(self.quantity) if self.quantity.isdigit() else self.quantity
        ladder = []
        for part in filter(None, self.wholesale.split(";")):
            price, _, q = part.partition("@")
            ladder.append((price, q))
        return FeedOffer(self.price, qty, self.presence, tuple(ladder))


def sort_key(offer_id: str) -> tuple[int, int | str]:
    """Order of offer ids in snapshots: numbers numerically (the reader's good_id order), then text."""
    return (0, int(offer_id)) if offer_id.isdigit() else (1, offer_id)


def read_snapshot(path: Path) -> Iterator[SnapRow]:
    """Stream a snapshot file."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield SnapRow.parse(line)


def iter_offers(path: Path | str) -> Iterator[dict[str, str]]:
    """Stream (id, price, quantity, available) of every offer of a feed (for diffs against old feeds)."""
    it = etree.iterparse(
        str(path), events=("end",), tag="offer", huge_tree=True, no_network=True, resolve_entities=False
    )
    for _, elem in it:
        yield {
            "id": elem.get("id") or "",
            "price": (elem.findtext("price") or "").strip(),
            "quantity": (elem.findtext("quantity_in_stock") or "").strip(),
            "available": elem.get("available") or "",
        }
        elem.clear(keep_tail=False)
        parent = elem.getparent()
        if parent is not None:
            while elem.getprevious() is not None:
                del parent[0]


def snapshot_from_feed(feed: Path, dest: Path, available_value: str = "true") -> Path:
    """Build a snapshot from a feed file (when history has none, e.g. a feed written by older versions)."""
    rows = [
        SnapRow(
            o["id"],
            o["price"],
            o["quantity"] or "0",
            "available" if o["available"] == available_value else "not_available",
        )
        for o in iter_offers(feed)
    ]
    rows.sort(key=lambda r: sort_key(r.id))  # rare path: feeds from elsewhere may be in any order
    with atomic_writer(dest, durable=False) as fh:
        fh.writelines(r.line().encode("utf-8") for r in rows)
    return dest


def _copy_whole(src: Path, dest: Path) -> None:
    """Copy through a temp file: a full disk leaves no half copy of a feed in the history."""
    with open(src, "rb") as fh, atomic_writer(dest, durable=False) as out:
        shutil.copyfileobj(fh, out, 1 << 20)


def _move(src: Path, dest: Path) -> None:
    """Rename, or copy and remove when the history folder is on another file system."""
    try:
        os.replace(src, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_whole(src, dest)
        src.unlink()


def merge(old: Iterator[SnapRow], new: Iterator[SnapRow]) -> Iterator[tuple[SnapRow | None, SnapRow | None]]:
    """Pairs (old, new) by offer id over two snapshots sorted by `sort_key`."""
    a, b = next(old, None), next(new, None)
    while a is not None or b is not None:
        if b is None or (a is not None and sort_key(a.id) < sort_key(b.id)):
            yield a, None
            a = next(old, None)
        elif a is None or sort_key(b.id) < sort_key(a.id):
            yield None, b
            b = next(new, None)
        else:
            yield a, b
            a, b = next(old, None), next(new, None)


@dataclass
class Diff:
    """What changes compared with the last feed."""

    previous: int = 0
    current: int = 0
    added: int = 0
    removed: int = 0
    price_changed: int = 0
    stock_changed: int = 0
    samples: dict[str, list[str]] = field(
        default_factory=lambda: {"added": [], "removed": [], "price_changed": [], "stock_changed": []}
    )
    has_previous: bool = False

    @property
    def drop_percent(self) -> float:
        """Share of the previous offers that would disappear."""
        return 100.0 * self.removed / self.previous if self.previous else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "previous": self.previous,
            "current": self.current,
            "added": self.added,
            "removed": self.removed,
            "price_changed": self.price_changed,
            "stock_changed": self.stock_changed,
            "drop_percent": round(self.drop_percent, 2),
            "samples": self.samples,
        }


def compute_diff(previous: Path | None, current: Path, report: Path | None = None) -> Diff:
    """Diff two snapshots; with `report`, also write every change as a line (kind, id, old → new)."""
    diff = Diff(has_previous=previous is not None)
    old_rows: Iterator[SnapRow] = read_snapshot(previous) if previous else iter(())
    out = open(report, "w", encoding="utf-8") if report else None  # noqa: SIM115
    try:
        if out:
            out.write("change\tid\told\tnew\n")
        for old, new in merge(old_rows, read_snapshot(current)):
            diff.previous += old is not None
            diff.current += new is not None
            changes: list[tuple[str, str, str]] = []
            if old is None and new is not None:
                diff.added += 1
                changes.append(("added", "", f"{new.price} x {new.quantity}"))
            elif new is None and old is not None:
                diff.removed += 1
                changes.append(("removed", f"{old.price} x {old.quantity}", ""))
            elif old is not None and new is not None:
                if old.price != new.price or old.wholesale != new.wholesale:
                    diff.price_changed += 1
                    changes.append(("price_changed", old.price, new.price))
                if old.quantity != new.quantity or old.presence != new.presence:
                    diff.stock_changed += 1
                    changes.append(
                        ("stock_changed", f"{old.quantity} {old.presence}", f"{new.quantity} {new.presence}")
                    )
            oid = (new or old).id  # type: ignore[union-attr]
            for kind, before, after in changes:
                if len(diff.samples[kind]) < SAMPLE:
                    diff.samples[kind].append(oid)
                if out:
                    out.write(f"{kind}\t{oid}\t{before}\t{after}\n")
    finally:
        if out:
            out.close()
    return diff


class History:
    """The history folder: one set of files per published feed, named by run time."""

    def __init__(self, folder: Path, stem: str):
        self.folder = Path(folder)
        self.stem = stem

    def runs(self) -> list[str]:
        """Run stamps present, oldest first."""
        if not self.folder.exists():
            return []
        stamps = {
            p.name[len(self.stem) + 1 :].split(".", 1)[0]
            for p in self.folder.glob(f"{self.stem}-*{SNAPSHOT_SUFFIX}")
        }
        return sorted(stamps)

    def path(self, stamp: str, suffix: str) -> Path:
        """File of one run, e.g. suffix `.yml`, `.offers.tsv`, `.diff.tsv`, `.json`."""
        return self.folder / f"{self.stem}-{stamp}{suffix}"

    def last_snapshot(self) -> Path | None:
        """Snapshot of the last published feed, if history has one."""
        runs = self.runs()
        return self.path(runs[-1], SNAPSHOT_SUFFIX) if runs else None

    @staticmethod
    def new_stamp() -> str:
        """A sortable run stamp (microseconds keep two runs in one second apart)."""
        return datetime.now().strftime("%Y%m%d-%H%M%S-%f")

    def feed_file(self, stamp: str) -> Path | None:
        """The kept copy of one run's feed: the gzip copy, else a plain one from an earlier version."""
        for suffix in (FEED_SUFFIX, OLD_FEED_SUFFIX):
            path = self.path(stamp, suffix)
            if path.exists():
                return path
        return None

    def restore(self, stamp: str, dest: Path) -> Path:
        """Write the feed of run `stamp` to `dest` byte for byte (streamed; via a temp file and a rename,
        so `dest` is either the old file or the whole restored one). FileNotFoundError if none is kept."""
        source = self.feed_file(stamp)
        if source is None:
            raise FileNotFoundError(f"no feed kept for run {stamp} in {self.folder}")
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.{stamp}.restore.tmp")
        opener = gzip.open if source.name.endswith(FEED_SUFFIX) else open
        try:
            with opener(source, "rb") as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        fsync_dir(dest.parent)
        return dest

    def record(
        self, stamp: str, feed: Path, snapshot: Path, diff_report: Path | None, summary: dict[str, Any]
    ) -> None:
        """File the published feed (a gzip copy, streamed), its snapshot, diff and summary."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(f".{self.stem}-*{FEED_SUFFIX}*.tmp"):  # left by a killed run
            with contextlib.suppress(OSError):
                stale.unlink()
        # Through a temp file (a full disk leaves no half copy); mtime=0 and no file name inside: the
        # same feed always gives the same bytes.
        with (
            open(feed, "rb") as src,
            atomic_writer(self.path(stamp, FEED_SUFFIX), durable=False) as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0, filename="") as gz,
        ):
            shutil.copyfileobj(src, gz, CHUNK)
        _move(snapshot, self.path(stamp, SNAPSHOT_SUFFIX))
        if diff_report is not None and diff_report.exists():
            _move(diff_report, self.path(stamp, ".diff.tsv"))
        text = json.dumps(summary, ensure_ascii=False, indent=1, default=str)
        write_atomic(self.path(stamp, ".json"), text.encode("utf-8"), durable=False)

    def run_bytes(self, stamp: str) -> int:
        """Disk space of one run's files (feed copy, snapshot, diff report, summary)."""
        total = 0
        for p in self.folder.glob(f"{self.stem}-{stamp}.*"):
            with contextlib.suppress(OSError):
                total += p.stat().st_size
        return total

    def prune(self, keep: int, max_bytes: int | None = None) -> list[str]:
        """Delete the oldest runs until at most `keep` are left and (with `max_bytes`) their files take
        at most that many bytes; returns the stamps removed.

        The newest run is always kept, even alone over `max_bytes`: its snapshot is what the next run
        diffs against and what the API push state was built from, and its copy is the feed now live."""
        runs = self.runs()
        if not runs:
            return []
        keep = max(keep, 1)
        gone = runs[:-keep]
        kept = runs[-keep:]
        if max_bytes is not None:
            sizes = {stamp: self.run_bytes(stamp) for stamp in kept}
            total = sum(sizes.values())
            while len(kept) > 1 and total > max_bytes:
                total -= sizes[kept[0]]
                gone.append(kept.pop(0))
        for stamp in gone:
            for p in self.folder.glob(f"{self.stem}-{stamp}.*"):
                with contextlib.suppress(OSError):
                    p.unlink()
        return gone
