"""The ``hub`` command line: a thin click layer over the library.

Library errors (``HubError``) become one line on stderr and exit code 1, an unexpected error
one line naming it (``-v`` adds the traceback); under ``--json`` (or ``hub --format json``)
the error is ``{"error": "...", "hint": "...", "type": "..."}`` on stdout instead, exit code 1
(2 for a mistyped option, as click has it).
Commands live in ``hub/cli/<area>.py`` and render through ``hub.cli.render``; plugins add more
via ``register_commands``.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from hub import __version__, logs
from hub.cli.util import Env, console, err_console, pass_env  # noqa: F401 - re-exported for commands
from hub.errors import ConfigError, HubError

JSON_FLAG = "hub.json"  # ctx.meta key: the running command was given --json


class HubGroup(click.Group):
    """Turns errors into one line and exit 1; lists commands in the order added."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        # The command line as given, before click hands it on to the subcommand.
        ctx.meta["hub.argv"] = [*getattr(ctx, "_protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except HubError as exc:
            _report(ctx, exc, type(exc).__name__)
        except click.ClickException as exc:
            if not _wants_json(ctx):
                raise
            # A mistyped option under --json: still one JSON document for the script.
            argv = ctx.meta.get("hub.argv") or []
            command = f"hub {argv[0]}" if argv and argv[0] in self.commands else "hub"
            hint = f"see '{command} --help'"
            click.echo(
                json.dumps(
                    {"error": exc.format_message(), "hint": hint, "type": "UsageError"}, indent=2
                )
            )
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            err_console.print("Interrupted.", highlight=False, markup=False)
            ctx.exit(130)
        except BrokenPipeError:
            # ``hub accounts | head``: the reader has gone, which is not an error of ours.
            _silence_stdout()
            ctx.exit(1)
        except Exception as exc:  # noqa: BLE001 - a bug must still be one line, not a traceback
            _report(ctx, exc, "internal error")


def _wants_json(ctx: click.Context) -> bool:
    """--json was given (even if its command failed to parse) or ``--format json``."""
    if ctx.meta.get(JSON_FLAG):
        return True
    env = ctx.find_object(Env)
    if env is not None and env.format == "json":
        return True
    return "--json" in ctx.meta.get("hub.argv", [])


def _report(ctx: click.Context, exc: BaseException, kind: str) -> None:
    env = ctx.find_object(Env)
    verbose = env is not None and env.verbose
    if isinstance(exc, HubError):
        message, hint = logs.redact(exc.message), exc.hint and logs.redact(exc.hint)
    else:
        message = logs.redact(f"internal error: {type(exc).__name__}: {exc}".splitlines()[0])
        hint = None if verbose else "run with -v for the traceback, and please report it"
    if verbose:
        err_console.print(logs.redact(traceback.format_exc()), highlight=False, markup=False)
    if ctx.meta.get(JSON_FLAG):
        click.echo(json.dumps({"error": message, "hint": hint, "type": kind}, indent=2))
    else:
        line = f"Error: {message}" + (f" ({hint})" if hint else "")
        err_console.print(line, highlight=False, markup=False, soft_wrap=True)
    ctx.exit(1)


@click.group(cls=HubGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="hub")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(),  # existence and permissions: checked by load_config, one line each
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
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    help="Also log to this file, rotated at 10 MB (5 kept).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["auto", "table", "plain", "json"]),
    default="auto",
    show_default=True,
    help="Tables on a terminal, plain tab-separated lines otherwise (auto); json = --json.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    db_path: str | None,
    verbose: int,
    log_json: bool,
    log_file: str | None,
    output_format: str,
) -> None:
    """hub: customer-success signals from your support, billing, CRM and web-technology tools,
    one health score per customer with a plain-words why, written back to the CRM.

    Start with 'hub demo' (no credentials needed), then 'hub init' for your own accounts.

    \b
    Examples:
      hub demo
      hub init && hub check
      hub run --once --json
      hub --format plain accounts | sort -t$'\\t' -k4
    """
    env = ctx.ensure_object(Env)
    env.config_path, env.db_path, env.verbose = config_path, db_path, verbose
    env.format, env.log_json = output_format, log_json
    if output_format == "json":
        ctx.meta[JSON_FLAG] = True
    logs.configure(verbose, json_lines=log_json)
    if log_file:
        _add_log_file(log_file)
    if not console.is_terminal:
        console.soft_wrap = True  # cron mail and pipes get whole lines, never 80-column wraps
    if not err_console.is_terminal:
        err_console.soft_wrap = True  # warnings and errors too (the journal, docker logs)

    @ctx.call_on_close
    def _close() -> None:
        if env._store is not None:
            env._store.close()


def _add_log_file(path: str) -> None:
    """A rotating file beside stderr, with the same redaction and format."""
    target = Path(path).expanduser()
    if not target.parent.is_dir():
        raise ConfigError(
            f"--log-file folder {target.parent} does not exist", hint="create it first"
        )
    logger = logging.getLogger("hub")
    handler = logging.handlers.RotatingFileHandler(
        target, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    for existing in logger.handlers:
        for flt in existing.filters:
            handler.addFilter(flt)
        handler.setFormatter(existing.formatter)
        break
    logger.addHandler(handler)
    target.chmod(0o600)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _remember_json(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """``--json`` (or ``hub --format json``) marks the run, so errors come out as JSON too."""
    env = ctx.find_object(Env)
    if env is not None and env.format == "json":
        value = True
    if value:
        ctx.meta[JSON_FLAG] = True
    return value


def _hook_json_flags(group: click.Group) -> None:
    """Every ``--json`` flag (ours and plugins') marks the run, so errors come out as JSON."""
    for command in group.commands.values():
        for param in command.params:
            if param.name == "as_json" and param.callback is None:
                param.callback = _remember_json
        if isinstance(command, click.Group):
            _hook_json_flags(command)


def _load_commands() -> None:
    from hub.cli.commands import register_all

    register_all(cli)
    try:
        from hub.plugins import load_plugins

        load_plugins().hook.register_commands(cli=cli)
    except HubError as exc:
        err_console.print(f"Error: {exc}", highlight=False, markup=False)
        sys.exit(1)
    _hook_json_flags(cli)


_load_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="hub")
