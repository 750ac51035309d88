"""What a feed check reports: problems with their line and level (error or warning), and the tables of
tags real Satu/Prom feeds carry (quiet ones, and misspellings with a hint)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_PROBLEMS = 10000  # a hopeless file should not print a million lines

ERROR = "error"  # what Satu refuses or mangles
WARNING = "warning"  # what Satu takes, but is likely not what the seller meant (or is ignored)

# Tags real Satu/Prom feeds carry that this project's schema does not model: ignored without a word.
QUIET_OFFER_TAGS = frozenset(
    {"pickup", "delivery", "store", "regions", "country_of_origin", "delivery-options"}
)
# Known misspellings and misplacements, with what Satu reads instead.
HINTS = {
    "stock_quantity": "Satu reads <quantity_in_stock>",
    "quantity": "Satu reads <quantity_in_stock>",
    "count": "Satu reads <quantity_in_stock>",
    "amount": "Satu reads <quantity_in_stock>",
    "available": 'availability is the offer attribute available="true|…", not a child tag',
    "categoryid": "the tag is <categoryId>",
    "currencyid": "the tag is <currencyId>",
    "vendorcode": "the tag is <vendorCode>",
    "image": "pictures go in <picture>",
    "pictures": "pictures go in <picture>, one tag each",
    "old_price": "the tag is <oldprice>",
    "oldPrice": "the tag is <oldprice>",
}


@dataclass(frozen=True)
class FeedProblem:
    """One problem: where (line, and the offer or category id when known), what, and how bad."""

    line: int
    message: str
    where: str = ""
    level: str = ERROR

    def __str__(self) -> str:
        label = "warning: " if self.level == WARNING else ""
        return f"line {self.line}: {label}{self.where + ': ' if self.where else ''}{self.message}"

    def as_dict(self) -> dict:
        """JSON-friendly form."""
        return {"line": self.line, "where": self.where, "message": self.message, "level": self.level}


@dataclass
class FeedReport:
    """Outcome of a check: counts and every problem found (capped at MAX_PROBLEMS)."""

    offers: int = 0
    categories: int = 0
    problems: list[FeedProblem] | None = None
    truncated: bool = False

    @property
    def errors(self) -> list[FeedProblem]:
        """What Satu refuses or mangles."""
        return [p for p in self.problems or () if p.level == ERROR]

    @property
    def warnings(self) -> list[FeedProblem]:
        """What Satu takes, but the seller should look at."""
        return [p for p in self.problems or () if p.level == WARNING]

    @property
    def ok(self) -> bool:
        """True when no error was found (warnings allowed)."""
        return not self.errors
