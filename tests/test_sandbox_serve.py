"""Serving the sandbox to any client: HTTP details, a running clock, faults and a ready config."""

from __future__ import annotations

import http.client
import json
import os
import queue
import subprocess
import sys
import threading
import time

import httpx
import pytest
import tomllib

from hub.cli.sandbox import parse_fault
from hub.config import parse_config
from hub.errors import ConfigError
from hub.sandbox.config import config_toml
from hub.sandbox.world import CREDENTIALS, build_sandbox

STRIPE = (CREDENTIALS["stripe"]["api_key"], "")
HUBSPOT = {"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"}


@pytest.fixture(scope="module")
def served():
    sandbox = build_sandbox(companies=15, seed=2)
    server = sandbox.serve()
    yield sandbox, server
    server.stop()


def test_head_chunked_bodies_and_expect_continue(served):
    sandbox, server = served
    host, port = server.server_address[:2]
    head = httpx.head(f"{server.url}/v1/customers", auth=STRIPE, timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0  # what GET would send
    conn = http.client.HTTPConnection(host, port, timeout=10)
    auth = httpx.BasicAuth(*STRIPE)._auth_header
    conn.putrequest("POST", "/v1/customers")
    conn.putheader("Authorization", auth)
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.putheader("Expect", "100-continue")
    conn.endheaders()
    for piece in (b"email=chunky%40", b"example.com&name=Chunky"):
        conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    conn.send(b"0\r\n\r\n")
    response = conn.getresponse()
    body = json.loads(response.read())
    assert response.status == 200, body
    assert body["email"] == "chunky@example.com" and body["name"] == "Chunky"
    # The connection is still usable (the body was read whole).
    conn.request("GET", "/v1/customers?limit=1", headers={"Authorization": auth})
    assert conn.getresponse().status == 200
    conn.close()


def test_control_endpoint_injects_lists_and_clears_faults(served):
    sandbox, server = served
    http = httpx.Client(base_url=server.url, timeout=10)
    made = http.post(
        "/__sandbox/faults",
        json={"api": "hubspot", "kind": "429", "count": 2, "params": {"retry_after": 1}},
    )
    assert made.status_code == 201
    assert [f["kind"] for f in http.get("/__sandbox/faults").json()["faults"]] == ["429"]
    limited = http.get("/crm/v3/objects/companies", headers=HUBSPOT)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    http.delete("/__sandbox/faults")
    assert http.get("/__sandbox/faults").json() == {"faults": []}
    assert http.get("/crm/v3/objects/companies", headers=HUBSPOT).status_code == 200
    bad = http.post("/__sandbox/faults", json={"api": "nope", "kind": "500"})
    assert bad.status_code == 400 and "no sandbox API" in bad.json()["message"]
    typo = http.post("/__sandbox/faults", json={"api": "stripe", "kind": "42"})
    assert typo.status_code == 400 and "cursor_expired" in typo.json()["message"]
    before = http.get("/__sandbox/clock").json()["now"]
    after = http.post("/__sandbox/advance", params={"days": 1}).json()["now"]
    assert after[:10] > before[:10]


def test_a_running_clock_gives_writes_fresh_timestamps_seen_incrementally():
    sandbox = build_sandbox(companies=10, seed=5)
    sandbox.world.clock.run()
    http = httpx.Client(
        transport=sandbox.transport(), base_url="https://api.hubapi.com", headers=HUBSPOT
    )
    company = http.get("/crm/v3/objects/companies", params={"limit": 1}).json()["results"][0]
    bookmark = sandbox.world.now()
    time.sleep(0.05)
    http.patch(
        f"/crm/v3/objects/companies/{company['id']}", json={"properties": {"city": "Lisbon"}}
    )
    since = int(bookmark.timestamp() * 1000)
    found = http.post(
        "/crm/v3/objects/companies/search",
        json={
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": since}
                    ]
                }
            ]
        },
    ).json()
    assert [r["id"] for r in found["results"]] == [company["id"]]
    assert sandbox.world.now() > bookmark


def test_fault_specs_and_the_printed_config():
    assert parse_fault("hubspot:429:count=20:retry_after=2") == {
        "api": "hubspot",
        "kind": "429",
        "count": 20,
        "params": {"retry_after": 2.0},
    }
    spec = parse_fault("hubspot:403:/crm/v3/objects/tasks:method=post:scopes=a.b,c.d")
    assert spec["path"] == "/crm/v3/objects/tasks" and spec["method"] == "POST"
    assert spec["params"] == {"scopes": ["a.b", "c.d"]} and spec["count"] == -1
    with pytest.raises(ConfigError):
        parse_fault("hubspot")
    text = config_toml("http://127.0.0.1:9999", ["acme"])
    data = tomllib.loads(text)
    config = parse_config(data)  # a config the hub accepts as it is
    assert data["connections"]["stripe"]["settings"]["base_url"] == "http://127.0.0.1:9999"
    assert set(data["connections"]) == {"stripe", "hubspot", "zendesk", "builtwith"}
    assert "acme" in text and config is not None


def test_stripe_account_versions_and_includable_lists(served):
    sandbox, server = served
    http = httpx.Client(base_url=server.url, auth=STRIPE, timeout=10)
    account = http.get("/v1/account").json()
    assert account["object"] == "account" and account["id"].startswith("acct_")
    assert http.get(f"/v1/accounts/{account['id']}").json()["id"] == account["id"]
    assert http.get("/v1/accounts/acct_other").status_code == 404
    bad = http.get("/v1/customers", headers={"Stripe-Version": "1999-01-01"})
    assert bad.status_code == 400 and "Invalid Stripe API version" in bad.json()["error"]["message"]
    assert http.get("/v1/customers", headers={"Stripe-Version": "2020-08-27"}).status_code == 200
    listed = http.get(
        "/v1/customers",
        params={"expand[]": ["data.sources", "data.subscriptions", "data.tax_ids"], "limit": 3},
    )
    assert listed.status_code == 200
    for customer in listed.json()["data"]:
        assert customer["sources"]["object"] == "list" and customer["tax_ids"]["data"] == []
        assert all(s["customer"] == customer["id"] for s in customer["subscriptions"]["data"])


def test_serve_prints_a_config_and_applies_command_line_faults(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1", HUB_LOAD_PLUGINS="")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--companies",
            "5",
            "--print-config",
            "--fault",
            "stripe:500:/v1/charges:count=1",
        ],  # fmt: skip
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
        text, deadline = "", time.monotonic() + 60
        while '[push.hubspot]\nconnection = "hubspot"' not in text and time.monotonic() < deadline:
            try:
                text += lines.get(timeout=1)
            except queue.Empty:
                continue
        data = tomllib.loads(text)
        url = data["connections"]["stripe"]["settings"]["base_url"]
        assert httpx.get(f"{url}/v1/charges", auth=STRIPE).status_code == 500
        assert httpx.get(f"{url}/v1/charges", auth=STRIPE).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_an_edit_through_the_api_is_seen_by_the_next_incremental_sync(api_env):
    from connectors.hubspot import HubSpotConnector
    from hub.http.ratelimit import reset_shared_limiters
    from hub.sandbox.hubspot import HubSpotAPI
    from hub.sync import sync_connection

    sandbox, api, store = api_env(HubSpotAPI, companies=30, seed=2)
    sandbox.world.clock.run()  # as `hub sandbox serve` does

    def sync() -> None:
        reset_shared_limiters()
        connector = HubSpotConnector(
            {"access_token": HUBSPOT["Authorization"][7:]}, connection="hs"
        )
        results = sync_connection(
            store, connector, transport=sandbox.transport(), sleep=lambda s: None
        )
        assert all(r.status == "ok" for r in results), [r.error for r in results]

    sync()
    http = httpx.Client(
        transport=sandbox.transport(), base_url="https://api.hubapi.com", headers=HUBSPOT
    )
    company = http.get("/crm/v3/objects/companies", params={"limit": 1}).json()["results"][0]
    time.sleep(0.01)
    http.patch(
        f"/crm/v3/objects/companies/{company['id']}",
        json={"properties": {"name": "Renamed by a CSM"}},
    )
    sync()  # incremental: no full refresh
    row = {r["id"]: r for r in store.raw_rows("raw_hs_companies")}[company["id"]]
    data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
    assert data["properties"]["name"] == "Renamed by a CSM"


def test_a_bug_in_a_fake_answers_500_instead_of_hanging_up(served, monkeypatch):
    sandbox, server = served

    def broken(request, **kwargs):
        raise KeyError("a bug")

    stripe = sandbox.api("stripe")
    monkeypatch.setattr(
        stripe,
        "_routes",
        [(m, p, n, broken if n == "list_charges" else h) for m, p, n, h in stripe._routes],
    )
    response = httpx.get(f"{server.url}/v1/charges", auth=STRIPE, timeout=10)
    assert response.status_code == 500 and "KeyError" in response.json()["message"]


def test_a_lazy_sandbox_seeds_on_demand_into_the_same_world():
    eager = build_sandbox(companies=12, seed=4)
    lazy = build_sandbox(companies=12, seed=4, lazy=True)
    assert not any(api.seeded.is_set() for api in lazy.apis.values())

    def get(sandbox, url, **kw):
        client = httpx.Client(transport=sandbox.transport(), base_url="https://api.example")
        return client.get(url, **kw).json()

    # Stripe asked first: only Stripe is seeded, and its records are the eager world's.
    url = "/v1/invoices?limit=100"
    assert get(lazy, url, auth=STRIPE) == get(eager, url, auth=STRIPE)
    assert lazy.api("stripe").seeded.is_set() and not lazy.api("hubspot").seeded.is_set()
    url = "/crm/v3/objects/contacts?limit=100"
    assert get(lazy, url, headers=HUBSPOT) == get(eager, url, headers=HUBSPOT)
    # A day's activity needs every fake: advancing seeds the rest first.
    lazy.start_seeding().join(timeout=60)
    assert all(api.seeded.is_set() for api in lazy.apis.values())


def _raw_exchange(server, payload: bytes) -> bytes:
    """Send raw bytes, read until the server hangs up (or 5 s)."""
    import socket

    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def test_protocol_errors_answer_and_hang_up_and_http_1_0_closes(served):
    sandbox, server = served
    bad = _raw_exchange(server, b"NONSENSE\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400 ") and b"connection: close" in bad
    unknown = _raw_exchange(server, b"OPTIONS /v1/customers HTTP/1.1\r\nHost: x\r\n\r\n")
    assert unknown.startswith(b"HTTP/1.1 501 ") and b"OPTIONS" in unknown
    folded = _raw_exchange(server, b"GET /v1/customers HTTP/1.1\r\nHost x\r\n\r\n")
    assert folded.startswith(b"HTTP/1.1 400 ")
    bad_length = b"POST /v1/customers HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n"
    assert _raw_exchange(server, bad_length).startswith(b"HTTP/1.1 400 ")
    # HTTP/1.0 without keep-alive: one answer, then the server closes (recv returns).
    auth = httpx.BasicAuth(*STRIPE)._auth_header
    old = f"GET /v1/customers?limit=1 HTTP/1.0\r\nAuthorization: {auth}\r\n\r\n".encode()
    answer = _raw_exchange(server, old)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1 ") == 1
    # Two pipelined HTTP/1.1 requests on one connection, the last asking to close.
    two = (
        f"GET /v1/customers?limit=1 HTTP/1.1\r\nHost: a\r\nAuthorization: {auth}\r\n\r\n"
        f"GET /v1/customers?limit=2 HTTP/1.1\r\nHost: a\r\nAuthorization: {auth}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    assert _raw_exchange(server, two).count(b"HTTP/1.1 200 ") == 2


def test_request_urls_are_the_ones_httpx_parses():
    from hub.sandbox.serving import request_url

    targets = [
        "/v1/invoices",
        "/v1/invoices?",
        "/v1/invoices?limit=100&starting_after=in_ABC0000000001",
        "/v22/api.json?KEY=0000&LOOKUP=a.com%2Cb.com%2cc.com&NOMETA=yes",
        "/crm/v3/objects/contacts?properties=email,firstname&archived=false&x=a:b/c?d",
        "/v1/customers?email=j%40x.com&expand[]=data.sources&expand%5B%5D=data.tax_ids",
        "/v1/customers?email=odd%ZZ&q=100%",
        '/v1/customers?q=with space&r="quoted"&s=<tag>',  # not kept as is: parsed whole
        "/v1/customers?q=caf\u00e9",
        "/a/./b/../c?x=1",
        "/p#frag?x",
    ]
    for target in targets:
        fast = request_url("127.0.0.1:8111", target)
        slow = httpx.URL(f"http://127.0.0.1:8111{target}")
        assert (str(fast), fast.raw_path, fast.path) == (str(slow), slow.raw_path, slow.path)
        assert list(fast.params.multi_items()) == list(slow.params.multi_items()), target
    with pytest.raises(httpx.InvalidURL):
        request_url("127.0.0.1:8111", "/p?x=\x01")


def test_serve_warms_stripe_up_in_the_background_after_seeding():
    env = dict(os.environ, PYTHONUNBUFFERED="1", HUB_LOAD_PLUGINS="", COLUMNS="200")
    cmd = [sys.executable, "-m", "hub", "sandbox", "serve", "--port", "0", "--companies", "40"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
        text, deadline = "", time.monotonic() + 60
        while "warmed up" not in text and time.monotonic() < deadline:
            try:
                text += lines.get(timeout=1)
            except queue.Empty:
                continue
        assert "Stripe warmed up: 40 companies' records generated in" in text, text
        url = text.split(" at ", 1)[1].split()[0]
        listed = httpx.get(f"{url}/v1/invoices", params={"limit": 3}, auth=STRIPE).json()
        assert len(listed["data"]) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=20)
