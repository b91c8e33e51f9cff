"""hub.toml validation: one-line errors naming the key and the fix, secret references."""

from __future__ import annotations

import os

import pytest

from hub.config import load_config, parse_config
from hub.errors import ConfigError


def write(tmp_path, text, mode=0o600):
    path = tmp_path / "hub.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_missing_file_says_run_init(tmp_path):
    with pytest.raises(ConfigError, match="hub init"):
        load_config(tmp_path / "nope.toml")


def test_toml_syntax_error_names_file(tmp_path):
    path = write(tmp_path, "[hub\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "not valid TOML" in str(info.value)


def test_unknown_key_names_its_path(tmp_path):
    path = write(tmp_path, '[connections.s]\nconnector = "stripe"\nschedul = "every 5m"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "connections.s.schedul" in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_schedule_explains_format():
    with pytest.raises(ConfigError) as info:
        parse_config({"connections": {"s": {"connector": "x", "schedule": "hourly-ish"}}})
    assert "connections.s.schedule" in str(info.value) and "every 30m" in str(info.value)


def test_env_reference_resolution(monkeypatch, tmp_path):
    path = write(
        tmp_path,
        '[connections.s]\nconnector = "stripe"\n[connections.s.settings]\napi_key = "env:HUB_TEST_KEY"\n',
    )
    config = load_config(path)
    monkeypatch.delenv("HUB_TEST_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        config.resolved_settings("s")
    assert "HUB_TEST_KEY" in str(info.value) and "export" in str(info.value)
    monkeypatch.setenv("HUB_TEST_KEY", "sk_test_value")
    assert config.resolved_settings("s") == {"api_key": "sk_test_value"}
    assert config.warnings == []


def test_file_and_secrets_file_references(tmp_path):
    (tmp_path / "key.txt").write_text("from-file\n")
    (tmp_path / "secrets.toml").write_text('stripe = "from-secrets"\n')
    path = write(
        tmp_path,
        '[hub]\nsecrets_file = "secrets.toml"\n[connections.s]\nconnector = "stripe"\n'
        '[connections.s.settings]\napi_key = "file:key.txt"\nother_token = "secret:stripe"\n',
    )
    # other_token is no stripe setting: this test is about references, not settings.
    assert load_config(path, validate=False).resolved_settings("s") == {
        "api_key": "from-file",
        "other_token": "from-secrets",
    }


def test_literal_secret_and_readable_file_warn(tmp_path):
    path = write(
        tmp_path,
        '[connections.s]\nconnector = "stripe"\n[connections.s.settings]\napi_key = "sk_live_canary"\n',
        mode=0o644,
    )
    warnings = load_config(path).warnings
    assert any("literal secret" in w for w in warnings)
    assert any("chmod 600" in w for w in warnings)
    assert not any("sk_live_canary" in w for w in warnings)


def test_invalid_value_does_not_echo_input():
    with pytest.raises(ConfigError) as info:
        parse_config({"hub": {"log_level": "sk_secret_canary"}})
    assert "sk_secret_canary" not in str(info.value) and "hub.log_level" in str(info.value)


def test_database_path_relative_to_config(tmp_path):
    path = write(tmp_path, '[hub]\ndatabase = "data/hub.db"\n')
    assert load_config(path).database_path() == str(tmp_path / "data" / "hub.db")
