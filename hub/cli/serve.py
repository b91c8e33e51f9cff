"""``hub serve``: the web app over the hub's database (see ``hub.web``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import click

from hub.cli.util import Env, console, err_console, pass_env
from hub.errors import ConfigError

DEFAULT_PORT = 8321


def register(cli: click.Group) -> None:
    cli.add_command(serve)


def resolve_token(reference: str | None) -> str | None:
    """``env:VAR`` or ``file:PATH`` → the token; a bare value is refused (it would sit in the
    shell history and the process list)."""
    if not reference:
        return None
    scheme, _, ref = reference.partition(":")
    if scheme == "env" and ref:
        value = os.environ.get(ref, "").strip()
        if not value:
            raise ConfigError(
                f"--token refers to environment variable {ref} which is not set or empty",
                hint=f"export {ref}=<a long random string> first",
            )
        return value
    if scheme == "file" and ref:
        path = Path(ref).expanduser()
        if not path.is_file():
            raise ConfigError(f"--token file {path} does not exist", hint="create it (chmod 600)")
        value = path.read_text().strip()
        if not value:
            raise ConfigError(f"--token file {path} is empty", hint="write the token into it")
        return value
    raise ConfigError(
        "--token takes a reference, not the token itself",
        hint="use --token env:HUB_WEB_TOKEN or --token file:/path/to/token",
    )


def run_server(
    db_path: str,
    config,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    allow_actions: bool = False,
    token: str | None = None,
    webhooks_only: bool = False,
) -> None:
    """Start the web app and print its address (used by ``hub serve`` and ``hub demo --serve``)."""
    from hub.store import Store
    from hub.web import WebOptions
    from hub.web import serve as serve_app

    if config is not None or Path(db_path).exists():
        # Pages read through read-only connections, which cannot migrate: bring the schema
        # up to date (or create the database of a configured hub) first.
        Store(db_path).close()

    options = WebOptions(
        db_path=db_path,
        config=config,
        allow_actions=allow_actions,
        token=token,
        host=host,
        webhooks_only=webhooks_only,
    )

    def ready(url: str) -> None:
        mode = "actions allowed" if allow_actions else "read-only"
        if webhooks_only:
            mode = "webhook receivers only"
        console.print(f"hub serve: {url} ({mode}; Ctrl-C to stop)", highlight=False)
        hooks = _webhook_line(config, url)
        if hooks:
            console.print(hooks, highlight=False, soft_wrap=True)
        if token:
            console.print(
                "Open it once with ?token=<your token> (or send Authorization: Bearer).",
                highlight=False,
            )

    from hub.cli.util import port_errors

    with port_errors(port):
        serve_app(options, port=port, on_ready=ready)


def _webhook_line(config, url: str) -> str | None:
    """Where the webhook receivers listen, when ``[webhooks.secrets]`` names connections."""
    if config is None or not getattr(config, "webhooks", None):
        return None
    from hub.web.webhooks import validate_config

    section = validate_config(config)
    if not section.secrets:
        return None
    names = ", ".join(sorted(section.secrets))
    return (
        f"Webhook receivers: POST {url.rstrip('/')}/webhooks/<connection> for {names} (a "
        f"worker syncs what each delivery touches, {section.debounce_seconds:g} s after a burst)"
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0 = any free port).",
)
@click.option(
    "--allow-actions",
    is_flag=True,
    help="Allow the buttons that write: identity links and unlinks, run now.",
)
@click.option(
    "--token",
    "token_ref",
    help="Access token as env:VAR or file:PATH; required when --host is not loopback.",
)
@click.option(
    "--datasette",
    "datasette_path",
    type=click.Path(dir_okay=False),
    is_flag=False,
    flag_value="",
    default=None,
    help="Write datasette metadata (to PATH, default <db>.datasette.json) and start datasette "
    "if it is installed, instead of the hub's pages.",
)
@click.option(
    "--webhooks-only",
    is_flag=True,
    help="Serve only POST /webhooks/<connection> (no page; no token needed beyond loopback).",
)
@pass_env
def serve(
    env: Env,
    host: str,
    port: int,
    allow_actions: bool,
    token_ref: str | None,
    datasette_path: str | None,
    webhooks_only: bool,
) -> None:
    """Serve the web app (overview, accounts, identity review, runs) over the database.

    \b
    Examples:
      hub serve
      hub serve --port 8080 --allow-actions
      hub serve --host 0.0.0.0 --token env:HUB_WEB_TOKEN
    """
    from hub.web import check_bind

    config = env.config_or_none()
    db_path = env.database()
    token = resolve_token(token_ref)
    check_bind(host, token, webhooks_only=webhooks_only)
    if webhooks_only and config is None:
        raise ConfigError(
            "--webhooks-only needs hub.toml (its connections and [webhooks] secrets)",
            hint="pass -c hub.toml",
        )
    if datasette_path is not None:
        _datasette(db_path, datasette_path, host, port)
        return
    run_server(
        db_path,
        config,
        host=host,
        port=port,
        allow_actions=allow_actions,
        token=token,
        webhooks_only=webhooks_only,
    )


def _datasette(db_path: str, target: str, host: str, port: int) -> None:
    from hub.store.web import ReadOnlyStore
    from hub.store.web_admin import datasette_metadata

    store = ReadOnlyStore(db_path)
    try:
        metadata = datasette_metadata(store)
    finally:
        store.close()
    path = Path(target or f"{Path(db_path).with_suffix('')}.datasette.json")
    path.write_text(json.dumps(metadata, indent=2) + "\n")
    command = ["datasette", "serve", db_path, "-m", str(path), "-h", host, "-p", str(port)]
    if shutil.which("datasette") is None:
        console.print(f"Wrote datasette metadata to {path}.", highlight=False)
        err_console.print(
            "datasette is not installed here: pip install datasette, then run " + " ".join(command),
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(f"Wrote {path}; starting: {' '.join(command)}", highlight=False)
    subprocess.run(command, check=False)
