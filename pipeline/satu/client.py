"""The Satu.kz seller API client (httpx).

Every quirk of the API (see docs/satu-api.md) is absorbed here so the stages see plain Python:

- errors come as HTML 401/403, HTTP 200 with `{"error": "…"}`, HTTP 400 with
  `{"error": {"message": "…"}}` and per-item `errors`; they become `SatuAuthError` / `SatuApiError`,
  and a write counts only for ids listed in `processed_ids`;
- 429, 5xx, timeouts and dropped connections are retried with exponential backoff and jitter,
  honouring `Retry-After`, at most `max_retries` times, then `RetryableError`;
- date parameters are sent exactly as `YYYY-MM-DDTHH:MM:SS` (a `Z` or milliseconds make Satu
  silently return nothing), in `[satu] query_timezone` (UTC by default);
- `X-LANGUAGE` (`[satu] language`) asks for Satu's texts in one language;
- the `last_id` cursor is inclusive, so pages overlap by one and are de-duplicated by id;
- writes go in batches of at most 100.

The token is sent in the Authorization header only; it never appears in a log line, an exception
message or `repr()` (any echo of it in a server reply is masked).
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote

import httpx

from pipeline.errors import AuthError, PipelineError, Problem, RetryableError, SettingsError, StopError
from pipeline.satu.api import MAX_BATCH, format_date, import_finished, query_zone

log = logging.getLogger("pipeline.satu")


class SatuError(PipelineError):
    """Base of the Satu client's errors."""


class SatuAuthError(SatuError, AuthError, StopError):
    """HTTP 401/403: the token expired or lacks rights. Nothing will work until it is replaced."""


class SatuApiError(SatuError):
    """Satu refused a request (HTTP 200/400 with an error, 404, other 4xx). Retrying will not help."""

    def __init__(self, message: str, *, status: int | None = None, path: str = "", payload: Any = None):
        self.status = status
        self.path = path
        self.payload = payload
        self.message = message
        where = f" ({path}, HTTP {status})" if path else ""
        super().__init__(f"Satu API error{where}: {message}")


@dataclass
class EditResult:
    """The outcome of a product edit: only `processed_ids` were accepted; `errors` says why others were not.

    `retryable` is True when some items failed for a transient reason (Satu unreachable after every
    retry) rather than because Satu refused them.
    """

    processed_ids: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    retryable: bool = False
    #: the refusals of whole batches (HTTP 404, 400 …), kept by type for the caller's console line
    batch_errors: list[SatuApiError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every item was accepted."""
        return not self.errors


@dataclass
class StatusResult:
    """The outcome of `orders/set_status`: `processed` = ids Satu changed; `already` = ids it left
    alone without an error, which on Satu means "already at this or a later status" (seen live):
    re-read such an order and confirm it rather than retrying and parking it."""

    processed: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ShopOption:
    """One delivery option, payment option or order status of the shop, as Satu lists it.

    `value` is what other calls take (an order status such as `received` or `custom-130159`; for
    delivery and payment options their id as text); `custom` marks a seller's own status.
    """

    id: str
    name: str
    value: str
    custom: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def option_of(item: dict[str, Any]) -> ShopOption:
    """Read one list item whatever its keys (the reply shapes of the options lists are not documented:
    `name`/`title`/`text` for the label, `status`/`value` for a status value)."""
    oid = str(item.get("id", ""))
    name = str(item.get("name") or item.get("title") or item.get("text") or "")
    value = str(item.get("status") or item.get("value") or oid)
    custom = str(item.get("type") or "") == "custom" or value.startswith("custom-")
    known = ("id", "name", "title", "text", "status", "value", "type")
    return ShopOption(oid, name, value, custom, {k: v for k, v in item.items() if k not in known})


# --- pure helpers -------------------------------------------------------------------------------------


def _chunks(seq: list[Any], size: int = MAX_BATCH) -> Iterator[list[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _error_message(error: Any) -> str:
    """Flatten any of Satu's error shapes to one line."""
    if isinstance(error, dict):
        if "message" in error:
            return str(error["message"])
        return "; ".join(f"{k}: {_error_message(v)}" for k, v in error.items())
    if isinstance(error, list):
        return "; ".join(_error_message(e) for e in error)
    return str(error)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), if any."""
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# --- the client ---------------------------------------------------------------------------------------


class SatuClient:
    """A thin, careful client of the Satu seller API. Use as a context manager or call `close()`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 120.0,
        transport: httpx.BaseTransport | None = None,
        query_timezone: tzinfo = UTC,
        language: str = "ru",
        import_wait: float = 900.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self._token = token
        #: the zone Satu reads query dates in (`[satu] query_timezone`)
        self.query_timezone = query_timezone
        #: how long `wait_import` polls by default, seconds (`[satu] import_wait_minutes`)
        self.import_wait = import_wait
        #: requests actually sent (each retry counts); handy for benchmarks and tests
        self.requests = 0
        #: an optional shared request budget (`pipeline.satu.budget`): one token per request sent
        self.budget: Any = None
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": "torgsoft-satu/0.1",
                "X-LANGUAGE": language,
            },
        )

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> SatuClient:
        """A client for `[satu] base_url` with the token from the env var named by `satu.token_env`."""
        s = settings.satu
        try:
            zone = query_zone(s.query_timezone)
        except ValueError as exc:
            raise SettingsError(
                Problem("satu.query_timezone", str(exc), 'write "UTC", "+05:00" or a name like "Asia/Almaty"')
            ) from None
        return cls(
            s.base_url,
            settings.secret("satu.token_env"),
            timeout=s.timeout,
            max_retries=s.max_retries,
            query_timezone=zone,
            language=s.language,
            import_wait=s.import_wait_minutes * 60,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"SatuClient({self.base_url!r}, token=***)"

    def __enter__(self) -> SatuClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # --- transport ----------------------------------------------------------------------------------

    def _mask(self, text: str) -> str:
        """Never let the token out, even if a server echoes it back."""
        return text.replace(self._token, "***") if self._token else text

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Backoff before retry number `attempt` (1-based): Retry-After if given, else base·2^(n-1) with jitter (50–100 %)."""
        if response is not None:
            wait = _retry_after(response)
            if wait is not None:
                return min(wait, self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        allow_404: bool = False,
    ) -> Any:
        """Send one API call with retries; return the decoded JSON reply or raise a project error."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            response: httpx.Response | None = None
            problem = ""
            try:
                if self.budget is not None:
                    self.budget.take()
                self.requests += 1
                response = self._http.request(method, path, params=params or None, json=json_body)
            except httpx.TimeoutException as exc:
                problem = f"timeout ({type(exc).__name__})"
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__}: {self._mask(str(exc))})"
            if response is not None:
                status = response.status_code
                log.debug("%s %s → %s", method, path, status)
                if status in (401, 403):
                    raise SatuAuthError(
                        f"Satu API: token expired or lacks rights (HTTP {status} on {path}); "
                        "make a new token with read/write rights for products and orders"
                    )
                if status == 429 or status >= 500:
                    problem = f"HTTP {status}"
                else:
                    return self._decode(response, path, allow_404)
            attempt += 1
            if attempt > self.max_retries:
                raise RetryableError(
                    f"Satu API {method} {path}: {problem}, gave up after {self.max_retries} retries"
                )
            wait = self._delay(attempt, response)
            log.info(
                "Satu API %s %s: %s; retry %d/%d in %.1f s",
                method,
                path,
                problem,
                attempt,
                self.max_retries,
                wait,
            )
            time.sleep(wait)

    def _decode(self, response: httpx.Response, path: str, allow_404: bool) -> Any:
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            data = None
        if status == 404 and allow_404:
            return None
        if isinstance(data, dict) and data.get("error") not in (None, "", {}):
            # HTTP 200 with {"error": "…"} and HTTP 400 with {"error": {"message": "…"}} alike
            raise SatuApiError(
                self._mask(_error_message(data["error"])), status=status, path=path, payload=data
            )
        if status >= 400 and isinstance(data, dict) and data.get("message"):
            # the refusal shape of import_url: {"status": "error", "message": "…"}
            raise SatuApiError(self._mask(str(data["message"])), status=status, path=path, payload=data)
        if status >= 400:
            if data is None and "html" in response.headers.get("content-type", "").lower():
                # Satu answers 404 (and 401/403) with an HTML page: say what, not the markup
                raise SatuApiError(
                    f"HTTP {status} {response.reason_phrase} (an HTML page)", status=status, path=path
                )
            snippet = self._mask(response.text[:200].strip()) if data is None else self._mask(str(data)[:200])
            raise SatuApiError(snippet or response.reason_phrase, status=status, path=path, payload=data)
        if data is None:
            raise SatuApiError(
                f"reply is not JSON: {self._mask(response.text[:120])!r}", status=status, path=path
            )
        return data

    # --- paging ---------------------------------------------------------------------------------------

    def _paged(self, path: str, key: str, params: dict[str, Any], limit: int) -> Iterator[dict]:
        """Walk an inclusive, newest-first `last_id` cursor; yield each item once."""
        seen: set[Any] = set()
        last_id: Any = None
        while True:
            page = self._request("GET", path, params={**params, "limit": limit, "last_id": last_id}) or {}
            items = page.get(key) or []
            fresh = [it for it in items if it.get("id") not in seen]
            for it in fresh:
                seen.add(it.get("id"))
                yield it
            # Stop only when a page brings nothing new: a short page is not proof of the end (Satu may
            # cap `limit` lower than asked), and the inclusive cursor makes the last page repeat one id.
            if not fresh:
                return
            last_id = min(it["id"] for it in items)

    # --- orders ---------------------------------------------------------------------------------------

    def iter_orders(
        self,
        *,
        last_modified_from: datetime | str | None = None,
        status: str | None = None,
        date_from: datetime | str | None = None,
        date_to: datetime | str | None = None,
        last_modified_to: datetime | str | None = None,
        limit: int = MAX_BATCH,
    ) -> Iterator[dict]:
        """Every order (raw dicts, newest first, each once), modified at or after `last_modified_from`
        if given. Dates may be datetimes (aware ones are converted to the query zone, naive ones are
        taken as in it) or ISO strings."""
        dates = {
            "last_modified_from": last_modified_from,
            "last_modified_to": last_modified_to,
            "date_from": date_from,
            "date_to": date_to,
        }
        params: dict[str, Any] = {k: format_date(v, self.query_timezone) for k, v in dates.items() if v}
        params["status"] = status
        yield from self._paged("/orders/list", "orders", params, min(limit, MAX_BATCH))

    def get_order(self, order_id: int | str) -> dict:
        """One order as Satu returns it (the inner `order` object)."""
        data = self._request("GET", f"/orders/{order_id}")
        return data.get("order", data)

    def set_status(
        self,
        ids: Iterable[int],
        status: str,
        cancellation_reason: str | None = None,
        cancellation_text: str | None = None,
    ) -> list[int]:
        """Set an order status; returns the ids Satu processed (only those count as done)."""
        return self.set_status_result(ids, status, cancellation_reason, cancellation_text).processed

    def set_status_result(
        self,
        ids: Iterable[int],
        status: str,
        cancellation_reason: str | None = None,
        cancellation_text: str | None = None,
    ) -> StatusResult:
        """Set an order status, in batches of ≤ 100; the typed result separates the ids Satu changed
        from those it left alone without an error (already at this or a later status). A refusal
        (HTTP 200/400 with an error) raises SatuApiError as before."""
        result = StatusResult()
        for chunk in _chunks([int(i) for i in ids]):
            body: dict[str, Any] = {"ids": chunk, "status": status}
            if cancellation_reason is not None:
                body["cancellation_reason"] = cancellation_reason
            if cancellation_text is not None:
                body["cancellation_text"] = cancellation_text
            data = self._request("POST", "/orders/set_status", json_body=body)
            done = {int(i) for i in data.get("processed_ids") or []}
            result.processed += [i for i in chunk if i in done]
            result.already += [i for i in chunk if i not in done]
        return result

    def save_declaration(self, order_id: int | str, declaration_id: str, delivery_type: str) -> bool:
        """Attach a waybill (TTN) number to an order; True when Satu confirms."""
        data = self._request(
            "POST",
            "/delivery/save_declaration_id",
            json_body={
                "order_id": int(order_id),
                "declaration_id": str(declaration_id),
                "delivery_type": delivery_type,
            },
        )
        return str(data.get("status", "")).lower() == "success"

    # --- shop options ---------------------------------------------------------------------------------

    def _options(self, path: str) -> list[ShopOption]:
        data = self._request("GET", path) or {}
        items = (
            data if isinstance(data, list) else next((v for v in data.values() if isinstance(v, list)), [])
        )
        return [option_of(it) for it in items if isinstance(it, dict)]

    def delivery_options(self) -> list[ShopOption]:
        """The shop's delivery options (`delivery_options/list`)."""
        return self._options("/delivery_options/list")

    def payment_options(self) -> list[ShopOption]:
        """The shop's payment options (`payment_options/list`)."""
        return self._options("/payment_options/list")

    def order_status_options(self) -> list[ShopOption]:
        """The shop's order statuses, default and custom (`order_status_options/list`)."""
        return self._options("/order_status_options/list")

    # --- products -------------------------------------------------------------------------------------

    def iter_products(self, *, group_id: int | None = None, limit: int = MAX_BATCH) -> Iterator[dict]:
        """Every product of the shop (raw dicts, newest first)."""
        yield from self._paged("/products/list", "products", {"group_id": group_id}, min(limit, MAX_BATCH))

    def get_product(self, product_id: int | str) -> dict | None:
        """One product by Satu's own id, or None when there is none."""
        data = self._request("GET", f"/products/{product_id}", allow_404=True)
        return None if data is None else data.get("product", data)

    def product_by_external_id(self, external_id: str) -> dict | None:
        """One product by its external id (the feed's offer id), or None when Satu has none."""
        data = self._request(
            "GET", f"/products/by_external_id/{quote(str(external_id), safe='')}", allow_404=True
        )
        return None if data is None else data.get("product", data)

    def edit_products(self, items: list[dict]) -> EditResult:
        """Edit products by external id (`id` = offer id), in batches of ≤ 100.

        Never raises for a refused batch: its items land in `errors` (Satu's per-item errors, or the
        batch's error message), and a batch that stayed unreachable after every retry marks its items
        and every later one with `retryable = True`. Only `SatuAuthError` is raised (nothing can
        work without a token). An id counts as done only when Satu lists it in `processed_ids`.
        """
        result = EditResult()
        chunks = list(_chunks(list(items)))
        for n, chunk in enumerate(chunks):
            sent = [str(it["id"]) for it in chunk]
            before = self.requests
            try:
                data = self._edit_chunk(chunk)
            except RetryableError as exc:
                result.requests += self.requests - before
                result.retryable = True
                for later in chunks[n:]:
                    for it in later:
                        result.errors[str(it["id"])] = str(exc)
                return result
            except SatuApiError as exc:
                result.requests += self.requests - before
                result.batch_errors.append(exc)
                for ext in sent:
                    result.errors[ext] = exc.message
                continue
            result.requests += self.requests - before
            processed = {str(i) for i in data.get("processed_ids") or []}
            errors = data.get("errors") or {}
            if isinstance(errors, list):  # some replies list [{"id": …, "message": …}]
                errors = {str(e.get("id")): e for e in errors if isinstance(e, dict)}
            for ext in sent:
                if ext in processed:
                    result.processed_ids.append(ext)
                else:
                    err = errors.get(ext)
                    result.errors[ext] = _error_message(err) if err else "not in processed_ids"
        return result

    def _edit_chunk(self, chunk: list[dict]) -> Any:
        """One edit call. A whole batch refused with HTTP 200 and an error is often Satu's transient
        "try later": sent once more before its items count as refused (a second refusal stands)."""
        try:
            return self._request("POST", "/products/edit_by_external_id", json_body=chunk)
        except SatuApiError as exc:
            if exc.status not in (None, 200):
                raise
        time.sleep(self.backoff_base)
        return self._request("POST", "/products/edit_by_external_id", json_body=chunk)

    def import_url(self, url: str, **opts: Any) -> str:
        """Start an import of a feed by URL; returns the import id.

        Options as Satu names them: `force_update`, `only_available`, `mark_missing_product_as`,
        `updated_fields`. A second import while one runs is refused (SatuApiError, HTTP 400).
        """
        data = self._request("POST", "/products/import_url", json_body={"url": url, **opts})
        import_id = data.get("id")
        if import_id in (None, ""):
            raise SatuApiError(f"import_url reply has no id: {data!r}", path="/products/import_url")
        return str(import_id)

    def import_status(self, import_id: str) -> dict:
        """The status reply of an import (`import_finished(reply)` says whether it is final)."""
        return self._request("GET", f"/products/import/status/{import_id}")

    def wait_import(self, import_id: str, *, poll: float = 2.0, timeout: float | None = None) -> dict:
        """Poll an import until it is really final (see `import_finished`: a first SUCCESS with zero
        counters is not) and return the reply with `status` upper-cased (`SUCCESS`, `PARTIAL`,
        `FATAL`, `FAIL`); RetryableError when it is still running after `timeout` seconds (default:
        `import_wait`, at least 15 minutes from the settings: a live import took ~9.5)."""
        limit = self.import_wait if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            status = self.import_status(import_id)
            final = import_finished(status)
            if final:
                return {**status, "status": final}
            if time.monotonic() > deadline:
                raise RetryableError(f"Satu import {import_id} still running after {limit:.0f} s")
            time.sleep(poll)
