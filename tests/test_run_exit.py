"""A failed step fails the run: ``hub run --once`` names it and exits 1, and so does
``hub status`` afterwards (cron mail and the container healthcheck alert on it).

The sandbox is served over loopback; every CRM write is dropped mid-flight so the push step
fails while sync, map, health and playbooks succeed.
"""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from hub.cli import cli
from hub.sandbox.world import CREDENTIALS, build_sandbox


def test_a_failed_push_fails_run_once_and_hub_status(tmp_path, monkeypatch):
    sandbox = build_sandbox(companies=10, seed=3)
    server = sandbox.serve()
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[hub]\ndatabase = "{tmp_path / "hub.db"}"\n'
        '[connections.hubspot]\nconnector = "hubspot"\n'
        '[connections.hubspot.settings]\naccess_token = "env:HUB_EXIT_HS"\n'
        f'base_url = "{server.url}"\n[push.hubspot]\nconnection = "hubspot"\n'
    )
    os.chmod(config, 0o600)
    monkeypatch.setenv("HUB_EXIT_HS", CREDENTIALS["hubspot"]["access_token"])
    # Every write the pusher sends (property setup, batch updates, task creation) is lost.
    sandbox.inject("hubspot", "drop", count=-1, path=r"/(properties/|batch/(update|create))")
    runner = CliRunner()
    try:
        plain = runner.invoke(cli, ["-c", str(config), "run", "--once"])
        assert plain.exit_code == 1, plain.output
        assert "push: error" in plain.stdout, plain.stdout
        last = plain.stdout.strip().splitlines()[-1]
        assert last.startswith("Pipeline finished in") and "failed: push" in last, last
        data = runner.invoke(cli, ["-c", str(config), "run", "--once", "--json"])
        doc = json.loads(data.stdout)
        assert data.exit_code == 1 and doc["ok"] is False and doc["failed_steps"] == ["push"]
        status = runner.invoke(cli, ["-c", str(config), "status", "--json"])
        report = json.loads(status.stdout)
        assert status.exit_code == 1 and report["failing"] is True
        assert [s["kind"] for s in report["steps"] if s["failing"]] == ["pipeline", "push"]
    finally:
        server.stop()


def test_every_kind_of_step_failure_is_named():
    from hub.pipeline import PipelineResult
    from hub.timeline.driver import MapResult

    result = PipelineResult(
        steps={"map": MapResult(errors=["mapping x: bad row"]), "health": object()},
        errors={"playbooks": "boom"},
        failed_connections=["billing"],
    )
    assert result.failed_steps == ["sync of billing", "map", "playbooks"] and not result.ok
    assert [r["status"] for r in result.step_rows()] == ["partial", "ok", "error"]
    assert PipelineResult(steps={"map": MapResult(), "health": object()}).ok
