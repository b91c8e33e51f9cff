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

import logging
import random
import threading
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
    DeferredError,
    HubError,
    RetriableAPIError,
    Stopped,
)
from hub.http.ratelimit import Limiter, RateLimit, shared_limiter
from hub.http.responses import (
    Failure,
    default_classify,
    error_text,
    expand_secrets,
    json_of,
    network_hint,
    parse_retry_after,
    scrub_url,
)

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
    """A longer Retry-After defers the stream to the next run instead of blocking this one."""


_SENT_ERRORS = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
    httpx.CloseError,
)
IDEMPOTENT_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
WaitCallback = Callable[[float, str], None]
"""``(seconds, reason)``: told before every wait of a second or more (progress lines)."""


class HttpClient:
    """An ``httpx.Client`` with rate limits, retries, counters and scrubbed errors.

    Writes: a POST or PATCH is resent only when it certainly did not reach the server
    (connection refused, 429). After a read timeout, a reset after sending or a 5xx it
    raises ``AmbiguousWriteError`` and the caller reconciles. Reads that POST (searches)
    say ``idempotent=True``; a request with an ``Idempotency-Key`` header is safe to resend.

    Waits: ``Retry-After`` up to ``RetryPolicy.max_retry_after`` is waited out in full and
    announced (log and ``on_wait``); a longer one raises ``DeferredError`` at once (the
    stream goes on at the next run). Every wait wakes when ``stop`` is set (``Stopped``).
    """

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        connect_timeout: float | None = None,
        rate_limits: Iterable[RateLimit] = (),
        limiter_scope: str = "default",
        budget_path: str | None = None,
        classify: Callable[[httpx.Response], HubError | None] = default_classify,
        observe: Callable[[httpx.Response, HttpClient], None] | None = None,
        retry: RetryPolicy | None = None,
        headers: dict[str, str] | None = None,
        secrets: Iterable[str] = (),
        sleep: Callable[[float], None] | None = None,
        require_json: bool = False,
        label: str = "",
        on_wait: WaitCallback | None = None,
        stop: threading.Event | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        kwargs: dict[str, Any] = {}
        if transport is None and self.base_url.startswith("http://"):
            # Plain HTTP needs no TLS context (building one costs 25-30 ms per client).
            kwargs["verify"] = False
        self._client = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            transport=transport,
            timeout=httpx.Timeout(
                timeout, connect=connect_timeout if connect_timeout else min(timeout, 10.0)
            ),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            follow_redirects=False,
            **kwargs,
        )
        # A fake in this process cannot be shared with other processes: keep its budget here.
        shared_path = budget_path if transport is None else None
        self.limiters: list[Limiter] = [
            shared_limiter(limiter_scope, r, path=shared_path) for r in rate_limits
        ]
        self.classify = classify
        self.observe = observe
        self.retry = retry or RetryPolicy()
        self.stats = RequestStats()
        self._stats_lock = threading.Lock()
        self._secrets = expand_secrets(secrets)
        self._sleep = sleep
        self.require_json = require_json
        self.label = label or self.base_url
        self.on_wait = on_wait
        self.stop = stop or threading.Event()

    def __repr__(self) -> str:
        return f"<HttpClient {self.base_url}>"

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def scrub(self, text: str) -> str:
        """Remove every known secret value (and its Basic/URL-encoded forms) from ``text``."""
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

    def sleep(self, seconds: float, reason: str = "", *, real: bool = False) -> None:
        """Wait, visibly when it is long, and wake at once when ``stop`` is set.

        ``real``: a wait measured against the clock (the rate limiter's), which an injected
        ``sleep`` (tests skipping backoff) must not shorten into a busy loop.
        """
        if seconds <= 0:
            return
        if seconds >= 1 and reason:
            message = f"waiting {seconds:.0f} s ({self.label} {reason})"
            if self.on_wait is not None:
                self.on_wait(seconds, message)
            (log.warning if seconds >= 5 and reason == "Retry-After" else log.info)(
                "%s", message, extra={"fields": {"wait_s": round(seconds, 1)}}
            )
        if self._sleep is not None and not real:
            self._sleep(seconds)
        elif self.stop.wait(seconds):
            raise Stopped(f"{self.label}: stopped while {reason or 'waiting'}")
        if self.stop.is_set():
            raise Stopped(f"{self.label}: stopped while {reason or 'waiting'}")

    # -- requests ---------------------------------------------------------------------

    def _send_once(
        self, method: str, url: str, kwargs: dict[str, Any], idempotent: bool, expect_json: bool
    ) -> httpx.Response:
        if self.stop.is_set():
            raise Stopped(f"{self.label}: stopped")
        path = httpx.URL(url).path if url.startswith("http") else url
        for limiter in self.limiters:
            if limiter.rate.applies(path):
                waited = limiter.acquire(
                    sleep=lambda s, n=limiter.rate.name: self.sleep(
                        s, f"pacing, {n} budget", real=True
                    )
                )
                with self._stats_lock:
                    self.stats.waited_s += waited
        with self._stats_lock:  # a read sent ahead (hub.http.readahead) counts from its thread
            self.stats.requests += 1
        started = time.perf_counter()
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            where = self._where(method, url, exc)
            sent = isinstance(exc, _SENT_ERRORS)
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
            text = self.scrub(f"{where} {kind}: {type(exc).__name__}: {exc}".rstrip(": "))
            if sent and not idempotent:
                raise AmbiguousWriteError(
                    f"{text}; the write may or may not have happened",
                    hint="not resent; the caller reconciles before writing again",
                ) from None
            raise RetriableAPIError(text, hint=network_hint(exc)) from None
        elapsed = (time.perf_counter() - started) * 1000
        with self._stats_lock:
            self.stats.by_status[response.status_code] += 1
        # The request line is put in words only when it is shown (building it for every
        # request cost as much as decoding a small page).
        if log.isEnabledFor(logging.DEBUG):
            where = f"{method} {scrub_url(response.request.url)}"
            log.debug("%s -> %s (%.0f ms)", where, response.status_code, elapsed)
        if self.observe is not None:
            self.observe(response, self)
        if response.status_code == 429:
            with self._stats_lock:
                self.stats.throttled += 1
        error = self.classify(response)
        if error is None and expect_json and 200 <= response.status_code < 300:
            error = self._garbage(response)
        if error is not None:
            error.message = self.scrub(error.message)
            if error.hint:
                error.hint = self.scrub(error.hint)
            if (
                isinstance(error, RetriableAPIError)
                and not idempotent
                and response.status_code != 429
            ):
                # The server may have acted before failing (a 502 from a proxy, a 500 after
                # the commit, a 200 whose body was cut): resending could write twice.
                raise AmbiguousWriteError(
                    f"{error.message}; the write may or may not have happened",
                    status=error.status,
                    hint="not resent; the caller reconciles before writing again",
                )
            if isinstance(error, RetriableAPIError) and error.retry_after:
                if error.retry_after > self.retry.max_retry_after:
                    raise DeferredError(
                        f"{error.message}: the API asks to wait {error.retry_after:.0f} s "
                        f"(Retry-After), longer than the {self.retry.max_retry_after:.0f} s "
                        "the hub waits in one run; deferred to the next run",
                        status=error.status,
                        retry_after=error.retry_after,
                    )
                # Everyone sharing this credential should hold off, not just this call.
                self.pause(error.retry_after)
            raise error
        return response

    def _where(self, method: str, url: str, exc: httpx.TransportError) -> str:
        """``METHOD url`` (secrets scrubbed) of a request that failed in transport."""
        try:
            request = exc.request
        except RuntimeError:  # raised before a request was attached
            request = self._client.build_request(method, url)
        return f"{method} {scrub_url(request.url)}"

    def _garbage(self, response: httpx.Response) -> HubError | None:
        """A 2xx whose body is not JSON (truncated, empty, an HTML page): retried first."""
        content = response.content
        if not content or content.isspace():
            if response.status_code == 204 or response.request.method != "GET":
                return None
            problem = "an empty body"
        else:
            try:
                json_of(response)
                return None
            except (ValueError, UnicodeDecodeError):
                kind = response.headers.get("content-type", "no content type").split(";")[0]
                looks_html = content.lstrip()[:1] == b"<"
                problem = (
                    f"an HTML page ({kind})" if looks_html else f"a body that is not JSON ({kind})"
                )
        return RetriableAPIError(
            f"{response.request.method} {scrub_url(response.request.url)} answered "
            f"{response.status_code} with {problem}",
            status=response.status_code,
            code="not_json",
        )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        backoff = min(
            self.retry.backoff_cap, self.retry.backoff_base * 2 ** (state.attempt_number - 1)
        )
        return backoff / 2 + random.uniform(0, backoff / 2)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        with self._stats_lock:
            self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        self._reason = (
            "Retry-After" if getattr(exc, "retry_after", None) is not None else "retry backoff"
        )
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
        expect_json: bool | None = None,
    ) -> httpx.Response:
        """Send a request; retries what is safe to retry and raises ``APIError`` on failure.

        ``idempotent`` defaults to True for GET/HEAD/OPTIONS/PUT/DELETE and for requests
        carrying an ``Idempotency-Key``; a read that POSTs (a search) passes True.
        """
        method = method.upper()
        kwargs: dict[str, Any] = {}
        if params is not None:
            kwargs["params"] = params
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        if headers:
            kwargs["headers"] = headers
        if idempotent is None:
            keyed = any(k.lower() == "idempotency-key" for k in (headers or {}))
            idempotent = method in IDEMPOTENT_METHODS or keyed
        if expect_json is None:
            expect_json = self.require_json
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda e: (
                    isinstance(e, RetriableAPIError)
                    and not isinstance(e, (AmbiguousWriteError, DeferredError))
                )
            ),
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            sleep=lambda s: self.sleep(s, getattr(self, "_reason", "retry backoff")),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._send_once, method, url, kwargs, idempotent, expect_json)
        except (AmbiguousWriteError, DeferredError):
            raise
        except RetriableAPIError as exc:
            if self.retry.attempts > 1:
                exc.message = f"{exc.message} (gave up after {self.retry.attempts} attempts)"
            if exc.code == "not_json" and not exc.hint:
                exc.hint = "if this persists, check that base_url points at the API"
            raise

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)


def make_client(**kwargs: Any) -> HttpClient:
    """Build an ``HttpClient``; see its arguments. One factory so every caller is alike."""
    return HttpClient(**kwargs)


__all__ = [
    "APIError",
    "Failure",
    "HttpClient",
    "RequestStats",
    "RetryPolicy",
    "default_classify",
    "error_text",
    "expand_secrets",
    "json_of",
    "make_client",
    "network_hint",
    "parse_retry_after",
    "scrub_url",
]
