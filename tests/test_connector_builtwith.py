"""The BuiltWith connector against the in-process BuiltWith fake."""

from __future__ import annotations

import logging
import math
import re
import threading

import pytest

from connectors.builtwith import BuiltWithConnector
from connectors.builtwith import register_connectors as register_hook
from hub import clock
from hub.errors import ConfigError
from hub.http.ratelimit import reset_shared_limiters
from hub.sandbox.base import OUR_TECHNOLOGY, Sandbox
from hub.sandbox.builtwith import BuiltWithAPI
from hub.sandbox.world import CREDENTIALS, World, advance
from hub.store import RawRecord, Store
from hub.store.domains import account_domains
from hub.sync import sync_connection
from hub.testing import SandboxConnectorTests

KEY = CREDENTIALS["builtwith"]["api_key"]


@pytest.fixture()
def world_env():
    reset_shared_limiters()
    world = World(companies=120, seed=7)
    sandbox = Sandbox(world)
    api = sandbox.add(BuiltWithAPI(sandbox))
    api.seed()
    clock.set_source(world.clock.now)  # freshness follows the simulated clock
    store = Store(":memory:")
    yield sandbox, api, store
    clock.set_source(None)
    store.close()
    reset_shared_limiters()


def add_accounts(store: Store, domains: list[str]) -> None:
    store.db["accounts"].insert_all(
        [{"id": str(i), "name": d, "domain": d} for i, d in enumerate(domains)],
        pk="id",
        replace=True,
    )


def world_domains(sandbox: Sandbox, count: int) -> list[str]:
    out: list[str] = []
    for company in sandbox.world.companies:
        if company.domain not in out:
            out.append(company.domain)
    return out[:count]


def connector(key: str = KEY, **settings) -> BuiltWithConnector:
    return BuiltWithConnector({"api_key": key, **settings}, connection="bw")


def run(sandbox: Sandbox, store: Store, conn: BuiltWithConnector, **kwargs):
    (result,) = sync_connection(
        store, conn, transport=sandbox.transport(), sleep=lambda s: None, **kwargs
    )
    return result


def rows(store: Store) -> dict[str, dict]:
    return {r["id"]: r["data"] for r in store.raw_rows("raw_bw_domains")}


def test_sixteen_domains_per_request(world_env):
    sandbox, api, store = world_env
    domains = world_domains(sandbox, 50)
    add_accounts(store, [*domains, "gmail.com", "Billing@Yahoo.com"])  # free-mail never looked up
    result = run(sandbox, store, connector())
    assert result.status == "ok", result.error
    assert api.requests["GET domain"] == math.ceil(50 / 16) == result.requests
    assert api.credits_used == 50
    assert set(rows(store)) == set(domains)


def test_domains_come_from_the_host_and_settings(world_env):
    sandbox, api, store = world_env
    domains = world_domains(sandbox, 5)
    # The connector reads no other connector's raw tables: HubSpot companies alone are not
    # looked up until they are accounts (the host maps them before BuiltWith syncs).
    records = [
        RawRecord(id=str(i), data={"id": str(i), "properties": {"domain": d}})
        for i, d in enumerate(domains[:3])
    ]
    store.write_page("crm", "companies", records, None)
    add_accounts(store, [d.upper() for d in domains[:3]] + ["gmail.com"])
    result = run(sandbox, store, connector(domains=[f"https://www.{domains[4]}/about"]))
    assert result.status == "ok"
    assert set(rows(store)) == {*domains[:3], domains[4]}  # normalised, no free-mail
    assert account_domains(store) == sorted([d.upper() for d in domains[:3]] + ["gmail.com"])


def test_no_domains_means_no_requests(world_env):
    sandbox, api, store = world_env
    result = run(sandbox, store, connector())
    assert result.status == "ok" and result.requests == 0 and api.total_requests() == 0


def test_freshness_window_spends_no_credits_on_rerun(world_env):
    sandbox, api, store = world_env
    domains = world_domains(sandbox, 20)
    add_accounts(store, domains)
    run(sandbox, store, connector())
    assert api.credits_used == 20
    again = run(sandbox, store, connector())
    assert again.status == "ok" and again.requests == 0 and api.credits_used == 20
    assert any("within 7 days" in note for note in again.notes)
    advance(sandbox, 8)
    later = run(sandbox, store, connector())
    assert later.requests == 2 and api.credits_used == 40
    # A shorter window is a setting.
    advance(sandbox, 2)
    assert run(sandbox, store, connector(freshness_days=1)).requests == 2


def test_rows_keep_every_technology_as_reported(world_env):
    sandbox, api, store = world_env
    world = sandbox.world
    ours = next(c for c in world.companies if c.uses_widget)
    rival = next(c for c in world.companies if c.competitor)
    add_accounts(store, [ours.domain, rival.domain])
    run(sandbox, store, connector())
    data = rows(store)
    widget = [t for t in data[ours.domain]["technologies"] if t["name"] == OUR_TECHNOLOGY]
    assert widget and widget[0]["first_detected"] > 10**12
    assert widget[0]["last_detected_at"].endswith("Z")
    # The connector only fetches: classification is the mapping's (no flags stored).
    assert all("ours" not in t and "competitor" not in t for t in data[ours.domain]["technologies"])
    assert rival.competitor in [t["name"] for t in data[rival.domain]["technologies"]]
    assert data[rival.domain]["looked_up_at"] and data[rival.domain]["is_db"] is True


def test_classification_settings_moved_to_the_mapping():
    with pytest.raises(ConfigError, match=r"our_technologies moved to \[timeline.builtwith\]"):
        connector(our_technologies=["Lumen Widget"])


def test_per_domain_errors_are_skipped_and_reported(world_env):
    sandbox, api, store = world_env
    good = world_domains(sandbox, 3)
    add_accounts(store, good)
    result = run(sandbox, store, connector(domains=["nobody-here.example"]))
    assert result.status == "ok", result.error
    assert set(rows(store)) == set(good)
    assert any(
        "nobody-here.example" in note and "skipped 1 domains" in note for note in result.notes
    )
    assert (
        store.runs(kind="sync")[0]["note"]
        and "nobody-here.example" in store.runs(kind="sync")[0]["note"]
    )
    # A failed domain waits for the freshness window like any other.
    assert run(sandbox, store, connector(domains=["nobody-here.example"])).requests == 0


@pytest.mark.parametrize(
    "key, status", [("not-a-guid-key-123", 200), ("11111111-2222-4333-8444-555555555555", 401)]
)
def test_bad_key_is_fatal_in_one_clear_line_without_the_key(world_env, caplog, key, status):
    sandbox, api, store = world_env
    caplog.set_level(logging.DEBUG)
    add_accounts(store, world_domains(sandbox, 40))
    result = run(sandbox, store, connector(key=key))
    assert result.status == "error"
    assert "BuiltWith refused the API key" in result.error and "hub check" in result.error
    assert "\n" not in result.error and key not in result.error
    assert result.requests == 1  # fatal: not retried, no further batches
    assert api.status_counts[status] == 1
    assert key not in caplog.text
    for run_row in store.runs():
        assert key not in str(run_row)


def test_key_never_in_logs_database_or_repr(world_env, caplog):
    sandbox, api, store = world_env
    caplog.set_level(logging.DEBUG)
    add_accounts(store, world_domains(sandbox, 20))
    conn = connector()
    api.faults.inject("500", count=1)  # a retried error goes through the error path too
    result = run(sandbox, store, conn)
    assert result.status == "ok" and result.retries == 1
    assert "GET" in caplog.text  # requests were logged …
    assert KEY not in caplog.text  # … without the key
    assert KEY not in repr(conn.settings) and KEY not in repr(conn.auth())
    dump = "\n".join(str(row) for table in store.db.table_names() for row in store.db[table].rows)
    assert KEY not in dump


def test_out_of_credits_keeps_what_was_answered_and_stops(world_env):
    sandbox, api, store = world_env
    domains = world_domains(sandbox, 40)
    add_accounts(store, domains)
    api.credits_remaining = 20
    result = run(sandbox, store, connector())
    assert result.status == "error"
    assert "out of API credits" in result.error and "\n" not in result.error
    assert len(rows(store)) == 20
    # With no credits at all the first request says so (200 + Errors -3): fatal at once.
    again = run(sandbox, store, connector())
    assert again.status == "error" and "out of API credits" in again.error and again.requests == 1
    api.credits_remaining = 100
    resumed = run(sandbox, store, connector())
    assert resumed.status == "ok" and api.credits_used == 40 and len(rows(store)) == 40


def test_killed_run_resumes_without_looking_up_twice(world_env):
    sandbox, api, store = world_env
    domains = world_domains(sandbox, 48)
    add_accounts(store, domains)
    stop = threading.Event()

    def progress(connection, stream, count, done):
        if count:
            stop.set()  # killed after the first committed page

    first = run(sandbox, store, connector(), stop=stop, progress=progress)
    assert first.status == "stopped" and len(rows(store)) == 16
    second = run(sandbox, store, connector())
    assert second.status == "ok" and second.requests == 2
    assert api.credits_used == 48 and len(rows(store)) == 48


def test_api_version_is_configurable_and_check_is_free(world_env):
    sandbox, api, store = world_env
    add_accounts(store, world_domains(sandbox, 3))
    conn = connector(api_version="v23")
    run(sandbox, store, conn)
    assert any(path == "/v23/api.json" for _, path, _ in api.log)
    used = api.credits_used
    with conn.client(transport=sandbox.transport()) as client:
        text = conn.check(client)
    assert "credits remaining" in text and "16 domains per lookup" in text
    assert api.credits_used == used
    assert conn.credits_remaining == api.credits_remaining


def test_settings_validation():
    with pytest.raises(ConfigError, match="batch_size"):
        connector(batch_size=17)
    with pytest.raises(ConfigError, match="api_version"):
        connector(api_version="latest")
    with pytest.raises(ConfigError, match="unknown key"):
        connector(token="x")
    with pytest.raises(ConfigError, match="api_key"):
        BuiltWithConnector({}, connection="bw")
    conn = connector(requests_per_second=0.5)
    assert conn.rate_limits()[0].per_seconds == 2.0


def test_hook_registers_the_connector():
    seen = []
    register_hook(seen.append)
    assert seen == [BuiltWithConnector] and BuiltWithConnector.name == "builtwith"


# -- the standard connector suite -------------------------------------------------------------

SUITE_COMPANIES, SUITE_SEED = 30, 7


def _suite_domains() -> list[str]:
    return sorted({c.domain for c in World(companies=SUITE_COMPANIES, seed=SUITE_SEED).companies})


class TestBuiltWithStandardSuite(SandboxConnectorTests):
    """``hub.testing`` against the BuiltWith fake.

    BuiltWith has no list endpoint: what the connector reads is decided by the domains it is
    given (here ``settings.domains``, as a hub without accounts would) and by the freshness
    window. So "an upstream change" for the incremental test is a new batch of domains to
    look up, and snapshots ignore ``looked_up_at`` (the time of the lookup, not data).
    """

    connector_class = BuiltWithConnector
    api_name = "builtwith"
    companies, seed = SUITE_COMPANIES, SUITE_SEED
    settings = {"api_key": KEY, "domains": _suite_domains()[:20], "requests_per_second": 1000}
    bad_settings = {"api_key": "not-a-guid", "domains": _suite_domains()[:20]}
    resume_path = r"/api\.json"

    def make_world(self):
        # Only the BuiltWith fake: the suite must not depend on the other three.
        world = World(companies=self.companies, seed=self.seed)
        sandbox = Sandbox(world)
        sandbox.add(BuiltWithAPI(sandbox)).seed()
        return sandbox

    def change(self, world):
        self.settings = {**self.settings, "domains": _suite_domains()}  # 9 more domains

    @staticmethod
    def _live(snapshot):
        out = {}
        for table, rows in snapshot.items():
            out[table] = [
                (rid, re.sub(r"'looked_up_at': '[^']*'", "", body), deleted)
                for rid, body, deleted in rows
            ]
        return out


def test_our_technologies_required_when_builtwith_is_configured(tmp_path):
    from click.testing import CliRunner

    from hub.cli import cli

    toml = tmp_path / "hub.toml"
    toml.write_text(
        f'[connections.bw]\nconnector = "builtwith"\n[connections.bw.settings]\napi_key = "{KEY}"\n'
    )
    result = CliRunner().invoke(cli, ["-c", str(toml), "check", "--offline"])
    assert result.exit_code == 1
    assert "timeline.builtwith.our_technologies is required" in result.output
    assert "Traceback" not in result.output
    toml.write_text(toml.read_text() + '[timeline.builtwith]\nour_technologies = ["Acme Chat"]\n')
    result = CliRunner().invoke(cli, ["-c", str(toml), "check", "--offline"])
    assert result.exit_code == 0, result.output
