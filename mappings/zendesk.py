"""Zendesk mapping: organizations, users, tickets and CSAT ratings → entities and events.

Reads the streams of the Zendesk connector (``connectors.zendesk``), in this order:

- ``organizations`` → ``zendesk:organization:<id>`` entities. ``external_id`` is taken as
  the HubSpot company id (the explicit link), ``domain_names`` as domains. Deleted
  organizations become deleted entities.
- ``users`` → ``zendesk:user:<id>`` entities for end users *without* an organization, with
  their e-mail domain (identity ignores free-mail domains), so their tickets can still find
  an account. Agents and admins are staff, not customers: skipped.
- ``tickets`` (each with its ``metric_set``) → events on the ticket's organization (or its
  requester when it has none):
  ``ticket_opened`` at ``created_at``; ``ticket_solved`` at the metric set's ``solved_at``
  with ``resolution_hours`` (full resolution, calendar hours); ``ticket_reopened`` when
  ``reopens`` > 0; ``ticket_urgent`` when the priority is urgent or the ticket carries an
  escalation tag.
- ``satisfaction_ratings`` → ``csat_good`` / ``csat_bad`` at the rating's ``created_at``.
- ``finalize``: each organization gets its end users' e-mail domains (``member_domains``),
  so an organization with neither ``external_id`` nor domain links to the one account those
  domains name (link method ``member_domain``).

Every event is derived from the record's *current* state, one per ticket and type (ids
``zendesk:<type>:<ticket id>``; ratings by rating id), so mapping incrementally and
re-mapping from scratch give the same timeline: a reopened ticket loses its
``ticket_solved`` until it is solved again, a lowered priority retracts ``ticket_urgent``, a
rating whose score flips moves from ``csat_good`` to ``csat_bad``, a deleted ticket retracts
everything. Zendesk does not record when a reopen happened, so ``ticket_reopened`` is dated at
the first resolution (the reopen came after it) or, lacking that, the last status change.

``[timeline.zendesk]`` in hub.toml may set ``urgent_priorities`` (default ``["urgent"]``) and
``escalation_tags`` (default ``["escalated", "escalation"]``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import hub
from hub import clock
from hub.errors import MappingError
from hub.timeline import Mapping, MappingContext, MappingSettings
from hub.vocabulary import EventType, Source

SOURCE = "zendesk"


# What this mapping puts on the timeline (hub.vocabulary collects it when the mapping registers).
SOURCE_INFO = Source("zendesk", label="Zendesk", letter="Z", fact_rank=20, style="cyan")
EVENT_TYPES = [
    EventType(
        "ticket_opened",
        "A support ticket was opened (attrs: ticket_id, priority, subject)",
        polarity="neutral",
        noun=("ticket opened", "tickets opened"),
    ),
    EventType(
        "ticket_solved",
        "A ticket was solved (attrs: ticket_id, priority, resolution_hours)",
        polarity="positive",
        noun=("ticket solved", "tickets solved"),
    ),
    EventType(
        "ticket_reopened",
        "A solved ticket was reopened (attrs: ticket_id, reopens)",
        polarity="negative",
        noun=("ticket reopened", "tickets reopened"),
    ),
    EventType(
        "ticket_urgent",
        "A ticket is urgent or escalated (attrs: ticket_id, priority, escalated)",
        polarity="negative",
        noun=("urgent or escalated ticket", "urgent or escalated tickets"),
    ),
    EventType(
        "csat_good",
        "A customer rated support good (attrs: ticket_id, comment)",
        polarity="positive",
        noun=("good CSAT rating", "good CSAT ratings"),
    ),
    EventType(
        "csat_bad",
        "A customer rated support bad (attrs: ticket_id, comment)",
        polarity="negative",
        noun=("bad CSAT rating", "bad CSAT ratings"),
    ),
]
FACTS = {}
TICKET_TYPES = ("ticket_opened", "ticket_solved", "ticket_reopened", "ticket_urgent")
CSAT_TYPES = {"good": "csat_good", "bad": "csat_bad"}
DEFAULT_URGENT = ("urgent",)
DEFAULT_ESCALATION_TAGS = ("escalated", "escalation")
_SPACE = re.compile(r"\s+")
MEMBERS = "member"
"""Index kind: end users under their organization (value: their e-mail domain)."""
ORG = "org:"
"""Pending-key prefix: an organization whose people's domains ``finalize`` redoes."""


def one_line(text: Any, limit: int = 120) -> str:
    """Collapse whitespace (subjects and comments may hold newlines) and cap the length."""
    value = _SPACE.sub(" ", str(text or "")).strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _minutes(metric: dict[str, Any] | None, field: str) -> float | None:
    value = (metric or {}).get(field)
    if isinstance(value, dict):
        value = value.get("calendar")
    return float(value) if isinstance(value, (int, float)) else None


def _hours(minutes: float | None) -> float | None:
    return round(minutes / 60, 1) if minutes is not None else None


def _agent_link(record: dict[str, Any], ticket_id: Any) -> str | None:
    """The ticket in Zendesk's agent interface (host taken from the API ``url``)."""
    parts = urlsplit(str(record.get("url") or ""))
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}/agent/tickets/{ticket_id}"


def _domain_of(email: Any) -> str | None:
    if not isinstance(email, str) or "@" not in email:
        return None
    return email.rsplit("@", 1)[1]


class ZendeskSettings(MappingSettings):
    """``[timeline.zendesk]``: which tickets count as urgent or escalated."""

    urgent_priorities: list[str] = list(DEFAULT_URGENT)
    escalation_tags: list[str] = list(DEFAULT_ESCALATION_TAGS)


class ZendeskMapping(Mapping):
    """Support signals from Zendesk: tickets opened/solved/reopened/urgent and CSAT."""

    name = "zendesk"
    connector = "zendesk"
    streams = ["organizations", "users", "tickets", "satisfaction_ratings"]
    Settings = ZendeskSettings
    source = SOURCE_INFO
    event_types = EVENT_TYPES
    facts = FACTS
    version = 2  # 2: end users indexed by organization for finalize

    def map_rows(self, ctx: MappingContext, stream: str, rows: Iterable[dict[str, Any]]) -> None:
        handler = {
            "organizations": self._organization,
            "users": self._user,
            "tickets": self._ticket,
            "satisfaction_ratings": self._rating,
        }[stream]
        rows = list(rows)
        if stream == "users":
            # Organizations whose people changed get their domains again in finalize: the
            # ones a user left (the mapping's index says) and the one it is in now.
            for orgs in ctx.index_refs(MEMBERS, [r["id"] for r in rows]).values():
                for org in orgs:
                    ctx.mark_affected(ORG + org)
        for row in rows:
            try:
                handler(ctx, row)
            except (MappingError, ValueError, TypeError) as exc:  # one bad record: skip it, go on
                ctx.skipped.append(f"{stream} {row.get('id')}: {exc}")

    def finalize(self, ctx: MappingContext) -> None:
        """Give each organization whose people changed the e-mail domains of its end users,
        so identity can link an organization with neither ``external_id`` nor domain
        (``member_domain``); read from the mapping's index of users by organization."""
        orgs = sorted(k[len(ORG) :] for k in ctx.affected() if k.startswith(ORG))
        for start in range(0, len(orgs), 2000):
            chunk = orgs[start : start + 2000]
            members: dict[str, set[str]] = {}
            for _, org_id, domain in ctx.indexed(MEMBERS, refs=chunk):
                if domain:
                    members.setdefault(org_id, set()).add(domain)
            for org_id in chunk:
                ctx.member_domains(
                    ctx.entity_key(SOURCE, "organization", org_id), members.get(org_id, ())
                )

    # -- entities ---------------------------------------------------------------------------

    @staticmethod
    def _organization(ctx: MappingContext, row: dict[str, Any]) -> None:
        data = row.get("data") or {}
        ctx.mark_affected(ORG + str(data.get("id", row["id"])))
        ctx.entity(
            SOURCE,
            "organization",
            data.get("id", row["id"]),
            name=data.get("name"),
            domains=[d for d in data.get("domain_names") or [] if isinstance(d, str)],
            explicit_account=str(data["external_id"]).strip() if data.get("external_id") else None,
            deleted=bool(row.get("deleted") or data.get("deleted_at")),
        )

    @staticmethod
    def _user(ctx: MappingContext, row: dict[str, Any]) -> None:
        data = row.get("data") or {}
        org = data.get("organization_id")
        domain = _domain_of(data.get("email"))
        if (
            org is not None
            and domain
            and not row.get("deleted")
            and data.get("role") in (None, "end-user")
            and data.get("active") not in (False, 0)
        ):
            ctx.index(MEMBERS, row["id"], [str(org)], domain)
            ctx.mark_affected(ORG + str(org))
        else:
            ctx.unindex(MEMBERS, row["id"])
        if data.get("role") not in (None, "end-user") or data.get("organization_id"):
            return
        domain = _domain_of(data.get("email"))
        ctx.entity(
            SOURCE,
            "user",
            data.get("id", row["id"]),
            name=data.get("name"),
            domains=[domain] if domain else [],
            deleted=bool(row.get("deleted") or data.get("active") is False),
        )

    @staticmethod
    def _entity_for(ctx: MappingContext, org_id: Any, requester_id: Any) -> str | None:
        """The entity a ticket's events belong to: its organization, else its requester's."""
        if org_id:
            return ctx.entity_key(SOURCE, "organization", org_id)
        if requester_id:
            user = ctx.raw("users", requester_id) or {}
            if user.get("organization_id"):
                return ctx.entity_key(SOURCE, "organization", user["organization_id"])
            return ctx.entity_key(SOURCE, "user", requester_id)
        return None

    # -- events -----------------------------------------------------------------------------

    def _ticket(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        data = row.get("data") or {}
        ticket_id = data.get("id", row["id"])
        entity = self._entity_for(ctx, data.get("organization_id"), data.get("requester_id"))
        if row.get("deleted") or data.get("status") == "deleted" or entity is None:
            for kind in TICKET_TYPES:
                ctx.retract(f"{SOURCE}:{kind}:{ticket_id}")
            return
        metric = data.get("metric_set") if isinstance(data.get("metric_set"), dict) else None
        status = data.get("status")
        priority = data.get("priority")
        subject = one_line(data.get("subject") or data.get("raw_subject") or "(no subject)")
        link = _agent_link(data, ticket_id)
        base = {"ticket_id": ticket_id, "priority": priority}
        created = clock.parse(data.get("created_at"))
        via = data.get("via") if isinstance(data.get("via"), dict) else {}

        ctx.event(
            entity,
            "ticket_opened",
            data.get("created_at"),
            source=SOURCE,
            source_id=ticket_id,
            summary=f"Ticket #{ticket_id} opened: {subject}"
            + (f" ({priority})" if priority else ""),
            attrs={**base, "subject": subject, "status": status, "channel": via.get("channel")},
            link=link,
        )

        solved_at = (metric or {}).get("solved_at")
        if status in ("solved", "closed") and not solved_at and metric is None:
            solved_at = data.get("updated_at")  # no metric set: the last update is the best guess
        if status in ("solved", "closed") and solved_at:
            minutes = _minutes(metric, "full_resolution_time_in_minutes")
            if minutes is None and created is not None:
                solved = clock.parse(solved_at)
                minutes = (solved - created).total_seconds() / 60 if solved else None
            hours = _hours(minutes)
            ctx.event(
                entity,
                "ticket_solved",
                solved_at,
                source=SOURCE,
                source_id=ticket_id,
                summary=f"Ticket #{ticket_id} solved"
                + (f" in {hours:g} h" if hours is not None else "")
                + f": {subject}",
                attrs={
                    **base,
                    "resolution_hours": hours,
                    "first_reply_hours": _hours(_minutes(metric, "reply_time_in_minutes")),
                    "reopens": (metric or {}).get("reopens", 0),
                },
                link=link,
            )
        else:
            ctx.retract(f"{SOURCE}:ticket_solved:{ticket_id}")

        reopens = (metric or {}).get("reopens") or 0
        if isinstance(reopens, int) and reopens > 0:
            first = _minutes(metric, "first_resolution_time_in_minutes")
            when: Any = None
            if first is not None and created is not None:
                when = created + dt.timedelta(minutes=first)
            when = when or (metric or {}).get("status_updated_at") or data.get("updated_at")
            ctx.event(
                entity,
                "ticket_reopened",
                when,
                source=SOURCE,
                source_id=ticket_id,
                summary=f"Ticket #{ticket_id} reopened"
                + (f" {reopens} times" if reopens > 1 else "")
                + f": {subject}",
                attrs={**base, "reopens": reopens, "status": status},
                link=link,
            )
        else:
            ctx.retract(f"{SOURCE}:ticket_reopened:{ticket_id}")

        urgent_priorities = {p.lower() for p in ctx.settings.urgent_priorities}
        escalation_tags = {t.lower() for t in ctx.settings.escalation_tags}
        tags = {str(t).lower() for t in data.get("tags") or []}
        is_urgent = str(priority or "").lower() in urgent_priorities
        escalated = bool(tags & escalation_tags)
        if is_urgent or escalated:
            why = " and ".join(
                w for w, on in (("urgent", is_urgent), ("escalated", escalated)) if on
            )
            ctx.event(
                entity,
                "ticket_urgent",
                data.get("created_at"),
                source=SOURCE,
                source_id=ticket_id,
                summary=f"Ticket #{ticket_id} is {why}: {subject}",
                attrs={**base, "escalated": escalated, "status": status},
                link=link,
            )
        else:
            ctx.retract(f"{SOURCE}:ticket_urgent:{ticket_id}")

    def _rating(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        data = row.get("data") or {}
        rating_id = data.get("id", row["id"])
        score = str(data.get("score") or "").lower()
        kind = CSAT_TYPES.get(score)
        for other in CSAT_TYPES.values():
            if other != kind or row.get("deleted"):
                ctx.retract(f"{SOURCE}:{other}:{rating_id}")
        if kind is None or row.get("deleted"):  # offered / unoffered: no verdict (yet)
            return
        ticket_id = data.get("ticket_id")
        ticket = ctx.raw("tickets", ticket_id) if ticket_id else None
        org_id = data.get("organization_id") or (ticket or {}).get("organization_id")
        entity = self._entity_for(
            ctx, org_id, data.get("requester_id") or (ticket or {}).get("requester_id")
        )
        if entity is None:
            ctx.skipped.append(f"satisfaction rating {rating_id}: no organization or requester")
            return
        comment = one_line(data.get("comment"), 200)
        ctx.event(
            entity,
            kind,
            data.get("created_at"),
            source=SOURCE,
            source_id=rating_id,
            summary=f"CSAT {score} on ticket #{ticket_id}" + (f': "{comment}"' if comment else ""),
            attrs={
                "ticket_id": ticket_id,
                "comment": comment or None,
                "reason": data.get("reason"),
            },
            link=_agent_link(ticket or data, ticket_id) if ticket_id else None,
        )


@hub.hookimpl
def register_mappings(register):
    register(ZendeskMapping)


__all__ = ["ZendeskMapping", "one_line"]
