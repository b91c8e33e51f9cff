"""The Zendesk fake's webhooks: ticket changes as an event-subscribed webhook delivers them.

One delivery per changed ticket, in Zendesk's event shape (``type``
``zen:event-type:ticket.created`` / ``…status_changed`` / ``…comment_added``, ``id``,
``time``, ``subject`` ``zen:ticket:<id>``, ``detail`` with the ticket's fields, upper-case
enums as Zendesk writes them). An escalated ticket carries its ``escalated`` tag in
``detail.tags``. The simulated day and ``POST /api/v2/tickets`` call ``ticket_events``;
nothing is sent unless a sender is attached.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

ACCOUNT_ID = 24_681_357
EVENT_VERSION = "2022-11-06"


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


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
        payload = {
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
            "event": {"current": str(t.status).upper()} if kind.endswith("status_changed") else {},
            "id": event_id,
            "subject": f"zen:ticket:{t.id}",
            "time": _iso(t.updated),
            "type": f"zen:event-type:{kind}",
            "zendesk_event_version": EVENT_VERSION,
        }
        sender.emit(api.name, payload, [event_id])
