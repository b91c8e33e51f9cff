"""Webhook receivers of ``hub serve``: each provider's signature (signed here, by the test),
refusals, the durable deduplicated inbox, the debounced worker, and no loss after SIGKILL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import pytest

from hub.store import Store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SECRETS = {
    "stripe": "whsec_test_0123456789",
    "zendesk": "zd-sign-abcdef",
    "hubspot": "hs-client-secret",
}


def stripe_headers(body: bytes, secret: str = SECRETS["stripe"], t: int | None = None, extra=()):
    t = int(time.time()) if t is None else t
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": ",".join([f"t={t}", *extra, f"v1={sig}"])}


def stripe_event(event_id: str, kind: str = "invoice.payment_failed") -> bytes:
    return json.dumps({"id": event_id, "type": kind, "data": {"object": {}}}).encode()


def zendesk_headers(body: bytes, secret: str = SECRETS["zendesk"], stamp: str | None = None):
    stamp = stamp or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sig = base64.b64encode(
        hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    )
    return {
        "X-Zendesk-Webhook-Signature": sig.decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def hubspot_headers(url: str, body: bytes, secret: str = SECRETS["hubspot"], ms: int | None = None):
    ms = int(time.time() * 1000) if ms is None else ms
    text = f"POST{url}{body.decode()}{ms}".encode()
    sig = base64.b64encode(hmac.new(secret.encode(), text, hashlib.sha256).digest()).decode()
    return {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": str(ms)}


def make_config(db_path: str, monkeypatch, **webhooks):
    from hub.config import parse_config
    from hub.demo import demo_config

    for name, secret in SECRETS.items():
        monkeypatch.setenv(f"HUB_TEST_WH_{name.upper()}", secret)
    data = demo_config(db_path).model_dump()
    data["webhooks"] = {
        "secrets": {name: f"env:HUB_TEST_WH_{name.upper()}" for name in SECRETS},
        **webhooks,
    }
    return parse_config(data)


@pytest.fixture
def env(tmp_path, monkeypatch):
    from hub.web import WebOptions, create_app

    path = str(tmp_path / "hub.db")
    Store(path).close()
    config = make_config(path, monkeypatch, max_body_bytes=4096)
    app = create_app(WebOptions(db_path=path, config=config, worker=False, token="t" * 20))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, path


def inbox(path: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT connection, event_id, event_type, status FROM _hub_webhook_inbox ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def counters(path: str) -> dict[tuple[str, str], int]:
    conn = sqlite3.connect(path)
    try:
        return {
            (c, n): v
            for c, n, v in conn.execute("SELECT connection, name, value FROM _hub_webhook_counters")
        }
    finally:
        conn.close()


def test_valid_deliveries_of_each_provider_are_stored_once(env):
    client, path = env
    body = stripe_event("evt_1")
    for _ in range(3):  # the same event delivered three times
        answer = client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
        assert answer.status_code == 200  # no token needed: the signature authenticates
    rotated = stripe_event("evt_2")
    headers = stripe_headers(rotated, extra=("v1=" + "0" * 64,))
    assert client.post("/webhooks/stripe", content=rotated, headers=headers).status_code == 200
    zd = json.dumps({"id": "zd-1", "type": "zen:event-type:ticket.priority_changed"}).encode()
    assert (
        client.post("/webhooks/zendesk", content=zd, headers=zendesk_headers(zd)).status_code == 200
    )
    url = "http://127.0.0.1/webhooks/hubspot"
    hs = json.dumps(
        [
            {"eventId": 7, "subscriptionType": "company.propertyChange"},
            {"eventId": 8, "subscriptionType": "contact.creation"},
        ]
    ).encode()
    assert (
        client.post("/webhooks/hubspot", content=hs, headers=hubspot_headers(url, hs)).status_code
        == 200
    )
    https = hubspot_headers(url.replace("http://", "https://"), hs)  # signed behind a TLS proxy
    assert client.post("/webhooks/hubspot", content=hs, headers=https).status_code == 200
    assert inbox(path) == [
        ("stripe", "evt_1", "invoice.payment_failed", "pending"),
        ("stripe", "evt_2", "invoice.payment_failed", "pending"),
        ("zendesk", "zd-1", "zen:event-type:ticket.priority_changed", "pending"),
        ("hubspot", "7", "company.propertyChange", "pending"),
        ("hubspot", "8", "contact.creation", "pending"),
    ]
    assert counters(path)[("stripe", "duplicate")] == 2
    assert counters(path)[("hubspot", "duplicate")] == 2


def test_forged_replayed_stale_oversized_and_malformed_are_refused(env, caplog):
    client, path = env
    body = stripe_event("evt_x")
    forged = stripe_headers(body, secret="whsec_wrong")
    assert client.post("/webhooks/stripe", content=body, headers=forged).status_code == 400
    assert client.post("/webhooks/stripe", content=body).status_code == 400
    stale = stripe_headers(body, t=int(time.time()) - 3600)  # a replay of an old delivery
    assert client.post("/webhooks/stripe", content=body, headers=stale).status_code == 400
    big = stripe_event("evt_big", "invoice.paid")[:-1] + b', "pad": "' + b"x" * 5000 + b'"}'
    assert (
        client.post("/webhooks/stripe", content=big, headers=stripe_headers(big)).status_code == 413
    )
    zd = b'{"id": "zd-2"}'
    bad_zd = zendesk_headers(zd, secret="nope")
    assert client.post("/webhooks/zendesk", content=zd, headers=bad_zd).status_code == 400
    old_zd = zendesk_headers(zd, stamp="2020-01-01T00:00:00Z")
    assert client.post("/webhooks/zendesk", content=zd, headers=old_zd).status_code == 400
    url = "http://127.0.0.1/webhooks/hubspot"
    hs = b'[{"eventId": 1, "subscriptionType": "deal.creation"}]'
    old = hubspot_headers(url, hs, ms=int((time.time() - 600) * 1000))
    assert client.post("/webhooks/hubspot", content=hs, headers=old).status_code == 400
    wrong_uri = hubspot_headers("http://127.0.0.1/webhooks/other", hs)
    assert client.post("/webhooks/hubspot", content=hs, headers=wrong_uri).status_code == 400
    assert inbox(path) == []  # nothing refused was stored
    broken = b'{"id": "evt_y", "type": '
    answer = client.post("/webhooks/stripe", content=broken, headers=stripe_headers(broken))
    assert answer.status_code == 400 and "malformed" in answer.json()["error"]
    rows = inbox(path)
    assert len(rows) == 1 and rows[0][0] == "stripe" and rows[0][3] == "rejected"
    seen = counters(path)
    assert seen[("stripe", "refused")] == 3 and seen[("stripe", "too_large")] == 1
    assert seen[("zendesk", "refused")] == 2 and seen[("hubspot", "refused")] == 2
    assert all(s not in caplog.text for s in SECRETS.values())
    assert client.post("/webhooks/nowhere", content=body).status_code == 404
    assert client.post("/webhooks/builtwith", content=body).status_code == 404


def test_unknown_event_types_are_stored_and_ignored(env):
    client, path = env
    body = stripe_event("evt_u", "issuing_card.created")
    answer = client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
    assert answer.status_code == 200 and answer.json()["ignored"] == 1
    assert inbox(path) == [("stripe", "evt_u", "issuing_card.created", "ignored")]
    assert counters(path)[("stripe", "unknown")] == 1


def test_a_burst_is_processed_with_few_syncs_and_no_loss(tmp_path, monkeypatch):
    from hub.sandbox.world import build_sandbox
    from hub.web import WebOptions, create_app
    from hub.web.worker import WebhookWorker

    path = str(tmp_path / "hub.db")
    Store(path).close()
    config = make_config(path, monkeypatch)
    sandbox = build_sandbox(companies=10, seed=5)
    app = create_app(WebOptions(db_path=path, config=config, worker=False))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for i in range(1000):
            body = stripe_event(f"evt_{i:04d}")
            answer = client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
            assert answer.status_code == 200
        runs = client.get("/runs").text
        assert "Webhook deliveries" in runs and '<td class="num">1000</td>' in runs
    worker = WebhookWorker(path, config, transport=sandbox.transport(), debounce=0)
    assert worker.drain() is False
    assert worker.runs == 1
    statuses = {row[3] for row in inbox(path)}
    assert statuses == {"processed"} and len(inbox(path)) == 1000
    conn = sqlite3.connect(path)
    synced = {
        (connection, stream)
        for connection, stream in conn.execute(
            "SELECT connection, stream FROM _hub_runs WHERE kind='sync'"
        )
    }
    # invoice.payment_failed touches Stripe's invoices and charges (and its events log, which
    # replays them): nothing else of Stripe's, and no other connection, is synced.
    assert synced == {("stripe", "events"), ("stripe", "invoices"), ("stripe", "charges")}
    assert worker.last_streams == {"stripe": ["charges", "events", "invoices"]}
    assert conn.execute("SELECT COUNT(*) FROM raw_stripe_invoices").fetchone()[0]


def _hub() -> list[str]:
    exe = Path(sys.executable).with_name("hub")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hub"]


def _serve(cfg: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "COLUMNS": "300", "TERM": "dumb"}
    proc = subprocess.Popen(
        [*_hub(), "-c", str(cfg), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "hub serve: http://" in line:
            return proc, line.split("hub serve: ", 1)[1].split()[0].rstrip("/")
    raise AssertionError(f"hub serve exited with {proc.wait()}")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_a_delivery_answered_2xx_survives_sigkill(tmp_path, monkeypatch):
    from hub.sandbox.world import build_sandbox
    from hub.testing import hub_toml

    sandbox = build_sandbox(companies=10, seed=4)
    server = sandbox.serve()
    monkeypatch.setenv("HUB_TEST_WH_STRIPE", SECRETS["stripe"])
    cfg = tmp_path / "hub.toml"

    def write(debounce: float) -> None:
        hub_toml(
            cfg,
            server.url,
            ["stripe"],
            settings={"stripe": {"requests_per_second": 100}},
            extra=f"[webhooks]\ndebounce_seconds = {debounce}\n"
            '[webhooks.secrets]\nstripe = "env:HUB_TEST_WH_STRIPE"',
        )

    db = tmp_path / "hub.db"
    try:
        write(60)  # the worker would wait a minute: the kill comes first
        proc, url = _serve(cfg)
        body = stripe_event("evt_kill")
        answer = httpx.post(f"{url}/webhooks/stripe", content=body, headers=stripe_headers(body))
        assert answer.status_code == 200
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert inbox(str(db)) == [("stripe", "evt_kill", "invoice.payment_failed", "pending")]
        write(0)
        proc, url = _serve(cfg)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and inbox(str(db))[0][3] != "processed":
                time.sleep(0.3)
            assert inbox(str(db))[0][3] == "processed"
            assert "processed" in httpx.get(f"{url}/runs").text
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        server.stop() if hasattr(server, "stop") else server.shutdown()


def test_hub_status_shows_deliveries(env):
    from click.testing import CliRunner

    from hub.cli import cli

    client, path = env
    body = stripe_event("evt_s")
    assert (
        client.post("/webhooks/stripe", content=body, headers=stripe_headers(body)).status_code
        == 200
    )
    forged = stripe_headers(body, secret="whsec_wrong")
    assert client.post("/webhooks/stripe", content=body, headers=forged).status_code == 400
    result = CliRunner().invoke(cli, ["--db", path, "status", "--json"])
    hooks = json.loads(result.output)["webhooks"]
    assert hooks[0]["connection"] == "stripe" and hooks[0]["pending"] == 1
    assert hooks[0]["refused_total"] == 1 and hooks[0]["received_total"] == 1
    text = CliRunner().invoke(cli, ["--db", path, "status"], env={"COLUMNS": "200"}).output
    assert "Webhook deliveries" in text


def test_a_typo_in_webhooks_fails_at_start(tmp_path, monkeypatch):
    from hub.errors import ConfigError
    from hub.web import WebOptions, create_app

    path = str(tmp_path / "hub.db")
    Store(path).close()
    with pytest.raises(ConfigError, match="webhooks.debounce"):
        create_app(WebOptions(db_path=path, config=make_config(path, monkeypatch, debounce=3)))


def test_webhooks_only_serves_receivers_and_no_page(tmp_path, monkeypatch):
    from hub.web import WebOptions, check_bind, create_app

    path = str(tmp_path / "hub.db")
    Store(path).close()
    config = make_config(path, monkeypatch)
    check_bind("0.0.0.0", None, webhooks_only=True)  # signatures authenticate, no token
    app = create_app(WebOptions(db_path=path, config=config, worker=False, webhooks_only=True))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/").status_code == 404
        assert client.get("/accounts").status_code == 404
        body = stripe_event("evt_only")
        assert (
            client.post("/webhooks/stripe", content=body, headers=stripe_headers(body)).status_code
            == 200
        )


def test_hub_run_picks_up_deliveries_while_it_holds_the_lock(tmp_path, monkeypatch):
    from hub.sandbox.world import build_sandbox
    from hub.scheduler import HubScheduler
    from hub.store.webhooks import store_deliveries

    path = str(tmp_path / "hub.db")
    config = make_config(path, monkeypatch)
    sandbox = build_sandbox(companies=8, seed=6)
    store = Store(path)
    scheduler = HubScheduler(store, config, transport=sandbox.transport())
    scheduler.start(run_now=False)  # holds the database lock, next runs 30 minutes away
    try:
        writer = Store(path)
        store_deliveries(writer, "stripe", [("evt_sched", "invoice.paid", "pending")], "{}")
        writer.close()
        deadline = time.time() + 30
        while time.time() < deadline and inbox(path)[0][3] != "processed":
            time.sleep(0.2)
        assert inbox(path) == [("stripe", "evt_sched", "invoice.paid", "processed")]
        conn = sqlite3.connect(path)
        streams = {
            stream
            for (stream,) in conn.execute(
                "SELECT stream FROM _hub_runs WHERE kind='sync' AND connection='stripe'"
            )
        }
        assert streams == {"events", "invoices", "charges"}  # what invoice.paid touches
        assert not conn.execute(
            "SELECT COUNT(*) FROM _hub_runs WHERE kind='sync' AND connection='zendesk'"
        ).fetchone()[0]
    finally:
        scheduler.stop()
        store.close()
