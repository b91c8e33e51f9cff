"""The Zendesk fake's webhooks: ticket changes as an event-subscribed webhook delivers them.

One delivery per changed ticket, in Zendesk's event shape (``type``
``zen:event-type:ticket.created`` / ``…status_changed`` / ``…comment_added``, ``id``,
``time``, ``subject`` ``zen:ticket:<id>``, ``detail`` with the ticket's fields, upper-case
enums as Zendesk writes them). An escalated ticket carries its ``escalated`` tag in
``detail.tags``. The simulated day and ``POST /api/v2/tickets`` call ``ticket_events``;
nothing is sent unless a sender is attached. ``escalate_ticket`` is the world change an
agent makes by hand (priority urgent, ``escalated`` tag): it sends ``ticket.priority_changed``
and ``ticket.tags_changed``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

ACCOUNT_ID = 24_681_357
EVENT_VERSION = "2022-11-06"


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def escalate_ticket(api: Any, company_key: int) -> dict[str, Any]:
    """An agent escalates the company's newest open ticket now (priority urgent, tag
    ``escalated``); returns the ticket as the API renders it. ``ValueError`` when the
    company has no open ticket."""
    with api._lock:
        open_ids = [i for i in api._tickets_by_company.get(company_key, []) if i in api._open]
        if not open_ids:
            raise ValueError(f"company {company_key} has no open ticket to escalate")
        t = api.tickets[max(open_ids, key=lambda i: (api.tickets[i].created, i))]
        before = (t.updated, t.id)
        now = max(api.world.clock.ts(), t.updated + 1)
        previous = {"priority": t.priority, "tags": list(t.tags or [])}
        t.priority = "urgent"
        t.tags = [*(t.tags or []), "escalated"] if "escalated" not in (t.tags or []) else t.tags
        t.updated = now
        api._rekey(api._ticket_keys, {t.id: before}, lambda i: (api.tickets[i].updated, i))
        sender = api.sandbox.webhooks
        if sender is not None and sender.wants(api.name):
            for kind, old, new in (
                ("ticket.priority_changed", previous["priority"], t.priority),
                ("ticket.tags_changed", previous["tags"], t.tags),
            ):
                event_id = str(uuid.uuid4())
                payload = _payload(t, kind, event_id)
                payload["event"] = {"previous": old, "current": new}
                sender.emit(api.name, payload, [event_id])
        return api.render_ticket(t)


def _payload(t: Any, kind: str, event_id: str) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT_ID,
        "detail": {
            "id": str(t.id),
            "created_at": _iso(t.created),
            "updated_at": _iso(t.updated),
            "subject": t.subject,
            "status": str(t.status).upper(),
            "priority": str(t.priority or "normal").upper(),
            "type": str(t.type or "question").upper(),
            "tags": list(t.tags or []),
            "organization_id": str(t.org_id) if t.org_id else None,
            "requester_id": str(t.requester_id),
            "assignee_id": str(t.assignee_id) if t.assignee_id else None,
            "via": {"channel": t.channel},
        },
        "event": {},
        "id": event_id,
        "subject": f"zen:ticket:{t.id}",
        "time": _iso(t.updated),
        "type": f"zen:event-type:{kind}",
        "zendesk_event_version": EVENT_VERSION,
    }


def ticket_events(api: Any, touched: dict[int, tuple[int, int]], since: int) -> None:
    """Deliver the tickets in ``touched`` (id → key before the change, ``(-1, -1)`` when
    new): created, status changed (at or after ``since``), or otherwise commented on."""
    sender = api.sandbox.webhooks
    if sender is None or not sender.wants(api.name):
        return
    for ticket_id in sorted(touched, key=lambda i: (api.tickets[i].updated, i)):
        t = api.tickets.get(ticket_id)
        if t is None:
            continue
        if touched[ticket_id] == (-1, -1):
            kind = "ticket.created"
        elif (t.status_updated or 0) >= since:
            kind = "ticket.status_changed"
        else:
            kind = "ticket.comment_added"
        event_id = str(uuid.uuid4())
        payload = _payload(t, kind, event_id)
        if kind.endswith("status_changed"):
            payload["event"] = {"current": str(t.status).upper()}
        sender.emit(api.name, payload, [event_id])
