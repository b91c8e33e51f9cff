"""The HubSpot fake's webhooks: property changes as a (project-based) app receives them.

``_apply`` (every validated write: the hub's pushes, CRM users' edits, the simulated days)
calls ``property_events`` before it writes; each property whose value changes becomes one
``<object>.propertyChange`` event in HubSpot's shape (``eventId``, ``subscriptionId``,
``portalId``, ``appId``, ``occurredAt`` ms, ``subscriptionType``, ``objectId``,
``propertyName``, ``propertyValue``, ``changeSource``), all of one write in one delivery
(HubSpot batches up to 100). Nothing is sent unless a sender is attached.

A ``propertyChange`` subscription names its properties: the sandbox's app is subscribed to
the portal's own (HubSpot's and those seeded with the portal), not to properties an
integration created through the API later (the hub's health group): a CSM subscribes to
what the hub reads, and the hub's own writes do not come back as deliveries.
"""

from __future__ import annotations

from typing import Any

from hub.sandbox.hubspot.tokens import HUB_ID

APP_ID = 3_141_592
SUBSCRIPTIONS = {"companies": 1001, "contacts": 1002, "deals": 1003}
SINGULAR = {"companies": "company", "contacts": "contact", "deals": "deal"}
BATCH = 100


def property_events(
    api: Any, t: str, obj: Any, values: dict[str, str | None], at: int, source: str
) -> None:
    """Queue one event per property of ``obj`` (type ``t``) that ``values`` changes."""
    sender = api.sandbox.webhooks
    if sender is None or t not in SUBSCRIPTIONS or not sender.wants(api.name):
        return
    events = [
        {
            "eventId": sender.next_id(),
            "subscriptionId": SUBSCRIPTIONS[t],
            "portalId": HUB_ID,
            "appId": APP_ID,
            "occurredAt": max(at, obj.updated),
            "subscriptionType": f"{SINGULAR[t]}.propertyChange",
            "attemptNumber": 0,
            "objectId": obj.id,
            "propertyName": name,
            "propertyValue": "" if value is None else str(value),
            "changeSource": source,
        }
        for name, value in values.items()
        if obj.props.get(name) != value and _subscribed(api, t, name)
    ]
    for start in range(0, len(events), BATCH):
        chunk = events[start : start + BATCH]
        sender.emit(api.name, chunk, [str(e["eventId"]) for e in chunk])


def _subscribed(api: Any, t: str, name: str) -> bool:
    """Seeded definitions carry no ``createdAt``; those created through the API do."""
    definition = api._props.get(t, {}).get(name)
    return definition is not None and "createdAt" not in definition
