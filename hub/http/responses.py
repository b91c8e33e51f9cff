"""Reading responses and errors: scrubbed URLs, ``Retry-After``, short error texts, the
default classification of statuses, JSON bodies decoded once (even absurdly deep ones),
hints for network failures and the encoded forms secrets travel in.

Kept apart from ``hub.http.client`` (the client itself) so both stay short; everything here
is re-exported there and from ``hub.http``.
"""

from __future__ import annotations

import base64
import email.utils
import gc
import json
import logging
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from hub.errors import FatalAPIError, HubError, RetriableAPIError

try:  # twice as fast as the standard decoder on a page of records (a declared dependency;
    # tolerated missing so that an environment installed before it still runs)
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]


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
        cached = _decode(response)
        response._hub_json = cached  # type: ignore[attr-defined]
    return cached


# Every byte but the ASCII digits becomes a space, so a run of 20 digits is a plain substring
# search (a regex scan of a 50 KB page cost seven times orjson's decoding of it).
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_TWENTY_DIGITS = b"0" * 20


def _long_digits(content: bytes) -> bool:
    """Whether ``content`` holds a run of 20 digits or more (an integer orjson may round)."""
    return _TWENTY_DIGITS in content.translate(_DIGITS_ONLY)


def _without_gc(decode: Any, content: bytes) -> Any:
    """``decode(content)`` with the cyclic garbage collector paused.

    A decoded page is a tree (JSON cannot make a cycle), yet its tens of thousands of new
    containers set off collection after collection while it is built, each scanning the
    heap: 15 % of a Stripe page's decoding in a small process, up to eight times the decoding
    itself in a big one (``hub demo``'s in-process sandbox). Nothing cyclic is left behind
    for the pause to miss, and the collector runs again as soon as the page is built. A
    collector someone else paused stays paused."""
    if not gc.isenabled():
        return decode(content)
    gc.disable()
    try:
        return decode(content)
    finally:
        gc.enable()


def _decode(response: httpx.Response) -> Any:
    """The body decoded: ``orjson`` when it can (UTF-8, nesting within its limit), else the
    standard decoder, which takes what ``orjson`` refuses (other charsets, ``NaN``) and raises
    the same ``ValueError`` on garbage. A body with a run of 20 digits or more goes to the
    standard decoder too: ``orjson`` reads an integer beyond 64 bits as a float, losing digits
    the standard decoder keeps."""
    content = response.content
    if orjson is not None and not _long_digits(content):
        try:
            return _without_gc(orjson.loads, content)
        except orjson.JSONDecodeError:
            pass  # decided below, by the decoder every other path uses
    try:
        return response.json()
    except RecursionError:
        return json.loads(cut_deep(response.text))


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


__all__ = [
    "MAX_JSON_DEPTH",
    "TOO_DEEP",
    "Failure",
    "cut_deep",
    "default_classify",
    "error_text",
    "expand_secrets",
    "json_of",
    "network_hint",
    "parse_retry_after",
    "scrub_url",
]
