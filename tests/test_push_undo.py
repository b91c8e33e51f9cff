# ruff: noqa: F811 - the fixtures are imported from tests.test_push
"""Revert and uninstall against the in-process fake HubSpot: what is restored, what is
skipped and why, tasks archived, properties and group archived and restored on re-install."""

from __future__ import annotations

import datetime as dt

import httpx

from hub import clock
from hub.playbooks import Outbox, run_playbooks
from hub.push import run_push
from hub.push.history import push_history, run_changes
from hub.push.undo import revert_run, uninstall
from hub.sandbox.world import CREDENTIALS
from plugins.hubspot_pusher import ALLOWED_PROPERTIES, GROUP
from tests.test_push import hs, make_config, sandbox, seed_health  # noqa: F401 - fixtures

TOKEN = {"Authorization": f"Bearer {CREDENTIALS['hubspot']['access_token']}"}


def _patch(sandbox, company: str, props: dict) -> None:
    with httpx.Client(transport=sandbox.transport(), base_url="https://api.hubapi.com") as http:
        http.patch(
            f"/crm/v3/objects/companies/{company}", json={"properties": props}, headers=TOKEN
        )


def test_revert_restores_only_what_the_crm_still_holds_and_archives_open_tasks(
    store,
    sandbox,
    hs,  # noqa: F811
):
    expected = seed_health(store, sandbox)
    config = make_config()
    run_playbooks(store, config)
    first = run_push(store, config, transport=sandbox.transport())
    assert first.status == "ok", first.errors
    a, b, c = sorted(expected)[:3]
    store.db.execute("UPDATE health_scores SET score = 11 WHERE account_id IN (?, ?, ?)", [a, b, c])
    second = run_push(store, config, transport=sandbox.transport())
    assert {(ch.object_id, ch.property) for ch in second.written} == {
        (x, "hub_health_score") for x in (a, b, c)
    }
    _patch(sandbox, b, {"hub_health_score": "64"})  # a CSM changed it since

    dry = revert_run(store, config, second.run_id, dry_run=True, transport=sandbox.transport())
    assert dry.writes == 0 and dry.run_id is None
    assert hs.get("companies", a)["properties"]["hub_health_score"] == "11"

    result = revert_run(store, config, second.run_id, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    by_id = {i.object_id: i for i in result.items if i.what == "value"}
    assert by_id[a].status == by_id[c].status == "done"
    assert by_id[b].status == "skipped" and "now '64'" in by_id[b].reason
    assert (
        hs.get("companies", a)["properties"]["hub_health_score"] == expected[a]["hub_health_score"]
    )
    assert hs.get("companies", b)["properties"]["hub_health_score"] == "64"

    # Reverting the first run archives its tasks still open; a completed one is skipped.
    created = [r for r in run_changes(store, first.run_id) if r["action"] == "task_created"]
    assert created
    done_remote = created[0]["new"]
    with httpx.Client(transport=sandbox.transport(), base_url="https://api.hubapi.com") as http:
        http.patch(
            f"/crm/v3/objects/tasks/{done_remote}",
            json={"properties": {"hs_task_status": "COMPLETED"}},
            headers=TOKEN,
        )
    undo_first = revert_run(store, config, first.run_id, transport=sandbox.transport())
    tasks = [i for i in undo_first.items if i.what == "task"]
    assert {i.object_id for i in tasks if i.status == "done"} == {r["new"] for r in created[1:]}
    assert [i.reason for i in tasks if i.status == "skipped"] == ["completed in the CRM"]
    archived = {t["id"] for t in hs.objects("tasks", archived=True)}
    assert {r["new"] for r in created[1:]} <= archived
    outbox = {t["id"]: t for t in Outbox(store).tasks()}
    # Undoing a push is not a CSM completing the work: reverted, never snoozed, and the
    # conditions that still hold open new tasks that the next push creates.
    reverted = [outbox[r["task_id"]] for r in created[1:]]
    assert {t["status"] for t in reverted} == {"reverted"}
    assert all(t["snoozed_until"] is None for t in reverted)
    reverted_keys = {(t["account_id"], t["playbook"], t["reason"]) for t in reverted}
    assert not reverted_keys & set(Outbox(store).blocking(clock.now()))
    assert (
        store.db.execute("SELECT COUNT(*) FROM open_tasks WHERE status = 'reverted'").fetchone()[0]
        == 0
    )
    later = clock.now() + dt.timedelta(hours=1)  # the next playbook run, an hour on
    clock.set_source(lambda: later)
    run_playbooks(store, config)
    again = run_push(store, config, transport=sandbox.transport())
    recreated = {t.account_id for t in again.tasks if t.action == "created"}
    assert recreated == {t["account_id"] for t in reverted}

    kinds = [r["kind"] for r in push_history(store)["items"]]
    assert kinds == ["push", "revert", "revert", "push", "push"]
    assert push_history(store)["items"][1]["tasks_archived"] == len(created) - 1


def test_uninstall_lists_then_archives_and_a_push_reinstalls(store, sandbox, hs):  # noqa: F811
    expected = seed_health(store, sandbox)
    config = make_config()
    run_playbooks(store, config)
    assert run_push(store, config, transport=sandbox.transport()).status == "ok"
    before = set(hs.properties("companies"))
    assert before >= ALLOWED_PROPERTIES

    dry = uninstall(store, config, "hubspot", tasks=True, transport=sandbox.transport())
    assert dry.writes == 0
    installed = [i for i in dry.items if i.what == "installed"]
    assert {i.object_id for i in installed if i.kind == "field"} == set(ALLOWED_PROPERTIES)
    assert [i.object_id for i in installed if i.kind == "group"] == [GROUP["name"]]
    n = len(ALLOWED_PROPERTIES)
    assert f"would archive {n} fields; would archive 1 group" in dry.summary()
    open_tasks = {i.object_id for i in dry.items if i.what == "task"}
    assert open_tasks and set(hs.properties("companies")) == before

    result = uninstall(
        store, config, "hubspot", tasks=True, dry_run=False, transport=sandbox.transport()
    )
    assert result.status == "ok", result.errors
    assert not ALLOWED_PROPERTIES & set(hs.properties("companies"))
    assert before - set(hs.properties("companies")) == set(ALLOWED_PROPERTIES)
    assert open_tasks <= {t["id"] for t in hs.objects("tasks", archived=True)}
    assert push_history(store)["items"][0]["kind"] == "uninstall"
    # History names no CRM's nouns: the action is ``removed``, the pusher's noun its kind.
    assert push_history(store)["items"][0]["removed"] == n + 1
    rows = run_changes(store, result.run_id)
    assert {(r["action"], r["kind"]) for r in rows if r["action"] != "task_archived"} == {
        ("removed", "field"),
        ("removed", "group"),
    }

    # Re-install: the next push restores the archived properties and writes every value.
    again = run_push(store, config, transport=sandbox.transport())
    assert again.status == "ok", again.errors
    assert set(hs.properties("companies")) >= ALLOWED_PROPERTIES
    some = sorted(expected)[0]
    assert (
        hs.get("companies", some)["properties"]["hub_health_score"]
        == expected[some]["hub_health_score"]
    )
    assert not [t for t in again.tasks if t.action == "created"]  # dismissed, not re-created


def test_cli_revert_of_an_unknown_run_and_uninstall_dry_run_by_default(store, tmp_path):
    from click.testing import CliRunner

    from hub.cli import cli

    conf = tmp_path / "hub.toml"
    conf.write_text(
        f'[hub]\ndatabase = "{store.path}"\n[connections.hubspot]\nconnector = "hubspot"\n'
        '[connections.hubspot.settings]\naccess_token = "env:HUB_UNDO_TOKEN"\n'
    )
    runner = CliRunner(env={"HUB_UNDO_TOKEN": "pat-unused"})
    missing = runner.invoke(cli, ["-c", str(conf), "push", "revert", "999"])
    assert missing.exit_code == 1
    assert "run 999 is not a push or revert run" in missing.output
    assert "hub push history" in missing.output and "Traceback" not in missing.output
    unknown = runner.invoke(cli, ["-c", str(conf), "uninstall", "salesforce"])
    assert unknown.exit_code == 1 and "no installed pusher is called 'salesforce'" in unknown.output


def test_revert_detail_is_limited_and_a_reverted_run_is_not_reverted_twice(
    store,
    sandbox,
    hs,  # noqa: F811
    capsys,
):
    from hub.cli.undo import print_undo

    seed_health(store, sandbox)
    config = make_config(push={"tasks": False})
    first = run_push(store, config, transport=sandbox.transport())
    dry = revert_run(store, config, first.run_id, dry_run=True, transport=sandbox.transport())
    total = len(dry.items)
    assert total > 3
    view = dry.view(limit=3)
    assert len(view["items"]) == 3 and view["total"] == total
    print_undo(dry, view)
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith(f"revert run {first.run_id}: would restore")
    assert f"… {total - 3} more, use --limit N or --account" in out
    some = dry.items[0]
    assert {i.account_id for i in dry.view(account=some.label)["items"]} == {some.account_id}

    undo = revert_run(store, config, first.run_id, transport=sandbox.transport())
    assert undo.status == "ok", undo.errors
    again = revert_run(store, config, first.run_id, dry_run=True, transport=sandbox.transport())
    assert again.items == [] and again.already_reverted_by == undo.run_id
    assert again.summary() == f"revert run {first.run_id}: already reverted by run {undo.run_id}"
    # Taking the revert back makes the first run revertible again.
    revert_run(store, config, undo.run_id, transport=sandbox.transport())
    third = revert_run(store, config, first.run_id, dry_run=True, transport=sandbox.transport())
    assert third.already_reverted_by is None and third.count("value", "planned") == total


def test_old_history_rows_read_with_the_neutral_action_after_the_migration(tmp_path):
    """A database written before ``push_history_removed`` said ``field_archived`` and
    ``group_archived``; opening it rewrites them to ``removed`` with the noun in ``kind``,
    and ``hub push history`` counts them."""
    from click.testing import CliRunner

    from hub.cli import cli
    from hub.store import Store

    path = tmp_path / "old.db"
    old = Store(path)
    # Back to the schema before the migration: no ``kind`` column, the migration not applied
    # (nor the later one that stores the history compactly).
    old.db.execute(
        "DELETE FROM _sqlite_migrations WHERE name IN "
        "('push_history_removed', 'mapstore_m005_push_history_groups')"
    )
    old.db.execute("DROP TABLE _hub_push_history")
    old.db.execute("DROP TABLE _hub_push_groups")
    old.db.execute(
        "CREATE TABLE _hub_push_history (run_id INTEGER, object_type TEXT, object_id TEXT, "
        "account_id TEXT, property TEXT, old TEXT, new TEXT, task_id TEXT, at TEXT, "
        "target TEXT, action TEXT)"
    )
    run_id = old.start_run("uninstall", "hubspot")
    old.finish_run(run_id, status="ok", records=3, note="uninstall hubspot: archived 3 things")
    old.db.conn.executemany(
        "INSERT INTO _hub_push_history (run_id, target, action, object_type, object_id, new, at)"
        " VALUES (?, 'hubspot:hubspot', ?, 'companies', ?, ?, '2026-01-01T00:00:00Z')",
        [
            (run_id, "field_archived", "hub_health_score", "hub_health_score"),
            (run_id, "field_archived", "hub_health_band", "hub_health_band"),
            (run_id, "group_archived", "hub", "hub"),
        ],
    )
    old.db.conn.commit()
    old.close()

    store = Store(path)
    try:
        rows = run_changes(store, run_id)
        assert [(r["action"], r["kind"]) for r in rows] == [
            ("removed", "field"),
            ("removed", "field"),
            ("removed", "group"),
        ]
        assert push_history(store)["items"][0]["removed"] == 3
    finally:
        store.close()
    shown = CliRunner().invoke(cli, ["--db", str(path), "push", "history", "--json"])
    assert shown.exit_code == 0, shown.output
    assert '"removed": 3' in shown.output
    table = CliRunner().invoke(cli, ["--db", str(path), "push", "history"]).output.splitlines()
    header = table[1].split("\t")
    row = dict(zip(header, table[2].split("\t")))
    assert (row["kind"], row["archived"], row["removed"]) == ("uninstall", "0", "3"), table
