"""BuiltWith connector: which technologies run on each customer's website.

Docs: https://api.builtwith.com/domain-api (Domain API), https://api.builtwith.com/llms.txt
(WhoAmI, usage, credit headers), error codes at https://api.builtwith.com/errorCodes. Facts the
hub relies on are collected in ``shared/specs/builtwith/README.md`` of the project notes.

What it reads: one stream, ``domains``, one raw row per domain with every technology BuiltWith
saw (first/last detected, tag, categories). The domains come from the hub (the known
accounts' domains, through ``ctx.account_domains()``) plus ``domains``. Which technologies
are ours or a competitor's is configured once, in ``[timeline.builtwith]``
(``our_technologies`` is required there), and decided by the mapping
(``mappings.builtwith``), which turns them into "widget detected/removed" and "competitor
detected/removed" events.

Key handling: BuiltWith takes the API key (a GUID) as the ``KEY`` query parameter on every
call, so it is part of every request URL. That is why the key is a ``SecretStr`` sent through
``QueryKeyAuth`` (added to the URL only at send time), and why ``hub.http`` logs and raises
URLs without their query string and scrubs known secret values from error text: a URL that
reaches a log or a run record would otherwise carry the key.

Credits: each domain looked up costs one credit (BuiltWith does not document the cost per
lookup; WhoAmI's ``credits.costs`` says so per account). The connector spends them carefully:
up to 16 domains per request (the multi-lookup maximum), and a domain looked up within
``freshness_days`` (default 7) is not looked up again. BuiltWith re-indexes a site somewhere
between daily and monthly, so looking more often buys nothing. ``hub check`` calls WhoAmI,
which is free. Responses carry ``X-API-CREDITS-REMAINING``; the run record notes it.

Quirks:
- Errors come back in a top-level ``Errors`` list, often with HTTP **200**: a key that is not
  a GUID (-2), out of credits (-3), more lookups than allowed (-7). A well-formed but wrong key
  is a 401. The connector treats these as fatal with a one-line message (``classify``).
- Per-domain errors (-8, invalid or unknown root domain) arrive beside the other domains'
  Results; that domain is skipped and named in the run notes, the rest are stored.
- Running out of credits part-way through a batch answers the domains that fit and gives the
  rest a per-domain -3; the answered ones are stored, then the run stops (fatal).
- The version segment of the path moves (v20…v26 seen in BuiltWith's own pages and CLI);
  ``api_version`` (default ``v22``, the Domain API page's) is a setting.
- ``IsDB`` is ``true`` in old responses and ``"True"`` in new ones; ``IsPremium`` is
  ``"yes"``/``"no"``; ``Categories`` may be ``null``. Dates are epoch milliseconds.
- Free-mail domains (gmail.com, …) are never looked up: they are not companies.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator

import hub
from connectors.builtwith.streams import DomainsStream, errors_of
from hub.connector import Connector, ConnectorSettings
from hub.errors import FatalAPIError, HubError, RetriableAPIError
from hub.http import HttpClient, default_classify, error_text
from hub.http.auth import QueryKeyAuth
from hub.http.client import json_of
from hub.http.ratelimit import RateLimit

MAX_BATCH = 16
KEY_HINT = "set api_key to the GUID on your BuiltWith API page (as env:VAR or file:PATH), then run 'hub check'"


class BuiltWithSettings(ConnectorSettings):
    """Settings of a BuiltWith connection (``[connections.<name>.settings]``)."""

    api_key: SecretStr
    """The BuiltWith API key (a GUID). Sent as the ``KEY`` query parameter."""
    base_url: str | None = "https://api.builtwith.com"
    api_version: str = "v22"
    """Path segment of the Domain API (``v22`` in the docs; ``v20``…``v26`` exist)."""
    freshness_days: float = Field(default=7, ge=0)
    """A domain looked up within this many days is not looked up again (saves credits)."""
    batch_size: int = Field(default=MAX_BATCH, ge=1, le=MAX_BATCH)
    """Domains per request; BuiltWith's multi-lookup takes at most 16."""
    requests_per_second: float = Field(default=8, gt=0)
    """Proactive pacing; BuiltWith's example budget is 10/s (WhoAmI shows the account's)."""
    domains: list[str] = Field(default_factory=list)
    """Extra domains to look up besides the known accounts' domains."""

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("our_technologies", "competitors"):
                if key in data:
                    raise ValueError(
                        f"{key} moved to [timeline.builtwith] (the mapping decides what is "
                        "ours or a competitor's); move the line there"
                    )
        return data

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        value = value.strip().strip("/")
        if not value.startswith("v") or not value[1:].isdigit():
            raise ValueError("api_version must look like 'v22'")
        return value


class BuiltWithConnector(Connector):
    """BuiltWith Domain API: technology profiles of the accounts' domains."""

    name = "builtwith"
    title = "BuiltWith"
    docs_url = "https://api.builtwith.com/domain-api"
    default_base_url = "https://api.builtwith.com"
    Settings = BuiltWithSettings
    streams = [DomainsStream]
    uses_account_domains = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.credits_remaining: int | None = None  # from X-API-CREDITS-REMAINING

    def auth(self) -> httpx.Auth:
        return QueryKeyAuth(self.settings.api_key, param="KEY")

    def rate_limits(self) -> list[RateLimit]:
        rps = self.settings.requests_per_second
        if rps >= 1:
            return [RateLimit("requests", int(rps), 1.0)]
        return [RateLimit("requests", 1, 1.0 / rps)]  # slower than one a second

    def lookup_params(self, domains: list[str]) -> dict[str, str]:
        # Drop what the hub never reads: descriptions and links, PII, attributes, meta.
        return {
            "LOOKUP": ",".join(domains),
            "HIDEDL": "yes",
            "NOPII": "yes",
            "NOATTR": "yes",
            "NOMETA": "yes",
        }

    def observe(self, response: httpx.Response, client: HttpClient) -> None:
        remaining = response.headers.get("X-API-CREDITS-REMAINING")
        if remaining is not None and remaining.strip().lstrip("-").isdigit():
            self.credits_remaining = int(remaining)

    def classify(self, response: httpx.Response) -> HubError | None:
        """Errors in the body count too: BuiltWith answers bad keys and no credits with 200."""
        status = response.status_code
        if status in (401, 403):
            return FatalAPIError(
                f"BuiltWith refused the API key ({status}: {error_text(response)})",
                status=status,
                hint=KEY_HINT,
            )
        if status != 200:
            return default_classify(response)
        try:
            body = json_of(response)
        except ValueError:
            return None  # the client retries bodies that are not JSON
        for item in errors_of(body):
            if isinstance(item, dict) and item.get("Lookup"):
                continue  # one domain's problem: the stream skips and reports it
            code = item.get("Code") if isinstance(item, dict) else None
            message = (
                item.get("Message") if isinstance(item, dict) else str(item)
            ) or "unknown error"
            if code == -2:
                return FatalAPIError(
                    f"BuiltWith refused the API key (code -2: {message})",
                    status=status,
                    code="-2",
                    hint=KEY_HINT,
                )
            if code == -3:
                return FatalAPIError(
                    f"BuiltWith account is out of API credits (code -3: {message})",
                    status=status,
                    code="-3",
                    hint="buy credits or wait for the plan to renew; domains already looked up are kept",
                )
            if code == -99:
                return RetriableAPIError(
                    f"BuiltWith internal error (code -99: {message})", status=status, code="-99"
                )
            hint = (
                "lower batch_size"
                if code == -7
                else "check api_version and the BuiltWith error codes page"
            )
            return FatalAPIError(
                f"BuiltWith answered with an error (code {code}: {message})",
                status=status,
                code=str(code),
                hint=hint,
            )
        return None

    def check(self, client: HttpClient) -> str:
        """WhoAmI costs no credits; it confirms the key and shows the balance and limits."""
        body = client.get("/whoamiv1/api.json").json()
        credits = body.get("credits") or {}
        account = body.get("account") or {}
        batch = (account.get("max_batch_size") or {}).get("domain_lookup")
        rps = (body.get("rate_limits") or {}).get("requests_per_second")
        return (
            f"BuiltWith {account.get('plan') or 'account'}: {credits.get('remaining', '?')} credits remaining, "
            f"{batch or '?'} domains per lookup, {rps or '?'} requests/s"
        )


@hub.hookimpl
def register_connectors(register):
    register(BuiltWithConnector)


__all__ = ["BuiltWithConnector", "BuiltWithSettings", "DomainsStream"]
