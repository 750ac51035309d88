"""What changed in stock and prices since the last watcher tick, read cheaply.

Two ways, chosen by `[torgsoft] change_query`:

- **change query** (`stock_changes.sql`): the goods whose stock or price row changed at or after a
  cursor in the database's own clock (`CHANGED_AT`, kept current by triggers). The cursor is the
  database's time when the last read began, minus an overlap (`OVERLAP`) for transactions that commit
  later than their timestamp: goods re-read in the overlap are compared with the feed record, so they
  are pushed only once. An idle tick reads a few index entries.
- **hash** (`stock_levels.sql`): a stock-only read of every good (stock rows and retail price, never the
  full catalog), each good reduced to a compact 64-bit digest of what a push depends on and compared
  with the previous read. The digests live in memory; the first tick of a process (or after `reset`)
  hands every good over for comparison with the feed record.

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
LEVELS_QUERY = "stock_levels"
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
    def query_name(self) -> str:
        """The mapping query this detector reads."""
        return CHANGES_QUERY if self.mode == "query" else LEVELS_QUERY

    def check(self, con: Any) -> None:
        """Prepare the query against the database; a SettingsError names the file and the column."""
        self.mapping.check(con, [self.query_name])

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
        for level in self._read(con, LEVELS_QUERY, {"price_center": self.price_center}):
            det.read += 1
            digest = level.digest()
            digests[level.good_id] = digest
            if previous is None or previous.get(level.good_id) != digest:
                det.levels.append(level)
        return det
