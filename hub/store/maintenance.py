"""Database care: status, migrations with a backup first, online backups, vacuum.

What ``hub db`` runs. A backup is SQLite's online backup API (a consistent copy while other
processes read and write), written owner-only like the database itself. Migrations of an
existing database are always preceded by a backup next to it, whether ``hub db migrate``
applies them or the store does when it opens.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path
from typing import Any

from hub import clock
from hub.errors import ConfigError
from hub.store import migrations


def backup(db_path: str, target: str | Path) -> dict[str, Any]:
    """Copy the database to ``target`` with the online backup API; returns path and size."""
    source = Path(db_path)
    if not source.exists():
        raise ConfigError(f"database {source} does not exist", hint="check --db or [hub] database")
    target = Path(target).expanduser()
    if not target.parent.is_dir():
        raise ConfigError(f"backup folder {target.parent} does not exist", hint="create it first")
    if target.exists():
        raise ConfigError(f"{target} already exists", hint="choose a new file name")
    os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
    src = sqlite3.connect(str(source), timeout=30)
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return {"path": str(target), "bytes": target.stat().st_size}


def backup_before_migration(db_path: str) -> str:
    """A timestamped backup beside the database, taken before migrating it."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = Path(f"{db_path}.pre-migration-{stamp}.bak")
    return backup(db_path, target)["path"]


def status(store: Any) -> dict[str, Any]:
    """Size, schema version, pending migrations, row counts, the lock holder, the last run."""
    db = store.db
    path = Path(store.path)
    sizes = {
        suffix or "db": (
            Path(f"{path}{suffix}").stat().st_size if Path(f"{path}{suffix}").exists() else 0
        )
        for suffix in ("", "-wal")
    }
    tables = set(db.table_names())
    counts = {
        name: db[name].count
        for name in ("accounts", "events", "health_scores", "tasks", "_hub_runs")
        if name in tables
    }
    raw = [t for t in tables if t.startswith("raw_")]
    counts["raw_tables"] = len(raw)
    counts["raw_rows"] = sum(db[t].count for t in raw)
    holder = None
    if "_hub_lock" in tables:
        found = list(db.query("SELECT * FROM _hub_lock WHERE name = 'writer'"))
        holder = found[0] if found else None
    last = None
    if "_hub_runs" in tables:
        found = list(
            db.query("SELECT kind, status, finished_at FROM _hub_runs ORDER BY id DESC LIMIT 1")
        )
        last = found[0] if found else None
    return {
        "path": str(path),
        "bytes": sizes["db"],
        "wal_bytes": sizes["-wal"],
        "applied": migrations.applied(db),
        "pending": migrations.pending(db),
        "counts": counts,
        "writer": holder,
        "last_run": last,
        "checked_at": clock.iso(),
    }


def vacuum(store: Any) -> dict[str, Any]:
    """Rebuild the file to return free pages to the disk; returns sizes before and after."""
    path = Path(store.path)
    before = path.stat().st_size
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.db.execute("VACUUM")
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"path": str(path), "bytes_before": before, "bytes_after": path.stat().st_size}
