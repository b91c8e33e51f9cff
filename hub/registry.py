"""The registry: what plugins declared, collected once from the hooks.

``get_registry()`` loads plugins and calls each plugin's ``register_*`` hooks, one plugin at
a time, with a ``register`` function that validates the object (the right base class, a name,
the declarations its kind needs) and refuses a wrong object or a duplicate name with a
one-line ``StartupError`` naming the plugin. Calling plugins one by one (instead of one pluggy
broadcast) is what lets an error say *which* plugin is at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.errors import ConfigError, HubError, StartupError
from hub.plugins import describe_plugin, load_plugins
from hub.vocabulary import Vocabulary, build_vocabulary

KINDS = {
    "connectors": "register_connectors",
    "mappings": "register_mappings",
    "health_models": "register_health_models",
    "playbooks": "register_playbooks",
    "pushers": "register_pushers",
    "sandbox_apis": "register_sandbox_apis",
}

# kind -> (dotted base classes, what the error calls them). Imported lazily: the classes live
# in modules that themselves use the registry.
_BASES: dict[str, tuple[tuple[str, ...], str]] = {
    "connectors": (("hub.connector:Connector",), "hub.Connector subclass"),
    "mappings": (("hub.timeline:Mapping",), "hub.Mapping subclass"),
    "health_models": (
        ("hub.health:Measure", "hub.health:HealthModel"),
        "hub.Measure or hub.HealthModel subclass",
    ),
    "playbooks": (("hub.playbooks:Playbook",), "hub.Playbook subclass"),
    "pushers": (("hub.push:Pusher",), "hub.Pusher subclass"),
    "sandbox_apis": (("hub.sandbox.base:FakeAPI",), "hub.FakeAPI subclass"),
}


def _base(dotted: str) -> type:
    import importlib

    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class Registry:
    """Objects plugins registered, by kind and name."""

    connectors: dict[str, Any] = field(default_factory=dict)
    mappings: dict[str, Any] = field(default_factory=dict)
    health_models: dict[str, Any] = field(default_factory=dict)
    playbooks: dict[str, Any] = field(default_factory=dict)
    pushers: dict[str, Any] = field(default_factory=dict)
    sandbox_apis: dict[str, Any] = field(default_factory=dict)
    vocabulary: Vocabulary = field(default_factory=Vocabulary)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, name) -> the plugin that registered it (for error messages)."""

    def register_function(self, kind: str, plugin: str = "a plugin") -> Callable[[Any], Any]:
        """The ``register`` callable handed to ``plugin``'s hook for ``kind``."""
        table: dict[str, Any] = getattr(self, kind)
        singular = kind[:-1].replace("_", " ")

        def register(obj: Any, name: str | None = None) -> Any:
            validate(kind, obj, plugin)
            key = name or obj.name
            if key in table and table[key] is not obj:
                raise StartupError(
                    f"two plugins register a {singular} named {key!r} "
                    f"({self.owners.get((kind, key), 'a plugin')} and {plugin})",
                    hint="uninstall one of them or rename it",
                )
            table[key] = obj
            self.owners[(kind, key)] = plugin
            return obj

        return register

    def connector(self, name: str) -> Any:
        try:
            return self.connectors[name]
        except KeyError:
            known = ", ".join(sorted(self.connectors)) or "none"
            raise ConfigError(
                f"no connector named {name!r} is installed",
                hint=f"installed: {known}; see 'hub plugins'",
            ) from None


def validate(kind: str, obj: Any, plugin: str = "a plugin") -> None:
    """Refuse anything but a named subclass of the kind's base class, in one line."""
    bases, what = _BASES[kind]
    hook = KINDS[kind]
    classes = tuple(_base(b) for b in bases)
    if not (isinstance(obj, type) and issubclass(obj, classes) and obj not in classes):
        raise StartupError(
            f"{plugin}: {hook} got {_short(obj)}, not a {what}",
            hint=f"register the class itself; see {hook} in PLUGINS.md",
        )
    name = getattr(obj, "name", None)
    if not name or not isinstance(name, str):
        raise StartupError(
            f"{plugin}: {hook} got {obj.__name__} without a name",
            hint="give the class a 'name' attribute",
        )
    if kind == "connectors" and not obj.streams:
        raise StartupError(
            f"{plugin}: connector {name!r} declares no streams",
            hint="list its Stream classes in 'streams'",
        )
    if kind == "mappings" and not getattr(obj, "connector", None):
        raise StartupError(
            f"{plugin}: mapping {name!r} names no connector",
            hint="set 'connector' to the connector whose raw tables it reads",
        )
    if kind == "sandbox_apis":
        from hub.sandbox.world import BUILTIN_APIS

        if obj.name in BUILTIN_APIS or not obj.prefixes:
            raise StartupError(
                f"{plugin}: sandbox fake {name!r} clashes with a built-in fake or declares "
                "no prefixes",
                hint="give the FakeAPI subclass its own 'name' and URL 'prefixes'",
            )


def _short(obj: Any) -> str:
    text = obj.__name__ if isinstance(obj, type) else repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."


_registry: Registry | None = None


def get_registry() -> Registry:
    """Load plugins and collect everything they register (once)."""
    global _registry
    if _registry is None:
        pm = load_plugins()
        registry = Registry()
        for kind, hook in KINDS.items():
            # Call plugins one at a time so a wrong object is blamed on its plugin.
            for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
                plugin = describe_plugin(impl.plugin_name)
                register = registry.register_function(kind, plugin)
                try:
                    impl.function(register=register)
                except HubError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a plugin's bug, reported as one line
                    raise StartupError(
                        f"{plugin}: {hook} failed: {type(exc).__name__}: {exc}",
                        hint="upgrade or uninstall the plugin, or exclude it with HUB_LOAD_PLUGINS",
                    ) from None
        registry.vocabulary = build_vocabulary(
            sorted(registry.mappings.values(), key=lambda m: getattr(m, "order", 100))
        )
        _registry = registry
    return _registry


def reset_registry() -> None:
    global _registry
    _registry = None
