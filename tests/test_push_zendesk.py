"""The Zendesk pusher against the in-process Zendesk fake: health fields on organizations.

Accounts, their health rows and their identity links to Zendesk organizations are inserted
directly (the push is under test, not the mapping or the health engine). Requests are
counted at the fake (``api.requests``, by route).
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from hub import clock
from hub.checks import push_verdicts
from hub.config import parse_config
from hub.push import run_push
from hub.push.history import run_changes
from hub.push.undo import revert_run, uninstall
from hub.sandbox.world import CREDENTIALS, build_sandbox
from plugins.zendesk_pusher import MARKER

# archetype → (score, band); drivers worst first, so the first one is the top driver.
SCORES = {
    "healthy": (85, "green"),
    "expanding": (80, "green"),
    "slipping": (55, "yellow"),
    "at_risk": (25, "red"),
    "churned": (15, "red"),
}
ZD = CREDENTIALS["zendesk"]
UPDATE_MANY = "PUT update_many_organizations"
POLL = "GET show_many_job_statuses"
KEYS = (
    "hub_health_score",
    "hub_health_band",
    "hub_health_trend_7d",
    "hub_health_trend_30d",
    "hub_health_top_driver",
)


@pytest.fixture
def sandbox():
    sb = build_sandbox(companies=24, seed=5)
    clock.set_source(sb.world.clock.now)
    return sb


@pytest.fixture
def zd(sandbox):
    return sandbox.api("zendesk")


def seed(store, sandbox, zd) -> dict[str, int]:
    """Accounts, health rows and organization links; returns account id → organization id."""
    now = clock.iso()
    orgs = {}
    for c in sandbox.world.companies:
        if c.merged_into is not None or c.key not in zd._org_by_company:
            continue
        score, band = SCORES[c.archetype]
        account = str(c.hubspot_id)
        org = zd._org_by_company[c.key]
        orgs[account] = org
        store.db["accounts"].insert(
            {"id": account, "name": c.name, "domain": c.domain, "facts": "{}"}
        )
        store.db["health_scores"].insert(
            {
                "account_id": account,
                "score": score,
                "computed_score": score,
                "band": band,
                "segment": "enterprise" if c.key % 2 else "smb",
                "drivers": json.dumps([f"{c.archetype} signals", "tickets resolved slowly"]),
                "trend_7d": -3,
                "trend_30d": None,
                "computed_at": now,
            }
        )
        store.db["account_links"].insert(
            {
                "entity": f"zendesk:organization:{org}",
                "account_id": account,
                "source": "zendesk",
                "kind": "organization",
                "source_id": str(org),
                "method": "explicit_id",
                "linked_at": now,
            }
        )
    return orgs


def make_config(zendesk: dict | None = None, scope: dict | None = None):
    return parse_config(
        {
            "connections": {
                "zendesk": {
                    "connector": "zendesk",
                    "settings": {k: v for k, v in ZD.items() if k != "oauth_token"},
                }
            },
            "push": {
                "pushers": ["zendesk"],
                "tasks": False,
                "zendesk": {"job_poll_interval": 0, **(zendesk or {})},
                **({"scope": scope} if scope else {}),
            },
        }
    )


def fields_of(zd, org: int) -> dict:
    return {k: v for k, v in zd.org_field_values(org).items() if k.startswith("hub_health_")}


def admin_http(sandbox) -> httpx.Client:
    """A client signed in as the sandbox admin, for setting the fake up like a person would."""
    token = base64.b64encode(f"{ZD['email']}/token:{ZD['api_token']}".encode()).decode()
    return httpx.Client(
        transport=sandbox.transport(),
        base_url="https://sandbox.zendesk.com",
        headers={"authorization": f"Basic {token}"},
    )


def writes(zd) -> int:
    return sum(n for k, n in zd.requests.items() if not k.startswith("GET "))


def test_push_writes_the_scoped_organizations_in_bulk_and_a_re_push_writes_nothing(
    store, sandbox, zd
):
    orgs = seed(store, sandbox, zd)
    scope = {"segments": ["enterprise"]}
    config = make_config({"batch_size": 5}, scope)
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    in_scope = {
        a: o for a, o in orgs.items() if store.db["health_scores"].get(a)["segment"] == "enterprise"
    }
    assert 5 < len(in_scope) < len(orgs)
    # Five fields created, each marked as the hub's; the band is a dropdown of the bands.
    made = {f.key: f for f in zd._org_fields.values()}
    assert set(made) == set(KEYS)
    assert all(MARKER in f.description for f in made.values())
    assert made["hub_health_score"].type == "integer"
    assert [o["value"] for o in made["hub_health_band"].options] == [
        "hub_health_green",
        "hub_health_yellow",
        "hub_health_red",
        "hub_health_churned",
    ]
    # Golden values: an "at_risk" account scores 25 (red), moved -3 in 7 days, no 30-day
    # baseline (None → the field stays unset), and its first driver is the top one.
    for account, org in orgs.items():
        values = fields_of(zd, org)
        if account not in in_scope:
            assert set(values.values()) == {None}, "out of scope: untouched"
            continue
        company = next(c for c in sandbox.world.companies if str(c.hubspot_id) == account)
        score, band = SCORES[company.archetype]
        assert values == {
            "hub_health_score": score,
            "hub_health_band": f"hub_health_{band}",
            "hub_health_trend_7d": -3,
            "hub_health_trend_30d": None,
            "hub_health_top_driver": f"{company.archetype} signals",
        }
    # Bulk: ceil(in scope / 5) update_many requests, polled together (two polls: each job is
    # "working" at the first and "completed" at the second).
    batches = -(-len(in_scope) // 5)
    assert zd.requests[UPDATE_MANY] == batches
    assert zd.requests[POLL] == 2
    assert result.writes == 5 + batches
    # Each value written is in the history with what it replaced (nothing: a new field).
    rows = run_changes(store, result.run_id)
    assert len(rows) == 4 * len(in_scope) and {r["old"] for r in rows} == {""}

    before = writes(zd)
    again = run_push(store, config, transport=sandbox.transport())
    assert again.status == "ok" and again.writes == 0 and again.changes == []
    assert writes(zd) == before

    # One account's score drops 7 points: one request, one organization, one field.
    target = sorted(in_scope)[0]
    old = store.db["health_scores"].get(target)["score"]
    store.db.execute("UPDATE health_scores SET score = score - 7 WHERE account_id = ?", [target])
    third = run_push(store, config, transport=sandbox.transport())
    assert zd.requests[UPDATE_MANY] == batches + 1
    job = list(zd._jobs.values())[-1]
    assert job.items == [
        {"id": in_scope[target], "organization_fields": {"hub_health_score": old - 7}}
    ]
    assert [(c.property, c.old, c.new) for c in third.written] == [
        ("hub_health_score", str(old), str(old - 7))
    ]


def test_a_record_the_job_could_not_update_is_recorded_and_sent_again(store, sandbox, zd):
    orgs = seed(store, sandbox, zd)
    config = make_config()
    bad = sorted(orgs.values())[3]
    zd.faults.inject(
        "job_item_failure", path="update_many", ids=[bad], details="Organization is locked"
    )
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "partial"
    assert result.errors == [
        f"1 organization not updated ({bad}): RecordInvalid: Organization is locked"
    ]
    assert set(fields_of(zd, bad).values()) == {None}
    assert {r["object_id"] for r in run_changes(store, result.run_id)} == {
        str(o) for o in orgs.values() if o != bad
    }
    run = store.runs(kind="push")[0]
    assert run["status"] == "partial" and str(bad) in run["error"]
    # Not logged, so the next push sends exactly that organization again.
    again = run_push(store, config, transport=sandbox.transport())
    assert again.status == "ok" and {c.object_id for c in again.written} == {str(bad)}
    assert fields_of(zd, bad)["hub_health_score"] is not None


def test_dry_run_writes_nothing(store, sandbox, zd):
    seed(store, sandbox, zd)
    result = run_push(store, make_config(), dry_run=True, transport=sandbox.transport())
    assert result.status == "ok" and result.writes == 0
    assert writes(zd) == 0 and zd._org_fields == {}
    assert len(result.setup) == 5 and result.setup[0].startswith("create organization field")
    assert result.changes and {c.status for c in result.changes} == {"planned"}
    assert store.runs(kind="push") == []


def test_revert_restores_and_uninstall_removes_the_fields_and_reinstall_works(store, sandbox, zd):
    orgs = seed(store, sandbox, zd)
    config = make_config()
    run_push(store, config, transport=sandbox.transport())
    (a, org_a), (b, org_b) = sorted(orgs.items())[:2]
    first_a, first_b = fields_of(zd, org_a), fields_of(zd, org_b)
    store.db.execute(
        "UPDATE health_scores SET score = 12, band = 'red' WHERE account_id IN (?, ?)", [a, b]
    )
    second = run_push(store, config, transport=sandbox.transport())
    assert fields_of(zd, org_a)["hub_health_score"] == 12
    # An agent changes b's score by hand since: the revert leaves it alone.
    admin_http(sandbox).put(
        f"/api/v2/organizations/{org_b}.json",
        json={"organization": {"organization_fields": {"hub_health_score": 64}}},
    )
    dry = revert_run(store, config, second.run_id, dry_run=True, transport=sandbox.transport())
    assert dry.writes == 0 and fields_of(zd, org_a)["hub_health_score"] == 12
    result = revert_run(store, config, second.run_id, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    assert fields_of(zd, org_a) == first_a
    assert fields_of(zd, org_b) == {**first_b, "hub_health_score": 64}
    skipped = [i for i in result.items if i.status == "skipped"]
    assert [(i.object_id, i.property) for i in skipped] == [(str(org_b), "hub_health_score")]
    # The push log holds what Zendesk holds after the revert: the next push writes a's
    # score again (the hub still says 12); b's 64 was never the hub's doing, so it stays.
    again = run_push(store, config, transport=sandbox.transport())
    written = {(c.object_id, c.property) for c in again.written}
    assert (str(org_a), "hub_health_score") in written
    assert (str(org_b), "hub_health_score") not in written

    # A field with the hub's prefix that the hub did not make (no marker) is never deleted.
    admin_http(sandbox).post(
        "/api/v2/organization_fields.json",
        json={"organization_field": {"type": "text", "key": "hub_health_notes", "title": "N"}},
    )
    listed = uninstall(store, config, "zendesk", transport=sandbox.transport())
    assert listed.writes == 0 and len(zd._org_fields) == 6
    assert {i.object_id for i in listed.items} == set(KEYS)
    assert listed.summary() == "uninstall zendesk: would delete 5 fields"
    assert any("deletes their values" in n for n in listed.notes)
    removed = uninstall(store, config, "zendesk", dry_run=False, transport=sandbox.transport())
    assert removed.status == "ok", removed.errors
    assert [f.key for f in zd._org_fields.values()] == ["hub_health_notes"]
    assert fields_of(zd, org_a) == {"hub_health_notes": None}
    # Re-install: the next push creates the fields again and writes every value.
    reinstalled = run_push(store, config, transport=sandbox.transport())
    assert reinstalled.status == "ok" and len(reinstalled.setup) == 5
    assert fields_of(zd, org_a)["hub_health_score"] == 12


def test_a_mapped_field_of_the_wrong_type_stops_the_push_in_one_line(store, sandbox, zd):
    seed(store, sandbox, zd)
    http = admin_http(sandbox)
    for body in (
        {"type": "checkbox", "key": "vip", "title": "VIP"},
        {"type": "integer", "key": "health_score", "title": "Health score"},
    ):
        http.post("/api/v2/organization_fields.json", json={"organization_field": body})
    result = run_push(
        store, make_config({"fields": {"band": "vip"}}), transport=sandbox.transport()
    )
    assert result.status == "error"
    assert result.errors == [
        "zendesk: [push.zendesk.fields] band: 'vip' is a checkbox field; band needs dropdown "
        "or text (map it to a field of a fitting type, or remove the line to let the hub "
        "create its own)"
    ]
    assert zd.requests[UPDATE_MANY] == 0 and len(zd._org_fields) == 2
    # Mapped onto an integer field: the score goes there, the hub creates no score field.
    ok = run_push(
        store,
        make_config({"fields": {"score": "health_score"}, "write": ["score"]}),
        transport=sandbox.transport(),
    )
    assert ok.status == "ok" and len(zd._org_fields) == 2
    assert {c.property for c in ok.written} == {"health_score"}


def test_hub_check_names_the_missing_admin_role(store, sandbox, zd):
    config = make_config()
    (verdict,) = push_verdicts(config, transport=sandbox.transport())
    assert verdict.ok and verdict.connector == "push:zendesk"
    zd.token_role = "agent"
    (verdict,) = push_verdicts(config, transport=sandbox.transport())
    assert not verdict.ok
    assert "(agent)" in verdict.detail and "needs an admin" in verdict.detail
    seed(store, sandbox, zd)
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "error" and "must belong to an admin" in result.errors[0]


def test_fake_bulk_limits_and_show_many(sandbox, zd):
    client = admin_http(sandbox)
    org_ids = sorted(zd.orgs)[:3]
    shown = client.get(
        "/api/v2/organizations/show_many.json", params={"ids": ",".join(map(str, org_ids))}
    )
    assert [o["id"] for o in shown.json()["organizations"]] == org_ids
    too_many = ",".join(str(i) for i in range(1, 102))
    assert (
        client.get("/api/v2/organizations/show_many.json", params={"ids": too_many}).status_code
        == 400
    )
    # Job statuses polled together; at most 30 jobs queued or running per account.
    one = {"organizations": [{"id": org_ids[0], "notes": "x"}]}
    jobs = [client.put("/api/v2/organizations/update_many.json", json=one) for _ in range(31)]
    assert [r.status_code for r in jobs] == [200] * 30 + [429]
    assert jobs[-1].json()["error"] == "TooManyJobs" and jobs[-1].headers["retry-after"]
    ids = ",".join(r.json()["job_status"]["id"] for r in jobs[:2])
    polled = client.get("/api/v2/job_statuses/show_many.json", params={"ids": ids}).json()
    assert [j["status"] for j in polled["job_statuses"]] == ["working", "working"]
    polled = client.get("/api/v2/job_statuses/show_many.json", params={"ids": ids}).json()
    assert [j["results"] for j in polled["job_statuses"]] == [
        [{"id": org_ids[0], "action": "update", "success": True, "status": "Updated"}]
    ] * 2
    zd.token_role = "agent"
    refused = client.post(
        "/api/v2/organization_fields.json",
        json={"organization_field": {"type": "text", "key": "x", "title": "X"}},
    )
    assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
    assert client.get("/api/v2/users/me.json").json()["user"]["role"] == "agent"


def test_a_field_create_whose_answer_was_lost_is_looked_up_not_sent_again(store, sandbox, zd):
    seed(store, sandbox, zd)
    armed = [True]

    def handler(request: httpx.Request) -> httpx.Response:
        response = sandbox.handle(request)
        if armed[0] and request.method == "POST" and "organization_fields" in request.url.path:
            armed[0] = False  # Zendesk made the field; the answer never arrives
            raise httpx.ReadTimeout("answer lost (test)", request=request)
        return response

    result = run_push(store, make_config(), transport=httpx.MockTransport(handler))
    assert result.status == "ok", result.errors
    assert sorted(f.key for f in zd._org_fields.values()) == sorted(KEYS)
    assert zd.requests["POST create_organization_field"] == 5
    assert any("answer was lost" in n for n in result.notes)


def test_a_rebuilt_database_reads_zendesk_and_writes_nothing(store, sandbox, zd):
    orgs = seed(store, sandbox, zd)
    config = make_config()
    assert run_push(store, config, transport=sandbox.transport()).status == "ok"
    store.db.execute("DELETE FROM _hub_push_log")  # the push log is lost (a new database)
    updates = zd.requests[UPDATE_MANY]
    again = run_push(store, config, transport=sandbox.transport())
    assert again.status == "ok" and again.writes == 0 and again.changes == []
    assert zd.requests[UPDATE_MANY] == updates
    # One show_many read per 100 organizations; what Zendesk holds is logged as written.
    assert zd.requests["GET show_many_organizations"] == -(-len(orgs) // 100)
    assert run_push(store, config, transport=sandbox.transport()).writes == 0


def test_a_missing_scope_of_one_pusher_stops_the_real_push_before_any_writes(store, sandbox, zd):
    from hub.cli.sandbox import parse_fault

    seed(store, sandbox, zd)
    sandbox.inject(**parse_fault("hubspot:missing_scope:scope=crm.objects.companies.write"))
    config = parse_config(
        {
            "connections": {
                "zendesk": {
                    "connector": "zendesk",
                    "settings": {k: v for k, v in ZD.items() if k != "oauth_token"},
                },
                "hubspot": {"connector": "hubspot", "settings": dict(CREDENTIALS["hubspot"])},
            },
            "push": {
                "pushers": ["zendesk", "hubspot"],  # Zendesk would write first
                "tasks": False,
                "zendesk": {"job_poll_interval": 0},
            },
        }
    )
    preview = run_push(store, config, dry_run=True, transport=sandbox.transport())
    result = run_push(store, config, transport=sandbox.transport())
    # The real push makes the dry run's check and refuses the same way, before any write.
    assert result.status == "error" and result.writes == 0 and not result.written
    assert writes(zd) == 0 and zd._org_fields == {}
    assert not sandbox.api("hubspot").writes
    [error] = result.errors
    assert "crm.objects.companies.write" in error and error in preview.errors
