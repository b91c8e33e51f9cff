"""The HubSpot activity streams: calls, e-mails, meetings and notes a CSM logs on a record.

They are CRM objects like deals and tasks (``/crm/v3/objects/{calls,emails,meetings,notes}``)
and are read the same way (``CrmObjectStream``: a list on the first run, then a keyset
search on ``hs_lastmodifieddate`` sharing the search budget, the live-count check for
deletes, a resumable position on every page). Each record keeps only the properties the
timeline's ``csm_touch`` mapping reads, plus its links: ``associations.companies`` and
``associations.contacts`` from the v4 association batch read (one request per page of
changed records and linked type), so an activity logged on a contact only can still be
placed on the contact's company.

Scopes: HubSpot grants these objects with ``crm.objects.calls.read``,
``crm.objects.emails.read``, ``crm.objects.meetings.read`` and ``crm.objects.notes.read``
(older portals: through ``crm.objects.contacts.read``). A token without one is not a failed
sync: the stream is skipped with a one-line note naming the scope, and the other streams
(and the rest of the activity streams) go on.

Note bodies can be long pasted text: the stored ``hs_note_body`` is cut to
``NOTE_BODY_CHARS`` (the timeline shows its first line only).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from connectors.hubspot.common import ASSOC_BATCH, json_body
from connectors.hubspot.streams import CrmObjectStream
from hub.connector import Page, SyncContext
from hub.errors import FatalAPIError
from hub.http.pagination import dig

NOTE_BODY_CHARS = 300
_COMMON = ["hs_timestamp", "hubspot_owner_id"]


def read_links(
    ctx: SyncContext, from_type: str, ids: list[str], to_type: str
) -> dict[str, list[str]]:
    """Ids of ``to_type`` records linked to each record (v4 batch read; 207 = some have none)."""
    links: dict[str, list[str]] = {}
    path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
    for start in range(0, len(ids), ASSOC_BATCH):
        chunk = ids[start : start + ASSOC_BATCH]
        body = json_body(
            ctx.client.post(path, json={"inputs": [{"id": i} for i in chunk]}, idempotent=True),
            f"{from_type} → {to_type} association read",
        )
        for result in body.get("results") or []:
            targets = {
                str(t.get("toObjectId"))
                for t in result.get("to") or []
                if t.get("toObjectId") is not None
            }
            links[str(dig(result, "from.id"))] = sorted(targets, key=_id_order)
        for error in body.get("errors") or []:
            # "No company is associated with …" is an answer, not a failure.
            if (
                "NO_ASSOCIATIONS" not in str(error.get("subCategory") or "")
                and error.get("category") != "OBJECT_NOT_FOUND"
            ):
                raise FatalAPIError(
                    f"HubSpot association read failed: {error.get('message') or error}"
                )
    return links


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (1 << 62, value)


class EngagementStream(CrmObjectStream):
    """One activity type: its properties, its company and contact links, skipped without scope."""

    scope: ClassVar[str] = ""
    created_property = "hs_createdate"
    company_links = True

    def read_company_links(self, ctx: SyncContext, ids: list[str]) -> dict[str, list[str]]:
        return read_links(ctx, self.object_type, ids, "companies")

    def normalize(self, record: dict[str, Any], props: list[str]) -> dict[str, Any]:
        out = super().normalize(record, props)
        body = out["properties"].get("hs_note_body")
        if isinstance(body, str) and len(body) > NOTE_BODY_CHARS:
            out["properties"]["hs_note_body"] = body[: NOTE_BODY_CHARS - 1] + "…"
        return out

    def complete(self, ctx: SyncContext, batches: list[Any]) -> None:
        """Company links (the base class), then contact links, for all held pages at once."""
        super().complete(ctx, batches)
        live = [r for b in batches if not b.archived for r in b.records]
        if live:
            contacts = read_links(ctx, self.object_type, [r["id"] for r in live], "contacts")
            for record in live:
                record.setdefault("associations", {})["contacts"] = contacts.get(record["id"], [])

    def pages(self, ctx: SyncContext, state: dict[str, Any] | None) -> Iterator[Page]:
        """The usual read; a 403 (the token lacks this type's scope) skips the stream with a
        note instead of failing the sync. Pages already read stay committed."""
        try:
            yield from super().pages(ctx, state)
        except FatalAPIError as exc:
            if exc.status != 403:
                raise
            fix = exc.hint if exc.hint and "scope" in exc.hint else None
            ctx.note(
                f"{self.name} skipped: HubSpot refused to list them (403); "
                + (fix or f"add the scope {self.scope} to the private app")
            )


class CallsStream(EngagementStream):
    """Calls: direction, status and outcome (connected or not), duration, title."""

    name = "calls"
    object_type = "calls"
    path = "/crm/v3/objects/calls"
    scope = "crm.objects.calls.read"
    base_properties = [
        *_COMMON,
        "hs_call_direction",
        "hs_call_status",
        "hs_call_disposition",
        "hs_call_duration",
        "hs_call_title",
    ]


class EmailsStream(EngagementStream):
    """Logged e-mails: direction (to or from the customer), send status, subject."""

    name = "emails"
    object_type = "emails"
    path = "/crm/v3/objects/emails"
    scope = "crm.objects.emails.read"
    base_properties = [*_COMMON, "hs_email_direction", "hs_email_status", "hs_email_subject"]


class MeetingsStream(EngagementStream):
    """Meetings: outcome (held, no-show, cancelled…), start time, title."""

    name = "meetings"
    object_type = "meetings"
    path = "/crm/v3/objects/meetings"
    scope = "crm.objects.meetings.read"
    base_properties = [
        *_COMMON,
        "hs_meeting_outcome",
        "hs_meeting_start_time",
        "hs_meeting_title",
    ]


class NotesStream(EngagementStream):
    """Notes: the start of the body (internal: a note is never a two-way touch)."""

    name = "notes"
    object_type = "notes"
    path = "/crm/v3/objects/notes"
    scope = "crm.objects.notes.read"
    base_properties = [*_COMMON, "hs_note_body"]


ENGAGEMENT_STREAMS = [CallsStream, EmailsStream, MeetingsStream, NotesStream]

__all__ = [
    "ENGAGEMENT_STREAMS",
    "CallsStream",
    "EmailsStream",
    "EngagementStream",
    "MeetingsStream",
    "NotesStream",
    "read_links",
]
