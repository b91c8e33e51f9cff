"""HubSpot fake: the legacy v1/v2 reads (singer-io tap-hubspot) over the same records as v3."""

from __future__ import annotations

import httpx

from hub.sandbox.world import CREDENTIALS, build_sandbox

HEADERS = {"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"}


def test_legacy_reads_match_the_v3_records():
    sandbox = build_sandbox(companies=25, seed=6)
    http = httpx.Client(
        transport=sandbox.transport(), base_url="https://api.hubapi.com", headers=HEADERS
    )
    hs = sandbox.api("hubspot")
    v3 = {c["id"]: c for c in hs.objects("companies")}
    seen, offset = [], 0
    while True:
        body = http.get(
            "/companies/v2/companies/paged",
            params={"limit": 7, "offset": offset, "properties": ["name", "domain"]},
        ).json()
        seen.extend(body["companies"])
        offset = body["offset"]
        if not body["has-more"]:
            break
    assert {str(c["companyId"]) for c in seen} == set(v3)
    for company in seen:
        mine = v3[str(company["companyId"])]["properties"]
        assert company["properties"]["name"]["value"] == mine["name"]
        assert set(company["properties"]) <= {"name", "domain"}
        assert company["properties"]["name"]["versions"][0]["value"] == mine["name"]
    props = http.get("/properties/v1/companies/properties").json()
    assert isinstance(props, list) and {"name", "domain"} <= {p["name"] for p in props}
    deals = http.get("/deals/v1/deal/paged", params={"includeAssociations": "true"}).json()
    assert deals["deals"] and "associatedCompanyIds" in deals["deals"][0]["associations"]
    contacts = http.get("/contacts/v1/lists/all/contacts/all", params={"count": 5}).json()
    assert contacts["has-more"] and contacts["contacts"][0]["is-contact"] is True
    owners = http.get("/owners/v2/owners").json()
    assert {o["email"] for o in owners} == {o["email"] for o in sandbox.world.owners}
    engagements = http.get("/engagements/v1/engagements/paged", params={"limit": 50}).json()
    types = {r["engagement"]["type"] for r in engagements["results"]}
    assert types <= {"CALL", "EMAIL", "MEETING", "NOTE", "TASK"} and engagements["hasMore"]
    missing = http.get("/contacts/v1/contact/vid/1/profile")
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
