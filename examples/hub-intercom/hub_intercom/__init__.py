"""hub-intercom: Intercom conversations on the hub's timeline, written against ``import hub``.

Everything here uses the public plugin API only (``hub.*`` names and ``hub.testing``):

- ``IntercomConnector``: ``POST /conversations/search`` (Intercom API 2.x). The bookmark
  (``updated_at``, Unix seconds) goes into the search query; the page cursor into
  ``pagination.starting_after`` of the JSON body (``CursorPaginator(target="body")``), so the
  framework's ``Cursor`` strategy owns the loop, the loop guard, the bookmark and resume.
  Intercom allows 10,000 calls per minute per app, spread over 10-second windows; the hub
  stays at 150 per 10 s.
- ``IntercomMapping``: a conversation is an event of the company whose domain its contact's
  e-mail names; the events and the source are declared for the vocabulary.
- ``IntercomConversations`` (measure), ``ConversationStorm`` (playbook), the
  ``intercom-summary`` command and ``IntercomFake`` (sandbox) complete the set.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
import httpx
from pydantic import SecretStr

import hub

SOURCE = "intercom"


# -- connector ---------------------------------------------------------------------------


class IntercomSettings(hub.ConnectorSettings):
    """``[connections.<name>.settings]`` of an Intercom connection."""

    access_token: SecretStr
    base_url: str | None = "https://api.intercom.io"
    page_size: int = 50


class Conversations(hub.Stream):
    """Conversations changed since the bookmark, oldest change first."""

    name = "conversations"
    path = "/conversations/search"
    method = "POST"
    records_path = "conversations"
    cursor_field = "updated_at"
    incremental = hub.Cursor()
    paginator = hub.CursorPaginator(
        "pages.next.starting_after", "pagination.starting_after", target="body"
    )

    def request_body(self, bookmark: Any) -> dict[str, Any]:
        query: dict[str, Any] = {"field": "updated_at", "operator": ">", "value": bookmark or 0}
        return {
            "query": query,
            "sort": {"field": "updated_at", "order": "ascending"},
            "pagination": {"per_page": self.settings.page_size},
        }


class IntercomConnector(hub.Connector):
    name = "intercom"
    title = "Intercom"
    docs_url = "https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/searchconversations"
    Settings = IntercomSettings
    streams = [Conversations]

    def auth(self) -> httpx.Auth:
        return hub.BearerAuth(self.settings.access_token)

    def headers(self) -> dict[str, str]:
        return {"Intercom-Version": "2.11"}

    def rate_limits(self) -> list[hub.RateLimit]:
        return [hub.RateLimit("intercom", 150, 10.0)]


# -- mapping ------------------------------------------------------------------------------


def _iso(seconds: Any) -> str | None:
    if not isinstance(seconds, (int, float)):
        return None
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat()


class IntercomMapping(hub.Mapping):
    name = "intercom"
    connector = "intercom"
    streams = ["conversations"]
    source = hub.Source(SOURCE, label="Intercom", letter="I", fact_rank=60, style="magenta")
    event_types = [
        hub.EventType(
            "intercom_conversation_opened",
            "A customer started an Intercom conversation",
            polarity="neutral",
            noun=("Intercom conversation", "Intercom conversations"),
        ),
        hub.EventType(
            "intercom_conversation_bad_rating",
            "A customer rated an Intercom conversation 1 or 2 out of 5",
            polarity="negative",
            noun=("bad Intercom rating", "bad Intercom ratings"),
        ),
    ]
    facts = {"intercom_open_conversations": "Intercom conversations open now"}

    def map_rows(self, ctx: hub.MappingContext, stream: str, rows: Any) -> None:
        for row in rows:
            if row["deleted"]:
                continue  # a tombstone: the events this conversation gave go away
            conv = row["data"]
            company = conv.get("company") or {}
            domain = company.get("website") or (conv.get("contact_email") or "").partition("@")[2]
            if not company.get("id") and not domain:
                continue
            entity = ctx.entity(
                SOURCE,
                "company",
                str(company.get("id") or domain),
                name=company.get("name") or domain,
                domains=[domain],
            )
            opened = _iso(conv.get("created_at"))
            if opened:
                ctx.event(
                    entity,
                    "intercom_conversation_opened",
                    opened,
                    source=SOURCE,
                    source_id=str(conv["id"]),
                    summary=f"Intercom conversation: {conv.get('title') or 'untitled'}",
                    attrs={"state": conv.get("state")},
                )
            rating = (conv.get("conversation_rating") or {}).get("rating")
            rated = _iso((conv.get("conversation_rating") or {}).get("created_at"))
            if isinstance(rating, int) and rating <= 2 and rated:
                ctx.event(
                    entity,
                    "intercom_conversation_bad_rating",
                    rated,
                    source=SOURCE,
                    source_id=str(conv["id"]),
                    summary=f"Intercom conversation rated {rating}/5",
                    attrs={"rating": rating},
                )


# -- measure ------------------------------------------------------------------------------


class ConversationParams(hub.MeasureParams):
    window_days: int = 30
    bad_at: int = 8
    """This many conversations in the window scores 0."""


class IntercomConversations(hub.Measure):
    name = "intercom_conversations"
    label = "Intercom conversations"
    Params = ConversationParams
    inputs = {"conversations": "Intercom conversations opened in the window"}
    default_weight = 5  # part of the default model once the plugin is installed

    def aggregate(self, params: Any, agg: Any) -> tuple[Any, ...]:
        return (agg.count(["intercom_conversation_opened"], days=params.window_days),)

    def score(self, params: Any, account: Any, values: Any, window: Any) -> hub.MeasureResult:
        if values is None:
            return hub.MeasureResult(None)
        (count,) = values
        value = max(0.0, 100.0 * (1 - count / params.bad_at))
        return hub.MeasureResult(
            value,
            {"conversations": count},
            [f"{count} Intercom conversations in the last {params.window_days} days"],
        )


# -- playbook -----------------------------------------------------------------------------


class ConversationStorm(hub.Playbook):
    name = "intercom_conversation_storm"
    title = "Intercom conversation storm"
    options = {"conversations": 4, "days": 7}
    subject = "Many Intercom conversations: {account_name}"

    def evaluate(self, ctx: hub.PlaybookContext) -> Any:
        days = self.opt("days")
        for account_id, events in ctx.events(["intercom_conversation_opened"], days=days).items():
            if len(events) >= self.opt("conversations"):
                yield hub.Trigger(
                    account_id,
                    reason="storm",
                    detail=f"{len(events)} Intercom conversations in {days} days",
                    evidence=events,
                )


# -- sandbox fake -------------------------------------------------------------------------

SANDBOX_TOKEN = "intercom-sandbox-token"
TITLES = ["Cannot log in", "Invoice question", "Feature request", "Widget not loading"]


class IntercomFake(hub.FakeAPI):
    """Intercom's conversation search over the shared world: a few conversations per
    company, more for accounts that are slipping; new ones every simulated day."""

    name = "intercom"
    prefixes = ("/conversations",)
    credentials = {"access_token": SANDBOX_TOKEN}

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("authorization") != f"Bearer {SANDBOX_TOKEN}":
            return hub.json_response(
                401, {"type": "error.list", "errors": [{"code": "unauthorized"}]}
            )
        return None

    def seed(self) -> None:
        self.conversations: list[dict[str, Any]] = []
        now = self.world.now()
        for company in self.world.companies:
            busy = company.archetype in ("slipping", "at_risk")
            for i in range(3 if busy else company.key % 2):
                self._open(company, now - dt.timedelta(days=2 + i * 3), i)

    def _open(self, company: Any, when: dt.datetime, i: int) -> None:
        stamp = int(when.timestamp())
        number = len(self.conversations) + 1
        conv: dict[str, Any] = {
            "type": "conversation",
            "id": str(100000 + number),
            "title": TITLES[(company.key + i) % len(TITLES)],
            "created_at": stamp,
            "updated_at": stamp,
            "state": "open" if i % 2 == 0 else "closed",
            "contact_email": f"user{i}@{company.domain}",
            "company": {"id": f"ic_{company.key}", "name": company.name, "website": company.domain},
        }
        if company.archetype == "at_risk" and i == 0:
            conv["conversation_rating"] = {"rating": 1, "created_at": stamp + 3600}
        self.conversations.append(conv)

    def advance(self, start: dt.datetime, end: dt.datetime, day_index: int) -> None:
        for company in self.world.companies:
            if company.archetype == "at_risk" and (company.key + day_index) % 3 == 0:
                self._open(company, end - dt.timedelta(hours=1), day_index)

    @hub.route("POST", r"/conversations/search")
    def search(self, request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(request.content or b"{}")
        since = int((body.get("query") or {}).get("value") or 0)
        paging = body.get("pagination") or {}
        per_page = min(int(paging.get("per_page") or 20), 150)
        after = paging.get("starting_after")
        rows = sorted(
            (c for c in self.conversations if c["updated_at"] > since),
            key=lambda c: (c["updated_at"], c["id"]),
        )
        start = int(after) if after else 0
        page = rows[start : start + per_page]
        out: dict[str, Any] = {
            "type": "conversation.list",
            "conversations": page,
            "total_count": len(rows),
            "pages": {"type": "pages", "per_page": per_page},
        }
        if start + per_page < len(rows):
            out["pages"]["next"] = {"starting_after": str(start + per_page)}
        return hub.json_response(200, out)


# -- hooks --------------------------------------------------------------------------------


@hub.hookimpl
def register_connectors(register):
    register(IntercomConnector)


@hub.hookimpl
def register_mappings(register):
    register(IntercomMapping)


@hub.hookimpl
def register_health_models(register):
    register(IntercomConversations)


@hub.hookimpl
def register_playbooks(register):
    register(ConversationStorm)


@hub.hookimpl
def register_sandbox_apis(register):
    register(IntercomFake)


@hub.hookimpl
def register_commands(cli):
    @cli.command("intercom-events")
    def intercom_events() -> None:
        """The event types this plugin puts on the timeline, with their polarity.

        \b
        Examples:
          hub intercom-events
        """
        for event_type in IntercomMapping.event_types:
            click.echo(f"{event_type.name}\t{event_type.polarity}\t{event_type.description}")
