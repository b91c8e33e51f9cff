"""HubSpot activity streams (calls, e-mails, meetings, notes) against the sandbox fake: read
with their links, incrementally, skipped with a note without their scope, and mapped to
``csm_touch`` events."""

from __future__ import annotations

import json
import time

import httpx

from connectors.hubspot import HubSpotConnector
from connectors.hubspot.engagements import ENGAGEMENT_STREAMS
from hub.http.ratelimit import reset_shared_limiters
from hub.sandbox.hubspot import HubSpotAPI
from hub.sandbox.world import CREDENTIALS
from hub.sync import sync_connection
from hub.timeline import run_mappings
from mappings.hubspot import HubSpotMapping

TOKEN = CREDENTIALS["hubspot"]["access_token"]
KINDS = [s.name for s in ENGAGEMENT_STREAMS]


def run(sandbox, store, **kwargs):
    reset_shared_limiters()
    connector = HubSpotConnector({"access_token": TOKEN}, connection="hubspot")
    results = sync_connection(
        store, connector, transport=sandbox.transport(), sleep=lambda s: None, **kwargs
    )
    return {r.stream: r for r in results}


def stored(store, stream: str) -> dict[str, dict]:
    out = {}
    for row in store.raw_rows(f"raw_hubspot_{stream}", include_deleted=True):
        data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
        out[row["id"]] = {**row, "data": data}
    return out


def test_activities_are_read_with_their_links_and_only_the_mapped_properties(api_env):
    sandbox, api, store = api_env(HubSpotAPI, companies=30, seed=2)
    results = run(sandbox, store)
    for kind in KINDS:
        assert results[kind].status == "ok", results[kind].error
        live = {o["id"] for o in api.objects(kind)}
        rows = stored(store, kind)
        assert set(rows) == live and live, kind
        stream = next(s for s in ENGAGEMENT_STREAMS if s.name == kind)
        wanted = stream(HubSpotConnector({"access_token": TOKEN})).properties()
        for row in rows.values():
            assert list(row["data"]["properties"]) == wanted
            # The world logs every activity on a company: no contact read is needed.
            assert row["data"]["associations"] == {
                "companies": row["data"]["associations"]["companies"]
            }
            assert row["data"]["associations"]["companies"]
    # A first read: list + archived list + the company links of the one page.
    assert results["calls"].requests == 3
    # With nothing new, each activity stream costs one search.
    again = run(sandbox, store)
    assert {k: again[k].requests for k in KINDS} == dict.fromkeys(KINDS, 1)


def test_an_activity_logged_or_changed_through_the_api_is_seen_by_the_next_sync(api_env):
    sandbox, api, store = api_env(HubSpotAPI, companies=30, seed=2)
    sandbox.world.clock.run()  # as `hub sandbox serve` does: writes get fresh timestamps
    run(sandbox, store)
    run_mappings(store, None, mappings=[HubSpotMapping])
    http = httpx.Client(
        transport=sandbox.transport(),
        base_url="https://api.hubapi.com",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    company = api.objects("companies")[0]["id"]
    meeting = next(
        m
        for m in api.objects("meetings")
        if m["properties"].get("hs_meeting_outcome") == "COMPLETED"
    )["id"]
    time.sleep(0.01)
    created = http.post(
        "/crm/v3/objects/calls",
        json={
            "properties": {
                "hs_timestamp": "2026-12-01T10:00:00.000Z",
                "hs_call_direction": "INBOUND",
                "hs_call_status": "COMPLETED",
                "hs_call_title": "Customer called about the renewal",
                "hs_call_duration": "600000",
            },
            "associations": [
                {
                    "to": {"id": company},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 182}],
                }
            ],
        },
    )
    assert created.status_code == 201, created.text
    call = created.json()["id"]
    # Logged on a person only: placed on that contact's company.
    contact = next(c for c in api.objects("contacts") if c["properties"].get("associatedcompanyid"))
    on_contact = http.post(
        "/crm/v3/objects/emails",
        json={
            "properties": {
                "hs_timestamp": "2026-12-01T11:00:00.000Z",
                "hs_email_direction": "INCOMING_EMAIL",
                "hs_email_status": "SENT",
                "hs_email_subject": "Re: our plan",
            },
            "associations": [
                {
                    "to": {"id": contact["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 198}],
                }
            ],
        },
    )
    assert on_contact.status_code == 201, on_contact.text
    email = on_contact.json()["id"]
    http.patch(
        f"/crm/v3/objects/meetings/{meeting}",
        json={"properties": {"hs_meeting_outcome": "CANCELED"}},
    )
    results = run(sandbox, store)  # incremental: no full refresh
    assert results["calls"].records == 1 and results["meetings"].records == 1
    assert stored(store, "calls")[call]["data"]["associations"] == {"companies": [company]}
    assert stored(store, "emails")[email]["data"]["associations"] == {
        "companies": [],
        "contacts": [contact["id"]],
    }
    # Nothing else changed: the contact read is made for that one page only.
    assert results["emails"].requests == 3  # the newest-first search holds it; 2 link reads
    run_mappings(store, None, mappings=[HubSpotMapping])
    events = {
        r["id"]: r
        for r in store.db.query(
            "SELECT id, account_id, attrs, summary FROM events WHERE type = 'csm_touch'"
        )
    }
    new = events[f"hubspot:csm_touch:{call}:call"]
    assert new["account_id"] == company
    assert json.loads(new["attrs"])["two_way"] is True  # an inbound call
    assert new["summary"].startswith("Inbound call, connected, 10 min")
    assert f"hubspot:csm_touch:{meeting}:meeting" not in events  # cancelled: no touch
    by_contact = events[f"hubspot:csm_touch:{email}:email"]
    assert by_contact["account_id"] == contact["properties"]["associatedcompanyid"]


def test_a_token_without_an_activity_scope_skips_that_stream_with_a_note(api_env):
    sandbox, api, store = api_env(HubSpotAPI, companies=10, seed=3)
    api.faults.inject(
        "403", path=r"/crm/v3/objects/calls", scopes=["crm.objects.calls.read"], count=10
    )
    results = run(sandbox, store)
    assert all(r.status == "ok" for r in results.values()), {n: r.error for n, r in results.items()}
    assert results["calls"].records == 0
    assert results["calls"].notes == [
        "calls skipped: HubSpot refused to list them (403); "
        "add the scope(s) crm.objects.calls.read to the service key (or legacy private app)"
    ]
    assert stored(store, "emails") and stored(store, "companies")


def test_check_names_the_activity_scopes_the_token_lacks(api_env):
    sandbox, api, _ = api_env(HubSpotAPI, companies=10, seed=3)
    connector = HubSpotConnector({"access_token": TOKEN}, connection="hubspot")
    with connector.client(transport=sandbox.transport(), attempts=1) as client:
        text = connector.check(client)
    assert "companies readable; calls, e-mails, meetings and notes readable;" in text
    api.faults.inject("403", path=r"/crm/v3/objects/meetings$", scopes=["x"], count=1)
    with connector.client(transport=sandbox.transport(), attempts=1) as client:
        text = connector.check(client)
    assert (
        "meetings not readable (add crm.objects.meetings.read; "
        "until then those streams are skipped)" in text
    )
