"""Plugin loading: built-ins, entry points, HUB_LOAD_PLUGINS, broken and duplicate plugins."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub import hookimpl as hub_hookimpl
from hub import plugins as plugins_module
from hub.errors import StartupError
from hub.registry import Registry, get_registry, reset_registry

ROOT = Path(__file__).resolve().parent.parent


class FakeDist:
    def __init__(self, name, version):
        self.name = name
        self.version = version


class FakeEntryPoint:
    def __init__(self, name, value, dist, loader):
        self.name, self.value, self.dist, self._loader = name, value, dist, loader
        self.group = "hub"

    def load(self):
        return self._loader()


@pytest.fixture
def fresh_plugins(monkeypatch):
    plugins_module.reset_plugins()
    reset_registry()
    yield monkeypatch
    plugins_module.reset_plugins()
    reset_registry()
    sys.modules.pop("hub_acme", None)


def install_entry_points(monkeypatch, eps):
    def fake_entry_points(group=None, **kwargs):
        assert group == "hub"
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)


def test_entry_point_plugin_adds_a_connector(fresh_plugins, tmp_path):
    from tests.plugins import example

    acme = types.ModuleType("hub_acme")
    acme.register_connectors = example.register_connectors
    sys.modules["hub_acme"] = acme
    install_entry_points(
        fresh_plugins,
        [FakeEntryPoint("acme", "hub_acme", FakeDist("hub-acme", "1.2.3"), lambda: acme)],
    )
    fresh_plugins.setenv("HUB_LOAD_PLUGINS", "acme")
    registry = get_registry()
    assert "example" in registry.connectors
    info = {row["name"]: row for row in plugins_module.plugin_info()}
    assert info["acme"]["distribution"] == "hub-acme" and info["acme"]["version"] == "1.2.3"
    assert info["acme"]["hooks"] == ["register_connectors"]

    from hub.cli import cli

    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert "example" in data["connectors"]
    assert any(p["name"] == "acme" and p["distribution"] == "hub-acme" for p in data["items"])


def test_sync_runs_an_entry_point_connector(fresh_plugins, tmp_path):
    from tests.plugins import example

    acme = types.ModuleType("hub_acme")
    acme.register_connectors = example.register_connectors
    install_entry_points(
        fresh_plugins,
        [FakeEntryPoint("acme", "hub_acme", FakeDist("hub-acme", "1.2.3"), lambda: acme)],
    )
    fresh_plugins.setenv("HUB_LOAD_PLUGINS", "acme")
    api = example.ExampleAPI(count=12)
    from hub.config import parse_config
    from hub.store import Store
    from hub.sync import sync_all

    config = parse_config(
        {"connections": {"ex": {"connector": "example", "settings": {"token": example.TOKEN}}}}
    )
    store = Store(tmp_path / "hub.db")
    results = sync_all(store, config, transport=api.transport())
    assert results["ex"][0].status == "ok" and results["ex"][0].records == 12


def test_broken_plugin_is_one_clear_line(fresh_plugins):
    def boom():
        raise ImportError("No module named 'acme_internal'")

    install_entry_points(
        fresh_plugins, [FakeEntryPoint("acme", "hub_acme", FakeDist("hub-acme", "0.9"), boom)]
    )
    fresh_plugins.setenv("HUB_LOAD_PLUGINS", "acme")
    with pytest.raises(StartupError) as info:
        plugins_module.load_plugins()
    message = str(info.value)
    assert "hub-acme" in message and "acme_internal" in message and "\n" not in message


def test_entry_points_skipped_under_tests_unless_asked(fresh_plugins):
    def boom():
        raise AssertionError("must not be loaded")

    install_entry_points(
        fresh_plugins, [FakeEntryPoint("acme", "hub_acme", FakeDist("hub-acme", "0.9"), boom)]
    )
    fresh_plugins.delenv("HUB_LOAD_PLUGINS", raising=False)
    plugins_module.load_plugins()  # does not raise: entry points are skipped under pytest


def test_hub_load_plugins_empty_loads_no_entry_points(fresh_plugins):
    install_entry_points(
        fresh_plugins,
        [FakeEntryPoint("acme", "hub_acme", FakeDist("hub-acme", "0.9"), lambda: 1 / 0)],
    )
    fresh_plugins.setenv("HUB_LOAD_PLUGINS", "")
    plugins_module.load_plugins()


def test_load_plugins_is_idempotent(fresh_plugins):
    first = plugins_module.load_plugins()
    count = len(first.get_plugins())
    assert plugins_module.load_plugins() is first
    assert len(first.get_plugins()) == count


def test_duplicate_names_are_refused():
    from tests.plugins.example import ExampleConnector

    registry = Registry()
    register = registry.register_function("connectors")
    register(ExampleConnector)
    register(ExampleConnector)  # the same object again is harmless

    class Imposter(ExampleConnector):
        pass

    with pytest.raises(StartupError, match="two plugins register a connector named 'example'"):
        register(Imposter)


def test_register_validates_connectors():
    registry = Registry()
    with pytest.raises(StartupError, match="not a hub.Connector subclass"):
        registry.register_function("connectors")(type("X", (), {"name": "x"}))


@pytest.mark.parametrize(
    "kind", ["connectors", "mappings", "health_models", "playbooks", "pushers", "sandbox_apis"]
)
def test_register_refuses_a_wrong_object_naming_the_plugin(kind):
    """Every kind is validated: a wrong object is one line naming the plugin and the hook."""
    registry = Registry()
    register = registry.register_function(kind, "plugin 'acme' (hub-acme 1.0)")
    for wrong in (type("NotAPlugin", (), {"name": "x"}), object(), "acme"):
        with pytest.raises(StartupError) as info:
            register(wrong)
        message = str(info.value)
        assert "hub-acme" in message and f"register_{kind}" in message and "\n" not in message


def test_register_refuses_a_nameless_class_and_a_mapping_without_connector():
    import hub

    registry = Registry()
    with pytest.raises(StartupError, match="without a name"):
        registry.register_function("playbooks", "plugin 'p'")(type("P", (hub.Playbook,), {}))
    with pytest.raises(StartupError, match="names no connector"):
        registry.register_function("mappings", "plugin 'm'")(
            type("M", (hub.Mapping,), {"name": "m"})
        )


def test_a_wrong_object_from_an_entry_point_names_its_distribution(fresh_plugins):
    acme = types.ModuleType("hub_acme")

    @hub_hookimpl
    def register_health_models(register):
        register(object())

    acme.register_health_models = register_health_models
    install_entry_points(
        fresh_plugins,
        [FakeEntryPoint("acme", "hub_acme", FakeDist("hub-acme", "2.0"), lambda: acme)],
    )
    fresh_plugins.setenv("HUB_LOAD_PLUGINS", "acme")
    with pytest.raises(StartupError) as info:
        get_registry()
    assert "hub-acme 2.0" in str(info.value) and "register_health_models" in str(info.value)


# -- the public API: one namespace for plugin authors ----------------------------------------


def test_public_api_is_sorted_imports_and_is_documented():
    import hub

    assert hub.__all__ == sorted(hub.__all__)
    text = (ROOT / "PLUGINS.md").read_text()
    for name in hub.__all__:
        assert getattr(hub, name) is not None, name
        assert f"`{name}`" in text, f"PLUGINS.md does not list hub.{name}"
    assert "cs-hub" in text


def test_public_api_names_the_defining_objects():
    import hub
    from hub.connector import Connector
    from hub.timeline import Mapping

    assert hub.Connector is Connector and hub.Mapping is Mapping
    with pytest.raises(AttributeError):
        hub.NoSuchThing  # noqa: B018


def test_plugins_md_imports_only_from_hub_and_hub_testing():
    import re

    text = (ROOT / "PLUGINS.md").read_text()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        for module in re.findall(r"^\s*(?:from|import)\s+(hub\.[\w.]+)", block, re.M):
            assert module == "hub.testing" or module.startswith("hub.testing."), (
                f"PLUGINS.md imports {module}; plugins import from hub or hub.testing only"
            )
