"""Stripe connector: customers, default cards, subscriptions, invoices, charges and events.

API docs: https://docs.stripe.com/api (pagination: https://docs.stripe.com/api/pagination,
events: https://docs.stripe.com/api/events/list, rate limits:
https://docs.stripe.com/rate-limits, versioning: https://docs.stripe.com/api/versioning).
The facts the hub relies on are collected in the project's API notes (Stripe rows).

Credentials, least privilege: the hub only reads, so give it a **restricted key**, never the
secret key. Dashboard → Developers → API keys → "Create restricted key" → "Providing this
key to another website" / building your own integration → set these to **Read** and leave
everything else at **None**:
- Core: **Customers**, **Payment Methods** (default cards, for expiry), **Charges**
  (failure codes), **Events** (incremental sync);
- Billing: **Subscriptions**, **Invoices**.
The key looks like ``rk_live_…`` (``rk_test_…`` in test mode); put it in
``api_key = "env:STRIPE_API_KEY"``. A secret key (``sk_…``) also works but can write
everything; a publishable key (``pk_…``) is refused at startup. The key is sent as
``Authorization: Bearer`` and never reaches logs, errors or the database. A missing
permission comes back as 403 and is reported with the resource to grant.

Budgets: Stripe allows 100 requests/s in live mode and 25 in test mode (also the default
per-endpoint budget); the client paces itself at ``requests_per_second`` (25 by default,
safe for both modes; live accounts may set up to 100). Stripe sends no rate headers and
documents no ``Retry-After``; one is honoured if a 429 carries it, otherwise a 429 is
retried with capped exponential backoff. Costs: a first sync lists
each resource once at 100 per request (customers and their cards together); every later
sync is one request per 100 new events, so a sync with no change is exactly one request.

Quirks handled here:
- Responses render in the ``Stripe-Version`` the request asks for; the connector pins
  ``api_version`` (default ``2026-10-28.endive``). Event ``data.object`` is rendered in the
  version the event was *created* in (the account's default then), so tables can hold both
  shapes: subscription periods at the top or on ``items``, invoices with ``paid`` or only
  ``status`` + ``status_transitions.paid_at``, invoice ``subscription`` at the top or under
  ``parent.subscription_details``. Readers (``mappings.stripe``) accept both.
- Events are listed for 30 days only. A bookmark older than that, or one Stripe answers
  ``resource_missing`` for, triggers a full re-read of every stream, noted on the run.
- ``Stripe-Should-Retry: true``/``false`` is obeyed as the official SDKs do; 409
  (``lock_timeout``), 429 and the legacy 400 with ``code: rate_limit`` are retried.
- Lists are newest first; a full listing resumes after a crash with ``starting_after`` the
  last stored id (ids are stable), and objects created meanwhile are replayed from events.
- ``GET /v1/payment_methods`` needs a customer in real Stripe, one request per customer; the
  cards come instead from the customers listing with
  ``expand[]=data.invoice_settings.default_payment_method``.
- Subscriptions are listed with ``status=all`` (the default hides cancelled ones, which
  carry the churn reason in ``cancellation_details``).
"""

from __future__ import annotations

import re

import httpx
from pydantic import Field, SecretStr, field_validator

import hub
from connectors.stripe.streams import (
    ChargesStream,
    CustomersStream,
    EventsStream,
    InvoicesStream,
    PaymentMethodsStream,
    SubscriptionsStream,
)
from connectors.stripe.webhook import StripeWebhook
from hub.connector import Connector, ConnectorSettings
from hub.errors import CursorExpiredError, FatalAPIError, HubError, RetriableAPIError
from hub.http import HttpClient, parse_retry_after
from hub.http.auth import BearerAuth
from hub.http.client import Failure
from hub.http.ratelimit import RateLimit

DEFAULT_API_VERSION = "2026-10-28.endive"
KEY_HINT = "use a restricted key (rk_…) with Read on the resources listed in the docs, then run 'hub check'"
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
_PERMISSION = re.compile(r"'(rak_[a-z_]+)'")


class StripeSettings(ConnectorSettings):
    """Settings of a Stripe connection (``[connections.<name>.settings]``)."""

    api_key: SecretStr
    """A restricted key (``rk_live_…``) with Read access, or a secret key (``sk_…``)."""
    requests_per_second: int = Field(default=25, ge=1, le=100)
    """Client-side budget: 25 suits test mode and every endpoint; live mode allows 100."""
    page_size: int = Field(default=100, ge=1, le=100)
    """Records per list request (Stripe's maximum, 100, is the cheapest)."""
    api_version: str = DEFAULT_API_VERSION
    """The ``Stripe-Version`` header sent with every request."""

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value().strip()
        if key.startswith("pk_"):
            raise ValueError(
                "a publishable key (pk_…) cannot read data; use a restricted key (rk_…)"
            )
        if not re.match(r"^(sk|rk)_(test|live)_\S+$", key):
            raise ValueError(
                "must be a Stripe restricted key (rk_live_…) or secret key (sk_live_…)"
            )
        return SecretStr(key)

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        value = value.strip()
        if not _VERSION.match(value):
            raise ValueError("must look like 2026-10-28.endive or 2024-06-20")
        return value


class StripeConnector(Connector):
    """Stripe: billing signals (subscriptions, invoices, failed charges, cards) via events."""

    name = "stripe"
    title = "Stripe"
    docs_url = "https://docs.stripe.com/api"
    default_base_url = "https://api.stripe.com"
    Settings = StripeSettings
    webhook = StripeWebhook()  # how ``hub serve`` verifies its webhook deliveries
    # events first: its bookmark must predate the object listings (see streams.py).
    streams = [
        EventsStream,
        CustomersStream,
        PaymentMethodsStream,
        SubscriptionsStream,
        InvoicesStream,
        ChargesStream,
    ]

    # Set by the customers stream during a run for the payment_methods stream after it: the
    # cards its listing stored (None if the listing was resumed) and whether it completed.
    _cards_seen: set[str] | None = None
    _cards_listed: bool = False

    def auth(self) -> httpx.Auth:
        return BearerAuth(self.settings.api_key)

    def headers(self) -> dict[str, str]:
        return {"Stripe-Version": self.settings.api_version}

    def rate_limits(self) -> list[RateLimit]:
        return [RateLimit("requests", self.settings.requests_per_second, 1.0)]

    def classify_error(self, failure: Failure) -> HubError | None:
        status, where, text = failure.status, failure.where, failure.text
        error = failure.error
        code = error.get("code")
        retry_after = parse_retry_after(failure.response.headers.get("retry-after"))
        should_retry = failure.response.headers.get("stripe-should-retry")
        if should_retry == "false":
            return FatalAPIError(f"{where} failed with {status}: {text}", status=status, code=code)
        if should_retry == "true" or status in (409, 429) or code in ("rate_limit", "lock_timeout"):
            return RetriableAPIError(
                f"{where} failed with {status}: {text}",
                status=status,
                code=code,
                retry_after=retry_after,
            )
        if code == "resource_missing" and error.get("param") in ("starting_after", "ending_before"):
            return CursorExpiredError(
                f"{where}: Stripe no longer lists the object named by {error['param']} ({text})",
                status=status,
                code=code,
            )
        if status == 401:
            return FatalAPIError(
                f"Stripe refused the API key (401: {text})", status=status, hint=KEY_HINT
            )
        if status == 403:
            permission = _PERMISSION.search(text)
            need = (
                f"grant '{permission.group(1)}' (Read)"
                if permission
                else "grant Read on this resource"
            )
            return FatalAPIError(
                f"{where}: the restricted key lacks a permission (403)",
                status=status,
                hint=f"{need} to the key in Dashboard → Developers → API keys",
            )
        return None

    def check(self, client: HttpClient) -> str:
        """One customer: cheap, and needs only the permission the hub needs anyway."""
        client.get("/v1/customers", params={"limit": 1})
        key = self.settings.api_key.get_secret_value()
        mode = "live" if "_live_" in key else "test"
        kind = "restricted key" if key.startswith("rk_") else "secret key (prefer a restricted key)"
        return f"Stripe ({mode} mode, {kind}): customers readable, API version {self.settings.api_version}"


@hub.hookimpl
def register_connectors(register):
    register(StripeConnector)


__all__ = [
    "ChargesStream",
    "CustomersStream",
    "EventsStream",
    "InvoicesStream",
    "PaymentMethodsStream",
    "StripeConnector",
    "StripeSettings",
    "SubscriptionsStream",
]
