"""What changed in stock and prices since the last watcher tick, read cheaply.

Two ways, chosen by `[torgsoft] change_query`:

- **change query** (`stock_changes.sql`): the goods whose stock or price row changed at or after a
  cursor in the database's own clock (`CHANGED_AT`, kept current by triggers). The cursor is the
  database's time when the last read began, minus an overlap (`OVERLAP`) for transactions that commit
  later than their timestamp: goods re-read in the overlap are compared with the feed record, so they
  are pushed only once. An idle tick reads a few index entries.
- **hash** (`stock_digests.sql`): a stock-only digest per good, computed by the database over its stock
  and price rows (never the full catalog). An idle tick reads it folded into one digest per bucket of
  `BUCKET` consecutive good ids (the database does the folding: 1.6k rows at 100k goods instead of
  100k, each row fetched through the driver costing more than the database's work); only the buckets
  whose digest changed are read per good and compared with the previous read, and the goods whose
  digest changed are read in full (`stock_of_good.sql`, or `stock_levels.sql` in one pass when there
  are many). The digests live in memory; the first tick of a process (or after `reset`) reads every
  good in full for comparison with the feed record.

`detect` returns the candidates and what to remember; `commit` remembers it, and the caller calls it
only after the effect (the feed record written) is durable.
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pipeline.stock.levels import GoodLevel, levels_from_rows
from pipeline.torgsoft import db
from pipeline.torgsoft.mapping import Mapping

CHANGES_QUERY = "stock_changes"
DIGESTS_QUERY = "stock_digests"
LEVELS_QUERY = "stock_levels"
GOOD_QUERY = "stock_of_good"
#: More changed goods than this (a revaluation, a stock-taking) are read in one pass of stock_levels.sql
#: rather than one stock_of_good.sql each.
MANY = 500
#: Re-read changes this long before the latest one seen: a sale's transaction may commit a few
#: seconds after the CHANGED_AT it wrote, and must not be missed.
OVERLAP = timedelta(seconds=120)
#: The first read of the change query (no cursor yet) takes everything.
EPOCH = datetime(1900, 1, 1)
FETCH_SIZE = 2000
#: Consecutive good ids folded into one digest by the idle read of the hash mode.
BUCKET = 64
#: More changed buckets than this are read per good in one pass over every good (not by bucket list).
MANY_BUCKETS = 40
#: The folding modulus (each term stays small: the SUM of a bucket never overflows BIGINT).
_MOD = 1000000007


@dataclass
class Detection:
    """The candidates of one tick: goods to compare with the feed record."""

    mode: str  # "query" or "hash"
    levels: list[GoodLevel] = field(default_factory=list)
    read: int = 0  # goods read from the database
    full: bool = False  # every good is a candidate (first tick, or after a reset)
    cursor: datetime | None = None  # change mode: the cursor to keep after this tick
    _memory: _Digests | None = None  # hash mode: the digests to keep after this tick


@dataclass
class _Digests:
    """The hash mode's memory: the digest of each bucket of goods, and per bucket its goods' ids and
    digests side by side in one array of 64-bit numbers (about 16 bytes a good, not a dict entry
    and two int objects: a million goods stay cheap)."""

    goods: dict[int, array[int]]
    buckets: dict[int, int]


def _pack(pairs: Iterable[tuple[int, int]]) -> dict[int, array[int]]:
    """(good id, digest) pairs into one array per bucket."""
    packed: dict[int, array[int]] = {}
    for good_id, digest in pairs:
        bucket = _bucket(good_id)
        if bucket not in packed:
            packed[bucket] = array("q")
        packed[bucket].extend((good_id, digest))
    return packed


def _unpack(packed: array[int] | None) -> dict[int, int]:
    if packed is None:
        return {}
    return dict(zip(packed[0::2], packed[1::2], strict=True))


def _moved_goods(before: array[int] | None, after: array[int] | None) -> list[int]:
    """The goods of one bucket whose digest differs between two reads (new or gone ones too)."""
    old, new = _unpack(before), _unpack(after)
    return [g for g, d in new.items() if old.get(g) != d] + [g for g in old if g not in new]


def _bucket(good_id: int) -> int:
    """The bucket of a good id, as the database computes it (integer division truncates toward zero)."""
    return good_id // BUCKET if good_id >= 0 else -(-good_id // BUCKET)


def _bucket_sql(digests_sql: str) -> str:
    """`stock_digests.sql` folded into one digest per bucket (the good id is mixed in: two goods of a
    bucket swapping their stock still change it; CASTs: the client reads BIGINT, not INT128)."""
    return (
        f"SELECT CAST(CAST(d.good_id AS BIGINT) / {BUCKET} AS BIGINT) AS bucket, "
        f"CAST(SUM(MOD(HASH(d.good_id || ':' || d.digest), {_MOD})) AS BIGINT) AS digest\n"
        f"FROM (\n{digests_sql}\n) d\nGROUP BY 1"
    )


def _in_buckets_sql(digests_sql: str, buckets: list[int]) -> str:
    """`stock_digests.sql` for the goods of these buckets only (whole numbers we computed: no quoting)."""
    listed = ", ".join(str(int(b)) for b in buckets)
    return (
        f"SELECT d.good_id, d.digest FROM (\n{digests_sql}\n) d\n"
        f"WHERE CAST(CAST(d.good_id AS BIGINT) / {BUCKET} AS BIGINT) IN ({listed})"
    )


def _tuples(con: Any, sql: str, args: tuple[Any, ...], what: str) -> Iterator[tuple[Any, ...]]:
    """Stream a query's rows as tuples (the first item: the column names), in a read-only
    read-committed transaction (it sees every commit and holds back no garbage); driver errors
    translated."""
    tr = db.read_only_transaction(con)
    gone = False
    try:
        cur = tr.cursor()
        cur.execute(sql, args)
        yield tuple(d[0].lower() for d in cur.description)
        while batch := cur.fetchmany(FETCH_SIZE):
            yield from batch
        tr.commit()
    except db.driver_errors() as exc:
        error = db.translate(exc, f"query {what} failed")
        gone = db.is_gone(error)  # then nothing more goes over the attachment (see db.is_gone)
        raise error from None
    finally:
        with contextlib.suppress(*db.driver_errors()):
            if tr.active and not gone:
                tr.rollback()
            if not gone:
                tr.close()


def _rows(con: Any, sql: str, args: tuple[Any, ...], what: str) -> Iterator[dict[str, Any]]:
    """Stream a query's rows as dicts keyed by lower-case column name (see `_tuples`)."""
    rows = _tuples(con, sql, args, what)
    names = next(rows)
    for values in rows:
        yield dict(zip(names, values, strict=True))


def _pairs(con: Any, sql: str, what: str) -> Iterator[tuple[int, int]]:
    """(id, digest) rows of a two-column digest query, as whole numbers."""
    rows = _tuples(con, sql, (), what)
    next(rows)
    for key, digest in rows:
        yield int(key), int(digest or 0)


class ChangeDetector:
    """Finds the goods whose stock or price may have changed (see the module docstring)."""

    def __init__(
        self, mapping: Mapping, *, centers: list[int], price_center: int = 0, change_query: bool = True
    ):
        self.mapping = mapping
        self.centers = tuple(centers)
        self.price_center = price_center
        self.mode = "query" if change_query else "hash"
        self._memory: _Digests | None = None

    @property
    def query_names(self) -> list[str]:
        """The mapping queries this detector reads."""
        return [CHANGES_QUERY] if self.mode == "query" else [DIGESTS_QUERY, LEVELS_QUERY, GOOD_QUERY]

    def check(self, con: Any) -> None:
        """Prepare the queries against the database; a SettingsError names the file and the column."""
        self.mapping.check(con, self.query_names)

    def reset(self) -> None:
        """Forget the last read: the next hash-mode tick hands every good over again."""
        self._memory = None

    def detect(self, con: Any, cursor: datetime | None) -> Detection:
        """Read the candidates; nothing is remembered until `commit`."""
        return self._by_query(con, cursor) if self.mode == "query" else self._by_hash(con)

    def commit(self, detection: Detection) -> None:
        """Remember what `detection` read (call once its effect is durable)."""
        if detection._memory is not None:
            self._memory = detection._memory

    def _read(self, con: Any, name: str, values: dict[str, Any]) -> Iterator[GoodLevel]:
        q = self.mapping.query(name)
        rows = _rows(con, q.sql, q.args(values), q.path.name)
        yield from levels_from_rows(rows, self.centers)

    def _by_query(self, con: Any, cursor: datetime | None) -> Detection:
        # The cursor is the database's clock when a read began: the next read goes back OVERLAP from it.
        now = list(
            _rows(con, "SELECT CAST(LOCALTIMESTAMP AS TIMESTAMP) AS now FROM RDB$DATABASE", (), "clock")
        )[0]["now"]
        since = EPOCH if cursor is None else cursor - OVERLAP
        det = Detection("query", full=cursor is None, cursor=now)
        values = {"changed_since": since, "price_center": self.price_center}
        for level in self._read(con, CHANGES_QUERY, values):
            det.read += 1
            det.levels.append(level)
        return det

    def _by_hash(self, con: Any) -> Detection:
        previous = self._memory
        det = Detection("hash", full=previous is None)
        q = self.mapping.query(DIGESTS_QUERY)
        what = q.path.name
        buckets = dict(_pairs(con, _bucket_sql(q.sql), what))
        det.read = len(buckets)
        if previous is None:
            goods = _pack(_pairs(con, q.sql, what))
            det.read += sum(len(a) for a in goods.values()) // 2
            det._memory = _Digests(goods, buckets)
            det.levels = list(self._read(con, LEVELS_QUERY, {"price_center": self.price_center}))
            return det
        moved = [b for b, d in buckets.items() if previous.buckets.get(b) != d]
        moved += [b for b in previous.buckets if b not in buckets]
        if not moved:
            det._memory = _Digests(previous.goods, buckets)  # the same goods: nothing copied
            return det
        changed, goods = self._changed_goods(con, q.sql, what, previous.goods, moved, det)
        det._memory = _Digests(goods, buckets)
        det.levels = self._levels_of(con, changed)
        return det

    def _changed_goods(
        self, con: Any, sql: str, what: str, before: dict[int, array[int]], moved: list[int], det: Detection
    ) -> tuple[list[int], dict[int, array[int]]]:
        """The goods of the moved buckets whose digest changed, and the digests to keep."""
        if len(moved) > MANY_BUCKETS:
            fresh = _pack(_pairs(con, sql, what))
            det.read += sum(len(a) for a in fresh.values()) // 2
            every = [g for b in {*fresh, *before} for g in _moved_goods(before.get(b), fresh.get(b))]
            return every, fresh
        fresh = _pack(_pairs(con, _in_buckets_sql(sql, moved), what))
        det.read += sum(len(a) for a in fresh.values()) // 2
        goods = dict(before)
        changed: list[int] = []
        for b in moved:
            changed += _moved_goods(before.get(b), fresh.get(b))
            if b in fresh:
                goods[b] = fresh[b]
            else:
                goods.pop(b, None)
        return changed, goods

    def _levels_of(self, con: Any, changed: list[int]) -> list[GoodLevel]:
        """The levels of these goods: one pass of stock_levels.sql when they are many."""
        values = {"price_center": self.price_center}
        if len(changed) > MANY:
            wanted = set(changed)
            return [lv for lv in self._read(con, LEVELS_QUERY, values) if lv.good_id in wanted]
        levels: list[GoodLevel] = []
        for gid in sorted(changed):
            levels.extend(self._read(con, GOOD_QUERY, {**values, "good_id": gid}))
        return levels
