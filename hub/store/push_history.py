"""Push history in the database: what each push, revert and uninstall run did in a CRM.

One row per thing a run did (``action``): a value ``set`` (with the value it replaced in
``old``), a task created or archived (``new`` = the CRM task id), something the hub had
installed ``removed`` (``kind`` is the pusher's noun for it, e.g. ``field``; rows from before
migration ``push_history_removed`` said ``field_archived`` or ``group_archived`` and were
rewritten by it). ``_hub_runs`` holds the runs themselves (kinds ``push``, ``revert``,
``uninstall``). The push core (``hub.push.history``, ``hub.push.undo``) reads and writes
through these functions only.

Stored compactly: what the rows of a run share (run, target, action, object type, property,
kind, time) is kept once in ``_hub_push_groups``; ``_hub_push_history`` keeps per row the
object, the account (NULL when it is the object itself, ``NO_ACCOUNT`` for none), the old
and new values and the task id. Rows come back whole, in the order they were written.
"""

from __future__ import annotations

from typing import Any

from hub.store import Store

RUN_KINDS = ("push", "revert", "uninstall")
"""The runs ``hub push history`` lists."""

COLUMNS = (
    "run_id",
    "target",
    "action",
    "object_type",
    "object_id",
    "account_id",
    "property",
    "old",
    "new",
    "task_id",
    "kind",
    "at",
)

NO_ACCOUNT = "\x00"
"""Stored ``account_id`` of a row that has none (NULL means: the object's own id)."""
_GROUP = ("run_id", "target", "action", "object_type", "property", "kind", "at")
_ACTION = "g.action"
# A row as it was written: the group's columns and the row's own.
_ROWS = (
    "SELECT g.run_id, g.target, g.action, g.object_type, h.object_id, "
    "CASE WHEN h.account_id IS NULL THEN h.object_id WHEN h.account_id = char(0) THEN NULL "
    "ELSE h.account_id END AS account_id, g.property, h.old, h.new, h.task_id, g.kind, g.at "
    "FROM _hub_push_history h JOIN _hub_push_groups g ON g.id = h.group_id"
)


def _action(row: dict[str, Any]) -> str:
    # Rows built before ``action`` existed: a property row set a value, an empty one a task.
    return row.get("action") or ("set" if row.get("property") else "task_created")


def insert_rows(store: Store, rows: list[dict[str, Any]]) -> int:
    """Store history rows (dicts with ``COLUMNS``) in one transaction; returns how many."""
    if not rows:
        return 0
    db = store.db
    with db.atomic():
        groups: dict[tuple[Any, ...], int] = {}
        values = []
        for row in rows:
            key = tuple(_action(row) if c == "action" else row.get(c) for c in _GROUP)
            if key not in groups:
                groups[key] = db.execute(
                    "INSERT INTO _hub_push_groups (run_id, target, action, object_type, "
                    "property, kind, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    list(key),
                ).lastrowid
            account = row.get("account_id")
            stored = (
                NO_ACCOUNT
                if account is None
                else None
                if account == row.get("object_id")
                else account
            )
            values.append(
                (
                    groups[key],
                    row.get("object_id"),
                    stored,
                    row.get("old"),
                    row.get("new"),
                    row.get("task_id"),
                )
            )
        db.conn.executemany(
            "INSERT INTO _hub_push_history (group_id, object_id, account_id, old, new, task_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            values,
        )
    return len(rows)


def list_runs(store: Store, *, limit: int = 50) -> dict[str, Any]:
    """Push, revert and uninstall runs, newest first: ``{"items": [...], "total": N}``."""
    kinds = ", ".join(f"'{k}'" for k in RUN_KINDS)
    total = store.db.execute(f"SELECT COUNT(*) FROM _hub_runs WHERE kind IN ({kinds})").fetchone()[
        0
    ]

    def count(action: str, distinct: str = "*") -> str:
        return (
            f"(SELECT COUNT({distinct}) FROM _hub_push_groups g JOIN _hub_push_history h "
            f"ON h.group_id = g.id WHERE g.run_id = r.id AND {_ACTION} = '{action}')"
        )

    items = [
        dict(row)
        for row in store.db.query(
            "SELECT r.id AS run_id, r.kind, r.status, r.started_at, r.finished_at, r.note, "
            f"r.error, {count('set')} AS values_written, "
            f"{count('set', 'DISTINCT h.object_id')} AS records, "
            f"{count('task_created')} AS tasks_created, "
            f"{count('task_archived')} AS tasks_archived, "
            f"{count('removed')} AS removed, "
            "(SELECT GROUP_CONCAT(DISTINCT g.target) FROM _hub_push_groups g "
            "WHERE g.run_id = r.id) AS targets "
            f"FROM _hub_runs r WHERE r.kind IN ({kinds}) ORDER BY r.id DESC LIMIT ?",
            [limit],
        )
    ]
    for item in items:
        # A target is ``<pusher>:<connection>``: the pushers the run wrote to, by name.
        targets = (item.pop("targets") or "").split(",")
        item["pushers"] = sorted({t.split(":", 1)[0] for t in targets if t})
    return {"items": items, "total": total}


def run_info(store: Store, run_id: int) -> dict[str, Any] | None:
    """One run's ``_hub_runs`` row (None when there is no such run)."""
    rows = list(store.db.query("SELECT * FROM _hub_runs WHERE id = ?", [run_id]))
    return dict(rows[0]) if rows else None


def reverted_by(store: Store, run_id: int) -> int | None:
    """The latest revert run that restored something of run ``run_id`` and was not itself
    reverted since (None: the run stands). A revert run's note starts ``revert run N:``."""
    rows = store.db.query(
        "SELECT r.id FROM _hub_runs r WHERE r.kind = 'revert' AND r.id > ? "
        "AND r.note LIKE ? AND r.status IN ('ok', 'partial') "
        "AND EXISTS (SELECT 1 FROM _hub_push_groups g WHERE g.run_id = r.id) "
        "ORDER BY r.id DESC LIMIT 1",
        [run_id, f"revert run {run_id}:%"],
    )
    found = [row["id"] for row in rows]
    if not found:
        return None
    return None if reverted_by(store, found[0]) is not None else found[0]


def run_rows(store: Store, run_id: int) -> list[dict[str, Any]]:
    """One run's history rows in the order they were written (``action`` always filled)."""
    return [
        dict(row)
        for row in store.db.query(f"{_ROWS} WHERE g.run_id = ? ORDER BY h.rowid", [run_id])
    ]


def forget_target(store: Store, target: str) -> int:
    """Drop every push-log row of one pusher target (after an uninstall: write all again)."""
    with store.db.atomic():
        cursor = store.db.execute("DELETE FROM _hub_push_log WHERE target = ?", [target])
    return cursor.rowcount
