"""The HTTP client every connector and pusher uses.

``make_client()`` builds an ``HttpClient`` around ``httpx.Client`` with an injectable
transport (tests and the sandbox pass ``httpx.MockTransport``), timeouts, a User-Agent, the
connector's auth, proactive rate limiting (``hub.http.ratelimit``) and tenacity retries on
retriable errors only (429, 5xx, timeouts, connection resets), honouring ``Retry-After``
(seconds or HTTP date) with capped exponential backoff and jitter.

Every request and retry is counted in ``HttpClient.stats``. URLs are logged and raised
without their query string, and known secret values are scrubbed from error text, because
some APIs (BuiltWith) take the key as a query parameter.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import tenacity

from hub import __version__
from hub.errors import (
    AmbiguousWriteError,
    APIError,
    FatalAPIError,
    HubError,
    RetriableAPIError,
)
from hub.http.ratelimit import Limiter, RateLimit, shared_limiter

log = logging.getLogger("hub.http")

USER_AGENT = f"hub/{__version__} (+https://github.com/hub-cs/hub)"


@dataclass
class RequestStats:
    """Counters for one client: requests sent, retries, 429s seen, seconds throttled."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    waited_s: float = 0.0
    by_status: Counter[int] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "waited_s": round(self.waited_s, 3),
        }


@dataclass
class RetryPolicy:
    """How hard to retry: attempts, backoff base and cap, and the longest Retry-After obeyed."""

    attempts: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0


def scrub_url(url: httpx.URL | str) -> str:
    """The URL without its query string (which may carry a key)."""
    url = httpx.URL(str(url))
    return str(url.copy_with(query=None, fragment=None))


class _ScrubQueryFilter(logging.Filter):
    """httpx logs every request URL at INFO, query string included; drop the query.

    Some APIs take the key as a query parameter (BuiltWith's ``KEY``), so a root logger
    at INFO (or pytest's caplog) would otherwise record the key with every request.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                scrub_url(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_ScrubQueryFilter())


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if value is None or value == "":
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def error_text(response: httpx.Response, limit: int = 200) -> str:
    """A short human message from an error body, JSON or ``text/plain``."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        text = response.text.strip().replace("\n", " ")
        return text[:limit] or response.reason_phrase
    message = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            message = err.get("message") or err.get("code")
        elif isinstance(err, str):
            message = err
            if body.get("description"):
                message = f"{err}: {body['description']}"
        message = message or body.get("message") or body.get("description")
        if not message and isinstance(body.get("errors"), list) and body["errors"]:
            first = body["errors"][0]
            message = (
                first.get("detail") or first.get("message") or first.get("title")
                if isinstance(first, dict)
                else str(first)
            )
        if not message and isinstance(body.get("Errors"), list) and body["Errors"]:
            first = body["Errors"][0]
            message = first.get("Message") if isinstance(first, dict) else str(first)
    message = str(message or response.reason_phrase)
    return message.replace("\n", " ")[:limit]


def default_classify(response: httpx.Response) -> HubError | None:
    """Map an HTTP status to the hub's errors: 429/5xx/408 retriable, other 4xx fatal."""
    status = response.status_code
    if status < 400:
        return None
    text = error_text(response)
    where = f"{response.request.method} {scrub_url(response.request.url)}"
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429:
        return RetriableAPIError(
            f"{where} was rate limited (429): {text}", status=status, retry_after=retry_after
        )
    if status >= 500 or status == 408:
        return RetriableAPIError(
            f"{where} failed with {status}: {text}", status=status, retry_after=retry_after
        )
    if status in (401, 403):
        return FatalAPIError(
            f"{where} was refused ({status}): {text}",
            status=status,
            hint="check the credential and its scopes in hub.toml, then run 'hub check'",
        )
    return FatalAPIError(f"{where} failed with {status}: {text}", status=status)


class HttpClient:
    """An ``httpx.Client`` with rate limits, retries, counters and scrubbed errors."""

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        rate_limits: Iterable[RateLimit] = (),
        limiter_scope: str = "default",
        classify: Callable[[httpx.Response], HubError | None] = default_classify,
        observe: Callable[[httpx.Response, HttpClient], None] | None = None,
        retry: RetryPolicy | None = None,
        headers: dict[str, str] | None = None,
        secrets: Iterable[str] = (),
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            follow_redirects=False,
        )
        self.limiters: list[Limiter] = [shared_limiter(limiter_scope, r) for r in rate_limits]
        self.classify = classify
        self.observe = observe
        self.retry = retry or RetryPolicy()
        self.stats = RequestStats()
        self._secrets = [s for s in secrets if s and len(s) >= 4]
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"<HttpClient {self.base_url}>"

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def scrub(self, text: str) -> str:
        """Remove every known secret value from ``text``."""
        for secret in self._secrets:
            text = text.replace(secret, "**********")
        return text

    def limiter(self, name: str) -> Limiter | None:
        for limiter in self.limiters:
            if limiter.rate.name == name:
                return limiter
        return None

    def pause(self, seconds: float, name: str | None = None) -> None:
        """Hold requests (all budgets, or one by name) for ``seconds``."""
        for limiter in self.limiters:
            if name is None or limiter.rate.name == name:
                limiter.pause(seconds)

    # -- requests ---------------------------------------------------------------------

    def _send_once(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        path = httpx.URL(url).path if url.startswith("http") else url
        for limiter in self.limiters:
            if limiter.rate.applies(path):
                self.stats.waited_s += limiter.acquire()
        self.stats.requests += 1
        started = time.perf_counter()
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            error = RetriableAPIError(
                f"{method} {scrub_url(self._client.build_request(method, url).url)} timed out ({type(exc).__name__})"
            )
            error.unsent = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            raise error from None
        except httpx.TransportError as exc:
            error = RetriableAPIError(
                self.scrub(
                    f"{method} {scrub_url(self._client.build_request(method, url).url)} "
                    f"connection failed: {type(exc).__name__}: {exc}"
                )
            )
            error.unsent = isinstance(exc, httpx.ConnectError)
            raise error from None
        elapsed = (time.perf_counter() - started) * 1000
        self.stats.by_status[response.status_code] += 1
        log.debug(
            "%s %s -> %s (%.0f ms)",
            method,
            scrub_url(response.request.url),
            response.status_code,
            elapsed,
        )
        if self.observe is not None:
            self.observe(response, self)
        if response.status_code == 429:
            self.stats.throttled += 1
        error = self.classify(response)
        if error is not None:
            error.message = self.scrub(error.message)
            if isinstance(error, RetriableAPIError) and error.retry_after:
                # Everyone sharing this credential should hold off, not just this call.
                self.pause(min(error.retry_after, self.retry.max_retry_after))
            raise error
        return response

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.retry.max_retry_after)
        backoff = min(
            self.retry.backoff_cap, self.retry.backoff_base * 2 ** (state.attempt_number - 1)
        )
        return backoff / 2 + random.uniform(0, backoff / 2)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.info("retrying after: %s (attempt %d)", exc, state.attempt_number)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send a request; retries retriable errors and raises ``APIError`` on failure.

        ``idempotent=False`` marks a write that must not happen twice: it is resent only when
        it certainly did not reach the server (429, connection refused); otherwise it raises
        ``AmbiguousWriteError`` and the caller reconciles.
        """
        kwargs: dict[str, Any] = {}
        if params is not None:
            kwargs["params"] = params
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        if headers:
            kwargs["headers"] = headers

        def retriable(exc: BaseException) -> bool:
            if not isinstance(exc, RetriableAPIError):
                return False
            return idempotent is not False or _unsent(exc)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(retriable),
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._send_once, method.upper(), url, kwargs)
        except RetriableAPIError as exc:
            if idempotent is False and not _unsent(exc):
                raise AmbiguousWriteError(
                    f"{exc.message} (the write may have happened; not resent)",
                    status=exc.status,
                    retry_after=exc.retry_after,
                ) from None
            exc.message = f"{exc.message} (gave up after {self.retry.attempts} attempts)"
            raise

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)


def _unsent(exc: BaseException) -> bool:
    """The request certainly did not reach (or was refused before executing by) the server."""
    if getattr(exc, "unsent", False):
        return True
    return getattr(exc, "status", None) == 429


def make_client(**kwargs: Any) -> HttpClient:
    """Build an ``HttpClient``; see its arguments. One factory so every caller is alike."""
    return HttpClient(**kwargs)


__all__ = [
    "APIError",
    "HttpClient",
    "RequestStats",
    "RetryPolicy",
    "default_classify",
    "error_text",
    "make_client",
    "parse_retry_after",
    "scrub_url",
]
