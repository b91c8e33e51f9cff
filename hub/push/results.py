"""What a push did (or, in a dry run, would do): property changes, task actions, counters."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from hub.text import plural


@dataclass
class PropertyChange:
    """One field of one CRM record: what it was (last push or CRM value) and will be."""

    object_type: str
    object_id: str
    account_id: str
    account_name: str
    property: str
    old: str
    new: str
    status: str = "planned"  # planned | written | failed
    error: str | None = None
    target: str = ""
    """The pusher's push-log namespace (``Pusher.target``), set by the host."""


@dataclass
class TaskAction:
    """What happened (or would happen) to one outbox task."""

    task_id: str
    account_id: str
    object_id: str | None
    """The CRM record the task belongs to (company, organization…), None when there is none."""
    playbook: str
    subject: str
    owner_id: str | None
    due_at: str | None
    priority: str | None
    action: str  # create | reconcile | created | found | cancelled | failed | held
    remote_id: str | None = None
    error: str | None = None
    target: str = ""
    """The pusher's push-log namespace (``Pusher.target``), set by the host."""
    links: list[str] = field(default_factory=list)
    """Other CRM records the task is tied to besides ``object_id`` (e.g. ``deal 123``)."""
    object_type: str = ""
    """The kind of record ``object_id`` names (``Pusher.record_type``), set by the host."""
    recovered: bool = False
    """A row an earlier (failed or killed) push left ``pushing``, settled by this push."""


@dataclass
class SchemaItem:
    """Something the hub created in a CRM: what uninstall removes.

    ``kind`` is the pusher's own singular noun for it (``"field"``, ``"organization field"``…):
    the core shows and records it as given (``hub uninstall``'s summary counts each kind,
    history rows keep it beside the action ``removed``)."""

    kind: str
    name: str
    label: str = ""
    object_type: str = ""


@dataclass
class PushResult:
    """Outcome of one push: setup actions, property changes, tasks, errors, counters."""

    dry_run: bool = False
    status: str = "ok"  # ok | partial | error | disabled
    run_id: int | None = None
    setup: list[str] = field(default_factory=list)
    changes: list[PropertyChange] = field(default_factory=list)
    tasks: list[TaskAction] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    """Outbox task ids found completed (or deleted) in the CRM."""
    held: int = 0
    """Open tasks held for a later push by the caps."""
    held_tasks: list[TaskAction] = field(default_factory=list)
    """Those tasks (action ``held``), each with the reason in ``error``."""
    caps: str = ""
    """The task caps in words (shown by ``hub push`` and its dry run)."""
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Things that went right in the end but are worth saying (e.g. a reconciled retry)."""
    requests: int = 0
    retries: int = 0
    writes: int = 0
    """Write requests sent to the CRM (always 0 in a dry run)."""
    duration_s: float = 0.0

    def error(self, text: str) -> None:
        if text not in self.errors:
            self.errors.append(text)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    @property
    def written(self) -> list[PropertyChange]:
        return [c for c in self.changes if c.status == "written"]

    @property
    def failed(self) -> list[PropertyChange]:
        return [c for c in self.changes if c.status == "failed"]

    def summary(self) -> str:
        verb = "would write" if self.dry_run else "wrote"
        ok = self.changes if self.dry_run else self.written
        delivered = [
            t
            for t in self.tasks
            if t.action in (("create", "reconcile") if self.dry_run else ("created", "found"))
        ]
        created = [t for t in delivered if not t.recovered]
        recovered = len(delivered) - len(created)
        records = len({c.object_id for c in ok})
        parts = [
            f"{verb} {plural(len(ok), 'value')} on {plural(records, 'record')}",
            f"{'would create' if self.dry_run else 'pushed'} {plural(len(created), 'task')}",
        ]
        if recovered:
            parts.append(
                f"{'would settle' if self.dry_run else 'settled'} "
                f"{plural(recovered, 'task')} left by an earlier push"
            )
        if self.setup:
            parts.insert(0, f"setup: {plural(len(self.setup), 'action')}")
        if self.held:
            parts.append(f"{plural(self.held, 'task')} held by the caps for a later push")
        if self.completed:
            parts.append(f"{plural(len(self.completed), 'task')} completed in the CRM")
        failed = len(self.failed) + sum(1 for t in self.tasks if t.action == "failed")
        if failed:
            parts.append(f"{failed} failed")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "status": self.status,
            "run_id": self.run_id,
            "setup": list(self.setup),
            "changes": [asdict(c) for c in self.changes],
            "tasks": [asdict(t) for t in self.tasks],
            "completed": list(self.completed),
            "held": self.held,
            "held_tasks": [asdict(t) for t in self.held_tasks],
            "caps": self.caps,
            "errors": list(self.errors),
            "notes": list(self.notes),
            "requests": self.requests,
            "retries": self.retries,
            "writes": self.writes,
            "summary": self.summary(),
        }
