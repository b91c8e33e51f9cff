# ruff: noqa: F811 - the fixtures are imported from tests.test_push
"""Push history: each run's written values with the values they replaced, and its tasks."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hub.cli import cli
from hub.playbooks import run_playbooks
from hub.push import run_push
from hub.push.history import push_history, run_changes
from hub.sandbox.world import CREDENTIALS
from tests.test_push import hs, make_config, sandbox, seed_health  # noqa: F401 - fixtures


def test_each_run_records_what_it_replaced_and_the_tasks_it_created(
    store,
    sandbox,
    hs,
    tmp_path,
    monkeypatch,  # noqa: F811
):
    expected = seed_health(store, sandbox)
    config = make_config()
    run_playbooks(store, config)
    first = run_push(store, config, transport=sandbox.transport())
    assert first.status == "ok", first.errors
    some = sorted(expected)[0]
    store.db.execute("UPDATE health_scores SET score = 12 WHERE account_id = ?", [some])
    second = run_push(store, config, transport=sandbox.transport())
    assert second.status == "ok", second.errors

    rows = run_changes(store, second.run_id)
    values = [r for r in rows if r["property"]]
    assert values == [
        {
            **values[0],
            "object_id": some,
            "property": "hub_health_score",
            "old": expected[some]["hub_health_score"],
            "new": "12",
        }
    ]
    created = [r for r in run_changes(store, first.run_id) if not r["property"]]
    assert len(created) == sum(1 for t in first.tasks if t.action == "created") > 0
    assert all(hs.get("tasks", r["new"]) for r in created)
    first_values = [r for r in run_changes(store, first.run_id) if r["property"]]
    assert all(r["old"] == "" for r in first_values)
    assert len(first_values) == sum(len(v) for v in expected.values())

    # A dry run is not a run: nothing recorded.
    run_push(store, config, dry_run=True, transport=sandbox.transport())
    listing = push_history(store)
    assert listing["total"] == 2
    assert [i["run_id"] for i in listing["items"]] == [second.run_id, first.run_id]
    assert listing["items"][0]["values_written"] == 1 and listing["items"][0]["records"] == 1

    monkeypatch.setenv("HUB_TEST_HUBSPOT_TOKEN", CREDENTIALS["hubspot"]["access_token"])
    conf = tmp_path / "hub.toml"
    conf.write_text(f'[hub]\ndatabase = "{store.path}"\n')
    out = CliRunner().invoke(cli, ["-c", str(conf), "push", "history", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == json.loads(json.dumps(listing, default=str))
    table = CliRunner().invoke(cli, ["-c", str(conf), "push", "history"])
    assert table.exit_code == 0 and "Push runs: 2" in table.output
