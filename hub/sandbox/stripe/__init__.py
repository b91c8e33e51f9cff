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
- ids are a prefix, a 4-character seed tag and 10 hex digits: a seeded object's company slot
  and its count within that company (so an id never depends on which companies were
  generated first), later objects an account-wide counter above every slot; lists order by
  (``created``, id);
- invoices are numbered ``{customer invoice_prefix}-{NNNN}`` per customer (the customer's
  ``next_invoice_sequence`` stays put: Stripe sends no event for it, so replaying events
  matches a listing), and freeze the customer's e-mail, name and address at finalization as
  Stripe does;
- every change to an object emits the event a real account would (including
  ``customer.updated`` when ``delinquent`` flips), so replaying events since a point gives
  exactly what a fresh listing shows.

Data: each company has one customer, card and subscription, and its last ~6 billing periods
run through the same machinery ``advance()`` uses (renewal → draft invoice → finalize an hour
later → charge attempt → retries 3, 5 and 7 days apart → still open past due → marked
uncollectible 30 days after the last attempt), with outcomes scripted by archetype:
healthy/expanding pay on time, slipping has one invoice paid late (a retry worked, or after
the due date on ``send_invoice``), at_risk has recent failed attempts and an open past-due
invoice (half of them with a card expiring within 30 days), churned cancelled (now or at
period end) with ``cancellation_details``, expanding added seats. The no-payment-method
company pays by invoice (``send_invoice``, out of band). Periods that end well before the
event window are built directly (paid on time). Events are kept for changes in the last 35
days, so the oldest few are already past Stripe's 30-day window. ``advance()`` renews,
charges and retries on schedule, lets expanding companies add seats (``Company.seats``
follows), churns an occasional at-risk company, refreshes good customers' expired cards
(card updater) and has slipping ones attach a new card after an ``expired_card`` decline.
``variety.py`` adds, day by day on its own random streams (the seeded world stays as it
was): add-ons (a second subscription item), retention and win-back coupons (``discounts``),
yearly plans and churned customers who re-subscribe.

On demand (``lazy.py``): ``seed()`` generates no history. A company's history is generated,
on its own random stream (``draws.py`` for the moments that decide how recent its newest
records are) and in its own id space, the first time a request reads one of its objects or
a list reaches it; lists across customers walk companies from the highest bound on their
newest records down, so a page generates only the companies it can contain. The account is
the same whichever companies come first (``tests/test_sandbox_stripe_lazy.py``). A list of
any other kind generates a company without storing its charges and events (held back, in
order, until their lists or ids are asked for: about a third less work per company).
``advance()`` generates every company first. ``warm_up()`` (started by ``hub sandbox serve``
after seeding, ``hub/sandbox/warm.py``) generates the rest in the background, newest invoices
first, a few milliseconds at a time under the lock, then indexes every list. Each object's JSON is encoded once per API shape
and kept until a write (``encoded.py``).

Size: records are slotted objects, list indexes are ints (``created << 40 | counter``), and
an event keeps only its object's mutable fields (a tuple) and is rendered on demand. 100k
companies are ~570k invoices, ~630k charges and ~560k events (about 1.1 GB once every
company is generated); seeding takes ~0.25 s and the first list of a kind 0.2–0.8 s more
(a bound per company), then ~0.1 ms of CPU per company generated (without its charges and
events; storing those later costs little).
"""

from __future__ import annotations

from hub.sandbox.stripe.api import StripeAPI
from hub.sandbox.stripe.constants import (
    CURRENT_API_VERSION,
    DAY,
    DAYS_UNTIL_DUE,
    EVENT_RETENTION,
    HISTORY_DAYS,
    HISTORY_PERIODS,
    HOUR,
    IDEMPOTENCY_TTL,
    KINDS,
    LEGACY_API_VERSION,
    MAX_ATTEMPTS,
    MAX_EXPAND_DEPTH,
    REQUESTS_PER_SECOND,
    RESOURCES,
    RETRY_OFFSETS,
    SHAPE_CHANGE,
    UNCOLLECTIBLE_AFTER,
)
from hub.sandbox.stripe.protocol import parse_form

__all__ = [
    "CURRENT_API_VERSION",
    "DAY",
    "DAYS_UNTIL_DUE",
    "EVENT_RETENTION",
    "HISTORY_DAYS",
    "HISTORY_PERIODS",
    "HOUR",
    "IDEMPOTENCY_TTL",
    "KINDS",
    "LEGACY_API_VERSION",
    "MAX_ATTEMPTS",
    "MAX_EXPAND_DEPTH",
    "REQUESTS_PER_SECOND",
    "RESOURCES",
    "RETRY_OFFSETS",
    "SHAPE_CHANGE",
    "StripeAPI",
    "UNCOLLECTIBLE_AFTER",
    "parse_form",
]
