"""Honest retries, hostile records and secrets' derived forms, against the sandbox over HTTP.

The sandbox is served on a loopback port (``Sandbox.serve``) and the connectors talk to it
through real sockets; where a test needs an upstream the fakes do not model (a body cut
short, a header echoed back), a transport wraps the real HTTP one and alters the answer.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from typing import Any

import httpx
import pytest

from connectors.builtwith import BuiltWithConnector
from connectors.hubspot import HubSpotConnector
from connectors.stripe import StripeConnector
from connectors.zendesk import ZendeskConnector
from hub import clock
from hub.sandbox.base import Sandbox
from hub.sandbox.builtwith import BuiltWithAPI
from hub.sandbox.hubspot import HubSpotAPI
from hub.sandbox.stripe import StripeAPI
from hub.sandbox.world import CREDENTIALS, World
from hub.sandbox.zendesk import ZendeskAPI
from hub.sync import sync_connection

ZD = CREDENTIALS["zendesk"]


@pytest.fixture()
def served():
    """All four fakes on one loopback port; yields (sandbox, base_url)."""
    world = World(companies=12, seed=3)
    sandbox = Sandbox(world)
    for cls in (ZendeskAPI, StripeAPI, HubSpotAPI, BuiltWithAPI):
        sandbox.add(cls(sandbox)).seed()
    clock.set_source(world.clock.now)
    server = sandbox.serve("127.0.0.1", 0)
    yield sandbox, server.url
    server.shutdown()
    server.server_close()


def make(kind: str, url: str, **extra: Any):
    if kind == "zendesk":
        settings = {
            "subdomain": ZD["subdomain"],
            "email": ZD["email"],
            "api_token": ZD["api_token"],
            "incremental_per_minute": 100_000,
        }
        return ZendeskConnector({**settings, "base_url": url, **extra}, connection="zd")
    if kind == "stripe":
        settings = {"api_key": CREDENTIALS["stripe"]["api_key"], "base_url": url}
        return StripeConnector({**settings, **extra}, connection="st")
    if kind == "hubspot":
        token = CREDENTIALS["hubspot"]["access_token"]
        return HubSpotConnector({"access_token": token, "base_url": url, **extra}, connection="hs")
    key = CREDENTIALS["builtwith"]["api_key"]
    return BuiltWithConnector({"api_key": key, "base_url": url, **extra}, connection="bw")


class Altering(httpx.BaseTransport):
    """The real HTTP transport, with ``alter(request, response)`` free to replace answers."""

    def __init__(self, alter) -> None:
        self.inner = httpx.HTTPTransport()
        self.alter = alter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        return self.alter(request, response) or response


def by_stream(results):
    return {r.stream: r for r in results}


def test_long_retry_after_defers_the_connection_with_a_note(served, store):
    sandbox, url = served
    sandbox.api("zendesk").faults.inject("429", count=-1, retry_after=3600)
    started = time.monotonic()
    results = by_stream(sync_connection(store, make("zendesk", url)))
    assert time.monotonic() - started < 10  # not a silent block of minutes
    assert {r.status for r in results.values()} == {"deferred"}
    assert results["organizations"].requests == 1
    assert all(r.requests == 0 for n, r in results.items() if n != "organizations")
    assert "3600 s (Retry-After)" in results["organizations"].notes[0]
    assert all(
        " ".join(r.notes).count("deferred to the next run") == 1 for r in results.values()
    ), [r.notes for r in results.values()]
    runs = store.runs(kind="sync")
    assert {r["status"] for r in runs} == {"deferred"} and all(r["note"] for r in runs)
    assert not any(r["error"] for r in runs)


def test_stripe_honours_retry_after(served, store):
    sandbox, url = served
    sandbox.api("stripe").faults.inject("429", count=1, retry_after=2, path=r"/v1/events")
    slept: list[float] = []
    results = sync_connection(store, make("stripe", url), sleep=slept.append)
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert 2.0 in slept


def test_html_and_truncated_200_are_retried_then_stored(served, store):
    sandbox, url = served
    bad = {"left": 2}

    def alter(request, response):
        if request.url.path.endswith("/crm/v3/objects/companies") and bad["left"]:
            bad["left"] -= 1
            if bad["left"]:
                return httpx.Response(200, content=b"<html>Gateway</html>", request=request)
            return httpx.Response(200, content=response.content[:40], request=request)
        return None

    connector = make("hubspot", url)
    results = by_stream(
        sync_connection(store, connector, transport=Altering(alter), sleep=lambda s: None)
    )
    assert results["companies"].status == "ok" and results["companies"].retries == 2
    assert len(list(store.raw_rows("raw_hs_companies"))) >= 12


HOSTILE_PATHS = {
    "zendesk": (r"/incremental/tickets/cursor", "tickets"),
    "stripe": (r"/v1/charges$", "data"),
    "hubspot": (r"/crm/v3/objects/contacts$", "results"),
    "builtwith": (r"/api\.json$", "Results"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_PATHS))
def test_hostile_records_in_every_source_are_skipped_and_reported(served, store, kind):
    import re

    sandbox, url = served
    path, key = HOSTILE_PATHS[kind]
    deep = '{"x":' * 5000 + "1" + "}" * 5000
    done = {"once": False}

    def alter(request, response):
        if done["once"] or not re.search(path, request.url.path) or request.method != "GET":
            return None
        body = response.json()
        if not body.get(key):
            return None
        done["once"] = True
        body[key].insert(0, {"name": "[red]no id[/] ACME [/] Holdings"})
        text = json.dumps(body)
        marker = f'"{key}": ['
        hostile = '{"id": "deep-1", "Lookup": "deep.example", "payload": ' + deep + "}, "
        text = text.replace(marker, marker + hostile, 1)
        return httpx.Response(200, content=text.encode(), headers=response.headers, request=request)

    if kind == "builtwith":
        domains = sorted({c.domain for c in sandbox.world.companies})[:5]
        connector = make(kind, url, domains=domains)
    else:
        connector = make(kind, url)
    results = sync_connection(store, connector, transport=Altering(alter), sleep=lambda s: None)
    assert done["once"], "the hostile page was never served"
    failed = {r.stream: r.error for r in results if r.status != "ok"}
    assert not failed, failed
    skipped = sum(r.skipped for r in results)
    assert skipped == 2, {r.stream: r.skipped for r in results}
    notes = " ".join(n for r in results for n in r.notes)
    assert "skipped 2 record(s)" in notes and "record 1" in notes and "record 2" in notes
    assert any(r["note"] and "skipped 2 record(s)" in r["note"] for r in store.runs(kind="sync"))
    assert sum(r.records for r in results) > 2  # the records after them were stored


def test_secrets_derived_forms_never_reach_the_run_record(served, store, caplog):
    sandbox, url = served
    token = ZD["api_token"]
    basic = base64.b64encode(f"{ZD['email']}/token:{token}".encode()).decode()

    def echo(request, response):
        # An upstream (or a proxy) that echoes the request headers in its error body.
        if "organizations" in request.url.path:
            auth = request.headers["authorization"]
            text = f"bad request; got Authorization: {auth}; token={urllib.parse.quote(token)}"
            return httpx.Response(400, json={"error": "Invalid", "description": text})
        return None

    caplog.set_level("DEBUG")
    results = by_stream(
        sync_connection(store, make("zendesk", url), transport=Altering(echo), sleep=lambda s: None)
    )
    assert results["organizations"].status == "error"
    dump = "\n".join(store.db.conn.iterdump())
    for form in (token, basic, urllib.parse.quote(token, safe="")):
        assert form not in dump
        assert form not in (results["organizations"].error or "")
        assert form not in caplog.text
    assert "**********" in results["organizations"].error
