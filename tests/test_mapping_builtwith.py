"""BuiltWith mapping: raw domain rows from a real sync → widget and competitor events, facts."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from connectors.builtwith import BuiltWithConnector
from hub import clock
from hub.errors import ConfigError
from hub.sandbox.base import COMPETITORS, OUR_TECHNOLOGY, Sandbox
from hub.sandbox.builtwith import BuiltWithAPI
from hub.sandbox.world import CREDENTIALS, World, advance
from hub.store import RawRecord, Store
from hub.sync import sync_connection
from hub.timeline import MappingContext
from mappings.builtwith import BuiltWithMapping
from mappings.builtwith import register_mappings as register_hook

DAY = dt.timedelta(days=1)


@pytest.fixture()
def env():
    world = World(companies=150, seed=21)
    sandbox = Sandbox(world)
    api = sandbox.add(BuiltWithAPI(sandbox))
    api.seed()
    clock.set_source(world.clock.now)
    store = Store(":memory:")
    domains = sorted({c.domain for c in world.companies})
    store.db["accounts"].insert_all([{"id": d, "domain": d} for d in domains], pk="id")
    yield sandbox, api, store
    clock.set_source(None)
    store.close()


def sync(sandbox: Sandbox, store: Store) -> None:
    settings = {"api_key": CREDENTIALS["builtwith"]["api_key"], "requests_per_second": 1000}
    conn = BuiltWithConnector(settings, connection="builtwith")
    (result,) = sync_connection(store, conn, transport=sandbox.transport(), sleep=lambda s: None)
    assert result.status == "ok", result.error


CONFIGURED = {"our_technologies": [OUR_TECHNOLOGY], "competitors": COMPETITORS}


def map_all(store: Store, settings: dict | None = None) -> MappingContext:
    mapping = BuiltWithMapping()
    ctx = MappingContext(
        store=store, connection="builtwith", mapping=mapping, settings=settings or CONFIGURED
    )
    mapping.map_rows(ctx, "domains", list(store.raw_rows("raw_builtwith_domains")))
    ctx.flush()
    return ctx


def events(store: Store, domain: str | None = None) -> list[dict]:
    rows = list(store.db.query("SELECT * FROM events WHERE source = 'builtwith' ORDER BY id"))
    if domain:
        rows = [r for r in rows if json.loads(r["attrs"])["domain"].endswith(domain)]
    return rows


def facts(store: Store, domain: str) -> dict:
    row = store.db.execute(
        "SELECT facts FROM entities WHERE key = ?", [f"builtwith:domain:{domain}"]
    ).fetchone()
    return json.loads(row[0])


def owner_of(world: World) -> dict[str, object]:
    out = {}
    for company in world.companies:
        out.setdefault(company.domain, company)
    return out


def test_seeded_world_becomes_the_expected_timeline(env):
    sandbox, api, store = env
    world = sandbox.world
    sync(sandbox, store)
    map_all(store)
    now = world.now()
    checked = {"present": 0, "removed": 0, "competitor": 0}
    for domain, company in owner_of(world).items():
        types = {e["type"] for e in events(store, domain)}
        fact = facts(store, domain)
        if company.uses_widget:
            assert "widget_detected" in types and "widget_removed" not in types
            assert fact["widget_present"] is True
            checked["present"] += 1
        elif company.archetype == "churned":
            assert {"widget_detected", "widget_removed"} <= types
            removed = next(e for e in events(store, domain) if e["type"] == "widget_removed")
            assert now - clock.parse(removed["ts"]) >= 14 * DAY
            assert fact["widget_present"] is False
            checked["removed"] += 1
        if company.competitor:
            detected = [e for e in events(store, domain) if e["type"] == "competitor_detected"]
            recent = [
                e for e in detected if json.loads(e["attrs"])["technology"] == company.competitor
            ]
            assert recent and now - clock.parse(recent[0]["ts"]) <= 61 * DAY
            assert company.competitor in fact["competitors"]
            checked["competitor"] += 1
        else:
            assert fact["competitors"] == []
    assert all(checked.values()), checked
    sample = events(store)[0]
    assert sample["id"].startswith("builtwith:") and sample["summary"] and sample["link"]


def test_mapping_is_idempotent(env):
    sandbox, _, store = env
    sync(sandbox, store)
    map_all(store)
    first = [(e["id"], e["ts"], e["summary"]) for e in events(store)]
    map_all(store)
    assert [(e["id"], e["ts"], e["summary"]) for e in events(store)] == first


def test_changes_after_a_month_show_up_and_match_the_fake(env):
    sandbox, api, store = env
    world = sandbox.world
    sync(sandbox, store)
    map_all(store)
    before = {e["id"] for e in events(store)}
    advance(sandbox, 30)
    sync(sandbox, store)  # freshness window has passed: everything looked up again
    map_all(store)
    new = [e for e in events(store) if e["id"] not in before]
    assert any(e["type"] == "widget_removed" for e in new) or any(
        e["type"] == "competitor_detected" for e in new
    )
    now_ms = world.now().timestamp() * 1000
    for domain in owner_of(world):
        truth = api.technologies(domain)
        seen = any(
            t["name"] == OUR_TECHNOLOGY and now_ms - t["last_detected"] <= 7 * 86_400_000
            for t in truth
        )
        assert facts(store, domain)["widget_present"] == seen, domain


def test_seen_again_retracts_the_removal(env):
    _, _, store = env
    now = clock.now()
    ms = lambda moment: int(moment.timestamp() * 1000)  # noqa: E731
    tech = {
        "name": OUR_TECHNOLOGY,
        "parent": None,
        "subdomain": "",
        "ours": True,
        "competitor": False,
        "first_detected": ms(now - 90 * DAY),
        "last_detected": ms(now - 20 * DAY),
    }
    row = {"domain": "acme.example", "looked_up_at": clock.iso(now), "technologies": [tech]}
    store.write_page("builtwith", "domains", [RawRecord("acme.example", row)], None)
    map_all(store)
    assert [e["type"] for e in events(store)] == ["widget_detected", "widget_removed"]
    tech["last_detected"] = ms(now - DAY)
    store.write_page("builtwith", "domains", [RawRecord("acme.example", row)], None)
    map_all(store)
    assert [e["type"] for e in events(store)] == ["widget_detected"]
    assert facts(store, "acme.example")["widget_present"] is True
    # A tombstoned row takes its events with it.
    store.write_page("builtwith", "domains", [RawRecord("acme.example", row, deleted=True)], None)
    map_all(store)
    assert events(store) == []


def test_settings_override_which_technologies_count(env):
    sandbox, _, store = env
    sync(sandbox, store)
    settings = {"competitors": ["Cloudflare"], "our_technologies": ["Not ours"], "current_days": 3}
    map_all(store, settings)
    competitor = {
        json.loads(e["attrs"])["technology"]
        for e in events(store)
        if e["type"].startswith("competitor")
    }
    assert competitor == {"Cloudflare"}
    assert not any(e["type"].startswith("widget") for e in events(store))


def test_our_technologies_is_required_and_typos_are_named(env):
    sandbox, _, store = env
    sync(sandbox, store)
    with pytest.raises(ConfigError, match="our_technologies is required"):
        map_all(store, {"competitors": ["Intercom"]})
    with pytest.raises(ConfigError, match="unknown key timeline.builtwith.competitor"):
        map_all(store, {"our_technologies": ["X"], "competitor": ["Intercom"]})


def test_hook_registers_the_mapping():
    seen = []
    register_hook(seen.append)
    assert seen == [BuiltWithMapping]
    assert BuiltWithMapping.connector == "builtwith" and BuiltWithMapping.streams == ["domains"]
