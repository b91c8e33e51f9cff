"""The out-of-tree example plugin (examples/hub-intercom) works with no change to the hub.

It imports only the public API; loaded like an installed plugin, its fake joins the
sandbox, its connector syncs a POST search through the framework's strategy, its mapping's
events reach accounts, its measure shows in ``hub health --explain`` and its run in ``hub
status``. (``.ci/run`` also pip-installs it and drives the real CLI: ``ci.sh``.)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "hub-intercom"
ALLOWED = {"hub", "hub.testing", "click", "httpx", "pydantic"}


def test_example_imports_only_the_public_api():
    for path in EXAMPLE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top in ("hub", "click", "httpx", "pydantic"):
                    assert name in ALLOWED, f"{path.name} imports {name}"
    text = (EXAMPLE / "pyproject.toml").read_text()
    assert '"cs-hub' in text and "[project.entry-points.hub]" in text


@pytest.fixture
def intercom_plugin():
    from hub import plugins
    from hub.registry import reset_registry

    sys.path.insert(0, str(EXAMPLE))
    import hub_intercom

    plugins.load_plugins()
    plugins.pm.register(hub_intercom, name="intercom")
    reset_registry()
    yield hub_intercom
    plugins.pm.unregister(name="intercom")
    reset_registry()
    sys.path.remove(str(EXAMPLE))
    sys.modules.pop("hub_intercom", None)


def test_example_plugin_end_to_end(intercom_plugin, tmp_path, monkeypatch):
    from hub import clock
    from hub.cli import cli
    from hub.config import parse_config
    from hub.registry import get_registry
    from hub.sandbox.world import CREDENTIALS, build_sandbox
    from hub.store import Store
    from hub.sync import sync_all
    from hub.timeline import run_mappings

    registry = get_registry()
    assert "intercom" in registry.connectors and "intercom" in registry.sandbox_apis
    assert registry.vocabulary.sources["intercom"].label == "Intercom"
    sandbox = build_sandbox(companies=16, seed=4, extra_apis=[registry.sandbox_apis["intercom"]])
    clock.set_source(sandbox.world.now)
    try:
        config = parse_config(
            {
                "connections": {
                    "hubspot": {
                        "connector": "hubspot",
                        "settings": {"access_token": CREDENTIALS["hubspot"]["access_token"]},
                    },
                    "intercom": {
                        "connector": "intercom",
                        "settings": {"access_token": intercom_plugin.SANDBOX_TOKEN},
                    },
                }
            }
        )
        db = tmp_path / "hub.db"
        store = Store(db)
        results = sync_all(store, config, transport=sandbox.transport())
        [conversations] = results["intercom"]
        assert conversations.status == "ok" and conversations.records > 0
        run_mappings(store, config)
        row = store.db.execute(
            "SELECT a.domain FROM events e JOIN accounts a ON a.id = e.account_id "
            "WHERE e.source = 'intercom' LIMIT 1"
        ).fetchone()
        assert row, "no Intercom event reached an account"
        store.close()
        runner = CliRunner()

        def run(*args):
            result = runner.invoke(cli, ["--db", str(db), "--format", "plain", *args])
            assert result.exit_code in (0, 1), result.output
            assert "Traceback" not in result.output
            return result.output

        run("health")
        assert "I" in run("accounts")
        assert "intercom_conversation_opened" in run("timeline", row[0])
        assert "Intercom conversations" in run("health", "--explain", row[0])
        assert "intercom" in run("status")
    finally:
        clock.set_source(None)
