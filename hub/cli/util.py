"""Shared pieces of the CLI: the per-invocation ``Env`` and the rich consoles.

Kept apart from ``hub.cli`` so command modules can import them without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console

from hub import logs
from hub.errors import HubError

console = Console()
err_console = Console(stderr=True)


@dataclass
class Env:
    """Per-invocation state shared by commands: config path, verbosity, lazily loaded objects."""

    config_path: str | None = None
    db_path: str | None = None
    verbose: int = 0
    format: str = "auto"
    """auto | table | plain | json (``hub --format``)."""
    _config: Any = None
    _store: Any = None
    _cleanup: list[Any] = field(default_factory=list)

    def config(self) -> Any:
        if self._config is None:
            from hub.config import load_config

            self._config = load_config(self.config_path)
            for warning in self._config.warnings:
                err_console.print(f"warning: {warning}", highlight=False, markup=False)
            for name in self._config.connections:
                try:
                    for value in self._config.resolved_settings(name).values():
                        if isinstance(value, str):
                            logs.register_secret(value) if _looks_secret(value) else None
                except HubError:
                    pass
        return self._config

    def database(self) -> str:
        if self.db_path:
            return self.db_path
        return self.config().database_path()

    def store(self) -> Any:
        if self._store is None:
            from hub.store import Store

            self._store = Store(self.database())
        return self._store


def _looks_secret(value: str) -> bool:
    return len(value) >= 8 and " " not in value


pass_env = click.make_pass_decorator(Env, ensure=True)
