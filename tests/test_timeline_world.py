"""The unified timeline on the sandbox world, checked against the world's ground truth.

Every HubSpot company has one account; Stripe customers and Zendesk organizations land where
the world says (explicit ids with 100% precision, domains without free-mail matches,
conflicts reported); every event type is produced; re-mapping is idempotent and ``--full``
reproduces the incremental result; a HubSpot merge moves events to the survivor.
"""

from __future__ import annotations

import pytest

from hub import clock
from hub.sandbox.world import advance, build_sandbox
from hub.store import Store
from hub.sync import sync_all
from hub.timeline import run_mappings
from hub.vocabulary import vocabulary
from tests.helpers import sandbox_config


def cycle(store, sandbox, config):
    results = sync_all(store, config, transport=sandbox.transport())
    failed = {
        f"{n}.{r.stream}": r.error for n, rs in results.items() for r in rs if r.status != "ok"
    }
    assert not failed, failed
    return run_mappings(store, config)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    sandbox = build_sandbox(companies=80, seed=11)
    clock.set_source(sandbox.world.now)
    store = Store(tmp_path_factory.mktemp("tl") / "hub.db")
    config = sandbox_config()
    cycle(store, sandbox, config)
    advance(sandbox, 20)
    cycle(store, sandbox, config)
    yield sandbox, store, config
    clock.set_source(None)


@pytest.fixture(autouse=True)
def world_clock(request):
    # conftest resets the hub clock after every test; bind it to the world's again.
    if "world" in request.fixturenames:
        sandbox = request.getfixturevalue("world")[0]
        clock.set_source(sandbox.world.now)
    yield


def links(store):
    return {
        r["entity"]: (r["account_id"], r["method"])
        for r in store.db.query("SELECT entity, account_id, method FROM account_links")
    }


def test_every_live_hubspot_company_is_one_account(world):
    sandbox, store, _ = world
    expected = {
        c.hubspot_id
        for c in sandbox.world.companies
        if c.merged_into is None and "archived" not in c.traps
    }
    got = {r["id"] for r in store.db.query("SELECT id FROM accounts")}
    assert got == expected


def test_stripe_customers_land_where_the_world_says(world):
    sandbox, store, _ = world
    stripe = sandbox.api("stripe")
    got = links(store)
    companies = sandbox.world.companies
    alive = {c.key: c for c in companies if c.merged_into is None and "archived" not in c.traps}
    for c in companies:
        key = f"stripe:customer:{stripe.customer_id_for(c.key)}"
        target = companies[c.merged_into] if c.merged_into is not None else c
        if c.stripe_link == "explicit" and target.key in alive:
            assert got.get(key) == (target.hubspot_id, "explicit_id"), (c, got.get(key))
        elif (
            c.stripe_link == "domain" and "duplicate_domain" not in c.traps and target.key in alive
        ):
            assert got.get(key) == (target.hubspot_id, "domain"), (c, got.get(key))
        elif c.stripe_link == "none":
            assert key not in got, f"free-mail customer {c.billing_email} was linked"
    # Precision on explicit ids: no customer is linked to a company other than the one it names.
    for entity, (account, method) in got.items():
        if entity.startswith("stripe:") and method == "explicit_id":
            company = companies[stripe.company_key_for(entity.split(":", 2)[2])]
            expected = (
                companies[company.merged_into] if company.merged_into is not None else company
            )
            assert account == expected.hubspot_id


def test_zendesk_organizations_land_where_the_world_says(world):
    sandbox, store, _ = world
    zendesk = sandbox.api("zendesk")
    got = links(store)
    for c in sandbox.world.companies:
        if c.merged_into is not None or "archived" in c.traps:
            continue
        key = f"zendesk:organization:{zendesk.organization_for(c.key)['id']}"
        if c.zendesk_link == "external_id":
            assert got.get(key) == (c.hubspot_id, "explicit_id")
        elif c.zendesk_link == "domain" and "duplicate_domain" not in c.traps:
            assert got.get(key) == (c.hubspot_id, "domain")
        elif c.zendesk_link == "none" and "duplicate_domain" not in c.traps:
            # No id, no domain: its users' e-mail domain names the company.
            assert got.get(key) == (c.hubspot_id, "member_domain")


def test_conflicts_and_unmatched_are_reported_not_guessed(world):
    _, store, _ = world
    issues = {
        r["entity"]: r["issue"] for r in store.db.query("SELECT entity, issue FROM identity_issues")
    }
    linked = links(store)
    assert issues and not (set(issues) & {k for k in linked if not k.startswith("hubspot:")})
    assert "unmatched" in issues.values()
    for entity, issue in issues.items():
        if issue == "domain_conflict":
            assert entity not in linked


def test_every_event_type_is_produced(world):
    _, store, _ = world
    seen = {r["type"] for r in store.db.query("SELECT DISTINCT type FROM events")}
    missing = set(vocabulary().event_types) - seen
    assert not missing, f"event types never produced from sandbox data: {sorted(missing)}"
    # Every event has an account, a time, a summary and a link back to its source.
    bad = store.db.execute(
        "SELECT COUNT(*) FROM events e JOIN account_links l ON l.entity = e.entity WHERE e.account_id IS NULL OR e.summary = '' OR e.ts IS NULL"
    ).fetchone()[0]
    assert bad == 0


def test_remap_changes_nothing_and_full_reproduces(world):
    sandbox, store, config = world

    def state():
        events = sorted(
            store.db.execute(
                "SELECT id, entity, account_id, ts, type, summary, attrs, link FROM events"
            ).fetchall()
        )
        accounts = sorted(
            store.db.execute(
                "SELECT id, name, domain, owner_id, mrr, plan, seats, renewal_date, facts FROM accounts"
            ).fetchall()
        )
        linkrows = sorted(
            store.db.execute("SELECT entity, account_id, method FROM account_links").fetchall()
        )
        return events, accounts, linkrows

    before = state()
    again = run_mappings(store, config)
    assert again.rows == 0 and state() == before
    run_mappings(store, config, full=True)
    assert state() == before


def test_merge_moves_events_to_survivor(tmp_path):
    sandbox = build_sandbox(companies=40, seed=5)
    clock.set_source(sandbox.world.now)
    store = Store(tmp_path / "hub.db")
    config = sandbox_config()
    cycle(store, sandbox, config)
    companies = [
        c for c in sandbox.world.companies if c.merged_into is None and "archived" not in c.traps
    ]
    survivor, merged = companies[10], companies[11]
    merged_events = store.db.execute(
        "SELECT COUNT(*) FROM events WHERE account_id = ?", [merged.hubspot_id]
    ).fetchone()[0]
    survivor_events = store.db.execute(
        "SELECT COUNT(*) FROM events WHERE account_id = ?", [survivor.hubspot_id]
    ).fetchone()[0]
    assert merged_events > 0
    sandbox.api("hubspot").merge(survivor.hubspot_id, merged.hubspot_id)
    advance(sandbox, 1)
    cycle(store, sandbox, config)
    assert (
        store.db.execute(
            "SELECT COUNT(*) FROM accounts WHERE id = ?", [merged.hubspot_id]
        ).fetchone()[0]
        == 0
    )
    assert (
        store.db.execute(
            "SELECT COUNT(*) FROM events WHERE account_id = ?", [merged.hubspot_id]
        ).fetchone()[0]
        == 0
    )
    moved = store.db.execute(
        "SELECT COUNT(*) FROM events WHERE account_id = ?", [survivor.hubspot_id]
    ).fetchone()[0]
    assert (
        moved >= survivor_events + merged_events - 5
    )  # a few company-level events of the merged record are retired
    ids = [
        r[0]
        for r in store.db.execute(
            "SELECT id FROM events WHERE account_id = ?", [survivor.hubspot_id]
        )
    ]
    assert len(ids) == len(set(ids))
    methods = {
        r["entity"]: r["method"]
        for r in store.db.query(
            "SELECT entity, method FROM account_links WHERE account_id = ?", [survivor.hubspot_id]
        )
    }
    assert methods[f"hubspot:company:{merged.hubspot_id}"] == "merged"
    clock.set_source(None)
