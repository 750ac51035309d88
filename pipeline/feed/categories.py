"""`categories list`: every section with its Satu portal category (own row or inherited) and offers.

Runs the same rules as the feed over the catalog (nothing is written), so the offer counts are exactly
what the next feed would carry per section.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline.feed import portal


@dataclass(frozen=True)
class SectionRow:
    """One section as `categories list` shows it."""

    section_id: int
    parent_id: int | None
    name: str
    path: str  # "Root / Child / Section"
    portal_id: int | None  # resolved: own row or nearest mapped ancestor
    portal_source: str  # "direct" | "inherited" | "" (none)
    portal_name: str
    offers: int
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


def section_rows(settings: Any, state: Any) -> list[SectionRow]:
    """Every section of the catalog, parents first, with its portal category and offer count."""
    from collections import Counter

    from pipeline.contracts.photo_urls import PhotoIndex
    from pipeline.feed.rules import CategoryTree, Offer, RuleSettings, build_offer
    from pipeline.torgsoft.catalog import open_catalog

    f = settings.feed
    mapping = portal.load_category_map(f.category_map)
    photos = PhotoIndex(state, settings.publish.public_base_url)
    rules = RuleSettings.from_settings(settings)
    offers: Counter[int] = Counter()
    with open_catalog(settings) as source:
        tree = CategoryTree(source.sections(), f.category_url, f.url)
        tree.apply_portal_map(mapping)
        for product in source.products():
            r = build_offer(product, rules, tree, photos.url_for)
            if isinstance(r, Offer):
                offers[r.category_id] += 1
    rows = []
    for sec in sorted(tree.sections.values(), key=lambda s: (s.depth or 99, s.id)):
        names = " / ".join(tree.sections[i].name for i in sec.path) if sec.path else sec.name
        source_kind = (
            "direct" if sec.portal_id is not None else ("inherited" if sec.portal_category_id else "")
        )
        row = mapping.get(sec.id) or next(
            (mapping[i] for i in reversed(sec.path) if i in mapping), portal.PortalCategory(0)
        )
        rows.append(
            SectionRow(
                sec.id,
                sec.parent_id,
                sec.name,
                names,
                sec.portal_category_id,
                source_kind,
                row.name,
                offers[sec.id],
                sec.problem,
            )
        )
    return rows
