"""Behaviour of the fake Zendesk API: exports, windows, paging, auth, limits, determinism.

Each test builds a small world with only the Zendesk fake (milliseconds), so tests can
mutate it freely.
"""

from __future__ import annotations

import base64
import calendar
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from hub.sandbox.base import Sandbox
from hub.sandbox.world import CREDENTIALS, World, advance
from hub.sandbox.zendesk import ZendeskAPI

CREDS = CREDENTIALS["zendesk"]
BASIC = (
    "Basic " + base64.b64encode(f"{CREDS['email']}/token:{CREDS['api_token']}".encode()).decode()
)
EXPORT = "/api/v2/incremental/tickets/cursor.json"


def make(companies: int = 60, seed: int = 3, **kwargs) -> tuple[Sandbox, ZendeskAPI]:
    sandbox = Sandbox(World(companies=companies, seed=seed), **kwargs)
    api = sandbox.add(ZendeskAPI(sandbox))
    api.seed()
    return sandbox, api


def client(sandbox: Sandbox, auth: str | None = BASIC) -> httpx.Client:
    headers = {"authorization": auth} if auth else {}
    return httpx.Client(
        transport=sandbox.transport(), base_url="https://sandbox.zendesk.com", headers=headers
    )


def export_all(
    http: httpx.Client, first: str, params: dict | None = None
) -> tuple[list[dict], dict]:
    """Follow ``after_url`` to the end of the stream; returns tickets and the last body."""
    tickets: list[dict] = []
    response = http.get(first, params=params)
    for _ in range(10_000):
        assert response.status_code == 200, response.text
        body = response.json()
        tickets.extend(body["tickets"])
        if body["end_of_stream"]:
            return tickets, body
        response = http.get(body["after_url"])
    raise AssertionError("export did not end")


def key(record: dict) -> tuple[str, int]:
    return record["updated_at"], record["id"]


# -- cursor export ---------------------------------------------------------------------


def test_cursor_export_pages_in_order_to_end_of_stream():
    sandbox, api = make()
    http = client(sandbox)
    tickets, last = export_all(http, EXPORT, {"start_time": 0, "per_page": 7})
    ids = [t["id"] for t in tickets]
    assert len(ids) == len(set(ids)) == api.visible_count("tickets") > 50
    assert [key(t) for t in tickets] == sorted(key(t) for t in tickets)
    assert last["after_url"].startswith(
        "https://sandbox.zendesk.com/api/v2/incremental/tickets/cursor.json?cursor="
    )
    assert "per_page=7" in last["after_url"]
    assert last["after_cursor"] and last["end_of_stream"] is True
    assert api.requests["GET incremental_tickets_cursor"] == -(
        -len(ids) // 7
    )  # no empty extra page


def test_cursor_resumes_and_a_ticket_updated_later_comes_again_later():
    sandbox, api = make()
    http = client(sandbox)
    _, last = export_all(http, EXPORT, {"start_time": 0})
    cursor = last["after_cursor"]
    # Nothing changed: the saved cursor yields an empty last page.
    body = http.get(EXPORT, params={"cursor": cursor}).json()
    assert (
        body["tickets"] == [] and body["end_of_stream"] is True and body["after_cursor"] == cursor
    )
    ticket_id = api.tickets_for(5)[0]["id"] if api.tickets_for(5) else 1
    sandbox.world.clock.advance(300)
    api.update_ticket(ticket_id, at=sandbox.world.clock.ts() - 120, status="solved")
    body = http.get(EXPORT, params={"cursor": cursor}).json()
    assert [t["id"] for t in body["tickets"]] == [ticket_id]
    assert body["tickets"][0]["status"] == "solved"


def test_tickets_updated_in_the_same_second_survive_tiny_pages():
    sandbox, api = make()
    seconds = Counter(t.updated for t in api.tickets.values())
    moment, size = seconds.most_common(1)[0]
    assert size >= 5  # the planted trap
    start = moment - 10
    tickets, _ = export_all(client(sandbox), EXPORT, {"start_time": start, "per_page": 2})
    ids = [t["id"] for t in tickets]
    same = {t.id for t in api.tickets.values() if t.updated == moment}
    assert same <= set(ids) and len(ids) == len(set(ids))


def test_start_time_must_be_a_minute_old_and_the_last_minute_is_hidden():
    sandbox, api = make()
    http = client(sandbox)
    now = sandbox.world.clock.ts()
    response = http.get(EXPORT, params={"start_time": now - 30})
    assert response.status_code == 400
    assert (
        response.json()["error"] == "InvalidValue"
        and "too recent" in response.json()["description"]
    )
    assert http.get(EXPORT).status_code == 400  # neither start_time nor cursor

    api.update_ticket(3, at=now - 30, priority="urgent")
    tickets, last = export_all(http, EXPORT, {"start_time": now - 3 * 86400})
    assert 3 not in {t["id"] for t in tickets}
    sandbox.world.clock.advance(45)
    body = http.get(EXPORT, params={"cursor": last["after_cursor"]}).json()
    assert [t["id"] for t in body["tickets"]] == [3]
    assert body["tickets"][0]["priority"] == "urgent"


def test_per_page_is_capped_at_1000():
    sandbox, api = make(companies=400)
    assert api.visible_count("tickets") > 1000
    body = client(sandbox).get(EXPORT, params={"start_time": 0, "per_page": 5000}).json()
    assert len(body["tickets"]) == 1000 and body["end_of_stream"] is False
    default = client(sandbox).get(EXPORT, params={"start_time": 0}).json()
    assert len(default["tickets"]) == 1000


def test_metric_sets_sideload_matches_the_page():
    sandbox, _ = make()
    body = (
        client(sandbox)
        .get(EXPORT, params={"start_time": 0, "per_page": 20, "include": "metric_sets"})
        .json()
    )
    assert [m["ticket_id"] for m in body["metric_sets"]] == [t["id"] for t in body["tickets"]]
    metric = body["metric_sets"][0]
    for field in (
        "reopens",
        "replies",
        "reply_time_in_minutes",
        "full_resolution_time_in_minutes",
        "solved_at",
    ):
        assert field in metric
    assert set(metric["reply_time_in_minutes"]) == {"calendar", "business"}
    assert "include=metric_sets" in body["after_url"]


def test_cursor_expired_fault_and_garbage_cursor():
    sandbox, api = make()
    http = client(sandbox)
    first = http.get(EXPORT, params={"start_time": 0, "per_page": 5}).json()
    api.faults.inject("cursor_expired", path="incremental/tickets/cursor")
    response = http.get(first["after_url"])
    assert response.status_code == 422 and response.json()["error"] == "InvalidCursor"
    assert http.get(first["after_url"]).status_code == 200  # one-shot
    assert http.get(EXPORT, params={"cursor": "not-a-cursor!"}).status_code == 422


# -- time-based exports ----------------------------------------------------------------


def walk_time_export(
    http: httpx.Client, path: str, plural: str, per_page: int
) -> tuple[list[dict], int]:
    items: list[dict] = []
    url, pages = path, 0
    params: dict | None = {"start_time": 0, "per_page": per_page}
    while True:
        body = http.get(url, params=params).json()
        pages += 1
        items.extend(body[plural])
        assert body["count"] == len(body[plural])
        if body[plural]:
            stamps = [
                calendar.timegm(time.strptime(i["updated_at"], "%Y-%m-%dT%H:%M:%SZ"))
                for i in body[plural]
            ]
            if len(set(stamps)) > 1 or len(stamps) < per_page:
                assert body["end_time"] == stamps[-1]  # the next page repeats this second
            else:
                assert body["end_time"] == stamps[-1] + 1  # a page within one second moves on
        assert parse_qs(urlsplit(body["next_page"]).query)["start_time"] == [str(body["end_time"])]
        if body["end_of_stream"]:
            assert len(body[plural]) < per_page
            return items, pages
        url, params = body["next_page"], None


def test_time_based_exports_repeat_the_boundary_second():
    sandbox, api = make()
    http = client(sandbox)
    orgs, pages = walk_time_export(
        http, "/api/v2/incremental/organizations.json", "organizations", 7
    )
    ids = [o["id"] for o in orgs]
    assert set(ids) == set(api.orgs)
    assert len(ids) > len(set(ids))  # duplicates: each page's last item starts the next page
    assert pages > 5
    users, _ = walk_time_export(http, "/api/v2/incremental/users", "users", 50)
    assert {u["id"] for u in users} == set(api.users)


def test_time_based_page_within_one_second_does_not_loop():
    sandbox, api = make()
    moment = sandbox.world.clock.ts() - 7200
    for org_id in list(api.orgs)[:6]:
        api.update_organization(org_id, at=moment)
    orgs, _ = walk_time_export(
        client(sandbox), "/api/v2/incremental/organizations", "organizations", 3
    )
    assert {o["id"] for o in orgs} == set(api.orgs)


# -- cursor and offset pagination on lists ---------------------------------------------


def test_ticket_metrics_cursor_pagination_newest_first():
    sandbox, api = make()
    http = client(sandbox)
    metrics: list[dict] = []
    response = http.get("/api/v2/ticket_metrics", params={"page[size]": 25})
    while True:
        body = response.json()
        metrics.extend(body["ticket_metrics"])
        if not body["meta"]["has_more"]:
            break
        assert body["links"]["next"].startswith(
            "https://sandbox.zendesk.com/api/v2/ticket_metrics?"
        )
        response = http.get(body["links"]["next"])
    ticket_ids = [m["ticket_id"] for m in metrics]
    assert ticket_ids == sorted(api.tickets, reverse=True)
    # page[before] walks back.
    back = http.get(body["links"]["prev"]).json()
    assert (
        back["ticket_metrics"]
        and back["ticket_metrics"][-1]["ticket_id"]
        > metrics[-len(body["ticket_metrics"])]["ticket_id"]
    )
    assert http.get("/api/v2/ticket_metrics", params={"page[size]": 101}).status_code == 400


def test_satisfaction_ratings_filters_and_cursor():
    sandbox, api = make()
    http = client(sandbox)
    ratings = list(api.ratings.values())
    middle = sorted(r.created for r in ratings)[len(ratings) // 2]
    seen: list[dict] = []
    url, params = (
        "/api/v2/satisfaction_ratings.json",
        {"page[size]": 10, "start_time": middle, "score": "bad"},
    )
    while url:
        body = http.get(url, params=params).json()
        seen.extend(body["satisfaction_ratings"])
        url, params = (body["links"]["next"], None) if body["meta"]["has_more"] else (None, None)
    expected = {r.id for r in ratings if r.created >= middle and r.score == "bad"}
    assert {r["id"] for r in seen} == expected and len(seen) == len(expected)
    assert all(r["score"] == "bad" for r in seen)
    end = middle + 86400
    body = http.get(
        "/api/v2/satisfaction_ratings", params={"start_time": middle, "end_time": end}
    ).json()
    assert body["count"] == sum(1 for r in ratings if middle <= r.created <= end)


def test_offset_pagination_and_the_10000_record_limit():
    sandbox, api = make()
    http = client(sandbox)
    body = http.get("/api/v2/organizations.json", params={"per_page": 25}).json()
    assert body["count"] == len(api.orgs) and len(body["organizations"]) == 25
    assert "page=2" in body["next_page"] and body["previous_page"] is None
    assert http.get("/api/v2/ticket_metrics", params={"page": 100}).status_code == 200
    response = http.get("/api/v2/ticket_metrics", params={"page": 101})
    assert response.status_code == 400 and response.json()["error"] == "InvalidPaginationParameter"
    assert (
        http.get("/api/v2/satisfaction_ratings", params={"page": 200, "per_page": 50}).status_code
        == 200
    )
    assert (
        http.get("/api/v2/satisfaction_ratings", params={"page": 201, "per_page": 50}).status_code
        == 400
    )


# -- auth and errors -------------------------------------------------------------------


def test_auth_basic_token_and_bearer():
    sandbox, api = make()
    me = client(sandbox).get("/api/v2/users/me.json")
    assert me.status_code == 200 and me.json()["user"]["email"] == CREDS["email"]
    assert (
        client(sandbox, f"Bearer {CREDS['oauth_token']}").get("/api/v2/users/me").status_code == 200
    )
    for bad in (
        None,
        "Bearer nope",
        "Basic " + base64.b64encode(b"admin@lumen.example:password").decode(),
    ):
        response = client(sandbox, bad).get("/api/v2/users/me.json")
        assert response.status_code == 401
        assert response.json() == {"error": "Couldn't authenticate you"}


def test_error_shapes():
    sandbox, api = make()
    http = client(sandbox)
    assert http.get("/api/v2/tickets/999999.json").json() == {
        "error": "RecordNotFound",
        "description": "Not found",
    }
    assert http.get("/api/v2/nothing/here").status_code == 404
    assert http.get("/api/v2/tickets/1").json()["ticket"]["id"] == 1
    response = http.post(
        "/api/v2/tickets.json", json={"ticket": {"subject": "x", "priority": "soon"}}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "RecordInvalid" and {"description", "priority"} <= set(body["details"])
    created = http.post(
        "/api/v2/tickets.json", json={"ticket": {"subject": "Help", "comment": {"body": "hi"}}}
    )
    assert created.status_code == 201 and created.json()["ticket"]["id"] == len(api.tickets)


# -- rate limits -----------------------------------------------------------------------


def test_incremental_budget_429_with_retry_after_and_text_bodies():
    sandbox, api = make(enforce_limits=True, time_scale=0.01)  # 10 per 0.6 s
    http = client(sandbox)
    params = {"start_time": 0, "per_page": 1}
    ok = [http.get(EXPORT, params=params) for _ in range(10)]
    assert all(r.status_code == 200 for r in ok)
    assert (
        ok[0].headers["x-rate-limit"] == "400"
        and int(ok[0].headers["x-rate-limit-remaining"]) < 400
    )
    first, second = http.get(EXPORT, params=params), http.get(EXPORT, params=params)
    assert first.status_code == second.status_code == 429
    types = {
        first.headers["content-type"].split(";")[0],
        second.headers["content-type"].split(";")[0],
    }
    assert types == {"application/json", "text/plain"}
    text = first if first.headers["content-type"].startswith("text/plain") else second
    assert text.text == "Too Many Requests"
    wait = float(first.headers["retry-after"])
    assert 0 < wait <= 0.6
    assert http.get("/api/v2/users/me").status_code == 200  # other endpoints have their own budget
    time.sleep(wait + 0.05)
    assert http.get(EXPORT, params=params).status_code == 200


def test_account_budget_and_list_headers():
    sandbox, api = make(enforce_limits=True, time_scale=0.01)
    api.requests_per_minute = 3
    http = client(sandbox)
    response = http.get("/api/v2/ticket_metrics", params={"page[size]": 5})
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(response.headers)
    assert [http.get("/api/v2/users/me").status_code for _ in range(3)] == [200, 200, 429]


def test_injected_429_variants():
    sandbox, api = make()
    http = client(sandbox)
    api.faults.inject("429", path="/users/me", text_body=True, retry_after=2)
    api.faults.inject("429", path="/users/me", text_body=True)
    api.faults.inject("429", path="/users/me")
    first, second, third = (http.get("/api/v2/users/me") for _ in range(3))
    assert first.status_code == 429 and first.headers["retry-after"] == "2"
    assert first.headers["content-type"].startswith("text/plain")
    assert second.status_code == 429 and "retry-after" not in second.headers
    assert third.status_code == 429 and third.json()["error"] == "APIRateLimitExceeded"
    assert http.get("/api/v2/users/me").status_code == 200


# -- world ------------------------------------------------------------------------------


def test_seed_follows_links_and_archetypes():
    sandbox, api = make(companies=300, seed=11)
    for company in sandbox.world.companies:
        org = api.organization_for(company.key)
        if company.zendesk_link == "external_id":
            assert org["external_id"] == company.hubspot_id and org["domain_names"] == [
                company.domain
            ]
        elif company.zendesk_link == "domain":
            assert org["external_id"] is None and org["domain_names"] == [company.domain]
        else:
            assert (
                org["external_id"] is None
                and org["domain_names"] == []
                and org["name"] != company.name
            )

    def stats(archetype: str) -> dict[str, float]:
        keys = [c.key for c in sandbox.world.companies if c.archetype == archetype]
        tickets = [t for k in keys for t in api.tickets_for(k)]
        solved = [api.tickets[t["id"]] for t in tickets if t["status"] in ("solved", "closed")]
        hours = [(t.solved - t.created) / 3600 for t in solved]
        scored = [
            t["satisfaction_rating"]["score"]
            for t in tickets
            if t["satisfaction_rating"]["score"] in ("good", "bad")
        ]
        return {
            "per_company": len(tickets) / max(1, len(keys)),
            "hours": sum(hours) / max(1, len(hours)),
            "urgent": sum(t["priority"] in ("urgent", "high") for t in tickets)
            / max(1, len(tickets)),
            "bad": scored.count("bad") / max(1, len(scored)),
            "escalated": sum("escalated" in t["tags"] for t in tickets),
        }

    healthy, at_risk = stats("healthy"), stats("at_risk")
    assert at_risk["per_company"] > healthy["per_company"]
    assert at_risk["hours"] > 48 > 12 > healthy["hours"]
    assert at_risk["urgent"] > healthy["urgent"] and at_risk["escalated"] > 0
    assert at_risk["bad"] > 0.4 > 0.15 > healthy["bad"]
    user = api.users[api.tickets[1].requester_id]
    company = sandbox.world.companies[api.tickets[1].company_key]
    assert user.email.endswith("@" + company.domain) and user.org_id == api.tickets[1].org_id


def test_advance_generates_activity_seen_by_the_cursor():
    sandbox, api = make(companies=200)
    http = client(sandbox)
    _, last = export_all(http, EXPORT, {"start_time": 0})
    before = {t.id: t.updated for t in api.tickets.values()}
    ratings_before = len(api.ratings)
    advance(sandbox, 2)
    changed = {t.id for t in api.tickets.values() if before.get(t.id) != t.updated}
    assert any(i not in before for i in changed)  # new tickets
    assert any(i in before for i in changed)  # progressed or reopened ones
    assert len(api.ratings) > ratings_before
    tickets, _ = export_all(http, EXPORT, {"cursor": last["after_cursor"]})
    assert {t["id"] for t in tickets} == changed
    assert len(tickets) == len(changed)


def test_deterministic_for_a_seed():
    bodies = []
    for _ in range(2):
        sandbox, api = make(companies=80, seed=5)
        advance(sandbox, 1)
        http = client(sandbox)
        bodies.append(
            (
                http.get(EXPORT, params={"start_time": 0, "per_page": 1000}).content,
                http.get("/api/v2/satisfaction_ratings", params={"page[size]": 100}).content,
                api.counts(),
            )
        )
    assert bodies[0] == bodies[1]
    other = make(companies=80, seed=6)[1]
    assert other.counts() != bodies[0][2] or other.tickets_for(0) != make(companies=80, seed=5)[
        1
    ].tickets_for(0)


# -- the official SDK ------------------------------------------------------------------


def test_zenpy_against_the_loopback_server(monkeypatch):
    zenpy = pytest.importorskip("zenpy")
    sandbox, api = make()
    server = sandbox.serve()
    try:
        host, port = server.server_address[:2]
        monkeypatch.setenv("ZENPY_FORCE_NETLOC", f"{host}:{port}")
        monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
        zd = zenpy.Zenpy(
            subdomain=CREDS["subdomain"], email=CREDS["email"], token=CREDS["api_token"]
        )
        assert zd.users.me().email == CREDS["email"]
        tickets = list(zd.tickets.incremental(start_time=0, per_page=50))
        assert len(tickets) == api.visible_count("tickets")
        assert len({t.id for t in tickets}) == len(tickets)
        orgs = list(zd.organizations.incremental(start_time=0, per_page=25))
        assert {o.id for o in orgs} == set(api.orgs)
        assert api.requests["GET incremental_tickets_cursor"] == -(-len(tickets) // 50)
    finally:
        server.stop()
