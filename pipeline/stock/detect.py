"""What changed in stock and prices since the last watcher tick, read cheaply.

Two ways, chosen by `[torgsoft] change_query`:

- **change query** (`stock_changes.sql`): the goods whose stock or price row changed at or after a
  cursor in the database's own clock (`CHANGED_AT`, kept current by triggers). The cursor is the
  database's time when the last read began, minus an overlap (`OVERLAP`) for transactions that commit
  later than their timestamp: goods re-read in the overlap are compared with the feed record, so they
  are pushed only once. An idle tick reads a few index entries.
- **hash** (`stock_digests.sql`): a stock-only read of every good, one row each — its id and a digest
  the database computes over its stock and price rows (never the full catalog) — compared with the
  previous read; the goods whose digest changed are read in full (`stock_of_good.sql`, or
  `stock_levels.sql` in one pass when there are many). The digests live in memory; the first tick of a
  process (or after `reset`) reads every good in full for comparison with the feed record.

`detect` returns the candidates and what to remember; `commit` remembers it, and the caller calls it
only after the effect (the feed record written) is durable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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


@dataclass
class Detection:
    """The candidates of one tick: goods to compare with the feed record."""

    mode: str  # "query" or "hash"
    levels: list[GoodLevel] = field(default_factory=list)
    read: int = 0  # goods read from the database
    full: bool = False  # every good is a candidate (first tick, or after a reset)
    cursor: datetime | None = None  # change mode: the cursor to keep after this tick
    _digests: dict[int, int] | None = None  # hash mode: the digests to keep after this tick


def _rows(con: Any, sql: str, args: tuple[Any, ...], what: str) -> Iterator[dict[str, Any]]:
    """Stream a query's rows as dicts keyed by lower-case column name, in a read-only read-committed
    transaction (it sees every commit and holds back no garbage); driver errors translated."""
    tr = db.read_only_transaction(con)
    try:
        cur = tr.cursor()
        cur.execute(sql, args)
        names = [d[0].lower() for d in cur.description]
        while batch := cur.fetchmany(FETCH_SIZE):
            for values in batch:
                yield dict(zip(names, values, strict=True))
        tr.commit()
    except db.driver_errors() as exc:
        raise db.translate(exc, f"query {what} failed") from None
    finally:
        with contextlib.suppress(*db.driver_errors()):
            if tr.active:
                tr.rollback()
            tr.close()


class ChangeDetector:
    """Finds the goods whose stock or price may have changed (see the module docstring)."""

    def __init__(
        self, mapping: Mapping, *, centers: list[int], price_center: int = 0, change_query: bool = True
    ):
        self.mapping = mapping
        self.centers = tuple(centers)
        self.price_center = price_center
        self.mode = "query" if change_query else "hash"
        self._digests: dict[int, int] | None = None

    @property
    def query_names(self) -> list[str]:
        """The mapping queries this detector reads."""
        return [CHANGES_QUERY] if self.mode == "query" else [DIGESTS_QUERY, LEVELS_QUERY, GOOD_QUERY]

    def check(self, con: Any) -> None:
        """Prepare the queries against the database; a SettingsError names the file and the column."""
        self.mapping.check(con, self.query_names)

    def reset(self) -> None:
        """Forget the last read: the next hash-mode tick hands every good over again."""
        self._digests = None

    def detect(self, con: Any, cursor: datetime | None) -> Detection:
        """Read the candidates; nothing is remembered until `commit`."""
        return self._by_query(con, cursor) if self.mode == "query" else self._by_hash(con)

    def commit(self, detection: Detection) -> None:
        """Remember what `detection` read (call once its effect is durable)."""
        if detection._digests is not None:
            self._digests = detection._digests

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
        previous = self._digests
        det = Detection("hash", full=previous is None, _digests={})
        digests = det._digests
        assert digests is not None
        q = self.mapping.query(DIGESTS_QUERY)
        for row in _rows(con, q.sql, q.args({}), q.path.name):
            det.read += 1
            digests[int(row["good_id"])] = int(row["digest"] or 0)
        changed = (
            [gid for gid, d in digests.items() if previous.get(gid) != d] if previous is not None else None
        )
        values = {"price_center": self.price_center}
        if changed is None or len(changed) > MANY:
            wanted = None if changed is None else set(changed)
            det.levels = [
                lv for lv in self._read(con, LEVELS_QUERY, values) if wanted is None or lv.good_id in wanted
            ]
        else:
            for gid in sorted(changed):
                det.levels.extend(self._read(con, GOOD_QUERY, {**values, "good_id": gid}))
        return det
