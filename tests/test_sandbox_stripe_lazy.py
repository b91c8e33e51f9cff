"""The Stripe fake generates each company's billing history on demand: the same account
whichever companies were generated first, lists across customers exact from the first page,
and every object inside the bound seeding promised for its company."""

from __future__ import annotations

import datetime as dt
import random

import httpx
import pytest

from hub.sandbox.stripe.lazy import _bounds, company_of
from hub.sandbox.world import CREDENTIALS, advance, build_sandbox

RESOURCES = ("invoices", "charges", "events", "customers", "subscriptions", "payment_methods")
START = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.timezone.utc)


def client(sandbox) -> httpx.Client:
    key = CREDENTIALS["stripe"]["api_key"]
    return httpx.Client(transport=sandbox.transport(), base_url="http://stripe", auth=(key, ""))


def page_all(http: httpx.Client, resource: str, **params) -> list[dict]:
    out: list[dict] = []
    query = {"limit": 100, **params}
    while True:
        body = http.get(f"/v1/{resource}", params=query).json()
        out += body["data"]
        if not body["has_more"]:
            return out
        query = {"limit": 100, **params, "starting_after": out[-1]["id"]}


def everything(sandbox) -> dict[str, dict[str, dict]]:
    api = sandbox.api("stripe")
    api._materialise_all()
    return {
        kind: {i: api.get(kind, i) for i in sorted(dict.keys(store))}
        for kind, store in api._store.items()
    }


@pytest.fixture(scope="module")
def pair():
    return build_sandbox(companies=120, seed=5, start=START), build_sandbox(
        companies=120, seed=5, start=START
    )


def test_seeding_generates_no_history_and_a_page_generates_a_few_companies():
    sandbox = build_sandbox(companies=1200, seed=2, start=START)
    api = sandbox.api("stripe")
    assert api._lazy.left == 1200 and not dict.__len__(api._store["invoice"])
    body = client(sandbox).get("/v1/invoices", params={"limit": 10}).json()
    assert len(body["data"]) == 10 and body["has_more"]
    assert 0 < 1200 - api._lazy.left <= 600  # one batch from the top, not the whole world
    # Retrieving any object generates its company only.
    cus = api.customer_id_for(1100)
    before = api._lazy.left
    assert client(sandbox).get(f"/v1/customers/{cus}").json()["id"] == cus
    assert api._lazy.left in (before, before - 1)


def test_the_same_account_whichever_companies_come_first(pair):
    lazy, shuffled = pair
    by_list = {r: page_all(client(lazy), r) for r in RESOURCES}
    # The other copy: half its companies generated one by one in a random order first.
    api = shuffled.api("stripe")
    keys = list(range(120))
    random.Random(9).shuffle(keys)
    http = client(shuffled)
    for key in keys[:60]:
        http.get(f"/v1/subscriptions/{api.subscription_id_for(key)}").raise_for_status()
    for resource in RESOURCES:
        assert page_all(http, resource) == by_list[resource], resource
    # Newest-first lists hold every object exactly once, and the same objects as the store.
    assert everything(lazy) == everything(shuffled)
    assert len(by_list["invoices"]) == api.count("invoices")
    assert len({i["id"] for i in by_list["charges"]}) == api.count("charges")


def test_ending_before_and_created_filters_on_a_lazy_account():
    one, other = (build_sandbox(companies=150, seed=8, start=START) for _ in range(2))
    other.api("stripe")._materialise_all()
    results = []
    for sandbox in (one, other):
        http = client(sandbox)
        newest = http.get("/v1/events", params={"limit": 1}).json()["data"][0]
        week = newest["created"] - 7 * 86400
        older = page_all(http, "charges", **{"created[lte]": week})
        middle = http.get(
            "/v1/invoices",
            params={"limit": 5, "ending_before": page_all(http, "invoices")[40]["id"]},
        ).json()
        results.append(([c["id"] for c in older], [i["id"] for i in middle["data"]]))
    assert results[0] == results[1] and results[0][0] and len(results[0][1]) == 5


def test_every_object_is_inside_its_company_bound():
    sandbox = build_sandbox(companies=600, seed=11, start=START)
    api = sandbox.api("stripe")
    now = api._lazy.now
    bounds = {c.key: _bounds(c, now, 11) for c in sandbox.world.companies}
    api._materialise_all()
    for kind, store in api._store.items():
        for obj_id, rec in store.items():
            key = company_of(obj_id, 600)
            assert rec.created <= bounds[key][kind], (kind, obj_id)


def test_advance_after_partial_generation_matches_advance_after_full():
    one, other = (build_sandbox(companies=80, seed=4, start=START) for _ in range(2))
    page_all(client(one), "invoices", limit=20)  # some companies generated, not all
    other.api("stripe")._materialise_all()
    for sandbox in (one, other):
        advance(sandbox, 2)
    assert everything(one) == everything(other)


def test_charges_and_events_made_later_match_an_account_made_whole():
    """A list of invoices generates companies without their charges and events; writes
    made then, and the charges and events generated afterwards, give the account a
    sandbox generated whole before the same writes has."""
    from hub.sandbox.stripe.webhooks import fail_payment

    one, other = (build_sandbox(companies=90, seed=6, start=START) for _ in range(2))
    other.api("stripe")._materialise_all()
    for sandbox in (one, other):  # as many requests each: events carry request ids
        page_all(client(sandbox), "invoices")
    state = one.api("stripe")._lazy
    assert not state.left and set(state.done) == {1}  # every company, none complete
    for sandbox in (one, other):
        api, http = sandbox.api("stripe"), client(sandbox)
        http.post(
            f"/v1/customers/{api.customer_id_for(3)}", data={"name": "Renamed"}
        ).raise_for_status()
        fail_payment(api, next(k for k in range(90) if k != 3 and _active(api, k)))
        api.offer_coupon(next(k for k in range(40, 90) if _active(api, k)), "RETAIN25")
    # A charge retrieved by id completes its company only.
    whole = other.api("stripe")
    charge = whole._by_customer["charge"][whole.customer_id_for(10)][0]
    assert client(one).get(f"/v1/charges/{charge}").json() == whole.get("charges", charge)
    assert list(state.done).count(2) == 1 + (state.done[3] == 2)
    lists = [{r: page_all(client(s), r) for r in RESOURCES} for s in (one, other)]
    assert lists[0] == lists[1]
    assert everything(one) == everything(other)


def _active(api, key: int) -> bool:
    return api._store["subscription"][api.subscription_id_for(key)].status == "active"


def test_the_warm_up_between_and_during_requests_gives_the_same_account(pair):
    reference = {r: page_all(client(pair[0]), r) for r in RESOURCES}
    warmed = build_sandbox(companies=120, seed=5, start=START)
    api = warmed.api("stripe")
    http = client(warmed)
    first = http.get("/v1/invoices", params={"limit": 5}).json()["data"]
    assert first == reference["invoices"][:5]
    # Part of the warm-up between requests: newest invoices first, then what a request asks.
    assert api.warm_up(limit=30) == 30
    assert api._lazy.left < 120 - 30
    http.get(f"/v1/customers/{api.customer_id_for(119)}").raise_for_status()
    assert http.get("/v1/charges", params={"limit": 3}).json()["data"] == reference["charges"][:3]
    # The rest in a thread while every list is paged.
    from hub.sandbox.warm import start_warm_up

    warming = start_warm_up(warmed)
    for resource in RESOURCES:
        assert page_all(http, resource) == reference[resource], resource
    assert warming.done.wait(30)
    assert api._lazy is None  # every company generated and listed
    assert everything(warmed) == everything(pair[0])
    assert page_all(http, "events") == reference["events"]
