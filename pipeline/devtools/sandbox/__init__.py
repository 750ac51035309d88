"""A local Satu.kz sandbox: an HTTP server that behaves like the seller API, quirks included.

It is a test and demo tool (nobody can reach the real Satu from our machines). It binds to 127.0.0.1
by default, keeps its state in SQLite under a state folder (it survives restarts), and reproduces
every quirk listed in docs/satu-api.md:

- HTML 401 for a missing or wrong token (403 for a read-only token that tries to write);
- errors as HTTP 200 `{"error": "…"}`, HTTP 400 `{"error": {"message": "…"}}`, per-item `errors`;
- prices as strings with `₸`, spaces or NBSP as thousands separators and a decimal comma;
- strict date parameters: anything but `YYYY-MM-DDTHH:MM:SS` (a `Z`, milliseconds) silently
  returns zero orders; response dates carry `+05:00` and microseconds;
- an inclusive `last_id` cursor, newest first, `limit` ≤ 100;
- `edit_by_external_id` wants a bare JSON array (an object → "expected a list"), ≤ 100 items, and
  answers `processed_ids` + per-item `errors` (unknown external ids, bad fields);
- `pending` cannot be set; `cancellation_reason` is validated; some reasons need `cancellation_text`;
- `import_url` really downloads the feed (loopback URLs only), parses it and creates/updates
  products in a background thread; a second import while one runs → HTTP 400; the status goes
  reported as Satu plays it: `SUCCESS` with all counters 0 first, then `PARTIAL` with zeros, then
  the real `SUCCESS` / `PARTIAL` (bad offers, unreachable pictures) / `FAIL`;
- HTML 404 pages; a price step with an empty `minimum_order_quantity` refused; import starts
  rate-limited (`import_min_gap`); import errors in the live shape
  (`{"download_images": {"code": 2004, "extra": {…}}}`, not counted in `with_errors_count`) and the
  `not_in_file` counter;
- the shop's delivery/payment options and order statuses (custom `custom-<id>` ones too);
- the documented full order schema, order lines with fractional quantities, products made in the
  cabinet (no `external_id`), any client field possibly empty.

docs/satu-api.md lists every quirk with its source (documented or assumed).

Tests drive it in-process (`SandboxServer(tmp).start()`; `fail_next`, `create_orders`,
`modify_order`, `products()`, `orders()`); operators run `python run.py satu-sandbox`.
Control endpoints under `/_sandbox/` do the same over HTTP (loopback only; they need the header
`X-Sandbox: 1` or the token, so a web page cannot post to them; request bodies are capped at 8 MiB).
"""

from pipeline.devtools.sandbox.feed_import import check_offer, parse_feed
from pipeline.devtools.sandbox.orders_gen import generate_orders
from pipeline.devtools.sandbox.server import SandboxServer
from pipeline.devtools.sandbox.vocab import (
    CANCELLATION_REASONS,
    STATUS_NAMES,
    format_price,
    is_loopback_url,
    satu_time,
)

__all__ = [
    "CANCELLATION_REASONS",
    "STATUS_NAMES",
    "SandboxServer",
    "check_offer",
    "format_price",
    "generate_orders",
    "is_loopback_url",
    "parse_feed",
    "satu_time",
]
