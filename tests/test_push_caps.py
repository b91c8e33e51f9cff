# ruff: noqa: F811 - the fixtures are imported from tests.test_push
"""Task caps: urgent work is never starved, held tasks say why, recovered rows count."""

from __future__ import annotations

from hub.playbooks import Outbox, run_playbooks
from hub.push import run_push
from hub.push.preview import build_preview
from tests.test_push import hs, make_config, sandbox, seed_health  # noqa: F401 - fixtures


def one_owner(store, sandbox):
    store.db.execute("UPDATE accounts SET owner_id = ?", [sandbox.world.owners[0]["id"]])


def test_high_priority_tasks_go_out_past_the_caps_and_held_ones_say_why(store, sandbox, hs):
    seed_health(store, sandbox)
    one_owner(store, sandbox)
    config = make_config({"max_tasks_per_owner": 1, "urgent_bypass_caps": True})
    run_playbooks(store, config)
    opened = Outbox(store).tasks(["open"])
    high = {t["id"] for t in opened if t["priority"] == "HIGH"}
    assert len(high) >= 2 and len(opened) > len(high)
    dry = run_push(store, config, dry_run=True, transport=sandbox.transport())
    assert {t.task_id for t in dry.tasks if t.action == "create"} == high
    assert dry.held == len(opened) - len(high) == len(dry.held_tasks)
    assert all(t.priority != "HIGH" for t in dry.held_tasks)
    assert all(t.error.startswith("per-owner cap") for t in dry.held_tasks)
    assert "HIGH priority is never held" in dry.caps
    # --account finds an account whose only tasks are held, and says why.
    held = dry.held_tasks[0]
    name = store.db.execute("SELECT name FROM accounts WHERE id = ?", [held.account_id]).fetchone()[
        0
    ]
    preview = build_preview(store, dry, account=name)
    assert preview["total"] == 1
    entries = [t for t in preview["items"][0]["tasks"] if t["action"] == "held"]
    assert entries and entries[0]["error"].startswith("per-owner cap")
    assert preview["summary"]["held_by_reason"] == {"per-owner cap": dry.held}
    # Switched off, HIGH tasks wait like the others: HIGH first, within the cap.
    off = make_config({"max_tasks_per_owner": 1})
    capped = run_push(store, off, dry_run=True, transport=sandbox.transport())
    assert [t.priority for t in capped.tasks if t.action == "create"] == ["HIGH"]


def test_rows_left_pushing_count_toward_the_owner_cap(store, sandbox, hs):
    seed_health(store, sandbox)
    one_owner(store, sandbox)
    config = make_config({"max_tasks_per_owner": 2})
    run_playbooks(store, config)
    opened = Outbox(store).tasks(["open"])
    stuck = [t["id"] for t in opened[:3]]
    Outbox(store).claim_many(stuck)  # a failed push left them ``pushing``
    result = run_push(store, config, transport=sandbox.transport())
    assert result.status == "ok", result.errors
    assert sorted(t.task_id for t in result.tasks if t.recovered) == sorted(stuck)
    assert not [t for t in result.tasks if not t.recovered]  # the cap is used up
    assert result.held == len(opened) - 3
    preview = build_preview(store, result)
    assert preview["summary"]["recovered"] == 3 and preview["summary"]["tasks"] == 0
    assert "pushed 0 tasks; settled 3 tasks left by an earlier push" in result.summary()


def test_the_tasks_heading_says_open_includes_pushed(store, sandbox, hs, tmp_path):
    from click.testing import CliRunner

    from hub.cli import cli

    seed_health(store, sandbox)
    config = make_config()
    run_playbooks(store, config)
    run_push(store, config, transport=sandbox.transport())
    conf = tmp_path / "hub.toml"
    conf.write_text(f'[hub]\ndatabase = "{store.path}"\n')
    out = CliRunner().invoke(cli, ["-c", str(conf), "tasks"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "Tasks (not done: open, pushing or pushed): " in out.output
