"""HubSpot fake, what a write-back admin needs: scopes and token info, property and group
archive/restore, task archive, and task associations to deals and contacts."""

from __future__ import annotations

import httpx
import pytest

from hub.sandbox.base import Sandbox
from hub.sandbox.hubspot import HubSpotAPI
from hub.sandbox.world import CREDENTIALS, World

TOKEN = CREDENTIALS["hubspot"]["access_token"]
BASE = "https://api.hubapi.com"


@pytest.fixture
def portal() -> tuple[Sandbox, HubSpotAPI]:
    sandbox = Sandbox(World(companies=20, seed=1))
    api = sandbox.add(HubSpotAPI(sandbox))
    api.seed()
    return sandbox, api


def client(sandbox: Sandbox, token: str = TOKEN) -> httpx.Client:
    return httpx.Client(
        transport=sandbox.transport(),
        base_url=BASE,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_token_info_lists_scopes_and_a_missing_scope_is_a_403_in_hubspots_shape(portal):
    sandbox, api = portal
    api.issue_token("pat-na1-limited", without={"crm.objects.contacts.write"})
    api.issue_token("svc-key-1", kind="service_key")
    anonymous = httpx.Client(transport=sandbox.transport(), base_url=BASE)
    info = anonymous.post(
        "/oauth/v2/private-apps/get/access-token-info", json={"tokenKey": "pat-na1-limited"}
    )
    assert info.status_code == 200
    body = info.json()
    assert set(body) == {"userId", "hubId", "appId", "scopes"}
    assert "crm.objects.contacts.read" in body["scopes"]
    assert "crm.objects.contacts.write" not in body["scopes"]
    full = anonymous.post(
        "/oauth/v2/private-apps/get/access-token-info", json={"tokenKey": "svc-key-1"}
    ).json()
    assert "crm.objects.contacts.write" in full["scopes"]
    assert "crm.schemas.companies.write" in full["scopes"]
    unknown = anonymous.post(
        "/oauth/v2/private-apps/get/access-token-info", json={"tokenKey": "nope"}
    )
    assert unknown.status_code == 401

    limited = client(sandbox, "pat-na1-limited")
    assert limited.get("/crm/v3/objects/contacts", params={"limit": 1}).status_code == 200
    # Tasks are governed by the contact scopes, as in HubSpot.
    denied = limited.post(
        "/crm/v3/objects/tasks",
        json={"properties": {"hs_task_subject": "Call", "hs_timestamp": "2026-11-01T00:00:00Z"}},
    )
    assert denied.status_code == 403
    error = denied.json()
    assert error["category"] == "MISSING_SCOPES" and error["status"] == "error"
    assert error["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.write"]
    assert error["correlationId"]
    # The service key is a bearer token like any other.
    ok = client(sandbox, "svc-key-1").get("/crm/v3/objects/companies", params={"limit": 1})
    assert ok.status_code == 200
    assert client(sandbox, "pat-wrong").get("/crm/v3/objects/companies").status_code == 401


def _property(http: httpx.Client, name: str) -> httpx.Response:
    return http.post(
        "/crm/v3/properties/companies",
        json={
            "name": name,
            "label": "Hub health",
            "type": "number",
            "fieldType": "number",
            "groupName": "hub_health",
        },
    )


def test_property_archive_keeps_values_and_restore_brings_them_back(portal):
    sandbox, api = portal
    http = client(sandbox)
    assert (
        http.post(
            "/crm/v3/properties/companies/groups", json={"name": "hub_health", "label": "Hub"}
        ).status_code
        == 201
    )
    assert _property(http, "hub_score").status_code == 201
    company = http.get("/crm/v3/objects/companies", params={"limit": 1}).json()["results"][0]
    cid = company["id"]
    http.patch(f"/crm/v3/objects/companies/{cid}", json={"properties": {"hub_score": "42"}})

    assert http.delete("/crm/v3/properties/companies/hub_score").status_code == 204
    assert http.get("/crm/v3/properties/companies/hub_score").status_code == 404
    archived = http.get("/crm/v3/properties/companies", params={"archived": "true"}).json()
    entry = next(p for p in archived["results"] if p["name"] == "hub_score")
    assert entry["archived"] is True and entry["archivedAt"]
    live = http.get("/crm/v3/properties/companies").json()["results"]
    assert "hub_score" not in {p["name"] for p in live}
    read = http.get(f"/crm/v3/objects/companies/{cid}", params={"properties": "hub_score"})
    assert "hub_score" not in read.json()["properties"]
    # The group cannot go while it holds a live property; once empty it archives.
    assert _property(http, "hub_band").status_code == 201
    assert http.delete("/crm/v3/properties/companies/groups/hub_health").status_code == 400
    http.post("/crm/v3/properties/companies/batch/archive", json={"inputs": [{"name": "hub_band"}]})
    assert http.delete("/crm/v3/properties/companies/groups/hub_health").status_code == 204
    assert http.get("/crm/v3/properties/companies/groups/hub_health").status_code == 404
    # Re-install: group re-created, properties restored with their values.
    assert (
        http.post(
            "/crm/v3/properties/companies/groups", json={"name": "hub_health", "label": "Hub"}
        ).status_code
        == 201
    )
    restored = http.post(
        "/crm/schemas/2027-03-beta/objects/companies/properties/batch/restore",
        json={"inputs": [{"name": "hub_score"}, {"name": "ghost"}]},
    )
    assert restored.status_code == 207
    assert [p["name"] for p in restored.json()["results"]] == ["hub_score"]
    assert restored.json()["numErrors"] == 1
    read = http.get(f"/crm/v3/objects/companies/{cid}", params={"properties": "hub_score"})
    assert read.json()["properties"]["hub_score"] == "42"
    # An archived name stays taken, as in HubSpot: a create answers 409, a restore works.
    again = _property(http, "hub_band")
    assert again.status_code == 409 and again.json()["category"] == "CONFLICT"
    assert "archived" in again.json()["message"]
    http.post(
        "/crm/schemas/2027-03-beta/objects/companies/properties/batch/restore",
        json={"inputs": [{"name": "hub_band"}]},
    )
    archived = http.get("/crm/v3/properties/companies", params={"archived": "true"}).json()
    assert not {"hub_band", "hub_score"} & {p["name"] for p in archived["results"]}


def test_tasks_archive_and_associate_with_deals_and_contacts(portal):
    sandbox, api = portal
    http = client(sandbox)
    deal = http.get("/crm/v3/objects/deals", params={"limit": 1}).json()["results"][0]["id"]
    contact = http.get("/crm/v3/objects/contacts", params={"limit": 1}).json()["results"][0]["id"]
    created = http.post(
        "/crm/v3/objects/tasks",
        json={
            "properties": {
                "hs_task_subject": "Renewal call",
                "hs_timestamp": "2026-11-02T09:00:00Z",
            },
            "associations": [
                {
                    "to": {"id": deal},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}],
                },
                {
                    "to": {"id": contact},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}],
                },
            ],
        },
    )
    assert created.status_code == 201
    task = created.json()["id"]
    to_deals = http.get(f"/crm/v4/objects/tasks/{task}/associations/deals").json()["results"]
    assert [r["toObjectId"] for r in to_deals] == [int(deal)]
    back = http.get(f"/crm/v4/objects/deals/{deal}/associations/tasks").json()["results"]
    assert int(task) in {r["toObjectId"] for r in back}
    # A default association made afterwards through v4 works too.
    other = http.post(
        "/crm/v3/objects/tasks",
        json={"properties": {"hs_task_subject": "Card", "hs_timestamp": "2026-11-02T09:00:00Z"}},
    ).json()["id"]
    linked = http.put(f"/crm/v4/objects/tasks/{other}/associations/default/contacts/{contact}")
    assert linked.status_code in (200, 201)
    to_contacts = http.get(f"/crm/v4/objects/tasks/{other}/associations/contacts").json()
    assert [r["toObjectId"] for r in to_contacts["results"]] == [int(contact)]
    # Archive one, batch-archive the other; archived tasks list with archived=true.
    assert http.delete(f"/crm/v3/objects/tasks/{task}").status_code == 204
    assert http.get(f"/crm/v3/objects/tasks/{task}").status_code == 404
    assert (
        http.post(
            "/crm/v3/objects/tasks/batch/archive", json={"inputs": [{"id": other}]}
        ).status_code
        == 204
    )
    gone = http.get("/crm/v3/objects/tasks", params={"archived": "true", "limit": 100}).json()
    assert {task, other} <= {t["id"] for t in gone["results"]}
