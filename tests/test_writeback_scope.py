# ruff: noqa: F811 - the fixtures are imported from tests.test_push
"""``[push.scope]``: a push writes health fields and tasks only for the accounts in scope."""

from __future__ import annotations

import pytest

from hub.config import parse_config
from hub.errors import ConfigError
from hub.playbooks import Outbox, run_playbooks
from hub.push import run_push, validate_config
from hub.push.scope import PushScope
from tests.test_push import hs, make_config, sandbox, seed_health  # noqa: F401 - fixtures

COMPANIES = "/crm/v3/objects/companies/batch/update"


def written_companies(api) -> set[str]:  # noqa: D103
    return {
        i["id"] for method, path, body in api.writes if path == COMPANIES for i in body["inputs"]
    }


def test_scope_limits_properties_and_tasks_to_one_segment(store, sandbox, hs):  # noqa: F811
    expected = seed_health(store, sandbox)
    plans = {v["hub_health_segment"] for v in expected.values()}
    segment = sorted(plans)[0]
    inside = {cid for cid, v in expected.items() if v["hub_health_segment"] == segment}
    assert inside and inside != set(expected)
    config = make_config(push={"scope": {"segments": [segment.upper()]}})
    run_playbooks(store, config)
    opened = Outbox(store).tasks(["open"])
    assert {t["account_id"] for t in opened} - inside, "some tasks must be out of scope"

    preview = run_push(store, config, dry_run=True, transport=sandbox.transport())
    assert {c.object_id for c in preview.changes} == inside
    assert {t.account_id for t in preview.tasks} <= inside
    assert f"scope: segment {segment.upper()}, churned excluded ([push.scope])" in preview.notes

    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    assert written_companies(hs) == inside
    created = {t.account_id for t in result.tasks if t.action == "created"}
    assert created and created <= inside
    # Out-of-scope tasks wait in the outbox, untouched.
    waiting = {t["account_id"] for t in Outbox(store).tasks(["open"])}
    assert waiting and not waiting & inside


def test_churned_accounts_are_left_out_unless_included(store, sandbox, hs):  # noqa: F811
    expected = seed_health(store, sandbox)
    churned = sorted(expected)[0]
    store.db.execute("UPDATE health_scores SET churned = 1 WHERE account_id = ?", [churned])
    result = run_push(store, make_config(), dry_run=True, transport=sandbox.transport())
    assert churned not in {c.object_id for c in result.changes}
    config = make_config(push={"scope": {"include_churned": True}})
    result = run_push(store, config, dry_run=True, transport=sandbox.transport())
    assert churned in {c.object_id for c in result.changes}


def test_scope_matches_owner_lifecycle_band_and_mrr():
    scope = PushScope(
        owners=["Ana Ruiz"], lifecycle_stages=["customer"], bands=["red"], min_mrr=100, max_mrr=500
    )
    account = {"owner_id": "7", "owner_name": "ana ruiz", "lifecycle_stage": "Customer", "mrr": 250}
    assert scope.admits(account, {"band": "red"})
    assert not scope.admits({**account, "mrr": 50}, {"band": "red"})
    assert not scope.admits({**account, "mrr": None}, {"band": "red"})
    assert not scope.admits({**account, "mrr": 900}, {"band": "red"})
    assert not scope.admits({**account, "owner_name": "Bo"}, {"band": "red"})
    assert not scope.admits(account, {"band": "green"})
    assert not scope.admits(account, {"band": "red", "churned": 1})
    assert PushScope(owners=["7"]).admits(account, None)
    assert scope.describe() == (
        "band red, lifecycle stage customer, owner Ana Ruiz, MRR ≥ 100, MRR ≤ 500, churned excluded"
    )


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ({"segment": ["x"]}, "push.scope.segment"),
        ({"min_mrr": -1}, "push.scope.min_mrr"),
        ({"min_mrr": 10, "max_mrr": 5}, "push.scope"),
    ],
)
def test_scope_errors_at_config_load(scope, message):
    config = parse_config({"push": {"pushers": [], "tasks": False, "scope": scope}})
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_churned_accounts_still_get_their_churn_followup(store, sandbox, hs):  # noqa: F811
    # Churned accounts are out of scope by default, but the churn follow-up is the one task
    # they are meant to get: it goes out; any other task of theirs waits.
    expected = seed_health(store, sandbox)
    churned = sorted(expected)[0]
    store.db.execute("UPDATE health_scores SET churned = 1 WHERE account_id = ?", [churned])
    outbox = Outbox(store)
    for playbook in ("churn_followup", "band_red"):
        outbox.add(
            {
                "id": f"t-{playbook}",
                "account_id": churned,
                "playbook": playbook,
                "reason": playbook,
                "status": "open",
                "subject": f"{playbook} task",
                "body": "Evidence: cancelled",
                "priority": "HIGH",
                "due_at": "2026-01-20T09:00:00Z",
                "evidence": [{"type": "subscription_cancelled"}],
                "created_at": "2026-01-15T00:00:00Z",
            }
        )
    result = run_push(store, make_config(), dry_run=True, transport=sandbox.transport())
    planned = {(t.account_id, t.playbook) for t in result.tasks}
    assert (churned, "churn_followup") in planned
    assert (churned, "band_red") not in planned
