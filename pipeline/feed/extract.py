"""Extract: the catalog's products become offers (or counted skips) as they stream by.

Nothing is held in memory: `Extractor.offers()` is a generator the renderer pulls from; each offer also
goes, as one line, into the run's snapshot file (what the guard compares and the commit records).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from pipeline.errors import PipelineError
from pipeline.feed.history import SnapRow
from pipeline.feed.portal import PortalCategory
from pipeline.feed.result import FeedResult
from pipeline.feed.rules import (
    DELETED,
    NOT_ON_SITE,
    OUT_OF_STOCK,
    CategoryTree,
    Offer,
    RuleSettings,
    Section,
    Skip,
    build_offer,
    section_url,
)
from pipeline.feed.slug import slugify
from pipeline.feed.urls import private_picture
from pipeline.stage import StopCheck, never_stop

JOURNAL_SAMPLES = 50  # per skip reason: enough to search for, not a flood


DUPLICATE_VARIANT = "duplicate_variant"  # a variant with the same params as another of its group


class Interrupted(Exception):
    """A stop was requested while the offers streamed (internal: `run` turns it into `interrupted`)."""


def check_url_patterns(feed_settings: Any) -> None:
    """`[feed] product_url`/`category_url` must use only the known placeholders."""
    for key in ("product_url", "category_url"):
        try:
            getattr(feed_settings, key).format(url="u", slug="s", id="1")
        except (KeyError, IndexError, ValueError) as exc:
            raise PipelineError(
                f"[feed] {key} = {getattr(feed_settings, key)!r}: unknown placeholder {exc}; "
                "use {url}, {slug} and {id}"
            ) from None


def build_tree(
    source: Any, f: Any, journal: Any, result: FeedResult, portal_map: Mapping[int, PortalCategory]
) -> tuple[CategoryTree, Section | None]:
    """The checked section tree (its problems journaled, Satu's portal categories applied) and the
    fallback section, when configured."""
    tree = CategoryTree(source.sections(), f.category_url, f.url)
    _apply_portal_map(tree, portal_map, journal)
    for problem in tree.problems:
        result.section_problems.append(problem)
        journal.event("feed", problem, level="error")
    if not f.fallback_category:
        return tree, None
    fid = f.fallback_category_id
    if fid in tree.sections:
        raise PipelineError(f"[feed] fallback_category_id {fid} is also a section id; choose another")
    slug = slugify(f.fallback_category)
    url = section_url(f.category_url, f.url, slug, fid)
    fallback = Section(fid, None, f.fallback_category, slug, url, (fid,))
    tree.sections[fid] = fallback
    tree.apply_portal_map(portal_map)
    return tree, tree.sections[fid]


def _apply_portal_map(tree: CategoryTree, portal_map: Mapping[int, PortalCategory], journal: Any) -> None:
    unknown = sorted(set(portal_map) - set(tree.sections))
    if unknown:
        journal.event(
            "feed",
            f"[feed] category_map names {len(unknown)} section(s) the catalog does not have: "
            + ", ".join(map(str, unknown[:20])),
            level="warning",
        )
    tree.apply_portal_map(portal_map)


def report_portal_gaps(result: FeedResult, journal: Any, mapped: bool) -> None:
    """The summary's count of offers without a Satu category, as a journal warning."""
    n = result.without_portal_category
    if not n:
        return
    hint = "map their sections in [feed] category_map" if mapped else "set [feed] category_map"
    journal.event(
        "feed",
        f"{n} of {result.offers} offers have no Satu category (Satu will guess it from the name); {hint}",
        level="warning",
        count=n,
    )


class Extractor:
    """Streams offers from the catalog, counting into `result` and writing the snapshot."""

    def __init__(
        self,
        source: Any,
        rules: RuleSettings,
        tree: CategoryTree,
        photo_url: Any,
        fallback: Section | None,
        *,
        result: FeedResult,
        journal: Any,
        snapshot: TextIO,
        should_stop: StopCheck = never_stop,
    ):
        self.source, self.rules, self.tree = source, rules, tree
        self.photo_url, self.fallback = photo_url, fallback
        self.result, self.journal, self.snapshot = result, journal, snapshot
        self.should_stop = should_stop
        self.skipped: Counter[str] = Counter()
        self.logged: Counter[str] = Counter()
        self.countries: Counter[str] = Counter()  # country values not in Satu's dictionary table
        self.variants: dict[int, dict[bytes, str]] = {}  # group → digest of its params → first id

    def offers(self) -> Iterator[Offer]:
        """The offers, in catalog order; raises `Interrupted` when a stop is requested."""
        for product in self.source.products():
            if self.should_stop():
                raise Interrupted
            self.result.products += 1
            r = build_offer(product, self.rules, self.tree, self.photo_url, self.fallback)
            if isinstance(r, Offer):
                twin = self._twin(r)
                if twin is not None:
                    self._skip(product.offer_id, Skip(DUPLICATE_VARIANT, twin))
                    continue
                self._count(r)
                yield r
            elif r.reason == OUT_OF_STOCK:
                self.result.hidden += 1
            else:
                self._skip(product.offer_id, r)

    def _twin(self, r: Offer) -> str | None:
        """Satu tells variants of one group apart by their params: a variant whose params equal an
        earlier one's of the same group is left out (the detail names the first)."""
        if r.group_id is None:
            return None
        # Kept for every variant of the run: a 16-byte digest, not the params themselves (a shop of
        # a million variants would hold them all); a collision is as likely as 2**-128 per pair.
        signature = hashlib.blake2b(
            repr(sorted((p.name, p.unit, p.value) for p in r.params)).encode("utf-8"), digest_size=16
        ).digest()
        seen = self.variants.setdefault(r.group_id, {})
        first = seen.setdefault(signature, r.id)
        if first == r.id:
            return None
        return f"group {r.group_id}: the same params as offer {first}"

    def _count(self, r: Offer) -> None:
        res = self.result
        res.offers += 1
        res.awaiting += r.presence == "waiting"
        res.pictures_dropped += r.pictures_dropped
        res.pictures_missing += r.pictures_missing
        res.names_truncated += r.name_truncated
        res.articles_changed += r.articul_changed
        res.without_portal_category += r.portal_category_id is None
        res.params_cut += r.params_cut
        res.without_photos += not r.pictures
        res.vendors_omitted += r.vendor_omitted
        res.links_stripped += r.links_stripped
        if not self.rules.allow_private_urls:
            res.pictures_private += sum(private_picture(u) for u in r.pictures)
        for value in r.pictures_invalid:
            res.pictures_invalid += 1
            if res.pictures_invalid <= JOURNAL_SAMPLES:
                self.journal.event(
                    "feed",
                    f"photo {value[:200]!r} left out: not one http(s) URL, nor a list of them; "
                    "give each photo its own field",
                    level="warning",
                    product_id=r.id,
                )
        if r.country_unknown:
            self.countries[r.country_unknown] += 1
        if r.group_id_dropped:
            res.group_ids_dropped += 1
            if res.group_ids_dropped <= JOURNAL_SAMPLES:
                self.journal.event(
                    "feed",
                    "group_id left out: the model id is outside Satu's 1..999999999",
                    level="warning",
                    product_id=r.id,
                )
        ladder = ";".join(f"{p}@{q}" for p, q in r.wholesale)
        self.snapshot.write(SnapRow(r.id, r.price, r.quantity, r.presence, ladder).line())

    def _skip(self, product_id: str, r: Skip) -> None:
        self.skipped[r.reason] += 1
        if self.logged[r.reason] >= JOURNAL_SAMPLES:
            return
        self.logged[r.reason] += 1
        self.journal.event(
            "feed",
            f"product left out: {r.reason}" + (f" ({r.detail})" if r.detail else ""),
            level=_level(r.reason),
            product_id=product_id,
            reason=r.reason,
        )

    def finish(self) -> None:
        """Put the skip counts into the result; one journal line per reason beyond the samples."""
        self.result.skip_reasons = dict(sorted(self.skipped.items()))
        self.result.countries_unknown = dict(self.countries.most_common())
        self._journal_figures()
        for reason, n in self.result.skip_reasons.items():
            if n > self.logged[reason]:
                self.journal.event(
                    "feed", f"{n} products left out: {reason}", level=_level(reason), reason=reason, count=n
                )

    def _journal_figures(self) -> None:
        """One journal line per figure of what Satu will show differently from the database."""
        if self.result.pictures_private:
            self.journal.event(
                "feed",
                f"{self.result.pictures_private} picture URL(s) on a loopback/private host (127.0.0.1, "
                "192.168.…, localhost, .local): Satu cannot download them; set [publish] public_base_url to "
                "the public address (or [publish] allow_private_urls = true for a test on this machine)",
                level="warning",
                count=self.result.pictures_private,
            )
        if self.result.links_stripped:
            self.journal.event(
                "feed",
                f"{self.result.links_stripped} description link(s) to other sites taken out, their text kept "
                "(Satu's moderation allows only the shop's own site and [feed] allowed_link_hosts)",
                level="info",
                count=self.result.links_stripped,
            )
        for value, n in self.result.countries_unknown.items():  # once per value, not per offer
            self.journal.event(
                "feed",
                f"country {value!r} is not in the table of Satu's names: written unchanged on {n} offer(s); "
                "use Satu's Russian name (e.g. «Китай») in the database",
                level="warning",
                count=n,
            )


#: reasons that are the shop's own choice (deleted goods, goods hidden from the site): left out as asked
NORMAL_EXCLUSIONS = frozenset({DELETED, NOT_ON_SITE})


def _level(reason: str) -> str:
    """A normal exclusion is journaled as info, so a warning always means something needs a look."""
    return "info" if reason in NORMAL_EXCLUSIONS else "warning"
