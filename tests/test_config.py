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


# -- every section validated when the config loads (`hub check --offline`) -------------------

BASE = '[connections.s]\nconnector = "stripe"\n[connections.s.settings]\napi_key = "env:K"\n'


def check_offline(tmp_path, text):
    from click.testing import CliRunner

    from hub.cli import cli

    path = write(tmp_path, text)
    result = CliRunner().invoke(cli, ["-c", str(path), "check", "--offline"])
    return result.exit_code, result.output.strip()


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ('[connections.s.settings]\napi_kee = "env:K"', "connections.s.settings.api_kee"),
        ("[health]\nbandz = 1", "health.bandz"),
        ("[health.measures.billing]\nwindw = 3", "health.measures.billing.windw"),
        ("[playbooks]\nenabeld = true", "playbooks.enabeld"),
        ("[playbooks.payment_faild]\nx = 1", "playbooks.payment_faild"),
        ('[push]\nconection = "hubspot"', "push.conection"),
        ('[scheduler]\ntimezon = "UTC"', "scheduler.timezon"),
        ('[scheduler]\ntimezone = "Mars/Olympus"', "scheduler.timezone"),
        ("[timeline.buildwith]\nx = 1", "timeline.buildwith"),
        ('[identity]\noverides = {a = "b"}', "identity.overides"),
        ('[hub]\ndatabse = "x.db"', "hub.databse"),
    ],
)
def test_a_typo_in_any_section_fails_check_offline_naming_the_key(tmp_path, section, key):
    text = section if section.startswith("[connections.s.settings]") else BASE + section
    if section.startswith("[connections.s.settings]"):
        text = '[connections.s]\nconnector = "stripe"\n' + section + "\n"
    code, output = check_offline(tmp_path, text + "\n")
    assert code == 1, output
    assert key in output and output.count("\n") == 0, output
    assert "Traceback" not in output


def test_api_kee_is_an_unknown_key_not_a_missing_api_key(tmp_path):
    path = write(
        tmp_path, '[connections.s]\nconnector = "stripe"\n[connections.s.settings]\napi_kee = "x"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "unknown key connections.s.settings.api_kee" in str(info.value)
    assert "allowed here: api_key" in str(info.value)


def test_a_timeline_settings_typo_is_caught_once_mappings_validate():
    import hub.timeline

    if not hasattr(hub.timeline, "validate_config"):
        pytest.skip("hub.timeline.validate_config has not landed yet")
    config = parse_config({"timeline": {"builtwith": {"our_technologys": ["X"]}}})
    from hub.config import validate_config

    with pytest.raises(ConfigError, match="timeline.builtwith.our_technologys"):
        validate_config(config)


def test_uninstalled_connector_is_a_config_error(tmp_path):
    code, output = check_offline(tmp_path, '[connections.s]\nconnector = "stirpe"\n')
    assert code == 1 and "connections.s.connector" in output and "stirpe" in output


def test_secret_reference_for_a_typed_setting_waits_for_resolution(tmp_path):
    # requests_per_second is a number; "env:RPS" is checked when it is resolved, not at load.
    path = write(tmp_path, BASE + 'requests_per_second = "env:RPS"\n')
    load_config(path)


def test_empty_config_is_not_valid(tmp_path):
    code, output = check_offline(tmp_path, "# nothing yet\n")
    assert code == 1 and "is empty" in output and "hub init --example" in output


def test_config_without_connections_fails_check(tmp_path):
    code, output = check_offline(tmp_path, '[hub]\ndatabase = "hub.db"\n')
    assert code == 1 and "no connections" in output.lower()


def test_non_utf8_config_is_one_line(tmp_path):
    path = tmp_path / "hub.toml"
    path.write_bytes(b'[hub]\ndatabase = "h\xe9.db"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_world_readable_secret_file_warns(tmp_path):
    key = tmp_path / "key.txt"
    key.write_text("sk_test_canary\n")
    os.chmod(key, 0o644)
    path = write(tmp_path, BASE.replace('"env:K"', '"file:key.txt"'))
    warnings = load_config(path).warnings
    assert any("key.txt" in w and "chmod 600" in w for w in warnings), warnings
    os.chmod(key, 0o600)
    assert load_config(path).warnings == []


def test_section_validators_of_every_owner_are_called(monkeypatch):
    """Each owner package's ``validate_config`` runs when the config loads."""
    import importlib

    from hub.config import SECTION_VALIDATORS, validate_config

    called = []
    for section, module_name in SECTION_VALIDATORS.items():
        module = importlib.import_module(module_name)
        monkeypatch.setattr(
            module, "validate_config", lambda c, s=section: called.append(s), raising=False
        )
    validate_config(parse_config({}))
    assert called == list(SECTION_VALIDATORS)


def test_every_section_owner_exports_validate_config():
    from hub.config import missing_section_validators

    assert missing_section_validators() == []
