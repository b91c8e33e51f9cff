"""Fake Stripe API: customers, cards, subscriptions, invoices, charges and the events feed.

Facts followed (``shared/specs/README.md``, ``stripe/fixtures3.json`` for current shapes):

- Auth: HTTP Basic with the secret key as username and no password, or ``Bearer sk_…``; a
  missing or wrong key is a 401 with Stripe's error body and the key masked as Stripe does.
- Lists: ``{"object": "list", "url", "has_more", "data"}``, newest first (``created``, ties
  by id), ``limit`` 1–100 (default 10), ``starting_after`` / ``ending_before`` (exclusive),
  ``created`` as a number or ``created[gt|gte|lt|lte]``, ``customer=`` where Stripe has it,
  ``expand[]`` (``data.`` prefixed on lists, up to four levels). The envelope ``url`` is a
  path, as in Stripe (the SDKs prefix their own base address).
- ``GET /v1/events`` lists only the last 30 days; a cursor naming an older (pruned) or
  unknown event is a 400 ``resource_missing`` on that parameter. Event ``data.object`` is
  rendered in the API version the event was created in (see "versions" below).
- Errors: ``{"error": {"type", "code", "message", "param", "doc_url"}}``; injected 5xx carry
  ``Stripe-Should-Retry: true`` (the official SDK obeys it); 429 has ``code: rate_limit``.
  Every response has a ``Request-Id`` header.
- ``Idempotency-Key`` on POST: the first result (status and body, errors included once the
  endpoint ran) is replayed for the same key and parameters (``Idempotent-Replayed: true``);
  the same key with other parameters is a 400 ``idempotency_error``; keys expire after 24 h
  of world time. Validation failures before execution are not saved.
- Rate limit (only with ``sandbox.enforce_limits``): 25 requests/s per key (Stripe's test-mode
  budget), window scaled by ``sandbox.time_scale``.

Versions: objects are rendered in current shapes (subscription periods on the items, invoices
without ``paid``; parent/`pricing` blocks on invoices and lines). A request whose
``Stripe-Version`` is older than ``2025-03-31`` gets the older shapes (top-level
``current_period_*``, invoice ``paid``/``charge``, line ``type``/``proration``). The account's
default version was "upgraded" 20 days before the world's start: events created before that
carry ``api_version`` 2024-06-20 and the older shapes, as a real account's history would.

Choices where Stripe is silent or the sandbox simplifies (documented so nothing depends on luck):
- ``GET /v1/payment_methods`` without ``customer`` lists every card (real Stripe needs a
  customer); ``type`` defaults to ``card``, the only type here.
- a ``customer=`` filter naming an unknown customer is a 400 ``resource_missing``;
- the injectable fault ``cursor_expired`` is only consumed by a list request that has a
  cursor, and answers exactly like a pruned event cursor; kinds ``400``/``401``/``403``/
  ``404``/``409`` answer (after authentication) in Stripe's shapes (403 names a restricted
  key permission, 409 is a ``lock_timeout`` with ``Stripe-Should-Retry: true``);
- ids sort in creation order (prefix, a 4-character seed tag, then a hex counter);
- invoices use account-level numbering (customers' ``next_invoice_sequence`` stays put),
  and freeze the customer's e-mail, name and address at finalization as Stripe does;
- every change to an object emits the event a real account would (including
  ``customer.updated`` when ``delinquent`` flips), so replaying events since a point gives
  exactly what a fresh listing shows.

Data: ``seed()`` creates one customer, card and subscription per company and then *runs* the
last ~6 billing periods through the same machinery ``advance()`` uses (renewal → draft
invoice → finalize an hour later → charge attempt → retries 3, 5 and 7 days apart → still
open past due → marked uncollectible 30 days after the last attempt), with outcomes scripted
by archetype: healthy/expanding pay on time, slipping has one invoice paid late (a retry
worked, or after the due date on ``send_invoice``), at_risk has recent failed attempts and
an open past-due invoice (half of them with a card expiring within 30 days), churned
cancelled (now or at period end) with ``cancellation_details``, expanding added seats. The
no-payment-method company pays by invoice (``send_invoice``, out of band). Periods that end
well before the event window are built directly (paid on time) to keep seeding fast.
Events are kept for changes in the last 35 days, so the oldest few are already past
Stripe's 30-day window. ``advance()`` renews, charges and retries on schedule, lets
expanding companies add seats (``Company.seats`` follows), churns an occasional at-risk
company, refreshes good customers' expired cards (card updater) and has slipping ones attach
a new card after an ``expired_card`` decline.

Size: records are slotted objects, list indexes are ints (``created << 40 | counter``), and
an event keeps only its object's mutable fields (a tuple) and is rendered on demand. 100k
companies are ~570k invoices, ~630k charges and ~560k events: about 1.1 GB and 25–40 s to
seed on a shared 2-core box (the cyclic GC is paused while seeding).
"""

from __future__ import annotations

import base64
import bisect
import calendar
import copy
import datetime as dt
import functools
import gc
import heapq
import json
import operator
import re
import threading
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx

from hub.sandbox.base import (
    FakeAPI,
    SlidingWindow,
    json_response,
    rng_for,
    route,
)
from hub.sandbox.world import CREDENTIALS, PLANS

DAY = 86400
HOUR = 3600
CURRENT_API_VERSION = "2026-10-28.endive"  # what stripe-python 16 pins
LEGACY_API_VERSION = "2024-06-20"
SHAPE_CHANGE = "2025-03-31"  # basil: periods moved to items, invoice `paid` went away
EVENT_RETENTION = 30 * DAY
HISTORY_DAYS = 35  # events are generated for this much history; the oldest are past retention
HISTORY_PERIODS = 6  # invoices per subscription at seed
RETRY_OFFSETS = (3 * DAY, 5 * DAY, 7 * DAY)  # after attempts 1, 2, 3 (Smart-Retries-like)
MAX_ATTEMPTS = 4
UNCOLLECTIBLE_AFTER = (
    30 * DAY
)  # after the last attempt (or the due date) the invoice is written off
DAYS_UNTIL_DUE = 30
REQUESTS_PER_SECOND = 25
IDEMPOTENCY_TTL = DAY
MAX_EXPAND_DEPTH = 4
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
_DOCS = "https://stripe.com/docs/error-codes/"

# resource (URL segment) -> kind (object name), and the other way round
RESOURCES = {
    "customers": "customer",
    "payment_methods": "payment_method",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "charges": "charge",
    "events": "event",
}
KINDS = {v: k for k, v in RESOURCES.items()}
_ID_PREFIX = {
    "customer": "cus",
    "payment_method": "pm",
    "subscription": "sub",
    "invoice": "in",
    "charge": "ch",
    "event": "evt",
}
_SHIFT = 40  # ids carry a 10-hex-digit counter
_MASK = (1 << _SHIFT) - 1
_NICE_NAME = {
    "customer": "customer",
    "payment_method": "PaymentMethod",
    "subscription": "subscription",
    "invoice": "invoice",
    "charge": "charge",
    "event": "event",
}

# Fields that can be expanded (dotted path in the object -> kind of the object it names).
_EXPANDABLE: dict[str, dict[str, str]] = {
    "customer": {
        "invoice_settings.default_payment_method": "payment_method",
        "default_source": "payment_method",
    },
    "payment_method": {"customer": "customer"},
    "subscription": {
        "customer": "customer",
        "latest_invoice": "invoice",
        "default_payment_method": "payment_method",
    },
    "invoice": {
        "customer": "customer",
        "subscription": "subscription",
        "default_payment_method": "payment_method",
        "charge": "charge",
    },
    "charge": {"customer": "customer", "invoice": "invoice"},
    "event": {},
}

# List filters Stripe has, per resource (besides limit/cursors/created/expand).
_LIST_PARAMS: dict[str, set[str]] = {
    "customer": {"email", "test_clock"},
    "payment_method": {"customer", "type"},
    "subscription": {
        "customer",
        "status",
        "price",
        "collection_method",
        "current_period_start",
        "current_period_end",
        "test_clock",
        "automatic_tax",
    },
    "invoice": {"customer", "status", "subscription", "collection_method", "due_date"},
    "charge": {"customer", "payment_intent", "transfer_group"},
    "event": {"type", "types", "delivery_success"},
}
_COMMON_LIST_PARAMS = {"limit", "starting_after", "ending_before", "created", "expand"}
_CUSTOMER_WRITE_PARAMS = {
    "address",
    "description",
    "email",
    "metadata",
    "name",
    "phone",
    "invoice_settings",
    "expand",
    "preferred_locales",
}
_SUB_STATUSES = {
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "trialing",
    "paused",
    "all",
    "ended",
}
_INVOICE_STATUSES = {"draft", "open", "paid", "uncollectible", "void"}

# Injectable client errors (taken after authentication), in Stripe's shapes.
_CLIENT_FAULTS = {
    "400": (400, "invalid_request_error", "parameter_invalid_empty", "Injected bad request."),
    "401": (401, "invalid_request_error", None, "Invalid API Key provided: {key}"),
    "403": (
        403,
        "invalid_request_error",
        None,
        "The provided key '{key}' does not have the required permissions for this endpoint on account "
        "'acct_sandbox'. Having the 'rak_customer_read' permission would allow this request to continue.",
    ),
    "404": (404, "invalid_request_error", "resource_missing", "No such object (injected)."),
    "409": (
        409,
        "invalid_request_error",
        "lock_timeout",
        "This object cannot be accessed right now because another API request or Stripe process is "
        "currently accessing it. If you see this error intermittently, retry the request.",
    ),
}
_FEEDBACK = [
    "too_expensive",
    "switched_service",
    "missing_features",
    "unused",
    "low_quality",
    "customer_service",
    "too_complex",
    "other",
]
_FEEDBACK_COMMENT = {
    "too_expensive": "Budget cut for next year, we can't justify the seats.",
    "switched_service": "We moved to {competitor}.",
    "missing_features": "No Salesforce integration and the reporting is too basic.",
    "unused": "The team never really adopted it.",
    "low_quality": "Too many bugs in the widget.",
    "customer_service": "Support took days to answer.",
    "too_complex": "Setup was too complicated for us.",
    "other": None,
}
_DECLINES = {
    # failure_code -> (outcome.reason, failure_message)
    "card_declined": ("generic_decline", "Your card was declined."),
    "insufficient_funds": ("insufficient_funds", "Your card has insufficient funds."),
    "expired_card": ("expired_card", "Your card has expired."),
}
_CITIES = [
    ("San Francisco", "US", "94107", "CA"),
    ("New York", "US", "10001", "NY"),
    ("Austin", "US", "73301", "TX"),
    ("London", "GB", "EC1A 1BB", None),
    ("Berlin", "DE", "10115", None),
    ("Paris", "FR", "75001", None),
    ("Toronto", "CA", "M5H 2N2", "ON"),
    ("Sydney", "AU", "2000", "NSW"),
]
_BRANDS = [("visa", 0.6), ("mastercard", 0.3), ("amex", 0.1)]


# -- records (slotted: 100k companies means millions of them) -------------------------------


@dataclass(slots=True)
class _Customer:
    id: str
    created: int
    email: str | None
    name: str | None
    metadata: dict[str, str]  # replaced, never mutated (events share it)
    address: dict[str, Any] | None  # replaced, never mutated
    phone: str | None
    description: str | None
    default_pm: str | None
    delinquent: bool
    invoice_prefix: str
    next_seq: int
    preferred_locales: tuple[str, ...] = ()


@dataclass(slots=True)
class _PaymentMethod:
    id: str
    created: int
    customer: str | None
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    country: str
    name: str | None
    email: str | None


@dataclass(slots=True)
class _Subscription:
    id: str
    customer: str
    company: int
    created: int
    anchor: tuple[int, int, int, int]  # (year, month, day, seconds of day) of the billing anchor
    plan: str
    quantity: int
    collection_method: str
    status: str
    period_k: int  # index of the current period counted from the anchor
    period_start: int
    period_end: int
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    reason: str | None = None
    feedback: str | None = None
    comment: str | None = None
    latest_invoice: str | None = None


@dataclass(slots=True)
class _Invoice:
    id: str
    customer: str
    subscription: str
    created: int
    billing_reason: str
    collection_method: str
    period_start: int  # "usage" period (the previous cycle), as Stripe reports for cycles
    period_end: int
    line_start: int  # the service period billed by the line
    line_end: int
    plan: str
    quantity: int
    amount_due: int
    status: str = "draft"
    attempt_count: int = 0
    amount_paid: int = 0
    finalized_at: int | None = None
    paid_at: int | None = None
    uncollectible_at: int | None = None
    next_attempt: int | None = None
    due_date: int | None = None
    number: str | None = None
    paid_out_of_band: bool = False
    charge: str | None = None
    billed_to: tuple[Any, ...] | None = (
        None  # customer (email, name, address) frozen at finalization
    )


@dataclass(slots=True)
class _Charge:
    id: str
    customer: str
    created: int
    amount: int
    succeeded: bool
    failure_code: str | None
    pm: str
    exp_month: int
    exp_year: int
    invoice: str
    description: str


@dataclass(slots=True)
class _Event:
    id: str
    type: str
    created: int
    api_version: str
    kind: str
    obj_id: str
    state: tuple[Any, ...]
    prev: dict[str, Any] | None
    request_id: str | None
    idempotency_key: str | None


# The fields of each record that change over time: an event keeps these as a tuple.
_MUTABLE: dict[str, tuple[str, ...]] = {
    "customer": (
        "email",
        "name",
        "metadata",
        "address",
        "phone",
        "description",
        "default_pm",
        "delinquent",
    ),
    "payment_method": ("customer", "exp_month", "exp_year"),
    "subscription": (
        "quantity",
        "status",
        "period_k",
        "period_start",
        "period_end",
        "cancel_at_period_end",
        "cancel_at",
        "canceled_at",
        "ended_at",
        "reason",
        "feedback",
        "comment",
        "latest_invoice",
    ),
    "invoice": (
        "status",
        "attempt_count",
        "amount_paid",
        "finalized_at",
        "paid_at",
        "uncollectible_at",
        "next_attempt",
        "due_date",
        "number",
        "paid_out_of_band",
        "charge",
        "billed_to",
    ),
    "charge": (),
}
_SNAP = {
    kind: (operator.attrgetter(*fields) if len(fields) > 1 else (lambda rec: ()))
    for kind, fields in _MUTABLE.items()
}


# -- calendar helpers ------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _month_info(year: int, month: int) -> tuple[int, int]:
    """(unix seconds of the month's first midnight UTC, days in the month)."""
    return calendar.timegm((year, month, 1, 0, 0, 0)), calendar.monthrange(year, month)[1]


def _anchor_of(ts: int) -> tuple[int, int, int, int]:
    d = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    return d.year, d.month, d.day, d.hour * 3600 + d.minute * 60 + d.second


def _boundary(anchor: tuple[int, int, int, int], k: int) -> int:
    """Start of billing period ``k``: the anchor's day in the k-th month (clamped), same time."""
    year, month, day, sod = anchor
    idx = year * 12 + month - 1 + k
    start, days = _month_info(idx // 12, idx % 12 + 1)
    return start + (min(day, days) - 1) * DAY + sod


def _period_index(anchor: tuple[int, int, int, int], ts: int) -> int:
    """The largest k with ``_boundary(anchor, k) <= ts``."""
    k = max(0, int((ts - _boundary(anchor, 0)) // (30.44 * DAY)))
    while _boundary(anchor, k + 1) <= ts:
        k += 1
    while k > 0 and _boundary(anchor, k) > ts:
        k -= 1
    return k


def _ri(rng: Any, low: int, high: int) -> int:
    """``rng.randint`` without its argument checking (seeding calls it millions of times)."""
    return low + int(rng.random() * (high - low + 1))


def _card_expiry(year: int, month: int) -> int:
    """A card is good through the last second of its expiry month."""
    return _month_info(year + month // 12, month % 12 + 1)[0]


def _ym(ts: int) -> tuple[int, int]:
    d = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    return d.year, d.month


# -- request helpers -------------------------------------------------------------------------


def parse_form(items: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding to nested values: ``a[b]=1``, ``expand[]=x``, ``expand[0]=x``."""
    root: dict[str, Any] = {}
    for key, value in items:
        name, _, rest = key.partition("[")
        parts = [name] + (re.findall(r"([^\]]*)\]", rest) if rest else [])
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # "expand[]": append
                part = str(len(node))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def _mask_key(key: str) -> str:
    """Stripe shows the key's prefix and last four characters: ``sk_test_********1234``."""
    match = re.match(r"^((?:sk|rk|pk)_(?:test|live)_)(.*)$", key)
    prefix, rest = (match.group(1), match.group(2)) if match else ("", key)
    if len(rest) <= 4:
        return prefix + "*" * len(rest)
    return prefix + "*" * (len(rest) - 4) + rest[-4:]


class _ApiError(Exception):
    """Raised inside handlers; turned into Stripe's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ):  # noqa: A002
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param


def _missing(kind: str, obj_id: str, param: str | None = "id", status: int = 404) -> _ApiError:
    return _ApiError(
        status, f"No such {_NICE_NAME[kind]}: '{obj_id}'", code="resource_missing", param=param
    )


# -- the fake --------------------------------------------------------------------------------


class StripeAPI(FakeAPI):
    """Stateful fake of the Stripe API (v1) over the seeded world."""

    name = "stripe"
    prefixes = ("/v1/",)

    def __init__(self, sandbox: Any):
        super().__init__(sandbox)
        seed = self.world.seed
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        r = rng_for(seed, "stripe", "tag")
        self._tag = "".join(r.choice(alphabet) for _ in range(4))
        self._counters: dict[str, int] = defaultdict(int)
        self._store: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        # Ascending sort keys per kind: ``created << 40 | id counter`` (ids end in the counter),
        # so ordering by (created, id) is an int sort and a key turns back into its id.
        self._keys: dict[str, list[int]] = {kind: [] for kind in KINDS}
        self._by_customer: dict[str, dict[str, list[str]]] = {
            k: defaultdict(list) for k in ("payment_method", "subscription", "invoice", "charge")
        }
        self._by_email: dict[str, list[str]] = defaultdict(list)
        self._customer_by_company: dict[int, str] = {}
        self._company_by_customer: dict[str, int] = {}
        self._sub_by_company: dict[int, str] = {}
        self._heap: list[tuple[int, int, str, str, Any]] = []
        self._heap_seq = 0
        self._bulk = False  # seeding: append keys, sort once at the end
        self._emit_from = 0  # no events for changes before this (seed history)
        self._script: dict[str, dict[str, Any]] = {}  # seed-only outcomes per subscription
        self._rng = rng_for(seed, "stripe", "seed")
        self._idempotency: dict[str, tuple[Any, int, bytes, dict[str, str], int]] = {}
        self._windows: dict[str, SlidingWindow] = {}
        self._local = threading.local()
        self._request_seq = 0
        start = int(self.world.start.timestamp())
        self._version_upgraded_at = start - 20 * DAY
        self._prices = {
            plan: {
                "id": f"price_{self._tag}{plan.capitalize()}Seat",
                "unit_amount": amount,
                "nickname": f"Lumen {plan.capitalize()} (per seat)",
                "created": start - 900 * DAY,
            }
            for plan, amount in PLANS.items()
        }
        self._product = f"prod_{self._tag}Lumen"
        self._invoice_seq = 0

    # -- ids, time, indexes ------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        n = self._counters[prefix] = self._counters[prefix] + 1
        return f"{prefix}_{self._tag}{n:010X}"

    def _now(self) -> int:
        return self.world.clock.ts()

    def _add(self, kind: str, rec: Any, customer: str | None = None) -> None:
        rec_id = rec.id
        self._store[kind][rec_id] = rec
        key = (rec.created << _SHIFT) | int(rec_id[-10:], 16)
        keys = self._keys[kind]
        if self._bulk or not keys or key >= keys[-1]:
            keys.append(key)
        else:  # lands near the end: list.insert moves only the few newer keys
            bisect.insort(keys, key)
        if customer is not None:
            self._by_customer[kind][customer].append(rec_id)

    def _id_of(self, kind: str, key: int) -> str:
        return f"{_ID_PREFIX[kind]}_{self._tag}{key & _MASK:010X}"

    @staticmethod
    def _key_of(rec: Any) -> int:
        return (rec.created << _SHIFT) | int(rec.id[-10:], 16)

    def _schedule(self, ts: int, action: str, target: str, extra: Any = None) -> None:
        self._heap_seq += 1
        heapq.heappush(self._heap, (ts, self._heap_seq, action, target, extra))

    def _emit(
        self,
        type_: str,
        ts: int,
        kind: str,
        rec: Any,
        prev: dict[str, Any] | None = None,
        request: tuple[str | None, str | None] = (None, None),
    ) -> None:
        if ts < self._emit_from:
            return
        version = CURRENT_API_VERSION if ts >= self._version_upgraded_at else LEGACY_API_VERSION
        event = _Event(
            self._new_id("evt"),
            type_,
            ts,
            version,
            kind,
            rec.id,
            _SNAP[kind](rec),
            prev,
            request[0],
            request[1],
        )
        self._add("event", event)

    # -- test helpers ------------------------------------------------------------------

    def customer_id_for(self, company_key: int) -> str:
        """The Stripe customer id of a world company (the link is private, not in metadata)."""
        return self._customer_by_company[company_key]

    def subscription_id_for(self, company_key: int) -> str:
        return self._sub_by_company[company_key]

    def company_key_for(self, customer_id: str) -> int | None:
        return self._company_by_customer.get(customer_id)

    def count(self, resource: str) -> int:
        """How many objects a full listing returns (events: only the last 30 days)."""
        kind = RESOURCES.get(resource, resource)
        if kind == "event":
            keys = self._keys["event"]
            return len(keys) - bisect.bisect_left(keys, (self._now() - EVENT_RETENTION) << _SHIFT)
        return len(self._store[kind])

    def get(self, resource: str, obj_id: str) -> dict[str, Any]:
        """Render one object as the API would (current version)."""
        kind = RESOURCES.get(resource, resource)
        return self._render(kind, self._store[kind][obj_id], legacy=False)

    # -- seeding -----------------------------------------------------------------------

    def seed(self) -> None:
        now = self._now()
        self._bulk = True
        self._emit_from = now - HISTORY_DAYS * DAY
        rng = self._rng
        pending: list[tuple[int, int, str, str, Any]] = []
        # Millions of small objects: the cyclic GC would rescan them over and over.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for company in self.world.companies:
                # Companies do not interact, so each history runs on its own small heap.
                self._heap = []
                self._seed_company(company, rng, now)
                self._run_until(now + 1, seeding=True)
                self._script.clear()
                pending.extend(self._heap)
            heapq.heapify(pending)
            self._heap = pending
            for kind in KINDS:
                self._keys[kind].sort()
        finally:
            self._bulk = False
            self._emit_from = 0
            if gc_was_enabled:
                gc.enable()

    def _seed_company(self, company: Any, rng: Any, now: int) -> None:
        created = int(company.created_at.timestamp())
        cus_id = self._new_id("cus")
        address = None
        if rng.random() > 0.05 and "no_payment_method" not in company.traps:
            city, country, postal, state = rng.choice(_CITIES)
            address = {
                "city": city,
                "country": country,
                "line1": f"{_ri(rng, 1, 999)} Market Street",
                "line2": None,
                "postal_code": postal,
                "state": state,
            }
        n = self._counters["cus"]
        customer = _Customer(
            id=cus_id,
            created=created,
            email=company.billing_email,
            name=company.name,
            metadata={"hubspot_company_id": company.hubspot_id}
            if company.stripe_link == "explicit"
            else {},
            address=address,
            phone=None,
            description=None,
            default_pm=None,
            delinquent=False,
            invoice_prefix=f"{(n * 2654435761) % 0xFFFFFFFF:08X}",
            next_seq=1,
        )
        self._add("customer", customer)
        self._by_email[company.billing_email].append(cus_id)
        self._customer_by_company[company.key] = cus_id
        self._company_by_customer[cus_id] = company.key
        archetype = company.archetype
        has_card = "no_payment_method" not in company.traps
        if has_card:
            if (archetype == "at_risk" and rng.random() < 0.5) or (
                archetype == "slipping" and rng.random() < 0.25
            ):
                exp = now + _ri(rng, 0, 29) * DAY  # expires within 30 days of the clock
            else:
                exp = now + _ri(rng, 60, 1400) * DAY
            year, month = _ym(exp)
            pm = self._new_card(cus_id, created + 60, month, year, rng, company)
            customer.default_pm = pm.id
        anchor_ts = created + 300
        anchor = _anchor_of(anchor_ts)
        k_now = _period_index(anchor, now)
        script: dict[str, Any] = {}
        collection = "charge_automatically"
        if not has_card or (company.plan == "enterprise" and archetype != "at_risk"):
            collection = "send_invoice"
        first_k = max(0, k_now - HISTORY_PERIODS + 1)
        if archetype == "churned":
            if rng.random() < 0.5:  # cancelled right away
                end = now - _ri(rng, 2, 75) * DAY - _ri(rng, 0, DAY - 1)
                end = max(end, _boundary(anchor, 1) + DAY)
                script["cancel"] = (end, True)
                last_k = _period_index(anchor, end)
            else:  # cancelled at the end of a period
                j = k_now if rng.random() < 0.5 and k_now >= 2 else max(1, k_now - 1)
                ends = _boundary(anchor, j)
                asked = max(_boundary(anchor, j - 1) + HOUR * 2, ends - _ri(rng, 1, 20) * DAY)
                script["cancel"] = (asked, False)
                last_k = j - 1
            first_k = max(0, last_k - HISTORY_PERIODS + 1)
        elif archetype == "slipping":
            # Late by a retry (days) or past a 30-day due date (weeks): old enough to be paid.
            newest = k_now - 1 if collection == "charge_automatically" else k_now - 2
            script["late"] = _boundary(anchor, _ri(rng, first_k, max(first_k, newest)))
        elif archetype == "at_risk":
            fail_k = k_now if _boundary(anchor, k_now) <= now - 4 * DAY else max(first_k, k_now - 1)
            script["fail_from"] = _boundary(anchor, fail_k)
            if rng.random() < 0.5 and fail_k - 2 >= first_k:
                script["late"] = _boundary(anchor, fail_k - 2)
        quantity = company.seats
        if archetype == "expanding":
            delta = _ri(rng, 1, max(1, company.seats // 4))
            if company.seats - delta >= 1:
                # Started with fewer seats; the rise shows as a subscription update.
                script["seats"] = (
                    now - _ri(rng, 3, 28) * DAY - _ri(rng, 0, DAY - 1),
                    company.seats,
                )
                quantity = company.seats - delta
        sub = _Subscription(
            id=self._new_id("sub"),
            customer=cus_id,
            company=company.key,
            created=anchor_ts,
            anchor=anchor,
            plan=company.plan,
            quantity=quantity,
            collection_method=collection,
            status="active",
            period_k=first_k - 1,
            period_start=_boundary(anchor, max(first_k - 1, 0)),
            period_end=_boundary(anchor, first_k),
        )
        self._add("subscription", sub, cus_id)
        self._sub_by_company[company.key] = sub.id
        self._script[sub.id] = script
        # Periods that end long before anything scripted or visible as events are built
        # directly (paid on time); the rest run through the same machinery as advance().
        horizon = min(
            [now - HISTORY_DAYS * DAY]
            + [v[0] if isinstance(v, tuple) else v for v in script.values()]
        )
        k = first_k
        start = _boundary(anchor, k)
        # An automatic charge settles within the hour; an emailed invoice within 3 weeks.
        settle = HOUR + 1 if collection == "charge_automatically" else 22 * DAY
        while start + settle <= horizon:
            end = _boundary(anchor, k + 1)
            self._fast_invoice(sub, customer, k, start, end, rng)
            sub.period_k, sub.period_start, sub.period_end = k, start, end
            k, start = k + 1, end
        self._schedule(start, "renew", sub.id)
        if "cancel" in script:
            self._schedule(script["cancel"][0], "cancel", sub.id, script["cancel"][1])
        if "seats" in script:
            self._schedule(script["seats"][0], "seats", sub.id, script["seats"][1])

    def _fast_invoice(
        self, sub: _Subscription, customer: _Customer, k: int, start: int, end: int, rng: Any
    ) -> None:
        """A period's invoice settled on time, built without the event machinery (seed only)."""
        amount = sub.quantity * PLANS[sub.plan]
        finalized = start + HOUR
        number = self._next_number()
        inv_id = self._new_id("in")
        if sub.collection_method == "charge_automatically":
            paid_at, due = finalized, None
        else:
            due = finalized + DAYS_UNTIL_DUE * DAY
            paid_at = finalized + _ri(rng, 2, 20) * DAY + _ri(rng, 0, DAY - 1)
        charge_id = None
        if customer.default_pm:
            pm = self._store["payment_method"][customer.default_pm]
            charge_id = self._new_id("ch")
            description = "Subscription creation" if k == 0 else "Subscription update"
            self._add(
                "charge",
                _Charge(
                    charge_id,
                    customer.id,
                    paid_at,
                    amount,
                    True,
                    None,
                    pm.id,
                    pm.exp_month,
                    pm.exp_year,
                    inv_id,
                    description,
                ),
                customer.id,
            )
        inv = _Invoice(
            inv_id, customer.id, sub.id, start, "subscription_create" if k == 0 else "subscription_cycle",
            sub.collection_method, sub.period_start if k > 0 else start, start, start, end, sub.plan,
            sub.quantity, amount, "paid", 1 if charge_id else 0, amount, finalized, paid_at, None, None,
            due, number, charge_id is None, charge_id, (customer.email, customer.name, customer.address),
        )  # fmt: skip
        self._add("invoice", inv, customer.id)
        sub.latest_invoice = inv_id

    def _new_card(
        self, cus_id: str, ts: int, month: int, year: int, rng: Any, company: Any
    ) -> _PaymentMethod:
        roll = rng.random()
        brand = "visa" if roll < 0.6 else "mastercard" if roll < 0.9 else "amex"
        pm = _PaymentMethod(
            id=self._new_id("pm"),
            created=ts,
            customer=cus_id,
            brand=brand,
            last4=f"{_ri(rng, 0, 9999):04d}",
            exp_month=month,
            exp_year=year,
            fingerprint=f"{rng.getrandbits(64):016x}"[:16],
            country="US",
            name=company.name,
            email=company.billing_email,
        )
        self._add("payment_method", pm, cus_id)
        return pm

    # -- simulation --------------------------------------------------------------------

    def advance(self, start: dt.datetime, end: dt.datetime, day_index: int) -> None:
        rng = rng_for(self.world.seed, "stripe", "day", day_index)
        self._rng = rng
        t0, t1 = int(start.timestamp()), int(end.timestamp())
        companies = self.world.companies
        for key, sub_id in self._sub_by_company.items():
            sub = self._store["subscription"][sub_id]
            if sub.status == "canceled" or sub.cancel_at_period_end:
                continue
            archetype = companies[key].archetype
            if archetype == "expanding" and rng.random() < 1 / 20:
                extra = _ri(rng, 1, max(1, sub.quantity // 5))
                self._schedule(_ri(rng, t0, t1 - 1), "seats", sub_id, sub.quantity + extra)
            elif archetype == "slipping" and sub.quantity > 1 and rng.random() < 1 / 40:
                # Slipping customers shed seats now and then (a downgrade).
                fewer = _ri(rng, 1, max(1, sub.quantity // 5))
                self._schedule(_ri(rng, t0, t1 - 1), "seats", sub_id, max(1, sub.quantity - fewer))
            elif archetype == "at_risk" and rng.random() < 1 / 120:
                self._schedule(_ri(rng, t0, t1 - 1), "cancel", sub_id, rng.random() < 0.6)
        self._run_until(t1, seeding=False)
        # Stripe keeps 30 days of events; drop what no request can reach any more.
        keys = self._keys["event"]
        cut = bisect.bisect_left(keys, (t1 - EVENT_RETENTION - DAY) << _SHIFT)
        if cut:
            events = self._store["event"]
            for key in keys[:cut]:
                events.pop(self._id_of("event", key), None)
            del keys[:cut]
        for key, (*_, saved_at) in list(self._idempotency.items()):
            if saved_at < t1 - IDEMPOTENCY_TTL:
                del self._idempotency[key]

    def _run_until(self, until: int, *, seeding: bool) -> None:
        heap = self._heap
        while heap and heap[0][0] < until:
            ts, _, action, target, extra = heapq.heappop(heap)
            getattr(self, "_do_" + action)(ts, target, extra, seeding)

    def _do_renew(self, ts: int, sub_id: str, extra: Any, seeding: bool) -> None:
        sub = self._store["subscription"][sub_id]
        if sub.status == "canceled" or sub.period_end != ts:
            return
        if sub.cancel_at_period_end:
            self._end_subscription(sub, ts)
            return
        prev_item = {"period_start": sub.period_start, "period_end": sub.period_end}
        prev_latest = sub.latest_invoice
        k = sub.period_k + 1
        sub.period_k = k
        sub.period_start = ts
        sub.period_end = _boundary(sub.anchor, k + 1)
        inv = self._new_invoice(sub, ts, k, prev_item["period_start"] if k > 0 else ts)
        sub.latest_invoice = inv.id
        if k > 0:
            self._emit(
                "customer.subscription.updated",
                ts,
                "subscription",
                sub,
                {"_item": prev_item, "latest_invoice": prev_latest},
            )
        self._emit("invoice.created", ts, "invoice", inv)
        self._schedule(ts + HOUR, "finalize", inv.id)
        self._schedule(sub.period_end, "renew", sub.id)

    def _new_invoice(self, sub: _Subscription, ts: int, k: int, usage_start: int) -> _Invoice:
        amount = sub.quantity * PLANS[sub.plan]
        inv = _Invoice(
            id=self._new_id("in"),
            customer=sub.customer,
            subscription=sub.id,
            created=ts,
            billing_reason="subscription_create" if k == 0 else "subscription_cycle",
            collection_method=sub.collection_method,
            period_start=usage_start,
            period_end=ts,
            line_start=ts,
            line_end=sub.period_end,
            plan=sub.plan,
            quantity=sub.quantity,
            amount_due=amount,
            next_attempt=ts + HOUR if sub.collection_method == "charge_automatically" else None,
        )
        self._add("invoice", inv, sub.customer)
        return inv

    def _do_finalize(self, ts: int, inv_id: str, extra: Any, seeding: bool) -> None:
        inv = self._store["invoice"][inv_id]
        if inv.status != "draft":
            return
        customer = self._store["customer"][inv.customer]
        inv.status = "open"
        inv.finalized_at = ts
        inv.number = self._next_number()
        inv.billed_to = (customer.email, customer.name, customer.address)
        if inv.collection_method == "send_invoice":
            inv.due_date = ts + DAYS_UNTIL_DUE * DAY
            inv.next_attempt = None
        self._emit("invoice.finalized", ts, "invoice", inv)
        if inv.collection_method == "charge_automatically":
            self._attempt(inv, ts, seeding)
        else:
            pay_at = self._send_invoice_payment(inv, seeding)
            if pay_at is not None:
                self._schedule(pay_at, "pay", inv.id)
            if pay_at is None or pay_at > inv.due_date:
                self._schedule(inv.due_date, "overdue", inv.id)
            if pay_at is None:
                self._schedule(inv.due_date + UNCOLLECTIBLE_AFTER, "uncollectible", inv.id)

    def _do_attempt(self, ts: int, inv_id: str, extra: Any, seeding: bool) -> None:
        inv = self._store["invoice"][inv_id]
        if inv.status == "open" and inv.next_attempt == ts:
            self._attempt(inv, ts, seeding)

    def _do_pay(self, ts: int, inv_id: str, extra: Any, seeding: bool) -> None:
        inv = self._store["invoice"][inv_id]
        if inv.status != "open":
            return
        customer = self._store["customer"][inv.customer]
        charge = None
        if customer.default_pm:
            charge = self._new_charge(inv, ts, customer.default_pm, None)
            inv.attempt_count += 1
        else:
            inv.paid_out_of_band = True
        self._mark_paid(inv, ts, charge)

    def _attempt(self, inv: _Invoice, ts: int, seeding: bool) -> None:
        """One automatic payment attempt of an open invoice (charge, then invoice events)."""
        sub = self._store["subscription"][inv.subscription]
        customer = self._store["customer"][inv.customer]
        company = self.world.companies[sub.company]
        inv.attempt_count += 1
        pm = self._store["payment_method"].get(customer.default_pm) if customer.default_pm else None
        failure = None
        if pm is None:
            failure = "no_payment_method"
        else:
            if ts >= _card_expiry(pm.exp_year, pm.exp_month):
                if company.archetype in ("healthy", "expanding"):
                    # The card account updater refreshes good customers' expired cards.
                    prev = {"card": {"exp_month": pm.exp_month, "exp_year": pm.exp_year}}
                    pm.exp_year += 3
                    self._emit("payment_method.updated", ts, "payment_method", pm, prev)
                else:
                    failure = "expired_card"
            if failure is None:
                failure = self._decide_failure(inv, sub, company.archetype, seeding)
        charge = None
        if pm is not None:
            charge = self._new_charge(inv, ts, pm.id, failure)
        if failure is None:
            self._mark_paid(inv, ts, charge)
            return
        if charge is not None:
            inv.charge = charge.id
        if inv.attempt_count < MAX_ATTEMPTS:
            inv.next_attempt = ts + RETRY_OFFSETS[inv.attempt_count - 1]
            self._schedule(inv.next_attempt, "attempt", inv.id)
        else:
            # Retries exhausted: the invoice stays open (past due) until dunning gives up.
            inv.next_attempt = None
            self._schedule(ts + UNCOLLECTIBLE_AFTER, "uncollectible", inv.id)
        self._emit("invoice.payment_failed", ts, "invoice", inv)
        self._past_due(sub, customer, inv, ts)
        if (
            failure == "expired_card"
            and company.archetype == "slipping"
            and self._rng.random() < 0.7
        ):
            self._schedule(ts + _ri(self._rng, 1, 3) * DAY, "newcard", customer.id)

    def _next_number(self) -> str:
        # Account-level numbering: customers' next_invoice_sequence does not move (and Stripe
        # sends no event for it), so listing and event replay agree.
        self._invoice_seq += 1
        return f"{self._tag.upper()}-{self._invoice_seq:06d}"

    def _set_delinquent(self, customer: _Customer, value: bool, ts: int) -> None:
        if customer.delinquent != value:
            prev = {"delinquent": customer.delinquent}
            customer.delinquent = value
            self._emit("customer.updated", ts, "customer", customer, prev)

    def _past_due(self, sub: _Subscription, customer: _Customer, inv: _Invoice, ts: int) -> None:
        self._set_delinquent(customer, True, ts)
        if sub.status == "active" and sub.latest_invoice == inv.id:
            sub.status = "past_due"
            self._emit(
                "customer.subscription.updated", ts, "subscription", sub, {"status": "active"}
            )

    def _do_overdue(self, ts: int, inv_id: str, extra: Any, seeding: bool) -> None:
        inv = self._store["invoice"][inv_id]
        if inv.status == "open":
            sub = self._store["subscription"][inv.subscription]
            self._past_due(sub, self._store["customer"][inv.customer], inv, ts)

    def _do_uncollectible(self, ts: int, inv_id: str, extra: Any, seeding: bool) -> None:
        inv = self._store["invoice"][inv_id]
        if inv.status != "open":
            return
        inv.status = "uncollectible"
        inv.uncollectible_at = ts
        self._emit("invoice.marked_uncollectible", ts, "invoice", inv)
        sub = self._store["subscription"][inv.subscription]
        if sub.status == "past_due" and sub.latest_invoice == inv.id:
            sub.status = "unpaid"
            self._emit(
                "customer.subscription.updated", ts, "subscription", sub, {"status": "past_due"}
            )

    def _decide_failure(
        self, inv: _Invoice, sub: _Subscription, archetype: str, seeding: bool
    ) -> str | None:
        rng = self._rng
        decline = "insufficient_funds" if rng.random() < 0.5 else "card_declined"
        if seeding:
            script = self._script.get(sub.id, {})
            if "fail_from" in script and inv.created >= script["fail_from"]:
                return decline
            if script.get("late") == inv.created and inv.attempt_count == 1:
                return decline
            return None
        if archetype == "at_risk":
            return decline if rng.random() < (0.5 if inv.attempt_count == 1 else 0.7) else None
        if archetype == "slipping":
            return decline if rng.random() < (0.12 if inv.attempt_count == 1 else 0.3) else None
        return None

    def _send_invoice_payment(self, inv: _Invoice, seeding: bool) -> int | None:
        """When a customer on ``send_invoice`` pays (None = not before something else happens)."""
        rng = self._rng
        sub = self._store["subscription"][inv.subscription]
        archetype = self.world.companies[sub.company].archetype
        assert inv.finalized_at is not None and inv.due_date is not None
        if seeding:
            script = self._script.get(sub.id, {})
            if "fail_from" in script and inv.created >= script["fail_from"]:
                return None
            if script.get("late") == inv.created:
                return inv.due_date + _ri(rng, 2, 12) * DAY + _ri(rng, 0, DAY - 1)
            return inv.finalized_at + _ri(rng, 2, 20) * DAY + _ri(rng, 0, DAY - 1)
        if archetype == "at_risk" and rng.random() < 0.5:
            return None
        if archetype in ("slipping", "at_risk") and rng.random() < 0.3:
            return inv.due_date + _ri(rng, 2, 12) * DAY + _ri(rng, 0, DAY - 1)
        return inv.finalized_at + _ri(rng, 2, 20) * DAY + _ri(rng, 0, DAY - 1)

    def _new_charge(self, inv: _Invoice, ts: int, pm_id: str, failure: str | None) -> _Charge:
        pm = self._store["payment_method"][pm_id]
        charge = _Charge(
            id=self._new_id("ch"),
            customer=inv.customer,
            created=ts,
            amount=inv.amount_due,
            succeeded=failure is None,
            failure_code=failure,
            pm=pm_id,
            exp_month=pm.exp_month,
            exp_year=pm.exp_year,
            invoice=inv.id,
            description="Subscription creation"
            if inv.billing_reason == "subscription_create"
            else "Subscription update",
        )
        self._add("charge", charge, inv.customer)
        self._emit("charge.succeeded" if failure is None else "charge.failed", ts, "charge", charge)
        return charge

    def _mark_paid(self, inv: _Invoice, ts: int, charge: _Charge | None) -> None:
        inv.status = "paid"
        inv.amount_paid = inv.amount_due
        inv.paid_at = ts
        inv.next_attempt = None
        if charge is not None:
            inv.charge = charge.id
        self._emit("invoice.paid", ts, "invoice", inv)
        sub = self._store["subscription"][inv.subscription]
        customer = self._store["customer"][inv.customer]
        if not customer.delinquent and sub.status == "active":
            return
        invoices = self._store["invoice"]
        still_open = any(
            invoices[i].status == "open" and invoices[i].attempt_count > 0
            for i in self._by_customer["invoice"][inv.customer][-3:]
        )
        if not still_open:
            self._set_delinquent(customer, False, ts)
            if sub.status in ("past_due", "unpaid"):
                prev_status = sub.status
                sub.status = "active"
                self._emit(
                    "customer.subscription.updated",
                    ts,
                    "subscription",
                    sub,
                    {"status": prev_status},
                )

    def _do_seats(self, ts: int, sub_id: str, quantity: int, seeding: bool) -> None:
        sub = self._store["subscription"][sub_id]
        if sub.status == "canceled" or quantity == sub.quantity:
            return
        prev = {"_item": {"quantity": sub.quantity}}
        sub.quantity = quantity
        company = self.world.companies[sub.company]
        company.seats = quantity  # ground truth follows billing
        self._emit("customer.subscription.updated", ts, "subscription", sub, prev)

    def _do_cancel(self, ts: int, sub_id: str, immediately: bool, seeding: bool) -> None:
        sub = self._store["subscription"][sub_id]
        if sub.status == "canceled" or sub.cancel_at_period_end:
            return
        company = self.world.companies[sub.company]
        rng = self._rng
        feedback = rng.choice(_FEEDBACK)
        if feedback == "switched_service" and not company.competitor:
            feedback = "too_expensive"
        comment = _FEEDBACK_COMMENT[feedback]
        if comment:
            comment = comment.format(competitor=company.competitor)
        sub.reason, sub.feedback, sub.comment = "cancellation_requested", feedback, comment
        sub.canceled_at = ts
        if immediately:
            self._end_subscription(sub, ts)
            return
        prev = {
            "cancel_at_period_end": False,
            "cancel_at": None,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        }
        sub.cancel_at_period_end = True
        sub.cancel_at = sub.period_end
        self._emit("customer.subscription.updated", ts, "subscription", sub, prev)

    def _end_subscription(self, sub: _Subscription, ts: int) -> None:
        sub.status = "canceled"
        sub.ended_at = ts
        if sub.canceled_at is None:
            sub.canceled_at = ts
        self._emit("customer.subscription.deleted", ts, "subscription", sub)

    def _do_newcard(self, ts: int, cus_id: str, extra: Any, seeding: bool) -> None:
        customer = self._store["customer"][cus_id]
        company = self.world.companies[self._company_by_customer[cus_id]]
        year, month = _ym(ts + _ri(self._rng, 400, 1400) * DAY)
        pm = self._new_card(cus_id, ts, month, year, self._rng, company)
        self._emit("payment_method.attached", ts, "payment_method", pm)
        prev = {"invoice_settings": {"default_payment_method": customer.default_pm}}
        customer.default_pm = pm.id
        self._emit("customer.updated", ts, "customer", customer, prev)
        # Stripe retries open invoices when the customer's payment method is updated.
        for inv_id in self._by_customer["invoice"][cus_id][-3:]:
            inv = self._store["invoice"][inv_id]
            if (
                inv.status == "open"
                and inv.collection_method == "charge_automatically"
                and inv.attempt_count < MAX_ATTEMPTS
            ):
                self._attempt(inv, ts, seeding)

    # -- rendering ---------------------------------------------------------------------

    def _render(self, kind: str, rec: Any, legacy: bool) -> dict[str, Any]:
        return getattr(self, "_render_" + kind)(rec, legacy)

    def _price(self, plan: str) -> dict[str, Any]:
        price = self._prices[plan]
        amount = price["unit_amount"]
        return {
            "id": price["id"],
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": price["created"],
            "currency": "usd",
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": plan,
            "metadata": {},
            "nickname": price["nickname"],
            "product": self._product,
            "recurring": {
                "interval": "month",
                "interval_count": 1,
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            },
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring",
            "unit_amount": amount,
            "unit_amount_decimal": str(amount),
        }

    def _plan(self, plan: str) -> dict[str, Any]:
        price = self._prices[plan]
        amount = price["unit_amount"]
        return {
            "id": price["id"],
            "object": "plan",
            "active": True,
            "amount": amount,
            "amount_decimal": str(amount),
            "billing_scheme": "per_unit",
            "created": price["created"],
            "currency": "usd",
            "interval": "month",
            "interval_count": 1,
            "livemode": False,
            "metadata": {},
            "meter": None,
            "nickname": price["nickname"],
            "product": self._product,
            "tiers_mode": None,
            "transform_usage": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }

    def _render_customer(self, c: _Customer, legacy: bool) -> dict[str, Any]:
        return {
            "id": c.id,
            "object": "customer",
            "address": dict(c.address) if c.address else None,
            "balance": 0,
            "created": c.created,
            "currency": "usd",
            "customer_account": None,
            "default_source": None,
            "delinquent": c.delinquent,
            "description": c.description,
            "discount": None,
            "email": c.email,
            "invoice_prefix": c.invoice_prefix,
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": c.default_pm,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": dict(c.metadata),
            "name": c.name,
            "next_invoice_sequence": c.next_seq,
            "phone": c.phone,
            "preferred_locales": list(c.preferred_locales),
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }

    def _render_payment_method(self, pm: _PaymentMethod, legacy: bool) -> dict[str, Any]:
        return {
            "id": pm.id,
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "email": pm.email,
                "name": pm.name,
                "phone": None,
                "tax_id": None,
            },
            "card": self._card(pm, pm.exp_month, pm.exp_year),
            "created": pm.created,
            "customer": pm.customer,
            "customer_account": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
        }

    def _card(self, pm: _PaymentMethod, exp_month: int, exp_year: int) -> dict[str, Any]:
        return {
            "brand": pm.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": pm.country,
            "display_brand": pm.brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": pm.fingerprint,
            "funding": "credit",
            "generated_from": None,
            "last4": pm.last4,
            "networks": {"available": [pm.brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        }

    def _item(
        self, s: _Subscription, legacy: bool, quantity: int, period_start: int, period_end: int
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": "si_" + s.id[4:],
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": s.created,
            "discounts": [],
            "metadata": {},
            "plan": self._plan(s.plan),
            "price": self._price(s.plan),
            "quantity": quantity,
            "subscription": s.id,
            "tax_rates": [],
        }
        if not legacy:
            item["current_period_end"] = period_end
            item["current_period_start"] = period_start
        return item

    def _render_subscription(self, s: _Subscription, legacy: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": s.id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": _boundary(s.anchor, 0),
            "billing_cycle_anchor_config": None,
            "billing_mode": {"type": "classic"},
            "billing_thresholds": None,
            "cancel_at": s.cancel_at,
            "cancel_at_period_end": s.cancel_at_period_end,
            "canceled_at": s.canceled_at,
            "cancellation_details": {
                "comment": s.comment,
                "feedback": s.feedback,
                "reason": s.reason,
            },
            "collection_method": s.collection_method,
            "created": s.created,
            "currency": "usd",
            "customer": s.customer,
            "customer_account": None,
            "days_until_due": DAYS_UNTIL_DUE if s.collection_method == "send_invoice" else None,
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "ended_at": s.ended_at,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": {
                "object": "list",
                "data": [self._item(s, legacy, s.quantity, s.period_start, s.period_end)],
                "has_more": False,
                "total_count": 1,
                "url": f"/v1/subscription_items?subscription={s.id}",
            },
            "latest_invoice": s.latest_invoice,
            "livemode": False,
            "metadata": {},
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": s.created,
            "status": s.status,
            "test_clock": None,
            "transfer_data": None,
            "trial_end": None,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": None,
        }
        if legacy:
            body["current_period_start"] = s.period_start
            body["current_period_end"] = s.period_end
            body["plan"] = self._plan(s.plan)
            body["quantity"] = s.quantity
            body["discount"] = None
            del body["billing_mode"], body["customer_account"], body["discounts"]
        return body

    def _render_invoice(self, i: _Invoice, legacy: bool) -> dict[str, Any]:
        customer = self._store["customer"].get(i.customer)
        if i.billed_to is not None:
            email, name, address = i.billed_to
        elif customer is not None:
            email, name, address = customer.email, customer.name, customer.address
        else:
            email = name = address = None
        unit = self._prices[i.plan]["unit_amount"]
        remaining = i.amount_due - i.amount_paid if i.status in ("open", "draft") else 0
        finalized = i.finalized_at is not None
        suffix = i.id[3:]
        line: dict[str, Any] = {
            "id": f"il_{suffix}",
            "object": "line_item",
            "amount": i.amount_due,
            "currency": "usd",
            "description": f"{i.quantity} × Lumen {i.plan.capitalize()} (at ${unit / 100:.2f} / month)",
            "discount_amounts": [],
            "discountable": True,
            "discounts": [],
            "invoice": i.id,
            "livemode": False,
            "metadata": {},
            "parent": {
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": i.subscription,
                    "subscription_item": "si_" + i.subscription[4:],
                },
                "type": "subscription_item_details",
            },
            "period": {"end": i.line_end, "start": i.line_start},
            "pretax_credit_amounts": [],
            "pricing": {
                "price_details": {"price": self._prices[i.plan]["id"], "product": self._product},
                "type": "price_details",
                "unit_amount_decimal": str(unit),
            },
            "quantity": i.quantity,
            "subtotal": i.amount_due,
            "taxes": [],
        }
        body: dict[str, Any] = {
            "id": i.id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "Lumen",
            "account_tax_ids": None,
            "amount_due": i.amount_due,
            "amount_overpaid": 0,
            "amount_paid": i.amount_paid,
            "amount_remaining": remaining,
            "amount_shipping": 0,
            "application": None,
            "attempt_count": i.attempt_count,
            "attempted": i.attempt_count > 0,
            "auto_advance": i.status in ("draft", "open"),
            "automatic_tax": {
                "disabled_reason": None,
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "automatically_finalizes_at": i.created + HOUR if i.status == "draft" else None,
            "billing_reason": i.billing_reason,
            "collection_method": i.collection_method,
            "created": i.created,
            "currency": "usd",
            "custom_fields": None,
            "customer": i.customer,
            "customer_account": None,
            "customer_address": dict(address) if address else None,
            "customer_email": email,
            "customer_name": name,
            "customer_phone": None,
            "customer_shipping": None,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "due_date": i.due_date,
            "effective_at": i.finalized_at,
            "ending_balance": 0 if finalized else None,
            "footer": None,
            "from_invoice": None,
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_{self._tag}/test_{suffix}"
            if finalized
            else None,
            "invoice_pdf": f"https://pay.stripe.com/invoice/acct_{self._tag}/test_{suffix}/pdf"
            if finalized
            else None,
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": {
                "object": "list",
                "data": [line],
                "has_more": False,
                "total_count": 1,
                "url": f"/v1/invoices/{i.id}/lines",
            },
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": i.next_attempt,
            "number": i.number,
            "on_behalf_of": None,
            "parent": {
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": i.subscription},
                "type": "subscription_details",
            },
            "payment_settings": {
                "default_mandate": None,
                "payment_method_options": None,
                "payment_method_types": None,
            },
            "period_end": i.period_end,
            "period_start": i.period_start,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": 0,
            "statement_descriptor": None,
            "status": i.status,
            "status_transitions": {
                "finalized_at": i.finalized_at,
                "marked_uncollectible_at": i.uncollectible_at,
                "paid_at": i.paid_at,
                "voided_at": None,
            },
            "subscription": i.subscription,
            "subtotal": i.amount_due,
            "subtotal_excluding_tax": i.amount_due,
            "test_clock": None,
            "total": i.amount_due,
            "total_discount_amounts": [],
            "total_excluding_tax": i.amount_due,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": i.created,
        }
        if legacy:
            for key in (
                "parent",
                "amount_overpaid",
                "automatically_finalizes_at",
                "customer_account",
                "total_pretax_credit_amounts",
                "total_taxes",
            ):
                del body[key]
            body["paid"] = i.status == "paid"
            body["paid_out_of_band"] = i.paid_out_of_band
            body["charge"] = i.charge
            body["payment_intent"] = "pi_" + i.charge[3:] if i.charge else None
            body["discount"] = None
            body["total_tax_amounts"] = []
            body["subscription_details"] = {"metadata": {}}
            for key in ("parent", "pretax_credit_amounts", "pricing", "taxes"):
                del line[key]
            line.update(
                {
                    "amount_excluding_tax": i.amount_due,
                    "discount": None,
                    "plan": self._plan(i.plan),
                    "price": self._price(i.plan),
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": i.subscription,
                    "subscription_item": "si_" + i.subscription[4:],
                    "tax_amounts": [],
                    "tax_rates": [],
                    "type": "subscription",
                    "unit_amount_excluding_tax": str(unit),
                }
            )
            del line["discount"]
        return body

    def _render_charge(self, c: _Charge, legacy: bool) -> dict[str, Any]:
        pm = self._store["payment_method"].get(c.pm)
        suffix = c.id[3:]
        ok = c.succeeded
        reason, message = _DECLINES.get(c.failure_code or "", (None, None))
        failure_code = "card_declined" if c.failure_code == "insufficient_funds" else c.failure_code
        card = self._card(pm, c.exp_month, c.exp_year) if pm else {}
        details_card = {
            "amount_authorized": c.amount if ok else None,
            "authorization_code": None,
            "brand": card.get("brand"),
            "checks": card.get("checks"),
            "country": card.get("country"),
            "exp_month": c.exp_month,
            "exp_year": c.exp_year,
            "extended_authorization": {"status": "disabled"},
            "fingerprint": card.get("fingerprint"),
            "funding": "credit",
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": card.get("last4"),
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": card.get("brand"),
            "network_token": {"used": False},
            "network_transaction_id": None,
            "overcapture": {"maximum_amount_capturable": c.amount, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": None,
            "wallet": None,
        }
        body: dict[str, Any] = {
            "id": c.id,
            "object": "charge",
            "amount": c.amount,
            "amount_captured": c.amount if ok else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": f"txn_{suffix}" if ok else None,
            "billing_details": {
                "address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "email": pm.email if pm else None,
                "name": pm.name if pm else None,
                "phone": None,
                "tax_id": None,
            },
            "calculated_statement_descriptor": "LUMEN",
            "captured": ok,
            "created": c.created,
            "currency": "usd",
            "customer": c.customer,
            "description": c.description,
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": failure_code,
            "failure_message": message,
            "fraud_details": {},
            "livemode": False,
            "metadata": {},
            "on_behalf_of": None,
            "outcome": {
                "advice_code": None if ok else "try_again_later",
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "approved_by_network" if ok else "declined_by_network",
                "reason": reason,
                "risk_level": "normal",
                "risk_score": 20 + int(suffix[-2:], 16) % 40,
                "seller_message": "Payment complete."
                if ok
                else "The bank did not return any further details with this decline.",
                "type": "authorized" if ok else "issuer_declined",
            },
            "paid": ok,
            "payment_intent": f"pi_{suffix}",
            "payment_method": c.pm,
            "payment_method_details": {"card": details_card, "type": "card"},
            "receipt_email": None,
            "receipt_number": None,
            "receipt_url": f"https://pay.stripe.com/receipts/payment/{suffix}" if ok else None,
            "refunded": False,
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/charges/{c.id}/refunds",
            },
            "review": None,
            "shipping": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "succeeded" if ok else "failed",
            "transfer_data": None,
            "transfer_group": None,
        }
        if legacy:
            body["invoice"] = c.invoice
        return body

    def _render_event(self, e: _Event, legacy: bool) -> dict[str, Any]:
        rec = self._store[e.kind].get(e.obj_id)
        old_shape = e.api_version < SHAPE_CHANGE
        if rec is not None and e.state:
            rec = copy.copy(rec)
            for name, value in zip(_MUTABLE[e.kind], e.state):
                setattr(rec, name, value)
        data: dict[str, Any] = {
            "object": self._render(e.kind, rec, old_shape) if rec is not None else None
        }
        if e.prev is not None:
            data["previous_attributes"] = self._render_prev(e, rec, old_shape)
        return {
            "id": e.id,
            "object": "event",
            "api_version": e.api_version,
            "context": None,
            "created": e.created,
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": e.request_id, "idempotency_key": e.idempotency_key},
            "type": e.type,
        }

    def _render_prev(self, e: _Event, rec: Any, old_shape: bool) -> dict[str, Any]:
        prev = dict(e.prev or {})
        item = prev.pop("_item", None)
        if item is not None and isinstance(rec, _Subscription):
            quantity = item.get("quantity", rec.quantity)
            start = item.get("period_start", rec.period_start)
            end = item.get("period_end", rec.period_end)
            if old_shape:
                if "quantity" in item:
                    prev["quantity"] = quantity
                if "period_start" in item:
                    prev["current_period_start"] = start
                    prev["current_period_end"] = end
            if not old_shape or "quantity" in item:
                prev["items"] = {
                    "object": "list",
                    "data": [self._item(rec, old_shape, quantity, start, end)],
                    "has_more": False,
                    "total_count": 1,
                    "url": f"/v1/subscription_items?subscription={rec.id}",
                }
        return prev

    # -- HTTP plumbing -----------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self._request_seq += 1
            request_id = f"req_{self._tag}{self._request_seq:010X}"
        self._local.request_id = request_id
        self._local.version = None
        response = super().handle(request)
        response.headers["Request-Id"] = request_id
        if self._local.version:
            response.headers["Stripe-Version"] = self._local.version
        return response

    def error(self, status: int, message: str, **extra: Any) -> httpx.Response:
        """Stripe's error body; 5xx say ``Stripe-Should-Retry: true`` like Stripe's lock errors."""
        body: dict[str, Any] = {
            "message": message,
            "type": extra.pop("type", "api_error" if status >= 500 else "invalid_request_error"),
        }
        headers = extra.pop("headers", None) or {}
        for key in ("code", "param", "decline_code"):
            value = extra.pop(key, None)
            if value is not None:
                body[key] = value
        if body.get("code"):
            body["doc_url"] = _DOCS + str(body["code"]).replace("_", "-")
        body["request_log_url"] = (
            f"https://dashboard.stripe.com/test/logs/{getattr(self._local, 'request_id', 'req')}"
        )
        if status >= 500:
            headers.setdefault("Stripe-Should-Retry", "true")
        return json_response(status, {"error": body}, headers)

    def _fail(self, exc: _ApiError) -> httpx.Response:
        return self.error(exc.status, exc.message, type=exc.type, code=exc.code, param=exc.param)

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.error(
            404,
            f"Unrecognized request URL ({request.method}: {request.url.path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    def too_many(
        self, request: httpx.Request, retry_after: float | None = None, text: bool = False
    ) -> httpx.Response:
        response = self.error(
            429,
            "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )
        if retry_after is not None:
            response.headers["retry-after"] = str(retry_after)
        return response

    def _api_key(self, request: httpx.Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() or None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip()).decode()
            except (ValueError, UnicodeDecodeError):
                return None
            return decoded.partition(":")[0] or None
        return None

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        key = self._api_key(request)
        if key is None:
            return self.error(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
            )
        if key != CREDENTIALS["stripe"]["api_key"]:
            return self.error(401, f"Invalid API Key provided: {_mask_key(key)}")
        version = request.headers.get("stripe-version")
        if version is not None and not _VERSION_RE.match(version):
            return self.error(400, f"Invalid Stripe API version: {version}", param="Stripe-Version")
        self._local.version = version or CURRENT_API_VERSION
        fault = self.faults.take(request, set(_CLIENT_FAULTS))
        if fault is not None:
            status, type_, code, message = _CLIENT_FAULTS[fault.kind]
            headers = {"Stripe-Should-Retry": "true"} if status == 409 else None
            return self.error(
                status, message.format(key=_mask_key(key)), type=type_, code=code, headers=headers
            )
        return None

    def rate_limit(self, request: httpx.Request, route_name: str) -> httpx.Response | None:
        key = self._api_key(request) or ""
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = SlidingWindow(
                    REQUESTS_PER_SECOND, 1.0 * self.sandbox.time_scale
                )
        allowed, _, _ = window.hit()
        return None if allowed else self.too_many(request)

    def _legacy(self) -> bool:
        version = getattr(self._local, "version", None) or CURRENT_API_VERSION
        return version[:10] < SHAPE_CHANGE

    # -- parameters --------------------------------------------------------------------

    def _params(self, request: httpx.Request) -> dict[str, Any]:
        if request.method == "GET":
            items = list(request.url.params.multi_items())
        else:
            items = list(request.url.params.multi_items())
            if request.content:
                items += urllib.parse.parse_qsl(
                    request.content.decode("utf-8", "replace"), keep_blank_values=True
                )
        return parse_form(items)

    @staticmethod
    def _check_allowed(params: dict[str, Any], allowed: set[str]) -> None:
        for name in params:
            if name not in allowed:
                raise _ApiError(
                    400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
                )

    @staticmethod
    def _int(value: Any, param: str) -> int:
        try:
            return int(str(value))
        except ValueError:
            raise _ApiError(
                400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
            ) from None

    def _range(self, value: Any, param: str) -> tuple[int | None, int | None]:
        """``created`` (or another timestamp filter) → inclusive low, exclusive high."""
        if value is None:
            return None, None
        if not isinstance(value, dict):
            exact = self._int(value, param)
            return exact, exact + 1
        low = high = None
        for op, raw in value.items():
            number = self._int(raw, f"{param}[{op}]")
            if op == "gte":
                low = number if low is None else max(low, number)
            elif op == "gt":
                low = number + 1 if low is None else max(low, number + 1)
            elif op == "lte":
                high = number + 1 if high is None else min(high, number + 1)
            elif op == "lt":
                high = number if high is None else min(high, number)
            else:
                raise _ApiError(
                    400,
                    f"Received unknown parameter: {param}[{op}]",
                    code="parameter_unknown",
                    param=f"{param}[{op}]",
                )
        return low, high

    def _expand_list(self, params: dict[str, Any]) -> list[str]:
        raw = params.get("expand")
        if raw is None:
            return []
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise _ApiError(400, "Invalid array", param="expand")
        return raw

    def _check_expand(self, kind: str, path: str, index: int) -> None:
        parts = path.split(".")
        if len(parts) > MAX_EXPAND_DEPTH:
            raise _ApiError(
                400,
                f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. Property: {path}",
                param=f"expand[{index}]",
            )
        rest = path
        current = kind
        while rest:
            target = None
            for field_path, target_kind in _EXPANDABLE[current].items():
                if rest == field_path or rest.startswith(field_path + "."):
                    target = (field_path, target_kind)
                    break
            if target is None:
                raise _ApiError(
                    400, f"This property cannot be expanded ({rest}).", param=f"expand[{index}]"
                )
            rest = rest[len(target[0]) + 1 :]
            current = target[1]

    def _apply_expand(self, kind: str, body: dict[str, Any], path: str, legacy: bool) -> None:
        for field_path, target_kind in _EXPANDABLE[kind].items():
            if path == field_path or path.startswith(field_path + "."):
                parts = field_path.split(".")
                node: Any = body
                for part in parts[:-1]:
                    node = node.get(part) if isinstance(node, dict) else None
                if not isinstance(node, dict):
                    return
                value = node.get(parts[-1])
                if isinstance(value, str):
                    rec = self._store[target_kind].get(value)
                    if rec is None:
                        return
                    value = node[parts[-1]] = self._render(target_kind, rec, legacy)
                rest = path[len(field_path) + 1 :]
                if rest and isinstance(value, dict):
                    self._apply_expand(target_kind, value, rest, legacy)
                return

    def _out(self, kind: str, rec: Any, expand: list[str], legacy: bool) -> dict[str, Any]:
        body = self._render(kind, rec, legacy)
        for path in expand:
            self._apply_expand(kind, body, path, legacy)
        return body

    # -- lists -------------------------------------------------------------------------

    def _list(
        self, request: httpx.Request, kind: str, *, customer: str | None = None
    ) -> httpx.Response:
        try:
            return self._list_inner(request, kind, customer)
        except _ApiError as exc:
            return self._fail(exc)

    def _list_inner(
        self, request: httpx.Request, kind: str, forced_customer: str | None
    ) -> httpx.Response:
        params = self._params(request)
        allowed = _COMMON_LIST_PARAMS | _LIST_PARAMS[kind]
        if forced_customer is not None:
            allowed = allowed - {"customer"}
        self._check_allowed(params, allowed)
        limit = 10
        if "limit" in params:
            limit = self._int(params["limit"], "limit")
            if limit < 1:
                raise _ApiError(
                    400,
                    "This value must be greater than or equal to 1.",
                    code="parameter_invalid_integer",
                    param="limit",
                )
            if limit > 100:
                raise _ApiError(
                    400,
                    "This value must be less than or equal to 100.",
                    code="parameter_invalid_integer",
                    param="limit",
                )
        after, before = params.get("starting_after") or None, params.get("ending_before") or None
        if after and before:
            raise _ApiError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        expand = self._expand_list(params)
        for index, path in enumerate(expand):
            if not path.startswith("data."):
                raise _ApiError(
                    400,
                    f"This property cannot be expanded ({path}). You may want to try expanding 'data.{path}' instead.",
                    param=f"expand[{index}]",
                )
            self._check_expand(kind, path[5:], index)
        low, high = self._range(params.get("created"), "created")
        store = self._store[kind]
        now = self._now()
        if kind == "event":
            retention = now - EVENT_RETENTION
            low = retention if low is None else max(low, retention)
        cursor_param = "starting_after" if after else "ending_before" if before else None
        if cursor_param and self.faults.take(request, {"cursor_expired"}):
            raise _missing(kind, after or before, param=cursor_param, status=400)
        cursor_key = None
        if cursor_param:
            cursor_id = after or before
            rec = store.get(cursor_id)
            if rec is None or (kind == "event" and rec.created < now - EVENT_RETENTION):
                raise _missing(kind, cursor_id, param=cursor_param, status=400)
            cursor_key = self._key_of(rec)
        predicate = self._predicate(kind, params)
        customer = forced_customer if forced_customer is not None else params.get("customer")
        if customer is not None and kind != "customer":
            if customer not in self._store["customer"]:
                raise _missing(
                    "customer",
                    customer,
                    param="customer",
                    status=400 if forced_customer is None else 404,
                )
            keys = sorted(self._key_of(store[i]) for i in self._by_customer[kind].get(customer, ()))
        elif kind == "customer" and params.get("email") is not None:
            keys = sorted(self._key_of(store[i]) for i in self._by_email.get(params["email"], ()))
        else:
            keys = self._keys[kind]
        lo = 0 if low is None else bisect.bisect_left(keys, low << _SHIFT)
        hi = len(keys) if high is None else bisect.bisect_left(keys, high << _SHIFT)
        ids, has_more = _select(
            keys, lo, hi, after_key=cursor_key if after else None, before_key=cursor_key if before else None,
            limit=limit, predicate=predicate, store=store, id_of=functools.partial(self._id_of, kind),
        )  # fmt: skip
        legacy = self._legacy()
        data = [self._out(kind, store[i], [p[5:] for p in expand], legacy) for i in ids]
        url = request.url.path
        return json_response(
            200, {"object": "list", "data": data, "has_more": has_more, "url": url}
        )

    def _predicate(self, kind: str, params: dict[str, Any]) -> Any:
        checks = []
        if kind == "subscription":
            status = params.get("status")
            if status is not None and status not in _SUB_STATUSES:
                raise _ApiError(
                    400,
                    f"Invalid status: must be one of {', '.join(sorted(_SUB_STATUSES))}",
                    param="status",
                )
            if status is None:
                checks.append(lambda r: r.status not in ("canceled", "incomplete_expired"))
            elif status == "ended":
                checks.append(lambda r: r.status in ("canceled", "incomplete_expired"))
            elif status != "all":
                checks.append(lambda r: r.status == status)
            if params.get("collection_method"):
                method = params["collection_method"]
                checks.append(lambda r: r.collection_method == method)
            if params.get("price"):
                price = params["price"]
                plans = {p for p, v in self._prices.items() if v["id"] == price}
                checks.append(lambda r: r.plan in plans)
        elif kind == "invoice":
            status = params.get("status")
            if status is not None:
                if status not in _INVOICE_STATUSES:
                    raise _ApiError(
                        400,
                        f"Invalid status: must be one of {', '.join(sorted(_INVOICE_STATUSES))}",
                        param="status",
                    )
                checks.append(lambda r: r.status == status)
            if params.get("subscription"):
                sub_id = params["subscription"]
                checks.append(lambda r: r.subscription == sub_id)
            if params.get("collection_method"):
                method = params["collection_method"]
                checks.append(lambda r: r.collection_method == method)
            if params.get("due_date") is not None:
                d_lo, d_hi = self._range(params["due_date"], "due_date")
                checks.append(
                    lambda r: (
                        r.due_date is not None
                        and (d_lo is None or r.due_date >= d_lo)
                        and (d_hi is None or r.due_date < d_hi)
                    )
                )
        elif kind == "payment_method":
            pm_type = params.get("type")
            if pm_type is not None and pm_type != "card":
                checks.append(lambda r: False)
        elif kind == "event":
            types: list[str] = []
            if params.get("type"):
                types.append(params["type"])
            raw = params.get("types")
            if raw:
                types.extend(raw if isinstance(raw, list) else [raw])
            if types:
                exact = {t for t in types if not t.endswith("*")}
                prefixes = tuple(t[:-1] for t in types if t.endswith("*"))
                checks.append(
                    lambda r: r.type in exact or (bool(prefixes) and r.type.startswith(prefixes))
                )
        elif kind == "charge" and params.get("payment_intent"):
            intent = params["payment_intent"]
            checks.append(lambda r: f"pi_{r.id[3:]}" == intent)
        if not checks:
            return None
        if len(checks) == 1:
            return checks[0]
        return lambda r: all(check(r) for check in checks)

    # -- retrieve ----------------------------------------------------------------------

    def _retrieve(self, request: httpx.Request, kind: str, obj_id: str) -> httpx.Response:
        try:
            params = self._params(request)
            self._check_allowed(params, {"expand"})
            expand = self._expand_list(params)
            for index, path in enumerate(expand):
                self._check_expand(kind, path, index)
            rec = self._store[kind].get(obj_id)
            if rec is None or (kind == "event" and rec.created < self._now() - EVENT_RETENTION):
                raise _missing(kind, obj_id)
            return json_response(200, self._out(kind, rec, expand, self._legacy()))
        except _ApiError as exc:
            return self._fail(exc)

    # -- routes ------------------------------------------------------------------------

    @route("GET", r"/v1/customers", "list_customers")
    def list_customers(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "customer")

    @route("GET", r"/v1/customers/(?P<obj_id>[^/]+)", "get_customer")
    def get_customer(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "customer", obj_id)

    @route(
        "GET", r"/v1/customers/(?P<obj_id>[^/]+)/payment_methods", "list_customer_payment_methods"
    )
    def list_customer_payment_methods(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._list(request, "payment_method", customer=obj_id)

    @route("GET", r"/v1/payment_methods", "list_payment_methods")
    def list_payment_methods(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "payment_method")

    @route("GET", r"/v1/payment_methods/(?P<obj_id>[^/]+)", "get_payment_method")
    def get_payment_method(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "payment_method", obj_id)

    @route("GET", r"/v1/subscriptions", "list_subscriptions")
    def list_subscriptions(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "subscription")

    @route("GET", r"/v1/subscriptions/(?P<obj_id>[^/]+)", "get_subscription")
    def get_subscription(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "subscription", obj_id)

    @route("GET", r"/v1/invoices", "list_invoices")
    def list_invoices(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "invoice")

    @route("GET", r"/v1/invoices/(?P<obj_id>[^/]+)", "get_invoice")
    def get_invoice(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "invoice", obj_id)

    @route("GET", r"/v1/charges", "list_charges")
    def list_charges(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "charge")

    @route("GET", r"/v1/charges/(?P<obj_id>[^/]+)", "get_charge")
    def get_charge(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "charge", obj_id)

    @route("GET", r"/v1/events", "list_events")
    def list_events(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "event")

    @route("GET", r"/v1/events/(?P<obj_id>[^/]+)", "get_event")
    def get_event(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "event", obj_id)

    @route("POST", r"/v1/customers", "create_customer")
    def create_customer(self, request: httpx.Request) -> httpx.Response:
        try:
            params = self._params(request)
            self._check_allowed(params, _CUSTOMER_WRITE_PARAMS)
            expand = self._customer_expand(params)
        except _ApiError as exc:
            return self._fail(exc)
        return self._idempotent(
            request, params, lambda: self._create_customer(request, params, expand)
        )

    @route("POST", r"/v1/customers/(?P<obj_id>[^/]+)", "update_customer")
    def update_customer(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        try:
            params = self._params(request)
            self._check_allowed(params, _CUSTOMER_WRITE_PARAMS)
            expand = self._customer_expand(params)
        except _ApiError as exc:
            return self._fail(exc)
        return self._idempotent(
            request, params, lambda: self._update_customer(request, obj_id, params, expand)
        )

    def _customer_expand(self, params: dict[str, Any]) -> list[str]:
        expand = self._expand_list(params)
        for index, path in enumerate(expand):
            self._check_expand("customer", path, index)
        for name in ("metadata", "address", "invoice_settings"):
            if name in params and not isinstance(params[name], (dict, str)):
                raise _ApiError(400, f"Invalid object: {name}", param=name)
        return expand

    def _request_ref(self, request: httpx.Request) -> tuple[str | None, str | None]:
        return getattr(self._local, "request_id", None), request.headers.get("idempotency-key")

    def _create_customer(
        self, request: httpx.Request, params: dict[str, Any], expand: list[str]
    ) -> httpx.Response:
        try:
            now = self._now()
            n = self._counters["cus"] + 1
            customer = _Customer(
                id=self._new_id("cus"),
                created=now,
                email=None,
                name=None,
                metadata={},
                address=None,
                phone=None,
                description=None,
                default_pm=None,
                delinquent=False,
                invoice_prefix=f"{(n * 2654435761) % 0xFFFFFFFF:08X}",
                next_seq=1,
            )
            self._apply_customer_params(customer, params)
            self._add("customer", customer)
            if customer.email:
                self._by_email[customer.email].append(customer.id)
            self._emit(
                "customer.created", now, "customer", customer, request=self._request_ref(request)
            )
            return json_response(200, self._out("customer", customer, expand, self._legacy()))
        except _ApiError as exc:
            return self._fail(exc)

    def _update_customer(
        self, request: httpx.Request, obj_id: str, params: dict[str, Any], expand: list[str]
    ) -> httpx.Response:
        try:
            customer = self._store["customer"].get(obj_id)
            if customer is None:
                raise _missing("customer", obj_id)
            old_email = customer.email
            prev = self._apply_customer_params(customer, params)
            if customer.email != old_email:
                if old_email and obj_id in self._by_email.get(old_email, []):
                    self._by_email[old_email].remove(obj_id)
                if customer.email:
                    self._by_email[customer.email].append(obj_id)
            if prev:
                self._emit(
                    "customer.updated",
                    self._now(),
                    "customer",
                    customer,
                    prev,
                    request=self._request_ref(request),
                )
            return json_response(200, self._out("customer", customer, expand, self._legacy()))
        except _ApiError as exc:
            return self._fail(exc)

    def _apply_customer_params(self, customer: _Customer, params: dict[str, Any]) -> dict[str, Any]:
        """Apply write parameters; returns Stripe's ``previous_attributes`` for what changed."""
        prev: dict[str, Any] = {}
        for name in ("email", "name", "phone", "description"):
            if name in params:
                value = params[name] or None
                if not isinstance(value, (str, type(None))):
                    raise _ApiError(400, f"Invalid string: {name}", param=name)
                if getattr(customer, name) != value:
                    prev[name] = getattr(customer, name)
                    setattr(customer, name, value)
        if "metadata" in params:
            raw = params["metadata"]
            if raw == "":
                new_meta: dict[str, str] = {}
            else:
                new_meta = dict(customer.metadata)
                for key, value in raw.items():
                    if not isinstance(value, str):
                        raise _ApiError(
                            400, f"Invalid string: metadata[{key}]", param=f"metadata[{key}]"
                        )
                    if value == "":
                        new_meta.pop(key, None)
                    else:
                        new_meta[key] = value
            changed = {
                k: customer.metadata.get(k)
                for k in set(customer.metadata) | set(new_meta)
                if customer.metadata.get(k) != new_meta.get(k)
            }
            if changed:
                prev["metadata"] = changed
                customer.metadata = new_meta
        if "address" in params:
            raw = params["address"]
            address = None
            if raw != "":
                address = {
                    k: None for k in ("city", "country", "line1", "line2", "postal_code", "state")
                }
                for key, value in raw.items():
                    if key not in address:
                        raise _ApiError(
                            400,
                            f"Received unknown parameter: address[{key}]",
                            code="parameter_unknown",
                            param=f"address[{key}]",
                        )
                    address[key] = value or None
            if address != customer.address:
                prev["address"] = customer.address
                customer.address = address
        if "invoice_settings" in params:
            raw = params["invoice_settings"] or {}
            for key in raw:
                if key != "default_payment_method":
                    raise _ApiError(
                        400,
                        f"Received unknown parameter: invoice_settings[{key}]",
                        code="parameter_unknown",
                        param=f"invoice_settings[{key}]",
                    )
            if "default_payment_method" in raw:
                pm_id = raw["default_payment_method"] or None
                if pm_id is not None:
                    pm = self._store["payment_method"].get(pm_id)
                    if pm is None or pm.customer != customer.id:
                        raise _missing(
                            "payment_method",
                            pm_id,
                            param="invoice_settings[default_payment_method]",
                            status=400,
                        )
                if pm_id != customer.default_pm:
                    prev["invoice_settings"] = {"default_payment_method": customer.default_pm}
                    customer.default_pm = pm_id
        if "preferred_locales" in params:
            raw = params["preferred_locales"]
            locales = tuple(raw) if isinstance(raw, list) else ()
            if locales != customer.preferred_locales:
                prev["preferred_locales"] = list(customer.preferred_locales)
                customer.preferred_locales = locales
        return prev

    def _idempotent(
        self, request: httpx.Request, params: dict[str, Any], execute: Any
    ) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        if not key:
            return execute()
        if len(key) > 255:
            return self.error(
                400, "Idempotency keys can be at most 255 characters long.", param="Idempotency-Key"
            )
        fingerprint = (request.method, request.url.path, json.dumps(params, sort_keys=True))
        saved = self._idempotency.get(key)
        now = self._now()
        if saved is not None and saved[4] >= now - IDEMPOTENCY_TTL:
            if saved[0] != fingerprint:
                return self.error(
                    400,
                    f"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
            headers = dict(saved[3])
            headers["Idempotent-Replayed"] = "true"
            headers["Idempotency-Key"] = key
            return httpx.Response(saved[1], content=saved[2], headers=headers)
        response = execute()
        headers = {k: v for k, v in response.headers.items() if k.lower() in ("content-type",)}
        self._idempotency[key] = (fingerprint, response.status_code, response.content, headers, now)
        response.headers["Idempotency-Key"] = key
        return response


def _select(
    keys: list[int],
    lo: int,
    hi: int,
    *,
    after_key: int | None,
    before_key: int | None,
    limit: int,
    predicate: Any,
    store: dict[str, Any],
    id_of: Any,
) -> tuple[list[str], bool]:
    """One newest-first page out of ascending ``keys[lo:hi]`` in O(page) (plus filtered-out rows).

    ``starting_after`` walks down from just below its key; ``ending_before`` walks up from
    just above its key and returns the page nearest to it, still newest first.
    """
    if after_key is not None and lo < hi:
        hi = bisect.bisect_left(keys, after_key, lo, hi)
    if before_key is not None and lo < hi:
        lo = bisect.bisect_right(keys, before_key, lo, hi)
    out: list[str] = []
    step, i, stop = (1, lo, hi) if before_key is not None else (-1, hi - 1, lo - 1)
    while i != stop and len(out) <= limit:
        obj_id = id_of(keys[i])
        if predicate is None or predicate(store[obj_id]):
            out.append(obj_id)
        i += step
    has_more = len(out) > limit
    out = out[:limit]
    if step == 1:
        out.reverse()
    return out, has_more
