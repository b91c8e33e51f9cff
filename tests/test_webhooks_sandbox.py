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
    control = httpx.Client(transport=sandbox.transport(), base_url="http://sandbox")
    escalated = control.post("/__sandbox/webhooks/ticket_escalated", json={})
    assert escalated.status_code == 201, escalated.text
    ticket = sandbox.api("zendesk").tickets[escalated.json()["ticket"]]
    assert ticket.priority == "urgent" and "escalated" in ticket.tags
    assert sender.flush(20)
    assert {a.status for a in sender.attempts} == {200}
    kinds = {(c, t) for c, _, t in _inbox(path)}
    assert ("zendesk", "zen:event-type:ticket.priority_changed") in kinds
    assert ("zendesk", "zen:event-type:ticket.tags_changed") in kinds
    assert ("stripe", "invoice.payment_failed") in kinds
    assert ("stripe", "charge.failed") in kinds
    assert ("zendesk", "zen:event-type:ticket.created") in kinds
    assert ("hubspot", "company.propertyChange") in kinds
    assert len(sender.delivered) == len(_inbox(path))  # every genuine delivery stored once


def test_misbehaviour_on_demand_is_refused_or_deduplicated(served):
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
    failed = control.post("/__sandbox/webhooks/payment_failed", json={})  # what benches use
    assert failed.status_code == 201 and failed.json()["invoice"].startswith("in_")
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


def _hub() -> list[str]:
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("hub")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hub"]


def test_end_to_end_a_failed_payment_reaches_hubspot_in_seconds(tmp_path):
    """The sandbox's own sender → ``hub serve`` (a real process) → inbox → worker → the
    HubSpot fake's property and task, with no scheduled sync."""
    import datetime as dt
    import os
    import subprocess

    from hub.pipeline import run_pipeline
    from hub.sandbox.stripe.webhooks import fail_payment
    from hub.sandbox.webhooks import DEFAULT_SECRETS, attach_webhooks, config_lines
    from hub.sandbox.world import build_sandbox

    sandbox = build_sandbox(companies=8, seed=11, start=dt.datetime.now(dt.timezone.utc))
    sandbox.world.clock.run()  # the payment fails now, as the hub's clock sees it
    server = sandbox.serve()
    db = tmp_path / "hub.db"
    config = _config(str(db), server.url)
    store = Store(str(db))
    run_pipeline(store, config, transport=sandbox.transport())  # yesterday's scheduled run
    store.close()
    hubspot = sandbox.api("hubspot")
    company = _company(sandbox)
    before = hubspot.get("companies", company.hubspot_id)["properties"]
    assert before.get("hub_health_score")
    cfg = tmp_path / "hub.toml"
    cfg.write_text(
        config_toml_for(server.url, str(db)) + "\n" + config_lines(DEFAULT_SECRETS) + "\n"
    )
    proc = subprocess.Popen(
        [*_hub(), "-c", str(cfg), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "300", "TERM": "dumb"},
    )
    try:
        assert proc.stdout is not None
        url = next(
            line.split("hub serve: ", 1)[1].split()[0].rstrip("/")
            for line in proc.stdout
            if "hub serve: http://" in line
        )
        sender = attach_webhooks(sandbox, f"{url}/webhooks")
        failed_at = time.monotonic()
        fail_payment(sandbox.api("stripe"), company.key)
        deadline = failed_at + 60
        after, tasks = before, []
        while time.monotonic() < deadline:
            after = hubspot.get("companies", company.hubspot_id)["properties"]
            tasks = [
                t
                for t in hubspot.objects("tasks")
                if t["properties"].get("hs_task_subject", "").startswith("Payment failed")
                and company.name in t["properties"].get("hs_task_subject", "")
            ]
            if after.get("hub_health_score") != before["hub_health_score"] and tasks:
                break
            time.sleep(0.2)
        assert after["hub_health_score"] != before["hub_health_score"], (before, after)
        assert tasks, "no 'Payment failed' task in HubSpot"
        assert sender.flush(10) and {a.status for a in sender.attempts} == {200}
        # The worker marks its deliveries processed just after the push the CRM shows.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "pending" in {s for *_, s in _statuses(db)}:
            time.sleep(0.2)
        conn = sqlite3.connect(db)
        try:
            statuses = {s for (s,) in conn.execute("SELECT status FROM _hub_webhook_inbox")}
            # The push wrote the hub's own properties: the app is not subscribed to them.
            echoes = conn.execute(
                "SELECT COUNT(*) FROM _hub_webhook_inbox WHERE connection = 'hubspot'"
            ).fetchone()[0]
            zendesk_runs = conn.execute(
                "SELECT COUNT(*) FROM _hub_runs WHERE kind='sync' AND connection='zendesk'"
            ).fetchone()[0]
        finally:
            conn.close()
        assert statuses == {"processed"} and echoes == 0
        assert zendesk_runs == 4  # the scheduled run's four streams; no webhook touched Zendesk
    finally:
        proc.terminate()
        proc.wait(10)
        sender_close(sandbox)
        server.stop()


def sender_close(sandbox) -> None:
    from hub.sandbox.webhooks import detach_webhooks

    detach_webhooks(sandbox)


def config_toml_for(sandbox_url: str, db_path: str) -> str:
    from hub.sandbox.config import config_toml

    text = config_toml(sandbox_url, [])
    return text.replace('database = "hub.db"', f'database = "{db_path}"')


def _statuses(db) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT event_id, status FROM _hub_webhook_inbox").fetchall()
    finally:
        conn.close()


def test_sandbox_serve_prints_the_webhook_secrets_and_refuses_bad_options(tmp_path):
    import os
    import subprocess

    env = {**os.environ, "COLUMNS": "300", "TERM": "dumb"}
    bad = subprocess.run(
        [*_hub(), "sandbox", "serve", "--companies", "3", "--webhook-url", "ftp://x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode != 0 and "--webhook-url 'ftp://x' is not an http(s) URL" in (
        bad.stdout + bad.stderr
    )
    assert "Traceback" not in bad.stdout + bad.stderr
    proc = subprocess.Popen(
        [
            *_hub(),
            "sandbox",
            "serve",
            "--companies",
            "3",
            "--port",
            "0",
            "--webhook-url",
            "http://127.0.0.1:9/webhooks",
            "--webhook-secret",
            "stripe=whsec_mine",
            "--print-config",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("hubspot = "):
                break
        text = "\n".join(lines)
        assert "[webhooks.secrets]" in text and 'stripe = "whsec_mine"' in text
        assert 'zendesk = "zd-sandbox-webhook-signing-secret"' in text
    finally:
        proc.terminate()
        proc.wait(10)


def test_zendesk_deliveries_wait_until_the_export_shows_the_change(tmp_path):
    """Zendesk's incremental exports leave out the last minute: a delivery younger than the
    connector's ``settle_seconds`` stays pending (a sync now would see nothing), then syncs
    only the ticket streams."""
    import datetime as dt

    from hub import clock
    from hub.sandbox.world import build_sandbox
    from hub.store.webhooks import store_deliveries
    from hub.web.worker import WebhookWorker

    path = str(tmp_path / "hub.db")
    sandbox = build_sandbox(companies=6, seed=2)
    writer = Store(path)
    store_deliveries(
        writer, "zendesk", [("zd-1", "zen:event-type:ticket.created", "pending")], "{}"
    )
    writer.close()
    worker = WebhookWorker(path, _config(path), transport=sandbox.transport(), debounce=0)
    assert worker.drain() is True  # still pending: too early for the export
    assert worker.runs == 0 and _statuses(path) == [("zd-1", "pending")]
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=62)
    clock.set_source(lambda: later)
    try:
        assert worker.drain() is False
    finally:
        clock.set_source(None)
    assert _statuses(path) == [("zd-1", "processed")]
    assert worker.last_streams == {"zendesk": ["satisfaction_ratings", "tickets"]}
