"""The Zendesk connector against the in-process Zendesk fake (and the standard suite)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from connectors.zendesk import ZendeskConnector
from connectors.zendesk import register_connectors as register_hook
from hub import clock
from hub.errors import ConfigError
from hub.http.ratelimit import reset_shared_limiters
from hub.sandbox.base import Sandbox
from hub.sandbox.world import CREDENTIALS, World, advance
from hub.sandbox.zendesk import ZendeskAPI
from hub.store import Store
from hub.sync import StreamResult, sync_connection
from hub.testing import SandboxConnectorTests

CREDS = CREDENTIALS["zendesk"]
BASE = {
    "subdomain": CREDS["subdomain"],
    "email": CREDS["email"],
    "api_token": CREDS["api_token"],
    "base_url": "https://sandbox.zendesk.com",
    # The proactive limiter runs on real time; tests page a small world in tiny pages.
    "incremental_per_minute": 100_000,
}
STREAMS = ["organizations", "users", "tickets", "satisfaction_ratings"]


@pytest.fixture()
def env(api_env):
    return api_env(ZendeskAPI, companies=80, seed=4)


def connector(**settings) -> ZendeskConnector:
    return ZendeskConnector({**BASE, **settings}, connection="zd")


def run(
    sandbox: Sandbox, store: Store, conn: ZendeskConnector | None = None, **kwargs
) -> dict[str, StreamResult]:
    reset_shared_limiters()
    results = sync_connection(
        store,
        conn or connector(per_page=40, page_size=25),
        transport=sandbox.transport(),
        sleep=lambda s: None,
        **kwargs,
    )
    return {r.stream: r for r in results}


def rows(store: Store, stream: str) -> dict[str, dict]:
    return {r["id"]: r["data"] for r in store.raw_rows(f"raw_zd_{stream}")}


def versions(api: ZendeskAPI) -> dict[str, dict]:
    return {
        "tickets": {t.id: t.updated for t in api.tickets.values()},
        "users": {u.id: u.updated for u in api.users.values()},
        "organizations": {o.id: o.updated for o in api.orgs.values()},
        "satisfaction_ratings": {r.id: r.created for r in api.ratings.values()},
    }


def test_full_sync_loads_everything_with_metric_sets(env):
    sandbox, api, store = env
    results = run(sandbox, store)
    assert {n: r.status for n, r in results.items()} == dict.fromkeys(STREAMS, "ok")
    counts = api.counts()
    assert (
        results["organizations"].records
        == len(rows(store, "organizations"))
        == counts["organizations"]
    )
    assert results["users"].records == len(rows(store, "users")) == counts["users"]
    assert results["tickets"].records == len(rows(store, "tickets")) == api.visible_count("tickets")
    assert results["satisfaction_ratings"].records == counts["satisfaction_ratings"]
    assert results["tickets"].requests == math.ceil(api.visible_count("tickets") / 40)
    assert results["satisfaction_ratings"].requests == math.ceil(
        counts["satisfaction_ratings"] / 25
    )
    ticket = rows(store, "tickets")["1"]
    assert (
        ticket["metric_set"]["ticket_id"] == 1
        and "full_resolution_time_in_minutes" in ticket["metric_set"]
    )
    # Metric sets cost no request of their own.
    assert api.requests["GET list_ticket_metrics"] == 0


def test_incremental_after_two_days_reads_exactly_the_changes(env):
    sandbox, api, store = env
    run(sandbox, store)
    before = versions(api)
    advance(sandbox, 2)
    after = versions(api)
    results = run(sandbox, store)
    for stream in STREAMS:
        changed = {i for i, v in after[stream].items() if before[stream].get(i) != v}
        assert changed, stream
        assert results[stream].records == results[stream].changed == len(changed), stream
    # The store now equals a fresh full sync.
    fresh = Store(":memory:")
    run(sandbox, fresh)
    for stream in STREAMS:
        assert rows(store, stream) == rows(fresh, stream), stream


def test_noop_second_sync_is_one_request_per_stream(env):
    sandbox, api, store = env
    run(sandbox, store)
    results = run(sandbox, store)
    assert {n: (r.requests, r.records, r.changed) for n, r in results.items()} == dict.fromkeys(
        STREAMS, (1, 0, 0)
    )


def test_crash_mid_export_resumes_from_after_cursor(env):
    sandbox, api, store = env
    api.faults.inject("500", count=-1, after=3, path=r"/incremental/tickets/cursor")
    broken = run(sandbox, store)
    assert broken["tickets"].status == "error" and "500" in broken["tickets"].error
    assert broken["tickets"].records == 3 * 40
    assert (store.get_state("zd", "tickets") or {}).get("bookmark")
    api.faults.clear()
    before = api.requests["GET incremental_tickets_cursor"]
    resumed = run(sandbox, store)
    assert resumed["tickets"].status == "ok"
    total = api.visible_count("tickets")
    assert broken["tickets"].records + resumed["tickets"].records == total  # no gap, no re-read
    assert api.requests["GET incremental_tickets_cursor"] - before == math.ceil(total / 40) - 3
    assert len(rows(store, "tickets")) == total


def test_expired_cursor_means_a_full_reread(env):
    sandbox, api, store = env
    run(sandbox, store)
    advance(sandbox, 1)
    api.faults.inject("cursor_expired", path=r"/incremental/tickets/cursor")
    results = run(sandbox, store)
    assert results["tickets"].status == "ok"
    assert any("cursor" in note for note in results["tickets"].notes)
    assert results["tickets"].records >= api.visible_count("tickets")
    assert len(rows(store, "tickets")) == api.visible_count("tickets")


def test_time_based_duplicates_are_dropped(env):
    sandbox, api, store = env
    results = run(sandbox, store, connector(per_page=5))
    served = api.requests["GET incremental_organizations"]
    assert served > len(api.orgs) // 5  # many pages, each repeating its last second
    assert results["organizations"].records == len(api.orgs)
    assert results["users"].records == len(api.users)
    # The same second arrives again on the next run and is dropped there too.
    org_id = next(iter(api.orgs))
    sandbox.world.clock.advance(600)
    for other in list(api.orgs)[1:4]:
        api.update_organization(other, at=sandbox.world.clock.ts() - 300)
    api.update_organization(org_id, at=sandbox.world.clock.ts() - 300)
    again = run(sandbox, store, connector(per_page=5))
    assert again["organizations"].records == 4


def test_last_minute_is_left_for_the_next_run(env):
    sandbox, api, store = env
    run(sandbox, store)
    now = sandbox.world.clock.ts()
    api.update_ticket(7, at=now - 30, priority="urgent")
    org_id = next(iter(api.orgs))
    api.update_organization(org_id, at=now - 30, notes="fresh")
    results = run(sandbox, store)
    assert results["tickets"].records == 0 and results["organizations"].records == 0
    assert rows(store, "tickets")["7"]["priority"] != "urgent"
    assert store.get_state("zd", "organizations")["bookmark"] <= now - 61
    sandbox.world.clock.advance(120)
    results = run(sandbox, store)
    assert results["tickets"].records == 1 and results["organizations"].records == 1
    assert rows(store, "tickets")["7"]["priority"] == "urgent"
    assert rows(store, "organizations")[str(org_id)]["notes"] == "fresh"


def test_bookmark_never_passes_now_minus_a_minute(env):
    sandbox, api, store = env
    behind = dt.timedelta(days=60)  # the hub's clock lags the API's
    clock.set_source(lambda: sandbox.world.clock.now() - behind)
    run(sandbox, store)
    limit = int((sandbox.world.clock.now() - behind).timestamp()) - 60
    for stream in ("organizations", "users"):
        state = store.get_state("zd", stream)
        assert state["bookmark"] <= limit and state["seen"] == []
    again = run(sandbox, store)
    assert again["organizations"].records > 0 and again["organizations"].changed == 0


def test_429_storm_with_text_bodies(env):
    sandbox, api, store = env
    api.faults.inject("429", count=4, path=r"/incremental/", text_body=True)
    api.faults.inject("429", count=3, path=r"/satisfaction_ratings", text_body=True, retry_after=0)
    api.faults.inject("503", count=2, path=r"/incremental/users")
    results = run(sandbox, store)
    assert all(r.status == "ok" for r in results.values()), {n: r.error for n, r in results.items()}
    assert sum(r.retries for r in results.values()) == 9
    assert len(rows(store, "organizations")) == len(api.orgs)


def test_enforced_budget_is_honoured_with_retry_after():
    reset_shared_limiters()
    sandbox = Sandbox(World(companies=40, seed=9), enforce_limits=True, time_scale=0.005)
    api = sandbox.add(ZendeskAPI(sandbox))  # 10 incremental requests per 0.3 s
    api.seed()
    store = Store(":memory:")
    started = dt.datetime.now()
    results = sync_connection(store, connector(per_page=8), transport=sandbox.transport())
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert api.status_counts[429] >= 2  # bodies alternate JSON / text/plain (sandbox tests)
    assert len(rows(store, "tickets")) == api.visible_count("tickets")
    assert (dt.datetime.now() - started).total_seconds() < 15
    store.close()


def test_bad_credentials_fail_fast_without_the_secret(env):
    sandbox, api, store = env
    results = run(sandbox, store, connector(api_token="wrong-token-value"))
    for result in results.values():
        assert result.status == "error" and result.retries == 0 and result.requests == 1
        assert "401" in result.error and "wrong-token-value" not in result.error
        assert "api_token" in result.error  # the hint says what to fix


def test_oauth_token_works(env):
    sandbox, api, store = env
    settings = {k: v for k, v in BASE.items() if k not in ("email", "api_token")}
    conn = ZendeskConnector({**settings, "oauth_token": CREDS["oauth_token"]}, connection="zd")
    results = run(sandbox, store, conn)
    assert all(r.status == "ok" for r in results.values())
    assert CREDS["oauth_token"] in conn.secrets() and CREDS["oauth_token"] not in repr(
        conn.settings
    )


def test_settings_need_exactly_one_sign_in(env):
    base = {"subdomain": "acme"}
    with pytest.raises(ConfigError, match="no Zendesk credentials"):
        ZendeskConnector.parse_settings(base)
    with pytest.raises(ConfigError, match="keep one"):
        ZendeskConnector.parse_settings(
            {**base, "email": "a@b.co", "api_token": "t", "oauth_token": "o"}
        )
    with pytest.raises(ConfigError, match="needs email"):
        ZendeskConnector.parse_settings({**base, "api_token": "t"})
    with pytest.raises(ConfigError, match="subdomain"):
        ZendeskConnector.parse_settings({"subdomain": "not a name", "oauth_token": "o"})
    with pytest.raises(ConfigError, match="unknown key"):
        ZendeskConnector.parse_settings({**base, "oauth_token": "o", "password": "x"})
    conn = ZendeskConnector({"subdomain": "https://Acme.zendesk.com/", "oauth_token": "secret-o"})
    assert conn.base_url() == "https://acme.zendesk.com"
    assert "secret-o" not in repr(conn.settings) and "secret-o" not in repr(conn.auth())
    limits = {r.name: r for r in conn.rate_limits()}
    assert limits["incremental"].limit == 10 and limits["requests"].limit == 400
    assert limits["incremental"].applies("/api/v2/incremental/tickets/cursor.json")


def test_start_date_bounds_the_first_export(env):
    sandbox, api, store = env
    start = sandbox.world.clock.now() - dt.timedelta(days=20)
    results = run(sandbox, store, connector(start_date=start.isoformat()))
    since = int(start.timestamp())
    assert results["tickets"].records == api.visible_count("tickets", since=since)
    assert results["organizations"].records == api.visible_count("organizations", since=since)


def test_check_and_registration(env):
    sandbox, api, store = env
    conn = connector()
    with conn.client(transport=sandbox.transport()) as client:
        assert conn.check(client) == f"Zendesk sandbox: signed in as {CREDS['email']} (admin)"
    registered = []
    register_hook(registered.append)
    assert registered == [ZendeskConnector]


class TestZendeskStandardSuite(SandboxConnectorTests):
    """hub.testing's standard suite against the whole sandbox."""

    connector_class = ZendeskConnector
    api_name = "zendesk"
    settings = {**BASE, "per_page": 20, "page_size": 10}
    bad_settings = {**BASE, "api_token": "not-the-token"}
    resume_stream = "tickets"
    resume_path = r"/incremental/tickets/cursor"
