"""HubSpot mapping: rows from a real sync of the HubSpot fake → accounts, facts and events."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from connectors.hubspot import HubSpotConnector
from hub import clock
from hub.sandbox.base import Sandbox
from hub.sandbox.hubspot import HubSpotAPI
from hub.sandbox.world import CREDENTIALS, advance
from hub.store import Store
from hub.sync import sync_connection
from hub.timeline import run_mappings
from mappings.hubspot import HubSpotMapping
from mappings.hubspot import register_mappings as register_hook

CONNECTIONS = {"hubspot": ["hs"]}


@pytest.fixture()
def env(api_env):
    return api_env(HubSpotAPI, companies=150, seed=5)


def sync(sandbox: Sandbox, store: Store) -> None:
    conn = HubSpotConnector(
        {"access_token": CREDENTIALS["hubspot"]["access_token"]}, connection="hs"
    )
    for result in sync_connection(store, conn, transport=sandbox.transport(), sleep=lambda s: None):
        assert result.status == "ok", result.error


def remap(store: Store, full: bool = False):
    result = run_mappings(store, connections=CONNECTIONS, full=full)
    assert not result.errors, result.errors
    return result


def events(store: Store, kind: str | None = None) -> list[dict]:
    sql = (
        "SELECT * FROM events WHERE source = 'hubspot'"
        + (" AND type = ?" if kind else "")
        + " ORDER BY id"
    )
    return [
        dict(r, attrs=json.loads(r["attrs"])) for r in store.db.query(sql, [kind] if kind else [])
    ]


def account(store: Store, company_id: str) -> dict | None:
    row = store.db.execute("SELECT * FROM accounts WHERE id = ?", [company_id]).fetchone()
    if row is None:
        return None
    cols = [c[0] for c in store.db.execute("SELECT * FROM accounts LIMIT 0").description]
    out = dict(zip(cols, row))
    out["facts"] = json.loads(out["facts"] or "{}")
    return out


def timeline(store: Store) -> dict:
    """Everything the mapping produces, for comparing incremental against full rebuilds."""
    return {
        "events": [
            (
                r["id"],
                r["entity"],
                r["ts"],
                r["type"],
                r["summary"],
                json.dumps(r["attrs"], sort_keys=True),
                r["account_id"],
            )
            for r in events(store)
        ],
        "entities": sorted(
            tuple(r)
            for r in store.db.execute(
                "SELECT key, name, domains, explicit_account, is_root, merged_into, deleted, facts FROM entities WHERE source = 'hubspot'"
            )
        ),
        "links": sorted(
            tuple(r)
            for r in store.db.execute("SELECT entity, account_id, method FROM account_links")
        ),
        "accounts": sorted(
            tuple(r)
            for r in store.db.execute(
                "SELECT id, name, domain, owner_id, owner_name, lifecycle_stage, renewal_date, customer_since, facts FROM accounts"
            )
        ),
    }


def test_registered_and_ordered_first():
    collected = []
    register_hook(collected.append)
    assert collected == [HubSpotMapping]
    assert HubSpotMapping.order < 100 and HubSpotMapping.connector == "hubspot"


def test_seeded_world_becomes_accounts_facts_and_events(env):
    sandbox, api, store = env
    world = sandbox.world
    sync(sandbox, store)
    result = remap(store)
    live = {c["id"]: c for c in api.objects("companies")}
    assert result.accounts == len(live) == len(world.companies) - 2
    merged, survivor = world.companies[6].hubspot_id, world.companies[5].hubspot_id
    link = store.db.execute(
        "SELECT account_id, method FROM account_links WHERE entity = ?",
        [f"hubspot:company:{merged}"],
    ).fetchone()
    assert tuple(link) == (survivor, "merged")
    assert account(store, world.companies[8].hubspot_id) is None  # archived
    owners = {o["id"]: o for o in world.owners}
    contacts = api.objects("contacts")
    today = world.clock.now().date()
    for company in world.companies:
        if company.key in (6, 8):
            continue
        acc = account(store, company.hubspot_id)
        props = live[company.hubspot_id]["properties"]
        assert acc["name"] == company.name and acc["domain"] == company.domain
        assert (acc["owner_id"] or None) == company.owner_id
        if company.owner_id:
            assert acc["owner_email"] == owners[company.owner_id]["email"]
        assert acc["lifecycle_stage"] == props["lifecyclestage"]
        assert acc["facts"].get("nps") == (
            int(props["nps_score"]) if "nps_score" in props else None
        )
        mine = [c for c in contacts if c["properties"]["associatedcompanyid"] == company.hubspot_id]
        assert acc["facts"]["contacts_total"] == len(mine)
        assert acc["facts"]["contacts_unsubscribed"] == sum(
            c["properties"]["hs_email_optout"] == "true" for c in mine
        )
        if company.renewal_date > today and company.key != 5:  # 5 also has 6's deals
            assert acc["renewal_date"] == company.renewal_date.isoformat()
    # Seeded churn shows as a lifecycle change; every opted-out contact as an unsubscribe.
    churned = {e["attrs"]["to"] for e in events(store, "lifecycle_changed")}
    assert churned == {"other"}
    opted = [c for c in contacts if c["properties"]["hs_email_optout"] == "true"]
    unsubscribed = events(store, "contact_unsubscribed")
    assert len(unsubscribed) == len(opted)
    assert all(e["account_id"] for e in unsubscribed if e["entity"].startswith("hubspot:company:"))
    won = events(store, "deal_won")
    assert len(won) == len(world.companies) and all(e["attrs"]["amount"] for e in won)
    due = events(store, "renewal_due")
    expected = [
        c for c in world.companies if c.key not in (8,) and (c.renewal_date - today).days <= 90
    ]
    assert len(due) == len(expected)
    for event in due:
        assert 0 < event["attrs"]["days_left"] <= 90
        assert event["ts"] <= clock.iso(world.clock.now())


def test_changes_become_events_and_incremental_equals_full_rebuild(env):
    sandbox, api, store = env
    world = sandbox.world
    sync(sandbox, store)
    remap(store)
    # A company that is a customer at seed (the sandbox draws each company's stage).
    target = next(
        c
        for c in world.companies[10:]
        if (api.get("companies", c.hubspot_id) or {}).get("properties", {}).get("lifecyclestage")
        == "customer"
    )
    company = target.hubspot_id
    new_owner = next(o["id"] for o in world.owners if o["id"] != target.owner_id)
    world.clock.advance(3600)
    api.set_properties(
        "companies",
        company,
        {"lifecyclestage": "evangelist", "hubspot_owner_id": new_owner, "nps_score": 2},
    )
    advance(sandbox, 45)
    sync(sandbox, store)
    remap(store)
    changed = [
        e for e in events(store, "lifecycle_changed") if e["entity"] == f"hubspot:company:{company}"
    ]
    assert [(e["attrs"]["from"], e["attrs"]["to"]) for e in changed] == [("customer", "evangelist")]
    owner_events = [
        e for e in events(store, "owner_changed") if e["entity"] == f"hubspot:company:{company}"
    ]
    assert owner_events[-1]["attrs"]["to"] == new_owner and owner_events[-1]["attrs"]["to_name"]
    nps = [e for e in events(store, "nps_changed") if e["entity"] == f"hubspot:company:{company}"]
    assert nps[-1]["attrs"]["score"] == 2
    acc = account(store, company)
    assert (
        acc["owner_id"] == new_owner
        and acc["lifecycle_stage"] == "evangelist"
        and acc["facts"]["nps"] == 2
    )
    # Renewals that came due in those 45 days closed: won or lost, never still "due".
    closed = {e["attrs"]["deal_id"] for e in events(store, "deal_won") + events(store, "deal_lost")}
    assert events(store, "deal_lost")
    assert not closed & {e["attrs"]["deal_id"] for e in events(store, "renewal_due")}
    for event in events(store, "deal_lost"):
        company_id = event["entity"].split(":")[-1]
        assert world.by_hubspot_id(company_id).archetype in ("churned", "at_risk")
    # A won renewal rolls the renewal date a year on (the next renewal deal).
    renewed = [e for e in events(store, "deal_won") if "renewal" in (e["attrs"]["dealname"] or "")]
    assert renewed
    acc = account(store, renewed[0]["entity"].split(":")[-1])
    assert acc["renewal_date"] > clock.iso(world.clock.now())[:10]
    before = timeline(store)
    remap(store, full=True)
    assert timeline(store) == before


def test_merge_and_archive_after_sync(env):
    sandbox, api, store = env
    world = sandbox.world
    sync(sandbox, store)
    remap(store)
    survivor, merged = world.companies[20].hubspot_id, world.companies[21].hubspot_id
    gone = world.companies[22].hubspot_id
    merged_contacts = len(api.associations("companies", merged, "contacts"))
    before_total = account(store, survivor)["facts"]["contacts_total"]
    world.clock.advance(60)
    api.merge(survivor, merged)
    api.archive("companies", gone)
    world.clock.advance(7 * 86400)  # the connector re-reads archived lists every 6 hours
    sync(sandbox, store)
    remap(store)
    assert account(store, merged) is None and account(store, gone) is None
    link = store.db.execute(
        "SELECT account_id, method FROM account_links WHERE entity = ?",
        [f"hubspot:company:{merged}"],
    ).fetchone()
    assert tuple(link) == (survivor, "merged")
    assert account(store, survivor)["facts"]["contacts_total"] == before_total + merged_contacts
    assert not [
        e
        for e in events(store)
        if e["entity"] == f"hubspot:company:{gone}"
        and e["type"] in ("nps_changed", "lifecycle_changed")
    ]
    # Events of the merged company now sit on the survivor's timeline.
    moved = [e for e in events(store) if e["entity"] == f"hubspot:company:{merged}"]
    assert all(e["account_id"] == survivor for e in moved)
    before = timeline(store)
    remap(store, full=True)
    assert timeline(store) == before


def test_owner_rename_updates_company_facts(env):
    sandbox, api, store = env
    world = sandbox.world
    sync(sandbox, store)
    remap(store)
    owner = world.owners[0]
    owned = [
        c.hubspot_id for c in world.companies if c.owner_id == owner["id"] and c.key not in (6, 8)
    ]
    assert owned
    owner["lastName"] = "Renamed"
    sync(sandbox, store)
    remap(store)
    assert all(account(store, c)["owner_name"].endswith("Renamed") for c in owned)


def test_contact_of_an_unknown_company_is_reported_not_dropped(env):
    sandbox, api, store = env
    sync(sandbox, store)
    contact = api.objects("contacts")[0]["id"]
    api.set_properties("contacts", contact, {"associatedcompanyid": "", "hs_email_optout": "true"})
    sync(sandbox, store)
    remap(store)
    row = store.db.execute(
        "SELECT key FROM entities WHERE key = ?", [f"hubspot:contact:{contact}"]
    ).fetchone()
    assert row is not None
    unsub = [
        e for e in events(store, "contact_unsubscribed") if e["attrs"]["contact_id"] == contact
    ]
    assert len(unsub) == 1 and unsub[0]["entity"] == f"hubspot:contact:{contact}"
    assert unsub[0]["ts"] == clock.iso(sandbox.world.clock.now())


def test_renewal_window_is_configurable(env):
    sandbox, _, store = env
    sync(sandbox, store)
    from hub.timeline import MappingContext

    mapping = HubSpotMapping()
    remap(store)
    narrow = MappingContext(
        store=store, connection="hs", mapping=mapping, settings={"renewal_window_days": 10}
    )
    store.db.execute("DELETE FROM events WHERE type = 'renewal_due'")
    mapping.finalize(narrow)
    narrow.flush()
    due = events(store, "renewal_due")
    assert all(e["attrs"]["days_left"] <= 10 for e in due)
    today = sandbox.world.clock.now().date()
    assert len(due) == sum(
        1 for c in sandbox.world.companies if c.key != 8 and (c.renewal_date - today).days <= 10
    )
    assert dt.date.fromisoformat(due[0]["attrs"]["renewal_date"]) >= today if due else True


def test_a_renewal_moved_out_of_the_window_stops_being_due(env):
    sandbox, api, store = env
    sync(sandbox, store)
    remap(store)
    due = events(store, "renewal_due")
    assert due
    deal = due[0]["attrs"]["deal_id"]
    company = due[0]["account_id"]
    far = (sandbox.world.clock.now() + dt.timedelta(days=400)).strftime("%Y-%m-%dT00:00:00.000Z")
    sandbox.world.clock.advance(60)
    api.set_properties("deals", deal, {"closedate": far})
    sync(sandbox, store)
    remap(store)
    assert deal not in {e["attrs"]["deal_id"] for e in events(store, "renewal_due")}
    assert account(store, company)["renewal_date"] <= far[:10]
    before = timeline(store)
    remap(store, full=True)
    assert timeline(store) == before
