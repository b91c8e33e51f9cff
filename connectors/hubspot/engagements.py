"""The HubSpot activity streams: calls, e-mails, meetings and notes a CSM logs on a record.

They are CRM objects like deals and tasks (``/crm/v3/objects/{calls,emails,meetings,notes}``)
and are read the same way (``CrmObjectStream``: a list on the first run, then a keyset
search on ``hs_lastmodifieddate`` sharing the search budget, the live-count check for
deletes, a resumable position on every page). Each record keeps only the properties the
timeline's ``csm_touch`` mapping reads, plus its links from the v4 association batch read:
``associations.companies`` (one request per page of changed records) and, for the few
records linked to no company, ``associations.contacts`` (one more request per page that has
such records), so an activity logged on a contact only is still placed on the contact's
company.

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

from connectors.hubspot.common import read_links
from connectors.hubspot.streams import CrmObjectStream
from hub.connector import Page, SyncContext
from hub.errors import FatalAPIError
from hub.http import HttpClient

NOTE_BODY_CHARS = 300
_COMMON = ["hs_timestamp", "hubspot_owner_id"]


class EngagementStream(CrmObjectStream):
    """One activity type: its properties, its company links (contact links when it has no
    company), skipped with a note without its scope."""

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
        """Company links (the base class) for all held pages at once; then contacts, which
        matter only when no company is linked (the mapping then uses the contact's company),
        so only those records cost a second association read."""
        super().complete(ctx, batches)
        orphans = [
            r
            for b in batches
            if not b.archived
            for r in b.records
            if not (r.get("associations") or {}).get("companies")
        ]
        if orphans:
            contacts = read_links(ctx, self.object_type, [r["id"] for r in orphans], "contacts")
            for record in orphans:
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
                + (fix or f"add the scope {self.scope} to the service key (or legacy private app)")
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


def activity_access(client: HttpClient) -> str:
    """For ``hub check``: which activity types the token may read (one request each), so a
    missing scope is named before the first sync rather than as a skipped stream."""
    missing = []
    for stream in ENGAGEMENT_STREAMS:
        try:
            client.get(stream.path, params={"limit": 1})
        except FatalAPIError as exc:
            if exc.status != 403:
                raise
            missing.append(stream)
    if not missing:
        return "calls, e-mails, meetings and notes readable"
    names = ", ".join(s.name for s in missing)
    scopes = ", ".join(s.scope for s in missing)
    return f"{names} not readable (add {scopes}; until then those streams are skipped)"


__all__ = [
    "ENGAGEMENT_STREAMS",
    "CallsStream",
    "EmailsStream",
    "EngagementStream",
    "MeetingsStream",
    "NotesStream",
    "activity_access",
]
