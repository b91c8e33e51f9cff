"""Zendesk mapping: raw rows from a real sync of the fake → entities, links and events."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from connectors.zendesk import ZendeskConnector
from hub.http.ratelimit import reset_shared_limiters
from hub.sandbox.base import Sandbox
from hub.sandbox.world import CREDENTIALS, advance
from hub.sandbox.zendesk import ZendeskAPI
from hub.store import RawRecord, Store
from hub.sync import sync_connection
from hub.timeline import MappingContext
from mappings.zendesk import ZendeskMapping
from mappings.zendesk import register_mappings as register_hook
from tests.helpers import seed_hubspot_roots

CREDS = CREDENTIALS["zendesk"]
STREAMS = ZendeskMapping.streams


@pytest.fixture()
def env(api_env):
    return api_env(ZendeskAPI, companies=120, seed=13)


def sync(sandbox: Sandbox, store: Store) -> None:
    settings = {
        "subdomain": CREDS["subdomain"],
        "email": CREDS["email"],
        "api_token": CREDS["api_token"],
        "incremental_per_minute": 100_000,
    }
    conn = ZendeskConnector(settings, connection="zendesk")
    reset_shared_limiters()
    results = sync_connection(store, conn, transport=sandbox.transport(), sleep=lambda s: None)
    assert all(r.status == "ok" for r in results), [r.error for r in results]


def map_new(
    store: Store, since: dict[str, int] | None = None, settings: dict | None = None
) -> MappingContext:
    """Map rows above ``since`` (per stream, updated in place), like run_mappings does."""
    mapping = ZendeskMapping()
    ctx = MappingContext(
        store=store, connection="zendesk", mapping=mapping, settings=settings or {}
    )
    since = since if since is not None else {}
    for stream in STREAMS:
        rows = list(store.raw_rows(f"raw_zendesk_{stream}", since_seq=since.get(stream, 0)))
        if rows:
            mapping.map_rows(ctx, stream, rows)
            ctx.flush()
            since[stream] = max(r["seq"] for r in rows)
    return ctx


def events(store: Store) -> list[dict]:
    return list(
        store.db.query("SELECT id, entity, ts, type, summary, attrs, link FROM events ORDER BY id")
    )


def by_type(store: Store) -> Counter:
    return Counter(e["type"] for e in events(store))


def test_seeded_world_becomes_the_expected_timeline(env):
    sandbox, api, store = env
    sync(sandbox, store)
    ctx = map_new(store)
    assert not ctx.skipped
    tickets = list(api.tickets.values())
    solved = [t for t in tickets if t.status in ("solved", "closed")]
    counts = by_type(store)
    assert counts["ticket_opened"] == len(tickets)
    assert counts["ticket_solved"] == len(solved)
    assert counts["ticket_reopened"] == sum(1 for t in tickets if t.reopens)
    assert counts["ticket_urgent"] == sum(
        1 for t in tickets if t.priority == "urgent" or "escalated" in t.tags
    )
    assert counts["csat_good"] == sum(1 for r in api.ratings.values() if r.score == "good")
    assert counts["csat_bad"] == sum(1 for r in api.ratings.values() if r.score == "bad")

    # Resolution hours follow the archetypes: at-risk customers wait days, healthy ones hours.
    hours: dict[str, list[float]] = {}
    world = sandbox.world
    for e in events(store):
        if e["type"] == "ticket_solved":
            ticket = api.tickets[json.loads(e["attrs"])["ticket_id"]]
            hours.setdefault(world.companies[ticket.company_key].archetype, []).append(
                json.loads(e["attrs"])["resolution_hours"]
            )
    assert min(hours["at_risk"]) > 48 and max(hours["healthy"]) < 24

    one = next(e for e in events(store) if e["type"] == "ticket_solved")
    ticket = api.tickets[json.loads(one["attrs"])["ticket_id"]]
    assert one["entity"] == f"zendesk:organization:{ticket.org_id}"
    assert one["link"] == f"https://sandbox.zendesk.com/agent/tickets/{ticket.id}"
    assert f"#{ticket.id} solved in " in one["summary"]


def test_organizations_link_by_external_id_domain_or_not_at_all(env):
    sandbox, api, store = env
    sync(sandbox, store)
    map_new(store)
    # Stand-in HubSpot roots (the HubSpot mapping's job), then identity resolution.
    world = sandbox.world
    seed_hubspot_roots(store, world, ZendeskMapping())
    links = {
        r["entity"]: r
        for r in store.db.query("SELECT * FROM account_links WHERE source = 'zendesk'")
    }
    checked = Counter()
    for c in world.companies:
        key = f"zendesk:organization:{api.organization_for(c.key)['id']}"
        link = links.get(key)
        if c.traps & {"archived", "duplicate_domain"}:
            continue  # identity reports these instead of linking
        if c.merged_into is not None and c.zendesk_link == "domain":
            continue  # the merged-away company's domain is no live account's (identity's rule)
        if c.zendesk_link == "external_id":
            target = (
                world.companies[c.merged_into].hubspot_id
                if c.merged_into is not None
                else c.hubspot_id
            )
            assert link and link["method"] == "explicit_id" and link["account_id"] == target
        elif c.zendesk_link == "domain":
            assert link and link["method"] == "domain" and link["account_id"] == c.hubspot_id
        else:
            assert link is None  # reported as unmatched, never guessed
        checked[c.zendesk_link] += 1
    assert set(checked) == {"external_id", "domain", "none"}


def test_incremental_mapping_equals_a_full_rebuild(env):
    sandbox, api, store = env
    sync(sandbox, store)
    since: dict[str, int] = {}
    map_new(store, since)
    for _ in range(3):
        advance(sandbox, 2)
        sync(sandbox, store)
        map_new(store, since)
    incremental = events(store)
    store.db.execute("DELETE FROM events")
    store.db.execute("DELETE FROM entities")
    map_new(store)
    assert events(store) == incremental
    # Mapping the same rows again changes nothing.
    map_new(store)
    assert events(store) == incremental


def test_reopen_priority_change_and_deletion_move_events(env):
    sandbox, api, store = env
    sync(sandbox, store)
    since: dict[str, int] = {}
    map_new(store, since)
    ticket = next(
        t
        for t in api.tickets.values()
        if t.status == "solved" and not t.reopens and t.priority != "urgent"
    )
    tid = ticket.id
    assert f"zendesk:ticket_solved:{tid}" in {e["id"] for e in events(store)}
    sandbox.world.clock.advance(600)
    api.update_ticket(
        tid, at=sandbox.world.clock.ts() - 300, status="open", reopens=1, priority="urgent"
    )
    sync(sandbox, store)
    map_new(store, since)
    ids = {e["id"]: e for e in events(store)}
    assert f"zendesk:ticket_solved:{tid}" not in ids
    assert f"zendesk:ticket_reopened:{tid}" in ids
    assert "is urgent" in ids[f"zendesk:ticket_urgent:{tid}"]["summary"]

    # A deleted ticket takes its events with it.
    store.write_page(
        "zendesk",
        "tickets",
        [RawRecord(id=str(tid), data={"id": tid, "status": "deleted"}, deleted=True)],
        None,
    )
    map_new(store, since)
    assert not [e for e in events(store) if e["id"].endswith(f":{tid}") and "ticket_" in e["id"]]


def test_csat_score_flip_and_hostile_text(env):
    sandbox, api, store = env
    ctx = MappingContext(store=store, connection="zendesk", mapping=ZendeskMapping())
    org_less = {
        "id": 77,
        "role": "end-user",
        "email": "pat@acme-corp.example",
        "organization_id": None,
        "name": "Pat",
    }
    ticket = {
        "id": 501,
        "url": "https://acme.zendesk.com/api/v2/tickets/501.json",
        "subject": "Broken\nagain;\tDROP TABLE events",
        "status": "open",
        "priority": "normal",
        "tags": ["Escalated"],
        "requester_id": 77,
        "organization_id": None,
        "created_at": "2026-10-01T10:00:00Z",
        "updated_at": "2026-10-01T11:00:00Z",
        "via": "email",
        "metric_set": None,
    }
    store.write_page("zendesk", "users", [RawRecord(id="77", data=org_less)], None)
    store.write_page("zendesk", "tickets", [RawRecord(id="501", data=ticket)], None)
    rating = {
        "id": 9,
        "ticket_id": 501,
        "requester_id": 77,
        "score": "good",
        "comment": "Fine\nthanks",
        "created_at": "2026-10-02T09:00:00Z",
    }
    mapping = ZendeskMapping()
    mapping.map_rows(ctx, "users", store.raw_rows("raw_zendesk_users"))
    mapping.map_rows(ctx, "tickets", store.raw_rows("raw_zendesk_tickets"))
    mapping.map_rows(ctx, "satisfaction_ratings", [{"id": "9", "data": rating, "deleted": False}])
    ctx.flush()
    ids = {e["id"]: e for e in events(store)}
    assert ids["zendesk:csat_good:9"]["entity"] == "zendesk:user:77"
    assert ids["zendesk:csat_good:9"]["summary"] == 'CSAT good on ticket #501: "Fine thanks"'
    assert (
        ids["zendesk:ticket_urgent:501"]["summary"]
        == "Ticket #501 is escalated: Broken again; DROP TABLE events"
    )
    assert all("\n" not in e["summary"] for e in ids.values())
    user = store.db.execute("SELECT domains FROM entities WHERE key = 'zendesk:user:77'").fetchone()
    assert json.loads(user[0]) == ["acme-corp.example"]
    # The customer changes their mind.
    mapping.map_rows(
        ctx,
        "satisfaction_ratings",
        [{"id": "9", "data": {**rating, "score": "bad"}, "deleted": False}],
    )
    ctx.flush()
    types = {e["id"] for e in events(store)}
    assert "zendesk:csat_bad:9" in types and "zendesk:csat_good:9" not in types
    # A ticket with a broken timestamp is skipped and reported, the rest still maps.
    bad = {**ticket, "id": 502, "created_at": "not a time"}
    mapping.map_rows(ctx, "tickets", [{"id": "502", "data": bad, "deleted": False}])
    ctx.flush()
    assert any("502" in s for s in ctx.skipped)


def test_settings_change_what_counts_as_urgent(env):
    sandbox, api, store = env
    sync(sandbox, store)
    map_new(store, settings={"urgent_priorities": ["urgent", "high"], "escalation_tags": []})
    expected = sum(1 for t in api.tickets.values() if t.priority in ("urgent", "high"))
    assert by_type(store)["ticket_urgent"] == expected


def test_registration():
    registered = []
    register_hook(registered.append)
    assert registered == [ZendeskMapping]
