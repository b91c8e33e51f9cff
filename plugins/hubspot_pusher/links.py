"""Tying a task to the records its evidence names, beside its company.

A renewal task is associated with the renewal deal, a payment task with the billing
contact, where HubSpot has them:

* **deal**: a HubSpot event names its deal (``attrs.deal_id``, or a ``hubspot:deal:<id>``
  entity);
* **billing contact**: a billing event (one with ``attrs.invoice_id``) names no HubSpot
  record, so the contact is found through the billing record it came from: the e-mail of
  the invoice (``customer_email``) or of its customer, read from the billing connection's
  synced records (any connection whose connector is the event's source), then the HubSpot
  contact with that e-mail. The e-mails of every task in a push are looked up together
  before the first write (``prefetch_contacts``: one search per ``EMAILS_PER_SEARCH``
  e-mails, an ``IN`` filter), not one search per task: searches share HubSpot's 5-per-second
  budget. No contact, no link: the task still goes to the company.

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
# HubSpot's search takes up to 100 values in one IN filter and returns up to 200 per page.
EMAILS_PER_SEARCH = 100
SEARCH_PAGE = 200


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

    def prefetch_contacts(self, tasks: list[dict[str, Any]]) -> None:
        """Find the HubSpot contact of every billing e-mail these tasks' evidence names, in
        as few searches as HubSpot allows (``EMAILS_PER_SEARCH`` e-mails each)."""
        cache: dict[str, str | None] = self.__dict__.setdefault("_contact_cache", {})
        emails: list[str] = []
        for task in tasks:
            for event in self.ctx.evidence_events(task):
                attrs = event.get("attrs") or {}
                deal = attrs.get("deal_id") if event.get("source") == "hubspot" else None
                if deal or str(event.get("entity") or "").startswith("hubspot:deal:"):
                    continue
                if attrs.get("invoice_id"):
                    email = self._billing_email(event)
                    if email and email not in cache:
                        emails.append(email)
        emails = list(dict.fromkeys(emails))
        for start in range(0, len(emails), EMAILS_PER_SEARCH):
            chunk = emails[start : start + EMAILS_PER_SEARCH]
            found = self._contacts_by_emails(chunk)
            for email in chunk:
                cache[email] = found.get(email)

    def _billing_contact(self, event: dict[str, Any]) -> str | None:
        email = self._billing_email(event)
        if not email:
            return None
        cache: dict[str, str | None] = self.__dict__.setdefault("_contact_cache", {})
        if email not in cache:
            cache[email] = self._contacts_by_emails([email]).get(email)
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

    def _contacts_by_emails(self, emails: list[str]) -> dict[str, str]:
        """The contact id for each e-mail HubSpot knows (the oldest contact when several
        share one), by one search (paged when more than a page of contacts match)."""
        out: dict[str, str] = {}
        after: str | None = None
        while True:
            body: dict[str, Any] = {
                "filterGroups": [
                    {"filters": [{"propertyName": "email", "operator": "IN", "values": emails}]}
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": ["email"],
                "limit": SEARCH_PAGE,
            }
            if after:
                body["after"] = after
            answer = self.read("POST", "/crm/v3/objects/contacts/search", json=body).json()
            for result in answer.get("results") or []:
                email = str((result.get("properties") or {}).get("email") or "").strip().lower()
                if email and email not in out:
                    out[email] = str(result["id"])
            after = ((answer.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return out
