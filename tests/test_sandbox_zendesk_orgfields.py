"""Zendesk fake: organization fields, bulk organization updates and job statuses, over its routes."""

from __future__ import annotations

import base64

import httpx
import pytest

from hub.sandbox.base import Sandbox
from hub.sandbox.world import CREDENTIALS, World, advance
from hub.sandbox.zendesk import ZendeskAPI

CREDS = CREDENTIALS["zendesk"]
BASIC = (
    "Basic " + base64.b64encode(f"{CREDS['email']}/token:{CREDS['api_token']}".encode()).decode()
)


@pytest.fixture
def env() -> tuple[Sandbox, ZendeskAPI, httpx.Client]:
    sandbox = Sandbox(World(companies=30, seed=2))
    api = sandbox.add(ZendeskAPI(sandbox))
    api.seed()
    http = httpx.Client(
        transport=sandbox.transport(),
        base_url="https://sandbox.zendesk.com",
        headers={"authorization": BASIC},
    )
    return sandbox, api, http


def _field(http: httpx.Client, **body) -> httpx.Response:
    return http.post("/api/v2/organization_fields.json", json={"organization_field": body})


def test_organization_fields_crud_with_real_shapes_and_errors(env):
    sandbox, api, http = env
    assert http.get("/api/v2/organization_fields.json").json()["organization_fields"] == []
    score = _field(http, type="integer", title="Health score", key="hub_health_score")
    assert score.status_code == 201
    body = score.json()["organization_field"]
    assert body["key"] == "hub_health_score" and body["type"] == "integer"
    assert body["active"] is True and body["system"] is False
    assert body["url"].endswith(f"/api/v2/organization_fields/{body['id']}.json")
    band = _field(
        http,
        type="dropdown",
        title="Health band",
        key="hub_health_band",
        custom_field_options=[
            {"name": "Green", "value": "green"},
            {"name": "Red", "value": "red"},
        ],
    ).json()["organization_field"]
    assert [o["value"] for o in band["custom_field_options"]] == ["green", "red"]
    taken = _field(http, type="text", title="Again", key="hub_health_score")
    assert taken.status_code == 422
    assert taken.json()["error"] == "RecordInvalid"
    assert taken.json()["details"]["key"][0]["error"] == "DuplicateValue"
    bad = _field(http, type="colour", title="", key="9bad")
    assert bad.status_code == 422 and set(bad.json()["details"]) == {"type", "title", "key"}
    # Type cannot change; title can.
    fid = body["id"]
    retype = http.put(
        f"/api/v2/organization_fields/{fid}.json", json={"organization_field": {"type": "text"}}
    )
    assert retype.status_code == 422
    renamed = http.put(
        f"/api/v2/organization_fields/{fid}.json",
        json={"organization_field": {"title": "Health score (hub)"}},
    )
    assert renamed.json()["organization_field"]["title"] == "Health score (hub)"
    listed = http.get("/api/v2/organization_fields.json").json()
    assert listed["count"] == 2 and listed["next_page"] is None
    # Every organization renders every active key, null when unset.
    org = http.get("/api/v2/organizations.json").json()["organizations"][0]
    assert org["organization_fields"] == {"hub_health_score": None, "hub_health_band": None}
    assert http.delete(f"/api/v2/organization_fields/{band['id']}.json").status_code == 204
    assert http.get(f"/api/v2/organization_fields/{band['id']}.json").status_code == 404
    org = http.get(f"/api/v2/organizations/{org['id']}.json").json()["organization"]
    assert org["organization_fields"] == {"hub_health_score": None}


def test_update_many_answers_a_job_that_completes_with_per_item_results(env):
    sandbox, api, http = env
    _field(http, type="integer", title="Health score", key="hub_health_score")
    _field(
        http,
        type="dropdown",
        title="Band",
        key="hub_health_band",
        custom_field_options=[{"name": "Green", "value": "green"}, {"name": "Red", "value": "red"}],
    )
    orgs = http.get("/api/v2/organizations.json").json()["organizations"]
    before = orgs[0]["updated_at"]
    advance(sandbox, 1)
    items = [
        {
            "id": orgs[0]["id"],
            "organization_fields": {"hub_health_score": 81, "hub_health_band": "green"},
        },
        {
            "id": orgs[1]["id"],
            "organization_fields": {"hub_health_score": 12, "hub_health_band": "red"},
        },
        {"id": orgs[2]["id"], "organization_fields": {"hub_health_band": "purple"}},
        {"id": 1, "organization_fields": {"hub_health_score": 5}},
    ]
    queued = http.put("/api/v2/organizations/update_many.json", json={"organizations": items})
    assert queued.status_code == 200
    job = queued.json()["job_status"]
    assert job["status"] == "queued" and job["total"] == 4 and job["results"] is None
    # Not applied until the job runs.
    first = http.get(f"/api/v2/organizations/{orgs[0]['id']}.json").json()["organization"]
    assert first["organization_fields"]["hub_health_score"] is None
    statuses = []
    for _ in range(5):
        polled = http.get(f"/api/v2/job_statuses/{job['id']}.json").json()["job_status"]
        statuses.append(polled["status"])
        if polled["status"] == "completed":
            break
    assert statuses == ["working", "completed"]
    results = polled["results"]
    assert polled["progress"] == 4
    assert results[0] == {
        "id": orgs[0]["id"],
        "action": "update",
        "success": True,
        "status": "Updated",
    }
    assert results[2]["success"] is False and results[2]["index"] == 2
    assert results[3]["success"] is False and results[3]["error"] == "RecordNotFound"
    first = http.get(f"/api/v2/organizations/{orgs[0]['id']}.json").json()["organization"]
    assert first["organization_fields"] == {"hub_health_score": 81, "hub_health_band": "green"}
    assert first["updated_at"] > before  # an incremental export sees the change
    # The same change for many ids at once.
    ids = ",".join(str(o["id"]) for o in orgs[3:6])
    job2 = http.put(
        f"/api/v2/organizations/update_many.json?ids={ids}",
        json={"organization": {"organization_fields": {"hub_health_score": 50}}},
    ).json()["job_status"]
    api.run_jobs()
    done = http.get(f"/api/v2/job_statuses/{job2['id']}.json").json()["job_status"]
    assert done["status"] == "completed" and all(r["success"] for r in done["results"])
    # More than 100 at once is refused.
    too_many = [{"id": orgs[0]["id"], "organization_fields": {}}] * 101
    refused = http.put("/api/v2/organizations/update_many.json", json={"organizations": too_many})
    assert refused.status_code == 400 and refused.json()["error"] == "TooManyValues"
    assert http.get("/api/v2/job_statuses/ffff.json").status_code == 404
