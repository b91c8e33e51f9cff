"""HubSpot fake: a company's records are made on first use, and every route sees the same
portal whether a company was made by a list walk, a read by id, or all at once."""

from __future__ import annotations

import time

import httpx

from hub.sandbox.base import Sandbox
from hub.sandbox.hubspot import HubSpotAPI
from hub.sandbox.world import CREDENTIALS, World

TOKEN = CREDENTIALS["hubspot"]["access_token"]


def portal(companies: int = 120, seed: int = 9) -> tuple[HubSpotAPI, httpx.Client]:
    sandbox = Sandbox(World(companies=companies, seed=seed))
    api = sandbox.add(HubSpotAPI(sandbox))
    api.seed()
    http = httpx.Client(
        transport=sandbox.transport(),
        base_url="https://api.hubapi.com",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    return api, http


def page_all(http: httpx.Client, path: str, limit: int, after: str | None = None) -> list[dict]:
    out: list[dict] = []
    while True:
        params = {
            "limit": limit,
            "associations": "companies",
            **({"after": after} if after else {}),
        }
        body = http.get(path, params=params).json()
        out.extend(body["results"])
        if "paging" not in body:
            return out
        after = body["paging"]["next"]["after"]


def test_lists_reads_and_associations_match_the_whole_portal_made_at_once():
    eager, eager_http = portal()
    eager._materialize_all()
    lazy, http = portal()
    assert lazy._left > 100  # only the traps' companies were made by seeding
    for t in ("contacts", "calls", "companies", "tickets"):
        want = page_all(eager_http, f"/crm/v3/objects/{t}", 100)
        # A walk that starts in the middle, in small pages, on a portal made piecemeal.
        middle = want[len(want) // 2]["id"]
        got = page_all(http, f"/crm/v3/objects/{t}", 7, after=middle)
        assert got == want[len(want) // 2 :], t
        assert page_all(http, f"/crm/v3/objects/{t}", 100) == want, t
    # Reads by id and batch reads of records whose companies were never listed.
    fresh, fresh_http = portal()
    deals = page_all(eager_http, "/crm/v3/objects/deals", 100)
    picked = [d["id"] for d in deals[::-17]]
    batch = fresh_http.post(
        "/crm/v3/objects/deals/batch/read", json={"inputs": [{"id": i} for i in picked]}
    ).json()["results"]
    assert {r["id"]: r["properties"] for r in batch} == {
        d["id"]: d["properties"] for d in deals if d["id"] in picked
    }
    company = eager.world.companies[77].hubspot_id
    path = f"/crm/v4/objects/companies/{company}/associations/contacts"
    assert fresh_http.get(path).json() == eager_http.get(path).json()
    assert fresh._left < fresh.world.size
    # A search needs the whole portal: it is made, and answers as the eager one does.
    query = {"filterGroups": [], "sorts": ["hs_lastmodifieddate"], "limit": 50}
    assert (
        fresh_http.post("/crm/v3/objects/emails/search", json=query).json()
        == eager_http.post("/crm/v3/objects/emails/search", json=query).json()
    )
    assert fresh._left == 0


def test_a_big_portal_answers_its_first_list_page_at_once():
    started = time.process_time()
    api, http = portal(companies=20_000, seed=2)
    body = http.get("/crm/v3/objects/contacts", params={"limit": 100}).json()
    elapsed = time.process_time() - started
    assert len(body["results"]) == 100 and body["paging"]["next"]["after"]
    assert api._left > 19_900
    assert elapsed < 2.0, elapsed  # the world (~0.2 s) and ~30 companies, not 20,000


def test_search_after_a_list_walk_made_every_company_finds_them():
    # A whole list walk makes every company without building the search index; the first
    # search must still see them all (it found none, and a tap reading by search got 0).
    api, http = portal(companies=60)
    listed = page_all(http, "/crm/v3/objects/companies", 100)
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 100,
    }
    found = http.post("/crm/v3/objects/companies/search", json=body).json()
    assert found["total"] == len(listed) > 0
