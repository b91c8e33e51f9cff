"""The hub's hook specifications (pluggy project ``hub``).

Hooks *declare* things; the host does the work. Each ``register_*`` hook receives a
``register`` callable and calls it once per object it contributes. A hook never syncs or
pushes inside the broadcast call, because pluggy stops at the first exception.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("hub")


@hookspec
def register_connectors(register: Any) -> None:
    """Register connector classes (``hub.connector.Connector`` subclasses).

    ``register(ConnectorClass)``; the class's ``name`` is what ``connector =`` in hub.toml names.
    """


@hookspec
def register_mappings(register: Any) -> None:
    """Register mappings (``hub.timeline.Mapping`` subclasses) that turn raw rows into
    entities, account links and events. A mapping names the connector whose raw tables it reads.
    """


@hookspec
def register_health_models(register: Any) -> None:
    """Register health models and measures (``hub.health`` classes) by name, for use in
    ``[health]`` of hub.toml.
    """


@hookspec
def register_playbooks(register: Any) -> None:
    """Register playbooks (``hub.playbooks.Playbook`` subclasses): rules on scores and events
    that open tasks.
    """


@hookspec
def register_pushers(register: Any) -> None:
    """Register write-back targets (``hub.push.Pusher`` subclasses), such as the HubSpot pusher."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add extra click commands to the ``hub`` CLI: ``@cli.command()`` inside the hook."""


@hookspec
def register_sandbox_apis(register: Any) -> None:
    """Register a plugin's fake API (a ``hub.sandbox.base.FakeAPI`` subclass) so that
    ``hub sandbox serve`` serves it beside the built-in fakes and tests can use it in-process.
    """
