"""HubSpot CRM facts for the activity object types (calls, emails, meetings, notes) and tickets.

Plain data read by ``schema`` (which turns it into the type tables and property registry):
object type ids, the created-date property, default and free-text properties, the standard
properties (name, label, type, field type, options, read-only), and the HubSpot-defined
association type ids to companies, contacts and deals. Activities are what a CSM logs on a
record; HubSpot governs them with the contact scopes, tickets with ``tickets``.
"""

from __future__ import annotations

from dataclasses import dataclass

# (name, label, type, fieldType, options or None, read_only)
Prop = tuple[str, str, str, str, "list[str] | None", bool]


@dataclass(frozen=True)
class ActivityType:
    type_id: str
    singular: str
    created_prop: str
    group: tuple[str, str]
    defaults: tuple[str, ...]
    query: tuple[str, ...]
    props: tuple[Prop, ...]
    # (to type) -> (this→to id, to→this id, primary this→to id or None, primary to→this or None)
    assoc: dict[str, tuple[int, int, int | None, int | None]]


CALL_STATUSES = ["BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED",
                 "IN_PROGRESS", "NO_ANSWER", "QUEUED", "RINGING"]  # fmt: skip
# HubSpot's default call outcomes are GUIDs; "Connected" is the one that means a conversation.
CALL_CONNECTED = "f240bbac-87c9-4f6e-bf70-924b57d47db7"
CALL_DISPOSITIONS = [
    "9d9162e7-6cf3-4944-bf63-4dff82258764",  # Busy
    CALL_CONNECTED,  # Connected
    "a4c4c377-d246-4b32-a13b-75a56a4cd0ff",  # Left live message
    "b2cf5968-551e-4856-9783-52b3da59a7d0",  # Left voicemail
    "73a0d17f-1163-4015-bdd5-ec830791da20",  # No answer
    "17b47fee-58de-441e-a44c-c6300d46f273",  # Wrong number
]
EMAIL_DIRECTIONS = ["EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"]
MEETING_OUTCOMES = ["SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"]
TICKET_STAGES = ["1", "2", "3", "4"]  # New, Waiting on contact, Waiting on us, Closed

_COMMON: tuple[Prop, ...] = (
    ("hs_timestamp", "Activity date", "datetime", "date", None, False),
    ("hubspot_owner_id", "Activity assigned to", "enumeration", "select", None, False),
    ("hs_createdate", "Create date", "datetime", "date", None, True),
    ("hs_lastmodifieddate", "Last modified date", "datetime", "date", None, True),
    ("hs_object_id", "Record ID", "number", "number", None, True),
)


def _assoc(base: int) -> dict[str, tuple[int, int, int | None, int | None]]:
    """HubSpot numbers an activity's links in steps: companies, contacts, deals (±1 back)."""
    return {
        "companies": (base + 1, base, None, None),
        "contacts": (base + 13, base + 12, None, None),
        "deals": (base + 25, base + 24, None, None),
    }


ACTIVITY_TYPES: dict[str, ActivityType] = {
    "calls": ActivityType(
        "0-48",
        "call",
        "hs_createdate",
        ("call", "Call information"),
        ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
        ("hs_call_title", "hs_call_body"),
        (
            *_COMMON,
            ("hs_call_title", "Call title", "string", "text", None, False),
            ("hs_call_body", "Call notes", "string", "textarea", None, False),
            (
                "hs_call_direction",
                "Call direction",
                "enumeration",
                "select",
                ["INBOUND", "OUTBOUND"],
                False,
            ),
            ("hs_call_disposition", "Call outcome", "string", "text", None, False),
            ("hs_call_duration", "Call duration (ms)", "number", "number", None, False),
            ("hs_call_status", "Call status", "enumeration", "select", CALL_STATUSES, False),
        ),
        _assoc(181),
    ),  # fmt: skip
    "emails": ActivityType(
        "0-49",
        "email",
        "hs_createdate",
        ("email", "Email information"),
        ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
        ("hs_email_subject",),
        (
            *_COMMON,
            ("hs_email_subject", "Email subject", "string", "text", None, False),
            ("hs_email_text", "Email body", "string", "textarea", None, False),
            (
                "hs_email_direction",
                "Email direction",
                "enumeration",
                "select",
                EMAIL_DIRECTIONS,
                False,
            ),
            (
                "hs_email_status",
                "Email send status",
                "enumeration",
                "select",
                ["BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"],
                False,
            ),
        ),
        _assoc(185),
    ),  # fmt: skip
    "meetings": ActivityType(
        "0-47",
        "meeting",
        "hs_createdate",
        ("meeting", "Meeting information"),
        ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
        ("hs_meeting_title",),
        (
            *_COMMON,
            ("hs_meeting_title", "Meeting name", "string", "text", None, False),
            ("hs_meeting_body", "Meeting description", "string", "textarea", None, False),
            ("hs_meeting_start_time", "Start time", "datetime", "date", None, False),
            ("hs_meeting_end_time", "End time", "datetime", "date", None, False),
            (
                "hs_meeting_outcome",
                "Meeting outcome",
                "enumeration",
                "select",
                MEETING_OUTCOMES,
                False,
            ),
            ("hs_internal_meeting_notes", "Internal notes", "string", "textarea", None, False),
        ),
        _assoc(187),
    ),  # fmt: skip
    "notes": ActivityType(
        "0-46",
        "note",
        "hs_createdate",
        ("note", "Note information"),
        ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
        ("hs_note_body",),
        (*_COMMON, ("hs_note_body", "Note body", "string", "textarea", None, False)),
        _assoc(189),
    ),  # fmt: skip
    "tickets": ActivityType(
        "0-5",
        "ticket",
        "createdate",
        ("ticketinformation", "Ticket information"),
        (
            "content",
            "createdate",
            "hs_lastmodifieddate",
            "hs_object_id",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_ticket_category",
            "hs_ticket_priority",
            "subject",
        ),
        ("subject", "content"),
        (
            ("subject", "Ticket name", "string", "text", None, False),
            ("content", "Ticket description", "string", "textarea", None, False),
            ("hs_pipeline", "Pipeline", "enumeration", "select", ["0"], False),
            ("hs_pipeline_stage", "Ticket status", "enumeration", "select", TICKET_STAGES, False),
            (
                "hs_ticket_priority",
                "Priority",
                "enumeration",
                "select",
                ["LOW", "MEDIUM", "HIGH"],
                False,
            ),
            (
                "hs_ticket_category",
                "Category",
                "enumeration",
                "checkbox",
                ["PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY"],
                False,
            ),
            ("hubspot_owner_id", "Ticket owner", "enumeration", "select", None, False),
            ("closed_date", "Close date", "datetime", "date", None, False),
            ("createdate", "Create date", "datetime", "date", None, True),
            ("hs_lastmodifieddate", "Last modified date", "datetime", "date", None, True),
            ("hs_object_id", "Record ID", "number", "number", None, True),
        ),
        {
            "companies": (26, 25, 339, 340),
            "contacts": (16, 15, None, None),
            "deals": (28, 27, None, None),
        },
    ),  # fmt: skip
}
