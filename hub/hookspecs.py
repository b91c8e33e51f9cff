"""The hub's hook specifications (pluggy project ``hub``).

Hooks *declare* things; the host does the work. Each ``register_*`` hook receives a
``register`` callable and calls it once per object it contributes; the registry validates
each object and refuses a wrong one with a one-line ``StartupError`` naming the plugin. A hook
never syncs or pushes inside the broadcast call, because pluggy stops at the first exception.

Every class named here is importable from ``hub`` (``hub.Connector``, ``hub.Mapping``…).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click
import pluggy

if TYPE_CHECKING:  # pragma: no cover - annotations only; importing them here would be a cycle
    from hub.connector import Connector
    from hub.health import HealthModel, Measure
    from hub.playbooks import Playbook
    from hub.push import Pusher
    from hub.sandbox.base import FakeAPI
    from hub.timeline import Mapping

hookspec = pluggy.HookspecMarker("hub")

T = TypeVar("T")
Register = Callable[[T], T]
"""``register(obj)`` validates ``obj``, stores it under its ``name`` and returns it."""


@hookspec
def register_connectors(register: Register[type[Connector]]) -> None:
    """Register connector classes (``hub.Connector`` subclasses).

    ``register(ConnectorClass)``; the class's ``name`` is what ``connector =`` in hub.toml names.
    """


@hookspec
def register_mappings(register: Register[type[Mapping]]) -> None:
    """Register mappings (``hub.Mapping`` subclasses) that turn raw rows into entities,
    account links and events. A mapping names the connector whose raw tables it reads, and
    declares its ``source``, ``event_types`` and ``facts`` for the vocabulary.
    """


@hookspec
def register_health_models(register: Register[type[Measure] | type[HealthModel]]) -> None:
    """Register health measures (``hub.Measure``) and models (``hub.HealthModel``) by name,
    for use in ``[health]`` of hub.toml.
    """


@hookspec
def register_playbooks(register: Register[type[Playbook]]) -> None:
    """Register playbooks (``hub.Playbook`` subclasses): rules on scores and events that open
    tasks.
    """


@hookspec
def register_pushers(register: Register[type[Pusher]]) -> None:
    """Register write-back targets (``hub.Pusher`` subclasses), such as the HubSpot pusher."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add extra click commands to the ``hub`` CLI: ``@cli.command()`` inside the hook."""


@hookspec
def register_sandbox_apis(register: Register[type[FakeAPI]]) -> None:
    """Register a plugin's fake API (a ``hub.FakeAPI`` subclass) so that ``hub sandbox serve``
    serves it beside the built-in fakes and tests can use it in-process.
    """


__all__ = ["Register", "hookspec"] + [n for n in dir() if n.startswith("register_")]
