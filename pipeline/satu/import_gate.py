"""When an automatic import after publishing may start: Satu limits how often imports start.

Pure reads of the state: the last import start (`satu.import`), the feed's offers (`feed.offers`)
and the push acknowledgements (`satu.acked`).
"""

from __future__ import annotations

from typing import Any

from pipeline.contracts import feed_offers

ACKED_NS = "satu.acked"  # the push stage's acknowledgements (pipeline.satu.push)
IMPORT_NS = "satu.import"  # the import stage's record of its last start and result


def missing_on_satu(state: Any) -> list[str]:
    """Offers of the feed that Satu never acknowledged through a push: most likely not on Satu yet
    (new products, or ones an import refused). Read from the state, never from error texts."""
    return [k for k, _ in feed_offers.items(state) if state.get(ACKED_NS, k) is None]


def import_too_soon(settings: Any, state: Any, now: float) -> float | None:
    """Hours since the last import start when it is within `[satu] import_min_hours`, else None."""
    hours = float(settings.satu.import_min_hours)
    last = state.get(IMPORT_NS, "started") or state.get(IMPORT_NS, "last")
    if hours <= 0 or not last or not last.get("ts"):
        return None
    ago = (now - float(last["ts"])) / 3600
    return ago if ago < hours else None
