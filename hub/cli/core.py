"""Core commands: init, check, sync, status, plugins."""

from __future__ import annotations

import dataclasses
import os
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import click
from rich import box

from hub.cli.render import (
    Column,
    emit_json,
    line,
    listing,
    output_format,
    page_progress,
    styled,
    table,
    text,
)
from hub.cli.util import Env, pass_env
from hub.errors import ConfigError

STATUS_COLOURS = {"ok": "green", "error": "red"}


def register(cli: click.Group) -> None:
    cli.add_command(init)
    cli.add_command(check)
    cli.add_command(sync)
    cli.add_command(status)
    cli.add_command(plugins)


def example_config() -> str:
    """The fully commented example config shipped inside the package."""
    return resources.files("hub").joinpath("config.example.toml").read_text(encoding="utf-8")


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
@click.option("--example", is_flag=True, help="Print the fully commented example config and exit.")
def init(path: str, force: bool, example: bool) -> None:
    """Write a starter hub.toml and create the database.

    \b
    Examples:
      hub init
      hub init --path /etc/hub/hub.toml
      hub init --example > hub.example.toml
    """
    if example:
        click.echo(example_config(), nl=False)
        return
    target = Path(path).expanduser()
    if not target.parent.is_dir():
        raise ConfigError(
            f"folder {target.parent} does not exist", hint="create it first, or choose --path"
        )
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists", hint="pass --force to overwrite it")
    from hub.plugins import STARTER_CONFIG

    target.write_text(STARTER_CONFIG)
    os.chmod(target, 0o600)
    from hub.config import load_config
    from hub.store import Store

    config = load_config(target, validate=False)
    Store(config.database_path()).close()
    line(
        "Wrote ",
        styled("[bold]{p}[/]", p=target),
        " and created the database ",
        styled("[bold]{p}[/]", p=config.database_path()),
        ".",
    )
    line("Next: export the secrets it names, then run ", styled("[bold]hub check[/]"), ".")


@click.command()
@click.option("--offline", is_flag=True, help="Only validate the config; make no API calls.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@pass_env
def check(env: Env, offline: bool, as_json: bool) -> None:
    """Validate hub.toml (every section) and make one cheap authenticated call per connection.

    Each connection gets one attempt with a short timeout, in parallel; a line per connection
    is printed as its answer arrives, with a hint naming the likely cause of a failure.

    \b
    Examples:
      hub check --offline
      hub check
      hub check --json | jq '.items[] | select(.ok | not)'
    """
    from hub.checks import check_connections, placeholder_warnings

    config = env.config()
    warnings = [*config.warnings, *placeholder_warnings(config)]
    if not as_json:
        for warning in warnings:
            env.warn(warning)
    if not config.connections:
        raise ConfigError(
            f"{config.path}: no connections configured",
            hint="add a [connections.<name>] table; 'hub init --example' shows them all",
        )

    def show(v) -> None:
        if not as_json:
            mark = text("✓", "green") if v.ok else text("✗", "red")
            line(mark, f" {v.connection} ({v.connector}): {v.detail}")

    verdicts = [
        v.to_dict()
        for v in check_connections(
            config, offline=offline, on_verdict=show, database=env.database()
        )
    ]
    if as_json:
        emit_json(listing(verdicts, config=str(config.path), warnings=warnings, offline=offline))
    else:
        line(f"Config {config.path} is valid; database {env.database()}")
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
    """Pull new and changed records from the configured connections.

    CONNECTIONS are names from hub.toml ([connections.NAME]); without any, every enabled
    connection syncs, in parallel. A first sync reads everything; later ones only changes.

    \b
    Examples:
      hub sync
      hub sync stripe --stream invoices
      hub sync --full-refresh hubspot
      hub sync --json | jq '.items[] | {connection, stream, records}'
    """
    from hub.lock import database_lock
    from hub.sync import summarize

    config = env.config()
    store = env.store()
    with database_lock(store, "sync"):
        results = run_sync_with_progress(
            store,
            config,
            list(connections) or None,
            full_refresh=full_refresh,
            streams=list(streams) or None,
            quiet=as_json,
        )
    totals = summarize(results)
    if as_json:
        emit_json(listing(sync_rows(results), totals=totals))
    else:
        print_sync_results(env, results)
        line(sync_summary(totals))
    if totals["failed"]:
        raise SystemExit(1)


def sync_rows(results: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for rs in results.values() for r in rs]


def sync_summary(totals: dict[str, Any]) -> str:
    return (
        f"sync: {totals['streams']} streams, {totals['records']:,} records "
        f"({totals['changed']:,} new or changed), {totals['requests']:,} requests, "
        f"{totals['failed']} failed"
    )


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
    """Run ``sync_all`` with one progress bar per stream (none without a terminal)."""
    from hub.sync import sync_all

    stop = stop or threading.Event()
    with page_progress(quiet=quiet) as progress:
        tasks: dict[tuple[str, str], Any] = {}

        def on_page(connection: str, stream: str, count: int, done: bool) -> None:
            key = (connection, stream)
            if key not in tasks:
                tasks[key] = progress.add_task(f"{connection}.{stream}", total=None)
            progress.update(tasks[key], advance=count, description=f"{connection}.{stream}")
            if done:
                progress.update(tasks[key], total=progress.tasks[tasks[key]].completed or 1)

        def on_wait(connection: str, stream: str, message: str) -> None:
            # "waiting 31 s (Zendesk Retry-After)" on the stream's line while it waits.
            key = (connection, stream)
            if key not in tasks:
                tasks[key] = progress.add_task(f"{connection}.{stream}", total=None)
            progress.update(tasks[key], description=f"{connection}.{stream}: {message}")

        return sync_all(
            store,
            config,
            names,
            full_refresh=full_refresh,
            progress=on_page,
            on_wait=on_wait,
            stop=stop,
            streams=streams,
            transport=transport,
        )


def _status_cell(status: str) -> Any:
    return text(status, STATUS_COLOURS.get(status, "yellow"))


def print_sync_results(env: Env | None, results) -> None:
    right = {"justify": "right"}
    table(
        [r for rs in results.values() for r in rs],
        [
            Column("connection", lambda r: r.connection),
            Column("stream", lambda r: r.stream),
            Column("status", lambda r: _status_cell(r.status)),
            Column("records", lambda r: f"{r.records:,}", **right),
            Column("changed", lambda r: f"{r.changed:,}", **right),
            Column("requests", lambda r: r.requests, **right),
            Column("retries", lambda r: r.retries, **right),
            Column("seconds", lambda r: f"{r.duration_s:.2f}", **right),
            Column("note / error", lambda r: r.error or "; ".join(r.notes)),
        ],
        env=env,
        title="Sync results",
    )


def _when(ts: str | None) -> str:
    return ts[5:16].replace("T", " ") if ts else ""


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def status(env: Env, as_json: bool) -> None:
    """Last runs per connection and step; exits 1 when the latest run of a connection or of
    a pipeline step (map, health, playbooks, push) failed, so cron and healthchecks alert.

    \b
    Examples:
      hub status
      hub --db /var/lib/hub/hub.db status
      hub status --json | jq '.items[] | select(.status == "error")'
    """
    from hub.store.status import collect_status

    config = None
    try:
        config = env.config()
    except ConfigError:
        if not env.db_path:
            raise
    report = collect_status(env.store(), config)
    if as_json:
        emit_json(
            listing(
                report["streams"],
                steps=report["steps"],
                failing=report["failing"],
                webhooks=report["webhooks"],
            )
        )
    else:
        print_status(env, report)
    if report["failing"]:
        raise SystemExit(1)


def _cut(note: str | None, env: Env, width: int = 160) -> str:
    """A long note shortened with an ellipsis in a table; whole in plain lines (cron mail, grep)."""
    note = note or ""
    if output_format(env) == "plain" or len(note) <= width:
        return note
    return note[: width - 1] + "…"


def print_status(env: Env, report: dict[str, Any]) -> None:
    errors = any(row["last_error"] for row in report["streams"])
    scheduled = any(row.get("next_run") for row in report["streams"])
    columns = [
        Column("connection", "connection", no_wrap=True, overflow="ellipsis", max_width=12),
        Column(
            "stream", lambda r: r["stream"] or "", no_wrap=True, overflow="ellipsis", max_width=14
        ),
        Column("status", lambda r: _status_cell(r["status"]), no_wrap=True, min_width=6),
        Column(
            "last ok", lambda r: _when(r["last_success"]) or "never", no_wrap=True, min_width=11
        ),
        Column("records", lambda r: f"{r['records'] or 0:,}", justify="right", no_wrap=True),
        Column("reqs", lambda r: r["requests"] or 0, justify="right", no_wrap=True),
        Column("secs", lambda r: f"{r['duration_s'] or 0:.1f}", justify="right", no_wrap=True),
    ]
    if scheduled:
        columns.append(Column("next run", lambda r: _when(r.get("next_run")), no_wrap=True))
    if errors:
        columns.append(Column("last error", lambda r: _cut(r["last_error"], env), overflow="fold"))
    if report["streams"]:
        table(
            report["streams"],
            columns,
            env=env,
            title=f"Connections ({env.database()})",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
    if report["steps"]:
        table(
            report["steps"],
            [
                Column("step", "kind", no_wrap=True),
                Column("status", lambda r: _status_cell(r["status"]), no_wrap=True),
                Column("finished", lambda r: _when(r["finished_at"]), no_wrap=True),
                Column("records", lambda r: r["records"] or 0, justify="right"),
                Column("secs", lambda r: f"{r['duration_s'] or 0:.1f}", justify="right"),
                Column(
                    "note / error", lambda r: _cut(r["error"] or r["note"], env), overflow="fold"
                ),
            ],
            env=env,
            title="Pipeline steps",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
    if report.get("webhooks"):
        table(
            report["webhooks"],
            [
                Column("connection", "connection", no_wrap=True),
                Column("received", "received_total", justify="right"),
                Column(
                    "refused",
                    lambda w: w["refused_total"] + w["too_large_total"],
                    justify="right",
                ),
                Column("pending", "pending", justify="right"),
                Column("processed", "processed", justify="right"),
                Column(
                    "last",
                    lambda w: (
                        f"{_when((w['last'] or {}).get('received_at'))} "
                        f"{(w['last'] or {}).get('event_type') or ''}".strip()
                    ),
                ),
            ],
            env=env,
            title="Webhook deliveries",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
    if not report["streams"] and not report["steps"]:
        line(
            "No runs yet: try ",
            styled("[bold]hub sync[/]"),
            " or ",
            styled("[bold]hub demo[/]"),
            ".",
        )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def plugins(env: Env, as_json: bool) -> None:
    """List installed plugins, their versions and the hooks they implement.

    \b
    Examples:
      hub plugins
      hub plugins --json | jq '.connectors'
    """
    from hub.plugins import plugin_info
    from hub.registry import KINDS, get_registry

    rows = plugin_info()
    registry = get_registry()
    kinds = {kind: sorted(getattr(registry, kind)) for kind in KINDS}
    if as_json:
        emit_json(listing(rows, **kinds))
        return
    table(
        rows,
        [
            Column("plugin", "name"),
            Column("distribution", "distribution"),
            Column("version", "version"),
            Column("hooks", lambda r: ", ".join(r["hooks"])),
        ],
        env=env,
        title="Plugins",
    )
    line(f"Connectors: {', '.join(kinds['connectors']) or 'none'}")
