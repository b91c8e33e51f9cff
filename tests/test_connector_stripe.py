"""The Stripe connector against the in-process Stripe fake (and the standard suite)."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from connectors.stripe import StripeConnector
from connectors.stripe import register_connectors as register_hook
from hub import clock
from hub.errors import ConfigError, CursorExpiredError, FatalAPIError, RetriableAPIError
from hub.http.ratelimit import reset_shared_limiters
from hub.sandbox.base import Sandbox
from hub.sandbox.stripe import StripeAPI
from hub.sandbox.world import CREDENTIALS, advance
from hub.store import Store
from hub.sync import StreamResult, sync_connection
from hub.testing import SandboxConnectorTests

KEY = CREDENTIALS["stripe"]["api_key"]
# The proactive limiter runs on real time; the fake answers in microseconds.
BASE = {"api_key": KEY, "requests_per_second": 100}
OBJECTS = ["customers", "payment_methods", "subscriptions", "invoices", "charges"]


@pytest.fixture()
def env(api_env):
    return api_env(StripeAPI, companies=40, seed=0)


def connector(**settings: Any) -> StripeConnector:
    return StripeConnector({**BASE, **settings}, connection="st")


def run(
    sandbox: Sandbox, store: Store, transport: Any = None, **settings: Any
) -> dict[str, StreamResult]:
    reset_shared_limiters()
    results = sync_connection(
        store,
        connector(**settings),
        transport=transport or sandbox.transport(),
        sleep=lambda s: None,
    )
    return {r.stream: r for r in results}


def rows(store: Store, stream: str, *, deleted: bool = False) -> dict[str, dict]:
    return {
        r["id"]: r["data"] for r in store.raw_rows(f"raw_st_{stream}") if r["deleted"] == deleted
    }


def live(store: Store) -> dict[str, dict[str, dict]]:
    return {stream: rows(store, stream) for stream in OBJECTS}


def fresh_copy(sandbox: Sandbox) -> dict[str, dict[str, dict]]:
    other = Store(":memory:")
    run(sandbox, other)
    copy = live(other)
    copy["events"] = rows(other, "events")
    other.close()
    return copy


def objects_of(copy: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    return {stream: copy[stream] for stream in OBJECTS}


def default_cards(sandbox: Sandbox, api: StripeAPI) -> int:
    http = httpx.Client(
        transport=sandbox.transport(), base_url="https://api.stripe.com", auth=(KEY, "")
    )
    customers = http.get("/v1/customers", params={"limit": 100}).json()["data"]
    return sum(1 for c in customers if c["invoice_settings"]["default_payment_method"])


def test_full_sync_matches_the_world(env):
    sandbox, api, store = env
    results = run(sandbox, store)
    assert {n: r.status for n, r in results.items()} == dict.fromkeys(["events", *OBJECTS], "ok")
    for stream in ("customers", "subscriptions", "invoices", "charges", "events"):
        assert len(rows(store, stream)) == api.count(stream) == results[stream].records, stream
    assert (
        len(rows(store, "payment_methods")) == default_cards(sandbox, api) == 39
    )  # company 7 has none
    assert results["payment_methods"].requests == 0  # came with the customers listing
    # Pages of 100: requests are the minimum.
    for stream in ("invoices", "charges", "events"):
        assert results[stream].requests == math.ceil(api.count(stream) / 100)
    # Stored exactly as Stripe renders them, customers with the card id (as events carry it).
    customer = rows(store, "customers")[api.customer_id_for(0)]
    assert customer == api.get("customers", api.customer_id_for(0))
    assert isinstance(customer["invoice_settings"]["default_payment_method"], str)
    card = rows(store, "payment_methods")[customer["invoice_settings"]["default_payment_method"]]
    assert card["card"]["exp_year"] > 2000
    assert {s["status"] for s in rows(store, "subscriptions").values()} >= {"active", "canceled"}


def test_noop_second_sync_is_one_request_and_writes_nothing(env):
    sandbox, api, store = env
    run(sandbox, store)
    before = {stream: rows(store, stream) for stream in ["events", *OBJECTS]}
    api.requests.clear()
    results = run(sandbox, store)
    assert sum(r.requests for r in results.values()) == 1
    assert dict(api.requests) == {"GET list_events": 1}
    assert sum(r.changed for r in results.values()) == 0
    assert {stream: rows(store, stream) for stream in ["events", *OBJECTS]} == before


def test_incremental_after_three_days_applies_exactly_the_changes(env):
    sandbox, api, store = env
    run(sandbox, store)
    events_before = set(rows(store, "events"))
    before = live(store)
    advance(sandbox, 3)
    api.requests.clear()
    results = run(sandbox, store)
    new_events = {i: e for i, e in rows(store, "events").items() if i not in events_before}
    assert new_events and results["events"].records == len(new_events)
    assert dict(api.requests) == {"GET list_events": math.ceil(len(new_events) / 100)}
    # Exactly the objects the new events name changed, and the tables equal a fresh full sync.
    touched = {e["data"]["object"]["id"] for e in new_events.values()}
    after = live(store)
    changed = {
        i for stream in OBJECTS for i, d in after[stream].items() if before[stream].get(i) != d
    }
    assert changed and changed <= touched
    fresh = fresh_copy(sandbox)
    assert after == objects_of(fresh)
    assert set(fresh["events"]) <= set(rows(store, "events"))


def test_stale_bookmark_means_a_full_reread_with_a_note(env):
    sandbox, api, store = env
    run(sandbox, store)
    advance(sandbox, 40)
    results = run(sandbox, store)
    assert all(r.status == "ok" for r in results.values())
    assert any("older than Stripe's 30-day event window" in n for n in results["events"].notes)
    assert results["customers"].requests >= 1 and results["invoices"].records == api.count(
        "invoices"
    )
    assert live(store) == objects_of(fresh_copy(sandbox))
    runs = store.runs(kind="sync")
    assert any("full re-read" in (r["note"] or "") for r in runs)
    assert sum(r.requests for r in run(sandbox, store).values()) == 1  # and incremental again


def test_unknown_cursor_falls_back_to_a_full_reread(env):
    sandbox, api, store = env
    run(sandbox, store)
    advance(sandbox, 1)
    api.faults.inject("cursor_expired", path=r"/v1/events")
    results = run(sandbox, store)
    assert all(r.status == "ok" for r in results.values())
    assert any("no longer knows the bookmarked event" in n for n in results["events"].notes)
    assert results["subscriptions"].requests == 1
    assert live(store) == objects_of(fresh_copy(sandbox))


@pytest.mark.parametrize(
    "kind,params",
    [("429", {"retry_after": 0}), ("500", {}), ("503", {}), ("timeout", {})],
)
def test_faults_are_retried_without_loss_or_duplicates(env, kind, params):
    sandbox, api, store = env
    api.faults.inject(kind, count=3, path=r"/v1/invoices", **params)
    api.faults.inject(kind, count=2, path=r"/v1/events", after=1, **params)
    results = run(sandbox, store)
    assert all(r.status == "ok" for r in results.values()), {n: r.error for n, r in results.items()}
    assert results["invoices"].retries == 3 and results["events"].retries == 2
    advance(sandbox, 2)
    api.faults.inject(kind, count=2, path=r"/v1/events", **params)
    results = run(sandbox, store)
    assert results["events"].status == "ok" and results["events"].retries == 2
    fresh = fresh_copy(sandbox)
    assert live(store) == objects_of(fresh)
    assert len(rows(store, "invoices")) == api.count("invoices")


def test_429_storm_on_every_first_request(env):
    sandbox, api, store = env
    # Five 429s in a row on each resource (one short of giving up), no Retry-After: Stripe
    # sends none, so the client backs off on its own.
    for path in (
        r"/v1/events",
        r"/v1/customers",
        r"/v1/subscriptions",
        r"/v1/invoices",
        r"/v1/charges",
    ):
        api.faults.inject("429", count=5, path=path)
    results = run(sandbox, store)
    assert all(r.status == "ok" for r in results.values()), {n: r.error for n, r in results.items()}
    assert sum(r.retries for r in results.values()) == 25
    assert api.status_counts[429] == 25
    assert live(store) == objects_of(fresh_copy(sandbox))


def test_crash_mid_listing_resumes_after_the_last_stored_id(env):
    sandbox, api, store = env
    api.faults.inject("400", count=1, after=1, path=r"/v1/charges")
    broken = run(sandbox, store)
    assert broken["charges"].status == "error" and "Injected bad request" in broken["charges"].error
    state = store.get_state("st", "charges")
    assert state and state["resume"].startswith("ch_")
    api.requests.clear()
    resumed = run(sandbox, store)
    assert resumed["charges"].status == "ok"
    assert api.requests["GET list_charges"] == math.ceil(api.count("charges") / 100) - 1
    assert len(rows(store, "charges")) == api.count("charges")


def test_replaced_card_is_tombstoned_and_new_card_stored(env):
    sandbox, api, store = env
    run(sandbox, store)
    customer_id = api.customer_id_for(0)
    old = rows(store, "customers")[customer_id]["invoice_settings"]["default_payment_method"]
    with api._lock:
        api._do_newcard(sandbox.world.clock.ts(), customer_id, None, False)
    run(sandbox, store)
    new = rows(store, "customers")[customer_id]["invoice_settings"]["default_payment_method"]
    assert new != old and new in rows(store, "payment_methods")
    assert old in rows(store, "payment_methods", deleted=True)


def test_both_shapes_of_event_objects_are_stored(env):
    sandbox, api, store = env
    run(sandbox, store)
    shapes = {
        (e["api_version"], "paid" in e["data"]["object"])
        for e in rows(store, "events").values()
        if e["type"] == "invoice.paid"
    }
    assert ("2024-06-20", True) in shapes and any(
        v != "2024-06-20" and not paid for v, paid in shapes
    )


def test_stripe_version_and_bearer_key_are_sent(env):
    sandbox, api, store = env
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return sandbox.handle(request)

    run(sandbox, store, transport=httpx.MockTransport(handler), api_version="2026-10-28.endive")
    assert seen and all(r.headers["stripe-version"] == "2026-10-28.endive" for r in seen)
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in seen)
    assert all(r.url.params.get("limit") == "100" for r in seen)


def _response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request("GET", "https://api.stripe.com/v1/events?starting_after=evt_1")
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_classify_follows_stripe():
    conn = connector()
    err = lambda **e: {"error": {"type": "invalid_request_error", "message": "m", **e}}  # noqa: E731
    assert isinstance(conn.classify(_response(429, err(code="rate_limit"))), RetriableAPIError)
    assert isinstance(conn.classify(_response(400, err(code="rate_limit"))), RetriableAPIError)
    assert isinstance(conn.classify(_response(409, err(code="lock_timeout"))), RetriableAPIError)
    assert isinstance(conn.classify(_response(500, err(type="api_error"))), RetriableAPIError)
    assert isinstance(
        conn.classify(_response(400, err(), {"Stripe-Should-Retry": "true"})), RetriableAPIError
    )
    no_retry = conn.classify(
        _response(500, err(type="api_error"), {"Stripe-Should-Retry": "false"})
    )
    assert isinstance(no_retry, FatalAPIError) and not isinstance(no_retry, RetriableAPIError)
    expired = conn.classify(_response(400, err(code="resource_missing", param="starting_after")))
    assert isinstance(expired, CursorExpiredError)
    missing = conn.classify(_response(404, err(code="resource_missing", param="id")))
    assert type(missing) is FatalAPIError
    denied = conn.classify(
        _response(
            403,
            err(
                message="The provided key 'rk_test_***1234' does not have the required permissions for this endpoint. Having the 'rak_invoice_read' permission would allow this request to continue."
            ),
        )
    )
    assert isinstance(denied, FatalAPIError) and "rak_invoice_read" in str(denied)
    assert conn.classify(_response(200, {})) is None


def test_bad_key_fails_fast_without_the_secret(env, caplog):
    sandbox, api, store = env
    results = run(sandbox, store, api_key="sk_test_definitelywrong42")
    assert all(r.status == "error" and r.retries == 0 for r in results.values())
    assert "refused the API key" in results["events"].error
    assert "definitelywrong" not in json.dumps([r.error for r in results.values()])
    assert "definitelywrong" not in caplog.text


def test_settings_validation():
    with pytest.raises(ConfigError, match="publishable key"):
        StripeConnector.parse_settings({"api_key": "pk_live_abc"})
    with pytest.raises(ConfigError, match="api_key"):
        StripeConnector.parse_settings({"api_key": "hello"})
    with pytest.raises(ConfigError, match="api_version"):
        StripeConnector.parse_settings({"api_key": KEY, "api_version": "latest"})
    with pytest.raises(ConfigError, match="requests_per_second"):
        StripeConnector.parse_settings({"api_key": KEY, "requests_per_second": 500})
    with pytest.raises(ConfigError, match="unknown key"):
        StripeConnector.parse_settings({"api_key": KEY, "colour": "red"})
    settings = StripeConnector.parse_settings({"api_key": "rk_live_abc123"})
    assert "rk_live_abc123" not in repr(settings)
    assert settings.page_size == 100 and settings.requests_per_second == 25


def test_check_and_registration(env):
    sandbox, api, store = env
    conn = connector()
    with conn.client(transport=sandbox.transport()) as client:
        assert conn.check(client).startswith("Stripe (test mode, secret key")
    registered: list[Any] = []
    register_hook(registered.append)
    assert registered == [StripeConnector]


class TestStripeStandardSuite(SandboxConnectorTests):
    """hub.testing's standard suite against the whole sandbox."""

    connector_class = StripeConnector
    api_name = "stripe"
    settings = dict(BASE)
    bad_settings = {**BASE, "api_key": "sk_test_not-the-key"}
    max_noop_requests = 1  # only the events stream asks anything
    resume_stream = "invoices"
    resume_path = r"/v1/invoices"
    advance_days = 3

    def make_world(self):
        world = super().make_world()
        clock.set_source(world.world.clock.now)  # bookmarks age with the world, not the wall
        return world

    @staticmethod
    def _live(snapshot):
        # The events table is a log that outlives Stripe's 30-day window, so a fresh full
        # sync holds fewer; tombstoned cards are no customer's default any more.
        return {
            table: [row for row in rows_ if row[2] == 0]
            for table, rows_ in snapshot.items()
            if not table.endswith("_events")
        }


def test_cards_are_confirmed_in_bounded_pages_of_whole_stored_pages(env, monkeypatch):
    # The customers listing stores the cards (pages of 5: each page's cards share one seq);
    # the payment_methods stream then confirms them in pages of at least CONFIRM_PAGE cards
    # that never split a stored page, not in one page of every card.
    from connectors.stripe.streams import PaymentMethodsStream

    sandbox, api, store = env
    monkeypatch.setattr(PaymentMethodsStream, "CONFIRM_PAGE", 12)
    pages: list[int] = []

    def progress(connection: str, stream: str, n: int, done: bool) -> None:
        if stream == "payment_methods" and not done:
            pages.append(n)

    reset_shared_limiters()
    results = sync_connection(
        store,
        connector(page_size=5),
        transport=sandbox.transport(),
        sleep=lambda s: None,
        progress=progress,
    )
    by_stream = {r.stream: r for r in results}
    assert by_stream["payment_methods"].status == "ok"
    assert by_stream["payment_methods"].requests == 0
    # 39 cards in stored pages of 5 (the one customer without a card leaves a page of 4):
    # batches close at the first page boundary at or past 12 cards.
    assert sum(pages) == 39 and len(pages) == 3 and all(n >= 12 for n in pages[:-1]), pages
    assert len(rows(store, "payment_methods")) == default_cards(sandbox, api) == 39
    assert store.get_state("st", "payment_methods")["complete"] is True


def test_payment_methods_alone_pages_customers_by_customer_id(env):
    # Run alone, the stream lists customers itself and keeps their cards: the next page
    # starts after the last *customer* (it started after the last card, which Stripe
    # refuses), and each page's successor is asked for before the page is stored.
    sandbox, api, store = env
    reset_shared_limiters()
    (result,) = sync_connection(
        store,
        connector(page_size=10),
        transport=sandbox.transport(),
        sleep=lambda s: None,
        streams=["payment_methods"],
        full_refresh=True,
    )
    assert result.status == "ok", result.error
    cards = rows(store, "payment_methods")
    assert len(cards) == default_cards(sandbox, api) == 39
    assert result.requests == -(-api.count("customers") // 10)
