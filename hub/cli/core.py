"""Core commands: init, check, sync, status, plugins."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import click
from rich import box
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.cli.util import Env, console, err_console, pass_env
from hub.errors import ConfigError

STARTER_CONFIG = """# hub.toml: written by 'hub init'. Every option is explained in config.example.toml.

[hub]
database = "hub.db"
log_level = "warning"

# One table per connected account. Secrets are references: "env:VAR" or "file:PATH".
[connections.stripe]
connector = "stripe"
schedule = "every 30m"
[connections.stripe.settings]
api_key = "env:STRIPE_API_KEY"

[connections.hubspot]
connector = "hubspot"
schedule = "every 30m"
[connections.hubspot.settings]
access_token = "env:HUBSPOT_ACCESS_TOKEN"

[connections.zendesk]
connector = "zendesk"
schedule = "every 30m"
[connections.zendesk.settings]
subdomain = "yourcompany"
email = "you@yourcompany.com"
api_token = "env:ZENDESK_API_TOKEN"

[connections.builtwith]
connector = "builtwith"
schedule = "every 1d"
[connections.builtwith.settings]
api_key = "env:BUILTWITH_API_KEY"

# Required with BuiltWith: your product's technology name(s) as BuiltWith reports them.
[timeline.builtwith]
our_technologies = ["Your Product Widget"]
competitors = ["Intercom", "Drift"]
"""


def register(cli: click.Group) -> None:
    cli.add_command(init)
    cli.add_command(check)
    cli.add_command(sync)
    cli.add_command(status)
    cli.add_command(plugins)


@click.command()
@click.option(
    "--path",
    "path",
    default="hub.toml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the config.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: str, force: bool) -> None:
    """Write a starter hub.toml and create the database."""
    target = Path(path)
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists", hint="pass --force to overwrite it")
    target.write_text(STARTER_CONFIG)
    os.chmod(target, 0o600)
    from hub.config import load_config
    from hub.store import Store

    config = load_config(target)
    Store(config.database_path()).close()
    console.print(
        f"Wrote [bold]{target}[/] and created the database [bold]{config.database_path()}[/]."
    )
    console.print("Next: export the secrets it names, then run [bold]hub check[/].")


@click.command()
@click.option("--offline", is_flag=True, help="Only validate the config; make no API calls.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@pass_env
def check(env: Env, offline: bool, as_json: bool) -> None:
    """Validate hub.toml and make one cheap authenticated call per connection."""
    from rich.text import Text

    from hub.checks import check_connections, validate_sections

    config = env.config()
    validate_sections(config)
    if not as_json:
        console.print(
            f"Config [bold]{config.path}[/] is valid; database {env.database()}", soft_wrap=True
        )

    def show(v) -> None:
        if not as_json:
            line = Text("✓ " if v.ok else "✗ ", style="green" if v.ok else "red")
            line.append(f"{v.connection} ({v.connector}): {v.detail}")  # remote text: no markup
            console.print(line, highlight=False, soft_wrap=True)

    verdicts = [v.to_dict() for v in check_connections(config, offline=offline, on_verdict=show)]
    if as_json:
        console.print_json(
            json.dumps(
                {"config": str(config.path), "warnings": config.warnings, "connections": verdicts}
            )
        )
    elif not verdicts:
        console.print("No connections configured yet: add [connections.<name>] tables to hub.toml.")
    if not all(v["ok"] for v in verdicts):
        raise SystemExit(1)


@click.command()
@click.argument("connections", nargs=-1)
@click.option("--full-refresh", is_flag=True, help="Ignore bookmarks and re-read everything.")
@click.option("--stream", "streams", multiple=True, help="Only these streams (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@pass_env
def sync(
    env: Env,
    connections: tuple[str, ...],
    full_refresh: bool,
    streams: tuple[str, ...],
    as_json: bool,
) -> None:
    """Pull new and changed records from the configured connections."""
    from hub.sync import summarize

    config = env.config()
    store = env.store()
    results = run_sync_with_progress(
        store,
        config,
        list(connections) or None,
        full_refresh=full_refresh,
        streams=list(streams) or None,
        quiet=as_json,
    )
    if as_json:
        console.print_json(
            json.dumps({n: [r.__dict__ for r in rs] for n, rs in results.items()}, default=str)
        )
    else:
        print_sync_results(results)
    if summarize(results)["failed"]:
        raise SystemExit(1)


def run_sync_with_progress(
    store,
    config,
    names,
    *,
    full_refresh=False,
    streams=None,
    quiet=False,
    transport=None,
    stop=None,
):
    """Run ``sync_all`` with one rich progress bar per stream."""
    from hub.sync import sync_all

    stop = stop or threading.Event()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} records"),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
        transient=False,
    ) as progress:
        tasks: dict[tuple[str, str], int] = {}

        def on_page(connection: str, stream: str, count: int, done: bool) -> None:
            key = (connection, stream)
            if key not in tasks:
                tasks[key] = progress.add_task(f"{connection}.{stream}", total=None)
            progress.advance(tasks[key], count)
            if done:
                progress.update(tasks[key], total=progress.tasks[tasks[key]].completed or 1)

        return sync_all(
            store,
            config,
            names,
            full_refresh=full_refresh,
            progress=on_page,
            stop=stop,
            streams=streams,
            transport=transport,
        )


def print_sync_results(results) -> None:
    table = Table(title="Sync results", show_lines=False)
    for col in (
        "connection",
        "stream",
        "status",
        "records",
        "changed",
        "requests",
        "retries",
        "seconds",
        "note / error",
    ):
        table.add_column(
            col,
            justify="right"
            if col in ("records", "changed", "requests", "retries", "seconds")
            else "left",
        )
    for rs in results.values():
        for r in rs:
            colour = {"ok": "green", "error": "red"}.get(r.status, "yellow")
            table.add_row(
                r.connection,
                r.stream,
                f"[{colour}]{r.status}[/]",
                f"{r.records:,}",
                f"{r.changed:,}",
                str(r.requests),
                str(r.retries),
                f"{r.duration_s:.2f}",
                r.error or "; ".join(r.notes),
            )
    console.print(table)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def status(env: Env, as_json: bool) -> None:
    """Last runs per connection and step; exits 1 when any connection is failing."""
    from hub.status import collect_status

    config = None
    try:
        config = env.config()
    except ConfigError:
        if not env.db_path:
            raise
    report = collect_status(env.store(), config)
    if as_json:
        console.print_json(json.dumps(report, default=str))
    else:

        def when(ts: str | None) -> str:
            return ts[5:16].replace("T", " ") if ts else ""

        table = Table(title=f"Connections ({env.database()})", box=box.SIMPLE_HEAD, pad_edge=False)
        errors = any(row["last_error"] for row in report["streams"])
        scheduled = any(row.get("next_run") for row in report["streams"])
        for col, opts in (
            ("connection", {"no_wrap": True, "overflow": "ellipsis", "max_width": 12}),
            ("stream", {"no_wrap": True, "overflow": "ellipsis", "max_width": 14}),
            ("status", {"no_wrap": True, "min_width": 6}),
            ("last ok", {"no_wrap": True, "min_width": 11}),
            ("records", {"justify": "right", "no_wrap": True, "min_width": 7}),
            ("reqs", {"justify": "right", "no_wrap": True, "min_width": 4}),
            ("secs", {"justify": "right", "no_wrap": True, "min_width": 4}),
            *([("next run", {"no_wrap": True, "min_width": 11})] if scheduled else []),
            *([("last error", {"overflow": "fold"})] if errors else []),
        ):
            table.add_column(col, **opts)
        for row in report["streams"]:
            colour = {"ok": "green", "error": "red"}.get(row["status"], "yellow")
            table.add_row(
                row["connection"],
                row["stream"] or "",
                f"[{colour}]{row['status']}[/]",
                when(row["last_success"]) or "never",
                f"{row['records'] or 0:,}",
                str(row["requests"] or 0),
                f"{row['duration_s'] or 0:.1f}",
                *([when(row.get("next_run"))] if scheduled else []),
                *([(row["last_error"] or "")[:120]] if errors else []),
            )
        console.print(table)
        if report["steps"]:
            steps = Table(title="Pipeline steps", box=box.SIMPLE_HEAD, pad_edge=False)
            for col, opts in (
                ("step", {"no_wrap": True}),
                ("status", {"no_wrap": True}),
                ("finished", {"no_wrap": True}),
                ("records", {"justify": "right"}),
                ("secs", {"justify": "right"}),
                ("note / error", {"overflow": "fold"}),
            ):
                steps.add_column(col, **opts)
            for row in report["steps"]:
                steps.add_row(
                    row["kind"],
                    row["status"],
                    when(row["finished_at"]),
                    str(row["records"] or 0),
                    f"{row['duration_s'] or 0:.1f}",
                    (row["error"] or row["note"] or "")[:160],
                )
            console.print(steps)
        if not report["streams"] and not report["steps"]:
            console.print("No runs yet: try [bold]hub sync[/] or [bold]hub demo[/].")
    if report["failing"]:
        raise SystemExit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def plugins(as_json: bool) -> None:
    """List installed plugins, their versions and the hooks they implement."""
    from hub.plugins import plugin_info
    from hub.registry import get_registry

    rows = plugin_info()
    registry = get_registry()
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "plugins": rows,
                    "connectors": sorted(registry.connectors),
                    "mappings": sorted(registry.mappings),
                    "health_models": sorted(registry.health_models),
                    "playbooks": sorted(registry.playbooks),
                    "pushers": sorted(registry.pushers),
                }
            )
        )
        return
    table = Table(title="Plugins")
    for col in ("plugin", "distribution", "version", "hooks"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["name"], row["distribution"], row["version"], ", ".join(row["hooks"]))
    console.print(table)
    console.print(
        f"Connectors: {', '.join(sorted(registry.connectors)) or 'none'}", highlight=False
    )
