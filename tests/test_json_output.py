"""Every command's ``--json``: one document on stdout in the documented shape.

Lists are ``{"items": [...], "total": N, ...}`` (``total`` counts all matches, not only the
items shown), nested JSON columns are decoded, and errors are ``{"error", "hint", "type"}``.
Run against the sandbox served over loopback HTTP with a small world, through the real CLI.
The README's "Output for machines" table documents every command that takes ``--json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hub.cli import cli
from hub.sandbox.world import build_sandbox
from hub.testing import hub_toml as write_hub_toml
from hub.testing import serving


@pytest.fixture(scope="module")
def hub_toml(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("json")
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    sandbox = build_sandbox(companies=12, seed=5, start=today - dt.timedelta(days=1))
    with serving(sandbox) as server:
        conf = write_hub_toml(
            tmp / "hub.toml", server.url, ["hubspot", "stripe", "zendesk"], env_prefix="HUB_JSON"
        )
        old = {k: os.environ.get(k) for k in conf.env}
        os.environ.update(conf.env)
        try:
            yield conf.path
        finally:
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def run_json(hub_toml, *args, code=0):
    result = CliRunner().invoke(cli, ["-c", str(hub_toml), *args, "--json"])
    assert result.exit_code == code, result.output
    data = json.loads(result.stdout)
    assert not json_inside_json(data), (args, json_inside_json(data))
    return data


def json_inside_json(value, where="$"):
    """Paths of strings that are themselves JSON objects or lists (nested JSON not decoded)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += json_inside_json(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += json_inside_json(item, f"{where}[{i}]")
    elif isinstance(value, str) and value[:1] in "{[" and value[-1:] in "}]":
        try:
            json.loads(value)
            found.append(where)
        except ValueError:
            pass
    return found


def listing(data, *keys):
    assert isinstance(data, dict) and isinstance(data["items"], list), data
    assert isinstance(data["total"], int) and data["total"] >= len(data["items"])
    for item in data["items"]:
        for key in keys:
            assert key in item, (key, item)
    return data["items"]


def test_sync_json_has_per_stream_counts(hub_toml):
    data = run_json(hub_toml, "sync")
    items = listing(data, "connection", "stream", "status", "records", "changed", "requests")
    assert {i["connection"] for i in items} == {"hubspot", "stripe", "zendesk"}
    assert data["totals"]["records"] == sum(i["records"] for i in items)


def test_run_once_json_has_per_step_counts(hub_toml):
    data = run_json(hub_toml, "run", "--once", "--dry-run")
    steps = listing(data, "step", "status", "records", "summary")
    assert [s["step"] for s in steps] == ["sync", "map", "health", "playbooks", "push"]
    assert data["ok"] is True and isinstance(data["duration_s"], float)


def test_read_commands_json(hub_toml):
    listing(run_json(hub_toml, "status"), "connection", "stream", "status", "records")
    accounts = listing(run_json(hub_toml, "accounts"), "id", "name", "facts", "sources")
    assert all(isinstance(a["facts"], dict) for a in accounts)
    assert run_json(hub_toml, "accounts", "--limit", "2")["total"] == len(accounts)
    listing(run_json(hub_toml, "accounts", "--links"), "account_id", "entity", "method")
    listing(run_json(hub_toml, "accounts", "--unmatched"), "entity", "issue", "domains")
    data = run_json(hub_toml, "timeline", accounts[0]["id"])
    events = listing(data, "ts", "source", "type", "summary", "attrs")
    assert data["account"]["id"] == accounts[0]["id"]
    assert all(isinstance(e["attrs"], dict) for e in events)
    listing(run_json(hub_toml, "plugins"), "name", "distribution", "version", "hooks")
    listing(run_json(hub_toml, "check", "--offline"), "connection", "connector", "ok", "detail")


def test_map_json(hub_toml):
    data = run_json(hub_toml, "map")
    assert {"rows", "events", "accounts", "unmatched"} <= set(data)


def test_db_json(hub_toml, tmp_path):
    status = run_json(hub_toml, "db", "status")
    assert status["pending"] == [] and status["counts"]["accounts"] > 0
    migrate = run_json(hub_toml, "db", "migrate", "--dry-run")
    assert listing(migrate) == [] and migrate["dry_run"] is True
    backup = run_json(hub_toml, "db", "backup", str(tmp_path / "copy.db"))
    assert backup["bytes"] > 0 and oct(os.stat(backup["path"]).st_mode & 0o777) == "0o600"
    vacuum = run_json(hub_toml, "db", "vacuum")
    assert vacuum["bytes_after"] > 0


def test_errors_under_json_are_json(hub_toml):
    data = run_json(hub_toml, "timeline", "no-such-account.example", code=1)
    assert set(data) == {"error", "hint", "type"} and "no-such-account" in data["error"]
    assert data["type"] == "ConfigError" and data["hint"]
    assert "--once" in run_json(hub_toml, "run", code=1)["error"]  # never a silent scheduler
    # The same through ``hub --format json`` (no --json on the command).
    result = CliRunner().invoke(
        cli, ["-c", str(hub_toml), "--format", "json", "timeline", "no-such-account.example"]
    )
    assert result.exit_code == 1 and json.loads(result.stdout)["type"] == "ConfigError"


def test_a_mistyped_option_under_json_is_json_too(hub_toml):
    result = CliRunner().invoke(cli, ["-c", str(hub_toml), "accounts", "--limit", "x", "--json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 2 and data["type"] == "UsageError" and "--limit" in data["error"]
    assert data["hint"] == "see 'hub accounts --help'"


def test_format_json_means_json_for_every_command(hub_toml):
    result = CliRunner().invoke(cli, ["-c", str(hub_toml), "--format", "json", "status"])
    listing(json.loads(result.stdout), "connection", "stream", "status")


def test_health_json(hub_toml):
    data = run_json(hub_toml, "health")
    scores = listing(data, "account_id", "name", "score", "band", "drivers", "coverage")
    assert data["total"] == len(scores) > 2 and data["run"]["accounts"] >= 0
    assert all(isinstance(s["drivers"], list) for s in scores)
    limited = run_json(hub_toml, "health", "--no-compute", "--limit", "2")
    assert len(limited["items"]) == 2 and limited["total"] == len(scores)
    assert limited["run"] is None
    explained = run_json(hub_toml, "health", "--explain", scores[0]["account_id"])
    measures = listing(explained, "name", "score", "weight", "drivers", "inputs")
    assert explained["account"]["id"] == scores[0]["account_id"]
    assert explained["score"] == scores[0]["score"] and measures


def test_portfolio_json(hub_toml):
    data = run_json(hub_toml, "portfolio", "--period", "last-90d")
    books = listing(data, "key", "label", "starting_mrr", "closing_mrr", "nrr_pct")
    assert data["overall"]["key"] == "*" and data["by"] == "owner"
    assert sum(b["accounts"] for b in books) == data["overall"]["accounts"]
    assert {"start", "end_exclusive"} <= set(data["period"])
    cohorts = run_json(hub_toml, "portfolio", "cohorts")
    listing(cohorts, "cohort", "accounts", "ttfv_median_days")
    assert isinstance(cohorts["early_churn_days"], int)
    lifetimes = listing(run_json(hub_toml, "portfolio", "cohorts", "--accounts"), "account_id")
    months = run_json(hub_toml, "portfolio", "movements", lifetimes[0]["account_id"])
    listing(months, "month", "opening", "closing", "reasons")
    assert months["account_id"] == lifetimes[0]["account_id"]


def test_demo_json(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["demo", "--companies", "10", "--weeks", "0", "--db", str(tmp_path / "d.db"), "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"db_path", "companies", "bands", "summary", "movers", "errors"} <= set(data)
    # The honest breakdown, the same as the demo's line: findings → merged → tasks opened −
    # cancelled − held = created; ``task_counts`` (deprecated) keeps findings in ``opened``.
    t = data["tasks"]
    assert t["findings"] > 0
    assert t["opened"] == t["findings"] - t["merged"]
    assert t["created"] == t["opened"] - t["cancelled"] - t["held"]
    assert sum(t["by_playbook"].values()) == t["findings"]
    old = data["task_counts"]
    assert old["opened"] == t["findings"] and "findings" not in old
    assert old["created"] == t["created"]


def documented_shapes() -> dict[str, str]:
    """Command → shape, from the README's "Output for machines" table."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### Output for machines", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `hub ([a-z ]+?)` \| (.+) \|$", section, flags=re.M))


def json_commands(group: click.Group, prefix: str = "") -> list[str]:
    found = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if any(p.name == "as_json" for p in command.params):
            found.append(path)
        if isinstance(command, click.Group):
            found += json_commands(command, path + " ")
    return found


def test_readme_documents_the_json_shape_of_every_command():
    shapes = documented_shapes()
    commands = json_commands(cli)
    assert len(commands) > 15
    missing = [c for c in commands if c not in shapes]
    assert not missing, f"README 'Output for machines' lacks: {missing}"
    for command, shape in shapes.items():
        assert "`items`" in shape or shape.startswith("object:"), (command, shape)


# -- playbooks, tasks and push (NAME=writeback) ----------------------------------------------


def test_playbooks_json(hub_toml):
    rows = listing(run_json(hub_toml, "playbooks"), "name", "enabled", "thresholds", "priority")
    assert rows and run_json(hub_toml, "playbooks")["run"] is None
    ran = run_json(hub_toml, "playbooks", "--run")
    assert ran["total"] == len(ran["items"]) and ran["run"]["run_id"]
    # ``findings`` says what it counts; ``tasks_opened`` (deprecated) is the same number.
    for row in ran["items"]:
        assert row["tasks_opened"] == row["findings"] >= row["open_now"]
    # Findings add up over every run (earlier tests of this module ran playbooks too).
    opened = len(ran["run"]["opened"])
    assert sum(r["findings"] for r in ran["items"]) >= opened + ran["run"]["merged"]


def test_readme_marks_the_deprecated_keys():
    """A key kept for one release under a meaning it no longer has is documented so."""
    shapes = documented_shapes()
    for command, key in (("playbooks", "tasks_opened"), ("demo", "task_counts")):
        shape = shapes[command]
        assert f"`{key}`" in shape, (command, key)
        after = shape.split(f"`{key}`", 1)[1][:50]
        assert "deprecated" in after and "next release" in after, (command, after)


def test_tasks_json(hub_toml):
    data = run_json(hub_toml, "tasks", "--status", "all")
    listing(data, "id", "account_id", "subject", "status", "due_at")
    assert data["status"] == "all"


def test_push_json(hub_toml):
    data = run_json(hub_toml, "push", "--dry-run")
    items = listing(data, "account_id", "account_name", "object_id", "changes", "tasks")
    summary = data["summary"]
    assert {"text", "records", "values", "values_by_property", "tasks"} <= set(summary)
    assert {"tasks_by_playbook", "tasks_by_owner", "why_no_tasks"} <= set(summary)
    assert summary["values"] == sum(len(i["changes"]) for i in items)
    assert data["dry_run"] is True and data["writes"] == 0
    one = run_json(hub_toml, "push", "--dry-run", "--limit", "1")
    assert len(one["items"]) <= 1 and one["total"] == data["total"]


def test_push_history_json(hub_toml):
    data = run_json(hub_toml, "push", "history")
    listing(data, "run_id", "kind", "status", "values_written", "tasks_created")
