"""CSM touches (HubSpot calls, e-mails, meetings, notes) → ``csm_touch`` events, worked by hand.

Raw rows are written as the HubSpot connector stores CRM objects (``properties`` and
``associations.companies``); every expectation below follows from the row it comes from.
"""

from __future__ import annotations

import json

from hub.store import RawRecord, Store
from hub.testing.mappings import write_rows
from hub.timeline import run_mappings
from mappings.hubspot import HubSpotMapping
from mappings.hubspot.touches import CALL_CONNECTED

T = "2026-03-0{day}T10:00:00.000Z"


def activity(obj_id: str, day: int, company: str | None = "100", **props) -> dict:
    return {
        "id": obj_id,
        "properties": {"hs_timestamp": T.format(day=day), "hubspot_owner_id": "7", **props},
        "associations": {"companies": [company] if company else []},
        "createdAt": T.format(day=day),
    }


def touches(store: Store) -> dict[str, dict]:
    run_mappings(store, None, mappings=[HubSpotMapping])
    return {
        r["id"]: {**r, "attrs": json.loads(r["attrs"])}
        for r in store.db.query(
            "SELECT id, ts, summary, attrs, account_id FROM events WHERE type = 'csm_touch'"
        )
    }


def test_activities_become_touches_with_type_direction_and_owner(store):
    write_rows(store, "hubspot", "owners", [{"id": "7", "firstName": "Ada", "lastName": "Ng"}])
    write_rows(
        store,
        "hubspot",
        "companies",
        [{"id": "100", "properties": {"name": "Acme", "domain": "acme.example"}}],
    )
    write_rows(
        store,
        "hubspot",
        "calls",
        [
            # Connected (HubSpot's "Connected" outcome), 12 minutes: two-way.
            activity("1", 1, hs_call_direction="OUTBOUND", hs_call_status="COMPLETED",
                     hs_call_disposition=CALL_CONNECTED, hs_call_duration=720000,
                     hs_call_title="QBR prep"),
            # No answer: an outbound attempt, not two-way.
            activity("2", 2, hs_call_direction="OUTBOUND", hs_call_status="NO_ANSWER"),
            # Cancelled before it happened: no touch.
            activity("3", 3, hs_call_status="CANCELED"),
            # On no company: nobody's touch.
            activity("4", 4, company=None, hs_call_status="COMPLETED"),
        ],
    )  # fmt: skip
    write_rows(
        store,
        "hubspot",
        "emails",
        [
            activity("1", 5, hs_email_direction="INCOMING_EMAIL", hs_email_subject="Re: renewal"),
            activity("2", 6, hs_email_direction="EMAIL", hs_email_status="SENT"),
            activity("3", 7, hs_email_direction="EMAIL", hs_email_status="BOUNCED"),
        ],
    )
    write_rows(
        store,
        "hubspot",
        "meetings",
        [
            activity("1", 8, hs_meeting_outcome="COMPLETED",
                     hs_meeting_start_time="2026-03-08T15:00:00.000Z", hs_meeting_title="QBR"),
            activity("2", 9, hs_meeting_outcome="NO_SHOW"),
        ],
    )  # fmt: skip
    write_rows(store, "hubspot", "notes", [activity("1", 9, hs_note_body="Champion left")])
    got = touches(store)
    # Call 1 and e-mail 1 share HubSpot id "1" and stay apart: the type is in the id.
    assert sorted(got) == [
        "hubspot:csm_touch:1:call",
        "hubspot:csm_touch:1:email",
        "hubspot:csm_touch:1:meeting",
        "hubspot:csm_touch:1:note",
        "hubspot:csm_touch:2:call",
        "hubspot:csm_touch:2:email",
    ]
    view = {
        k: (v["attrs"]["type"], v["attrs"]["direction"], v["attrs"]["two_way"])
        for k, v in got.items()
    }
    assert view == {
        "hubspot:csm_touch:1:call": ("call", "outbound", True),
        "hubspot:csm_touch:2:call": ("call", "outbound", False),
        "hubspot:csm_touch:1:email": ("email", "inbound", True),
        "hubspot:csm_touch:2:email": ("email", "outbound", False),
        "hubspot:csm_touch:1:meeting": ("meeting", "two_way", True),
        "hubspot:csm_touch:1:note": ("note", "internal", False),
    }
    call = got["hubspot:csm_touch:1:call"]
    assert call["summary"] == "Outbound call, connected, 12 min by Ada Ng: QBR prep"
    assert call["attrs"]["owner"] == "7" and call["attrs"]["owner_name"] == "Ada Ng"
    assert call["account_id"] == "100"
    # A meeting is dated at its start, not when it was logged.
    assert got["hubspot:csm_touch:1:meeting"]["ts"] == "2026-03-08T15:00:00.000000Z"

    # The meeting turns out cancelled, and the note is deleted: both touches go.
    write_rows(store, "hubspot", "meetings", [activity("1", 8, hs_meeting_outcome="CANCELED")])
    store.write_page("hubspot", "notes", [RawRecord("1", activity("1", 9), deleted=True)], None)
    got = touches(store)
    assert "hubspot:csm_touch:1:meeting" not in got and "hubspot:csm_touch:1:note" not in got
    assert len(got) == 4


def test_an_activity_on_a_contact_only_lands_on_the_contacts_company(store):
    write_rows(
        store,
        "hubspot",
        "companies",
        [{"id": "100", "properties": {"name": "Acme", "domain": "acme.example"}}],
    )
    write_rows(
        store,
        "hubspot",
        "contacts",
        [
            {"id": "501", "properties": {"email": "free@gmail.example"}},  # no company
            {
                "id": "502",
                "properties": {"email": "ana@acme.example", "associatedcompanyid": "100"},
            },
        ],
    )
    logged = activity("9", 2, company=None, hs_email_direction="INCOMING_EMAIL")
    # The first linked contact has no company; the second one's company is the account.
    logged["associations"]["contacts"] = ["501", "502"]
    orphan = activity("10", 3, company=None, hs_email_direction="INCOMING_EMAIL")
    orphan["associations"]["contacts"] = ["501"]
    write_rows(store, "hubspot", "emails", [logged, orphan])
    got = touches(store)
    assert list(got) == ["hubspot:csm_touch:9:email"]
    assert got["hubspot:csm_touch:9:email"]["account_id"] == "100"
    assert got["hubspot:csm_touch:9:email"]["attrs"]["two_way"] is True
