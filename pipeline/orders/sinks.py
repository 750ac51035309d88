"""Where imported orders go: the Torgsoft database (through the SQL mapping, one connection per worker,
writes taking turns through the write gate) or Torgsoft's own order files (`[orders] sink`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from pipeline.orders.order_rows import ImportOutcome


class Sink(Protocol):
    """Where orders go: `import_order(order) -> ImportOutcome`, `close()` (the database, or JsonSink)."""

    def import_order(self, order: Any) -> ImportOutcome:
        """Write one order (one transaction)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


# How long closing a database sink may take before it is abandoned (see DatabaseSink.close).
CLOSE_SECONDS = 10.0


class DatabaseSink:
    """The Torgsoft database through the SQL mapping."""

    def __init__(self, settings: Any, journal: Any):
        from pipeline.orders.importer import OrderImporter
        from pipeline.orders.order_sql import check_mapping
        from pipeline.torgsoft.connection import connect
        from pipeline.torgsoft.writegate import WriteGate

        t = settings.torgsoft
        # Importers of one embedded file take turns, bounded (see torgsoft/writegate.py).
        self.gate = WriteGate(None if t.dsn else Path(t.database), max(30.0, 2.0 * t.lock_timeout))
        self.con = connect(settings)
        self.busy = False  # an import_order in progress (see close)
        try:
            self.importer = OrderImporter(settings, self.con, journal=journal)
            check_mapping(self.con, self.importer.mapping)
        except BaseException:
            self.con.close()
            raise

    def import_order(self, order: Any) -> ImportOutcome:
        """One transaction per order, inside the write gate."""
        self.busy = True
        try:
            with self.gate.held(f"order {order.id}"):
                return self.importer.import_order(order)
        finally:
            self.busy = False

    def close(self) -> None:
        """Close the connection, waiting at most CLOSE_SECONDS (1 s once it is known to be gone; see
        `torgsoft.connection.close_bounded`). A sink whose worker was left behind inside the database
        (orders/workers.py) is not touched at all: its connection belongs to that thread until the
        process ends."""
        from pipeline.torgsoft.connection import close_bounded

        if self.busy:
            return
        close_bounded(self.con, 1.0 if self.importer.gone else CLOSE_SECONDS, first=self.importer.close)
        self.gate.close()


def open_sink(settings: Any, *, journal: Any, state: Any) -> Sink:
    """The sink named by `[orders] sink`."""
    if settings.orders.sink == "torgsoft-json":
        from pipeline.orders.jsonsink import JsonSink

        return JsonSink(settings, journal=journal, state=state)
    return DatabaseSink(settings, journal)


def open_sinks(settings: Any, *, journal: Any, state: Any) -> list[Sink]:
    """One sink per import worker (database connections); a single one for the order-file sink."""
    n = settings.orders.import_workers if settings.orders.sink == "database" else 1
    sinks: list[Sink] = []
    try:
        for _ in range(n):
            sinks.append(open_sink(settings, journal=journal, state=state))
    except BaseException:
        for s in sinks:
            s.close()
        raise
    return sinks


def close_all(sinks: list[Sink]) -> None:
    """Close every sink of a pass."""
    for s in sinks:
        s.close()
