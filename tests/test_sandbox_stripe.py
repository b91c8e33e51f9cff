"""The fake Stripe API behaves like Stripe: paging, filters, errors, events window, SDK, shapes."""

from __future__ import annotations

import base64
import datetime as dt
import json
import pathlib
from typing import Any

import httpx
import pytest

from hub.sandbox.base import Sandbox
from hub.sandbox.stripe import EVENT_RETENTION, LEGACY_API_VERSION, StripeAPI
from hub.sandbox.world import CREDENTIALS, World, advance

KEY = CREDENTIALS["stripe"]["api_key"]
SPEC = pathlib.Path("/work/shared/specs/stripe/spec3.json")


def make_sandbox(companies: int = 40, seed: int = 0, **kwargs: Any) -> tuple[Sandbox, StripeAPI]:
    world = World(companies=companies, seed=seed)
    sandbox = Sandbox(world, **kwargs)
    api = sandbox.add(StripeAPI(sandbox))
    api.seed()
    return sandbox, api


def client(sandbox: Sandbox, **kwargs: Any) -> httpx.Client:
    kwargs.setdefault("auth", (KEY, ""))
    return httpx.Client(transport=sandbox.transport(), base_url="https://api.stripe.com", **kwargs)


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
def seeded() -> tuple[Sandbox, StripeAPI]:
    return make_sandbox()


@pytest.fixture()
def http(seeded: tuple[Sandbox, StripeAPI]) -> httpx.Client:
    return client(seeded[0])


# -- paging --------------------------------------------------------------------------------


def test_envelope_has_more_and_newest_first(seeded, http):
    sandbox, api = seeded
    response = http.get("/v1/customers")
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")
    body = response.json()
    assert body["object"] == "list" and body["url"] == "/v1/customers"
    assert len(body["data"]) == 10 and body["has_more"] is True  # default limit 10
    everything = walk(http, "/v1/customers", limit=7)
    assert len(everything) == api.count("customers") == 40
    keys = [(c["created"], c["id"]) for c in everything]
    assert keys == sorted(keys, reverse=True)
    assert len({c["id"] for c in everything}) == 40
    last = http.get("/v1/customers", params={"limit": 100}).json()
    assert last["has_more"] is False and len(last["data"]) == 40


@pytest.mark.parametrize(
    "resource", ["payment_methods", "subscriptions", "invoices", "charges", "events"]
)
def test_full_walk_matches_counts(seeded, http, resource):
    _, api = seeded
    params = {"status": "all"} if resource == "subscriptions" else {}
    rows = walk(http, f"/v1/{resource}", **params)
    assert len(rows) == len({r["id"] for r in rows}) == api.count(resource) > 0


def test_ending_before_pages_backwards(seeded, http):
    everything = walk(http, "/v1/invoices")
    pivot = everything[50]["id"]
    page = http.get("/v1/invoices", params={"limit": 5, "ending_before": pivot}).json()
    # The five just newer than the pivot, still newest first.
    assert [i["id"] for i in page["data"]] == [i["id"] for i in everything[45:50]]
    assert page["has_more"] is True
    collected: list[str] = []
    cursor = everything[-1]["id"]
    while True:
        body = http.get("/v1/invoices", params={"limit": 100, "ending_before": cursor}).json()
        collected = [i["id"] for i in body["data"]] + collected
        if not body["has_more"]:
            break
        cursor = body["data"][0]["id"]
    assert collected == [i["id"] for i in everything[:-1]]
    after = http.get("/v1/invoices", params={"limit": 3, "starting_after": pivot}).json()
    assert [i["id"] for i in after["data"]] == [i["id"] for i in everything[51:54]]


def test_created_filters(seeded, http):
    everything = walk(http, "/v1/charges")
    mid = everything[len(everything) // 2]["created"]
    cases = {
        "gte": lambda t: t >= mid,
        "gt": lambda t: t > mid,
        "lte": lambda t: t <= mid,
        "lt": lambda t: t < mid,
    }
    for op, keep in cases.items():
        rows = walk(http, "/v1/charges", **{f"created[{op}]": mid})
        assert [r["id"] for r in rows] == [r["id"] for r in everything if keep(r["created"])], op
    exact = walk(http, "/v1/charges", created=mid)
    assert exact and all(r["created"] == mid for r in exact)
    window = walk(http, "/v1/charges", **{"created[gte]": mid - 86400 * 10, "created[lt]": mid})
    assert all(mid - 86400 * 10 <= r["created"] < mid for r in window)


def test_customer_filter_and_nested_route(seeded, http):
    _, api = seeded
    cus = api.customer_id_for(0)
    invoices = walk(http, "/v1/invoices", customer=cus)
    assert invoices and all(i["customer"] == cus for i in invoices)
    cards = http.get(f"/v1/customers/{cus}/payment_methods", params={"type": "card"}).json()
    assert all(pm["customer"] == cus for pm in cards["data"])
    assert cards["url"] == f"/v1/customers/{cus}/payment_methods"
    bad = http.get("/v1/invoices", params={"customer": "cus_nope"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "resource_missing"
    assert http.get("/v1/customers/cus_nope/payment_methods").status_code == 404


def test_subscription_status_filter(seeded, http):
    _, api = seeded
    default = walk(http, "/v1/subscriptions")
    every = walk(http, "/v1/subscriptions", status="all")
    canceled = walk(http, "/v1/subscriptions", status="canceled")
    assert len(every) == api.count("subscriptions")
    assert all(s["status"] != "canceled" for s in default)
    assert len(default) + len(canceled) == len(every)
    assert canceled and all(s["status"] == "canceled" for s in canceled)


def test_validation_errors(seeded, http):
    for value in ("0", "101", "abc"):
        response = http.get("/v1/customers", params={"limit": value})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == "limit"
    both = http.get("/v1/customers", params={"starting_after": "a", "ending_before": "b"})
    assert both.status_code == 400
    unknown = http.get("/v1/customers", params={"colour": "blue"})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "colour"
    missing = http.get("/v1/customers/cus_nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "message": "No such customer: 'cus_nope'",
        "type": "invalid_request_error",
        "code": "resource_missing",
        "param": "id",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "request_log_url": missing.json()["error"]["request_log_url"],
    }
    route = http.get("/v1/nothing-here")
    assert (
        route.status_code == 404 and "Unrecognized request URL" in route.json()["error"]["message"]
    )
    version = http.get("/v1/customers", headers={"Stripe-Version": "yesterday"})
    assert version.status_code == 400


def test_expand(seeded, http):
    _, api = seeded
    customers = http.get(
        "/v1/customers",
        params={"limit": 100, "expand[]": "data.invoice_settings.default_payment_method"},
    ).json()
    cards = [c["invoice_settings"]["default_payment_method"] for c in customers["data"]]
    assert any(isinstance(card, dict) and card["card"]["exp_year"] > 2000 for card in cards)
    assert all(card is None or isinstance(card, dict) for card in cards)
    invoices = http.get("/v1/invoices", params={"limit": 5, "expand[0]": "data.customer"}).json()
    assert all(i["customer"]["object"] == "customer" for i in invoices["data"])
    deep = http.get(
        "/v1/invoices",
        params={"limit": 2, "expand[]": "data.customer.invoice_settings.default_payment_method"},
    ).json()
    assert all(isinstance(i["customer"], dict) for i in deep["data"])
    one = http.get(
        f"/v1/subscriptions/{api.subscription_id_for(1)}", params={"expand[]": "customer"}
    ).json()
    assert one["customer"]["id"] == api.customer_id_for(1)
    assert http.get("/v1/invoices", params={"expand[]": "data.nonsense"}).status_code == 400
    assert http.get("/v1/invoices", params={"expand[]": "customer"}).status_code == 400


# -- auth, limits, faults ----------------------------------------------------------------


def test_auth(seeded):
    sandbox, _ = seeded
    anonymous = client(sandbox, auth=None).get("/v1/customers")
    assert anonymous.status_code == 401
    assert "did not provide an API key" in anonymous.json()["error"]["message"]
    wrong = client(sandbox, auth=("sk_test_wrongsecret9876", "")).get("/v1/customers")
    assert wrong.status_code == 401
    error = wrong.json()["error"]
    assert error == {
        "message": "Invalid API Key provided: sk_test_***********9876",
        "type": "invalid_request_error",
        "request_log_url": error["request_log_url"],
    }
    assert "wrongsecret" not in wrong.text
    bearer = client(sandbox, auth=None, headers={"Authorization": f"Bearer {KEY}"}).get(
        "/v1/customers"
    )
    assert bearer.status_code == 200
    basic = base64.b64encode(f"{KEY}:".encode()).decode()
    assert (
        client(sandbox, auth=None, headers={"Authorization": f"Basic {basic}"})
        .get("/v1/customers")
        .status_code
        == 200
    )


def test_rate_limit_body_under_enforce_limits():
    sandbox, api = make_sandbox(companies=5, enforce_limits=True, time_scale=5.0)
    http = client(sandbox)
    statuses = [http.get("/v1/customers", params={"limit": 1}) for _ in range(30)]
    limited = [r for r in statuses if r.status_code == 429]
    assert len(limited) == 5  # 25 per (scaled) second
    error = limited[0].json()["error"]
    assert error["code"] == "rate_limit" and error["type"] == "invalid_request_error"
    assert error["message"].startswith("Request rate limit exceeded")
    assert limited[0].headers["request-id"].startswith("req_")


def test_injected_faults_use_stripe_shapes(seeded, http):
    _, api = seeded
    api.faults.inject("500", path=r"/v1/invoices")
    response = http.get("/v1/invoices")
    assert response.status_code == 500
    assert response.headers["stripe-should-retry"] == "true"
    assert response.json()["error"]["type"] == "api_error"
    api.faults.inject("429", path=r"/v1/invoices", retry_after=1)
    limited = http.get("/v1/invoices")
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit"
    assert http.get("/v1/invoices").status_code == 200


# -- events window -------------------------------------------------------------------------


def test_events_keep_30_days_and_old_cursors_fail():
    sandbox, api = make_sandbox(companies=30, seed=11)
    http = client(sandbox)
    now = sandbox.world.clock.ts()
    events = walk(http, "/v1/events")
    assert events and all(e["created"] >= now - EVENT_RETENTION for e in events)
    stored = api._store["event"].values()
    old = [e for e in stored if e.created < now - EVENT_RETENTION]
    assert old, "the seed should generate some events older than 30 days"
    for param in ("starting_after", "ending_before"):
        response = http.get("/v1/events", params={param: old[0].id})
        assert response.status_code == 400
        assert response.json()["error"] == {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": param,
            "message": f"No such event: '{old[0].id}'",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
            "request_log_url": response.json()["error"]["request_log_url"],
        }
    assert http.get(f"/v1/events/{old[0].id}").status_code == 404
    newest = events[0]["id"]
    assert http.get("/v1/events", params={"ending_before": newest}).status_code == 200
    advance(sandbox, 31)
    gone = http.get("/v1/events", params={"ending_before": newest})
    assert gone.status_code == 400 and gone.json()["error"]["param"] == "ending_before"
    api.faults.inject("cursor_expired", path=r"/v1/events")
    fresh = http.get("/v1/events", params={"limit": 1}).json()["data"][0][
        "id"
    ]  # no cursor: not consumed
    expired = http.get("/v1/events", params={"starting_after": fresh})
    assert expired.status_code == 400 and expired.json()["error"]["code"] == "resource_missing"
    assert http.get("/v1/events", params={"starting_after": fresh}).status_code == 200


def test_event_types_and_previous_attributes(seeded, http):
    events = walk(http, "/v1/events")
    types = {e["type"] for e in events}
    assert {
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_failed",
        "charge.succeeded",
        "charge.failed",
        "customer.subscription.updated",
    } <= types
    for event in events:
        assert event["api_version"] and event["data"]["object"]["id"]
        if event["type"].endswith(".updated"):
            assert event["data"]["previous_attributes"]
    only = walk(http, "/v1/events", type="invoice.*")
    assert only and all(e["type"].startswith("invoice.") for e in only)
    both = walk(http, "/v1/events", **{"types[0]": "charge.failed", "types[1]": "charge.succeeded"})
    assert {e["type"] for e in both} == {"charge.failed", "charge.succeeded"}
    # Events from before the account's version upgrade keep the old shapes.
    legacy = [
        e for e in events if e["api_version"] == LEGACY_API_VERSION and e["type"] == "invoice.paid"
    ]
    assert legacy and all(e["data"]["object"]["paid"] is True for e in legacy)
    current = [
        e for e in events if e["api_version"] != LEGACY_API_VERSION and e["type"] == "invoice.paid"
    ]
    assert current and all("paid" not in e["data"]["object"] for e in current)


# -- world facts -----------------------------------------------------------------------------


def test_archetypes_show_in_billing(seeded, http):
    sandbox, api = seeded
    world = sandbox.world
    now = world.clock.ts()
    for company in world.companies:
        cus_id = api.customer_id_for(company.key)
        customer = http.get(f"/v1/customers/{cus_id}").json()
        assert customer["email"] == company.billing_email
        if company.stripe_link == "explicit":
            assert customer["metadata"] == {"hubspot_company_id": company.hubspot_id}
        else:
            assert "hubspot_company_id" not in customer["metadata"]
        sub = http.get(f"/v1/subscriptions/{api.subscription_id_for(company.key)}").json()
        item = sub["items"]["data"][0]
        invoices = walk(http, "/v1/invoices", customer=cus_id)
        assert 1 <= len(invoices) <= 7  # a young churned company may have paid once
        if company.archetype == "churned":
            assert sub["status"] == "canceled" and sub["ended_at"] <= now
            assert sub["cancellation_details"]["feedback"] and sub["cancellation_details"]["reason"]
        else:
            assert sub["status"] in ("active", "past_due", "unpaid")
            assert item["current_period_start"] <= now < item["current_period_end"]
            assert item["quantity"] == company.seats
        if company.archetype == "at_risk":
            open_ = [i for i in invoices if i["status"] == "open"]
            assert (
                any(i["attempt_count"] > 1 for i in open_) or "no_payment_method" in company.traps
            )
        if company.archetype == "slipping":
            if sub["collection_method"] == "charge_automatically":
                assert any(i["status"] == "paid" and i["attempt_count"] > 1 for i in invoices)
            else:  # paid after the due date
                assert any(
                    i["due_date"] and (i["status_transitions"]["paid_at"] or 0) > i["due_date"]
                    for i in invoices
                )
        if company.archetype in ("healthy", "expanding"):
            assert all(i["status"] in ("paid", "open", "draft") for i in invoices)
    assert http.get(f"/v1/customers/{api.customer_id_for(7)}/payment_methods").json()["data"] == []
    expanding = [c for c in world.companies if c.archetype == "expanding"]
    if expanding:
        seats = walk(http, "/v1/events", type="customer.subscription.updated")
        assert any("quantity" in json.dumps(e["data"]["previous_attributes"]) for e in seats)


def test_advance_emits_the_changes():
    sandbox, api = make_sandbox(companies=60, seed=5)
    http = client(sandbox)
    before = sandbox.world.clock.ts()
    newest = walk(http, "/v1/events")[0]["id"]
    counts = {r: api.count(r) for r in ("invoices", "charges")}
    advance(sandbox, 5)
    fresh = []
    params: dict[str, Any] = {"limit": 100, "ending_before": newest}
    while True:
        body = http.get("/v1/events", params=params).json()
        fresh = body["data"] + fresh
        if not body["has_more"]:
            break
        params["ending_before"] = body["data"][0]["id"]
    assert fresh and all(before <= e["created"] < sandbox.world.clock.ts() for e in fresh)
    created = [e for e in fresh if e["type"] == "invoice.created"]
    assert len(created) == api.count("invoices") - counts["invoices"] > 0
    charged = [e for e in fresh if e["type"] in ("charge.succeeded", "charge.failed")]
    assert len(charged) == api.count("charges") - counts["charges"]
    for event in created:
        current = http.get(f"/v1/invoices/{event['data']['object']['id']}").json()
        assert current["created"] == event["created"]
    renewals = [
        e
        for e in fresh
        if e["type"] == "customer.subscription.updated"
        and "items" in e["data"]["previous_attributes"]
    ]
    assert renewals


def test_determinism():
    a, _ = make_sandbox(companies=25, seed=3)
    b, _ = make_sandbox(companies=25, seed=3)
    c, _ = make_sandbox(companies=25, seed=4)
    for path in ("/v1/invoices", "/v1/events", "/v1/customers"):
        assert walk(client(a), path) == walk(client(b), path)
    assert walk(client(a), "/v1/invoices") != walk(client(c), "/v1/invoices")


def test_legacy_version_shapes(seeded, http):
    _, api = seeded
    sub_id = api.subscription_id_for(2)
    old = http.get(f"/v1/subscriptions/{sub_id}", headers={"Stripe-Version": "2024-06-20"})
    assert old.headers["stripe-version"] == "2024-06-20"
    assert (
        "current_period_end" in old.json()
        and "current_period_end" not in old.json()["items"]["data"][0]
    )
    new = http.get(f"/v1/subscriptions/{sub_id}").json()
    assert "current_period_end" not in new and "current_period_end" in new["items"]["data"][0]
    invoice = http.get(
        "/v1/invoices", params={"limit": 1}, headers={"Stripe-Version": "2023-08-16"}
    ).json()["data"][0]
    assert "paid" in invoice and "parent" not in invoice


# -- writes and idempotency ------------------------------------------------------------------


def test_create_update_and_idempotency():
    sandbox, api = make_sandbox(companies=3)
    http = client(sandbox)
    before = api.count("customers")
    form = {"email": "ops@new-co.example", "name": "New Co", "metadata[hubspot_company_id]": "42"}
    first = http.post("/v1/customers", data=form, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 200
    replay = http.post("/v1/customers", data=form, headers={"Idempotency-Key": "k1"})
    assert replay.json() == first.json() and replay.headers["idempotent-replayed"] == "true"
    assert api.count("customers") == before + 1
    clash = http.post(
        "/v1/customers", data={**form, "name": "Other"}, headers={"Idempotency-Key": "k1"}
    )
    assert clash.status_code == 400 and clash.json()["error"]["type"] == "idempotency_error"
    cus = first.json()
    assert cus["metadata"] == {"hubspot_company_id": "42"}
    updated = http.post(
        f"/v1/customers/{cus['id']}",
        data={"metadata[plan]": "growth", "metadata[hubspot_company_id]": ""},
    ).json()
    assert updated["metadata"] == {"plan": "growth"}
    event = http.get("/v1/events", params={"limit": 1}).json()["data"][0]
    assert event["type"] == "customer.updated"
    assert event["data"]["previous_attributes"] == {
        "metadata": {"hubspot_company_id": "42", "plan": None}
    }
    assert event["request"]["id"]
    # An error once the endpoint ran is saved and replayed too.
    missing = http.post(
        "/v1/customers/cus_nope", data={"name": "x"}, headers={"Idempotency-Key": "k2"}
    )
    again = http.post(
        "/v1/customers/cus_nope", data={"name": "x"}, headers={"Idempotency-Key": "k2"}
    )
    assert (
        missing.status_code == again.status_code == 404
        and again.headers["idempotent-replayed"] == "true"
    )
    # A validation failure before execution is not saved: the key stays free.
    invalid = http.post("/v1/customers", data={"colour": "red"}, headers={"Idempotency-Key": "k3"})
    assert invalid.status_code == 400
    assert (
        http.post(
            "/v1/customers", data={"name": "Ok"}, headers={"Idempotency-Key": "k3"}
        ).status_code
        == 200
    )


# -- the official SDK over loopback ----------------------------------------------------------


def test_official_sdk_against_served_sandbox():
    stripe = pytest.importorskip("stripe")
    sandbox, api = make_sandbox(companies=30, seed=9)
    server = sandbox.serve()
    try:
        sdk = stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0)
        v1 = sdk.v1
        assert sum(
            1 for _ in v1.customers.list(params={"limit": 7}).auto_paging_iter()
        ) == api.count("customers")
        subs = list(
            v1.subscriptions.list(params={"status": "all", "limit": 100}).auto_paging_iter()
        )
        assert len(subs) == api.count("subscriptions")
        invoices = list(
            v1.invoices.list(params={"limit": 50, "expand": ["data.customer"]}).auto_paging_iter()
        )
        assert len(invoices) == api.count("invoices") and invoices[0].customer.object == "customer"
        assert sum(
            1 for _ in v1.events.list(params={"limit": 100}).auto_paging_iter()
        ) == api.count("events")
        created = v1.customers.create(
            params={"email": "sdk@example.com", "metadata": {"hubspot_company_id": "9"}}
        )
        updated = v1.customers.update(created.id, params={"name": "SDK Co"})
        assert updated.name == "SDK Co" and updated.metadata["hubspot_company_id"] == "9"
        with pytest.raises(stripe.InvalidRequestError) as missing:
            v1.customers.retrieve("cus_nope")
        assert missing.value.code == "resource_missing"
        with pytest.raises(stripe.AuthenticationError):
            stripe.StripeClient(
                "sk_test_nope", base_addresses={"api": server.url}, max_network_retries=0
            ).v1.customers.list()
        api.faults.inject("500", path=r"/v1/charges")
        retried = stripe.StripeClient(
            KEY, base_addresses={"api": server.url}, max_network_retries=1
        )
        assert (
            len(retried.v1.charges.list(params={"limit": 3}).data) == 3
        )  # obeyed Stripe-Should-Retry
    finally:
        server.stop()


def test_loopback_paging_reads_everything():
    # Throughput is measured in bench/ (not asserted here: shared CI cores vary).
    sandbox, api = make_sandbox(companies=300, seed=2)
    server = sandbox.serve()
    try:
        with httpx.Client(base_url=server.url, auth=(KEY, "")) as http:
            rows = walk(http, "/v1/charges")
        assert len(rows) == api.count("charges")
        assert len({r["id"] for r in rows}) == len(rows)
    finally:
        server.stop()


# -- shapes against the published (2023-08-16) OpenAPI spec ----------------------------------

# Fields that moved or went away since 2023-08-16 (current shapes follow fixtures3.json).
MOVED_SINCE_2023 = {
    "subscription.current_period_start": "moved to subscription items (2025-03-31)",
    "subscription.current_period_end": "moved to subscription items (2025-03-31)",
    "invoice.paid": "removed; use status and status_transitions.paid_at",
    "invoice.paid_out_of_band": "removed with invoice payments",
    "invoice.total_tax_amounts": "replaced by total_taxes",
    "line_item.proration": "moved under parent.subscription_item_details",
    "line_item.type": "replaced by parent.type",
}


class _Validator:
    def __init__(self, spec: dict[str, Any], skip: dict[str, str]):
        self.schemas = spec["components"]["schemas"]
        self.skip = skip
        self.errors: list[str] = []

    def resolve(self, schema: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            return name, self.schemas[name]
        return None, schema

    def check(self, value: Any, schema: dict[str, Any], where: str) -> bool:
        name, schema = self.resolve(schema)
        if value is None:
            if schema.get("nullable"):
                return True
            self.errors.append(f"{where}: null but not nullable")
            return False
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            for branch in branches:
                probe = _Validator.__new__(_Validator)
                probe.schemas, probe.skip, probe.errors = self.schemas, self.skip, []
                if probe.check(value, branch, where):
                    return True
            self.errors.append(f"{where}: matches no anyOf branch")
            return False
        kind = schema.get("type")
        ok = True
        if kind == "object" or "properties" in schema:
            if not isinstance(value, dict):
                self.errors.append(f"{where}: expected object")
                return False
            for field in schema.get("required", []):
                if field not in value and f"{name}.{field}" not in self.skip:
                    self.errors.append(f"{where}.{field}: required ({name})")
                    ok = False
            for field, sub in schema.get("properties", {}).items():
                if field in value:
                    ok = self.check(value[field], sub, f"{where}.{field}") and ok
            return ok
        if kind == "array":
            if not isinstance(value, list):
                self.errors.append(f"{where}: expected array")
                return False
            return all(
                [
                    self.check(item, schema.get("items", {}), f"{where}[{i}]")
                    for i, item in enumerate(value)
                ]
            )
        types = {"string": str, "integer": int, "boolean": bool, "number": (int, float)}
        if kind in types:
            if isinstance(value, bool) and kind != "boolean" or not isinstance(value, types[kind]):
                self.errors.append(f"{where}: expected {kind}, got {value!r}")
                return False
            if "enum" in schema and value not in schema["enum"]:
                self.errors.append(f"{where}: {value!r} not in {schema['enum']}")
                return False
        return True


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is absent (shared API specs are not part of the project)")
    return json.loads(SPEC.read_text())


def _samples(http: httpx.Client, version: str | None) -> list[tuple[str, dict[str, Any]]]:
    headers = {"Stripe-Version": version} if version else {}
    out = []
    for resource, schema in (
        ("customers", "customer"),
        ("payment_methods", "payment_method"),
        ("subscriptions", "subscription"),
        ("invoices", "invoice"),
        ("charges", "charge"),
    ):
        params = {"limit": 20, "status": "all"} if resource == "subscriptions" else {"limit": 20}
        for obj in http.get(f"/v1/{resource}", params=params, headers=headers).json()["data"]:
            out.append((schema, obj))
    for obj in http.get("/v1/events", params={"limit": 100}, headers=headers).json()["data"]:
        out.append(("event", obj))
    return out


def test_shapes_match_published_spec(seeded, http, spec):
    validator = _Validator(spec, MOVED_SINCE_2023)
    samples = _samples(http, None)
    assert {schema for schema, _ in samples} == {
        "customer",
        "payment_method",
        "subscription",
        "invoice",
        "charge",
        "event",
    }
    for schema, obj in samples:
        validator.check(obj, {"$ref": f"#/components/schemas/{schema}"}, f"{schema}:{obj['id']}")
    assert validator.errors[:10] == []
    # The validator is not vacuous: a broken charge is caught.
    broken = dict(next(obj for schema, obj in samples if schema == "charge"))
    del broken["status"]
    broken["amount"] = "12"
    strict = _Validator(spec, {})
    assert not strict.check(broken, {"$ref": "#/components/schemas/charge"}, "charge")
    assert len(strict.errors) == 2


def test_legacy_version_matches_spec_without_exceptions(seeded, http, spec):
    validator = _Validator(spec, {})
    for schema, obj in _samples(http, "2023-08-16"):
        if schema == "event":
            continue  # events keep the version they were created in
        validator.check(obj, {"$ref": f"#/components/schemas/{schema}"}, f"{schema}:{obj['id']}")
    assert validator.errors[:10] == []


def test_world_clock_not_wall_clock(seeded):
    sandbox, api = seeded
    newest = max(api._store["event"].values(), key=lambda e: e.created)
    assert newest.created <= sandbox.world.clock.ts()
    assert (
        dt.datetime.fromtimestamp(newest.created, dt.timezone.utc).year == sandbox.world.start.year
    )
