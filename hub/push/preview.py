"""What a push did (or, dry, would do) arranged for a person: the summary first, then one
item per account, filtered and limited.

``build_preview(store, result, ...)`` returns the one shape the CLI prints and ``--json``
emits: ``{"summary": {...}, "items": [...], "total": N}`` where ``total`` counts the items
that matched ``account`` before ``limit``. The summary counts records and values by
property, tasks by playbook and by owner *name*, failures, held and completed tasks, and
says why there are no tasks when the outbox is empty.

A task's ``verb`` says what really happened: a real push never says "would create"; a task
the push did not get to (it stopped first) is "not created".
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hub.push.results import PushResult
from hub.store import Store
from hub.store.push_preview import account_names, open_task_count, owner_names, task_bodies

DEFAULT_LIMIT = 20

DRY_VERBS = {
    "create": "would create",
    "reconcile": "would look up (left by an earlier push), then create if missing",
    "found": "would record (already in the CRM)",
    "cancelled": "would cancel",
    "skipped": "skipped (another push claimed it)",
    "failed": "failed",
    "held": "held",
}
REAL_VERBS = {
    "create": "not created (the push stopped before it)",
    "reconcile": "not settled (the push stopped before it)",
    "created": "created",
    "found": "already in the CRM (recorded)",
    "cancelled": "cancelled",
    "skipped": "skipped (another push claimed it)",
    "failed": "failed",
    "held": "held",
}
NO_TASKS = "no open tasks: run `hub playbooks --run` (or `hub run`, which includes it) to open them"


def task_counts(result: PushResult, *, recovered: bool | None = False) -> list[Any]:
    """The tasks that count as delivered (created, or planned in a dry run).

    ``recovered``: False (the default) for this push's new tasks only, True for the rows an
    earlier push left ``pushing`` that this one settles, None for both."""
    wanted = ("create", "reconcile") if result.dry_run else ("created", "found")
    return [
        t
        for t in result.tasks
        if t.action in wanted and (recovered is None or t.recovered == recovered)
    ]


def pusher_name(target: str) -> str:
    """``hubspot`` for the push-log target ``hubspot:<connection>``."""
    return (target or "").split(":", 1)[0]


def build_preview(
    store: Store,
    result: PushResult,
    *,
    limit: int | None = DEFAULT_LIMIT,
    account: str | None = None,
    show_body: bool = False,
    tasks_on: bool = True,
) -> dict[str, Any]:
    """``{"summary": {...}, "items": [...], "total": N}`` for one push result."""
    owners = owner_names(store)
    values = result.changes if result.dry_run else result.written
    delivered = task_counts(result)
    recovered = task_counts(result, recovered=True)
    by_pusher: dict[str, Counter[str]] = {}
    for change in values:
        by_pusher.setdefault(pusher_name(change.target), Counter())[change.property] += 1

    def owner_label(owner: str | None) -> str:
        if not owner:
            return "(unassigned)"
        return owners.get(str(owner), str(owner))

    summary: dict[str, Any] = {
        "text": result.summary(),
        "dry_run": result.dry_run,
        "status": result.status,
        "run_id": result.run_id,
        "records": len({c.object_id for c in values}),
        "records_by_type": dict(
            Counter(t for t, _ in {(c.object_type, c.object_id) for c in values}).most_common()
        ),
        "values": len(values),
        "values_by_property": dict(Counter(c.property for c in values).most_common()),
        "values_by_pusher": {p: dict(n.most_common()) for p, n in by_pusher.items()},
        "tasks": len(delivered),
        "tasks_by_playbook": dict(Counter(t.playbook for t in delivered).most_common()),
        "tasks_by_owner": dict(Counter(owner_label(t.owner_id) for t in delivered).most_common()),
        "failed": len(result.failed) + sum(1 for t in result.tasks if t.action == "failed"),
        "recovered": len(recovered),
        "held": result.held,
        "held_by_reason": dict(
            Counter((t.error or "").split(":", 1)[0] for t in result.held_tasks).most_common()
        ),
        "held_by_owner": dict(
            Counter(owner_label(t.owner_id) for t in result.held_tasks).most_common()
        ),
        "completed": len(result.completed),
        "setup": list(result.setup),
        "caps": result.caps,
        "notes": list(result.notes),
        "errors": list(result.errors),
        "requests": result.requests,
        "writes": result.writes,
        "why_no_tasks": None,
    }
    if tasks_on and not result.tasks and not result.held and open_task_count(store) == 0:
        summary["why_no_tasks"] = NO_TASKS

    items: dict[tuple[str, str], dict[str, Any]] = {}

    def item_for(account_id: str, name: str, object_type: str, object_id: str | None) -> dict:
        key = (account_id, object_id or "")
        if key not in items:
            items[key] = {
                "account_id": account_id,
                "account_name": name,
                "object_type": object_type,
                "object_id": object_id,
                "changes": [],
                "tasks": [],
            }
        return items[key]

    names: dict[str, str] = {}
    for change in result.changes:
        names.setdefault(change.account_id, change.account_name)
        item_for(change.account_id, change.account_name, change.object_type, change.object_id)[
            "changes"
        ].append(
            {
                "property": change.property,
                "old": change.old,
                "new": change.new,
                "status": change.status,
                "error": change.error,
            }
        )
    shown = [*result.tasks, *result.held_tasks]
    bodies = task_bodies(store, [t.task_id for t in shown]) if show_body else {}
    verbs = DRY_VERBS if result.dry_run else REAL_VERBS
    missing = sorted({t.account_id for t in shown} - set(names))
    other_names = account_names(store, missing) if missing else {}
    for task in shown:
        name = names.get(task.account_id) or other_names.get(task.account_id, "")
        entry = {
            "task_id": task.task_id,
            "playbook": task.playbook,
            "subject": task.subject,
            "priority": task.priority,
            "owner_id": task.owner_id,
            "owner": owner_label(task.owner_id),
            "due_at": task.due_at,
            "action": task.action,
            "verb": verbs.get(task.action, task.action),
            "recovered": task.recovered,
            "remote_id": task.remote_id,
            "links": list(task.links),
            "error": task.error,
        }
        if show_body:
            entry["body"] = bodies.get(task.task_id, "")
        object_type = task.object_type or next(
            (c.object_type for c in result.changes if c.account_id == task.account_id), "records"
        )
        item_for(task.account_id, name, object_type, task.object_id)["tasks"].append(entry)

    listed = sorted(items.values(), key=lambda i: (i["account_name"].lower(), i["account_id"]))
    if account:
        wanted = account.strip().lower()
        listed = [
            i
            for i in listed
            if wanted in (str(i["account_id"]).lower(), str(i["object_id"] or "").lower())
            or wanted == i["account_name"].lower()
            or wanted in i["account_name"].lower()
        ]
    total = len(listed)
    if limit is not None:
        listed = listed[:limit]
    return {"summary": summary, "items": listed, "total": total}
