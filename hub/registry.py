"""The registry: what plugins declared, collected once from the hooks.

``get_registry()`` loads plugins and calls each ``register_*`` hook with a ``register``
function that validates the object and refuses duplicate names with a ``StartupError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.errors import ConfigError, StartupError
from hub.plugins import load_plugins
from hub.vocabulary import Vocabulary, build_vocabulary

KINDS = {
    "connectors": "register_connectors",
    "mappings": "register_mappings",
    "health_models": "register_health_models",
    "playbooks": "register_playbooks",
    "pushers": "register_pushers",
    "sandbox_apis": "register_sandbox_apis",
}


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

    def register_function(self, kind: str) -> Callable[[Any], Any]:
        table: dict[str, Any] = getattr(self, kind)

        def register(obj: Any, name: str | None = None) -> Any:
            key = name or getattr(obj, "name", None)
            if not key or not isinstance(key, str):
                raise StartupError(
                    f"a plugin registered a {kind[:-1]} without a name: {obj!r}",
                    hint="give the class a 'name' attribute",
                )
            if kind == "connectors":
                _validate_connector(obj)
            if kind == "sandbox_apis":
                _validate_sandbox_api(obj)
            if key in table and table[key] is not obj:
                raise StartupError(
                    f"two plugins register a {kind[:-1].replace('_', ' ')} named {key!r}",
                    hint="uninstall one of them or rename it",
                )
            table[key] = obj
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


def _validate_connector(obj: Any) -> None:
    from hub.connector import Connector

    if not (isinstance(obj, type) and issubclass(obj, Connector)):
        raise StartupError(
            f"register_connectors got {obj!r}, not a hub.connector.Connector subclass"
        )
    if not obj.streams:
        raise StartupError(f"connector {obj.name!r} declares no streams")


def _validate_sandbox_api(obj: Any) -> None:
    from hub.sandbox.base import FakeAPI
    from hub.sandbox.world import BUILTIN_APIS

    if not (isinstance(obj, type) and issubclass(obj, FakeAPI)):
        raise StartupError(
            f"register_sandbox_apis got {obj!r}, not a hub.sandbox.base.FakeAPI subclass"
        )
    if obj.name in BUILTIN_APIS or not obj.prefixes:
        raise StartupError(
            f"sandbox fake {obj.name!r} clashes with a built-in fake or declares no prefixes",
            hint="give the FakeAPI subclass its own 'name' and URL 'prefixes'",
        )


_registry: Registry | None = None


def get_registry() -> Registry:
    """Load plugins and collect everything they register (once)."""
    global _registry
    if _registry is None:
        pm = load_plugins()
        registry = Registry()
        for kind, hook in KINDS.items():
            getattr(pm.hook, hook)(register=registry.register_function(kind))
        registry.vocabulary = build_vocabulary(
            sorted(registry.mappings.values(), key=lambda m: getattr(m, "order", 100))
        )
        _registry = registry
    return _registry


def reset_registry() -> None:
    global _registry
    _registry = None
