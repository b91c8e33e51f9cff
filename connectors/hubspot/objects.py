"""The HubSpot object streams: owners, companies, contacts, deals and tasks.

Each is a declaration (path, properties, history, links) on ``CrmObjectStream``, whose module
(``connectors.hubspot.streams``) explains how CRM objects are read; owners are a plain list.
"""

from __future__ import annotations

from typing import Any

from connectors.hubspot.streams import CrmObjectStream
from hub.connector import Stream
from hub.http.pagination import CursorPaginator


class OwnersStream(Stream):
    """CRM owners (the CSMs): ``id`` is what ``hubspot_owner_id`` holds. Re-read every run."""

    name = "owners"
    path = "/crm/v3/owners"
    primary_key = "id"
    cursor_field = "updatedAt"
    records_path = "results"
    paginator = CursorPaginator("paging.next.after", "after", page_size=100, size_param="limit")
    incremental = "full"


class CompaniesStream(CrmObjectStream):
    """Companies: the account roots (owner, lifecycle stage, domain, NPS, merges)."""

    name = "companies"
    object_type = "companies"
    path = "/crm/v3/objects/companies"
    base_properties = [
        "name",
        "domain",
        "hubspot_owner_id",
        "lifecyclestage",
        "annualrevenue",
        "notes_last_contacted",
        "hs_additional_domains",
        # The hub's own override fields (created by the pusher; a CSM fills them in HubSpot).
        # HubSpot ignores requested properties that do not exist yet.
        "hub_health_override",
        "hub_health_override_reason",
        "hub_health_override_until",
    ]
    extra_setting = "company_properties"
    merges = True
    history_properties = ["lifecyclestage", "hubspot_owner_id"]
    list_with_history = True

    def properties(self) -> list[str]:
        names = super().properties()
        nps = getattr(self.settings, "nps_property", None)
        return list(dict.fromkeys([*names, nps])) if nps else names

    def history_names(self) -> list[str]:
        nps = getattr(self.settings, "nps_property", None)
        return list(dict.fromkeys([*self.history_properties, *([nps] if nps else [])]))

    def history_from_api(self) -> bool:
        # ``company_history = false``: listed 100 per page, changes observed at each sync.
        return bool(getattr(self.settings, "company_history", True))


class ContactsStream(CrmObjectStream):
    """Contacts: marketing opt-out (``hs_email_optout``) and their primary company."""

    name = "contacts"
    object_type = "contacts"
    path = "/crm/v3/objects/contacts"
    modified_property = "lastmodifieddate"
    base_properties = [
        "email",
        "firstname",
        "lastname",
        "hs_email_optout",
        "associatedcompanyid",
        "lifecyclestage",
    ]
    extra_setting = "contact_properties"
    merges = True
    history_properties = ["hs_email_optout"]

    def wants_history(self, record: dict[str, Any]) -> bool:
        # Only when they opted out is the *when* needed (a minority of contacts).
        return str(record["properties"].get("hs_email_optout") or "").lower() == "true"


class DealsStream(CrmObjectStream):
    """Deals: stage, amount, close date (renewals) and the company they belong to."""

    name = "deals"
    object_type = "deals"
    path = "/crm/v3/objects/deals"
    base_properties = [
        "dealname",
        "amount",
        "dealstage",
        "closedate",
        "pipeline",
        "dealtype",
        "hubspot_owner_id",
    ]
    company_links = True


class TasksStream(CrmObjectStream):
    """Tasks: read back so a task the hub opened and a CSM completed is seen as done."""

    name = "tasks"
    object_type = "tasks"
    path = "/crm/v3/objects/tasks"
    created_property = "hs_createdate"
    base_properties = [
        "hs_task_subject",
        "hs_task_status",
        "hs_task_priority",
        "hs_task_type",
        "hs_timestamp",
        "hs_task_completion_date",
        "hubspot_owner_id",
    ]
    extra_setting = "task_properties"
    company_links = True


__all__ = [
    "CompaniesStream",
    "ContactsStream",
    "DealsStream",
    "OwnersStream",
    "TasksStream",
]
