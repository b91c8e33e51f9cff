"""A secret canary in the config never reaches a log line, an error, the database or repr()."""

from __future__ import annotations

import logging

from click.testing import CliRunner

from hub.config import parse_config
from hub.store import Store
from hub.sync import build_connector, sync_all
from tests.plugins.example import ExampleAPI

CANARY = "canary-5f1d9c7e-secret"


def dump(store: Store) -> str:
    return "\n".join(store.db.conn.iterdump())


def test_canary_absent_everywhere(example_registry, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("EXAMPLE_TOKEN", CANARY)
    config = parse_config(
        {
            "connections": {
                "good": {"connector": "example", "settings": {"token": "env:EXAMPLE_TOKEN"}},
                "bad": {"connector": "example", "settings": {"token": CANARY + "-wrong"}},
            }
        }
    )
    api = ExampleAPI(count=15, token=CANARY)
    store = Store(tmp_path / "hub.db")
    caplog.set_level(logging.DEBUG, logger="hub")
    results = sync_all(store, config, transport=api.transport())
    assert results["good"][0].status == "ok"
    assert results["bad"][0].status == "error"
    # The token really was sent (connections sync in parallel: any order)...
    assert f"Bearer {CANARY}" in {r.headers["authorization"] for r in api.requests}
    # ...and appears nowhere we keep or show.
    assert CANARY not in caplog.text
    assert CANARY not in dump(store)
    assert all(CANARY not in (r.error or "") for rs in results.values() for r in rs)
    connector = build_connector(config, "good")
    assert CANARY not in repr(connector) + repr(connector.settings) + repr(connector.auth())
    assert CANARY not in repr(config) and CANARY not in str(connector.settings.model_dump())


def test_canary_absent_from_cli_output(example_registry, tmp_path, monkeypatch):
    from hub.cli import cli

    monkeypatch.setenv("EXAMPLE_TOKEN", CANARY)
    (tmp_path / "hub.toml").write_text(
        '[hub]\ndatabase = "hub.db"\n[connections.ex]\nconnector = "example"\nschedule = "every 5m"\n'
        '[connections.ex.settings]\ntoken = "env:EXAMPLE_TOKEN"\nbase_url = "http://127.0.0.1:9"\ntimeout = 0.2\nmax_attempts = 1\n'
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["-c", str(tmp_path / "hub.toml"), "-vv", "sync"])
    assert result.exit_code == 1
    assert CANARY not in result.output
    result = runner.invoke(cli, ["-c", str(tmp_path / "hub.toml"), "-vv", "check"])
    assert result.exit_code == 1 and "✗ ex" in result.output
    assert CANARY not in result.output
    assert CANARY not in dump(Store(tmp_path / "hub.db"))


def test_plugin_logger_is_redacted_and_json_formatted(example_registry, monkeypatch, capsys):
    import base64
    import json
    import urllib.parse

    from hub import logs

    monkeypatch.setenv("EXAMPLE_TOKEN", CANARY)
    config = parse_config(
        {
            "connections": {
                "ex": {
                    "connector": "example",
                    "settings": {
                        "token": "env:EXAMPLE_TOKEN",
                        "base_url": "https://api.example.test/v1",
                    },
                }
            }
        }
    )
    try:
        logs.configure(0, json_lines=True)
        build_connector(config, "ex")  # registers the secret fields, and only those
        basic = base64.b64encode(f"admin@example.test/token:{CANARY}".encode()).decode()
        plugin = logging.getLogger("hub_intercom")  # a plugin's own logger
        plugin.warning(
            "echoed %s | Basic %s | %s | url https://api.example.test/v1 by admin@example.test",
            CANARY,
            basic,
            urllib.parse.quote(CANARY + "/x", safe=""),
            extra={"fields": {"connection": "ex", "token": CANARY}},
        )
    finally:
        logs.configure(0)
        logs.forget_secrets()
    err = capsys.readouterr().err
    line = json.loads(err.strip().splitlines()[-1])
    assert line["logger"] == "hub_intercom" and line["level"] == "warning"
    assert line["ts"].endswith("Z") and line["connection"] == "ex"
    assert CANARY not in err and basic not in err
    assert urllib.parse.quote(CANARY, safe="") not in err
    # Only secrets are redacted: the URL and the e-mail stay readable.
    assert "https://api.example.test/v1" in line["message"]
    assert "admin@example.test" in line["message"]
