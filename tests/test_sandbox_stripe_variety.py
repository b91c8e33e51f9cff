"""Stripe fake: add-ons, coupons, yearly plans and returning customers, in Stripe's shapes."""

from __future__ import annotations

import httpx
import pytest

from hub.sandbox.world import CREDENTIALS, advance, build_sandbox


@pytest.fixture(scope="module")
def world():
    sandbox = build_sandbox(companies=200, seed=0)
    seeded = {
        s.id: (s.addons, s.discount, s.months)
        for s in sandbox.api("stripe")._store["subscription"].values()
    }
    advance(sandbox, 28)
    http = httpx.Client(
        transport=sandbox.transport(),
        base_url="https://api.stripe.com",
        auth=(CREDENTIALS["stripe"]["api_key"], ""),
    )
    return sandbox, http, seeded


def test_the_seeded_world_is_unchanged_and_the_new_kinds_come_with_the_days(world):
    sandbox, _, seeded = world
    assert all(v == ((), None, 1) for v in seeded.values())
    subs = sandbox.api("stripe")._store["subscription"].values()
    assert sum(1 for s in subs if s.addons) >= 3
    assert sum(1 for s in subs if s.discount) >= 3
    returned = [c for c in sandbox.world.companies if "returned" in c.traps]
    assert returned and all(c.archetype == "churned" for c in returned)


def test_add_on_is_a_second_item_and_a_second_invoice_line(world):
    sandbox, http, _ = world
    stripe = sandbox.api("stripe")
    billed = [i for i in stripe._store["invoice"].values() if i.addons]
    assert billed  # an add-on added weeks ago has been invoiced since
    sub = stripe._store["subscription"][billed[-1].subscription]
    body = http.get(f"/v1/subscriptions/{sub.id}").json()
    items = body["items"]["data"]
    assert len(items) == 2 == body["items"]["total_count"]
    assert items[1]["price"]["product"] != items[0]["price"]["product"]
    assert items[1]["quantity"] == sub.addons[0][1] and items[1]["id"] != items[0]["id"]
    inv = http.get(f"/v1/invoices/{billed[-1].id}").json()
    lines = inv["lines"]["data"]
    assert len(lines) == 2 and sum(line["amount"] for line in lines) == inv["subtotal"]
    assert (
        inv["total"]
        == inv["amount_due"]
        == inv["subtotal"] - sum(d["amount"] for d in inv["total_discount_amounts"])
    )
    events, params = [], {"type": "customer.subscription.updated", "limit": 100}
    while True:
        page = http.get("/v1/events", params=params).json()
        events += page["data"]
        if not page["has_more"]:
            break
        params["starting_after"] = page["data"][-1]["id"]
    changed = [
        e
        for e in events
        if e["data"]["object"]["id"] == sub.id
        and len(e["data"]["object"]["items"]["data"]) == 2
        and len(e["data"].get("previous_attributes", {}).get("items", {}).get("data", [])) == 1
    ]
    assert changed  # the update says it had one item before


def test_coupons_discount_the_invoices_in_stripe_shapes(world):
    sandbox, http, _ = world
    stripe = sandbox.api("stripe")
    sub = next(s for s in stripe._store["subscription"].values() if s.discount)
    body = http.get(f"/v1/subscriptions/{sub.id}", params={"expand[]": "discounts"}).json()
    (discount,) = body["discounts"]
    coupon = discount["coupon"]
    assert discount["object"] == "discount" and discount["subscription"] == sub.id
    assert coupon["duration"] == "repeating" and coupon["duration_in_months"] == 3
    assert coupon["percent_off"] in (20.0, 25.0)
    plain = http.get(f"/v1/subscriptions/{sub.id}").json()
    assert plain["discounts"] == [discount["id"]]
    legacy = http.get(f"/v1/subscriptions/{sub.id}", headers={"Stripe-Version": "2024-06-20"})
    assert legacy.json()["discount"]["coupon"]["id"] == coupon["id"]
    discounted = [
        i for i in stripe._store["invoice"].values() if i.subscription == sub.id and i.coupon
    ]
    if discounted:
        inv = http.get(f"/v1/invoices/{discounted[-1].id}").json()
        off = inv["total_discount_amounts"][0]
        assert off["discount"] == discount["id"]
        assert off["amount"] == int(inv["subtotal"] * coupon["percent_off"] / 100)


def test_a_returning_customer_has_a_new_subscription_after_the_cancelled_one(world):
    sandbox, http, _ = world
    stripe = sandbox.api("stripe")
    company = next(c for c in sandbox.world.companies if "returned" in c.traps)
    customer = stripe.customer_id_for(company.key)
    subs = http.get("/v1/subscriptions", params={"customer": customer, "status": "all"}).json()
    statuses = [s["status"] for s in subs["data"]]
    assert statuses[0] == "active" and "canceled" in statuses[1:]
    new, old = subs["data"][0], subs["data"][statuses.index("canceled")]
    assert new["created"] > old["ended_at"]
    price = new["items"]["data"][0]["price"]
    item = new["items"]["data"][0]
    if price["recurring"]["interval"] == "year":
        assert price["unit_amount"] == company.unit_amount * 10
        assert item["current_period_end"] - item["current_period_start"] >= 365 * 86400
    first = http.get("/v1/invoices", params={"subscription": new["id"]}).json()["data"][-1]
    assert first["billing_reason"] == "subscription_create"
