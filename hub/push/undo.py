"""Taking write-back back: ``hub push revert RUN`` and ``hub uninstall <pusher>``.

The core decides, the pusher only reads and writes its CRM (the undo hooks of
``hub.push.Pusher``):

* **revert** restores each value a run wrote to the value it replaced, but only where the
  CRM still holds what the run wrote (a value a person or a later run changed since is
  skipped, with the reason), and archives the tasks the run created that are still open
  (completed or deleted ones are skipped). It works on a revert run too (undo the undo).
* **uninstall** removes what the hub created in a CRM (what the pusher's ``installed()``
  lists, each with the pusher's own noun for it; never a field the config mapped the hub
  onto) and, with ``tasks``, archives the open tasks that carry the hub's marker. The push log of that pusher is dropped, so the next ``hub push``
  installs again and writes every value.

Both are recorded as runs (kinds ``revert`` and ``uninstall``) with a history row per thing
they did (actions ``set``, ``task_archived`` and ``removed``, the last with the pusher's
``kind`` of what it removed), listed by ``hub push history``; a dry run plans and writes nothing. Tasks archived
here become ``reverted`` in the outbox: undoing a push is not a CSM completing the work, so
they are not snoozed, and a condition that still holds opens a new task on the next playbook
run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from hub import clock
from hub.errors import ConfigError, HubError, PushError
from hub.push.context import PushContext
from hub.push.engine import client_for
from hub.push.pusher import Pusher
from hub.push.results import PushResult
from hub.push.settings import push_settings, pusher_classes, pusher_settings
from hub.store import Store
from hub.store.push_history import (
    forget_target,
    insert_rows,
    reverted_by,
    run_info,
    run_rows,
)
from hub.text import plural

REVERTIBLE_KINDS = ("push", "revert")
log = logging.getLogger("hub.push")


@dataclass
class UndoItem:
    """One thing a revert or uninstall does (or would do, or skipped)."""

    what: str  # value | task | installed (something the hub created: ``kind`` names it)
    target: str
    object_type: str
    object_id: str
    account_id: str | None = None
    property: str = ""
    current: str = ""
    """The CRM's value now (a value), the task's state, or the field's label."""
    restore: str = ""
    """The value put back (a value)."""
    status: str = "planned"  # planned | done | skipped | failed
    reason: str = ""
    task_id: str | None = None
    label: str = ""
    """For a person: the account's name (a value), the task's subject (a task)."""
    kind: str = ""
    """For ``installed``: the pusher's noun for it (``SchemaItem.kind``, e.g. ``field``)."""


@dataclass
class UndoResult:
    """What ``revert_run`` or ``uninstall`` did (or, in a dry run, would do)."""

    kind: str  # revert | uninstall
    subject: str
    """``run 12`` or the pusher's name."""
    dry_run: bool = False
    run_id: int | None = None
    status: str = "ok"  # ok | partial | error
    items: list[UndoItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    writes: int = 0
    removal: str = "archive"
    """How the pusher removes what the hub installed (``Pusher.removal``): archive or delete."""
    already_reverted_by: int | None = None
    """For a revert: the revert run that already took this run back (nothing was done)."""

    def count(self, what: str, status: str) -> int:
        return sum(1 for i in self.items if i.what == what and i.status == status)

    def summary(self) -> str:
        done = "planned" if self.dry_run else "done"
        removal = f"would {self.removal}" if self.dry_run else f"{self.removal}d"
        parts = []
        if self.count("value", done) or self.kind == "revert":
            verb = "would restore" if self.dry_run else "restored"
            parts.append(f"{verb} {plural(self.count('value', done), 'value')}")
        if self.count("task", done):
            verb = "would archive" if self.dry_run else "archived"
            parts.append(f"{verb} {plural(self.count('task', done), 'task')}")
        # What a pusher installed is counted under its own nouns, in the order it listed them.
        kinds: dict[str, int] = {}
        for item in self.items:
            if item.what == "installed" and item.status == done:
                kinds[item.kind] = kinds.get(item.kind, 0) + 1
        parts += [f"{removal} {plural(n, kind)}" for kind, n in kinds.items()]
        skipped = sum(1 for i in self.items if i.status == "skipped")
        failed = sum(1 for i in self.items if i.status == "failed")
        if skipped:
            parts.append(f"{skipped} skipped")
        if failed:
            parts.append(f"{failed} failed")
        if self.already_reverted_by is not None:
            return f"{self.kind} {self.subject}: already reverted by run {self.already_reverted_by}"
        return f"{self.kind} {self.subject}: " + ("; ".join(parts) or "nothing to do")

    def skipped_by_reason(self) -> dict[str, int]:
        """How many items were skipped for each reason (the details cut at ``(``)."""
        counts: dict[str, int] = {}
        for item in self.items:
            if item.status == "skipped":
                reason = item.reason.split(" (", 1)[0] or "skipped"
                counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def view(self, *, limit: int | None = None, account: str | None = None) -> dict[str, Any]:
        """The items a person asked for: ``account`` (id, record id or name) first filters,
        then ``limit`` cuts; done, planned and failed items come before skipped ones.
        ``{"items": [...], "total": N}`` with ``total`` counted before ``limit``."""
        items = self.items
        if account:
            wanted = account.strip().lower()
            items = [
                i
                for i in items
                if wanted in (str(i.account_id or "").lower(), str(i.object_id).lower())
                or (i.what == "value" and wanted in i.label.lower())
            ]
        items = sorted(items, key=lambda i: i.status == "skipped")
        total = len(items)
        return {"items": items if limit is None else items[:limit], "total": total}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "dry_run": self.dry_run,
            "run_id": self.run_id,
            "status": self.status,
            "summary": self.summary(),
            "already_reverted_by": self.already_reverted_by,
            "skipped_by_reason": self.skipped_by_reason(),
            "items": [asdict(i) for i in self.items],
            "total": len(self.items),
            "errors": list(self.errors),
            "notes": list(self.notes),
            "requests": self.requests,
            "writes": self.writes,
        }


# -- revert ---------------------------------------------------------------------------------


def revert_run(
    store: Store,
    config: Any,
    run_id: int,
    *,
    dry_run: bool = False,
    transport: httpx.BaseTransport | None = None,
    registry: Any = None,
) -> UndoResult:
    """Restore what push run ``run_id`` replaced where the CRM still holds what it wrote, and
    archive the tasks it created that are still open. Callers that write hold the lock."""
    info = run_info(store, run_id)
    if info is None or info["kind"] not in REVERTIBLE_KINDS:
        raise ConfigError(
            f"run {run_id} is not a push or revert run",
            hint="`hub push history` lists the runs that can be reverted",
        )
    result = UndoResult("revert", f"run {run_id}", dry_run=dry_run)
    earlier = reverted_by(store, run_id)
    if earlier is not None:
        # Reverting again would only list every row as skipped; `hub push revert` of the
        # revert run takes the revert back instead.
        result.notes.append(
            f"run {run_id} was already reverted by run {earlier}; "
            f"`hub push revert {earlier}` takes that revert back"
        )
        result.already_reverted_by = earlier
        return result
    rows = [r for r in run_rows(store, run_id) if r["action"] in ("set", "task_created")]
    if not rows:
        result.notes.append(f"run {run_id} wrote no value and created no task")
        return result
    pushers = _configured(config, registry)
    by_target: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        target = row["target"] or (next(iter(pushers)) if len(pushers) == 1 else "")
        by_target.setdefault(target, []).append(row)
    started = time.perf_counter()
    if not dry_run:
        result.run_id = store.start_run("revert", ",".join(sorted(by_target)) or None)
    try:
        for target, target_rows in by_target.items():
            if target not in pushers:
                for row in target_rows:
                    result.items.append(_skipped_row(row, target, "its pusher is not configured"))
                result.errors.append(
                    f"{plural(len(target_rows), 'change')} of {target or 'an unknown pusher'} "
                    "skipped: that pusher is not in [push] pushers"
                )
                continue
            cls, settings = pushers[target]
            _with_pusher(
                store,
                config,
                cls,
                settings,
                result,
                transport,
                lambda pusher, ctx, rows=target_rows: _revert_with(pusher, ctx, rows, result),
            )
    finally:
        _finish(store, result, started, f"revert of run {run_id}")
    return result


def _revert_with(
    pusher: Pusher, ctx: PushContext, rows: list[dict[str, Any]], result: UndoResult
) -> None:
    target = pusher.target
    values = [r for r in rows if r["action"] == "set"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in values:
        by_type.setdefault(row["object_type"], []).append(row)
    for object_type, type_rows in by_type.items():
        ids = sorted({r["object_id"] for r in type_rows})
        props = sorted({r["property"] for r in type_rows})
        current = _hook(pusher, "read_values", object_type, ids, props)
        planned: dict[str, dict[str, str]] = {}
        items: dict[tuple[str, str], UndoItem] = {}
        for row in type_rows:
            oid, prop = row["object_id"], row["property"]
            wrote, before = row["new"] or "", row["old"] or ""
            item = UndoItem(
                "value",
                target,
                object_type,
                oid,
                row["account_id"],
                prop,
                restore=before,
            )
            item.label = str((ctx.accounts().get(row["account_id"] or "") or {}).get("name") or "")
            result.items.append(item)
            if oid not in current:
                item.status, item.reason = "skipped", "the record is gone from the CRM"
                continue
            now = current[oid].get(prop, "")
            item.current = now
            if not pusher.same_value(prop, now, wrote):
                item.status = "skipped"
                item.reason = (
                    "already holds the earlier value"
                    if pusher.same_value(prop, now, before)
                    else f"changed since the run (now {_show(now)}, the run wrote {_show(wrote)})"
                )
                continue
            if (oid, prop) in items:  # the same value twice in one run: restore the first
                item.status, item.reason = "skipped", "restored by an earlier row of the run"
                continue
            items[(oid, prop)] = item
            planned.setdefault(oid, {})[prop] = before
        if ctx.dry_run or not planned:
            continue
        failures = _hook(pusher, "write_values", object_type, planned)
        restored: dict[str, dict[str, str]] = {}
        for (oid, prop), item in items.items():
            if oid in failures:
                item.status, item.reason = "failed", failures[oid]
            else:
                item.status = "done"
                restored.setdefault(oid, {})[prop] = item.restore
        for message in sorted(set(failures.values())):
            result.errors.append(f"values not restored: {message}")
        # The log says what the CRM holds now, so the next push compares with the truth.
        ctx.record(target, object_type, restored)
    tasks = [r for r in rows if r["action"] == "task_created" and r["new"]]
    if tasks:
        _archive_tasks(
            pusher,
            ctx,
            result,
            [(str(r["new"]), r["task_id"], r["account_id"]) for r in tasks],
        )


def _skipped_row(row: dict[str, Any], target: str, reason: str) -> UndoItem:
    what = "value" if row["action"] == "set" else "task"
    return UndoItem(
        what,
        target,
        row["object_type"],
        str(row["new"] if what == "task" else row["object_id"]),
        row["account_id"],
        row["property"],
        restore=row["old"] or "",
        status="skipped",
        reason=reason,
        task_id=row["task_id"],
    )


# -- uninstall ------------------------------------------------------------------------------


def uninstall(
    store: Store,
    config: Any,
    pusher_name: str,
    *,
    tasks: bool = False,
    dry_run: bool = True,
    transport: httpx.BaseTransport | None = None,
    registry: Any = None,
) -> UndoResult:
    """Remove what the hub created in one pusher's CRM (fields, group; open marked tasks with
    ``tasks``); a dry run (the default) only lists it. Callers that write hold the lock."""
    if registry is None:
        from hub.registry import get_registry

        registry = get_registry()
    cls = registry.pushers.get(pusher_name)
    if cls is None:
        raise ConfigError(
            f"no installed pusher is called {pusher_name!r}",
            hint=f"installed: {', '.join(sorted(registry.pushers)) or 'none'}",
        )
    settings = pusher_settings(config, cls)
    result = UndoResult("uninstall", pusher_name, dry_run=dry_run)
    started = time.perf_counter()
    if not dry_run:
        result.run_id = store.start_run("uninstall", settings.connection or cls.name)
    try:
        _with_pusher(
            store,
            config,
            cls,
            settings,
            result,
            transport,
            lambda pusher, ctx: _uninstall_with(pusher, ctx, result, tasks),
        )
    finally:
        _finish(store, result, started, f"uninstall {pusher_name}")
    return result


def _uninstall_with(pusher: Pusher, ctx: PushContext, result: UndoResult, tasks: bool) -> None:
    target = pusher.target
    marked: list[dict[str, str]] = []
    if pusher.handles_tasks:
        marked = _hook(pusher, "marked_tasks")
        if tasks:
            _archive_tasks(
                pusher,
                ctx,
                result,
                [(m["remote_id"], m.get("task_id"), None) for m in marked],
                {m["remote_id"]: m.get("subject") or "" for m in marked},
            )
        elif marked:
            result.notes.append(
                f"{plural(len(marked), 'open hub task')} stay in the CRM; --tasks archives them"
            )
    installed = _hook(pusher, "installed")
    result.removal = pusher.removal
    if installed and pusher.removal == "delete":
        result.notes.append(
            f"{pusher.name} cannot archive fields: deleting them deletes their values in the "
            "CRM too (the next push writes them again)"
        )
    items = []
    for entry in installed:
        item = UndoItem(
            "installed",
            target,
            entry.object_type,
            entry.name,
            current=entry.label,
            kind=entry.kind,
        )
        items.append(item)
        result.items.append(item)
    if ctx.dry_run:
        if not installed:
            result.notes.append("nothing the hub created is left in the CRM")
        return
    if installed:
        failures = _hook(pusher, "remove_installed", installed)
        for item in items:
            if item.object_id in failures:
                item.status, item.reason = "failed", failures[item.object_id]
                result.errors.append(f"{item.kind} {item.object_id}: {failures[item.object_id]}")
            else:
                item.status = "done"
    # Whatever was removed is written again, in full, by the next push.
    forget_target(ctx.store, target)
    result.notes.append("the next `hub push` installs the fields again and writes every value")


# -- shared ---------------------------------------------------------------------------------


def _archive_tasks(
    pusher: Pusher,
    ctx: PushContext,
    result: UndoResult,
    tasks: list[tuple[str, str | None, str | None]],
    subjects: dict[str, str] | None = None,
) -> None:
    """Archive the open ones of (CRM id, outbox id, account); skip the others."""
    states = _hook(pusher, "task_states", [t[0] for t in tasks])
    items: dict[str, UndoItem] = {}
    for remote, task_id, account_id in tasks:
        state = states.get(remote, "gone")
        item = UndoItem(
            "task",
            pusher.target,
            "tasks",
            remote,
            account_id,
            current=state,
            task_id=task_id,
        )
        task = ctx.outbox.get(task_id) if task_id else None
        item.label = (subjects or {}).get(remote) or (task or {}).get("subject") or ""
        result.items.append(item)
        if state != "open":
            item.status = "skipped"
            item.reason = (
                "completed in the CRM" if state == "completed" else "already deleted in the CRM"
            )
        elif remote in items:
            item.status, item.reason = "skipped", "listed twice"
        else:
            items[remote] = item
    if ctx.dry_run or not items:
        return
    failures = _hook(pusher, "archive_tasks", list(items))
    for remote, item in items.items():
        if remote in failures:
            item.status, item.reason = "failed", failures[remote]
            result.errors.append(f"task {remote} not archived: {failures[remote]}")
            continue
        item.status = "done"
        task = ctx.outbox.get(item.task_id) if item.task_id else None
        if task is not None and task["status"] == "pushed":
            ctx.outbox.revert(task["id"], ctx.now)


def _configured(config: Any, registry: Any) -> dict[str, tuple[type[Pusher], Any]]:
    """target → (pusher class, its settings) for the configured pushers."""
    settings = push_settings(config)
    out: dict[str, tuple[type[Pusher], Any]] = {}
    for cls in pusher_classes(settings, registry):
        pusher_config = pusher_settings(config, cls)
        out[f"{cls.name}:{pusher_config.connection or cls.name}"] = (cls, pusher_config)
    return out


def _with_pusher(
    store: Store,
    config: Any,
    cls: type[Pusher],
    settings: Any,
    result: UndoResult,
    transport: httpx.BaseTransport | None,
    step: Any,
) -> None:
    """Build the pusher with its connection's client, run ``step``, count and report."""
    push_result = PushResult(dry_run=result.dry_run)
    ctx = PushContext(
        store,
        config,
        push_settings(config),
        push_result,
        dry_run=result.dry_run,
        transport=transport,
    )
    client = None
    try:
        client = client_for(config, cls, settings, transport)
        step(cls(ctx, settings, client), ctx)
    except HubError as exc:
        result.status = "error"
        result.errors.append(f"{cls.name}: {exc}")
    except Exception as exc:  # noqa: BLE001 - close the run record, report in one line
        result.status = "error"
        result.errors.append(f"{cls.name}: internal error: {type(exc).__name__}: {exc}")
        log.exception("pusher %s crashed during %s", cls.name, result.kind)
    finally:
        result.writes += push_result.writes
        if client is not None:
            result.requests += client.stats.requests
            client.close()


def _hook(pusher: Pusher, name: str, *args: Any) -> Any:
    try:
        return getattr(pusher, name)(*args)
    except NotImplementedError:
        raise PushError(
            f"the {pusher.name} pusher cannot revert or uninstall (it has no {name} step)",
            hint="ask its plugin's author for the undo hooks of hub.push.Pusher",
        ) from None


def _finish(store: Store, result: UndoResult, started: float, what: str) -> None:
    if result.status == "ok" and (result.errors or any(i.status == "failed" for i in result.items)):
        result.status = "partial"
    if result.run_id is None:
        return
    at = clock.iso()
    rows = []
    for item in result.items:
        if item.status != "done":
            continue
        # The core's actions name no CRM's nouns: a removed item keeps the pusher's in kind.
        action = {"value": "set", "task": "task_archived", "installed": "removed"}[item.what]
        rows.append(
            {
                "run_id": result.run_id,
                "target": item.target,
                "action": action,
                "object_type": item.object_type,
                "object_id": item.object_id if item.what != "task" else None,
                "account_id": item.account_id,
                "property": item.property,
                "old": item.current if item.what == "value" else None,
                "new": item.restore if item.what == "value" else item.object_id,
                "task_id": item.task_id,
                "kind": item.kind or None,
                "at": at,
            }
        )
    insert_rows(store, rows)
    store.finish_run(
        result.run_id,
        status=result.status,
        records=len(rows),
        requests=result.requests,
        retries=0,
        error="; ".join(result.errors)[:2000] or None,
        note="; ".join([result.summary(), *result.notes])[:2000],
        duration_s=time.perf_counter() - started,
    )


def _show(value: str) -> str:
    if value == "":
        return "(unset)"
    return repr(value if len(value) <= 40 else value[:39] + "…")
