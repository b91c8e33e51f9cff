"""The HubSpot connector against the in-process HubSpot fake (``hub.sandbox.hubspot``)."""

from __future__ import annotations

import logging

import httpx
import pytest

from connectors.hubspot import HubSpotConnector
from connectors.hubspot import register_connectors as register_hook
from hub.errors import ConfigError, FatalAPIError, RetriableAPIError
from hub.http.ratelimit import reset_shared_limiters
from hub.sandbox.base import Sandbox
from hub.sandbox.hubspot import HubSpotAPI, iso_ms, parse_ms, to_ms
from hub.sandbox.world import CREDENTIALS, World, advance
from hub.store import Store
from hub.sync import sync_connection
from hub.testing import SandboxConnectorTests

TOKEN = CREDENTIALS["hubspot"]["access_token"]
STREAMS = [
    "owners",
    "companies",
    "contacts",
    "deals",
    "tasks",
    "calls",
    "emails",
    "meetings",
    "notes",
]


@pytest.fixture()
def env(api_env):
    return api_env(HubSpotAPI, companies=150, seed=11)


def connector(**settings) -> HubSpotConnector:
    return HubSpotConnector({"access_token": TOKEN, **settings}, connection="hs")


def run(sandbox: Sandbox, store: Store, conn: HubSpotConnector | None = None, **kwargs):
    reset_shared_limiters()
    results = sync_connection(
        store, conn or connector(), transport=sandbox.transport(), sleep=lambda s: None, **kwargs
    )
    return {r.stream: r for r in results}


def iso(moment) -> str:
    return iso_ms(to_ms(moment))


def rows(store: Store, stream: str) -> dict[str, dict]:
    return {r["id"]: r for r in store.raw_rows(f"raw_hs_{stream}")}


def table(store: Store) -> dict[str, list[tuple[str, str, bool]]]:
    return {
        s: sorted((r["id"], str(r["data"]), r["deleted"]) for r in store.raw_rows(f"raw_hs_{s}"))
        for s in STREAMS
    }


def assert_ok(results) -> None:
    assert all(r.status == "ok" for r in results.values()), {n: r.error for n, r in results.items()}


# -- settings, registration, check ----------------------------------------------------------------


def test_settings_validation_and_registration():
    collected = []
    register_hook(collected.append)
    assert collected == [HubSpotConnector]
    conn = connector()
    assert conn.base_url() == "https://api.hubapi.com"
    assert TOKEN not in repr(conn.settings) and TOKEN not in repr(conn.auth())
    with pytest.raises(ConfigError, match="access_token"):
        HubSpotConnector({})
    with pytest.raises(ConfigError, match="burst_limit"):
        connector(burst_limit=1000)
    with pytest.raises(ConfigError, match="nope"):
        connector(nope=1)
    with pytest.raises(ConfigError, match="company_properties"):
        connector(company_properties=["Bad Name"])
    limits = {r.name: r for r in connector(burst_limit=190).rate_limits()}
    assert (limits["burst"].limit, limits["burst"].per_seconds) == (190, 10.0)
    assert (limits["search"].limit, limits["search"].per_seconds) == (5, 1.0)
    assert limits["search"].applies("/crm/v3/objects/contacts/search")
    assert not limits["burst"].applies("/crm/v3/objects/contacts/search")
    assert limits["burst"].applies("/crm/v3/objects/contacts")


def test_check_reports_the_budget(env):
    sandbox, api, _ = env
    api.burst_limit = 190
    conn = connector()
    with conn.client(transport=sandbox.transport()) as client:
        text = conn.check(client)
    assert "token accepted" in text and "set burst_limit = 190" in text


# -- full and incremental sync ---------------------------------------------------------------------


def test_full_sync_reads_every_record_with_links_merges_and_archives(env):
    sandbox, api, store = env
    results = run(sandbox, store)
    assert_ok(results)
    world = sandbox.world
    companies = rows(store, "companies")
    live = {c["id"] for c in api.objects("companies")}
    merged, survivor = world.companies[6].hubspot_id, world.companies[5].hubspot_id
    archived = world.companies[8].hubspot_id
    assert set(companies) == live | {merged, archived}
    assert companies[merged]["deleted"] and companies[merged]["data"]["merged_into"] == survivor
    assert companies[archived]["deleted"] and companies[archived]["data"]["archived"] is True
    assert merged in companies[survivor]["data"]["properties"]["hs_merged_object_ids"].split(";")
    props = companies[survivor]["data"]["properties"]
    assert {"name", "domain", "hubspot_owner_id", "lifecyclestage", "nps_score"} <= set(props)
    assert len(rows(store, "contacts")) == len(api.objects("contacts"))
    contact = next(iter(rows(store, "contacts").values()))["data"]
    assert contact["properties"]["hs_email_optout"] in ("true", "false")
    assert contact["properties"]["associatedcompanyid"]
    deals = rows(store, "deals")
    assert len(deals) == len(api.objects("deals"))
    for deal in api.objects("deals")[:20]:
        expected = [cid for cid, _ in api.associations("deals", deal["id"], "companies")]
        assert deals[deal["id"]]["data"]["associations"]["companies"] == expected
    assert set(rows(store, "owners")) == {o["id"] for o in world.owners}
    assert len(rows(store, "tasks")) == len(api.objects("tasks"))
    # 100 per list page, plus the archived lists; history only for contacts that opted out and
    # links for deals, each gathered across pages into full batch reads (50 and 1,000 ids per
    # request), not one per page.
    pages = -(-len(api.objects("contacts")) // 100)
    opted_out = sum(
        1
        for c in rows(store, "contacts").values()
        if c["data"]["properties"]["hs_email_optout"] == "true"
    )
    assert opted_out
    # At the floor: a partial history batch waits for the next pages' opted-out contacts.
    assert results["contacts"].requests == pages + 1 + -(-opted_out // 50)
    assert results["deals"].requests == -(-len(deals) // 100) + 1 + -(-len(deals) // 1000)
    opted = [
        c
        for c in rows(store, "contacts").values()
        if c["data"]["properties"]["hs_email_optout"] == "true"
    ]
    assert opted and all(
        c["data"]["propertiesWithHistory"]["hs_email_optout"][0]["value"] == "true" for c in opted
    )
    assert all(
        "propertiesWithHistory" not in c["data"]
        for c in rows(store, "contacts").values()
        if c["data"]["properties"]["hs_email_optout"] != "true"
    )


def test_property_history_is_kept_for_changes(env):
    sandbox, api, store = env
    run(sandbox, store)
    company = api.objects("companies")[4]
    sandbox.world.clock.advance(86400)
    api.set_properties("companies", company["id"], {"lifecyclestage": "evangelist", "nps_score": 3})
    results = run(sandbox, store)
    assert results["companies"].changed == 1
    history = rows(store, "companies")[company["id"]]["data"]["propertiesWithHistory"]
    assert [e["value"] for e in history["lifecyclestage"]] == ["evangelist", "customer"]
    assert history["lifecyclestage"][0]["timestamp"] == iso(sandbox.world.clock.now())
    assert history["nps_score"][0]["value"] == "3"
    assert set(history) == {"lifecyclestage", "hubspot_owner_id", "nps_score"}


def test_company_history_off_lists_100_per_page_and_observes_changes(env):
    from hub.timeline import run_mappings

    sandbox, api, store = env
    with pytest.raises(ConfigError, match="company_history"):
        connector(company_history="sometimes")
    conn = connector(company_history=False)
    results = run(sandbox, store, conn, streams=["owners", "companies"])
    assert_ok(results)
    live = len(api.objects("companies"))
    assert live > 100
    # 100 per page (50 with history) plus one archived page, and no history request.
    assert results["companies"].requests == -(-live // 100) + 1
    stored = rows(store, "companies")
    names = {"lifecyclestage", "hubspot_owner_id", "nps_score"}
    first = [r["data"]["propertiesWithHistory"] for r in stored.values() if not r["deleted"]]
    assert first and all(h == dict.fromkeys(names, []) for h in first)
    company = api.objects("companies")[4]
    before = stored[company["id"]]["data"]
    assert before["properties"]["lifecyclestage"] == "customer"
    sandbox.world.clock.advance(86400)
    api.set_properties("companies", company["id"], {"lifecyclestage": "evangelist", "nps_score": 3})
    api.requests.clear()
    results = run(sandbox, store, conn, streams=["owners", "companies"])
    assert results["companies"].changed == 1
    # Searches, no batch read: the change is seen in the values, not asked for.
    assert not [r for r in api.requests if "batch" in r], api.requests
    data = rows(store, "companies")[company["id"]]["data"]
    history = data["propertiesWithHistory"]
    assert history["lifecyclestage"] == [
        {"value": "evangelist", "timestamp": data["updatedAt"], "sourceType": "HUB_OBSERVED"},
        # The value before the first change seen: dated only by the stored row, so marked.
        {"value": "customer", "timestamp": before["updatedAt"], "sourceType": "HUB_OBSERVED_PRIOR"},
    ]
    assert [e["value"] for e in history["nps_score"]] == ["3", before["properties"]["nps_score"]]
    assert history["hubspot_owner_id"] == []
    assert data["updatedAt"] == iso(sandbox.world.clock.now())
    # The timeline reads it as it reads HubSpot's own history.
    assert not run_mappings(store, connections={"hubspot": ["hs"]}).errors
    (changed,) = store.db.execute(
        "SELECT ts, attrs FROM events WHERE type = 'lifecycle_changed' AND account_id = ?",
        [company["id"]],
    ).fetchall()
    assert changed[1] == '{"from":"customer","to":"evangelist"}'
    # The prior value is a "from", never a change of its own: one NPS event (the new score,
    # "was" the prior one), and becoming a customer is not dated at the stored row's
    # modification: customer_since stays the creation date, as with no change seen.
    nps = store.db.execute(
        "SELECT attrs FROM events WHERE type = 'nps_changed' AND account_id = ?", [company["id"]]
    ).fetchall()
    was = int(before["properties"]["nps_score"])
    assert [a for (a,) in nps] == [f'{{"previous":{was},"score":3}}']
    (since,) = store.db.execute(
        "SELECT customer_since FROM accounts WHERE id = ?", [company["id"]]
    ).fetchone()
    assert since == before["properties"]["createdate"]


def test_noop_resync_is_one_request_per_stream(env):
    sandbox, api, store = env
    run(sandbox, store)
    before = table(store)
    results = run(sandbox, store)
    assert_ok(results)
    assert {n: r.requests for n, r in results.items()} == dict.fromkeys(STREAMS, 1)
    assert sum(r.changed for r in results.values()) == 0
    assert table(store) == before
    assert not api.writes


def test_incremental_picks_up_exactly_the_changes_including_archive_and_merge(env):
    sandbox, api, store = env
    run(sandbox, store)
    before = api.snapshot()
    advance(sandbox, 5)
    world = sandbox.world
    gone_contact = api.objects("contacts")[3]["id"]
    api.archive("contacts", gone_contact)
    survivor, merged = world.companies[20].hubspot_id, world.companies[21].hubspot_id
    api.merge(survivor, merged)
    after = api.snapshot()
    results = run(sandbox, store)
    assert_ok(results)
    for stream in ("companies", "contacts", "deals", "tasks"):
        old, new = before["objects"][stream], after["objects"][stream]
        changed = {i for i in new if new[i] != old.get(i)} | {i for i in old if i not in new}
        assert changed <= set(rows(store, stream)), stream
        assert results[stream].changed == len(changed), (
            stream,
            results[stream].changed,
            len(changed),
        )
    contacts = rows(store, "contacts")
    assert contacts[gone_contact]["deleted"] and contacts[gone_contact]["data"]["archivedAt"]
    companies = rows(store, "companies")
    assert companies[merged]["deleted"] and companies[merged]["data"]["merged_into"] == survivor
    assert merged in companies[survivor]["data"]["properties"]["hs_merged_object_ids"].split(";")
    # Contacts of the merged company now name the survivor.
    moved = [
        c for c in contacts.values() if c["data"]["properties"]["associatedcompanyid"] == merged
    ]
    assert not [c for c in moved if not c["deleted"]]
    # The result equals a fresh full read of the same upstream state.
    fresh = Store(":memory:")
    run(sandbox, fresh)
    assert table(store) == table(fresh)


def test_completed_hub_task_is_read_back(env):
    sandbox, api, store = env
    company = api.objects("companies")[0]["id"]
    created = (
        httpx.Client(transport=sandbox.transport(), base_url="https://api.hubapi.com")
        .post(
            "/crm/v3/objects/tasks",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={
                "properties": {
                    "hs_timestamp": "2026-11-20T00:00:00Z",
                    "hs_task_subject": "Renewal call",
                    "hs_task_status": "NOT_STARTED",
                },
                "associations": [
                    {
                        "to": {"id": company},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}
                        ],
                    }
                ],
            },
        )
        .json()
    )
    run(sandbox, store)
    task = rows(store, "tasks")[created["id"]]["data"]
    assert task["properties"]["hs_task_status"] == "NOT_STARTED"
    assert task["associations"]["companies"] == [company]
    sandbox.world.clock.advance(3600)
    api.complete_task(created["id"])
    results = run(sandbox, store)
    assert results["tasks"].changed == 1
    task = rows(store, "tasks")[created["id"]]["data"]
    assert task["properties"]["hs_task_status"] == "COMPLETED"
    assert task["properties"]["hs_task_completion_date"]


def test_search_never_pages_past_the_cap_and_walks_one_instant_by_id(env):
    sandbox, api, store = env
    run(sandbox, store)
    api.search_cap = 150  # HubSpot's 10,000, scaled down
    sandbox.world.clock.advance(60)
    contacts = api.objects("contacts")
    assert len(contacts) > 550
    # A bulk update stamps 420 contacts with one millisecond, then the rest follow later.
    for contact in contacts[:420]:
        api.set_properties("contacts", contact["id"], {"jobtitle": "Bulk"})
    for i, contact in enumerate(contacts[420:]):
        sandbox.world.clock.advance(1 + i % 3)
        api.set_properties("contacts", contact["id"], {"jobtitle": "Later"})
    sandbox.reset_counts()
    results = run(sandbox, store)
    assert_ok(results)
    assert results["contacts"].changed == len(contacts)
    stored = rows(store, "contacts")
    newest = {c["id"]: c["updatedAt"] for c in api.objects("contacts")}
    assert all(stored[i]["data"]["updatedAt"] == newest[i] for i in newest)
    assert not any(status == 400 for _, _, status in api.log)
    searches = [p for m, p, _ in api.log if p.endswith("/contacts/search")]
    assert len(searches) <= 10  # about one per 200 records: no re-reading
    # The bookmark is the last change; a further sync is one request.
    state = store.get_state("hs", "contacts")
    assert parse_ms(state["bookmark"]) == parse_ms(
        newest[max(newest, key=lambda i: (newest[i], int(i)))]
    )
    assert run(sandbox, store)["contacts"].requests == 1


def test_extra_properties_are_read(env):
    sandbox, _, store = env
    results = run(sandbox, store, connector(contact_properties=["jobtitle"], nps_property=None))
    assert_ok(results)
    contact = next(iter(rows(store, "contacts").values()))["data"]
    assert contact["properties"]["jobtitle"]
    company = next(r for r in rows(store, "companies").values() if not r["deleted"])["data"]
    assert "nps_score" not in company["properties"]


# -- failures -----------------------------------------------------------------------------------


def test_429_and_5xx_are_retried_without_loss(env):
    sandbox, api, store = env
    api.faults.inject("429", count=2, path=r"/crm/v3/objects/contacts$", retry_after=0)
    api.faults.inject("503", count=2, path=r"/crm/v3/objects/deals$")
    api.faults.inject("timeout", count=1, path=r"/batch/read$")
    results = run(sandbox, store)
    assert_ok(results)
    assert sum(r.retries for r in results.values()) == 5
    advance(sandbox, 2)
    api.faults.inject("429", count=2, path=r"/search$", retry_after=0)
    api.faults.inject("502", count=1, path=r"/search$")
    assert_ok(run(sandbox, store))
    fresh = Store(":memory:")
    run(sandbox, fresh)
    assert table(store) == table(fresh)


def test_failure_mid_stream_resumes_without_gap(env):
    sandbox, api, store = env
    api.faults.inject("500", count=20, path=r"/crm/v3/objects/contacts$", after=3)
    broken = run(sandbox, store)
    assert broken["contacts"].status == "error" and "gave up" in broken["contacts"].error
    assert broken["deals"].status == "ok"  # one failing stream does not stop the others
    assert store.get_state("hs", "contacts")["resume"]["after"]
    api.faults.clear()
    api.requests.clear()
    resumed = run(sandbox, store)
    assert_ok(resumed)
    assert api.requests["GET list_objects"] < 8  # carried on from page 4, not page 1
    fresh = Store(":memory:")
    run(sandbox, fresh)
    assert table(store) == table(fresh)


def test_bad_token_fails_fast_without_leaking(env, caplog):
    sandbox, _, store = env
    caplog.set_level(logging.DEBUG)
    results = run(
        sandbox, store, HubSpotConnector({"access_token": "pat-wrong-token"}, connection="hs")
    )
    for result in results.values():
        assert result.status == "error" and result.retries == 0
        assert "401" in result.error and "create a service key" in result.error
        assert "pat-wrong-token" not in result.error
    assert "pat-wrong-token" not in caplog.text


def test_missing_scope_is_named(env):
    sandbox, api, store = env
    api.faults.inject("403", path=r"/crm/v3/objects/deals$", scopes=["crm.objects.deals.read"])
    results = run(sandbox, store)
    assert results["deals"].status == "error" and results["deals"].retries == 0
    assert "crm.objects.deals.read" in results["deals"].error
    assert all(r.status == "ok" for n, r in results.items() if n != "deals")


def test_classify_daily_limit_and_missing_scopes():
    conn = connector()
    request = httpx.Request("GET", "https://api.hubapi.com/crm/v3/objects/deals")
    daily = httpx.Response(
        429,
        json={
            "status": "error",
            "message": "You have reached your daily limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "DAILY",
        },
        request=request,
    )
    error = conn.classify(daily)
    assert isinstance(error, FatalAPIError) and "daily" in str(error)
    burst = httpx.Response(
        429,
        json={
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
        headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"},
        request=request,
    )
    error = conn.classify(burst)
    assert isinstance(error, RetriableAPIError) and error.retry_after == 10.0
    secondly = httpx.Response(
        429,
        json={
            "status": "error",
            "message": "You have reached your secondly limit.",
            "policyName": "SECONDLY",
        },
        request=request,
    )
    assert conn.classify(secondly).retry_after == 1.0
    scopes = httpx.Response(
        403,
        json={
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call.",
            "category": "MISSING_SCOPES",
            "errors": [
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": ["crm.objects.deals.read"]},
                }
            ],
        },
        request=request,
    )
    error = conn.classify(scopes)
    assert isinstance(error, FatalAPIError) and "crm.objects.deals.read" in str(error)


def test_paces_itself_from_rate_headers():
    """The fake allows fewer requests than the settings claim; Remaining = 0 makes the client wait."""
    reset_shared_limiters()
    world = World(companies=150, seed=11)
    sandbox = Sandbox(world, enforce_limits=True, time_scale=0.01)  # 10 s windows → 0.1 s
    api = sandbox.add(HubSpotAPI(sandbox))
    api.seed()
    api.burst_limit = 4
    store = Store(":memory:")
    # The CRM object streams only: the activity streams would add window edges, not news.
    crm = ["owners", "companies", "contacts", "deals", "tasks"]
    results = run(sandbox, store, connector(burst_limit=100), streams=crm)
    assert_ok(results)
    assert api.status_counts[429] <= 2  # at most a stray one per window edge, and retried
    assert len(rows(store, "contacts")) == len(api.objects("contacts"))


def test_daily_limit_stops_the_sync_clearly():
    reset_shared_limiters()
    world = World(companies=40, seed=2)
    sandbox = Sandbox(world, enforce_limits=True, time_scale=0.01)
    api = sandbox.add(HubSpotAPI(sandbox))
    api.seed()
    api.daily_limit = 3
    results = run(sandbox, Store(":memory:"))
    failed = [r for r in results.values() if r.status == "error"]
    assert failed and all("daily API limit" in r.error for r in failed)
    assert all(r.retries == 0 for r in failed)


# -- the standard suite -----------------------------------------------------------------------------


class TestHubSpotStandardSuite(SandboxConnectorTests):
    connector_class = HubSpotConnector
    api_name = "hubspot"
    settings = {"access_token": TOKEN}
    bad_settings = {"access_token": "pat-not-the-token"}
    connection = "under_test"
    resume_stream = "contacts"
    resume_path = r"/crm/v3/objects/contacts$"


def test_archived_company_is_seen_at_the_next_sync_without_a_request_per_noop(env):
    sandbox, api, store = env
    run(sandbox, store)
    sandbox.world.clock.advance(1800)  # one sync interval, far below deletes_every_hours
    gone = api.objects("companies")[5]["id"]
    api.archive("companies", gone)
    results = run(sandbox, store)
    assert_ok(results)
    companies = rows(store, "companies")
    assert companies[gone]["deleted"] and companies[gone]["data"]["archived"] is True
    assert any("reading the archived list" in n for n in results["companies"].notes)
    # Nothing else changed: every stream is back to one request.
    sandbox.world.clock.advance(1800)
    again = run(sandbox, store)
    assert {n: r.requests for n, r in again.items()} == dict.fromkeys(STREAMS, 1)


def test_hostile_records_on_a_list_page_are_skipped_and_reported():
    from hub.connector import SyncContext

    conn = connector()
    stream = next(s for s in conn.get_streams() if s.name == "companies")
    deep: dict = {}
    inner = deep
    for _ in range(70):
        inner["x"] = {}
        inner = inner["x"]
    good = {
        "id": "7",
        "properties": {"name": "Acme", "lifecyclestage": "customer", "ignored": "x"},
        "propertiesWithHistory": {"lifecyclestage": [{"value": "customer", "timestamp": "t"}]},
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-02T00:00:00.000Z",
    }
    page = [good, {"properties": {}}, "not an object", {"id": "9", "properties": deep}]
    with conn.client() as client:
        ctx = SyncContext(client=client, store=Store(":memory:"), connection="hs", connector=conn)
        batch = stream.prepare_page(ctx, page, page=2)
    assert [r["id"] for r in batch.records] == ["7"]
    (row,) = batch.records
    assert row["properties"]["name"] == "Acme" and "ignored" not in row["properties"]
    assert row["propertiesWithHistory"]["lifecyclestage"] == [
        {"value": "customer", "timestamp": "t", "sourceType": None}
    ]
    assert ctx.skipped_count == 3
    assert ctx.skipped == [
        "companies page 2 record 2: the record has no 'id'",
        "companies page 2 record 3: not an object (str)",
        "companies page 2 record 4: nested deeper than 64 levels",
    ]
