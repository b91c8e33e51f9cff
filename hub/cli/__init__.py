"""The ``hub`` command line: a thin click layer over the library.

Library errors (``HubError``) become one line on stderr and exit code 1; ``-v`` adds a
traceback. Commands live in ``hub/commands/``; plugins add more via ``register_commands``.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import click

from hub import __version__, logs
from hub.cli.util import Env, console, err_console, pass_env  # noqa: F401 - re-exported for commands
from hub.errors import HubError


class HubGroup(click.Group):
    """Turns ``HubError`` into one line and exit 1; lists commands in the order added."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HubError as exc:
            env = ctx.find_object(Env)
            if env is not None and env.verbose:
                err_console.print(traceback.format_exc(), highlight=False, markup=False)
            err_console.print(
                f"Error: {logs.redact(str(exc))}", highlight=False, markup=False, soft_wrap=True
            )
            ctx.exit(1)
        except KeyboardInterrupt:
            err_console.print("Interrupted.", highlight=False)
            ctx.exit(130)


@click.group(cls=HubGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="hub")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="HUB_CONFIG",
    help="Path to hub.toml (default ./hub.toml).",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    help="Database path (overrides [hub] database).",
)
@click.option("-v", "--verbose", count=True, help="More logging: -v info, -vv debug.")
@click.option("--log-json", is_flag=True, help="Log as JSON lines on stderr.")
@click.pass_context
def cli(
    ctx: click.Context, config_path: str | None, db_path: str | None, verbose: int, log_json: bool
) -> None:
    """hub: customer-success signals from Zendesk, Stripe, HubSpot and BuiltWith, one health
    score per customer, written back to HubSpot.

    Start with 'hub demo' (no credentials needed), then 'hub init' for your own accounts.
    """
    env = ctx.ensure_object(Env)
    env.config_path, env.db_path, env.verbose = config_path, db_path, verbose
    logs.configure(verbose, json_lines=log_json)

    @ctx.call_on_close
    def _close() -> None:
        if env._store is not None:
            env._store.close()


def _load_commands() -> None:
    from hub.cli.commands import register_all

    register_all(cli)
    try:
        from hub.plugins import load_plugins

        load_plugins().hook.register_commands(cli=cli)
    except HubError as exc:
        err_console.print(f"Error: {exc}", highlight=False, markup=False)
        sys.exit(1)


_load_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="hub")


def default_db() -> Path:
    return Path("hub.db")
