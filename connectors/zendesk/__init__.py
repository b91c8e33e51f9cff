"""Zendesk Support connector: tickets, ticket metrics, CSAT, organizations and users.

API docs: https://developer.zendesk.com/api-reference/ (incremental exports:
https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/,
rate limits: https://developer.zendesk.com/api-reference/introduction/rate-limits/). The facts
the hub relies on are collected in the project's API notes (Zendesk rows).

Credentials, least privilege first. The incremental exports and the satisfaction ratings
list are "Allowed for: Admins" (Zendesk's API reference), so whichever credential the hub
uses must act as an admin; keep everything else minimal:
- **OAuth** (preferred): Admin Center → Apps and integrations → APIs → OAuth clients → add a
  client, and let an admin authorize it with the scope ``read`` only (the hub never writes to
  Zendesk). Set ``oauth_token`` to the access token.
- **API token**: Admin Center → Apps and integrations → APIs → Zendesk API → enable token
  access and add a token; set ``email`` (of the admin it acts as) and ``api_token``. A token
  carries its user's full rights and cannot be scoped, so prefer OAuth, or a dedicated admin
  user for the hub. Zendesk has announced the end of API tokens (April 2027). Sent as HTTP
  Basic ``{email}/token:{api_token}``.
Give exactly one of the two; secrets come from ``env:VAR`` or ``file:PATH`` and never reach
logs, errors or the database.

Budgets: incremental exports allow 10 requests per minute (30 with the High Volume API
add-on: set ``incremental_per_minute = 30``); the whole account has the plan's budget per
minute (Team 200, Growth/Professional 400, Enterprise 700: ``requests_per_minute``). The
client paces itself below both and honours ``Retry-After`` on 429. A full ticket export
costs one request per 1,000 tickets; a sync with no changes costs one request per stream.

Quirks handled here:
- Exports never return the most recent minute and refuse a ``start_time`` within it; no
  bookmark moves past now − 60 s.
- Time-based exports (organizations, users) start the next page *at* ``end_time``, so the
  boundary second comes twice; the stream drops what it already has.
- 429s (and other errors) may come as ``text/plain`` rather than JSON, with or without
  ``Retry-After``; both are retried (backoff when no header).
- An expired or invalid export cursor (422/400 mentioning the cursor) is a
  ``CursorExpiredError``: the sync driver re-reads the stream from ``start_date``.
- Ticket metrics ride along with the ticket export (``include=metric_sets``) inside each
  ticket as ``metric_set``; see ``TicketsStream`` for why that beats ``/ticket_metrics``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator

import hub
from connectors.zendesk.streams import (
    OrganizationsStream,
    SatisfactionRatingsStream,
    TicketsStream,
    UsersStream,
)
from connectors.zendesk.webhook import ZendeskWebhook
from hub.connector import Connector, ConnectorSettings
from hub.errors import ConfigError, CursorExpiredError, FatalAPIError, HubError
from hub.http import HttpClient
from hub.http.auth import BasicAuth, BearerAuth
from hub.http.client import Failure
from hub.http.ratelimit import RateLimit

AUTH_HINT = "set email + api_token, or oauth_token (as env:VAR or file:PATH), then run 'hub check'"
_SUBDOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class ZendeskSettings(ConnectorSettings):
    """Settings of a Zendesk connection (``[connections.<name>.settings]``)."""

    subdomain: str
    """``acme`` for https://acme.zendesk.com (a pasted URL or host is accepted)."""
    email: str | None = None
    """Email of the user the API token acts as (with ``api_token``)."""
    api_token: SecretStr | None = None
    """An API token (Admin Center → APIs → Zendesk API); needs ``email``."""
    oauth_token: SecretStr | None = None
    """An OAuth access token with the ``read`` scope (instead of email + api_token)."""
    start_date: dt.datetime | None = None
    """Where the first export starts (date or date-time, UTC); empty = the whole account."""
    incremental_per_minute: int = Field(default=10, ge=1)
    """Incremental export budget per minute: 10, or 30 with the High Volume API add-on."""
    requests_per_minute: int = Field(default=400, ge=1)
    """The plan's budget per minute (Team 200, Growth/Professional 400, Enterprise 700)."""
    per_page: int = Field(default=1000, ge=1, le=1000)
    """Records per incremental export page (Zendesk's maximum, 1000, is the cheapest)."""
    page_size: int = Field(default=100, ge=1, le=100)
    """Records per page of cursor-paginated lists (satisfaction ratings; maximum 100)."""

    @field_validator("subdomain")
    @classmethod
    def _subdomain(cls, value: str) -> str:
        value = value.strip().lower()
        value = re.sub(r"^https?://", "", value).split("/")[0]
        value = value.removesuffix(".zendesk.com")
        if not _SUBDOMAIN.match(value):
            raise ValueError("subdomain must look like 'acme' (from https://acme.zendesk.com)")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and "@" not in value:
            raise ValueError("email must be the address of the user the API token belongs to")
        return value.strip() if value else value

    @model_validator(mode="after")
    def _one_way_to_sign_in(self) -> ZendeskSettings:
        problem = _auth_problem(self.email, self.api_token, self.oauth_token)
        if problem:
            raise ValueError(problem)
        return self


def _auth_problem(email: Any, api_token: Any, oauth_token: Any) -> str | None:
    if oauth_token and (api_token or email):
        return "both email + api_token and oauth_token are set; keep one"
    if oauth_token:
        return None
    if api_token and not email:
        return "api_token needs email (the user the token belongs to)"
    if email and not api_token:
        return "email is set without api_token"
    if not api_token:
        return "no Zendesk credentials are set"
    return None


class ZendeskConnector(Connector):
    """Zendesk Support: tickets with metrics, CSAT ratings, organizations, users."""

    name = "zendesk"
    title = "Zendesk Support"
    docs_url = "https://developer.zendesk.com/api-reference/"
    default_base_url = "https://{subdomain}.zendesk.com"
    Settings = ZendeskSettings
    webhook = ZendeskWebhook()  # how ``hub serve`` verifies its webhook deliveries
    streams = [OrganizationsStream, UsersStream, TicketsStream, SatisfactionRatingsStream]

    @classmethod
    def parse_settings(cls, raw: dict[str, Any], *, where: str = "settings") -> ConnectorSettings:
        # Check the sign-in choice first: pydantic would report it without a field name.
        if isinstance(raw, dict):
            problem = _auth_problem(raw.get("email"), raw.get("api_token"), raw.get("oauth_token"))
            if problem:
                raise ConfigError(f"{where}: {problem}", hint=AUTH_HINT)
        return super().parse_settings(raw, where=where)

    def base_url(self) -> str:
        if self.settings.base_url:
            return self.settings.base_url.rstrip("/")
        return f"https://{self.settings.subdomain}.zendesk.com"

    def auth(self) -> httpx.Auth:
        if self.settings.oauth_token is not None:
            return BearerAuth(self.settings.oauth_token)
        return BasicAuth(f"{self.settings.email}/token", self.settings.api_token)

    def rate_limits(self) -> list[RateLimit]:
        return [
            RateLimit(
                "incremental",
                self.settings.incremental_per_minute,
                60.0,
                match=r"/api/v2/incremental/",
            ),
            RateLimit("requests", self.settings.requests_per_minute, 60.0),
        ]

    def observe(self, response: httpx.Response, client: HttpClient) -> None:
        """When the account budget reads 0 remaining, hold off until it resets."""
        remaining = response.headers.get("x-rate-limit-remaining")
        if response.status_code == 429 or remaining is None or remaining.strip() != "0":
            return
        reset = response.headers.get("ratelimit-reset", "")
        try:
            seconds = float(reset)
        except ValueError:
            seconds = 60.0 / max(1, self.settings.requests_per_minute)
        client.pause(min(max(seconds, 0.0), 60.0), "requests")

    def classify_error(self, failure: Failure) -> HubError | None:
        status, where, text = failure.status, failure.where, failure.text
        path = failure.response.request.url.path
        if status == 401:
            return FatalAPIError(
                f"Zendesk refused the credentials (401: {text})", status=status, hint=AUTH_HINT
            )
        if status == 403:
            hint = (
                "satisfaction ratings and incremental exports need an admin's token"
                if "satisfaction" in path or "incremental" in path
                else "the user behind the token lacks access; use an admin or agent"
            )
            return FatalAPIError(f"{where} was refused (403: {text})", status=status, hint=hint)
        if status in (400, 422) and "cursor" in text.lower():
            return CursorExpiredError(
                f"{where}: Zendesk no longer accepts the saved cursor ({status}: {text})",
                status=status,
            )
        return None

    def check(self, client: HttpClient) -> str:
        """``/users/me`` is cheap and shows who the hub acts as."""
        body = client.get("/api/v2/users/me.json").json()
        user = body.get("user") or {}
        role = user.get("role") or "unknown role"
        if not user.get("id"):
            raise FatalAPIError("Zendesk answered /users/me as an anonymous user", hint=AUTH_HINT)
        note = "" if role == "admin" else " (satisfaction ratings and exports need an admin)"
        return f"Zendesk {self.settings.subdomain}: signed in as {user.get('email') or user.get('name')} ({role}){note}"


@hub.hookimpl
def register_connectors(register):
    register(ZendeskConnector)


__all__ = [
    "OrganizationsStream",
    "SatisfactionRatingsStream",
    "TicketsStream",
    "UsersStream",
    "ZendeskConnector",
    "ZendeskSettings",
]
