"""Tying a task to the records its evidence names, beside its company.

A renewal task is associated with the renewal deal, a payment task with the billing
contact, where HubSpot has them:

* **deal**: a HubSpot event names its deal (``attrs.deal_id``, or a ``hubspot:deal:<id>``
  entity);
* **billing contact**: a billing event (one with ``attrs.invoice_id``) names no HubSpot
  record, so the contact is found through the billing record it came from: the e-mail of
  the invoice (``customer_email``) or of its customer, read from the billing connection's
  synced records (any connection whose connector is the event's source), then the HubSpot
  contact with that e-mail (a search, once per e-mail per push). No contact, no link: the
  task still goes to the company.

Associations are HubSpot-defined types (task → deal 216, task → contact 204).
"""

from __future__ import annotations

from typing import Any

from hub.store.push_preview import raw_record
from plugins.hubspot_pusher.client import HubSpotApi

TASK_TO_DEAL = 216
TASK_TO_CONTACT = 204
TYPE_IDS = {"deals": TASK_TO_DEAL, "contacts": TASK_TO_CONTACT}
# Where a billing event's e-mail is, by the stream its record came from.
EMAIL_FIELDS = (("invoices", "invoice_id", "customer_email"), ("customers", None, "email"))


class EvidenceLinks(HubSpotApi):
    """Which deals and contacts a task's evidence names (reads only)."""

    def evidence_links(self, task: dict[str, Any]) -> list[tuple[str, str]]:
        """``[("deals", id), ("contacts", id)]`` for one outbox task, without repeats."""
        out: list[tuple[str, str]] = []
        for event in self.ctx.evidence_events(task):
            attrs = event.get("attrs") or {}
            entity = str(event.get("entity") or "")
            deal = attrs.get("deal_id") if event.get("source") == "hubspot" else None
            if not deal and entity.startswith("hubspot:deal:"):
                deal = entity.split(":", 2)[2]
            if deal:
                out.append(("deals", str(deal)))
            elif attrs.get("invoice_id"):
                contact = self._billing_contact(event)
                if contact:
                    out.append(("contacts", contact))
        return list(dict.fromkeys(out))

    def link_inputs(self, links: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """The ``associations`` entries of a task create for these links."""
        return [
            {
                "to": {"id": rid},
                "types": [
                    {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TYPE_IDS[kind]}
                ],
            }
            for kind, rid in links
        ]

    def _billing_contact(self, event: dict[str, Any]) -> str | None:
        email = self._billing_email(event)
        if not email:
            return None
        cache: dict[str, str | None] = self.__dict__.setdefault("_contact_cache", {})
        if email not in cache:
            cache[email] = self._contact_by_email(email)
        return cache[email]

    def _billing_email(self, event: dict[str, Any]) -> str | None:
        parts = str(event.get("entity") or "").split(":", 2)
        if len(parts) != 3:
            return None
        source, _, record = parts
        attrs = event.get("attrs") or {}
        config, store = self.ctx.config, self.ctx.store
        connections = [
            name
            for name, conn in (getattr(config, "connections", None) or {}).items()
            if getattr(conn, "connector", None) == source
        ]
        for connection in connections:
            for stream, key, field in EMAIL_FIELDS:
                rid = attrs.get(key) if key else record
                data = raw_record(store, connection, stream, str(rid)) if rid else None
                if data and data.get(field):
                    return str(data[field]).strip().lower()
        return None

    def _contact_by_email(self, email: str) -> str | None:
        response = self.read(
            "POST",
            "/crm/v3/objects/contacts/search",
            json={
                "filterGroups": [
                    {"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}
                ],
                "properties": ["email"],
                "limit": 1,
            },
        )
        results = response.json().get("results") or []
        return str(results[0]["id"]) if results else None
