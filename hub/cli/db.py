"""``hub db``: look after the database (status, migrate, backup, vacuum)."""

from __future__ import annotations

import os

import click

from hub.cli.render import Column, emit_json, line, listing, table
from hub.cli.util import Env, pass_env
from hub.errors import ConfigError


def register(cli: click.Group) -> None:
    cli.add_command(db)


def _open(env: Env, *, migrate: bool = False):
    from hub.store import Store

    path = env.database()
    if path != ":memory:" and not os.path.exists(path):
        raise ConfigError(
            f"database {path} does not exist", hint="run 'hub init' or 'hub sync' first"
        )
    return Store(path, migrate=migrate)


@click.group()
def db() -> None:
    """Look after the database: status, migrate, backup, vacuum.

    \b
    Examples:
      hub db status
      hub db migrate --dry-run
      hub db backup /backups/hub-$(date +%F).db
      hub db vacuum
    """


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def db_status(env: Env, as_json: bool) -> None:
    """Size, schema (applied and pending migrations), row counts and the lock holder.

    \b
    Examples:
      hub db status
      hub db status --json | jq '.items[] | select(.status == "pending")'
    """
    from hub.store.maintenance import status

    store = _open(env)
    try:
        info = status(store)
    finally:
        store.close()
    if as_json:
        migrations = [{"name": m, "status": "applied"} for m in info["applied"]]
        migrations += [{"name": m, "status": "pending"} for m in info["pending"]]
        emit_json(listing(migrations, **info))
        return
    line(
        f"Database {info['path']}: {info['bytes'] / 1e6:.1f} MB (+ {info['wal_bytes'] / 1e6:.1f} MB WAL)"
    )
    line(
        f"Schema: {len(info['applied'])} migrations applied, {len(info['pending'])} pending"
        + (f" ({', '.join(info['pending'])}; run 'hub db migrate')" if info["pending"] else "")
    )
    table(
        [{"what": k, "rows": v} for k, v in info["counts"].items()],
        [Column("what", "what"), Column("rows", lambda r: f"{r['rows']:,}", justify="right")],
        env=env,
    )
    writer = info["writer"]
    if writer:
        line(
            f"Writer: {writer.get('purpose') or 'hub'} (pid {writer['pid']} on {writer['host']}, "
            f"heartbeat {writer['heartbeat_at']})"
        )
    else:
        line("Writer: none (no process is writing)")
    if info["last_run"]:
        last = info["last_run"]
        line(
            f"Last run: {last['kind']} {last['status']} at {last['finished_at'] or 'still running'}"
        )


@db.command("migrate")
@click.option("--dry-run", is_flag=True, help="List the pending migrations; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def db_migrate(env: Env, dry_run: bool, as_json: bool) -> None:
    """Apply pending schema migrations, after a backup copy beside the database.

    Every command migrates a database it opens (backing it up first); this command does it
    on purpose, shows what is pending and where the backup went.

    \b
    Examples:
      hub db migrate --dry-run
      hub db migrate
    """
    from hub.lock import database_lock
    from hub.store import migrations
    from hub.store.maintenance import backup_before_migration

    store = _open(env)
    try:
        pending = migrations.pending(store.db)
        backup_path = None
        applied: list[str] = []
        if pending and not dry_run:
            with database_lock(store, "hub db migrate"):
                if migrations.applied(store.db):
                    backup_path = backup_before_migration(store.path)
                applied = migrations.apply(store.db)
    finally:
        store.close()
    if as_json:
        emit_json(
            listing(
                [{"name": name} for name in pending],
                dry_run=dry_run,
                applied=applied,
                backup=backup_path,
            )
        )
        return
    if not pending:
        line("Schema is up to date: nothing to migrate.")
        return
    for name in pending:
        line(("would apply " if dry_run else "applied ") + name)
    if backup_path:
        line(f"Backup of the database before migrating: {backup_path}")


@db.command("backup")
@click.argument("target", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def db_backup(env: Env, target: str, as_json: bool) -> None:
    """Copy the database to TARGET while the hub keeps running (SQLite online backup).

    \b
    Examples:
      hub db backup /backups/hub-$(date +%F).db
    """
    from hub.store.maintenance import backup

    result = backup(env.database(), target)
    if as_json:
        emit_json(result)
    else:
        line(f"Backed up to {result['path']} ({result['bytes'] / 1e6:.1f} MB).")


@db.command("vacuum")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def db_vacuum(env: Env, as_json: bool) -> None:
    """Compact the database file (takes the writer lock; readers keep working).

    \b
    Examples:
      hub db vacuum
    """
    from hub.lock import database_lock
    from hub.store.maintenance import vacuum

    store = _open(env, migrate=True)
    try:
        with database_lock(store, "hub db vacuum"):
            result = vacuum(store)
    finally:
        store.close()
    if as_json:
        emit_json(result)
    else:
        line(
            f"Vacuumed {result['path']}: {result['bytes_before'] / 1e6:.1f} MB → "
            f"{result['bytes_after'] / 1e6:.1f} MB."
        )
