"""The fake BuiltWith Domain API: multi-lookup, errors in the body, credits, shape, determinism."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import httpx
import pytest

from hub.sandbox.base import COMPETITORS, OUR_TECHNOLOGY, Sandbox
from hub.sandbox.builtwith import BuiltWithAPI
from hub.sandbox.world import CREDENTIALS, World, advance

KEY = CREDENTIALS["builtwith"]["api_key"]
EXAMPLE = Path("/work/shared/specs/builtwith/example-domain-response.json")
DAY_MS = 86_400_000


def make(companies: int = 200, seed: int = 3, **kwargs) -> tuple[Sandbox, BuiltWithAPI]:
    # Only the BuiltWith fake: these tests must not depend on the other three.
    world = World(companies=companies, seed=seed)
    sandbox = Sandbox(world, **kwargs)
    api = sandbox.add(BuiltWithAPI(sandbox))
    api.seed()
    return sandbox, api


@pytest.fixture()
def env():
    sandbox, api = make()
    client = httpx.Client(transport=sandbox.transport(), base_url="https://api.builtwith.com")
    yield sandbox, api, client
    client.close()


def distinct_domains(world: World, count: int) -> list[str]:
    out: list[str] = []
    for company in world.companies:
        if company.domain not in out:
            out.append(company.domain)
        if len(out) == count:
            break
    return out


def lookup(client: httpx.Client, domains: list[str], key: str = KEY, version: str = "v22", **flags):
    params = {"KEY": key, "LOOKUP": ",".join(domains), **flags}
    return client.get(f"/{version}/api.json", params=params)


def test_owns_only_builtwith_paths(env):
    _, api, _ = env
    assert api.owns("/v22/api.json") and api.owns("/v26/api.csv") and api.owns("/v20/api.xml")
    assert api.owns("/whoamiv1/api.json") and api.owns("/usagev2/api.json")
    assert not api.owns("/v1/customers")  # Stripe's
    assert not api.owns("/v1/api.json")
    assert not api.owns("/v19/api.json")
    assert not api.owns("/api/v2/tickets.json")


def test_multi_lookup_of_16(env):
    sandbox, api, client = env
    domains = distinct_domains(sandbox.world, 16)
    response = lookup(client, domains)
    assert response.status_code == 200
    body = response.json()
    assert body["Errors"] == [] and body["Trust"] is None
    assert [item["Lookup"] for item in body["Results"]] == domains
    assert api.credits_used == 16
    assert response.headers["X-API-CREDITS-USED"] == "16"
    assert int(response.headers["X-API-CREDITS-REMAINING"]) == api.credits_remaining
    assert int(response.headers["X-API-CREDITS-AVAILABLE"]) == api.credits_remaining + 16
    assert api.requests["GET domain"] == 1


def test_more_than_16_rejected_without_charge(env):
    sandbox, api, client = env
    response = lookup(client, distinct_domains(sandbox.world, 17))
    assert response.status_code == 200
    body = response.json()
    assert body["Results"] == []
    assert len(body["Errors"]) == 1 and body["Errors"][0]["Code"] == -7
    assert "16" in body["Errors"][0]["Message"]
    assert api.credits_used == 0


def test_key_that_is_not_a_guid_is_an_error_with_200(env):
    sandbox, api, client = env
    domains = distinct_domains(sandbox.world, 2)
    for key in ("not-a-guid", ""):
        response = lookup(client, domains, key=key)
        assert response.status_code == 200
        body = response.json()
        assert body["Results"] == []
        assert body["Errors"][0]["Code"] == -2
        assert body["Errors"][0]["Message"] == "API key wrong - it needs to be a Guid"
        assert "X-API-CREDITS-REMAINING" not in response.headers
    assert api.credits_used == 0


def test_wrong_guid_is_401_with_the_same_body(env):
    sandbox, api, client = env
    response = lookup(
        client, distinct_domains(sandbox.world, 1), key="11111111-2222-4333-8444-555555555555"
    )
    assert response.status_code == 401
    assert response.json()["Errors"][0]["Code"] == -2
    assert (
        client.get(
            "/usagev2/api.json", params={"KEY": "11111111-2222-4333-8444-555555555555"}
        ).status_code
        == 401
    )
    assert api.credits_used == 0


def test_unknown_and_invalid_domains_are_per_domain_errors(env):
    sandbox, api, client = env
    good = distinct_domains(sandbox.world, 2)
    response = lookup(client, [good[0], "nobody-here.example", "not a domain", good[1]])
    assert response.status_code == 200
    body = response.json()
    assert [item["Lookup"] for item in body["Results"]] == good
    errors = {item["Lookup"]: item for item in body["Errors"]}
    assert set(errors) == {"nobody-here.example", "not a domain"}
    assert all(item["Code"] == -8 and item["Message"] for item in errors.values())
    assert api.credits_used == 2  # errors cost nothing


def test_lookup_normalises_and_deduplicates(env):
    sandbox, api, client = env
    domain = distinct_domains(sandbox.world, 1)[0]
    response = lookup(client, [f"https://www.{domain.upper()}/pricing?x=1", domain])
    body = response.json()
    assert [item["Lookup"] for item in body["Results"]] == [domain]
    assert api.credits_used == 1


def test_credit_counting_and_free_endpoints(env):
    sandbox, api, client = env
    domains = distinct_domains(sandbox.world, 5)
    lookup(client, domains[:3])
    lookup(client, domains[3:])
    assert api.credits_used == 5
    usage = client.get("/usagev2/api.json", params={"KEY": KEY})
    assert usage.json() == {
        "used": 5,
        "purchased": api.credits_remaining + 5,
        "remaining": api.credits_remaining,
    }
    whoami = client.get("/whoamiv1/api.json", params={"KEY": KEY}).json()
    assert whoami["account"]["max_batch_size"]["domain_lookup"] == 16
    assert whoami["rate_limits"]["requests_per_second"] == 10
    assert whoami["credits"]["used"] == 5
    assert api.credits_used == 5  # neither costs a credit
    assert usage.headers["X-API-CREDITS-USED"] == "5"


def test_out_of_credits(env):
    sandbox, api, client = env
    domains = distinct_domains(sandbox.world, 3)
    api.credits_remaining = 2
    body = lookup(client, domains).json()
    # The domains that fit are answered; the rest get a per-domain -3.
    assert [item["Lookup"] for item in body["Results"]] == domains[:2]
    assert [(item["Lookup"], item["Code"]) for item in body["Errors"]] == [(domains[2], -3)]
    assert api.credits_remaining == 0
    response = lookup(client, domains)
    assert response.status_code == 200
    body = response.json()
    assert body["Results"] == [] and body["Errors"][0]["Code"] == -3
    assert response.headers["X-API-CREDITS-REMAINING"] == "0"


def test_unsupported_format_and_unknown_method(env):
    sandbox, _, client = env
    domain = distinct_domains(sandbox.world, 1)[0]
    response = client.get("/v22/api.xml", params={"KEY": KEY, "LOOKUP": domain})
    assert response.json()["Errors"][0]["Code"] == -1
    response = client.post("/v22/api.json", params={"KEY": KEY, "LOOKUP": domain})
    assert response.status_code == 404 and response.json()["Errors"]


def _keys(obj: dict) -> set[str]:
    return set(obj)


def test_shape_matches_the_documented_example(env):
    if not EXAMPLE.exists():
        pytest.skip("shared/specs/builtwith/example-domain-response.json is not available here")
    example = json.loads(EXAMPLE.read_text())
    sandbox, _, client = env
    body = lookup(client, distinct_domains(sandbox.world, 4)).json()
    assert _keys(body) == _keys(example)
    ex_item = example["Results"][0]
    ex_tech = ex_item["Result"]["Paths"][0]["Technologies"][0]
    for item in body["Results"]:
        assert _keys(item) == _keys(ex_item)
        assert _keys(item["Result"]) == _keys(ex_item["Result"])
        assert _keys(item["Meta"]) == _keys(ex_item["Meta"])
        assert _keys(item["Attributes"]) == _keys(ex_item["Attributes"])
        assert item["Result"]["IsDB"] == "True"
        for path in item["Result"]["Paths"]:
            assert _keys(path) == _keys(ex_item["Result"]["Paths"][0])
            assert path["Url"] == "" and isinstance(path["SubDomain"], str)
            for tech in path["Technologies"]:
                assert _keys(tech) - {"Parent"} == _keys(ex_tech)
                assert tech["IsPremium"] in ("yes", "no")
                assert tech["Categories"] is None or isinstance(tech["Categories"], list)
                # Epoch milliseconds, like the example.
                assert (
                    tech["FirstDetected"] > 10**12 and tech["LastDetected"] >= tech["FirstDetected"]
                )


def test_flags_present_even_when_empty(env):
    sandbox, _, client = env
    domain = distinct_domains(sandbox.world, 1)[0]
    body = lookup(client, [domain], HIDETEXT="", NOMETA="", NOATTR="", LIVEONLY="").json()
    item = body["Results"][0]
    assert item["Meta"] is None and item["Attributes"] is None
    techs = [t for p in item["Result"]["Paths"] for t in p["Technologies"]]
    assert techs and all(t["Description"] is None and t["Tag"] is None for t in techs)
    assert all(t["LastDetected"] == item["LastIndexed"] for t in techs)  # live only
    pii = lookup(client, [domain], NOPII="yes").json()["Results"][0]["Meta"]
    assert pii["Emails"] is None and pii["CompanyName"]
    full = lookup(client, [domain], HIDETEXT="no").json()["Results"][0]
    assert full["Result"]["Paths"][0]["Technologies"][0]["Description"]


def current(tech: dict, now_ms: int) -> bool:
    """The mapping's rule: a technology is current when seen within the last 7 days."""
    return now_ms - tech["LastDetected"] <= 7 * DAY_MS


def techs_by_name(body: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for path in body["Results"][0]["Result"]["Paths"]:
        for tech in path["Technologies"]:
            out.setdefault(tech["Name"], []).append({**tech, "SubDomain": path["SubDomain"]})
    return out


def test_seeded_world_signals(env):
    sandbox, _, client = env
    world = sandbox.world
    now_ms = int(world.now().timestamp() * 1000)
    seen = {"widget": 0, "removed": 0, "competitor": 0}
    owners = {}
    for company in world.companies:
        owners.setdefault(company.domain, company)
    for company in owners.values():
        techs = techs_by_name(lookup(client, [company.domain]).json())
        widget = techs.get(OUR_TECHNOLOGY, [])
        if company.uses_widget:
            assert widget and current(widget[0], now_ms)
            assert widget[0]["FirstDetected"] > company.created_at.timestamp() * 1000
            seen["widget"] += 1
        elif company.archetype == "churned":
            assert widget and not current(widget[0], now_ms)
            assert now_ms - widget[0]["LastDetected"] >= 14 * DAY_MS  # weeks ago
            seen["removed"] += 1
        if company.competitor:
            rival = techs[company.competitor][0]
            assert current(rival, now_ms)
            assert now_ms - rival["FirstDetected"] <= 61 * DAY_MS
            seen["competitor"] += 1
        # Every technology that is not removed has been seen in the last few days.
        for versions in techs.values():
            for tech in versions:
                assert tech["LastDetected"] <= now_ms
    assert all(seen.values()), seen


def test_freemail_domain_is_a_big_generic_profile(env):
    _, _, client = env
    body = lookup(client, ["gmail.com"]).json()
    techs = techs_by_name(body)
    assert len(techs) >= 15
    assert OUR_TECHNOLOGY not in techs and not set(COMPETITORS) & set(techs)
    assert len(body["Results"][0]["Result"]["Paths"]) > 1


def test_determinism_and_lazy_generation_agree_with_advance():
    a_sandbox, a = make(seed=11)
    b_sandbox, b = make(seed=11)
    domains = distinct_domains(a_sandbox.world, 16)
    a_client = httpx.Client(transport=a_sandbox.transport(), base_url="https://x")
    b_client = httpx.Client(transport=b_sandbox.transport(), base_url="https://x")
    # A looks every domain up before the month passes, B only after: same answers.
    lookup(a_client, domains)
    advance(a_sandbox, 30)
    advance(b_sandbox, 30)
    assert lookup(a_client, domains).json() == lookup(b_client, domains).json()
    c_sandbox, _ = make(seed=12)
    c_client = httpx.Client(transport=c_sandbox.transport(), base_url="https://x")
    assert (
        lookup(c_client, distinct_domains(c_sandbox.world, 3)).json()
        != lookup(a_client, domains[:3]).json()
    )


def test_advance_moves_indexing_and_changes_signals():
    sandbox, api = make(companies=400, seed=5)
    client = httpx.Client(transport=sandbox.transport(), base_url="https://x")
    world = sandbox.world
    watched = [c for c in world.companies if c.archetype in ("at_risk", "churned", "expanding")]
    before = {c.domain: api.current_technologies(c.domain) for c in watched}
    healthy = next(c for c in world.companies if c.archetype == "healthy" and c.uses_widget)
    first = techs_by_name(lookup(client, [healthy.domain]).json())[OUR_TECHNOLOGY][0]
    advance(sandbox, 30)
    now_ms = int(world.now().timestamp() * 1000)
    later = techs_by_name(lookup(client, [healthy.domain]).json())[OUR_TECHNOLOGY][0]
    assert later["LastDetected"] > first["LastDetected"] and current(later, now_ms)
    assert later["FirstDetected"] == first["FirstDetected"]
    lost = gained = subdomain = 0
    for company in watched:
        now = api.current_technologies(company.domain)
        if company.archetype == "expanding":
            subs = {
                t["subdomain"]
                for t in api.technologies(company.domain)
                if t["name"] == OUR_TECHNOLOGY
            }
            subdomain += len(subs - {""}) > 0
            continue
        lost += OUR_TECHNOLOGY in before[company.domain] and OUR_TECHNOLOGY not in now
        gained += bool((now - before[company.domain]) & set(COMPETITORS))
    assert lost and gained and subdomain, (lost, gained, subdomain)
    # A removed widget stops being current in the API's view a week after it went.
    gone = next(
        c
        for c in watched
        if OUR_TECHNOLOGY in before[c.domain]
        and OUR_TECHNOLOGY not in api.current_technologies(c.domain)
    )
    advance(sandbox, 8)
    now_ms = int(world.now().timestamp() * 1000)
    widget = techs_by_name(lookup(client, [gone.domain]).json())[OUR_TECHNOLOGY]
    assert not any(current(t, now_ms) for t in widget if t["SubDomain"] == "")


def test_rate_limit_429_when_enforced():
    sandbox, api = make(enforce_limits=True, time_scale=0.05)  # 10 requests per 50 ms
    client = httpx.Client(transport=sandbox.transport(), base_url="https://x")
    statuses = [client.get("/usagev2/api.json", params={"KEY": KEY}).status_code for _ in range(12)]
    assert statuses[:10] == [200] * 10 and 429 in statuses[10:]
    limited = client.get("/usagev2/api.json", params={"KEY": KEY})
    if limited.status_code == 429:
        assert limited.headers["retry-after"] and limited.json()["Errors"][0]["Message"]
    time.sleep(0.06)
    assert client.get("/usagev2/api.json", params={"KEY": KEY}).status_code == 200


def test_not_limited_by_default(env):
    _, _, client = env
    assert all(
        client.get("/usagev2/api.json", params={"KEY": KEY}).status_code == 200 for _ in range(30)
    )


def test_over_loopback_http():
    sandbox, api = make(companies=50)
    server = sandbox.serve()
    try:
        domains = distinct_domains(sandbox.world, 3)
        response = httpx.get(
            f"{server.url}/v23/api.json", params={"KEY": KEY, "LOOKUP": ",".join(domains)}
        )
        assert [item["Lookup"] for item in response.json()["Results"]] == domains
        assert response.headers["x-api-credits-used"] == "3"
    finally:
        server.stop()


def test_seed_is_fast_for_a_large_world():
    world = World(companies=20_000, seed=1)
    sandbox = Sandbox(world)
    api = sandbox.add(BuiltWithAPI(sandbox))
    started = time.perf_counter()
    api.seed()
    assert time.perf_counter() - started < 1.0
    assert api.technologies(world.companies[-1].domain)


def test_world_start_is_honoured():
    start = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)
    world = World(companies=30, seed=2, start=start)
    sandbox = Sandbox(world)
    api = sandbox.add(BuiltWithAPI(sandbox))
    api.seed()
    start_ms = int(start.timestamp() * 1000)
    for company in world.companies:
        for tech in api.technologies(company.domain):
            assert tech["last_detected"] <= start_ms
            assert start_ms - tech["last_detected"] <= 3 * DAY_MS or not tech["current"]


def test_fast_path_writes_the_reference_rendering_and_draws_as_the_stdlib():
    """A first lookup generates with ``Draws`` and renders with ``render_json``: the same
    profile the standard library's draws give and the bytes ``json.dumps`` of the reference
    ``_render`` gives, for every flag, a past and a future day, and a date range."""
    import itertools

    from hub.sandbox.base import rng_for
    from hub.sandbox.builtwith.fastpath import Draws, render_json
    from hub.sandbox.builtwith.records import _day

    sandbox, api = make(companies=60, seed=5)
    rng, draws = rng_for(1, "x"), Draws(rng_for(1, "x"))
    population = list(range(20))
    assert [rng.randint(3, 900) for _ in range(50)] == [draws.randint(3, 900) for _ in range(50)]
    assert [rng.choice(population) for _ in range(50)] == [
        draws.choice(population) for _ in range(50)
    ]
    assert rng.sample(population, 8) == draws.sample(population, 8)
    assert rng.randrange(7) == draws.randrange(7) and rng.random() == draws.random()
    today = _day(sandbox.world.now())
    flags = ("HIDETEXT", "HIDEDL", "LIVEONLY", "NOMETA", "NOPII", "NOATTR")
    domains = [c.domain for c in sandbox.world.companies] + ["gmail.com"]
    for domain in domains:
        profile = api._profile(domain)
        for combo in itertools.product([False, True], repeat=len(flags)):
            options = dict(zip(flags, combo))
            for day, fd in ((today, None), (today + 40, None), (today, (0, today * DAY_MS))):
                fast = render_json(profile, day, options, fd, None)
                slow = api._render(profile, day, options, fd, None)
                assert fast == json.dumps(slow, separators=(",", ":"), default=str)
