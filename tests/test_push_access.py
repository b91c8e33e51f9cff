# ruff: noqa: F811 - the fixtures are imported from tests.test_push
"""Scopes checked before anything is written: ``hub check`` and ``hub push --dry-run`` name a
missing scope (token information for private-app tokens and service keys, empty-batch probes
for other tokens); companies whose tasks would go unassigned are listed."""

from __future__ import annotations

from hub.checks import push_verdicts
from hub.config import parse_config
from hub.push import run_push
from hub.sandbox.world import CREDENTIALS
from tests.test_push import hs, sandbox, seed_health  # noqa: F401 - fixtures


def config_with(token: str, **push):
    settings = {**CREDENTIALS["hubspot"], "access_token": token}
    return parse_config(
        {
            "connections": {"hubspot": {"connector": "hubspot", "settings": settings}},
            "push": {"hubspot": {"record_retry_delay": 0}, **push},
        }
    )


def test_a_missing_scope_is_named_by_check_and_the_dry_run(store, sandbox, hs):
    seed_health(store, sandbox)
    hs.issue_token("pat-no-tasks", without={"crm.objects.contacts.write"})
    config = config_with("pat-no-tasks")
    [verdict] = push_verdicts(config, database=store.path, transport=sandbox.transport())
    assert not verdict.ok and verdict.connector == "push:hubspot"
    assert "crm.objects.contacts.write" in verdict.detail
    assert "crm.objects.companies.write" not in verdict.detail

    preview = run_push(store, config, dry_run=True, transport=sandbox.transport())
    assert preview.status == "partial" and preview.writes == 0
    assert any("crm.objects.contacts.write" in e for e in preview.errors)

    # Tasks off: the contacts scope is not needed any more.
    [verdict] = push_verdicts(
        config_with("pat-no-tasks", tasks=False),
        database=store.path,
        transport=sandbox.transport(),
    )
    assert verdict.ok, verdict.detail

    hs.issue_token("pat-all")
    [verdict] = push_verdicts(
        config_with("pat-all"), database=store.path, transport=sandbox.transport()
    )
    assert verdict.ok, verdict.detail


def test_a_token_unknown_to_token_info_is_probed_with_empty_batches(store, sandbox, hs):
    seed_health(store, sandbox)
    hs.issue_token("oauth-token", kind="oauth", without={"crm.schemas.companies.write"})
    [verdict] = push_verdicts(
        config_with("oauth-token"), database=store.path, transport=sandbox.transport()
    )
    assert not verdict.ok and "crm.schemas.companies.write" in verdict.detail
    # The probes are empty batches: nothing was written.
    assert ("POST", "/crm/v3/objects/companies/batch/update") in [(m, p) for m, p, _ in hs.writes]
    assert all(not (body or {}).get("inputs") for _, _, body in hs.writes)


def test_companies_without_an_owner_are_listed_until_a_fallback_is_set(store, sandbox, hs):
    seed_health(store, sandbox)
    some = store.db.execute("SELECT id, name FROM accounts ORDER BY name LIMIT 2").fetchall()
    for account_id, _ in some:
        store.db.execute("UPDATE accounts SET owner_id = NULL WHERE id = ?", [account_id])
    [verdict] = push_verdicts(
        config_with(CREDENTIALS["hubspot"]["access_token"]),
        database=store.path,
        transport=sandbox.transport(),
    )
    unowned = store.db.execute(
        "SELECT COUNT(*) FROM accounts WHERE owner_id IS NULL OR owner_id = ''"
    ).fetchone()[0]
    assert verdict.ok and unowned >= 2
    assert verdict.warnings and f"{unowned} accounts without an owner" in verdict.warnings[0]
    assert some[0][1] in verdict.warnings[0] and "fallback_owner_id" in verdict.warnings[0]
    config = parse_config(
        {
            "connections": {
                "hubspot": {"connector": "hubspot", "settings": dict(CREDENTIALS["hubspot"])}
            },
            "push": {"hubspot": {"fallback_owner_id": "123"}},
        }
    )
    [verdict] = push_verdicts(config, database=store.path, transport=sandbox.transport())
    assert verdict.ok and not verdict.warnings


def test_the_real_push_refuses_a_missing_scope_before_writing(store, sandbox, hs):
    seed_health(store, sandbox)
    hs.issue_token("pat-read-only", without={"crm.objects.companies.write"})
    result = run_push(store, config_with("pat-read-only"), transport=sandbox.transport())
    assert result.status == "error" and result.writes == 0 and not hs.writes
    [error] = result.errors
    assert error.count("crm.objects.companies.write") == 1, error
    assert "service key (or legacy private app)" in error


def test_a_refused_task_create_prints_the_hint_once_and_leaves_the_tasks_open(
    store, sandbox, hs, capsys
):
    from hub.cli.push import print_push_preview
    from hub.playbooks import Outbox, run_playbooks
    from hub.push.preview import build_preview

    seed_health(store, sandbox)
    hs.issue_token("pat-no-tasks", without={"crm.objects.contacts.write"})
    config = config_with("pat-no-tasks", max_tasks_per_owner=0)
    run_playbooks(store, config)
    opened = len(Outbox(store).tasks(["open"]))
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "error"
    print_push_preview(result, build_preview(store, result, limit=None))
    out = capsys.readouterr()
    assert (out.out + out.err).count("lacks crm.objects.contacts.write") == 1, out
    assert "service key (or legacy private app)" in out.err
    assert out.err.index("error:") == 0  # the error comes before the summary
    # Refused before anything was created: back to open, nothing left ``pushing``.
    assert Outbox(store).tasks(["pushing"]) == [] and len(Outbox(store).tasks(["open"])) == opened
