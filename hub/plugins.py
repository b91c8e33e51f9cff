"""Plugin loading: the pluggy manager, built-in plugins and entry points.

Built-ins (``DEFAULT_PLUGINS``) are loaded exactly like third-party plugins. Third-party
packages expose ``[project.entry-points.hub] name = "module"``. ``load_plugins()`` is lazy and
idempotent; it skips entry points while running under pytest (so a developer's installed
plugins never change test results) unless ``HUB_LOAD_PLUGINS`` names them, and honours
``HUB_LOAD_PLUGINS`` (comma-separated entry-point names; empty = none) everywhere. A plugin
that fails to import is reported by its distribution name in one line.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from typing import Any

import pluggy

from hub import hookspecs
from hub.errors import StartupError

DEFAULT_PLUGINS = [
    "connectors.stripe",
    "connectors.hubspot",
    "connectors.zendesk",
    "connectors.builtwith",
    "mappings.hubspot",
    "mappings.stripe",
    "mappings.stripe_mrr",
    "mappings.zendesk",
    "mappings.builtwith",
    "plugins.health_models",
    "plugins.playbooks",
    "plugins.hubspot_pusher",
    "plugins.zendesk_pusher",
]

pm = pluggy.PluginManager("hub")
pm.add_hookspecs(hookspecs)

_loaded = False
_plugin_dists: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)


def _under_tests() -> bool:
    return "pytest" in sys.modules and "HUB_LOAD_PLUGINS" not in os.environ


def load_plugins() -> pluggy.PluginManager:
    """Load built-in and entry-point plugins once; return the plugin manager."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    for module_name in DEFAULT_PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # a built-in that this build does not ship
            raise
        if not pm.is_registered(module):
            pm.register(module, name=module_name)
    if _under_tests():
        return pm
    wanted = os.environ.get("HUB_LOAD_PLUGINS")
    names = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in importlib.metadata.entry_points(group="hub"):
        if names is not None and ep.name not in names:
            continue
        dist = ep.dist.name if ep.dist else "unknown distribution"
        version = ep.dist.version if ep.dist else ""
        try:
            module = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's fault
            raise StartupError(
                f"plugin {ep.name!r} from {dist} {version} failed to load: {type(exc).__name__}: {exc}",
                hint=f"upgrade or uninstall it (pip uninstall {dist}), or exclude it with HUB_LOAD_PLUGINS",
            ) from None
        if pm.get_plugin(ep.name) is None:
            pm.register(module, name=ep.name)
            _plugin_dists[ep.name] = (dist, version)
    return pm


def reset_plugins() -> None:
    """Unregister everything (tests)."""
    global _loaded
    for name, plugin in list(pm.list_name_plugin()):
        pm.unregister(plugin, name=name)
    _plugin_dists.clear()
    _loaded = False


def describe_plugin(name: str) -> str:
    """How errors name a plugin: its entry point and distribution, or the built-in module."""
    if name in _plugin_dists:
        dist, version = _plugin_dists[name]
        return f"plugin {name!r} ({dist} {version})".replace(" )", ")")
    if name in DEFAULT_PLUGINS:
        return f"built-in plugin {name!r}"
    return f"plugin {name!r}"


def plugin_info() -> list[dict[str, Any]]:
    """Name, distribution, version and hooks of every loaded plugin (for ``hub plugins``)."""
    from hub import __version__

    load_plugins()
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        dist, version = _plugin_dists.get(name, ("cs-hub (built-in)", __version__))
        rows.append({"name": name, "distribution": dist, "version": version, "hooks": hooks})
    return rows


# The hub.toml that 'hub init' writes: one connection per built-in plugin above (this module
# is where the built-ins are named; the rest of core names no vendor).
STARTER_CONFIG = """# hub.toml: written by 'hub init'. Every option: 'hub init --example'.

[hub]
database = "hub.db"
log_level = "warning"

# One table per connected account. Secrets are references: "env:VAR" or "file:PATH".
[connections.stripe]
connector = "stripe"
schedule = "every 30m"
[connections.stripe.settings]
api_key = "env:STRIPE_API_KEY"

[connections.hubspot]
connector = "hubspot"
schedule = "every 30m"
[connections.hubspot.settings]
access_token = "env:HUBSPOT_ACCESS_TOKEN"

[connections.zendesk]
connector = "zendesk"
schedule = "every 30m"
[connections.zendesk.settings]
subdomain = "yourcompany"
email = "you@yourcompany.com"
api_token = "env:ZENDESK_API_TOKEN"

[connections.builtwith]
connector = "builtwith"
schedule = "every 1d"
[connections.builtwith.settings]
api_key = "env:BUILTWITH_API_KEY"

# Required with BuiltWith: your product's technology name(s) as BuiltWith reports them.
[timeline.builtwith]
our_technologies = ["Your Product Widget"]
competitors = ["Intercom", "Drift"]

# Write-back to HubSpot (`hub push --dry-run` shows it first; `hub check` checks the scopes).
[push.hubspot]
connection = "hubspot"
# HubSpot owner id for tasks of companies without an owner (`hub check` lists them);
# unset: those tasks are created unassigned.
# fallback_owner_id = "70000001"
"""
