"""The CLI's commands, one module per area; ``register_all`` attaches them to the group."""

from __future__ import annotations

import importlib

import click

COMMAND_MODULES = [
    "hub.cli.core",
    "hub.cli.sandbox",
    "hub.cli.timeline",
    "hub.cli.health",
    "hub.cli.push",
    "hub.cli.run",
    "hub.cli.db",
    "hub.cli.portfolio",
    "hub.cli.serve",
]


def register_all(cli: click.Group) -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(cli)
