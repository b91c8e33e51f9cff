"""The Stripe fake's dunning and payment links, read through its routes as a client would.

A failed attempt with a retry scheduled, retries exhausted (per the account's dunning
settings), ``send_invoice`` past its due date, written-off invoices keeping what is owed, and
a failed charge tied to its invoice through the payment intent (current API version).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hub.sandbox.stripe import MAX_ATTEMPTS
from hub.sandbox.world import CREDENTIALS, advance, build_sandbox

KEY = CREDENTIALS["stripe"]["api_key"]


def client(sandbox: Any, version: str | None = None) -> httpx.Client:
    headers = {"Stripe-Version": version} if version else {}
    return httpx.Client(
        transport=sandbox.transport(),
        base_url="https://api.stripe.com",
        auth=(KEY, ""),
        headers=headers,
    )


def walk(http: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    params = {"limit": 100, **params}
    while True:
        body = http.get(path, params=params).raise_for_status().json()
        out.extend(body["data"])
        if not body["has_more"]:
            return out
        params["starting_after"] = body["data"][-1]["id"]


@pytest.fixture(scope="module")
def world() -> Any:
    return build_sandbox(companies=120, seed=3)


def test_world_has_every_dunning_state(world):
    http = client(world)
    invoices = walk(http, "/v1/invoices")
    now = world.world.clock.ts()
    auto = [i for i in invoices if i["collection_method"] == "charge_automatically"]
    retrying = [
        i
        for i in auto
        if i["status"] == "open" and i["attempt_count"] >= 1 and i["next_payment_attempt"]
    ]
    exhausted = [
        i
        for i in auto
        if i["status"] in ("open", "uncollectible")
        and i["attempt_count"] == MAX_ATTEMPTS
        and i["next_payment_attempt"] is None
    ]
    overdue = [
        i
        for i in invoices
        if i["collection_method"] == "send_invoice"
        and i["status"] == "open"
        and i["due_date"] < now
    ]
    assert retrying and exhausted and overdue
    for inv in retrying:
        assert inv["next_payment_attempt"] > now  # a retry is still to come
    subs = {s["id"]: s for s in walk(http, "/v1/subscriptions", status="all")}
    for inv in exhausted:
        sub = subs[inv["parent"]["subscription_details"]["subscription"]]
        if sub["latest_invoice"] == inv["id"]:
            assert sub["status"] in ("past_due", "unpaid")


def test_written_off_invoice_keeps_what_is_owed():
    sandbox = build_sandbox(
        companies=120, seed=3, options={"stripe": {"dunning_invoice": "uncollectible"}}
    )
    http = client(sandbox)
    written_off = walk(http, "/v1/invoices", status="uncollectible")
    assert written_off
    for inv in written_off:
        assert inv["amount_paid"] == 0
        assert inv["amount_remaining"] == inv["amount_due"] > 0
        assert inv["status_transitions"]["marked_uncollectible_at"] is not None


def test_failed_charge_ties_to_its_invoice_through_the_payment_intent(world):
    http = client(world)
    failed = [c for c in walk(http, "/v1/charges") if c["status"] == "failed"]
    assert failed
    assert all("invoice" not in c for c in failed)  # current versions drop charge.invoice
    by_intent: dict[str, list[str]] = {}
    for charge in failed[:25]:
        intent = charge["payment_intent"]
        assert intent.startswith("pi_")
        by_intent.setdefault(intent, []).append(charge["id"])
        found = http.get(
            "/v1/invoice_payments",
            params={"payment[type]": "payment_intent", "payment[payment_intent]": intent},
        ).json()["data"]
        assert len(found) == 1 and found[0]["object"] == "invoice_payment"
        invoice = http.get(
            f"/v1/invoices/{found[0]['invoice']}", params={"expand[]": "payments"}
        ).json()
        assert invoice["customer"] == charge["customer"]
        assert invoice["payments"]["data"][0]["payment"]["payment_intent"] == intent
        assert "payment_intent" not in invoice  # gone from current invoices
        pi = http.get(f"/v1/payment_intents/{intent}").json()
        assert pi["amount"] == invoice["amount_due"] and pi["customer"] == charge["customer"]
        if invoice["status"] == "open":
            assert pi["status"] == "requires_payment_method"
            assert pi["last_payment_error"]["type"] == "card_error"
        # Older API versions still name the invoice on the charge and the intent on the invoice.
        old = client(world, "2024-06-20")
        assert old.get(f"/v1/charges/{charge['id']}").json()["invoice"] == invoice["id"]
        assert old.get(f"/v1/invoices/{invoice['id']}").json()["payment_intent"] == intent
    # Every retry of one invoice is a charge on the same intent.
    retried = next((i for i, ids in by_intent.items() if len(ids) > 1), None)
    if retried:
        listed = walk(http, "/v1/charges", payment_intent=retried)
        assert {c["id"] for c in listed} >= set(by_intent[retried])


def test_payment_failed_events_name_the_invoice(world):
    http = client(world)
    events = walk(http, "/v1/events", type="invoice.payment_failed")
    assert events
    for event in events[:20]:
        invoice = event["data"]["object"]
        assert invoice["object"] == "invoice" and invoice["id"].startswith("in_")
        assert invoice["attempt_count"] >= 1


def test_unknown_intent_and_bad_filters_answer_in_stripe_shape(world):
    http = client(world)
    missing = http.get("/v1/payment_intents/pi_nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"
    bad = http.get("/v1/invoice_payments", params={"payment[type]": "charge"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "payment"
    everything = walk(http, "/v1/invoice_payments")
    assert everything and all(p["payment"]["payment_intent"] for p in everything)


@pytest.mark.parametrize(
    ("setting", "status"), [("unpaid", "unpaid"), ("cancel", "canceled"), ("past_due", "past_due")]
)
def test_dunning_settings_decide_the_subscription_after_the_last_retry(setting, status):
    sandbox = build_sandbox(
        companies=60,
        seed=3,
        options={"stripe": {"dunning_subscription": setting, "dunning_invoice": "uncollectible"}},
    )
    http = client(sandbox)
    subs = {s["id"]: s for s in walk(http, "/v1/subscriptions", status="all")}
    exhausted = [
        i
        for i in walk(http, "/v1/invoices")
        if i["attempt_count"] == MAX_ATTEMPTS and i["next_payment_attempt"] is None
    ]
    assert exhausted
    for inv in exhausted:
        assert inv["status"] == "uncollectible" and inv["amount_remaining"] == inv["amount_due"]
    latest = [
        subs[i["parent"]["subscription_details"]["subscription"]]
        for i in exhausted
        if subs[i["parent"]["subscription_details"]["subscription"]]["latest_invoice"] == i["id"]
    ]
    assert latest and all(s["status"] == status for s in latest)
    if setting == "cancel":
        assert all(s["cancellation_details"]["reason"] == "payment_failed" for s in latest)
    with pytest.raises(ValueError, match="no setting"):
        build_sandbox(companies=1, options={"stripe": {"dunning": "x"}})


def test_plans_move_up_and_down_with_the_history_a_portfolio_needs():
    sandbox = build_sandbox(companies=300, seed=1)
    advance(sandbox, 40)
    http = client(sandbox)
    events = walk(http, "/v1/events", type="customer.subscription.updated")
    moves = []
    for event in events:
        before = event["data"].get("previous_attributes", {}).get("items")
        if not before:
            continue
        old = before["data"][0]["price"]
        new = event["data"]["object"]["items"]["data"][0]["price"]
        if old["id"] != new["id"]:
            assert old["recurring"]["interval"] == "month" and new["unit_amount"] > 0
            moves.append(new["unit_amount"] - old["unit_amount"])
    assert any(m > 0 for m in moves) and any(m < 0 for m in moves)  # upgrades and downgrades
    # Ground truth follows billing: the world's plan is the subscription's price.
    stripe = sandbox.api("stripe")
    for company in sandbox.world.companies[:50]:
        sub = http.get(f"/v1/subscriptions/{stripe.subscription_id_for(company.key)}").json()
        price = sub["items"]["data"][0]["price"]
        yearly = price["recurring"]["interval"] == "year"  # ten months' price (a returner)
        assert price["unit_amount"] == company.unit_amount * (10 if yearly else 1)
    cancelled = walk(http, "/v1/subscriptions", status="canceled")
    assert cancelled and all(s["cancellation_details"]["reason"] for s in cancelled)
