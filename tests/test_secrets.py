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
    # The token really was sent...
    assert api.requests[0].headers["authorization"] == f"Bearer {CANARY}"
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
