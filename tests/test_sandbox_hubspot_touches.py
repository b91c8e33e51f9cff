"""HubSpot fake: activities (calls, e-mails, meetings, notes), tickets and the CSM's touches.

Read through the routes a connector would use: lists with associations, search on
``hs_lastmodifieddate``, properties, ``/crm/v3/schemas``; the world's touches drift by archetype.
"""

from __future__ import annotations

import statistics

import httpx
import pytest

from hub.sandbox.base import Sandbox
from hub.sandbox.hubspot import HubSpotAPI, iso_ms, parse_ms
from hub.sandbox.world import CREDENTIALS, World, advance

TOKEN = CREDENTIALS["hubspot"]["access_token"]
KINDS = ("calls", "emails", "meetings", "notes")
TWO_WAY = {
    "calls": lambda p: p.get("hs_call_disposition") == "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "emails": lambda p: p.get("hs_email_direction") == "INCOMING_EMAIL",
    "meetings": lambda p: p.get("hs_meeting_outcome") == "COMPLETED",
    "notes": lambda p: False,
}
PROPS = {
    "calls": "hs_timestamp,hs_call_direction,hs_call_disposition,hubspot_owner_id",
    "emails": "hs_timestamp,hs_email_direction,hubspot_owner_id",
    "meetings": "hs_timestamp,hs_meeting_outcome,hubspot_owner_id",
    "notes": "hs_timestamp,hubspot_owner_id",
}


@pytest.fixture(scope="module")
def portal():
    sandbox = Sandbox(World(companies=150, seed=4))
    api = sandbox.add(HubSpotAPI(sandbox))
    api.seed()
    http = httpx.Client(
        transport=sandbox.transport(),
        base_url="https://api.hubapi.com",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    return sandbox, api, http


def page_all(http: httpx.Client, path: str, **params) -> list[dict]:
    out, after = [], None
    while True:
        body = http.get(path, params={**params, **({"after": after} if after else {})}).json()
        out.extend(body["results"])
        if "paging" not in body:
            return out
        after = body["paging"]["next"]["after"]


def test_touches_drift_by_archetype_and_name_their_company_and_owner(portal):
    sandbox, api, http = portal
    world = sandbox.world
    by_hubspot = {c.hubspot_id: c for c in world.companies}
    now = parse_ms(iso_ms(int(world.start.timestamp() * 1000)))
    last_two_way: dict[str, int] = {}
    for kind in KINDS:
        rows = page_all(
            http,
            f"/crm/v3/objects/{kind}",
            limit=100,
            properties=PROPS[kind],
            associations="companies",
        )
        assert rows, kind
        for row in rows:
            links = row["associations"]["companies"]["results"]
            assert len(links) == 1 and links[0]["type"] == f"{kind[:-1]}_to_company"
            company = by_hubspot[links[0]["id"]]
            assert row["properties"]["hubspot_owner_id"] == company.owner_id
            at = parse_ms(row["properties"]["hs_timestamp"])
            assert at <= now
            if TWO_WAY[kind](row["properties"]):
                last_two_way[company.hubspot_id] = max(last_two_way.get(company.hubspot_id, 0), at)

    def days(archetype: str) -> float:
        ages = [
            (now - last_two_way.get(c.hubspot_id, now - 200 * 86_400_000)) / 86_400_000
            for c in world.companies
            if c.archetype == archetype and c.owner_id and c.merged_into is None
        ]
        return statistics.median(ages)

    assert days("healthy") < 20 < days("slipping") < days("at_risk")
    # HubSpot's "last contacted" follows the latest call, e-mail or meeting.
    companies = page_all(
        http, "/crm/v3/objects/companies", limit=100, properties="notes_last_contacted"
    )
    assert sum(bool(c["properties"].get("notes_last_contacted")) for c in companies) > 0.8 * len(
        companies
    )


def test_activities_are_object_types_with_properties_search_and_schemas(portal):
    sandbox, api, http = portal
    for kind in (*KINDS, "tickets"):
        props = http.get(f"/crm/v3/properties/{kind}").json()["results"]
        assert {"hs_object_id", "hubspot_owner_id"} <= {p["name"] for p in props}
    by_id = http.get("/crm/v3/properties/0-48").json()["results"]  # calls by type id
    assert "hs_call_direction" in {p["name"] for p in by_id}
    found = http.post(
        "/crm/v3/objects/emails/search",
        json={
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_email_direction",
                            "operator": "EQ",
                            "value": "INCOMING_EMAIL",
                        }
                    ]
                }
            ],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["hs_email_direction"],
            "limit": 5,
        },
    ).json()
    assert found["total"] > 0
    assert all(r["properties"]["hs_email_direction"] == "INCOMING_EMAIL" for r in found["results"])
    assert http.get("/crm/v3/schemas").json() == {"results": []}
    seeded = http.get(
        "/crm/v3/objects/tickets", params={"limit": 100, "associations": "companies"}
    ).json()["results"]
    assert seeded and all(t["associations"]["companies"]["results"] for t in seeded)
    ticket = http.post(
        "/crm/v3/objects/tickets",
        json={"properties": {"subject": "Login broken", "hs_pipeline_stage": "1"}},
    )
    assert ticket.status_code == 201 and ticket.json()["properties"]["hs_pipeline"] == "0"
    missing = http.post("/crm/v3/objects/calls", json={"properties": {"hs_call_title": "x"}})
    assert missing.status_code == 400 and "hs_timestamp" in missing.text
    stages = http.get("/crm/v3/pipelines/tickets").json()["results"][0]["stages"]
    assert [s["metadata"]["ticketState"] for s in stages][-1] == "CLOSED"


def test_a_touch_logged_through_the_api_is_seen_incrementally(portal):
    sandbox, api, http = portal
    company = next(
        c for c in sandbox.world.companies if c.owner_id and c.merged_into is None and not c.traps
    )
    advance(sandbox, 1)
    stamp = iso_ms(int(sandbox.world.clock.now().timestamp() * 1000))
    created = http.post(
        "/crm/v3/objects/meetings",
        json={
            "properties": {
                "hs_timestamp": stamp,
                "hs_meeting_outcome": "COMPLETED",
                "hubspot_owner_id": company.owner_id,
            },
            "associations": [
                {
                    "to": {"id": company.hubspot_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 188}],
                }
            ],
        },
    )
    assert created.status_code == 201
    read = http.get(
        f"/crm/v3/objects/companies/{company.hubspot_id}",
        params={"properties": "notes_last_contacted"},
    ).json()
    assert read["properties"]["notes_last_contacted"] == stamp
    # Activities have granular scopes: a token without crm.objects.calls.read cannot list
    # calls (the contact scopes do not stand in for it) but still reads e-mails.
    api.issue_token("pat-no-calls", without={"crm.objects.calls.read"})
    limited = httpx.Client(
        transport=sandbox.transport(),
        base_url="https://api.hubapi.com",
        headers={"Authorization": "Bearer pat-no-calls"},
    )
    denied = limited.get("/crm/v3/objects/calls")
    assert denied.status_code == 403
    assert denied.json()["errors"][0]["context"]["requiredGranularScopes"] == [
        "crm.objects.calls.read"
    ]
    assert limited.get("/crm/v3/objects/emails").status_code == 200
    # An older portal without those scopes governs activities with the contact scopes.
    api.issue_token("pat-no-contacts", without={"crm.objects.contacts.read"})
    limited.headers["Authorization"] = "Bearer pat-no-contacts"
    api.granular_activity_scopes = False
    try:
        denied = limited.get("/crm/v3/objects/calls")
    finally:
        api.granular_activity_scopes = True
    assert denied.status_code == 403
    assert denied.json()["errors"][0]["context"]["requiredGranularScopes"] == [
        "crm.objects.contacts.read"
    ]


def test_hub_check_names_the_activity_scope_a_sandbox_token_lacks(portal):
    """``hub check`` against the fake with a token issued without ``crm.objects.notes.read``:
    the portal refuses notes only, and the check names that scope."""
    from hub.checks import check_connections
    from hub.config import parse_config

    sandbox, api, _ = portal
    api.issue_token("pat-no-notes", without={"crm.objects.notes.read"})
    config = parse_config(
        {
            "connections": {
                "hubspot": {
                    "connector": "hubspot",
                    "settings": {
                        "access_token": "pat-no-notes",
                        "base_url": "https://api.hubapi.com",
                    },
                }
            }
        }
    )
    verdicts = check_connections(config, transport=sandbox.transport())
    verdict = next(v for v in verdicts if v.connection == "hubspot")
    assert verdict.ok, verdict.detail
    assert (
        "notes not readable (add crm.objects.notes.read; until then those streams are skipped)"
        in verdict.detail
    )
    assert "calls" not in verdict.detail.split("not readable")[0]
