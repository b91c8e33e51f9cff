"""The docs stay true: every hook in PLUGINS.md, every command in README.md, every config key
in config.example.toml."""

from __future__ import annotations

import inspect
from pathlib import Path

from hub import hookspecs
from hub.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def hook_names():
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("register_")
    ]


def test_plugins_md_documents_every_hook_with_signature():
    text = (ROOT / "PLUGINS.md").read_text()
    names = hook_names()
    assert len(names) == 7
    for name in names:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"### `{name}({params})`" in text, f"PLUGINS.md does not document {name}({params})"


def test_plugins_md_has_a_minimal_plugin():
    text = (ROOT / "PLUGINS.md").read_text()
    assert (
        "@hub.hookimpl" in text
        and "[project.entry-points.hub]" in text
        and "ConnectorTests" in text
    )


def test_design_hooks_match_hookspecs():
    assert set(hook_names()) == {
        "register_connectors",
        "register_mappings",
        "register_health_models",
        "register_playbooks",
        "register_pushers",
        "register_commands",
        "register_sandbox_apis",
    }


def test_readme_lists_every_command():
    text = (ROOT / "README.md").read_text()
    for name, command in cli.commands.items():
        assert f"`hub {name}" in text, f"README.md does not mention 'hub {name}'"
        if hasattr(command, "commands"):
            for sub in command.commands:
                if name == "health":
                    continue  # subcommands of health are named in its row
                assert f"`hub {name} {sub}" in text, (
                    f"README.md does not mention 'hub {name} {sub}'"
                )


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    quick = text.index("## Quickstart")
    assert text.index("pip install . && hub demo") > quick
    assert text.index("pip install -e '.[test]' && pytest") > quick
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci and "\npytest\n" in ci


def test_example_config_documents_every_section():
    text = (ROOT / "config.example.toml").read_text()
    from hub.config import Config, ConnectionConfig, HubSection, IdentitySection

    for field in HubSection.model_fields:
        assert field in text, f"config.example.toml does not mention [hub] {field}"
    for field in ConnectionConfig.model_fields:
        assert field in text, f"config.example.toml does not mention connection option {field}"
    for field in IdentitySection.model_fields:
        assert field in text
    for section in Config.model_fields:
        if section in ("hub", "connections", "identity"):
            continue
        assert f"[{section}" in text or f"# [{section}" in text, (
            f"config.example.toml has no [{section}] section"
        )


def test_example_config_documents_every_connector_setting():
    from hub.registry import get_registry

    text = (ROOT / "config.example.toml").read_text()
    for name, connector in get_registry().connectors.items():
        if name == "example":
            continue
        assert f'connector = "{name}"' in text, f"config.example.toml has no {name} connection"
        for field in connector.Settings.model_fields:
            assert field in text, f"config.example.toml does not document {name} setting {field!r}"


def test_plugins_md_examples_run():
    """The code in PLUGINS.md is real: it imports, defines valid plugins, and they register."""
    import re
    import types

    from hub.registry import Registry

    text = (ROOT / "PLUGINS.md").read_text()
    blocks = [
        b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "hub_acme import" not in b
    ]
    import sys

    module = types.ModuleType("hub_acme_docs")
    sys.modules["hub_acme_docs"] = module  # pydantic resolves annotations through it
    for block in blocks:
        exec(compile(block, "PLUGINS.md", "exec"), module.__dict__)
    registry = Registry()
    module.register_connectors(registry.register_function("connectors"))
    module.register_mappings(registry.register_function("mappings"))
    module.register_health_models(registry.register_function("health_models"))
    module.register_playbooks(registry.register_function("playbooks"))
    assert set(registry.connectors) == {"acme"} and set(registry.mappings) == {"acme"}
    assert "acme_tickets" in registry.health_models and "acme_ticket_storm" in registry.playbooks
    connector = registry.connectors["acme"]({"api_key": "k"}, connection="acme")
    assert [s.name for s in connector.get_streams()] == ["tickets"]
    sys.modules.pop("hub_acme_docs", None)


def test_example_config_documents_every_scheduler_option():
    from hub.config import SchedulerSection

    text = (ROOT / "config.example.toml").read_text()
    for field in SchedulerSection.model_fields:
        assert f"\n{field} =" in text, f"config.example.toml does not document [scheduler] {field}"
