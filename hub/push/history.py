"""Push history: every push run with each value it replaced and each task it created.

``record_history(store, result)`` keeps, for a finished (not dry) push, one
``_hub_push_history`` row per value written (``old`` is the value it replaced, as the
pusher read it from the CRM or its log) and one per task created (``property`` empty,
``new`` the CRM task id). ``push_history(store)`` lists the runs for ``hub push history``,
``run_changes(store, run_id)`` gives one run's rows (what an undo would restore).
"""

from __future__ import annotations

from typing import Any

from hub import clock
from hub.push.results import PushResult
from hub.store import Store


def record_history(store: Store, result: PushResult) -> int:
    """Store what the run wrote and replaced; returns the number of rows."""
    if result.run_id is None or result.dry_run:
        return 0
    at = clock.iso()
    rows = [
        (
            result.run_id,
            c.object_type,
            c.object_id,
            c.account_id,
            c.property,
            c.old,
            c.new,
            None,
            at,
        )
        for c in result.changes
        if c.status == "written"
    ]
    rows += [
        (result.run_id, "tasks", t.object_id, t.account_id, "", None, t.remote_id, t.task_id, at)
        for t in result.tasks
        if t.action == "created" and t.remote_id
    ]
    if rows:
        with store.db.atomic():
            store.db.conn.executemany(
                "INSERT INTO _hub_push_history (run_id, object_type, object_id, account_id, "
                "property, old, new, task_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    return len(rows)


def push_history(store: Store, *, limit: int = 50) -> dict[str, Any]:
    """Push runs, newest first: ``{"items": [...], "total": N}``."""
    total = store.db.execute("SELECT COUNT(*) FROM _hub_runs WHERE kind = 'push'").fetchone()[0]
    items = [
        dict(row)
        for row in store.db.query(
            "SELECT r.id AS run_id, r.status, r.started_at, r.finished_at, r.note, r.error, "
            "(SELECT COUNT(*) FROM _hub_push_history h WHERE h.run_id = r.id "
            " AND h.property != '') AS values_written, "
            "(SELECT COUNT(DISTINCT h.object_id) FROM _hub_push_history h WHERE h.run_id = r.id "
            " AND h.property != '') AS records, "
            "(SELECT COUNT(*) FROM _hub_push_history h WHERE h.run_id = r.id "
            " AND h.property = '') AS tasks_created "
            "FROM _hub_runs r WHERE r.kind = 'push' ORDER BY r.id DESC LIMIT ?",
            [limit],
        )
    ]
    return {"items": items, "total": total}


def run_changes(store: Store, run_id: int) -> list[dict[str, Any]]:
    """One run's history rows (values written with what they replaced; tasks created)."""
    return [
        dict(row)
        for row in store.db.query(
            "SELECT * FROM _hub_push_history WHERE run_id = ? ORDER BY rowid", [run_id]
        )
    ]
