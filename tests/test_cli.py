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


# -- hostile text, one-line errors, files (issue: never a traceback) -------------------------

HOSTILE = "ACME [/] Holdings [bold]"


@pytest.fixture
def hostile_db(tmp_path):
    import datetime as dt

    from hub.store import Store

    path = tmp_path / "hub.db"
    store = Store(path)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    with store.db.atomic():
        store.db["accounts"].insert(
            {
                "id": "1",
                "name": HOSTILE,
                "domain": "acme.test",
                "owner_name": "[red]Jo[/]",
                "mrr": 1200.0,
                "facts": json.dumps({"sources": {"crm": 1}}),
                "updated_at": now,
            }
        )
        store.db["events"].insert(
            {
                "id": "crm:note:1",
                "entity": "crm:company:1",
                "account_id": "1",
                "ts": now,
                "source": "crm",
                "type": "note",
                "summary": "said [/] and [link=x]y",
                "attrs": json.dumps({"nested": {"a": [1, 2]}}),
                "mapped_at": now,
            }
        )
    run_id = store.start_run("sync", "crm", "companies")
    store.finish_run(run_id, status="error", error="upstream said [/] [bold] no")
    store.close()
    return str(path)


@pytest.mark.parametrize(
    "args",
    [
        ["accounts"],
        ["accounts", "--search", "[/]"],
        ["timeline", "acme.test"],
        ["health"],
        ["health", "--explain", "acme.test"],
        ["status"],
    ],
    ids=lambda a: " ".join(a),
)
@pytest.mark.parametrize("fmt", ["table", "plain"])
def test_remote_text_is_never_markup(hostile_db, args, fmt):
    result = CliRunner().invoke(cli, ["--db", hostile_db, "--format", fmt, *args])
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output and "MarkupError" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if fmt == "table":
        assert "[/]" in result.output  # shown, however the 80-column table folds it
    elif args[0] == "status":
        assert "upstream said [/] [bold] no" in result.output
    else:
        assert "ACME [/] Holdings" in result.output, result.output


def test_json_decodes_nested_json_and_accounts_is_not_silently_limited(hostile_db):
    data = json.loads(CliRunner().invoke(cli, ["--db", hostile_db, "accounts", "--json"]).stdout)
    assert data["total"] == 1 and data["items"][0]["facts"] == {"sources": {"crm": 1}}
    events = json.loads(
        CliRunner().invoke(cli, ["--db", hostile_db, "timeline", "1", "--json"]).stdout
    )
    assert events["items"][0]["attrs"] == {"nested": {"a": [1, 2]}}


def test_accounts_filters_count_their_matches_and_an_unknown_owner_is_named(hostile_db):
    def run(*args):
        return CliRunner().invoke(cli, ["--db", hostile_db, "--format", "plain", "accounts", *args])

    hit = run("--search", "acme")
    assert "Accounts matching --search 'acme' (1 of 1)" in hit.output, hit.output
    odd = run("--search", "[/]")  # the user's text as typed, in plain and table output
    assert "Accounts matching --search '[/]' (1 of 1)" in odd.output, odd.output
    table_out = CliRunner().invoke(cli, ["--db", hostile_db, "accounts", "--search", "[/]"])
    assert "--search '[/]'" in table_out.output, table_out.output
    miss = run("--search", "zzzz")
    assert miss.exit_code == 0
    assert miss.output.strip() == "No account matches --search 'zzzz' (1 account in all)."
    nobody = run("--owner", "Nobody Here")
    assert nobody.exit_code == 1 and "no account has the owner 'Nobody Here'" in nobody.output
    assert len(nobody.output.strip().splitlines()) == 1
    both = run("--owner", "Jo", "--search", "zzzz")  # a known owner: no error, no match
    assert both.exit_code == 0 and "--owner 'Jo' --search 'zzzz'" in both.output


def test_lookup_by_name_is_literal(hostile_db):
    from hub.store import Store
    from hub.store.queries import find_account

    store = Store(hostile_db)
    assert find_account(store, "ACME [/")["id"] == "1"
    assert find_account(store, "AC_E") is None  # "_" is not a wildcard
    assert find_account(store, "A%s") is None  # nor is "%"


def test_cli_hints_are_not_markup(tmp_path):
    path = tmp_path / "hub.toml"
    path.write_text(
        '[connections.s]\nconnector = "stripe"\n[connections.s.settings]\napi_key = "secret:k"\n'
    )
    path.chmod(0o600)
    result = CliRunner().invoke(cli, ["-c", str(path), "check", "--offline"])
    assert result.exit_code == 1 and "[hub] secrets_file" in result.output


def test_an_unexpected_error_is_one_line_and_v_shows_the_traceback(tmp_path):
    @cli.command("crash-for-test")
    def crash():
        raise ZeroDivisionError("boom")

    try:
        quiet = CliRunner().invoke(cli, ["crash-for-test"])
        assert quiet.exit_code == 1
        lines = quiet.output.strip().splitlines()
        assert len(lines) == 1 and "internal error: ZeroDivisionError: boom" in lines[0]
        assert "-v" in lines[0]
        loud = CliRunner().invoke(cli, ["-v", "crash-for-test"])
        assert loud.exit_code == 1 and "Traceback" in loud.output
    finally:
        del cli.commands["crash-for-test"]


def test_errors_under_json_are_json(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "hub.db"), "timeline", "x", "--json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert error["type"] == "ConfigError" and "no account matches" in error["error"]


def test_init_into_a_missing_folder_and_a_non_utf8_config_are_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["init", "--path", str(tmp_path / "nope" / "hub.toml")])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert len(result.output.strip().splitlines()) == 1
    bad = tmp_path / "hub.toml"
    bad.write_bytes(b'[hub]\ndatabase = "\xff.db"\n')
    result = CliRunner().invoke(cli, ["-c", str(bad), "status"])
    assert result.exit_code == 1 and "not UTF-8" in result.output
    assert "Traceback" not in result.output


def test_init_example_prints_the_shipped_example_config(tmp_path):
    from pathlib import Path

    result = CliRunner().invoke(cli, ["init", "--example"])
    root = Path(__file__).resolve().parent.parent
    assert result.exit_code == 0
    assert result.output == (root / "config.example.toml").read_text()


def test_unknown_band_is_refused(hostile_db):
    result = CliRunner().invoke(cli, ["--db", hostile_db, "health", "--band", "purple"])
    assert result.exit_code == 2 and "purple" in result.output


def test_database_and_wal_files_are_private(tmp_path):
    import os
    import stat

    from hub.store import RawRecord, Store

    old = os.umask(0o022)
    try:
        store = Store(tmp_path / "hub.db")
        store.write_page("c", "s", [RawRecord("1", {"a": 1})], None)
        for suffix in ("", "-wal", "-shm"):
            mode = stat.S_IMODE(os.stat(str(tmp_path / "hub.db") + suffix).st_mode)
            assert mode == 0o600, (suffix, oct(mode))
        store.close()
    finally:
        os.umask(old)


@pytest.mark.parametrize("path", list(all_commands(cli)), ids=lambda p: " ".join(p))
def test_every_command_help_ends_with_runnable_examples(path):
    """Each example names this command (or one of its subcommands) with options it has."""
    import shlex

    command = cli
    for name in path:
        command = command.commands[name]
    help_text = command.help or ""
    assert "Examples:" in help_text, f"hub {' '.join(path)} --help has no Examples:"
    examples = [
        line.strip()
        for line in help_text.split("Examples:", 1)[1].splitlines()
        if line.strip().startswith("hub ")
    ]
    assert examples
    for example in examples:
        words = shlex.split(example.split("|")[0].split(">")[0].split("&&")[0])
        takes_value = {
            o
            for p in cli.params
            if isinstance(p, click.Option) and not p.is_flag and not p.count
            for o in p.opts
        }
        sub = words[1:]
        while sub and sub[0].startswith("-"):  # global options before the command
            sub = sub[2:] if sub[0] in takes_value else sub[1:]
        target = cli
        while isinstance(target, click.Group) and sub and sub[0] in target.commands:
            target = target.commands[sub[0]]
            sub = sub[1:]
        assert target is command or (
            isinstance(command, click.Group) and target in command.commands.values()
        ), f"example {example!r} does not run 'hub {' '.join(path)}'"
        options = {o for p in target.params for o in getattr(p, "opts", [])}
        for word in sub:
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"{example!r}: no option {word}"


def test_log_file_gets_redacted_lines_and_is_private(tmp_path):
    import logging
    import os

    from hub import logs

    log_file = tmp_path / "hub.log"

    @cli.command("log-for-test")
    def log_for_test():
        logs.register_secret("sk_live_canary_123")
        logging.getLogger("hub.test").warning("token sk_live_canary_123 used")

    try:
        result = CliRunner().invoke(cli, ["--log-file", str(log_file), "log-for-test"])
        assert result.exit_code == 0, result.output
    finally:
        del cli.commands["log-for-test"]
        for handler in list(logging.getLogger("hub").handlers):
            if getattr(handler, "baseFilename", None) == str(log_file):
                logging.getLogger("hub").removeHandler(handler)
                handler.close()
    text = log_file.read_text()
    assert "token ********** used" in text and "canary" not in text
    assert oct(os.stat(log_file).st_mode & 0o777) == "0o600"
