# ruff: noqa: F811 - the fixtures are imported from tests.test_push
"""The preview a person reads: what a real push reports never says "would create", and an
empty outbox says why there are no tasks."""

from __future__ import annotations

import httpx

from hub.playbooks import run_playbooks
from hub.push import run_push
from hub.push.preview import NO_TASKS, build_preview
from tests.test_push import hs, make_config, sandbox, seed_health  # noqa: F401 - fixtures


def test_an_empty_outbox_says_to_run_the_playbooks(store, sandbox, hs):  # noqa: F811
    seed_health(store, sandbox)
    result = run_push(store, make_config(), dry_run=True, transport=sandbox.transport())
    preview = build_preview(store, result)
    assert preview["summary"]["tasks"] == 0
    assert preview["summary"]["why_no_tasks"] == NO_TASKS
    run_playbooks(store, make_config())
    result = run_push(store, make_config(), dry_run=True, transport=sandbox.transport())
    assert build_preview(store, result)["summary"]["why_no_tasks"] is None


def test_a_failed_task_create_is_never_reported_as_would_create(store, sandbox, hs):  # noqa: F811
    seed_health(store, sandbox)
    config = make_config()
    run_playbooks(store, config)

    def refuse_tasks(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        creates = not path.endswith(("/search", "/batch/read"))
        if "/objects/tasks" in path and request.method == "POST" and creates:
            return httpx.Response(
                403,
                json={
                    "status": "error",
                    "category": "MISSING_SCOPES",
                    "message": "This app hasn't been granted all required scopes.",
                    "errors": [
                        {"context": {"requiredGranularScopes": ["crm.objects.contacts.write"]}}
                    ],
                },
            )
        return sandbox.handle(request)

    result = run_push(store, config, transport=httpx.MockTransport(refuse_tasks))
    assert result.status == "error"
    preview = build_preview(store, result, limit=None)
    verbs = {t["verb"] for item in preview["items"] for t in item["tasks"]}
    assert verbs and not any(v.startswith("would") for v in verbs)
    assert verbs <= {"failed", "not created (the push stopped before it)"}
    assert preview["summary"]["tasks"] == 0  # none delivered
    assert sum(1 for e in result.errors if "crm.objects.contacts.write" in e) == 1


def test_labels_name_the_record_kind_split_values_per_pusher_and_list_the_pushers(
    store,
    sandbox,
    hs,  # noqa: F811
    capsys,
):
    from hub.cli.push import print_push_preview
    from hub.push import PropertyChange, PushResult
    from hub.push.history import push_history

    seed_health(store, sandbox)
    config = make_config({"properties": False})
    run_playbooks(store, config)
    result = run_push(store, config, dry_run=True, transport=sandbox.transport())
    items = build_preview(store, result, limit=None)["items"]
    assert items and {i["object_type"] for i in items} == {"companies"}  # never "records"

    two = PushResult(dry_run=True)
    for target, object_type in (("hubspot:hubspot", "companies"), ("zendesk:zd", "orgs")):
        for n in range(3):
            two.changes.append(
                PropertyChange(object_type, f"{n}", f"a{n}", f"A{n}", "hub_health_score", "", "1")
            )
            two.changes[-1].target = target
    preview = build_preview(store, two, tasks_on=False)
    assert preview["summary"]["values_by_pusher"] == {
        "hubspot": {"hub_health_score": 3},
        "zendesk": {"hub_health_score": 3},
    }
    print_push_preview(two, preview)
    assert "hubspot: hub_health_score 3; zendesk: hub_health_score 3" in capsys.readouterr().out

    run_push(store, make_config(), transport=sandbox.transport())
    assert push_history(store)["items"][0]["pushers"] == ["hubspot"]
