"""Shared pieces of the CLI: the per-invocation ``Env`` and the rich consoles.

Kept apart from ``hub.cli`` so command modules can import them without a cycle.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console

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
    log_json: bool = False
    """``hub --log-json``: messages for a log go through logging, as JSON lines."""
    _config: Any = None
    _store: Any = None
    _cleanup: list[Any] = field(default_factory=list)

    def config(self) -> Any:
        if self._config is None:
            from hub.config import load_config

            # Its warnings (literal secrets, readable files) are `hub check`'s to print.
            self._config = load_config(self.config_path)
            from hub.sync import register_config_secrets

            register_config_secrets(self._config)  # secret fields only: URLs, e-mails readable
        return self._config

    def config_or_none(self) -> Any:
        """The config, or None when there is none but ``--db`` names the database (commands
        that only read it work without a config)."""
        from hub.errors import ConfigError

        try:
            return self.config()
        except ConfigError:
            if self.db_path:
                return None
            raise

    def warn(self, message: str) -> None:
        """A warning on stderr: a plain line, or a JSON log line under ``--log-json``."""
        if self.log_json:
            import logging

            logging.getLogger("hub.cli").warning(message)
        else:
            err_console.print(f"warning: {message}", highlight=False, markup=False)

    def database(self) -> str:
        if self.db_path:
            return self.db_path
        return self.config().database_path()

    def store(self) -> Any:
        if self._store is None:
            from hub.store import Store

            self._store = Store(self.database())
        return self._store


pass_env = click.make_pass_decorator(Env, ensure=True)


def limit_option(what: str, default: int, *, detail: bool = False) -> Any:
    """``--limit`` as every listing takes it: None by default (the table shows ``default``,
    ``--json`` all). ``detail``: the items shown in detail after a summary."""
    if detail:
        text = f"{what} shown in detail (default {default}; with --json: all)."
    else:
        text = f"{what} to show (0 = all; default {default} in a table, all with --json)."
    return click.option("--limit", type=click.IntRange(min=0), default=None, help=text)


def account_option() -> Any:
    """``--account``: narrow a result's detail to one account."""
    return click.option("--account", help="Only this account in the detail (id, CRM id or name).")


@contextmanager
def port_errors(port: int) -> Iterator[None]:
    """Binding ``port`` failed because something holds it: one line naming the fix."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        from hub.errors import ConfigError

        raise ConfigError(
            f"port {port} is in use: pick another with --port (or stop what holds it)"
        ) from None
