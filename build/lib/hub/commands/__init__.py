"""The CLI's commands, one module per area; ``register_all`` attaches them to the group."""

from __future__ import annotations

import importlib

import click

COMMAND_MODULES = [
    "hub.commands.core",
    "hub.commands.sandbox",
    "hub.commands.timeline",
    "hub.commands.health",
    "hub.commands.push",
    "hub.commands.run",
]


def register_all(cli: click.Group) -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(cli)
