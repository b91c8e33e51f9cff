"""HubSpot CRM connector: companies, contacts, deals, owners, tasks and the CSM's activities
(calls, e-mails, meetings, notes: ``connectors.hubspot.engagements``).

API docs: https://developers.hubspot.com/docs/api-reference/ (CRM objects v3, search:
https://developers.hubspot.com/docs/api-reference/latest/crm/search-the-crm, associations v4,
owners; limits: https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines).
The facts the hub relies on are collected in the project's API notes (HubSpot rows).

Credentials: a **private app** access token (Settings → Integrations → Private apps → Create,
then copy the token), sent as ``Authorization: Bearer``. Give the app only these scopes:

- reading (this connector): ``crm.objects.companies.read``, ``crm.objects.contacts.read``
  (contacts *and* tasks: HubSpot files tasks under the contacts scope),
  ``crm.objects.deals.read``, ``crm.objects.owners.read``;
- the CSM's logged activities (the relationship signal; optional, each stream is skipped with
  a note when its scope is missing): ``crm.objects.calls.read``, ``crm.objects.emails.read``,
  ``crm.objects.meetings.read``, ``crm.objects.notes.read`` (portals without these granular
  scopes grant activities with ``crm.objects.contacts.read``);
- writing back (the HubSpot pusher, same token): ``crm.objects.companies.write`` (health
  properties), ``crm.objects.contacts.write`` (tasks) and ``crm.schemas.companies.write``
  (creating the hub's property group and properties; it includes reading them).

The token comes from ``env:VAR`` or ``file:PATH`` and never reaches logs, errors or the
database. A 401 means a wrong or revoked token (a new one must be copied in; HubSpot private
app tokens are not refreshed); a 403 names the missing scope.

Budgets: a private app may make ``burst_limit`` requests per rolling 10 s (100 on Free and
Starter, 190 on Professional and Enterprise, 250 with the API limit increase) and the account
250,000–1,000,000 per day; search has its own 5 requests per second. The client paces itself
under both, reads ``X-HubSpot-RateLimit-Remaining`` (holding off for the interval when it
reaches 0), retries 429s after the advertised interval, and stops with a clear message when
the *daily* limit is spent (retrying before midnight, account time, cannot help). A first
sync costs one request per 100 records, plus one association read per page of deals, tasks
and activities (and one for contacts on a page holding an activity linked to no company);
companies are listed with their history at 50 per request (about 0.021 requests per
company; 100 per request, about 0.011, with ``company_history = false``), opted-out contacts
get one history read per 50; a sync with no change costs one request per stream.

Quirks handled here (details in ``connectors.hubspot.streams``):
- Search pages stop at 10,000 results per query (400 beyond): the streams never page by
  offset; every request restarts from the last modification time seen.
- Bulk writes stamp many records with the same millisecond: a page all at one instant is
  walked in ``hs_object_id`` order.
- Search never returns archived records and archiving is not a modification: each run's
  first search (everything, newest first) also gives the live count, and the archived list
  is read when fewer are live than stored (and every ``deletes_every_hours`` regardless).
- Merged companies vanish; the survivor's ``hs_merged_object_ids`` names them, and they are
  stored as deleted rows with ``merged_into``.
- Search results carry no associations: deals and tasks get their companies from the v4
  association batch read; contacts use ``associatedcompanyid``.
- Search never returns property history and a list asking for it pages by 50: the first read
  of companies (all need it) lists it along; later, batch reads of just the changed records.
- Search responses carry no rate headers; list responses do.
- Property values are strings (or null); unknown requested properties are silently left out.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, SecretStr, field_validator

import hub
from connectors.hubspot.engagements import (
    ENGAGEMENT_STREAMS,
    CallsStream,
    EmailsStream,
    MeetingsStream,
    NotesStream,
    activity_access,
)
from connectors.hubspot.objects import (
    CompaniesStream,
    ContactsStream,
    DealsStream,
    OwnersStream,
    TasksStream,
)
from connectors.hubspot.streams import CrmObjectStream
from connectors.hubspot.webhook import HubSpotWebhook
from hub.connector import Connector, ConnectorSettings
from hub.errors import FatalAPIError, HubError, RetriableAPIError
from hub.http import HttpClient, parse_retry_after
from hub.http.auth import BearerAuth
from hub.http.client import Failure
from hub.http.ratelimit import RateLimit

AUTH_HINT = (
    "create a service key (or legacy private app) token with the scopes in the README and set "
    "access_token as env:VAR or file:PATH"
)
SEARCH_PATH = r"/crm/v3/objects/[^/]+/search$"


class HubSpotSettings(ConnectorSettings):
    """Settings of a HubSpot connection (``[connections.<name>.settings]``)."""

    access_token: SecretStr
    """Private app access token (``pat-…``)."""
    base_url: str | None = "https://api.hubapi.com"
    """HubSpot's API address; point it at ``hub sandbox serve`` to try things."""
    burst_limit: int = Field(default=100, ge=1, le=250)
    """Requests per 10 s: 100 (Free/Starter), 190 (Professional/Enterprise), 250 (limit increase)."""
    search_per_second: int = Field(default=5, ge=1, le=10)
    """Search API budget per second (HubSpot: 5)."""
    nps_property: str | None = "nps_score"
    """Company property a survey tool fills with the NPS score (0–10); empty to skip."""
    company_properties: list[str] = Field(default_factory=list)
    """Extra company properties to read (e.g. a CSM override of the health score)."""
    contact_properties: list[str] = Field(default_factory=list)
    """Extra contact properties to read."""
    task_properties: list[str] = Field(default_factory=list)
    """Extra task properties to read."""
    deletes_every_hours: float = Field(default=6.0, ge=0)
    """Safety net: the archived lists are re-read at least this often (0 = every sync); an
    archive is normally noticed at once, by the live count."""
    company_history: bool = True
    """Read companies' lifecycle, owner and NPS history from HubSpot (``propertiesWithHistory``).
    Off: companies are listed 100 per page instead of 50 and no history is read; lifecycle,
    owner and NPS changes then come only from the values seen at each sync (dated at the
    company's modification time when seen; what happened before the first sync is not on the
    timeline, and ``customer_since`` is the creation date until a change to customer is seen).
    Turned back on, ``hub sync --full-refresh <connection>`` reads HubSpot's history again."""

    @field_validator("company_properties", "contact_properties", "task_properties")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or not name.replace("_", "").isalnum() or name != name.lower():
                raise ValueError(
                    f"{name!r} is not a HubSpot property name (lower-case internal name)"
                )
        return value


class HubSpotConnector(Connector):
    """HubSpot CRM: owners, companies (the accounts), contacts, deals, tasks, activities."""

    name = "hubspot"
    title = "HubSpot CRM"
    docs_url = "https://developers.hubspot.com/docs/api-reference/"
    default_base_url = "https://api.hubapi.com"
    Settings = HubSpotSettings
    webhook = HubSpotWebhook()  # how ``hub serve`` verifies its webhook deliveries
    streams = [
        OwnersStream,
        CompaniesStream,
        ContactsStream,
        DealsStream,
        TasksStream,
        *ENGAGEMENT_STREAMS,  # calls, emails, meetings, notes: each skipped without its scope
    ]

    def auth(self) -> httpx.Auth:
        return BearerAuth(self.settings.access_token)

    def rate_limits(self) -> list[RateLimit]:
        # Search has its own budget and does not count against the burst one.
        return [
            RateLimit("burst", self.settings.burst_limit, 10.0, match=r"^(?!.*/search$)"),
            RateLimit("search", self.settings.search_per_second, 1.0, match=SEARCH_PATH),
        ]

    def observe(self, response: httpx.Response, client: HttpClient) -> None:
        """Wait for a free slot when HubSpot says the burst budget is spent.

        HubSpot's window rolls: a slot frees when the oldest request in it ages out. If that
        oldest request is ours, we wait just until then (waiting a whole interval here wasted
        a window every time the budget was used to the full); if none of ours is in the
        window, other apps share the budget and we wait the whole interval.
        """
        if response.status_code == 429:
            return  # classify() decides what a 429 means
        remaining = _int(response.headers.get("X-HubSpot-RateLimit-Remaining"))
        if remaining is None or remaining > 0:
            return
        interval = (
            _int(response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")) or 10_000
        ) / 1000
        limiter = client.limiter("burst")
        wait = limiter.next_slot(interval) if limiter is not None else interval
        client.pause(wait, "burst")

    def classify_error(self, failure: Failure) -> HubError | None:
        status, where, text, body = failure.status, failure.where, failure.text, failure.body
        response = failure.response
        if status == 401:
            return FatalAPIError(
                f"HubSpot refused the access token (401: {text})", status=status, hint=AUTH_HINT
            )
        if status == 403:
            scopes = _missing_scopes(body)
            hint = (
                f"add the scope(s) {', '.join(scopes)} to the service key (or legacy private app)"
                if scopes
                else AUTH_HINT
            )
            return FatalAPIError(f"{where} was refused (403: {text})", status=status, hint=hint)
        if status == 429:
            policy = str(body.get("policyName") or "")
            if policy == "DAILY" or "daily limit" in text.lower():
                return FatalAPIError(
                    "HubSpot's daily API limit for this account is used up (429)",
                    status=status,
                    hint="it resets at midnight in the account's time zone; sync less often or ask HubSpot for a limit increase",
                )
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is None:
                interval = _int(response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
                if interval is not None:
                    retry_after = interval / 1000
                elif policy == "SECONDLY":
                    retry_after = 1.0
            return RetriableAPIError(
                f"{where} was rate limited (429 {policy or 'RATE_LIMIT'}): {text}",
                status=status,
                retry_after=retry_after,
            )
        return None

    def check(self, client: HttpClient) -> str:
        """Read one company and one of each activity type; report the app's burst budget from
        the rate headers."""
        response = client.get("/crm/v3/objects/companies", params={"limit": 1})
        limit = response.headers.get("X-HubSpot-RateLimit-Max")
        note = ""
        if limit and limit.isdigit() and int(limit) != self.settings.burst_limit:
            note = f" (HubSpot allows {limit} per 10 s; set burst_limit = {limit})"
        activities = activity_access(client)
        return (
            f"HubSpot: token accepted, companies readable; {activities}; "
            f"burst budget {self.settings.burst_limit}/10 s{note}"
        )


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _missing_scopes(body: dict[str, Any]) -> list[str]:
    """Scope names from a 403 ``MISSING_SCOPES`` body (``errors[].context.requiredGranularScopes``)."""
    found: list[str] = []
    for error in body.get("errors") or []:
        context = (error or {}).get("context") or {}
        for key in ("requiredGranularScopes", "requiredScopes", "missingScopes"):
            found.extend(str(s) for s in context.get(key) or [])
    return list(dict.fromkeys(found))


@hub.hookimpl
def register_connectors(register):
    register(HubSpotConnector)


__all__ = [
    "CallsStream",
    "CompaniesStream",
    "ContactsStream",
    "CrmObjectStream",
    "DealsStream",
    "EmailsStream",
    "HubSpotConnector",
    "HubSpotSettings",
    "MeetingsStream",
    "NotesStream",
    "OwnersStream",
    "TasksStream",
]
