"""Push history: every push run with each value it replaced and each task it created.

``record_history(store, result)`` keeps, for a finished (not dry) push, one row per value
written (``old`` is the value it replaced, as the pusher read it from the CRM or its log;
action ``set``) and one per task created (``property`` empty, ``new`` the CRM task id;
action ``task_created``), each with the pusher's ``target``. Revert and uninstall runs
(``hub.push.undo``) add their own rows. ``push_history(store)`` lists the runs for
``hub push history``, ``run_changes(store, run_id)`` gives one run's rows (what a revert
restores). The SQL lives in ``hub.store.push_history``.
"""

from __future__ import annotations

from typing import Any

from hub import clock
from hub.push.results import PushResult
from hub.store import Store
from hub.store.push_history import insert_rows, list_runs, run_rows


def record_history(store: Store, result: PushResult) -> int:
    """Store what the run wrote and replaced; returns the number of rows."""
    if result.run_id is None or result.dry_run:
        return 0
    at = clock.iso()
    rows = [
        {
            "run_id": result.run_id,
            "target": c.target or None,
            "action": "set",
            "object_type": c.object_type,
            "object_id": c.object_id,
            "account_id": c.account_id,
            "property": c.property,
            "old": c.old,
            "new": c.new,
            "at": at,
        }
        for c in result.changes
        if c.status == "written"
    ]
    rows += [
        {
            "run_id": result.run_id,
            "target": t.target or None,
            "action": "task_created",
            "object_type": "tasks",
            "object_id": t.object_id,
            "account_id": t.account_id,
            "property": "",
            "new": t.remote_id,
            "task_id": t.task_id,
            "at": at,
        }
        for t in result.tasks
        if t.action == "created" and t.remote_id
    ]
    return insert_rows(store, rows)


def push_history(store: Store, *, limit: int = 50) -> dict[str, Any]:
    """Push, revert and uninstall runs, newest first: ``{"items": [...], "total": N}``."""
    return list_runs(store, limit=limit)


def run_changes(store: Store, run_id: int) -> list[dict[str, Any]]:
    """One run's history rows (values written with what they replaced; tasks created)."""
    return run_rows(store, run_id)
