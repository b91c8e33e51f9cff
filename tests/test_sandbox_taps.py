"""The endpoints the three Singer taps (tap-stripe, tap-hubspot, meltano-tap-hubspot) need,
in the vendors' published shapes. The taps themselves run in ``bench/bench_taps.py``."""

from __future__ import annotations

import httpx

from hub.sandbox.world import CREDENTIALS, build_sandbox

HUBSPOT = {"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"}


def _clients(companies: int = 20) -> tuple[object, httpx.Client, httpx.Client]:
    sandbox = build_sandbox(companies=companies, seed=3)
    hubspot = httpx.Client(
        transport=sandbox.transport(), base_url="https://api.hubapi.com", headers=HUBSPOT
    )
    stripe = httpx.Client(
        transport=sandbox.transport(),
        base_url="https://api.stripe.com",
        auth=(CREDENTIALS["stripe"]["api_key"], ""),
    )
    return sandbox, hubspot, stripe


def test_hubspot_reads_of_older_and_generic_clients():
    sandbox, http, _ = _clients()
    hs = sandbox.api("hubspot")
    # /companies/v2/properties: the same array as /properties/v1/companies/properties.
    v2 = http.get("/companies/v2/properties").json()
    assert v2 == http.get("/properties/v1/companies/properties").json()
    assert {"name", "type", "fieldType", "groupName", "options"} <= set(v2[0])
    # v3 associations batch read: {"results": [{"from": {"id"}, "to": [{"id", "type"}]}]}.
    companies = [c["id"] for c in hs.objects("companies")][:5]
    inputs = [{"id": int(cid)} for cid in companies] + [{"id": "1"}]
    resp = http.post("/crm/v3/associations/company/contact/batch/read", json={"inputs": inputs})
    body = resp.json()
    assert resp.status_code == 207 and body["status"] == "COMPLETE" and body["numErrors"] >= 1
    first = body["results"][0]
    assert first["from"]["id"] in companies
    assert first["to"] and first["to"][0]["type"] == "company_to_contact"
    assert all(isinstance(t["id"], str) for t in first["to"])
    # /crm/v4/objects/{type} lists like v3.
    v4 = http.get("/crm/v4/objects/tickets", params={"limit": 5}).json()
    assert (
        v4["results"] == http.get("/crm/v3/objects/tickets", params={"limit": 5}).json()["results"]
    )
    # Pipelines, v1 shapes.
    deals = http.get("/deals/v1/pipelines").json()
    assert deals[0]["pipelineId"] == "default"
    stage = deals[0]["stages"][0]
    assert {"stageId", "label", "probability", "closedWon", "displayOrder", "active"} <= set(stage)
    tickets = http.get("/crm-pipelines/v1/pipelines/tickets").json()["results"]
    assert tickets[0]["stages"][0]["metadata"]["ticketState"] == "OPEN"


def test_engagements_modified_after_pages_every_engagement_once():
    sandbox, http, _ = _clients()
    hs = sandbox.api("hubspot")
    hs._materialize_all()
    want = sum(len(hs._active[t]) for t in ("calls", "emails", "meetings", "notes", "tasks"))
    seen, after = [], 0
    while True:
        body = http.get(
            "/engagements/v1/engagements/modified/after", params={"after": after, "limit": 40}
        ).json()
        seen += [r["engagement"]["id"] for r in body["results"]]
        stamps = [r["engagement"]["lastUpdated"] for r in body["results"]]
        assert stamps == sorted(stamps)
        if not body["hasMore"]:
            break
        after = body["after"]
    assert len(seen) == len(set(seen)) == want
    assert http.get("/engagements/v1/engagements/modified/after?after=x").status_code == 400


def test_standard_types_the_fake_does_not_model_answer_empty_not_unknown():
    _, http, _ = _clients(companies=5)
    for name in ("communications", "postal_mail", "line_item", "products", "0-136"):
        props = http.get(f"/crm/v3/properties/{name}")
        assert props.status_code == 200, name
        names = {p["name"] for p in props.json()["results"]}
        assert names == {"hs_object_id", "hs_createdate", "hs_lastmodifieddate"}
        assert http.get(f"/crm/v3/objects/{name}").json() == {"results": []}
        search = http.post(f"/crm/v3/objects/{name}/search", json={"filterGroups": []})
        assert search.json() == {"total": 0, "results": []}
        missing = http.get(f"/crm/v3/objects/{name}/123")
        assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    unknown = http.get("/crm/v3/properties/spaceships")
    assert unknown.status_code == 400 and "Unable to infer object type" in unknown.json()["message"]
    anonymous = httpx.Client(transport=http._transport, base_url="https://api.hubapi.com")
    assert anonymous.get("/crm/v3/properties/products").status_code == 401


def test_stripe_expansions_tap_stripe_asks_for():
    _, _, http = _clients(companies=10)
    charges = http.get("/v1/charges", params={"limit": 3, "expand[]": "data.refunds"}).json()[
        "data"
    ]
    assert charges[0]["refunds"]["object"] == "list" and charges[0]["refunds"]["data"] == []
    subs = http.get("/v1/subscriptions", params={"limit": 3, "expand[]": "data.plan.tiers"})
    assert subs.status_code == 200
    customers = http.get(
        "/v1/customers",
        params=[("limit", "3"), ("expand[]", "data.sources"), ("expand[]", "data.tax_ids")],
    )
    assert customers.status_code == 200
    assert customers.json()["data"][0]["sources"]["object"] == "list"
    bad = http.get("/v1/charges", params={"expand[]": "data.nothing"})
    assert bad.status_code == 400 and "cannot be expanded" in bad.json()["error"]["message"]
