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

import base64
import email.utils
import json
import logging
import random
import threading
import time
import urllib.parse
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
    FatalAPIError,
    HubError,
    RetriableAPIError,
    Stopped,
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
    """A longer Retry-After defers the stream to the next run instead of blocking this one."""


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


@dataclass
class Failure:
    """A failed response, read once for ``Connector.classify_error``.

    ``where`` is "METHOD url" without the query string; ``text`` a short message from the
    body; ``body`` the decoded JSON object (``{}`` when the body is not one).
    """

    response: httpx.Response
    status: int
    where: str
    text: str
    body: dict[str, Any]

    @classmethod
    def of(cls, response: httpx.Response) -> Failure:
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        return cls(
            response=response,
            status=response.status_code,
            where=f"{response.request.method} {scrub_url(response.request.url)}",
            text=error_text(response),
            body=body if isinstance(body, dict) else {},
        )

    @property
    def error(self) -> dict[str, Any]:
        """``body["error"]`` when it is an object (Stripe's shape), else ``{}``."""
        error = self.body.get("error")
        return error if isinstance(error, dict) else {}


_NOT_DECODED = object()


def json_of(response: httpx.Response) -> Any:
    """The decoded JSON body (decoded once: the client already checked it).

    A body nested too deep for the decoder is decoded with each too-deep part replaced by
    ``TOO_DEEP``, so the records around it survive; the one holding it is still far deeper
    than a record may be (``hub.connector.MAX_DEPTH``), so it is skipped and reported.
    """
    cached = getattr(response, "_hub_json", _NOT_DECODED)
    if cached is _NOT_DECODED:
        try:
            cached = response.json()
        except RecursionError:
            cached = json.loads(cut_deep(response.text))
        response._hub_json = cached  # type: ignore[attr-defined]
    return cached


TOO_DEEP = "\u0000hub:nested-too-deep"
"""Stands in for a part of a body nested beyond ``MAX_JSON_DEPTH``."""
MAX_JSON_DEPTH = 200


def cut_deep(text: str, limit: int = MAX_JSON_DEPTH) -> str:
    """JSON text with every value nested deeper than ``limit`` replaced by ``TOO_DEEP``.

    A character scan (strings and escapes respected), used only after the decoder gave up.
    """
    out: list[str] = []
    depth = 0
    skip_from = 0  # depth at which a cut began (0: not cutting)
    in_string = escaped = False
    for ch in text:
        if in_string:
            if not skip_from:
                out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit and not skip_from:
                skip_from = depth
                out.append(json.dumps(TOO_DEEP))
                continue
        elif ch in "]}":
            if skip_from and depth == skip_from:
                skip_from = 0
                depth -= 1
                continue
            depth -= 1
        if not skip_from:
            out.append(ch)
    return "".join(out)


# Failures after which a request may have reached the server and been acted on.
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

    def sleep(self, seconds: float, reason: str = "") -> None:
        """Wait, visibly when it is long, and wake at once when ``stop`` is set."""
        if seconds <= 0:
            return
        if seconds >= 1 and reason:
            message = f"waiting {seconds:.0f} s ({self.label} {reason})"
            if self.on_wait is not None:
                self.on_wait(seconds, message)
            (log.warning if seconds >= 5 and reason == "Retry-After" else log.info)(
                "%s", message, extra={"fields": {"wait_s": round(seconds, 1)}}
            )
        if self._sleep is not None:
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
                self.stats.waited_s += limiter.acquire(
                    sleep=lambda s, n=limiter.rate.name: self.sleep(s, f"pacing, {n} budget")
                )
        self.stats.requests += 1
        started = time.perf_counter()
        where = f"{method} {scrub_url(self._client.build_request(method, url).url)}"
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
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
        self.stats.by_status[response.status_code] += 1
        log.debug("%s -> %s (%.0f ms)", where, response.status_code, elapsed)
        if self.observe is not None:
            self.observe(response, self)
        if response.status_code == 429:
            self.stats.throttled += 1
        error = self.classify(response)
        if error is None and expect_json and 200 <= response.status_code < 300:
            error = self._garbage(response, where)
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

    def _garbage(self, response: httpx.Response, where: str) -> HubError | None:
        """A 2xx whose body is not JSON (truncated, empty, an HTML page): retried first."""
        content = response.content
        if not content.strip():
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
            f"{where} answered {response.status_code} with {problem}",
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


def network_hint(exc: Exception) -> str | None:
    """A hint naming the likely cause of a transport failure (DNS, refused, TLS)."""
    text = f"{type(exc).__name__}: {exc}".lower()
    if any(
        s in text
        for s in (
            "name or service not known",
            "nodename nor servname",
            "getaddrinfo",
            "name resolution",
            "no address associated",
        )
    ):
        return "the host name does not resolve: check base_url (or subdomain) and DNS"
    if "refused" in text:
        return "nothing listens at that address: check base_url and that the service is up"
    if "ssl" in text or "certificate" in text or "tls" in text:
        return "TLS failed: check base_url (https vs http) and the system's CA certificates"
    if isinstance(exc, httpx.ConnectTimeout):
        return "no answer to connect: check base_url, proxies and firewalls"
    if isinstance(exc, httpx.TimeoutException):
        return "the server accepted but did not answer in time: raise timeout or try later"
    return None


def expand_secrets(secrets: Iterable[str]) -> list[str]:
    """Each secret with the forms it travels in: URL-encoded, and inside base64.

    HTTP Basic sends base64 of ``user:password``, so an upstream that echoes headers shows
    neither value in clear. For each of the three alignments a secret can have inside a
    longer base64'd string, the run of base64 characters that only its own bytes determine
    is scrubbed too, which covers any Basic value the secret is part of.
    """
    out: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        out.add(secret)
        out.add(urllib.parse.quote(secret, safe=""))
        out.add(urllib.parse.quote_plus(secret))
        raw = secret.encode()
        for offset in range(3):
            chunk = raw[offset:]
            chunk = chunk[: len(chunk) - len(chunk) % 3]
            if len(chunk) >= 6:
                out.add(base64.b64encode(chunk).decode())
    return sorted(out, key=len, reverse=True)


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
