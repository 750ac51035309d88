"""`categories suggest`: propose a `[feed] category_map` from Satu's category list by fuzzy matching.

Each Torgsoft section is compared with every Satu portal category (rapidfuzz): mostly by the leaf
names, partly by the whole paths, so "Мебель / Кресла" prefers "Мебель > … > Кресла" over "Авто >
… > Кресла". Names are normalised first: case, ё/е, punctuation, the little words (и, для, в, …) and
Russian word endings (кресла/кресло, офисные/офисное), so inflection and word order do not count.
A name that lists several things ("Кастрюли, сковородки", "Кресла и пуфы", a bilingual "Жиһаз /
Мебель") is also matched by each of them, a little below a match of the whole.

The result is the map file the feed reads, with the score and both paths for the review; rows the
current map already has are kept as they are, and sections scoring below the threshold are listed
without a portal id for the seller to fill. Pure: the command reads and writes the files.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from pipeline.feed.portal import PortalCategory
from pipeline.feed.portal_list import PortalEntry
from pipeline.model import Category

GOOD_SCORE = 90  # at or above: matched well (still worth a glance)
DEFAULT_MIN_SCORE = 70  # below: no portal id is proposed
LEAF_WEIGHT = 0.7  # the leaf name decides most; the path tells apart leaves of the same name
CANDIDATES = 60  # best leaf matches rescored with the paths
HEADER = (
    "section_id",
    "portal_id",
    "portal_name",
    "score",
    "status",
    "section_path",
    "portal_path",
    "alternative",
)
# Review order: what the seller must fill first, then what to check, then the rest.
STATUS_ORDER = {"none": 0, "weak": 1, "good": 2, "kept": 3}

_LITTLE_WORDS = (
    "и в во с со на по к ко из от до а или для без при под над у о об же "
    "және мен үшін "  # Kazakh: and, with, for
    "and or for of the with to in"
)
_STOP = frozenset(_LITTLE_WORDS.split(" "))
# Russian noun and adjective endings, longest first; a stem keeps at least 3 letters.
_ENDING_LIST = (
    "иями ями ами ого его ому ему ыми ими ых их ая яя ое ее ые ие ый ий ой ую юю "
    "ов ев ей ам ям ах ях ом ем а я ы и о е у ю ь й"
)
_ENDINGS = tuple(sorted(_ENDING_LIST.split(" "), key=len, reverse=True))
_PUNCT = re.compile(r"[^\w]+|_")


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


@functools.lru_cache(maxsize=65536)
def normalise(text: str) -> str:
    """Casefolded, ё as е, punctuation as spaces, little words dropped, Russian endings cut."""
    words = _PUNCT.sub(" ", text.casefold().replace("ё", "е")).split()
    kept = [w for w in words if w not in _STOP] or words  # a name made only of little words stays
    return " ".join(_stem(w) for w in kept)


_PARTS = re.compile(r"\s+/\s+|[,;]|\s+(?:и|или|және|and)\s+", re.IGNORECASE)
PART_WEIGHT = 0.95  # a match on one part of "Кастрюли, сковородки" counts a little less than the whole


def name_variants(name: str) -> list[str]:
    """A name and, when it lists several things ("Кастрюли, сковородки", "Кресла и пуфы", a bilingual
    "Жиһаз / Мебель"), each of them."""
    parts = [p.strip() for p in _PARTS.split(name) if p.strip()]
    return [name, *parts] if len(parts) > 1 else [name]


def _variants(name: str) -> list[tuple[str, float]]:
    """The normalised variants of a name, each with its weight (the whole 1, a part less)."""
    out: list[tuple[str, float]] = []
    for i, v in enumerate(name_variants(name)):
        n = normalise(v)
        if n:
            out.append((n, 1.0 if i == 0 else PART_WEIGHT))
    return out


def _leaf_score(a: str, b: str) -> float:
    # token_sort: word order does not count; token_set: "Кресла" in "Кресла офисные" counts, less.
    return 0.6 * fuzz.token_sort_ratio(a, b) + 0.4 * fuzz.token_set_ratio(a, b)


def _best_leaf(section: list[tuple[str, float]], portal: list[tuple[str, float]]) -> float:
    return max(_leaf_score(a, b) * wa * wb for a, wa in section for b, wb in portal)


def _path_score(a: str, b: str) -> float:
    return 0.5 * fuzz.token_set_ratio(a, b) + 0.5 * fuzz.token_sort_ratio(a, b)


@dataclass(frozen=True)
class Match:
    """A portal category proposed for a section, with its score (0..100)."""

    entry: PortalEntry
    score: float


class Matcher:
    """Satu's categories prepared once for matching many sections."""

    def __init__(self, entries: Sequence[PortalEntry]):
        self.entries = list(entries)
        self.leaves = [normalise(e.name) for e in self.entries]
        self.variants = [_variants(e.name) for e in self.entries]
        self.paths = [normalise(" ".join((*e.parents, e.name))) for e in self.entries]
        self._near: dict[str, list[int]] = {}  # shop trees repeat names ("Аксессуары", "Прочее")

    def _candidates(self, query: str) -> list[int]:
        """The entries whose leaf is nearest `query` (the cheap first pass, a few ms over 5800 leaves).

        Two scorers: token_set finds the leaves that contain the words (a common word such as
        "кресла" is in dozens of Satu's leaves, all scoring 100, so the list is long), token_sort
        the leaves that are the words, which a long tie must not push out."""
        if query not in self._near:
            contains = process.extract(query, self.leaves, scorer=fuzz.token_set_ratio, limit=CANDIDATES)
            close = process.extract(query, self.leaves, scorer=fuzz.token_sort_ratio, limit=CANDIDATES // 2)
            self._near[query] = list(dict.fromkeys(i for _, _, i in (*contains, *close)))
        return self._near[query]

    def best(self, name: str, path: str, count: int = 2) -> list[Match]:
        """The `count` best portal categories for a section `name` whose full path (ancestors and
        itself, normalised) is `path`; best first."""
        mine = _variants(name)
        candidates: set[int] = set()
        for query, _ in mine:  # a cheap first pass on the leaf names, then the full score
            candidates.update(self._candidates(query))
        scores = {
            i: LEAF_WEIGHT * _best_leaf(mine, self.variants[i])
            + (1 - LEAF_WEIGHT) * _path_score(path, self.paths[i])
            for i in candidates
            if self.variants[i]
        }
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], len(self.entries[kv[0]].parents), kv[0]))
        return [Match(self.entries[i], round(s, 1)) for i, s in ranked[:count]]


@dataclass(frozen=True)
class SuggestedRow:
    """One line of the suggested map."""

    section_id: int
    portal_id: int | None
    portal_name: str
    score: float | None
    status: str  # "good" | "weak" | "none" | "kept"
    section_path: str
    portal_path: str = ""
    alternative: str = ""

    def cells(self) -> list[str]:
        """The CSV cells, in `HEADER` order."""
        score = "" if self.score is None else f"{self.score:g}"
        return [
            str(self.section_id),
            "" if self.portal_id is None else str(self.portal_id),
            self.portal_name,
            score,
            self.status,
            self.section_path,
            self.portal_path,
            self.alternative,
        ]


def section_paths(sections: Iterable[Category]) -> dict[int, list[Category]]:
    """Each section's chain root … itself (a broken parent link ends the chain)."""
    by_id = {s.id: s for s in sections}
    chains: dict[int, list[Category]] = {}
    for s in by_id.values():
        chain: list[Category] = []
        seen: set[int] = set()
        cur: Category | None = s
        while cur is not None and cur.id not in seen:
            seen.add(cur.id)
            chain.append(cur)
            cur = by_id.get(cur.parent_id) if cur.parent_id is not None else None
        chains[s.id] = chain[::-1]
    return chains


def _describe(m: Match) -> str:
    return f"{m.entry.portal_id} {m.entry.path} ({m.score:g})"


def _suggest_one(chain: list[Category], matcher: Matcher, min_score: float, shown_path: str) -> SuggestedRow:
    sec = chain[-1]
    full = normalise(" ".join(n for c in chain for n in name_variants(c.name)))
    found = matcher.best(sec.name, full)
    if not found:
        return SuggestedRow(sec.id, None, "", None, "none", shown_path)
    top = found[0]
    if top.score < min_score:
        return SuggestedRow(sec.id, None, "", top.score, "none", shown_path, "", _describe(top))
    status = "good" if top.score >= GOOD_SCORE else "weak"
    other = _describe(found[1]) if len(found) > 1 else ""
    return SuggestedRow(
        sec.id, top.entry.portal_id, top.entry.name, top.score, status, shown_path, top.entry.path, other
    )


def suggest(
    sections: Sequence[Category],
    entries: Sequence[PortalEntry],
    current: Mapping[int, PortalCategory],
    min_score: float = DEFAULT_MIN_SCORE,
) -> list[SuggestedRow]:
    """A row for every section (and every row of the current map), sorted for the review."""
    matcher = Matcher(entries)
    chains = section_paths(sections)
    rows: list[SuggestedRow] = []
    for sid, chain in chains.items():
        shown = " > ".join(c.name for c in chain)
        kept = current.get(sid)
        if kept is not None:
            rows.append(SuggestedRow(sid, kept.portal_id, kept.name, None, "kept", shown))
        else:
            rows.append(_suggest_one(chain, matcher, min_score, shown))
    for sid, kept in current.items():  # rows for sections the catalog no longer has stay too
        if sid not in chains:
            rows.append(SuggestedRow(sid, kept.portal_id, kept.name, None, "kept", "(not in the catalog)"))
    rows.sort(key=lambda r: (STATUS_ORDER[r.status], r.score or 0.0, r.section_path, r.section_id))
    return rows


def render_csv(rows: Iterable[SuggestedRow]) -> bytes:
    """The suggested map as `[feed] category_map` reads it (UTF-8 with a BOM, so Excel opens it)."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";", lineterminator="\n")
    w.writerow(HEADER)
    for r in rows:
        w.writerow(r.cells())
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


@dataclass(frozen=True)
class Summary:
    """How the sections fared."""

    good: int
    weak: int
    none: int
    kept: int
    inherit: int  # of the unmatched, how many inherit an ancestor's category anyway

    def text(self, min_score: float) -> str:
        """One paragraph for the terminal."""
        total = self.good + self.weak + self.none + self.kept
        return (
            f"{total} sections: {self.good} matched well (score >= {GOOD_SCORE}), "
            f"{self.weak} weakly ({min_score:g}..{GOOD_SCORE}: check them), "
            f"{self.none} not matched (below {min_score:g}: fill portal_id by hand"
            f"{f'; {self.inherit} of them inherit a parent' if self.inherit else ''}), "
            f"{self.kept} kept from the current map"
        )


def summarise(rows: Sequence[SuggestedRow], sections: Sequence[Category]) -> Summary:
    """Counts by status; an unmatched section under a mapped ancestor still gets a category."""
    by_status = {s: sum(r.status == s for r in rows) for s in STATUS_ORDER}
    mapped = {r.section_id for r in rows if r.portal_id is not None}
    chains = section_paths(sections)
    inherit = sum(
        1
        for r in rows
        if r.status == "none" and any(c.id in mapped for c in chains.get(r.section_id, [])[:-1])
    )
    return Summary(by_status["good"], by_status["weak"], by_status["none"], by_status["kept"], inherit)
