"""The CLI: every command has --help, errors are one line, init/check/sync/status work."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from hub.cli import cli
from tests.plugins.example import TOKEN


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", list(all_commands(cli)), ids=lambda p: " ".join(p))
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_version():
    from hub import __version__

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_init_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    first = runner.invoke(cli, ["init"])
    assert first.exit_code == 0, first.output
    assert (tmp_path / "hub.toml").exists() and (tmp_path / "hub.db").exists()
    assert oct((tmp_path / "hub.toml").stat().st_mode)[-3:] == "600"
    second = runner.invoke(cli, ["init"])
    assert second.exit_code == 1
    assert second.output.strip().splitlines() == [
        "Error: hub.toml already exists (pass --force to overwrite it)"
    ]
    assert runner.invoke(cli, ["init", "--force"]).exit_code == 0


def test_config_error_is_one_line_no_traceback(tmp_path):
    (tmp_path / "hub.toml").write_text("[hub]\nlog_level = 'loud'\n")
    result = CliRunner().invoke(cli, ["-c", str(tmp_path / "hub.toml"), "status"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "hub.log_level" in lines[0]
    assert "Traceback" not in result.output


def test_example_config_loads_and_check_gives_verdicts(tmp_path, monkeypatch):
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    from hub.config import load_config

    config = load_config(example)
    assert set(config.connections) >= {"stripe", "hubspot", "zendesk", "builtwith"}
    result = CliRunner().invoke(
        cli, ["-c", str(example), "--db", str(tmp_path / "x.db"), "check", "--offline"]
    )
    # Without the env vars set, each connection gets a clear verdict naming the variable.
    assert "STRIPE_API_KEY" in result.output or "✓ stripe" in result.output


def test_sync_and_status(example_registry, tmp_path):
    from tests.plugins.example import ExampleAPI

    (tmp_path / "hub.toml").write_text(
        f'[hub]\ndatabase = "hub.db"\n[connections.ex]\nconnector = "example"\n[connections.ex.settings]\ntoken = "{TOKEN}"\n'
    )
    api = ExampleAPI(count=25)
    import hub.sync as sync_module

    original = sync_module.sync_connection

    def with_transport(store, connector, **kwargs):
        kwargs["transport"] = api.transport()
        return original(store, connector, **kwargs)

    sync_module.sync_connection = with_transport
    try:
        runner = CliRunner()
        result = runner.invoke(cli, ["-c", str(tmp_path / "hub.toml"), "sync"])
        assert result.exit_code == 0, result.output
        assert "ex" in result.output and "25" in result.output
        status = runner.invoke(cli, ["-c", str(tmp_path / "hub.toml"), "status", "--json"])
        assert status.exit_code == 0, status.output
        data = json.loads(status.stdout)
        [row] = data["items"]
        assert row["connection"] == "ex" and row["status"] == "ok" and row["records"] == 25
        assert data["failing"] is False
    finally:
        sync_module.sync_connection = original


def test_unknown_connection_is_clear(tmp_path):
    (tmp_path / "hub.toml").write_text(
        '[connections.a]\nconnector = "stripe"\n[connections.a.settings]\napi_key = "env:K"\n'
    )
    result = CliRunner().invoke(cli, ["-c", str(tmp_path / "hub.toml"), "sync", "nope"])
    assert result.exit_code == 1 and "no connection named 'nope'" in result.output
