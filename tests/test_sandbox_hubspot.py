"""The fake HubSpot CRM behaves like the real API: paging, search, batch, properties, limits.

Checked in process through ``Sandbox.transport()`` and, for the official ``hubspot-api-client``
SDK, over loopback HTTP (``Sandbox.serve()``): every answer must deserialize into its models.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from hub.sandbox.base import Sandbox
from hub.sandbox.hubspot import HubSpotAPI, iso_ms, parse_ms, to_ms
from hub.sandbox.world import CREDENTIALS, World, advance

TOKEN = CREDENTIALS["hubspot"]["access_token"]


def make(
    companies: int = 120, seed: int = 0, **sandbox_kw
) -> tuple[Sandbox, HubSpotAPI, httpx.Client]:
    """A sandbox with only the HubSpot fake (the other fakes are not needed here)."""
    world = World(companies=companies, seed=seed)
    sandbox = Sandbox(world, **sandbox_kw)
    api = sandbox.add(HubSpotAPI(sandbox))
    api.seed()
    client = httpx.Client(
        transport=sandbox.transport(),
        base_url="https://api.hubapi.com",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    return sandbox, api, client


@pytest.fixture(scope="module")
def shared():
    """A read-only world for the tests that do not change anything."""
    return make()


@pytest.fixture
def fresh():
    return make()


def page_all(client: httpx.Client, path: str, **params) -> list[dict]:
    out, after = [], None
    while True:
        body = client.get(path, params={**params, **({"after": after} if after else {})}).json()
        out.extend(body["results"])
        if "paging" not in body:
            return out
        after = body["paging"]["next"]["after"]


def search(client: httpx.Client, otype: str, *groups, **body) -> httpx.Response:
    payload = {"filterGroups": [{"filters": list(g)} for g in groups], **body}
    return client.post(f"/crm/v3/objects/{otype}/search", json=payload)


# -- auth, errors, paging ----------------------------------------------------------------------


def test_bad_token_is_401_in_hubspot_shape(shared):
    sandbox, _, _ = shared
    client = httpx.Client(transport=sandbox.transport(), base_url="https://api.hubapi.com")
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = client.get("/crm/v3/objects/companies", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["status"] == "error"
        assert body["category"] == "INVALID_AUTHENTICATION"
        assert body["message"].startswith("Authentication credentials not found.")
        assert len(body["correlationId"]) == 36


def test_unknown_route_and_missing_object_are_404_in_hubspot_shape(shared):
    _, _, client = shared
    for path in ("/crm/v3/nothing/here", "/crm/v3/objects/companies/123"):
        response = client.get(path)
        assert response.status_code == 404
        assert {"status", "message", "correlationId", "category"} <= response.json().keys()


def test_list_pages_by_after_with_absolute_links_and_no_paging_at_the_end(shared):
    _, api, client = shared
    first = client.get("/crm/v3/objects/companies").json()
    assert len(first["results"]) == 10  # default limit
    link = first["paging"]["next"]["link"]
    assert link.startswith("https://api.hubapi.com/crm/v3/objects/companies?")
    followed = client.get(link).json()
    assert followed["results"][0]["id"] == first["paging"]["next"]["after"]
    assert (
        len(client.get("/crm/v3/objects/companies", params={"limit": 500}).json()["results"]) == 100
    )

    companies = page_all(client, "/crm/v3/objects/companies", limit=100)
    ids = [int(c["id"]) for c in companies]
    assert ids == sorted(set(ids))
    assert len(ids) == 120 - 2  # one merged away, one archived
    contacts = page_all(client, "/crm/v3/objects/contacts", limit=100)
    assert len(contacts) == len(api.objects("contacts"))
    record = companies[0]
    assert {"id", "properties", "createdAt", "updatedAt", "archived"} <= record.keys()
    assert record["updatedAt"].endswith("Z") and len(record["updatedAt"]) == 24
    assert all(isinstance(v, str) or v is None for v in record["properties"].values())


def test_properties_param_returns_requested_plus_the_always_set(shared):
    _, _, client = shared
    default = client.get("/crm/v3/objects/companies", params={"limit": 1}).json()["results"][0]
    assert set(default["properties"]) == {
        "createdate",
        "domain",
        "hs_lastmodifieddate",
        "hs_object_id",
        "name",
    }
    asked = client.get(
        "/crm/v3/objects/companies",
        params=[
            ("limit", 1),
            ("properties", "lifecyclestage,nps_score"),
            ("properties", "no_such_thing"),
        ],
    ).json()["results"][0]
    assert set(asked["properties"]) == {
        "hs_object_id", "createdate", "hs_lastmodifieddate", "lifecyclestage", "nps_score"
    }  # fmt: skip
    contact = client.get(
        "/crm/v3/objects/contacts",
        params={
            "limit": 1,
            "properties": "hs_email_optout,associatedcompanyid",
            "associations": "companies",
        },
    ).json()["results"][0]
    assert contact["properties"]["hs_email_optout"] in ("true", "false")
    assert "lastmodifieddate" in contact["properties"]
    types = {a["type"] for a in contact["associations"]["companies"]["results"]}
    assert types == {"contact_to_company", "contact_to_company_unlabeled"}
    assert {a["id"] for a in contact["associations"]["companies"]["results"]} == {
        contact["properties"]["associatedcompanyid"]
    }


# -- seed: traps, owners, deals -----------------------------------------------------------------


def test_archived_company_is_listed_only_with_archived_true(shared):
    sandbox, _, client = shared
    archived_id = sandbox.world.companies[8].hubspot_id
    archived = page_all(client, "/crm/v3/objects/companies", archived="true", limit=100)
    assert [c["id"] for c in archived] == [archived_id]
    assert archived[0]["archived"] is True and archived[0]["archivedAt"].endswith("Z")
    assert client.get(f"/crm/v3/objects/companies/{archived_id}").status_code == 404
    read = client.get(f"/crm/v3/objects/companies/{archived_id}", params={"archived": "true"})
    assert read.status_code == 200 and read.json()["archived"] is True


def test_seeded_merge_reads_the_survivor_and_moves_contacts(shared):
    sandbox, api, client = shared
    survivor, merged = sandbox.world.companies[5].hubspot_id, sandbox.world.companies[6].hubspot_id
    ids = {c["id"] for c in api.objects("companies")}
    assert merged not in ids and survivor in ids
    read = client.get(
        f"/crm/v3/objects/companies/{merged}", params={"properties": "hs_merged_object_ids"}
    ).json()
    assert read["id"] == survivor
    assert merged in read["properties"]["hs_merged_object_ids"].split(";")
    contact_ids = {cid for cid, _ in api.associations("companies", survivor, "contacts")}
    assert len(contact_ids) >= 4  # both companies' contacts
    for contact in api.objects("contacts"):
        assert contact["properties"]["associatedcompanyid"] != merged


def test_seed_renders_world_truth(shared):
    sandbox, api, client = shared
    world = sandbox.world
    by_id = {c["id"]: c for c in api.objects("companies")}
    for company in world.companies:
        if company.key in (6, 8):
            continue
        record = by_id[company.hubspot_id]["properties"]
        assert record.get("hubspot_owner_id") == company.owner_id
        assert record["annualrevenue"] == str(company.mrr_cents * 12 // 100)
        if company.archetype != "churned":
            assert record["lifecyclestage"] == "customer"
        if "nps_score" in record and company.archetype == "healthy":
            assert int(record["nps_score"]) >= 8
        if "nps_score" in record and company.archetype == "at_risk":
            assert int(record["nps_score"]) <= 5
    assert sandbox.world.companies[3].domain == sandbox.world.companies[4].domain
    # Every live company has a won deal and a renewal deal closing on the renewal date.
    company = world.companies[0]
    deals = [
        api.get("deals", d) for d, _ in api.associations("companies", company.hubspot_id, "deals")
    ]
    stages = sorted(d["properties"]["dealstage"] for d in deals)
    assert stages[0] == "closedwon" and stages[1] in ("qualifiedtobuy", "contractsent")
    renewal = next(d for d in deals if d["properties"]["dealtype"] == "existingbusiness")
    assert renewal["properties"]["closedate"].startswith(company.renewal_date.isoformat())
    assert renewal["properties"]["pipeline"] == "default"
    owners = page_all(client, "/crm/v3/owners", limit=2)
    assert [o["id"] for o in owners] == [o["id"] for o in world.owners]
    # Troubled archetypes have more opted-out contacts than healthy ones.
    optout: dict[str, list[int]] = {}
    for contact in api.objects("contacts"):
        owner = world.by_hubspot_id(contact["properties"]["associatedcompanyid"])
        optout.setdefault(owner.archetype, []).append(
            contact["properties"]["hs_email_optout"] == "true"
        )
    rate = {k: sum(v) / len(v) for k, v in optout.items()}
    assert rate["at_risk"] > rate["healthy"]


def test_determinism_same_seed_same_data_other_seed_differs():
    _, a, _ = make(60, seed=3)
    _, b, _ = make(60, seed=3)
    _, c, _ = make(60, seed=4)
    assert a.snapshot() == b.snapshot()
    assert a.snapshot()["objects"]["contacts"] != c.snapshot()["objects"]["contacts"]


def test_seed_is_fast():
    import time

    start = time.process_time()
    make(5000)
    assert time.process_time() - start < 5  # ~0.6 s here; 100k companies take ~8 s


# -- search -------------------------------------------------------------------------------------


def test_search_operators_match_a_brute_force_filter(shared):
    _, api, client = shared
    companies = api.objects("companies")
    contacts = api.objects("contacts")

    def ids(response: httpx.Response) -> set[str]:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == len(body["results"])
        return {r["id"] for r in body["results"]}

    def expect(items, pred):
        return {r["id"] for r in items if pred(r["properties"])}

    revenue = sorted(float(c["properties"]["annualrevenue"]) for c in companies)[
        len(companies) // 2
    ]
    cases = [
        ("companies", [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "customer"}],
         lambda p: p["lifecyclestage"] == "customer"),
        ("companies", [{"propertyName": "lifecyclestage", "operator": "NEQ", "value": "customer"}],
         lambda p: p["lifecyclestage"] != "customer"),
        ("companies", [{"propertyName": "annualrevenue", "operator": "GT", "value": str(revenue)}],
         lambda p: float(p["annualrevenue"]) > revenue),
        ("companies", [{"propertyName": "annualrevenue", "operator": "LTE", "value": revenue}],
         lambda p: float(p["annualrevenue"]) <= revenue),
        ("companies", [{"propertyName": "nps_score", "operator": "HAS_PROPERTY"}],
         lambda p: p.get("nps_score") is not None),
        ("companies", [{"propertyName": "nps_score", "operator": "NOT_HAS_PROPERTY"}],
         lambda p: p.get("nps_score") is None),
        ("companies", [{"propertyName": "nps_score", "operator": "BETWEEN", "value": "3", "highValue": "7"}],
         lambda p: p.get("nps_score") is not None and 3 <= int(p["nps_score"]) <= 7),
        ("companies", [{"propertyName": "nps_score", "operator": "IN", "values": ["9", "10"]}],
         lambda p: p.get("nps_score") in ("9", "10")),
        ("companies", [{"propertyName": "nps_score", "operator": "NOT_IN", "values": ["9", "10"]}],
         lambda p: p.get("nps_score") not in ("9", "10")),
        ("companies", [{"propertyName": "nps_score", "operator": "LT", "value": "5"},
                       {"propertyName": "lifecyclestage", "operator": "EQ", "value": "CUSTOMER"}],
         lambda p: p.get("nps_score") is not None and int(p["nps_score"]) < 5 and p["lifecyclestage"] == "customer"),
    ]  # fmt: skip
    for otype, filters, pred in cases:
        got = ids(search(client, otype, filters, limit=200))
        assert got == expect(companies, pred), filters
    # CONTAINS_TOKEN with a wildcard over the e-mail domain.
    domain = companies[0]["properties"]["domain"]
    got = ids(
        search(
            client,
            "contacts",
            [{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": f"*@{domain}"}],
            limit=200,
        )
    )
    assert got == expect(contacts, lambda p: p["email"].endswith("@" + domain)) and got
    # Filter groups are ORed.
    got = ids(
        search(
            client,
            "companies",
            [{"propertyName": "nps_score", "operator": "EQ", "value": "10"}],
            [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "other"}],
            limit=200,
        )
    )
    assert got == expect(
        companies, lambda p: p.get("nps_score") == "10" or p["lifecyclestage"] == "other"
    )


def test_search_dates_compare_numerically_as_ms_or_iso(shared):
    _, api, client = shared
    contacts = api.objects("contacts")
    stamps = sorted(parse_ms(c["properties"]["lastmodifieddate"]) for c in contacts)
    lo, hi = stamps[len(stamps) // 4], stamps[len(stamps) // 2]
    expected = sum(1 for s in stamps if lo <= s <= hi)
    for a, b in ((str(lo), str(hi)), (iso_ms(lo), iso_ms(hi))):
        body = search(
            client, "contacts",
            [{"propertyName": "lastmodifieddate", "operator": "BETWEEN", "value": a, "highValue": b}],
        ).json()  # fmt: skip
        assert body["total"] == expected
    body = search(
        client,
        "contacts",
        [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(lo)}],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        properties=["email"],
        limit=200,
    ).json()
    got = [parse_ms(r["properties"]["lastmodifieddate"]) for r in body["results"]]
    assert got == sorted(got) and got[0] == lo
    assert body["total"] == sum(1 for s in stamps if s >= lo)
    assert body["paging"]["next"]["after"] == "200"
    assert "email" in body["results"][0]["properties"]
    # Descending and a property sort on the general path.
    desc = search(client, "contacts", [], sorts=["-lastmodifieddate"], limit=5).json()
    assert [parse_ms(r["properties"]["lastmodifieddate"]) for r in desc["results"]] == stamps[::-1][
        :5
    ]


def test_search_paging_stops_at_the_result_cap(fresh):
    _, api, client = fresh
    assert api.search_cap == 10_000
    api.search_cap = 150
    filters = [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]
    body = search(client, "contacts", filters, limit=100, after="100").json()
    assert body["total"] > 200 and len(body["results"]) == 100
    assert body["paging"]["next"]["after"] == "200"
    past = search(client, "contacts", filters, limit=100, after=body["paging"]["next"]["after"])
    assert past.status_code == 400
    assert past.json()["category"] == "VALIDATION_ERROR"
    assert search(client, "contacts", filters, limit=201).status_code == 400
    too_many = [[{"propertyName": "email", "operator": "HAS_PROPERTY"}]] * 7
    assert search(client, "contacts", *too_many).status_code == 400
    unknown = search(
        client,
        "contacts",
        [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}],
    )
    assert unknown.status_code == 400  # contacts use lastmodifieddate


def test_search_index_follows_writes_and_ties_page_by_id(fresh):
    sandbox, api, client = fresh
    sandbox.world.clock.advance(3600)
    now = to_ms(sandbox.world.clock.now())
    ids = [c["id"] for c in api.objects("companies")[:5]]
    for cid in ids:
        assert (
            client.patch(
                f"/crm/v3/objects/companies/{cid}", json={"properties": {"city": "Oslo"}}
            ).status_code
            == 200
        )
    body = search(
        client,
        "companies",
        [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(now)}],
    ).json()
    assert [r["id"] for r in body["results"]] == ids
    tie = search(
        client,
        "companies",
        [
            {"propertyName": "hs_lastmodifieddate", "operator": "EQ", "value": str(now)},
            {"propertyName": "hs_object_id", "operator": "GT", "value": ids[1]},
        ],
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
    ).json()
    assert [r["id"] for r in tie["results"]] == ids[2:]


def test_search_has_its_own_budget_and_no_rate_headers():
    _, api, client = make(30, enforce_limits=True, time_scale=1.0)
    statuses = []
    for _ in range(6):
        response = search(client, "companies", [])
        assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in response.headers)
        statuses.append(response.status_code)
    assert statuses == [200] * 5 + [429]
    assert response.json()["errorType"] == "RATE_LIMIT"
    # The search budget is separate from the burst budget.
    assert client.get("/crm/v3/objects/companies").status_code == 200


# -- writes -------------------------------------------------------------------------------------


def test_create_update_clear_and_lastmodified_bump(fresh):
    sandbox, api, client = fresh
    sandbox.world.clock.advance(90.5)
    now = sandbox.world.clock.now()
    company = api.objects("companies")[0]
    response = client.patch(
        f"/crm/v3/objects/companies/{company['id']}",
        json={"properties": {"city": "Oslo", "nps_score": 7}},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["properties"]["city"] == "Oslo" and body["properties"]["nps_score"] == "7"
    assert body["updatedAt"] == body["properties"]["hs_lastmodifieddate"] == iso_ms(to_ms(now))
    client.patch(f"/crm/v3/objects/companies/{company['id']}", json={"properties": {"city": ""}})
    assert "city" not in api.get("companies", company["id"])["properties"]
    contact = api.objects("contacts")[0]
    client.patch(
        f"/crm/v3/objects/contacts/{contact['id']}", json={"properties": {"hs_email_optout": True}}
    )
    updated = api.get("contacts", contact["id"])["properties"]
    assert updated["hs_email_optout"] == "true" and updated["lastmodifieddate"] == iso_ms(
        to_ms(now)
    )
    assert [w[:2] for w in api.writes] == [
        ("PATCH", f"/crm/v3/objects/companies/{company['id']}"),
        ("PATCH", f"/crm/v3/objects/companies/{company['id']}"),
        ("PATCH", f"/crm/v3/objects/contacts/{contact['id']}"),
    ]
    assert api.writes[0][2] == {"properties": {"city": "Oslo", "nps_score": 7}}


def test_write_validation_unknown_readonly_option_owner(fresh):
    sandbox, api, client = fresh
    cid = api.objects("companies")[0]["id"]
    before = api.snapshot()
    cases = {
        "no_such_property": "PROPERTY_DOESNT_EXIST",
        "hs_lastmodifieddate": "READ_ONLY_VALUE",
        "lifecyclestage": "INVALID_OPTION",
        "hubspot_owner_id": "INVALID_OWNER_ID",
        "annualrevenue": "INVALID_DECIMAL",
    }
    for prop, code in cases.items():
        response = client.patch(
            f"/crm/v3/objects/companies/{cid}", json={"properties": {prop: "bogus"}}
        )
        assert response.status_code == 400
        body = response.json()
        assert body["category"] == "VALIDATION_ERROR"
        assert code in body["message"] and body["errors"][0]["code"] == code
    # A batch with one bad property fails whole: nothing is written.
    inputs = [
        {"id": cid, "properties": {"city": "Rome"}},
        {"id": cid, "properties": {"hub_x": "1"}},
    ]
    assert (
        client.post("/crm/v3/objects/companies/batch/update", json={"inputs": inputs}).status_code
        == 400
    )
    assert api.snapshot() == before
    task = client.post(
        "/crm/v3/objects/tasks", json={"properties": {"hs_task_subject": "No due date"}}
    )
    assert task.status_code == 400 and "hs_timestamp" in task.json()["message"]


def test_batch_limit_partial_failures_and_fault(fresh):
    _, api, client = fresh
    ids = [c["id"] for c in api.objects("companies")[:4]]
    too_many = [{"id": str(i), "properties": {"city": "x"}} for i in range(101)]
    response = client.post("/crm/v3/objects/companies/batch/update", json={"inputs": too_many})
    assert response.status_code == 400 and response.json()["category"] == "VALIDATION_ERROR"

    inputs = [
        {"id": ids[0], "properties": {"city": "Lima"}},
        {"id": "999", "properties": {"city": "Lima"}},
    ]
    response = client.post("/crm/v3/objects/companies/batch/update", json={"inputs": inputs})
    assert response.status_code == 207
    body = response.json()
    assert body["status"] == "COMPLETE" and body["numErrors"] == 1
    assert [r["id"] for r in body["results"]] == [ids[0]]
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"]["ids"] == ["999"]
    assert {"startedAt", "completedAt"} <= body.keys()

    api.faults.inject("partial_207", path=r"/batch/update", ids=[ids[2]])
    inputs = [{"id": i, "properties": {"city": "Quito"}} for i in ids[1:]]
    body = client.post("/crm/v3/objects/companies/batch/update", json={"inputs": inputs}).json()
    assert [e["context"]["ids"] for e in body["errors"]] == [[ids[2]]]
    assert body["errors"][0]["category"] == "RATE_LIMITS"
    assert api.get("companies", ids[2])["properties"].get("city") != "Quito"
    assert api.get("companies", ids[1])["properties"]["city"] == "Quito"
    # Retried, it goes through.
    retry = client.post("/crm/v3/objects/companies/batch/update", json={"inputs": [inputs[1]]})
    assert (
        retry.status_code == 200 and api.get("companies", ids[2])["properties"]["city"] == "Quito"
    )

    dupes = [{"id": ids[0], "properties": {}}, {"id": ids[0], "properties": {}}]
    assert (
        client.post("/crm/v3/objects/companies/batch/update", json={"inputs": dupes}).status_code
        == 400
    )
    read = client.post(
        "/crm/v3/objects/companies/batch/read",
        json={"inputs": [{"id": ids[0]}], "properties": ["city"]},
    )
    assert read.status_code == 200 and read.json()["results"][0]["properties"]["city"] == "Lima"
    assert all("/batch/read" not in w[1] for w in api.writes)


def test_batch_create_upsert_archive(fresh):
    sandbox, api, client = fresh
    company = api.objects("companies")[0]["id"]
    owner = sandbox.world.owners[0]["id"]
    task = {
        "properties": {
            "hs_timestamp": "2026-11-20T00:00:00Z",
            "hs_task_subject": "Call",
            "hubspot_owner_id": owner,
        },
        "associations": [
            {
                "to": {"id": company},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}],
            }
        ],
    }
    response = client.post("/crm/v3/objects/tasks/batch/create", json={"inputs": [task, task]})
    assert response.status_code == 201
    created = [r["id"] for r in response.json()["results"]]
    assert len(created) == 2
    for tid in created:
        assert api.associations("tasks", tid, "companies") == [(company, [192])]
    assert {tid for tid, _ in api.associations("companies", company, "tasks")} >= set(created)

    upsert = client.post(
        "/crm/v3/objects/contacts/batch/upsert",
        json={
            "inputs": [
                {
                    "id": "new.person@example.org",
                    "idProperty": "email",
                    "properties": {"firstname": "New"},
                }
            ]
        },
    ).json()
    assert upsert["results"][0]["new"] is True
    again = client.post(
        "/crm/v3/objects/contacts/batch/upsert",
        json={
            "inputs": [
                {
                    "id": "new.person@example.org",
                    "idProperty": "email",
                    "properties": {"firstname": "Newer"},
                }
            ]
        },
    ).json()
    assert (
        again["results"][0]["new"] is False
        and again["results"][0]["id"] == upsert["results"][0]["id"]
    )
    duplicate = client.post(
        "/crm/v3/objects/contacts", json={"properties": {"email": "new.person@example.org"}}
    )
    assert duplicate.status_code == 409 and duplicate.json()["category"] == "CONFLICT"

    archive = client.post(
        "/crm/v3/objects/tasks/batch/archive", json={"inputs": [{"id": created[0]}]}
    )
    assert archive.status_code == 204
    assert created[0] in {t["id"] for t in api.objects("tasks", archived=True)}


def test_tasks_complete_and_snapshot_diff(fresh):
    sandbox, api, client = fresh
    company = api.objects("companies")[1]["id"]
    created = client.post(
        "/crm/v3/objects/tasks",
        json={
            "properties": {"hs_timestamp": to_ms(sandbox.world.clock.now()), "hs_task_subject": "Renewal call",
                           "hs_task_status": "NOT_STARTED", "hs_task_priority": "HIGH"},
            "associations": [{"to": {"id": company}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}]}],
        },
    )  # fmt: skip
    assert created.status_code == 201
    tid = created.json()["id"]
    bad = client.post(
        "/crm/v3/objects/tasks",
        json={
            "properties": {"hs_timestamp": "2026-11-20"},
            "associations": [
                {
                    "to": {"id": company},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
                }
            ],
        },
    )
    assert bad.status_code == 400
    before = api.snapshot()
    sandbox.world.clock.advance(60)
    done = api.complete_task(tid)
    assert done["properties"]["hs_task_status"] == "COMPLETED"
    assert done["properties"]["hs_task_completion_date"] == done["updatedAt"]
    after = api.snapshot()
    changed = [
        (t, i)
        for t in after["objects"]
        for i in after["objects"][t]
        if after["objects"][t][i] != before["objects"][t].get(i)
    ]
    assert changed == [("tasks", tid)]
    # Searchable by status (completed hub tasks are read back by the connector).
    body = search(
        client, "tasks", [{"propertyName": "hs_task_status", "operator": "EQ", "value": "COMPLETED"},
                          {"propertyName": "hs_object_id", "operator": "EQ", "value": tid}],
    ).json()  # fmt: skip
    assert body["total"] == 1
    # A marker inside punctuation is still a token.
    client.patch(
        f"/crm/v3/objects/tasks/{tid}",
        json={"properties": {"hs_task_body": "Call.\n(ref hubtask00ff)"}},
    )
    found = search(
        client,
        "tasks",
        [{"propertyName": "hs_task_body", "operator": "CONTAINS_TOKEN", "value": "hubtask00ff"}],
    )
    assert [r["id"] for r in found.json()["results"]] == [tid]


def test_merge_through_the_api(fresh):
    sandbox, api, client = fresh
    a, b = sandbox.world.companies[10].hubspot_id, sandbox.world.companies[11].hubspot_id
    b_contacts = {c for c, _ in api.associations("companies", b, "contacts")}
    sandbox.world.clock.advance(5)
    response = client.post(
        "/crm/v3/objects/companies/merge", json={"primaryObjectId": a, "objectIdToMerge": b}
    )
    assert response.status_code == 200
    survivor = response.json()
    assert survivor["id"] == a and survivor["properties"]["hs_merged_object_ids"] == b
    assert survivor["updatedAt"] == iso_ms(to_ms(sandbox.world.clock.now()))
    assert b not in {c["id"] for c in api.objects("companies")}
    assert b_contacts <= {c for c, _ in api.associations("companies", a, "contacts")}
    for cid in b_contacts:
        assert api.get("contacts", cid)["properties"]["associatedcompanyid"] == a
    # A second merge appends to the semicolon list, and the merged id still reads as the survivor.
    c = sandbox.world.companies[12].hubspot_id
    api.merge(a, c)
    assert api.get("companies", a)["properties"]["hs_merged_object_ids"] == f"{b};{c}"
    assert client.get(f"/crm/v3/objects/companies/{b}").json()["id"] == a


# -- properties ---------------------------------------------------------------------------------


def test_property_history(fresh):
    sandbox, api, client = fresh
    company = api.objects("companies")[0]["id"]
    sandbox.world.clock.advance(3600)
    client.patch(
        f"/crm/v3/objects/companies/{company}",
        json={"properties": {"lifecyclestage": "evangelist"}},
    )
    sandbox.world.clock.advance(60)
    client.patch(
        f"/crm/v3/objects/companies/{company}", json={"properties": {"lifecyclestage": ""}}
    )
    read = client.get(
        f"/crm/v3/objects/companies/{company}",
        params={"propertiesWithHistory": "lifecyclestage,name"},
    ).json()
    history = read["propertiesWithHistory"]
    assert [e["value"] for e in history["lifecyclestage"]] == ["", "evangelist", "customer"]
    assert [e["sourceType"] for e in history["lifecyclestage"][:2]] == ["API", "API"]
    assert history["lifecyclestage"][0]["timestamp"] == read["updatedAt"]
    assert [e["value"] for e in history["name"]] == [read["properties"]["name"]]
    listed = client.get(
        "/crm/v3/objects/companies",
        params={"limit": 100, "propertiesWithHistory": "lifecyclestage"},
    )
    assert len(listed.json()["results"]) == 50  # history halves the page
    ids = [{"id": c["id"]} for c in api.objects("companies")[:51]]
    too_many = client.post(
        "/crm/v3/objects/companies/batch/read",
        json={"inputs": ids, "propertiesWithHistory": ["name"]},
    )
    assert too_many.status_code == 400
    ok = client.post(
        "/crm/v3/objects/companies/batch/read",
        json={"inputs": ids[:50], "propertiesWithHistory": ["lifecyclestage"]},
    )
    assert ok.status_code == 200 and all("propertiesWithHistory" in r for r in ok.json()["results"])
    # Seeded churn and unsubscribes come with their history.
    churned = [
        c for c in api.objects("companies") if c["properties"].get("lifecyclestage") == "other"
    ]
    read = client.get(
        f"/crm/v3/objects/companies/{churned[0]['id']}",
        params={"propertiesWithHistory": "lifecyclestage"},
    )
    assert [e["value"] for e in read.json()["propertiesWithHistory"]["lifecyclestage"]] == [
        "other",
        "customer",
    ]


def test_properties_and_groups_api(fresh):
    _, api, client = fresh
    names = {p["name"] for p in client.get("/crm/v3/properties/companies").json()["results"]}
    assert {
        "name",
        "domain",
        "hubspot_owner_id",
        "lifecyclestage",
        "hs_merged_object_ids",
        "nps_score",
    } <= names
    group = {"name": "hub_health", "label": "Hub health", "displayOrder": -1}
    assert client.post("/crm/v3/properties/companies/groups", json=group).status_code == 201
    assert client.post("/crm/v3/properties/companies/groups", json=group).status_code == 409
    prop = {
        "name": "hub_health_band",
        "label": "Health band",
        "type": "enumeration",
        "fieldType": "select",
        "groupName": "hub_health",
    }
    missing_options = client.post("/crm/v3/properties/companies", json=prop)
    assert missing_options.status_code == 400
    prop["options"] = [{"label": "Green", "value": "green"}, {"label": "Red", "value": "red"}]
    assert (
        client.post("/crm/v3/properties/companies", json={**prop, "groupName": "nope"}).status_code
        == 400
    )
    assert (
        client.post(
            "/crm/v3/properties/companies", json={**prop, "fieldType": "number"}
        ).status_code
        == 400
    )
    created = client.post("/crm/v3/properties/companies", json=prop)
    assert created.status_code == 201 and created.json()["options"][0]["value"] == "green"
    conflict = client.post("/crm/v3/properties/companies", json=prop)
    assert conflict.status_code == 409
    assert conflict.json()["message"] == "Property named 'hub_health_band' already exists."
    assert conflict.json()["category"] == "CONFLICT"
    cid = api.objects("companies")[0]["id"]
    ok = client.patch(
        f"/crm/v3/objects/companies/{cid}", json={"properties": {"hub_health_band": "green"}}
    )
    assert ok.status_code == 200
    bad = client.patch(
        f"/crm/v3/objects/companies/{cid}", json={"properties": {"hub_health_band": "blue"}}
    )
    assert bad.status_code == 400
    patched = client.patch("/crm/v3/properties/companies/hub_health_band", json={"label": "Band"})
    assert patched.json()["label"] == "Band"
    assert client.get("/crm/v3/properties/companies/hub_health_band").json()["label"] == "Band"
    assert client.delete("/crm/v3/properties/companies/hub_health_band").status_code == 204
    gone = client.patch(
        f"/crm/v3/objects/companies/{cid}", json={"properties": {"hub_health_band": "green"}}
    )
    assert gone.status_code == 400 and "PROPERTY_DOESNT_EXIST" in gone.json()["message"]
    assert client.delete("/crm/v3/properties/companies/name").status_code == 400


def test_associations_v4(fresh):
    _, api, client = fresh
    company = api.objects("companies")[2]["id"]
    contacts = client.get(f"/crm/v4/objects/companies/{company}/associations/contacts").json()[
        "results"
    ]
    assert contacts and {t["typeId"] for t in contacts[0]["associationTypes"]} == {2, 280}
    task = client.post(
        "/crm/v3/objects/tasks", json={"properties": {"hs_timestamp": "2026-12-01T00:00:00Z"}}
    ).json()
    assert task["properties"]["hs_task_status"] == "NOT_STARTED"  # HubSpot's default
    put = client.put(f"/crm/v4/objects/tasks/{task['id']}/associations/default/companies/{company}")
    assert (
        put.status_code == 200
        and put.json()["results"][0]["associationSpec"]["associationTypeId"] == 192
    )
    read = client.post(
        "/crm/v4/associations/tasks/companies/batch/read",
        json={"inputs": [{"id": task["id"]}, {"id": "1"}]},
    )
    assert read.status_code == 207
    body = read.json()
    assert body["results"][0]["to"][0]["toObjectId"] == int(company)
    assert body["errors"][0]["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"


# -- rate limits --------------------------------------------------------------------------------


def test_rate_headers_and_ten_secondly_429():
    _, api, client = make(30, enforce_limits=True, time_scale=0.05)
    assert api.burst_limit == 100
    api.burst_limit = 190
    response = client.get("/crm/v3/objects/companies")
    assert response.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "189"
    assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "500"
    assert int(response.headers["X-HubSpot-RateLimit-Daily-Remaining"]) == 250_000 - 1
    api.burst_limit = 3
    statuses = [client.get("/crm/v3/owners").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/crm/v3/owners")
    assert response.status_code == 429
    body = response.json()
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["status"] == "error" and body["correlationId"]
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    import time

    time.sleep(0.55)  # the scaled 10 s window
    assert client.get("/crm/v3/owners").status_code == 200


def test_injected_429_has_hubspot_body(shared):
    _, api, client = shared
    api.faults.inject("429", path=r"/crm/v3/owners", retry_after=1)
    response = client.get("/crm/v3/owners")
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert response.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert client.get("/crm/v3/owners").status_code == 200


# -- the world moves ----------------------------------------------------------------------------


def test_advance_changes_are_searchable_and_deterministic():
    def run():
        sandbox, api, client = make(150, seed=7)
        start = to_ms(sandbox.world.clock.now())
        advance(sandbox, 40)
        return sandbox, api, client, start

    sandbox, api, client, start = run()
    changed = search(
        client,
        "companies",
        [{"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": str(start)}],
        limit=200,
    ).json()
    assert changed["total"] > 0
    deals = api.objects("deals")
    renewals_closed = [
        d for d in deals
        if d["properties"]["dealtype"] == "existingbusiness" and d["properties"]["dealstage"] in ("closedwon", "closedlost")
    ]  # fmt: skip
    assert renewals_closed
    for deal in renewals_closed:
        assert parse_ms(deal["updatedAt"]) > start
        ((company_id, _),) = api.associations("deals", deal["id"], "companies")
        if sandbox.world.by_hubspot_id(company_id).archetype == "churned":
            assert deal["properties"]["dealstage"] == "closedlost"
    unsubscribed = search(
        client,
        "contacts",
        [{"propertyName": "lastmodifieddate", "operator": "GT", "value": str(start)},
         {"propertyName": "hs_email_optout", "operator": "EQ", "value": "true"}],
    ).json()  # fmt: skip
    assert unsubscribed["total"] > 0
    _, again, _, _ = run()
    assert api.snapshot() == again.snapshot()
    assert not api.writes  # the world's own changes are not API writes


# -- the official SDK over loopback HTTP -----------------------------------------------------------


def test_official_sdk_round_trip():
    hubspot = pytest.importorskip("hubspot")
    from hubspot.crm.associations.v4 import (
        BatchInputPublicFetchAssociationsBatchRequest,
        PublicFetchAssociationsBatchRequest,
    )
    from hubspot.crm.companies import (
        BatchInputSimplePublicObjectBatchInput,
        PublicObjectSearchRequest,
        SimplePublicObjectBatchInput,
    )
    from hubspot.crm.objects.tasks import (
        AssociationSpec,
        PublicAssociationsForObject,
        PublicObjectId,
        SimplePublicObjectInputForCreate,
    )
    from hubspot.crm.properties import OptionInput, PropertyCreate, PropertyGroupCreate

    sandbox, api, _ = make(150)
    server = sandbox.serve()
    try:
        client = hubspot.Client.create(access_token=TOKEN, host=server.url)
        companies = client.crm.companies.get_all(
            properties=["name", "hs_merged_object_ids"], associations=["contacts"]
        )
        assert len(companies) == 148
        assert all(c.properties["hs_object_id"] == c.id for c in companies)
        with_history = client.crm.companies.basic_api.get_page(
            limit=5, properties_with_history=["lifecyclestage"]
        )
        assert with_history.results[0].properties_with_history["lifecyclestage"][0].source_type
        pages, after = 0, None
        while True:
            page = client.crm.contacts.basic_api.get_page(
                limit=100, after=after, properties=["hs_email_optout"]
            )
            pages += 1
            if page.paging is None:
                break
            assert page.paging.next.link.startswith(server.url)
            after = page.paging.next.after
        assert pages == -(-len(api.objects("contacts")) // 100)
        found = client.crm.companies.search_api.do_search(
            PublicObjectSearchRequest(
                filter_groups=[
                    {
                        "filters": [
                            {
                                "propertyName": "lifecyclestage",
                                "operator": "EQ",
                                "value": "customer",
                            }
                        ]
                    }
                ],
                sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
                properties=["name", "lifecyclestage"],
                limit=50,
            )
        )
        assert found.total > 50 and len(found.results) == 50 and found.paging.next.after == "50"
        group = client.crm.properties.groups_api.create(
            "companies", PropertyGroupCreate(name="hub_health", label="Hub health")
        )
        assert group.name == "hub_health"
        prop = client.crm.properties.core_api.create(
            "companies",
            PropertyCreate(
                name="hub_health_band",
                label="Health band",
                type="enumeration",
                field_type="select",
                group_name="hub_health",
                options=[OptionInput(label="Green", value="green", display_order=0, hidden=False)],
            ),
        )
        assert prop.options[0].value == "green"
        assert any(
            p.name == "hub_health_band"
            for p in client.crm.properties.core_api.get_all("companies").results
        )
        batch = client.crm.companies.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    SimplePublicObjectBatchInput(id=c.id, properties={"hub_health_band": "green"})
                    for c in companies[:3]
                ]
            )
        )
        assert batch.status == "COMPLETE" and len(batch.results) == 3
        partial = client.crm.companies.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    SimplePublicObjectBatchInput(id=i, properties={"city": "Oslo"})
                    for i in (companies[0].id, "42")
                ]
            )
        )
        assert partial.num_errors == 1 and partial.errors[0].category == "OBJECT_NOT_FOUND"
        task = client.crm.objects.tasks.basic_api.create(
            SimplePublicObjectInputForCreate(
                properties={
                    "hs_timestamp": "2026-11-10T00:00:00Z",
                    "hs_task_subject": "Call",
                    "hubspot_owner_id": sandbox.world.owners[0]["id"],
                },
                associations=[
                    PublicAssociationsForObject(
                        to=PublicObjectId(id=companies[0].id),
                        types=[
                            AssociationSpec(
                                association_category="HUBSPOT_DEFINED", association_type_id=192
                            )
                        ],
                    )
                ],
            )
        )
        assert task.properties["hs_task_subject"] == "Call"
        links = client.crm.associations.v4.basic_api.get_page("tasks", task.id, "companies")
        assert [str(r.to_object_id) for r in links.results] == [companies[0].id]
        owners = client.crm.owners.owners_api.get_page(limit=2)
        assert owners.results[0].email == sandbox.world.owners[0]["email"]
        read = client.crm.associations.v4.batch_api.get_page(
            "companies", "contacts",
            BatchInputPublicFetchAssociationsBatchRequest(inputs=[PublicFetchAssociationsBatchRequest(id=companies[0].id)]),
        )  # fmt: skip
        assert read.results[0].to
        one = client.crm.companies.basic_api.get_by_id(sandbox.world.companies[6].hubspot_id)
        assert one.id == sandbox.world.companies[5].hubspot_id
    finally:
        server.stop()


def test_world_start_is_the_fake_clock(shared):
    sandbox, _, _ = shared
    assert sandbox.world.clock.now() == sandbox.world.start
    assert sandbox.world.start.tzinfo is not None and sandbox.world.start >= dt.datetime(
        2020, 1, 1, tzinfo=dt.timezone.utc
    )
