"""Webhook receivers on the ``hub serve`` app: verify, store, answer; the worker does the rest.

A webhook is a verified, durable *trigger*, never a second source of data: the API stays the
source of truth, and a delivery only makes the worker (``hub.web.worker``) run an incremental
sync of its connection sooner than the schedule would.

``POST /webhooks/<connection>``:

1. the connection must be configured, its connector must declare ``webhook`` (a
   ``WebhookVerifier``: how its provider signs and what its body looks like) and
   ``[webhooks] secrets`` must hold the connection's signing secret (``env:``/``file:``);
2. a body over ``max_body_bytes`` → 413; a missing, forged or stale signature → 400, counted,
   logged in one line without the secret, and the body is never stored;
3. a valid signature on a body that does not parse → 400, stored as ``rejected``;
4. otherwise each event is written to the inbox (deduplicated on the provider's event id;
   unknown event types are stored as ``ignored`` and counted) and committed, then 200.

Nothing is processed on the request thread. Verification rules per provider live with their
connectors; this module only offers the shared pieces (HMAC helpers, the tolerance check).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.errors import ConfigError, HubError

log = logging.getLogger("hub.web.webhooks")


class WebhooksSection(BaseModel):
    """``[webhooks]``: signing secrets per connection and the receivers' limits."""

    model_config = ConfigDict(extra="forbid")

    secrets: dict[str, str] = Field(default_factory=dict)
    """Connection name → its webhook signing secret, as ``env:VAR`` or ``file:PATH``."""
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    """Larger deliveries are refused with 413."""
    tolerance_seconds: int = Field(default=300, ge=1)
    """Signed timestamps further than this from now are refused (replays)."""
    debounce_seconds: float = Field(default=3.0, ge=0)
    """Deliveries arriving within this window make one sync."""


def validate_config(config: Any) -> WebhooksSection:
    """The validated ``[webhooks]`` section (defaults when absent)."""
    from hub.config import validate_section

    data = getattr(config, "webhooks", None) if config is not None else None
    section = validate_section(
        WebhooksSection, data or {}, "webhooks", getattr(config, "path", None)
    )
    for name in section.secrets:
        if config is not None and name not in config.connections:
            raise ConfigError(
                f"[webhooks] secrets names connection {name!r}, which is not configured",
                hint=f"connections: {', '.join(sorted(config.connections)) or 'none'}",
            )
    return section


@dataclass
class WebhookRequest:
    """What a verifier sees of a delivery."""

    method: str
    url: str  # as received, scheme://host/path?query
    headers: dict[str, str]  # lower-case names
    body: bytes
    now: float = field(default_factory=time.time)


@dataclass
class Delivery:
    """One event in a verified delivery."""

    event_id: str
    event_type: str
    known: bool = True  # False: stored and ignored (an event type the hub does not sync on)


class Refused(HubError):
    """The delivery is not authentic or not acceptable (answered 400, body not stored)."""


class Malformed(HubError):
    """Authentic, but the body cannot be read (answered 400, stored as rejected)."""


class WebhookVerifier(Protocol):
    """Declared by a connector as its ``webhook`` attribute."""

    def verify(self, request: WebhookRequest, secret: str, tolerance: int) -> None:
        """Raise ``Refused`` unless the delivery is signed with ``secret`` and fresh."""

    def parse(self, body: bytes) -> list[Delivery]:
        """The events in the body; raise ``Malformed`` if it cannot be read."""

    def streams(self, event_types: list[str]) -> list[str] | None:
        """The connector's streams these events touch (in any order), or None for all of
        them: the worker syncs only those, so a failed payment does not re-read tickets."""

    # Optional: ``settle_seconds`` (a class attribute), how long after a delivery the API
    # shows the change (Zendesk's incremental exports hide the most recent minute): the
    # worker leaves younger deliveries pending so their sync does not come too early.


# -- helpers for verifiers -------------------------------------------------------------------


def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac_sha256(secret, message).hex()


def hmac_b64(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac_sha256(secret, message)).decode()


def matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def check_fresh(timestamp: float, now: float, tolerance: int) -> None:
    """Refuse a signed timestamp older (or later) than ``tolerance`` seconds."""
    if abs(now - timestamp) > tolerance:
        raise Refused(f"signed timestamp is {abs(now - timestamp):.0f}s away from now (stale)")


def parse_timestamp(text: str) -> float:
    """Unix seconds, Unix milliseconds or ISO 8601, as providers send them."""
    value = text.strip()
    try:
        number = float(value)
        return number / 1000 if number > 10_000_000_000 else number
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise Refused("the signature timestamp is not a time") from None


def body_id(body: bytes) -> str:
    """A stable id for a body whose provider sends none."""
    return "sha256:" + hashlib.sha256(body).hexdigest()[:32]


# -- the receiver ----------------------------------------------------------------------------


def verifier_for(config: Any, connection: str) -> WebhookVerifier | None:
    """The webhook verifier of a configured, enabled connection's connector (or None)."""
    from hub.registry import get_registry

    conn = config.connections.get(connection) if config is not None else None
    if conn is None or not conn.enabled:
        return None
    try:
        cls = get_registry().connector(conn.connector)
    except HubError:
        return None
    return getattr(cls, "webhook", None)


async def receive(request: Request) -> Response:
    from hub.store import webhooks as inbox
    from hub.web.app import state_of

    state = state_of(request)
    config = state.options.config
    connection = request.path_params["connection"]
    verifier = verifier_for(config, connection)
    section = state.webhooks
    reference = section.secrets.get(connection) if section else None
    if verifier is None or not reference:
        return JSONResponse({"error": f"no webhook receiver for {connection!r}"}, 404)
    length = int(request.headers.get("content-length") or 0)
    if length > section.max_body_bytes:
        return await _refuse(state, connection, 413, "body too large", "too_large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > section.max_body_bytes:
            return await _refuse(state, connection, 413, "body too large", "too_large")
    try:
        secret = config._resolve(reference, f"webhooks.secrets.{connection}")
    except ConfigError as exc:
        log.error("webhook %s: %s", connection, exc)
        return JSONResponse({"error": "the receiver is not configured"}, 500)
    delivery = WebhookRequest(
        method=request.method,
        url=str(request.url),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )
    try:
        verifier.verify(delivery, secret, section.tolerance_seconds)
    except Refused as exc:
        return await _refuse(state, connection, 400, str(exc), "refused")
    try:
        events = verifier.parse(body)
    except Malformed as exc:
        text = body.decode("utf-8", "replace")
        await run_in_threadpool(
            lambda: inbox.store_deliveries(
                state.writer(), connection, [(body_id(body), "", "rejected")], text
            )
        )
        return await _refuse(state, connection, 400, f"malformed body: {exc}", "rejected")
    rows = [(e.event_id, e.event_type, "pending" if e.known else "ignored") for e in events]
    text = body.decode("utf-8", "replace")
    new, duplicates = await run_in_threadpool(
        lambda: inbox.store_deliveries(state.writer(), connection, rows, text)
    )
    unknown = sum(1 for e in events if not e.known)
    if unknown:
        await run_in_threadpool(lambda: inbox.bump(state.writer(), connection, "unknown", unknown))
    if state.worker is not None and any(e.known for e in events):
        state.worker.notify()
    return JSONResponse({"received": new, "duplicates": duplicates, "ignored": unknown})


async def _refuse(state: Any, connection: str, status: int, reason: str, counter: str) -> Response:
    from hub.store import webhooks as inbox

    log.warning("webhook %s refused (%s): %s", connection, status, reason)
    try:
        await run_in_threadpool(lambda: inbox.bump(state.writer(), connection, counter))
    except Exception as exc:  # noqa: BLE001 - a counter must not turn a 400 into a 500
        log.warning("webhook %s: could not count the refusal: %s", connection, exc)
    return JSONResponse({"error": reason}, status)


def routes() -> list[Route]:
    return [Route("/webhooks/{connection}", receive, methods=["POST"])]
