"""The sandbox sends signed webhooks itself: each provider's deliveries are accepted by the
hub's receivers, misbehaviour on demand is refused or deduplicated, retries follow each
provider's schedule, and per-stream triggering narrows the worker's sync."""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from hub.store import Store


def _config(db_path: str, sandbox_url: str | None = None):
    from hub.config import parse_config
    from hub.demo import demo_config
    from hub.sandbox.webhooks import DEFAULT_SECRETS

    data = demo_config(db_path).model_dump()
    data["webhooks"] = {"secrets": dict(DEFAULT_SECRETS), "debounce_seconds": 0.2}
    if sandbox_url:
        for conn in data["connections"].values():
            conn["settings"]["base_url"] = sandbox_url
    return parse_config(data)


def _inbox(path: str) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT connection, event_id, event_type FROM _hub_webhook_inbox ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def _counters(path: str) -> dict[tuple[str, str], int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT connection, name, value FROM _hub_webhook_counters")
        return {(c, n): v for c, n, v in rows}
    finally:
        conn.close()


@pytest.fixture
def served(tmp_path):
    """A 6-company sandbox and the hub's app (receivers, no worker) on a loopback port."""
    from hub.sandbox.webhooks import detach_webhooks
    from hub.sandbox.world import build_sandbox
    from hub.web import WebOptions
    from hub.web.server import serve_in_thread

    sandbox = build_sandbox(companies=6, seed=3)
    path = str(tmp_path / "hub.db")
    Store(path).close()
    running = serve_in_thread(WebOptions(db_path=path, config=_config(path), worker=False))
    try:
        yield sandbox, running.url, path
    finally:
        detach_webhooks(sandbox)
        running.stop()


def _company(sandbox, archetype: str = "healthy"):
    return next(c for c in sandbox.world.companies if c.archetype == archetype)


def _change_each_world(sandbox, nps: str = "3") -> None:
    """A payment fails (Stripe), a ticket is opened (Zendesk), a CSM edits a company (HubSpot)."""
    from hub.sandbox.stripe.webhooks import fail_payment

    company = _company(sandbox)
    fail_payment(sandbox.api("stripe"), company.key)
    zendesk = sandbox.api("zendesk")
    org = zendesk._org_by_company[company.key]
    user = next(u for u in zendesk.users.values() if u.org_id == org)
    client = httpx.Client(transport=sandbox.transport())
    answer = client.post(
        "https://sandbox.zendesk.com/api/v2/tickets.json",
        json={
            "ticket": {
                "subject": "Escalated: export broken",
                "comment": {"body": "help"},
                "requester_id": user.id,
                "priority": "urgent",
                "tags": ["escalated"],
            }
        },
        auth=("admin@lumen.example/token", "zd-sandbox-token"),
    )
    assert answer.status_code == 201, answer.text
    sandbox.api("hubspot").set_properties("companies", company.hubspot_id, {"nps_score": nps})


def test_the_sandbox_sends_each_provider_signed_deliveries_the_hub_accepts(served):
    from hub.sandbox.webhooks import attach_webhooks

    sandbox, url, path = served
    sender = attach_webhooks(sandbox, f"{url}/webhooks")
    _change_each_world(sandbox)
    assert sender.flush(20)
    assert {a.status for a in sender.attempts} == {200}
    kinds = {(c, t) for c, _, t in _inbox(path)}
    assert ("stripe", "invoice.payment_failed") in kinds
    assert ("stripe", "charge.failed") in kinds
    assert ("zendesk", "zen:event-type:ticket.created") in kinds
    assert ("hubspot", "company.propertyChange") in kinds
    assert len(sender.delivered) == len(_inbox(path))  # every genuine delivery stored once


def test_misbehaviour_on_demand_is_refused_or_deduplicated(served):
    from hub.sandbox.stripe.webhooks import fail_payment
    from hub.sandbox.webhooks import attach_webhooks

    sandbox, url, path = served
    sender = attach_webhooks(sandbox, f"{url}/webhooks", apis=("stripe",))
    control = httpx.Client(transport=sandbox.transport(), base_url="http://sandbox")
    for kind, count in (("duplicate", 1), ("replay", 1), ("forge", 1), ("out_of_order", 3)):
        assert (
            control.post("/__sandbox/webhooks", json={"kind": kind, "count": count}).status_code
            == 201
        )
    assert control.post("/__sandbox/webhooks", json={"kind": "nonsense"}).status_code == 400
    fail_payment(sandbox.api("stripe"), _company(sandbox).key)  # created, finalized, charge…
    assert sender.flush(20)
    genuine = [a for a in sender.attempts if not a.copy]
    assert {a.status for a in genuine} == {200}
    copies = {a.copy: a.status for a in sender.attempts if a.copy}
    assert copies == {"duplicate": 200, "replay": 400, "forge": 400}
    stored = [event_id for _, event_id, _ in _inbox(path)]
    assert sorted(stored) == sorted(set(sender.delivered)) and len(stored) == len(set(stored))
    # The held three went newest first: the receiver saw them out of order.
    first_three = [a.event_ids[0] for a in genuine[:3]]
    assert first_three == sorted(first_three, reverse=True)
    seen = _counters(path)
    assert seen[("stripe", "duplicate")] == 2 and seen[("stripe", "refused")] == 2
    assert control.get("/__sandbox/webhooks").json()["delivered"] == len(stored)


def test_retries_follow_each_providers_schedule(served):
    from hub.sandbox.webhooks import POLICIES, attach_webhooks

    sandbox, url, _ = served
    # A receiver that answers 404: Stripe retries any non-2xx, Zendesk and HubSpot do not.
    sender = attach_webhooks(sandbox, f"{url}/webhooks/nowhere-{{api}}", retry_scale=1e-5)
    _change_each_world(sandbox)
    assert sender.flush(30)
    tries = {}
    for a in sender.attempts:
        tries.setdefault((a.api, a.event_ids[0]), []).append(a.attempt)
    stripe = [n for (api, _), n in tries.items() if api == "stripe"]
    assert stripe and all(n == list(range(len(POLICIES["stripe"].delays) + 1)) for n in stripe)
    assert all(n == [0] for (api, _), n in tries.items() if api != "stripe")
    # Nobody listening: every provider retries its whole schedule, then gives up.
    closed = socket_free_port()
    sender = attach_webhooks(sandbox, f"http://127.0.0.1:{closed}/webhooks", retry_scale=1e-5)
    started = time.monotonic()
    _change_each_world(sandbox, nps="4")
    assert sender.flush(30)
    per_api = {}
    for a in sender.attempts:
        per_api.setdefault(a.api, set()).add(a.attempt)
    assert per_api["zendesk"] == set(range(len(POLICIES["zendesk"].delays) + 1))
    assert per_api["hubspot"] == set(range(len(POLICIES["hubspot"].delays) + 1))
    assert sender.gave_up and not sender.delivered
    assert time.monotonic() - started < 20  # three days of retries, compressed


def socket_free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_each_connector_names_the_streams_its_events_touch():
    from connectors.hubspot.webhook import HubSpotWebhook
    from connectors.stripe.webhook import StripeWebhook
    from connectors.zendesk.webhook import ZendeskWebhook

    stripe = StripeWebhook()
    assert stripe.streams(["invoice.payment_failed"]) == ["charges", "events", "invoices"]
    assert stripe.streams(["customer.subscription.deleted"]) == [
        "events",
        "invoices",
        "subscriptions",
    ]
    assert stripe.streams(["issuing_card.created"]) is None  # unknown reach: everything
    zendesk = ZendeskWebhook()
    assert zendesk.streams(["zen:event-type:ticket.created"]) == [
        "satisfaction_ratings",
        "tickets",
    ]
    assert zendesk.streams(["trigger"]) is None
    hubspot = HubSpotWebhook()
    assert hubspot.streams(["company.propertyChange", "deal.creation"]) == ["companies", "deals"]
    assert hubspot.streams(["company.associationChange"]) is None
