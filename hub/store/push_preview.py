"""Read models for the push: owner names by id and task bodies, so ``hub push --dry-run``
shows people, not ids (owner names come from the accounts the CRM sync mapped); the
timeline events a task's evidence names, so a pusher can tie the task to their records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hub.store import Store


def owner_names(store: Store) -> dict[str, str]:
    """owner id → name (else e-mail), from the accounts that carry both."""
    out: dict[str, str] = {}
    for row in store.db.query(
        "SELECT owner_id, owner_name, owner_email FROM accounts "
        "WHERE owner_id IS NOT NULL AND owner_id != '' ORDER BY id"
    ):
        name = row["owner_name"] or row["owner_email"]
        if name:
            out.setdefault(str(row["owner_id"]), str(name))
    return out


def task_bodies(store: Store, task_ids: list[str]) -> dict[str, str]:
    """outbox task id → its plain-text body."""
    return {
        str(row["id"]): str(row["body"] or "")
        for row in _by_ids(store, "SELECT id, body FROM tasks", task_ids)
    }


def open_task_count(store: Store) -> int:
    """How many outbox tasks wait to be created."""
    row: Any = store.db.execute("SELECT COUNT(*) FROM tasks WHERE status = 'open'").fetchone()
    return int(row[0])


def account_names(store: Store, ids: list[str]) -> dict[str, str]:
    """account id → name."""
    return {
        str(row["id"]): str(row["name"] or "")
        for row in _by_ids(store, "SELECT id, name FROM accounts", ids)
    }


def events_by_id(store: Store, ids: list[str]) -> list[dict[str, Any]]:
    """Timeline events by id (``attrs`` decoded), in the order asked; missing ones left out."""
    import json

    found: dict[str, dict[str, Any]] = {}
    select = "SELECT id, entity, account_id, source, type, ts, attrs FROM events"
    for row in _by_ids(store, select, ids):
        event = dict(row)
        try:
            event["attrs"] = json.loads(event["attrs"] or "{}")
        except ValueError:
            event["attrs"] = {}
        found[event["id"]] = event
    return [found[i] for i in ids if i in found]


def raw_record(store: Store, connection: str, stream: str, record_id: str) -> dict[str, Any] | None:
    """One synced record's data (None when that stream or record is not in the database)."""
    from hub.store import raw_table_name

    table = raw_table_name(connection, stream)
    if not store.db[table].exists():
        return None
    row = store.db.execute(f"SELECT data FROM [{table}] WHERE id = ?", [record_id]).fetchone()
    if row is None:
        return None
    try:
        data = store.decode_raw(row[0])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _by_ids(store: Store, select: str, ids: list[str]) -> Iterator[Any]:
    """Rows of ``select … WHERE id IN (ids)``, 500 ids per query (SQLite's variable limit)."""
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        yield from store.db.query(f"{select} WHERE id IN ({marks})", chunk)
