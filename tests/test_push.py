"""The HubSpot write-back against the in-process fake HubSpot.

Health scores are inserted directly for the sandbox world's live companies (the push is
under test, not the health engine). The fake records every write request in ``writes``
and gives a full ``snapshot()`` to compare before and after.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import httpx
import pytest

from hub import clock
from hub.config import parse_config
from hub.playbooks import Outbox, run_playbooks, task_keys
from hub.push import run_push
from hub.sandbox.world import CREDENTIALS, build_sandbox
from hub.testing import hub_toml, serving
from plugins.hubspot_pusher import ALLOWED_PROPERTIES, body_html, marker_for

SCORES = {
    "healthy": (85, "green"),
    "expanding": (80, "green"),
    "slipping": (55, "yellow"),
    "at_risk": (25, "red"),
    "churned": (15, "red"),
}
BATCH_UPDATE = "/crm/v3/objects/companies/batch/update"


class Killed(BaseException):
    """A simulated kill: nothing in the hub catches a BaseException."""


@pytest.fixture
def sandbox():
    sb = build_sandbox(companies=30, seed=11)
    clock.set_source(sb.world.clock.now)
    return sb


@pytest.fixture
def hs(sandbox):
    return sandbox.api("hubspot")


def live_companies(sandbox):
    return [
        c for c in sandbox.world.companies if c.merged_into is None and "archived" not in c.traps
    ]


def seed_health(store, sandbox, *, override_key: int | None = 0) -> dict[str, dict]:
    """One account and health row per live company; returns the expected HubSpot values."""
    now = clock.now()
    expected = {}
    for c in live_companies(sandbox):
        score, band = SCORES[c.archetype]
        store.db["accounts"].insert(
            {
                "id": c.hubspot_id,
                "name": c.name,
                "domain": c.domain,
                "hubspot_company_id": c.hubspot_id,
                "owner_id": c.owner_id,
                "renewal_date": str(c.renewal_date),
                "facts": "{}",
            }
        )
        drivers = [f"{c.archetype} signals", "median ticket resolution 30 h vs 24 h target"]
        row = {
            "account_id": c.hubspot_id,
            "score": score,
            "computed_score": score,
            "band": band,
            "model": "weighted",
            "segment": c.plan,
            "drivers": json.dumps(drivers),
            "trend_7d": -3,
            "trend_30d": 4,
            "computed_at": clock.iso(now),
        }
        values = {
            "hub_health_score": str(score),
            "hub_health_band": band,
            "hub_health_trend_7d": "-3",
            "hub_health_trend_30d": "4",
            "hub_health_drivers": "; ".join(drivers),
            "hub_health_updated_at": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "hub_health_model": "weighted",
            "hub_health_segment": c.plan,
        }
        if c.key == override_key:
            until = (now + dt.timedelta(days=10)).date().isoformat()
            row.update(
                score=70,
                override_value=70,
                override_reason="Exec sponsor confirmed renewal",
                override_until=until,
            )
            values.update(
                hub_health_score="70",
                hub_health_override="70",
                hub_health_override_reason="Exec sponsor confirmed renewal",
                hub_health_override_until=until,
            )
        store.db["health_scores"].insert(row)
        # Ten days of history at a green 80 before today: no account is on its baseline.
        for days in range(10, 0, -1):
            day = (now.date() - dt.timedelta(days=days)).isoformat()
            store.db["health_history"].insert(
                {
                    "account_id": c.hubspot_id,
                    "day": day,
                    "score": 80,
                    "band": "green",
                    "computed_score": 80,
                }
            )
        expected[c.hubspot_id] = values
    return expected


def make_config(
    push: dict | None = None, playbooks: dict | None = None, hubspot: dict | None = None
):
    """No caps unless a test sets them; [push.hubspot] without retry delays."""
    return parse_config(
        {
            "connections": {
                "hubspot": {"connector": "hubspot", "settings": dict(CREDENTIALS["hubspot"])}
            },
            "push": {
                "max_tasks_per_run": 0,
                "max_tasks_per_owner": 0,
                "urgent_bypass_caps": False,
                **(push or {}),
                "hubspot": {"record_retry_delay": 0, **(hubspot or {})},
            },
            "playbooks": playbooks or {},
        }
    )


def batch_inputs(hs) -> list[list[dict]]:
    return [body["inputs"] for method, path, body in hs.writes if path == BATCH_UPDATE]


def hub_tasks(hs) -> list[dict]:
    return [
        t
        for t in hs.objects("tasks")
        if "hub ref hubtask" in (t["properties"].get("hs_task_body") or "")
    ]


def strip_hub(snapshot: dict) -> dict:
    """The snapshot without what the hub may change: its own properties and new tasks."""
    snap = json.loads(json.dumps(snapshot))
    for company in snap["objects"]["companies"].values():
        company["properties"] = {
            k: v
            for k, v in company["properties"].items()
            if not k.startswith("hub_health_") and k != "hs_lastmodifieddate"
        }
        company.pop("updatedAt", None)
    snap["objects"]["tasks"] = {
        k: v
        for k, v in snap["objects"]["tasks"].items()
        if "hub ref hubtask" not in (v["properties"].get("hs_task_body") or "")
    }
    hub_task_ids = set(snapshot["objects"]["tasks"]) - set(snap["objects"]["tasks"])
    for key, table in snap["associations"].items():
        if key.startswith("tasks->"):
            for tid in hub_task_ids:
                table.pop(tid, None)
        if key.endswith("->tasks"):
            for links in table.values():
                for tid in hub_task_ids:
                    links.pop(tid, None)
        snap["associations"][key] = {k: v for k, v in table.items() if v}
    snap["properties"]["companies"] = {
        k: v for k, v in snap["properties"]["companies"].items() if k not in ALLOWED_PROPERTIES
    }
    snap["groups"]["companies"].pop("hub_health", None)
    return snap


# -- properties ---------------------------------------------------------------------------------


def test_push_writes_the_hub_fields_and_touches_nothing_else(store, sandbox, hs):
    expected = seed_health(store, sandbox)
    run_playbooks(store, make_config())
    assert Outbox(store).tasks(["open"]), "the red accounts should have opened tasks"
    before = hs.snapshot()
    result = run_push(store, make_config(), transport=sandbox.transport())
    assert result.status == "ok", result.errors
    after = hs.snapshot()
    for company_id, values in expected.items():
        props = hs.get("companies", company_id)["properties"]
        assert {k: v for k, v in props.items() if k.startswith("hub_health_")} == values
    # The group exists once, was created once, and holds exactly the hub's properties.
    group_creates = [w for w in hs.writes if w[1] == "/crm/v3/properties/companies/groups"]
    assert len(group_creates) == 1
    assert list(after["groups"]["companies"]).count("hub_health") == 1
    ours = {
        n for n, p in after["properties"]["companies"].items() if p["groupName"] == "hub_health"
    }
    assert ours == ALLOWED_PROPERTIES
    assert after["properties"]["companies"]["hub_health_band"]["type"] == "enumeration"
    # Nothing else changed: other properties, contacts, deals, old tasks, associations.
    assert strip_hub(after) == strip_hub(before)
    for batch in batch_inputs(hs):
        assert len(batch) <= 100
        for item in batch:
            assert set(item["properties"]) <= ALLOWED_PROPERTIES
    run = store.runs(kind="push")[0]
    assert run["status"] == "ok" and run["records"] > 0


def test_second_push_writes_nothing_and_one_change_is_one_input(store, sandbox, hs):
    seed_health(store, sandbox)
    config = make_config()
    run_push(store, config, transport=sandbox.transport())
    writes = len(hs.writes)
    again = run_push(store, config, transport=sandbox.transport())
    assert again.status == "ok" and again.writes == 0 and again.changes == []
    assert len(hs.writes) == writes
    # A recomputed but identical score does not rewrite the company either.
    store.db.execute(
        "UPDATE health_scores SET computed_at = ?", [clock.iso(clock.now() + dt.timedelta(hours=1))]
    )
    assert run_push(store, config, transport=sandbox.transport()).writes == 0
    # One account's score changes: one batch, one input, only the changed fields.
    target = live_companies(sandbox)[2].hubspot_id
    later = clock.iso(clock.now() + dt.timedelta(hours=2))
    store.db.execute(
        "UPDATE health_scores SET score = score - 7, computed_at = ? WHERE account_id = ?",
        [later, target],
    )
    result = run_push(store, config, transport=sandbox.transport())
    new_writes = hs.writes[writes:]
    assert len(new_writes) == 1 and new_writes[0][1] == BATCH_UPDATE
    (item,) = new_writes[0][2]["inputs"]
    assert item["id"] == target
    assert set(item["properties"]) == {"hub_health_score", "hub_health_updated_at"}
    assert [c.property for c in result.written] == ["hub_health_score", "hub_health_updated_at"]


def test_batches_respect_batch_size(store, sandbox, hs):
    seed_health(store, sandbox)
    result = run_push(store, make_config(hubspot={"batch_size": 7}), transport=sandbox.transport())
    sizes = [len(b) for b in batch_inputs(hs)]
    assert max(sizes) == 7 and sum(sizes) == len(live_companies(sandbox))
    assert result.status == "ok"


def test_207_partial_failures_retry_or_report_and_never_repeat(store, sandbox, hs):
    seed_health(store, sandbox)
    ids = [c.hubspot_id for c in live_companies(sandbox)]
    a, b, c = ids[1], ids[4], ids[9]
    # First batch: a, b, c fail with a retriable error; c keeps failing on every retry.
    hs.faults.inject("partial_207", path=BATCH_UPDATE, ids=[a, b, c])
    hs.faults.inject("partial_207", path=BATCH_UPDATE, ids=[c], count=-1)
    config = make_config()
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "partial"
    sent = [item["id"] for batch in batch_inputs(hs) for item in batch]
    assert sent.count(a) == 2 and sent.count(b) == 2  # failed once, retried once, done
    assert sent.count(c) == 3  # first try + record_retries (2), then reported
    assert all(sent.count(i) == 1 for i in ids if i not in (a, b, c))  # never repeated
    failed = {ch.object_id for ch in result.failed}
    assert failed == {c}
    assert any(c in e and "still failing after 2 retries" in e for e in result.errors)
    assert "hub_health_score" not in hs.get("companies", c)["properties"]
    assert hs.get("companies", a)["properties"]["hub_health_score"]
    # Once the fault clears, the next push writes exactly the one that failed.
    hs.faults.clear()
    writes = len(hs.writes)
    again = run_push(store, config, transport=sandbox.transport())
    assert again.status == "ok"
    assert [[i["id"] for i in batch] for batch in batch_inputs(hs)[-1:]] == [[c]]
    assert len(hs.writes) == writes + 1


def test_non_retriable_207_is_reported_not_retried(store, sandbox, hs):
    seed_health(store, sandbox)
    gone = live_companies(sandbox)[3].hubspot_id
    hs.archive("companies", gone)  # a CRM user deletes it after the last sync
    result = run_push(store, make_config(), transport=sandbox.transport())
    sent = [item["id"] for batch in batch_inputs(hs) for item in batch]
    assert sent.count(gone) == 1
    assert {ch.object_id for ch in result.failed} == {gone}
    assert any("OBJECT_NOT_FOUND" in e for e in result.errors)
    assert (
        store.db.execute(
            "SELECT COUNT(*) FROM _hub_push_log WHERE object_id = ?", [gone]
        ).fetchone()[0]
        == 0
    )


def test_429s_are_retried_by_the_client_and_nothing_is_written_twice(store, sandbox, hs):
    seed_health(store, sandbox)
    run_playbooks(store, make_config())
    hs.faults.inject("429", path=BATCH_UPDATE, count=3, retry_after=0)
    hs.faults.inject("429", path=r"/crm/v3/objects/tasks/batch/create$", count=2, retry_after=0)
    result = run_push(store, make_config(), transport=sandbox.transport())
    assert result.status == "ok", result.errors
    assert result.retries >= 5
    sent = [item["id"] for batch in batch_inputs(hs) for item in batch]
    assert len(sent) == len(set(sent)) == len(live_companies(sandbox))
    opened = Outbox(store).tasks()
    assert len(hub_tasks(hs)) == len(opened)
    assert all(t["status"] == "pushed" for t in opened)


def test_a_property_the_hub_did_not_create_is_never_written(store, sandbox, hs):
    seed_health(store, sandbox)
    with httpx.Client(transport=sandbox.transport(), base_url="https://api.hubapi.com") as http:
        token = {"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"}
        response = http.post(
            "/crm/v3/properties/companies",
            headers=token,
            json={
                "name": "hub_health_model",
                "label": "Someone else's model",
                "type": "string",
                "fieldType": "text",
                "groupName": "companyinformation",
            },
        )
        assert response.status_code == 201
    hs.writes.clear()
    result = run_push(store, make_config(), transport=sandbox.transport())
    assert any(
        "hub_health_model exists but belongs to group 'companyinformation'" in e
        for e in result.errors
    )
    for batch in batch_inputs(hs):
        for item in batch:
            assert "hub_health_model" not in item["properties"]
            assert "hub_health_score" in item["properties"]
    assert not any(w[2] and w[2].get("name") == "hub_health_model" for w in hs.writes)


def test_a_deleted_property_is_restored_and_refilled(store, sandbox, hs):
    expected = seed_health(store, sandbox)
    config = make_config()
    run_push(store, config, transport=sandbox.transport())
    with httpx.Client(transport=sandbox.transport(), base_url="https://api.hubapi.com") as http:
        token = {"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"}
        deleted = http.delete("/crm/v3/properties/companies/hub_health_segment", headers=token)
        assert deleted.status_code == 204
    hs.writes.clear()
    result = run_push(store, config, transport=sandbox.transport())  # nothing else changed
    assert result.status == "ok", result.errors
    assert result.setup == ["restore archived properties hub_health_segment"]
    assert "hub_health_segment" in hs.properties("companies")
    for company_id, values in expected.items():
        segment = hs.get("companies", company_id)["properties"]["hub_health_segment"]
        assert segment == values["hub_health_segment"]
    sent = [item for batch in batch_inputs(hs) for item in batch]
    assert all(set(item["properties"]) == {"hub_health_segment"} for item in sent)
    # A property that vanishes between the check and the write: set up again, retried once.
    store.db.execute("UPDATE health_scores SET model = 'points'")
    real_handle = sandbox.handle
    deleted_once = [False]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == BATCH_UPDATE and not deleted_once[0]:
            deleted_once[0] = True  # an admin deletes the property right now
            url = request.url.copy_with(path="/crm/v3/properties/companies/hub_health_model")
            real_handle(httpx.Request("DELETE", url, headers=request.headers))
        return real_handle(request)

    result = run_push(store, config, transport=httpx.MockTransport(handler))
    assert result.status == "ok", result.errors
    assert result.setup == ["restore archived properties hub_health_model"]
    some = live_companies(sandbox)[0].hubspot_id
    assert hs.get("companies", some)["properties"]["hub_health_model"] == "points"


def test_a_rebuilt_database_does_not_rewrite_the_crm(store, sandbox, hs, tmp_path):
    from hub.store import Store

    seed_health(store, sandbox)
    run_push(store, make_config(), transport=sandbox.transport())
    fresh = Store(tmp_path / "rebuilt.db")
    try:
        seed_health(fresh, sandbox)
        writes = len(hs.writes)
        result = run_push(fresh, make_config(), transport=sandbox.transport())
        assert result.status == "ok" and result.writes == 0 and len(hs.writes) == writes
    finally:
        fresh.close()


# -- tasks ----------------------------------------------------------------------------------------


def test_tasks_are_created_with_owner_due_date_and_verified_association(store, sandbox, hs):
    seed_health(store, sandbox)
    config = make_config()
    run_playbooks(store, config)
    opened = Outbox(store).tasks(["open"])
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    assert hs.requests["POST v4_batch"] >= 1  # the associations were read back
    owners = {c.hubspot_id: c.owner_id for c in sandbox.world.companies}
    for task in opened:
        row = Outbox(store).get(task["id"])
        assert row["status"] == "pushed" and row["remote_id"]
        remote = hs.get("tasks", row["remote_id"])["properties"]
        assert remote["hs_task_subject"] == task["subject"]
        assert remote["hs_task_body"] == body_html(task["body"], marker_for(task["id"]))
        assert remote["hs_task_body"].startswith("<p>") and "<li>" in remote["hs_task_body"]
        assert remote["hs_task_status"] == "NOT_STARTED"
        assert remote["hs_task_priority"] == task["priority"]
        assert remote["hs_timestamp"][:10] == task["due_at"][:10]
        assert remote.get("hubspot_owner_id") == owners[task["account_id"]]
        assert hs.associations("tasks", row["remote_id"], "companies") == [
            (task["account_id"], [192])
        ]
    # Repeated runs never duplicate a task.
    for _ in range(3):
        run_playbooks(store, config)
        run_push(store, config, transport=sandbox.transport())
    assert len(hub_tasks(hs)) == len(opened)
    assert len(Outbox(store).tasks()) == len(opened)


def test_owner_fallback_when_the_company_has_none(store, sandbox, hs):
    seed_health(store, sandbox)
    red = next(c for c in live_companies(sandbox) if SCORES[c.archetype][1] == "red")
    store.db.execute("UPDATE accounts SET owner_id = NULL WHERE id = ?", [red.hubspot_id])
    store.db.execute("UPDATE accounts SET owner_id = '12345' WHERE id != ?", [red.hubspot_id])
    fallback = sandbox.world.owners[-1]["id"]
    config = make_config(hubspot={"fallback_owner_id": int(fallback)})
    run_playbooks(store, config)
    result = run_push(store, config, transport=sandbox.transport())
    tasks = Outbox(store).tasks()
    for task in tasks:
        remote = hs.get("tasks", task["remote_id"])["properties"]
        # No owner, or an owner HubSpot refuses (12345 is no user): the fallback owner.
        assert remote["hubspot_owner_id"] == fallback, task["account_id"]
    refused = [e for e in result.errors if "owner 12345 was refused" in e]
    assert len(refused) == len([t for t in tasks if t["account_id"] != red.hubspot_id])


def test_tasks_refused_inside_a_207_are_created_alone_exactly_once(store, sandbox, hs):
    seed_health(store, sandbox)
    config = make_config()
    run_playbooks(store, config)
    opened = Outbox(store).tasks(["open"])
    assert len(opened) >= 3
    hs.faults.inject("partial_207", path=r"/tasks/batch/create$", fail=2)
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    singles = [w for w in hs.writes if w[1] == "/crm/v3/objects/tasks"]
    assert len(singles) == 2
    for task in opened:
        marker = marker_for(task["id"])
        assert (
            len([t for t in hs.objects("tasks") if marker in t["properties"]["hs_task_body"]]) == 1
        )
        assert Outbox(store).get(task["id"])["status"] == "pushed"


def test_max_tasks_per_run_spreads_tasks_over_pushes(store, sandbox, hs):
    seed_health(store, sandbox)
    config = make_config({"max_tasks_per_run": 2})
    run_playbooks(store, config)
    total = len(Outbox(store).tasks(["open"]))
    assert total > 2
    run_push(store, config, transport=sandbox.transport())
    assert len(hub_tasks(hs)) == 2 and len(Outbox(store).tasks(["open"])) == total - 2
    dry = run_push(store, config, dry_run=True, transport=sandbox.transport())
    assert len([t for t in dry.tasks if t.action == "create"]) == 2


@pytest.mark.parametrize("kill_at", ["before_create", "after_create", "before_verify"])
def test_a_killed_push_never_creates_a_task_twice(store, sandbox, hs, kill_at):
    seed_health(store, sandbox)
    config = make_config()
    run_playbooks(store, config)
    opened = Outbox(store).tasks(["open"])
    assert len(opened) >= 2
    armed = [True]

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        creating = (
            request.method == "POST"
            and path.startswith("/crm/v3/objects/tasks")
            and (path.endswith("/tasks") or path.endswith("/batch/create"))
        )
        verifying = re.match(r"/crm/v4/(objects/tasks/\d+|associations/tasks)/", path)
        if armed[0] and kill_at == "before_create" and creating:
            armed[0] = False
            raise Killed()
        if armed[0] and kill_at == "after_create" and creating:
            armed[0] = False
            sandbox.handle(request)  # HubSpot made the task; the answer is lost
            raise Killed()
        if armed[0] and kill_at == "before_verify" and verifying:
            armed[0] = False
            raise Killed()
        return sandbox.handle(request)

    with pytest.raises(Killed):
        run_push(store, config, transport=httpx.MockTransport(handler))
    stuck = Outbox(store).tasks(["pushing"])
    assert len(stuck) == len(opened)  # claimed (committed) before the batch create
    for row in stuck:
        assert (row["remote_id"] is not None) == (kill_at == "before_verify")
    # Restart: reconcile, then carry on.
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    assert all(t["status"] == "pushed" for t in Outbox(store).tasks())
    for task in opened:
        marker = marker_for(task["id"])
        matches = [t for t in hs.objects("tasks") if marker in t["properties"]["hs_task_body"]]
        assert len(matches) == 1, f"task {task['id']} exists {len(matches)} times"
    for action in result.tasks:
        assert action.action == ("created" if kill_at == "before_create" else "found")


def test_reconcile_finds_a_task_whose_association_was_lost(store, sandbox, hs):
    seed_health(store, sandbox)
    config = make_config()
    run_playbooks(store, config)
    task = Outbox(store).tasks(["open"])[0]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/crm/v3/objects/tasks/batch/create":
            body = json.loads(request.content)
            for item in body["inputs"]:
                item.pop("associations", None)  # created, but not associated
            sandbox.handle(httpx.Request("POST", request.url, headers=request.headers, json=body))
            raise Killed()
        return sandbox.handle(request)

    with pytest.raises(Killed):
        run_push(store, config, transport=httpx.MockTransport(handler))
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    row = Outbox(store).get(task["id"])
    assert row["status"] == "pushed"
    assert (
        len(
            [
                t
                for t in hs.objects("tasks")
                if marker_for(task["id"]) in t["properties"]["hs_task_body"]
            ]
        )
        == 1
    )
    # The association was re-added during verification.
    assert hs.associations("tasks", row["remote_id"], "companies") == [(task["account_id"], [192])]


def test_a_completed_task_is_not_recreated_within_the_snooze(store, sandbox, hs):
    seed_health(store, sandbox)
    config = make_config(playbooks={"snooze_days": 5})
    run_playbooks(store, config)
    run_push(store, config, transport=sandbox.transport())
    first = Outbox(store).tasks(["pushed"])[0]
    hs.complete_task(first["remote_id"])
    result = run_push(store, config, transport=sandbox.transport())
    assert result.completed == [first["id"]]
    row = Outbox(store).get(first["id"])
    assert row["status"] == "completed" and row["snoozed_until"]
    count = len(hub_tasks(hs))
    for _ in range(2):
        assert run_playbooks(store, config).snoozed == len(task_keys(first))
        run_push(store, config, transport=sandbox.transport())
    assert len(hub_tasks(hs)) == count
    sandbox.world.clock.advance(6 * 86400)  # past the snooze
    reopened = run_playbooks(store, config)
    assert len(reopened.opened) == 1
    assert Outbox(store).get(reopened.opened[0])["account_id"] == first["account_id"]
    run_push(store, config, transport=sandbox.transport())
    assert len(hub_tasks(hs)) == count + 1


# -- dry run --------------------------------------------------------------------------------------


def test_dry_run_writes_nothing_and_lists_every_change(store, sandbox, hs):
    expected = seed_health(store, sandbox)
    config = make_config()
    run_playbooks(store, config)
    open_before = [t["id"] for t in Outbox(store).tasks(["open"])]
    result = run_push(store, config, dry_run=True, transport=sandbox.transport())
    assert hs.writes == [] and result.writes == 0
    assert store.runs(kind="push") == []
    assert store.db.execute("SELECT COUNT(*) FROM _hub_push_log").fetchone()[0] == 0
    assert [t["id"] for t in Outbox(store).tasks(["open"])] == open_before
    assert result.setup[0] == "create property group hub_health"
    assert len(result.setup) == 1 + len(ALLOWED_PROPERTIES)
    planned = {(c.object_id, c.property): (c.old, c.new) for c in result.changes}
    assert planned == {
        (cid, prop): ("", value)
        for cid, values in expected.items()
        for prop, value in values.items()
    }
    assert sorted(t.task_id for t in result.tasks if t.action == "create") == sorted(open_before)
    # The real push then writes exactly what the dry run listed.
    real = run_push(store, config, transport=sandbox.transport())
    assert {(c.object_id, c.property, c.new) for c in real.written} == {
        (c.object_id, c.property, c.new) for c in result.changes
    }
    # A later dry run shows old → new from the last push.
    target = live_companies(sandbox)[0].hubspot_id
    store.db.execute(
        "UPDATE health_scores SET score = 12, band = 'red' WHERE account_id = ?", [target]
    )
    writes = len(hs.writes)
    later = run_push(store, config, dry_run=True, transport=sandbox.transport())
    assert len(hs.writes) == writes
    changes = {c.property: (c.old, c.new) for c in later.changes}
    assert changes["hub_health_score"][1] == "12"
    assert changes["hub_health_band"] == (expected[target]["hub_health_band"], "red")


def test_cli_push_dry_run_tasks_and_playbooks(store, sandbox, hs, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from hub.cli import cli

    expected = seed_health(store, sandbox)
    store.db.execute("UPDATE accounts SET owner_name = 'Owner ' || owner_id")
    run_playbooks(store, make_config())
    with serving(sandbox) as server:
        conf = hub_toml(
            tmp_path / "hub.toml",
            server.url,
            ["hubspot"],
            database=store.path,
            env_prefix="HUB_TEST",
            extra="[push]\nmax_tasks_per_owner = 0\n[push.hubspot]\nrecord_retry_delay = 0",
        )
        conf.set_env(monkeypatch)
        runner = CliRunner()
        dry = runner.invoke(cli, ["-c", str(conf), "push", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "Dry run" in dry.output and "create property group hub_health" in dry.output
        lines = dry.output.splitlines()
        assert lines[1].startswith("Summary: setup: 13 actions; would write ")  # summary first
        assert "by owner: Owner 7000000" in dry.output  # names, not ids
        assert "task caps: at most 50 new tasks per push, no limit per owner" in dry.output
        assert "… " in dry.output and " more, use --limit N or --account" in dry.output
        first = live_companies(sandbox)[0]
        one = runner.invoke(
            cli, ["-c", str(conf), "push", "--dry-run", "--account", first.name, "--show-body"]
        )
        assert f"{first.name} — companies {first.hubspot_id}" in one.output
        assert f"hub_health_score: (unset) → {expected[first.hubspot_id]['hub_health_score']}" in (
            one.output
        )
        full_drivers = f"{first.archetype} signals; median ticket resolution 30 h vs 24 h target"
        assert full_drivers in one.output  # never cut with "…" in the detail
        # The account resolver of the other commands: a domain works like the name...
        by_domain = runner.invoke(
            cli, ["-c", str(conf), "push", "--dry-run", "--account", first.domain]
        )
        assert by_domain.exit_code == 0, by_domain.output
        assert f"{first.name} — companies {first.hubspot_id}" in by_domain.output
        # ...and a miss stops before the push, in one line, exit 1.
        miss = runner.invoke(cli, ["-c", str(conf), "push", "--account", "nosuch.example"])
        assert miss.exit_code == 1 and "no account matches 'nosuch.example'" in miss.output
        assert len(miss.output.strip().splitlines()) == 1, miss.output
        assert hs.writes == []
        everything = runner.invoke(cli, ["-c", str(conf), "push", "--dry-run", "--limit", "100"])
        assert "would create: [HIGH] " in everything.output
        assert "Health turned red" in everything.output and " more, use" not in everything.output
        assert hs.writes == []
        as_json = runner.invoke(cli, ["-c", str(conf), "push", "--dry-run", "--json"])
        data = json.loads(as_json.output)
        assert data["dry_run"] is True and data["writes"] == 0
        assert data["total"] == len(data["items"]) > 20
        assert data["summary"]["values"] == sum(len(i["changes"]) for i in data["items"])
        assert sum(data["summary"]["tasks_by_owner"].values()) == data["summary"]["tasks"] > 0
        assert hs.writes == []
        real = runner.invoke(cli, ["-c", str(conf), "push", "--json"])
        assert real.exit_code == 0, real.output
        assert json.loads(real.output)["writes"] > 0
        tasks = runner.invoke(cli, ["-c", str(conf), "tasks", "--json"])
        listed = json.loads(tasks.output)
        rows = listed["items"]
        assert rows and listed["total"] == len(rows) and listed["status"] == "open"
        assert all(r["status"] == "pushed" for r in rows)
        listing = runner.invoke(cli, ["-c", str(conf), "playbooks"])
        assert listing.exit_code == 0, listing.output
        assert "band_red" in listing.output and "within_days=7" in listing.output
        pbs = json.loads(runner.invoke(cli, ["-c", str(conf), "playbooks", "--json"]).output)
        red = next(p for p in pbs["items"] if p["name"] == "band_red")
        assert red["findings"] == sum(1 for r in rows if r["playbook"] == "band_red")
        assert red["last_triggered"] and red["enabled"] is True
        assert runner.invoke(cli, ["-c", str(conf), "tasks", "--status", "snoozed"]).exit_code == 0
        rerun = runner.invoke(cli, ["-c", str(conf), "playbooks", "--run", "--json"])
        assert rerun.exit_code == 0, rerun.output
        run = json.loads(rerun.output)["run"]
        assert run["opened"] == []
        assert run["deduplicated"] == sum(len(r["reasons"]) for r in rows)


# -- completions and caps -------------------------------------------------------------------------


def test_a_task_deleted_in_hubspot_counts_as_dismissed(store, sandbox, hs):
    seed_health(store, sandbox)
    config = make_config()
    run_playbooks(store, config)
    run_push(store, config, transport=sandbox.transport())
    first, second = Outbox(store).tasks(["pushed"])[:2]
    hs.archive("tasks", first["remote_id"])  # a CSM deletes it: dismissed
    hs.complete_task(second["remote_id"])
    result = run_push(store, config, transport=sandbox.transport())
    assert sorted(result.completed) == sorted([first["id"], second["id"]])
    for task in (first, second):
        row = Outbox(store).get(task["id"])
        assert row["status"] == "completed" and row["snoozed_until"] > row["completed_at"]
    # Read back once: nothing more to complete, and the reads are batched (100 per request).
    assert run_push(store, config, transport=sandbox.transport()).completed == []


def test_caps_per_run_and_per_owner_hold_tasks_for_later_pushes(store, sandbox, hs):
    seed_health(store, sandbox)
    store.db.execute("UPDATE accounts SET owner_id = ?", [sandbox.world.owners[0]["id"]])
    config = make_config({"max_tasks_per_run": 50, "max_tasks_per_owner": 2})
    run_playbooks(store, config)
    total = len(Outbox(store).tasks(["open"]))
    assert total > 2
    dry = run_push(store, config, dry_run=True, transport=sandbox.transport())
    assert len([t for t in dry.tasks if t.action == "create"]) == 2 and dry.held == total - 2
    assert "2 tasks per owner in 24 hours" in dry.caps
    assert f"{total - 2} tasks held by the caps" in dry.summary()
    # The most urgent go first: every HIGH before any MEDIUM.
    chosen = [t.priority for t in dry.tasks if t.action == "create"]
    assert chosen == sorted(chosen, key=["HIGH", "MEDIUM", "LOW"].index)
    run_push(store, config, transport=sandbox.transport())
    assert len(hub_tasks(hs)) == 2
    # Within 24 hours the owner's cap is used up; a day later two more go out.
    assert run_push(store, config, transport=sandbox.transport()).held == total - 2
    sandbox.world.clock.advance(86400 + 60)
    run_push(store, config, transport=sandbox.transport())
    assert len(hub_tasks(hs)) == min(4, total)


def test_hubspot_properties_each_have_their_own_description():
    from plugins.hubspot_pusher import OVERRIDE_PROPERTIES, PROPERTIES

    descriptions = [p["description"] for p in PROPERTIES.values()]
    assert all(len(d) > 40 for d in descriptions) and len(set(descriptions)) == len(PROPERTIES)
    assert "0 (at risk) to 100 (healthy)" in PROPERTIES["hub_health_score"]["description"]
    assert "churned" in PROPERTIES["hub_health_band"]["description"]
    for name in OVERRIDE_PROPERTIES.values():
        assert "overwritten" not in PROPERTIES[name]["description"]  # CSMs set these


def test_a_band_property_made_by_an_older_hub_gains_the_churned_option(store, sandbox, hs):
    seed_health(store, sandbox)
    config = make_config(push={"scope": {"include_churned": True}})
    run_push(store, config, transport=sandbox.transport())
    with httpx.Client(transport=sandbox.transport(), base_url="https://api.hubapi.com") as http:
        token = {"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"}
        old = [
            {"label": b.title(), "value": b, "displayOrder": i}
            for i, b in enumerate(["green", "yellow", "red"])
        ]
        assert (
            http.patch(
                "/crm/v3/properties/companies/hub_health_band", headers=token, json={"options": old}
            ).status_code
            == 200
        )
    some = live_companies(sandbox)[0].hubspot_id
    store.db.execute("UPDATE health_scores SET band = 'churned' WHERE account_id = ?", [some])
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    assert result.setup == ["add churned to the options of hub_health_band"]
    assert hs.get("companies", some)["properties"]["hub_health_band"] == "churned"


# -- the pusher contract ----------------------------------------------------------------------------


def test_a_second_pusher_plugs_in_with_its_own_settings_and_no_vendor_in_the_core(store, sandbox):
    from hub.errors import ConfigError
    from hub.push import Pusher, PusherSettings
    from hub.push import validate_config as validate_push
    from plugins.hubspot_pusher import HubSpotPusher

    class MemoSettings(PusherSettings):
        prefix: str = "memo"

    class MemoPusher(Pusher):
        """Writes the score into a dict, through the push log like any pusher."""

        name = "memo"
        Settings = MemoSettings
        written: dict[str, str] = {}

        def object_id(self, account):
            return f"{self.settings.prefix}-{account['id']}"

        def push_properties(self, items):
            logged = self.ctx.logged(self.target, "records")
            done = {}
            for item in items.values():
                oid = self.object_id(item["account"])
                score = item["values"]["score"]
                if logged.get(oid, {}).get("score") != score and not self.ctx.dry_run:
                    MemoPusher.written[oid] = score
                    done[oid] = {"score": score}
            if done:
                self.ctx.record(self.target, "records", done)

    class Registry:
        pushers = {"hubspot": HubSpotPusher, "memo": MemoPusher}

    seed_health(store, sandbox)
    config = parse_config({"push": {"pushers": ["memo"], "memo": {"prefix": "m"}}})
    validate_push(config, Registry())
    result = run_push(store, config, registry=Registry())
    assert result.status == "ok", result.errors
    assert result.requests == 0  # no connector declared: no HTTP client
    assert len(MemoPusher.written) == len(live_companies(sandbox))
    assert all(k.startswith("m-") for k in MemoPusher.written)
    assert run_push(store, config, registry=Registry()).status == "ok"
    # Each pusher's table is validated by its own model; stray tables and moved keys are named.
    for push, message in [
        ({"pushers": ["memo"], "memo": {"prefx": "m"}}, "unknown key push.memo.prefx"),
        ({"pushers": ["memo"], "nope": {}}, "[push.nope] names no pusher in [push] pushers"),
        (
            {"pushers": ["hubspot", "memo"], "batch_size": 5},
            "push.batch_size is an option of the hubspot pusher",
        ),
    ]:
        with pytest.raises(ConfigError) as info:
            validate_push(parse_config({"push": push}), Registry())
        assert message in str(info.value) and "\n" not in str(info.value)
