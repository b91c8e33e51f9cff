"""Signed webhooks from the sandbox: the fakes tell a receiver when their world changes.

When attached (``attach_webhooks(sandbox, url)``, or ``hub sandbox serve --webhook-url``),
each fake hands the events of its write paths to one ``WebhookSender``: Stripe its events
(``invoice.payment_failed``, ``invoice.paid``, ``customer.subscription.deleted``…), Zendesk
its ticket changes (``zen:event-type:ticket.created``/``status_changed``…), HubSpot its
property changes (``company.propertyChange``…). The payloads are built next to each fake
(``hub/sandbox/<api>/webhooks.py``) in the provider's shape; this module signs them with the
provider's scheme and POSTs them from a background thread:

- **Stripe** ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``; retried on
  any non-2xx or timeout with exponential back-off for up to three days.
- **Zendesk** ``X-Zendesk-Webhook-Signature`` = base64 HMAC-SHA256 of timestamp + body, and
  ``X-Zendesk-Webhook-Signature-Timestamp``; retried a few times on 409, 429, 5xx and
  timeouts only (a 4xx refusal is final).
- **HubSpot** v3: ``X-HubSpot-Signature-v3`` = base64 HMAC-SHA256 of method + URI + body +
  timestamp (ms, ``X-HubSpot-Request-Timestamp``) with the app's client secret; the body is
  a JSON array of events; retried up to 10 times over about a day on 5xx and timeouts,
  ``attemptNumber`` counting up.

Retry delays are multiplied by ``retry_scale`` (the sandbox's ``time_scale`` unless given),
so a test sees a day of Stripe retries in a fraction of a second. Signatures use wall time,
as the receiver checks them against its own clock.

Misbehaviour on demand (``sender.tamper(kind, count)`` or ``POST /__sandbox/webhooks``):
``duplicate`` sends each of the next deliveries three times; ``out_of_order`` holds the next
``count`` deliveries (at most ``HOLD_SECONDS``) and sends them newest first; ``replay`` adds a copy of each signed
with a timestamp an hour old (a captured delivery sent again); ``forge`` adds a copy signed
with the wrong secret. The genuine delivery always goes too: a receiver must accept it once
and refuse the copies.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# Literal sandbox-only secrets (printed by ``hub sandbox serve --print-config``).
DEFAULT_SECRETS = {
    "stripe": "whsec_sandbox_0123456789abcdef",
    "zendesk": "zd-sandbox-webhook-signing-secret",
    "hubspot": "hs-sandbox-app-client-secret",
}
TAMPER_KINDS = ("duplicate", "out_of_order", "replay", "forge")
STALE_SECONDS = 3600  # how old a replayed delivery's signature is
HOLD_SECONDS = 5.0  # out_of_order: held deliveries go anyway once the oldest waited this long


@dataclass(frozen=True)
class Policy:
    """How a provider retries: the waits before each retry (seconds), its request timeout,
    and whether a 4xx answer is retried (Stripe retries anything but a 2xx)."""

    delays: tuple[float, ...]
    timeout: float
    retry_4xx: bool


POLICIES = {
    # Stripe: exponential back-off for up to three days.
    "stripe": Policy((60, 300, 1800, 3600, 7200, 14400, 28800, 57600, 86400, 57600), 20.0, True),
    # Zendesk: a few quick retries, then the invocation fails.
    "zendesk": Policy((10, 30, 60), 12.0, False),
    # HubSpot: up to 10 retries spread over the next 24 hours.
    "hubspot": Policy((60, 120, 300, 600, 1200, 2400, 4800, 9600, 19200, 43200), 5.0, False),
}
RETRIED_4XX = {408, 409, 429}  # asks to come back later even where other 4xx are final


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def sign_stripe(url: str, body: bytes, secret: str, now: float) -> dict[str, str]:
    t = str(int(now))
    sig = _hmac(secret, t.encode() + b"." + body).hex()
    return {"Stripe-Signature": f"t={t},v1={sig}"}


def sign_zendesk(url: str, body: bytes, secret: str, now: float) -> dict[str, str]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    sig = base64.b64encode(_hmac(secret, stamp.encode() + body)).decode()
    return {"X-Zendesk-Webhook-Signature": sig, "X-Zendesk-Webhook-Signature-Timestamp": stamp}


def sign_hubspot(url: str, body: bytes, secret: str, now: float) -> dict[str, str]:
    ms = str(int(now * 1000))
    text = b"POST" + url.encode() + body + ms.encode()
    sig = base64.b64encode(_hmac(secret, text)).decode()
    return {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ms}


SIGNERS: dict[str, Callable[[str, bytes, str, float], dict[str, str]]] = {
    "stripe": sign_stripe,
    "zendesk": sign_zendesk,
    "hubspot": sign_hubspot,
}


@dataclass
class Outgoing:
    """One delivery to send (a genuine one, or a tampered copy that is never retried)."""

    api: str
    payload: Any
    event_ids: list[str]
    attempt: int = 0
    copy: str = ""  # "" (genuine) | "forge" | "replay" | "duplicate"


@dataclass
class Attempt:
    """One POST the sender made (``status`` 0: no answer)."""

    api: str
    event_ids: list[str]
    attempt: int
    copy: str
    status: int
    error: str = ""
    at: float = field(default_factory=time.time)
    ms: float = 0.0  # from sending to the answer (or the failure)


class WebhookSender:
    """Queues the fakes' events and POSTs them, signed, from one background thread."""

    def __init__(
        self,
        url: str,
        *,
        secrets: dict[str, str] | None = None,
        retry_scale: float = 1.0,
        apis: tuple[str, ...] = tuple(SIGNERS),
        client: httpx.Client | None = None,
    ):
        self.url = url.rstrip("/")
        self.secrets = {**DEFAULT_SECRETS, **(secrets or {})}
        self.retry_scale = retry_scale
        self.apis = set(apis)
        self.attempts: list[Attempt] = []
        self.delivered: list[str] = []  # event ids of genuine deliveries answered 2xx
        self.gave_up: list[str] = []  # event ids whose retries ran out
        self._client = client or httpx.Client()
        self._heap: list[tuple[float, int, Outgoing]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._busy = 0
        self._stop = False
        self._tamper: dict[str, int] = {}
        self._held: list[Outgoing] = []
        self._held_at = 0.0
        self._id_base = time.time_ns() // 1000  # microseconds: a restart never reuses an id
        self._ids = itertools.count(1)
        self._thread = threading.Thread(target=self._loop, name="hub-sandbox-webhooks", daemon=True)
        self._thread.start()

    # -- what the fakes call ------------------------------------------------------------

    def wants(self, api: str) -> bool:
        return api in self.apis

    def next_id(self) -> int:
        """A fresh numeric event id (HubSpot's ``eventId``), unique across restarts."""
        with self._cond:
            return self._id_base + next(self._ids)

    def emit(self, api: str, payload: Any, event_ids: list[str]) -> None:
        """Queue one delivery of ``payload`` (the provider's JSON) for ``event_ids``."""
        if api not in self.apis:
            return
        item = Outgoing(api, payload, list(event_ids))
        with self._cond:
            if self._take("out_of_order"):
                if not self._held:
                    self._held_at = time.monotonic()
                self._held.append(item)
                if not self._tamper.get("out_of_order"):
                    self._release_held()
                return
            self._queue(item)
            if self._take("duplicate"):
                for _ in range(2):
                    self._queue(dataclasses.replace(item, copy="duplicate"))
            for kind in ("replay", "forge"):
                if self._take(kind):
                    self._queue(dataclasses.replace(item, copy=kind))
            self._cond.notify_all()

    # -- control ----------------------------------------------------------------------

    def tamper(self, kind: str, count: int = 1) -> None:
        """Misbehave on the next ``count`` deliveries (see the module docstring)."""
        if kind not in TAMPER_KINDS:
            raise ValueError(f"no webhook misbehaviour {kind!r} (known: {', '.join(TAMPER_KINDS)})")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._cond:
            self._tamper[kind] = self._tamper.get(kind, 0) + int(count)

    def clear(self) -> None:
        with self._cond:
            self._tamper.clear()
            self._release_held()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued delivery was sent (retries included); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._release_held()
            while self._heap or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def stats(self) -> dict[str, Any]:
        with self._cond:
            by_status: dict[str, int] = {}
            for a in self.attempts:
                key = str(a.status or "no answer")
                by_status[key] = by_status.get(key, 0) + 1
            answered = sorted(a.ms for a in self.attempts if a.status)
            return {
                "url": self.url,
                "queued": len(self._heap) + len(self._held),
                "attempts": len(self.attempts),
                "answer_ms_median": round(answered[len(answered) // 2], 1) if answered else None,
                "answer_ms_p95": round(answered[int(0.95 * (len(answered) - 1))], 1)
                if answered
                else None,
                "by_status": by_status,
                "delivered": len(self.delivered),
                "gave_up": len(self.gave_up),
                "tamper": dict(self._tamper),
            }

    def describe(self) -> str:
        """One line for the banner: where deliveries go, and any misbehaviour queued."""
        where = self.target("<api>")
        tamper = ", ".join(f"{k} ×{n}" for k, n in self._tamper.items() if n)
        return f"signed deliveries to {where}" + (f" (next: {tamper})" if tamper else "")

    def config_toml(self) -> str:
        """The ``[webhooks.secrets]`` table a hub needs to verify these deliveries."""
        return config_lines(self.secrets)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(5)
        self._client.close()

    # -- machinery ----------------------------------------------------------------------

    def _take(self, kind: str) -> bool:
        left = self._tamper.get(kind, 0)
        if left <= 0:
            return False
        self._tamper[kind] = left - 1
        return True

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for item in reversed(held):  # newest first
            self._queue(item)
        self._cond.notify_all()

    def _queue(self, item: Outgoing, delay: float = 0.0) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), item))

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._heap or self._heap[0][0] > time.monotonic()):
                    if self._held and time.monotonic() - self._held_at >= HOLD_SECONDS:
                        self._release_held()  # fewer came than were to be reordered
                        continue
                    dues = [self._heap[0][0]] if self._heap else []
                    if self._held:
                        dues.append(self._held_at + HOLD_SECONDS)
                    self._cond.wait(min(dues) - time.monotonic() if dues else None)
                if self._stop:
                    return
                _, _, item = heapq.heappop(self._heap)
                self._busy += 1
            try:
                self._send(item)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def target(self, api: str) -> str:
        """Where ``api``'s deliveries go: ``{api}`` in the URL is replaced, else appended."""
        return self.url.replace("{api}", api) if "{api}" in self.url else f"{self.url}/{api}"

    def _send(self, item: Outgoing) -> None:
        policy = POLICIES[item.api]
        url = self.target(item.api)
        payload = item.payload
        if item.api == "hubspot":  # HubSpot counts its attempts in each event
            payload = [{**event, "attemptNumber": item.attempt} for event in payload]
        body = json.dumps(payload, separators=(",", ":")).encode()
        now = time.time()
        secret = self.secrets[item.api]
        if item.copy == "forge":
            secret = "forged-" + secret
        if item.copy == "replay":
            now -= STALE_SECONDS
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"hub-sandbox-webhooks ({item.api})",
            **SIGNERS[item.api](url, body, secret, now),
        }
        status, error = 0, ""
        started = time.perf_counter()
        try:
            status = self._client.post(
                url, content=body, headers=headers, timeout=policy.timeout
            ).status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ms = (time.perf_counter() - started) * 1000
        with self._cond:
            self.attempts.append(
                Attempt(item.api, item.event_ids, item.attempt, item.copy, status, error, ms=ms)
            )
            if item.copy:
                return  # copies are the test's, never retried
            if 200 <= status < 300:
                self.delivered.extend(item.event_ids)
                return
            retry = status == 0 or status >= 500 or status in RETRIED_4XX or policy.retry_4xx
            if retry and item.attempt < len(policy.delays):
                delay = policy.delays[item.attempt] * self.retry_scale
                self._queue(dataclasses.replace(item, attempt=item.attempt + 1), delay)
                self._cond.notify_all()
            else:
                self.gave_up.extend(item.event_ids)


def attach_webhooks(
    sandbox: Any,
    url: str,
    *,
    secrets: dict[str, str] | None = None,
    retry_scale: float | None = None,
    apis: tuple[str, ...] = tuple(SIGNERS),
) -> WebhookSender:
    """Make ``sandbox``'s fakes send signed webhooks to ``url`` from now on (replacing any
    sender already attached). ``url`` is the receiver's base (``…/webhooks``: the API's name
    is appended) or a template with ``{api}``."""
    detach_webhooks(sandbox)
    scale = sandbox.time_scale if retry_scale is None else retry_scale
    sender = WebhookSender(url, secrets=secrets, retry_scale=scale, apis=apis)
    sandbox.webhooks = sender
    return sender


def detach_webhooks(sandbox: Any) -> None:
    sender = getattr(sandbox, "webhooks", None)
    sandbox.webhooks = None
    if sender is not None:
        sender.close()


def control(sandbox: Any, request: httpx.Request) -> httpx.Response:
    """``/__sandbox/webhooks``: ``GET`` the sender's figures; ``POST {"kind", "count"?}`` to
    misbehave on the next deliveries (duplicate, out_of_order, replay, forge); ``DELETE`` to
    stop misbehaving. ``POST /__sandbox/webhooks/payment_failed {"company"?}``: a payment
    of that world company (default: the next healthy one not failed yet) fails now;
    ``POST /__sandbox/webhooks/ticket_escalated {"company"?}``: an agent escalates the
    company's newest open ticket (default: the first company with one). For demos and
    benchmarks; both work with no sender attached too."""
    if request.url.path.rstrip("/").endswith("/payment_failed") and request.method == "POST":
        return _payment_failed(sandbox, request)
    if request.url.path.rstrip("/").endswith("/ticket_escalated") and request.method == "POST":
        return _ticket_escalated(sandbox, request)
    sender = getattr(sandbox, "webhooks", None)
    if sender is None:
        return _json(409, {"status": "error", "message": "no webhook URL is attached"})
    if request.method == "GET":
        return _json(200, sender.stats())
    if request.method == "DELETE":
        sender.clear()
        return httpx.Response(204)
    if request.method == "POST":
        try:
            spec = json.loads(request.content or b"{}")
            sender.tamper(str(spec["kind"]), int(spec.get("count", 1)))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            message = (
                f"bad webhook control ({type(exc).__name__}: {exc}): send "
                '{"kind": "duplicate", "count": 2} (kinds: duplicate, out_of_order, replay, forge)'
            )
            return _json(400, {"status": "error", "message": message})
        return _json(201, sender.stats())
    return _json(405, {"status": "error", "message": "GET, POST or DELETE"})


def _payment_failed(sandbox: Any, request: httpx.Request) -> httpx.Response:
    from hub.sandbox.stripe.webhooks import fail_payment, next_healthy

    stripe = sandbox.apis.get("stripe")
    if stripe is None:
        return _json(404, {"status": "error", "message": "no Stripe fake in this sandbox"})
    try:
        spec = json.loads(request.content or b"{}")
        key = _company_key(sandbox, spec, "payment_failed")
        company = sandbox.world.company(key) if key is not None else next_healthy(stripe)
        if company is None:
            raise ValueError("every healthy company has had its failed payment")
        invoice = fail_payment(stripe, company.key)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return _json(400, {"status": "error", "message": f"payment_failed: {exc}"})
    return _json(
        201,
        {
            "company": company.key,
            "name": company.name,
            "hubspot_id": company.hubspot_id,
            "invoice": invoice["id"],
            "at": time.time(),
        },
    )


def _ticket_escalated(sandbox: Any, request: httpx.Request) -> httpx.Response:
    from hub.sandbox.zendesk.webhooks import escalate_ticket

    zendesk = sandbox.apis.get("zendesk")
    if zendesk is None:
        return _json(404, {"status": "error", "message": "no Zendesk fake in this sandbox"})
    try:
        spec = json.loads(request.content or b"{}")
        key = _company_key(sandbox, spec, "ticket_escalated")
        keys = [key] if key is not None else [c.key for c in sandbox.world.companies]
        for company_key in keys:
            try:
                ticket = escalate_ticket(zendesk, company_key)
                break
            except ValueError:
                if key is not None:
                    raise
        else:
            raise ValueError("no company has an open ticket")
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return _json(400, {"status": "error", "message": f"ticket_escalated: {exc}"})
    return _json(201, {"company": company_key, "ticket": ticket["id"], "at": time.time()})


def _company_key(sandbox: Any, spec: Any, what: str) -> int | None:
    """The world company key in ``{"company": N}`` (None: absent), or a ValueError naming
    the parameter and what to send."""
    if not isinstance(spec, dict):
        raise ValueError('the body must be a JSON object, e.g. {"company": 3}')
    key = spec.get("company")
    if key is None:
        return None
    text = str(key).strip()
    size = len(sandbox.world.companies)
    if isinstance(key, bool) or not text.isdigit() or int(text) >= size:
        raise ValueError(
            f'"company" {key!r} is not a world company: give its key, a whole number '
            f'from 0 to {size - 1} (e.g. {{"company": 3}}), or leave it out to let {what} choose'
        )
    return int(text)


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def config_lines(secrets: dict[str, str] | None = None) -> str:
    """The ``[webhooks.secrets]`` table a hub needs to verify this sandbox's deliveries."""
    merged = {**DEFAULT_SECRETS, **(secrets or {})}
    lines = [
        "# The sandbox's webhook signing secrets (sandbox-only; literal values are fine here).",
        "[webhooks]",
        "debounce_seconds = 2.0",
        "[webhooks.secrets]",
        *(f'{api} = "{merged[api]}"' for api in SIGNERS),
    ]
    return "\n".join(lines)


def from_options(
    sandbox: Any,
    url: str,
    secret_specs: tuple[str, ...] = (),
    fault_specs: tuple[str, ...] = (),
    retry_scale: float = 1.0,
) -> WebhookSender:
    """``hub sandbox serve --webhook-url URL [--webhook-secret API=SECRET]…
    [--webhook-fault KIND[:COUNT]]…``: attach a sender, or a ``ValueError`` naming the
    option at fault and the fix (the sandbox imports nothing of the hub)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(
            f"--webhook-url {url!r} is not an http(s) URL "
            "(e.g. --webhook-url http://127.0.0.1:8321/webhooks)"
        )
    secrets: dict[str, str] = {}
    for spec in secret_specs:
        api, eq, secret = spec.partition("=")
        if not eq or api not in SIGNERS or not secret:
            raise ValueError(
                f"--webhook-secret {spec!r} is not API=SECRET (API: {', '.join(SIGNERS)})"
            )
        secrets[api] = secret
    faults = []
    for spec in fault_specs:
        kind, _, count = spec.partition(":")
        if kind not in TAMPER_KINDS or (count and not count.isdigit()):
            raise ValueError(
                f"--webhook-fault {spec!r} is not KIND[:COUNT] (KIND: {', '.join(TAMPER_KINDS)})"
            )
        faults.append((kind, int(count or 1)))
    sender = attach_webhooks(sandbox, url, secrets=secrets, retry_scale=retry_scale)
    for kind, count in faults:
        sender.tamper(kind, count)
    return sender
