"""The task outbox: the ``tasks`` table and every state change a task goes through.

::

    open ──claim──► pushing ──mark_pushed──► pushed ──complete──► completed (snoozed)
      │                │                           │
      └─cancel─► cancelled   release ──► open      └─revert──► reverted (no snooze)

Rules kept here and nowhere else:

* **Dedupe.** A task covers one or more (account, playbook, reason) keys (``reasons``: when
  several playbooks fire for one account in one run they make one task). A key is blocked
  while a task covering it is ``open``, ``pushing`` or ``pushed``.
* **Snooze.** Once the CRM user completes (or deletes) a task it is ``completed`` with
  ``snoozed_until = completed_at + snooze days``; its keys stay blocked until then
  (``is_snoozed``).
* **Revert.** ``hub push revert`` archiving a task in the CRM undoes the push, not the work:
  the task is ``reverted``, blocks nothing and is never snoozed, so the condition, if it still
  holds, opens a new task on the next playbook run.
* **Exactly once.** Every transition is conditional on the state it leaves (``claim`` only
  takes ``open`` rows), and commits on its own, so two pushers can never claim one task and
  a killed pusher leaves a row whose status says how far it got: ``pushing`` means a create
  may or may not have reached the CRM, and the pusher reconciles before creating again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from hub import clock
from hub.playbooks.rules import loads
from hub.store import Store

ACTIVE_STATUSES = ("open", "pushing", "pushed")
"""Statuses in which a task blocks a new one for the same (account, playbook, reason)."""


def task_id_for(account_id: str, playbook: str, reason: str, created_at: str) -> str:
    """A stable, token-safe id (hex) for a new outbox row."""
    text = "\0".join([account_id, playbook, reason, created_at])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def is_snoozed(task: dict[str, Any], now: dt.datetime | str) -> bool:
    """The one snooze rule: a completed task blocks its keys until ``snoozed_until``."""
    at = now if isinstance(now, str) else clock.iso(now)
    return task.get("status") == "completed" and str(task.get("snoozed_until") or "") > at


def task_keys(task: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every (account, playbook, reason) a task covers (its merged reasons, or its own)."""
    reasons = task.get("reasons")
    if isinstance(reasons, str):
        reasons = loads(reasons, [])
    keys = [
        (task["account_id"], str(r.get("playbook")), str(r.get("reason")))
        for r in reasons or []
        if isinstance(r, dict)
    ]
    return keys or [(task["account_id"], task["playbook"], task["reason"])]


class Outbox:
    """The ``tasks`` table as an outbox: open, claim, mark pushed, complete, snooze, cancel."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    # reads --------------------------------------------------------------------------------

    def get(self, task_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM tasks WHERE id = ?", [task_id]))
        return _task_row(rows[0]) if rows else None

    def tasks(self, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Rows (evidence and reasons decoded), oldest first, optionally only some statuses."""
        if statuses is None:
            rows = self.db.query("SELECT * FROM tasks ORDER BY created_at, id")
        else:
            statuses = list(statuses)
            marks = ",".join("?" * len(statuses))
            rows = self.db.query(
                f"SELECT * FROM tasks WHERE status IN ({marks}) ORDER BY created_at, id", statuses
            )
        return [_task_row(r) for r in rows]

    def snoozed(self, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Completed tasks whose snooze still runs."""
        now = now or clock.now()
        return [t for t in self.tasks(["completed"]) if is_snoozed(t, now)]

    def blocking(self, now: dt.datetime) -> dict[tuple[str, str, str], str]:
        """(account, playbook, reason) → why a new task is blocked: ``active`` or ``snoozed``."""
        out: dict[tuple[str, str, str], str] = {}
        # Streamed, the few columns the rule reads: completed tasks pile up over the years,
        # and only those still snoozed matter.
        at = clock.iso(now)
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        for row in self.db.execute(
            "SELECT account_id, playbook, reason, reasons, status, snoozed_until FROM tasks "
            f"WHERE status IN ({marks}) OR (status = 'completed' AND snoozed_until > ?)",
            [*ACTIVE_STATUSES, at],
        ):
            task = dict(
                zip(("account_id", "playbook", "reason", "reasons", "status", "snoozed_until"), row)
            )
            if task["status"] in ACTIVE_STATUSES:
                why = "active"
            elif is_snoozed(task, now):
                why = "snoozed"
            else:
                continue
            for key in task_keys(task):
                if out.get(key) != "active":
                    out[key] = why
        return out

    def pushed_since(self, since: dt.datetime) -> list[dict[str, Any]]:
        """Tasks delivered to the CRM at or after ``since`` (for per-owner caps)."""
        return [
            _task_row(r)
            for r in self.db.query(
                "SELECT * FROM tasks WHERE pushed_at >= ? ORDER BY pushed_at", [clock.iso(since)]
            )
        ]

    def listing(self, status: str, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Tasks for ``hub tasks``: ``open`` (open, pushing, pushed), ``snoozed``,
        ``completed``, ``cancelled`` or ``all``; each with ``account_name`` and ``snoozed``."""
        now = now or clock.now()
        if status == "all":
            rows = self.tasks()
        elif status == "open":
            rows = self.tasks(ACTIVE_STATUSES)
        elif status == "snoozed":
            rows = self.snoozed(now)
        else:
            rows = self.tasks([status])
        names = {r["id"]: r["name"] for r in self.db.query("SELECT id, name FROM accounts")}
        for row in rows:
            row["account_name"] = names.get(row["account_id"])
            row["snoozed"] = is_snoozed(row, now)
        return rows

    # writes (each commits on its own) -------------------------------------------------------

    def add(self, row: dict[str, Any]) -> None:
        row = dict(row)
        for key in ("evidence", "reasons"):
            if not isinstance(row.get(key), (str, type(None))):
                row[key] = json.dumps(row[key], default=str)
        with self.db.atomic():
            self.db["tasks"].insert(row)

    def update_open(self, task_id: str, **values: Any) -> bool:
        """Change an ``open`` (never pushed) task, e.g. to add a reason; False if it moved on."""
        for key in ("evidence", "reasons"):
            if key in values and not isinstance(values[key], (str, type(None))):
                values[key] = json.dumps(values[key], default=str)
        return self._set(task_id, "open", **values)

    def claim(self, task_id: str) -> bool:
        """``open`` → ``pushing``, committed before the CRM hears of it; False if not open."""
        return self._set(task_id, "open", status="pushing")

    def claim_many(self, task_ids: Iterable[str]) -> list[str]:
        """``claim`` for a batch in one transaction; returns the ids this call claimed.

        Conditional on ``status = 'open'``: a task another process claimed first is not
        returned, so two pushes at once never create one task twice.
        """
        claimed = []
        with self.db.atomic():
            for task_id in task_ids:
                cursor = self.db.execute(
                    "UPDATE tasks SET status = 'pushing' WHERE id = ? AND status = 'open'",
                    [task_id],
                )
                if cursor.rowcount:
                    claimed.append(task_id)
        return claimed

    def record_remote(self, task_id: str, remote_id: str, target: str | None = None) -> None:
        """Remember the CRM's id as soon as the create answered (still ``pushing``)."""
        values: dict[str, Any] = {"remote_id": str(remote_id)}
        if target:
            values["target"] = target
        self._set(task_id, "pushing", **values)

    def record_remote_many(self, remote_ids: dict[str, str], target: str | None = None) -> None:
        """``record_remote`` for a batch (task id → CRM id), in one transaction."""
        with self.db.atomic():
            self.db.conn.executemany(
                "UPDATE tasks SET remote_id = ?, target = COALESCE(?, target) "
                "WHERE id = ? AND status = 'pushing'",
                [(str(r), target, i) for i, r in remote_ids.items()],
            )

    def mark_pushed(
        self,
        task_id: str,
        remote_id: str,
        at: dt.datetime | None = None,
        target: str | None = None,
    ) -> None:
        self.mark_pushed_many({task_id: remote_id}, at, target)

    def mark_pushed_many(
        self, remote_ids: dict[str, str], at: dt.datetime | None = None, target: str | None = None
    ) -> None:
        """``pushing`` → ``pushed`` for a batch (task id → CRM id), in one transaction."""
        when = clock.iso(at)
        with self.db.atomic():
            self.db.conn.executemany(
                "UPDATE tasks SET status = 'pushed', remote_id = ?, pushed_at = ?, "
                "target = COALESCE(?, target) WHERE id = ? AND status = 'pushing'",
                [(str(r), when, target, i) for i, r in remote_ids.items()],
            )

    def release(self, task_id: str) -> None:
        """``pushing`` → ``open``: the create certainly did not happen (the CRM said no)."""
        self._set(task_id, "pushing", status="open", remote_id=None)

    def complete(self, task_id: str, completed_at: dt.datetime, snooze_days: int) -> bool:
        """The CRM user completed (or deleted) it: snooze the same task for ``snooze_days``."""
        return self._set(
            task_id,
            "pushed",
            status="completed",
            completed_at=clock.iso(completed_at),
            snoozed_until=clock.iso(completed_at + dt.timedelta(days=snooze_days)),
        )

    def revert(self, task_id: str, at: dt.datetime | None = None) -> bool:
        """``pushed`` → ``reverted``: a push undone, no CSM's completion, so no snooze."""
        return self._set(
            task_id, "pushed", status="reverted", completed_at=clock.iso(at), snoozed_until=None
        )

    def cancel(self, task_id: str, at: dt.datetime | None = None) -> bool:
        """``open`` or ``pushing`` (never created) → ``cancelled``."""
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE tasks SET status = 'cancelled', completed_at = ? "
                "WHERE id = ? AND status IN ('open', 'pushing')",
                [clock.iso(at), task_id],
            )
        return bool(cursor.rowcount)

    def _set(self, task_id: str, from_status: str, **values: Any) -> bool:
        cols = ", ".join(f"{k} = ?" for k in values)
        with self.db.atomic():
            cursor = self.db.execute(
                f"UPDATE tasks SET {cols} WHERE id = ? AND status = ?",
                [*values.values(), task_id, from_status],
            )
        return bool(cursor.rowcount)


def _task_row(row: Any) -> dict[str, Any]:
    row = dict(row)
    row["evidence"] = loads(row.get("evidence"), [])
    row["reasons"] = loads(row.get("reasons"), [])
    return row


def iter_playbook_stats(store: Store) -> Iterator[dict[str, Any]]:
    """Per playbook: tasks opened in total, open now, last triggered (for ``hub playbooks``)."""
    stats: dict[str, dict[str, Any]] = {}
    for task in Outbox(store).tasks():
        for _, playbook, _ in task_keys(task):
            row = stats.setdefault(
                playbook, {"playbook": playbook, "opened": 0, "open_now": 0, "last_triggered": None}
            )
            row["opened"] += 1
            row["open_now"] += task["status"] in ACTIVE_STATUSES
            row["last_triggered"] = max(row["last_triggered"] or "", task["created_at"] or "")
    yield from stats.values()
