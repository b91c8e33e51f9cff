"""Running a push: build each configured pusher with its connection's client, read task
completions back, write health fields, deliver the outbox's tasks within the caps.

The core knows no CRM. It builds the connector of the connection a pusher writes through
(``[push.<pusher>] connection``, which must use the pusher's ``connector``) and hands the
pusher that connector's client, so a push shares the connection's auth and rate budget with
``hub sync``. Completions the pusher reads back are recorded here, with the playbook's
snooze. Which open tasks a push may create is decided here too: the most urgent first, at
most ``max_tasks_per_run`` per push and ``max_tasks_per_owner`` per owner in 24 hours (rows
a failed push left ``pushing`` count toward both), HIGH-priority tasks past the caps unless
``urgent_bypass_caps = false``; each held task is reported with the cap that held it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from typing import Any

import httpx

from hub.errors import ConfigError, HubError
from hub.http import HttpClient
from hub.playbooks import PRIORITIES, load_playbooks
from hub.push.access import access_problems, unowned_accounts, unowned_warning
from hub.push.context import PushContext
from hub.push.history import record_history
from hub.push.pusher import Pusher
from hub.push.results import PushResult, TaskAction
from hub.push.scope import scope_settings, scoped_accounts
from hub.push.settings import PushSettings, push_settings, pusher_classes, pusher_settings
from hub.registry import get_registry
from hub.store import Store
from hub.text import plural

log = logging.getLogger("hub.push")


def run_push(
    store: Store,
    config: Any,
    *,
    dry_run: bool = False,
    transport: httpx.BaseTransport | None = None,
    registry: Any = None,
) -> PushResult:
    """Run every configured pusher; records a run (kind ``push``) unless ``dry_run``.

    Callers that write (``hub push``) hold the database lock around it; ``hub run`` holds it
    for the whole pipeline.
    """
    settings = push_settings(config)
    result = PushResult(dry_run=dry_run)
    if not settings.enabled:
        result.status = "disabled"
        return result
    classes = pusher_classes(settings, registry)
    configured = [(cls, pusher_settings(config, cls)) for cls in classes]
    started = time.perf_counter()
    connections = ",".join(sorted({s.connection or c.name for c, s in configured})) or None
    if not dry_run:
        result.run_id = store.start_run("push", connections)
    ctx = PushContext(store, config, settings, result, dry_run=dry_run, transport=transport)
    result.caps = caps_text(settings)
    result.note(f"scope: {scope_settings(config).describe()} ([push.scope])")
    if not dry_run:
        # The real push makes the dry run's access check for every pusher before the first
        # one writes: a scope one CRM lacks must not leave another CRM half-written.
        refused = preflight(ctx, config, configured, transport)
        if refused:
            result.status = "error"
            for problem in refused:
                result.error(problem)
            result.note("nothing was written: fix the access above and push again")
            configured = []
    for cls, pusher_config in configured:
        client = None
        marks = (len(result.changes), len(result.tasks), len(result.held_tasks))
        try:
            client = client_for(config, cls, pusher_config, transport)
            pusher = cls(ctx, pusher_config, client)
            if dry_run:
                # The preview says up front what would stop the real push (a missing scope).
                for problem in access_problems(pusher):
                    result.error(problem)
                warning = unowned_warning(pusher, unowned_accounts(ctx, pusher))
                if warning:
                    result.note(warning)
            try:
                _run_one(pusher, ctx)
            finally:
                # History keeps whose write each row is, so a revert finds the right pusher.
                for change in result.changes[marks[0] :]:
                    change.target = pusher.target
                for action in result.tasks[marks[1] :]:
                    action.target = pusher.target
                    action.object_type = action.object_type or pusher.record_type
                for action in result.held_tasks[marks[2] :]:
                    action.target = pusher.target
                    action.object_type = pusher.record_type
                    action.object_id = pusher.object_id(ctx.accounts().get(action.account_id) or {})
        except HubError as exc:
            result.status = "error"
            result.error(f"{cls.name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - close the run record, report in one line
            result.status = "error"
            result.error(f"{cls.name}: internal error: {type(exc).__name__}: {exc}")
            log.exception("pusher %s crashed", cls.name)
        finally:
            if client is not None:
                result.requests += client.stats.requests
                result.retries += client.stats.retries
                client.close()
    if result.status == "ok" and (
        result.errors or result.failed or any(t.action == "failed" for t in result.tasks)
    ):
        result.status = "partial"
    result.duration_s = time.perf_counter() - started
    if result.run_id is not None:
        record_history(store, result)
        store.finish_run(
            result.run_id,
            status=result.status,
            records=len(result.written) + sum(1 for t in result.tasks if t.action == "created"),
            requests=result.requests,
            retries=result.retries,
            error="; ".join(result.errors)[:2000] or None,
            note="; ".join([result.summary(), *result.notes])[:2000],
            duration_s=result.duration_s,
        )
    return result


def preflight(
    ctx: PushContext,
    config: Any,
    configured: list[tuple[type[Pusher], Any]],
    transport: httpx.BaseTransport | None,
) -> list[str]:
    """Every pusher's missing permissions (reads only), before anything is written.

    A pusher that cannot even be built is left to the push itself, which reports it."""
    problems: list[str] = []
    for cls, pusher_config in configured:
        client = None
        try:
            client = client_for(config, cls, pusher_config, transport)
            problems += access_problems(cls(ctx, pusher_config, client))
        except HubError:
            continue
        finally:
            if client is not None:
                ctx.result.requests += client.stats.requests
                ctx.result.retries += client.stats.retries
                client.close()
    return problems


def client_for(
    config: Any, cls: type[Pusher], settings: Any, transport: httpx.BaseTransport | None
) -> HttpClient | None:
    """The pusher's connection's own client (auth, secrets, rate budget), or None."""
    if cls.connector is None:
        return None
    name = settings.connection or cls.name
    conn = config.connection(name)
    if conn.connector != cls.connector:
        raise ConfigError(
            f"[push.{cls.name}] connection {name!r} uses connector {conn.connector!r}, "
            f"not {cls.connector!r}",
            hint=f"set [push.{cls.name}] connection to a {cls.connector} connection",
        )
    from hub.sync import build_connector

    return build_connector(config, name).client(transport=transport)


_client_for = client_for  # the name tests of other pushers import


def _run_one(pusher: Pusher, ctx: PushContext) -> None:
    settings, result = ctx.settings, ctx.result
    tasks = settings.tasks and pusher.handles_tasks
    if tasks:
        record_completions(pusher, ctx)
    if settings.properties:
        scoped = scoped_accounts(ctx)
        pusher.push_properties({a: v for a, v in ctx.health_values().items() if a in scoped})
    if tasks:
        reconcile = ctx.outbox.tasks(["pushing"])
        create, held = select_tasks(ctx, settings, reconcile)
        result.held += len(held)
        result.held_tasks += held
        mark = len(result.tasks)
        pusher.push_tasks(reconcile, create)
        # Rows left ``pushing`` by an earlier push are shown apart from this push's new tasks.
        recovered = {t["id"] for t in reconcile}
        for action in result.tasks[mark:]:
            action.recovered = action.task_id in recovered


def record_completions(pusher: Pusher, ctx: PushContext) -> None:
    """Ask the pusher which delivered tasks are done in the CRM; complete and snooze them."""
    pushed = [
        t
        for t in ctx.outbox.tasks(["pushed"])
        if t.get("remote_id") and (t.get("target") in (None, "", pusher.name))
    ]
    if not pushed:
        return
    done = pusher.read_completions(pushed)
    if not done:
        return
    setup = None
    for task in pushed:
        if task["id"] not in done:
            continue
        ctx.result.completed.append(task["id"])
        if ctx.dry_run:
            continue
        if setup is None:
            setup = load_playbooks(ctx.config)
        ctx.outbox.complete(
            task["id"], done[task["id"]] or ctx.now, setup.snooze_days(task["playbook"])
        )


def select_tasks(
    ctx: PushContext,
    settings: PushSettings,
    reconcile: list[dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], list[TaskAction]]:
    """Open tasks this push may create (most urgent first, within the caps), and those held.

    Tasks delivered in the last 24 hours and rows an earlier push left ``pushing`` (settled
    by this push) count toward each owner's cap and the per-run cap. With
    ``urgent_bypass_caps`` (the default) a HIGH-priority task is never held; it still counts.
    Each held task comes back as a ``TaskAction`` (action ``held``) whose ``error`` says why.
    """
    accounts = ctx.accounts()
    scoped = scoped_accounts(ctx)
    churn_scoped = scoped_accounts(ctx, churn_followup=True)
    churn_playbooks = {
        name for name, cls in get_registry().playbooks.items() if getattr(cls, "churn", False)
    }

    def in_scope(task: dict[str, Any]) -> bool:
        if task["account_id"] in scoped:
            return True
        return task["playbook"] in churn_playbooks and task["account_id"] in churn_scoped

    open_tasks = sorted(
        (t for t in ctx.outbox.tasks(["open"]) if in_scope(t)),
        key=lambda t: (
            -PRIORITIES.index(t["priority"]) if t["priority"] in PRIORITIES else 0,
            t["due_at"] or "",
            t["created_at"] or "",
            t["id"],
        ),
    )
    reconcile = reconcile or []
    per_owner: Counter[str] = Counter()
    if settings.max_tasks_per_owner:
        for task in [*ctx.outbox.pushed_since(ctx.now - dt.timedelta(days=1)), *reconcile]:
            per_owner[_owner_key(ctx, task, accounts)] += 1
    max_run, max_owner = settings.max_tasks_per_run, settings.max_tasks_per_owner
    in_run = len(reconcile)
    chosen: list[dict[str, Any]] = []
    held: list[TaskAction] = []
    for task in open_tasks:
        owner = _owner_key(ctx, task, accounts)
        urgent = settings.urgent_bypass_caps and task["priority"] == PRIORITIES[-1]
        reason = None
        if max_run and in_run >= max_run:
            reason = f"per-push cap: {plural(in_run, 'task')} in this push, max_tasks_per_run = {max_run}"
        elif max_owner and per_owner[owner] >= max_owner:
            reason = (
                f"per-owner cap: this owner has {plural(per_owner[owner], 'task')} in 24 hours, "
                f"max_tasks_per_owner = {max_owner}"
            )
        if reason and not urgent:
            held.append(_held(ctx, task, accounts, reason))
            continue
        per_owner[owner] += 1
        in_run += 1
        chosen.append(task)
    return chosen, held


def _held(
    ctx: PushContext, task: dict[str, Any], accounts: dict[str, Any], reason: str
) -> TaskAction:
    return TaskAction(
        task_id=task["id"],
        account_id=task["account_id"],
        object_id=None,
        playbook=task["playbook"],
        subject=task["subject"],
        owner_id=ctx.owner_for(task, accounts.get(task["account_id"])),
        due_at=task["due_at"],
        priority=task["priority"],
        action="held",
        error=reason,
    )


def _owner_key(ctx: PushContext, task: dict[str, Any], accounts: dict[str, Any]) -> str:
    return ctx.owner_for(task, accounts.get(task["account_id"])) or "(unassigned)"


def caps_text(settings: PushSettings) -> str:
    """The caps in words, for ``hub push`` and its dry run."""
    per_run = (
        f"at most {plural(settings.max_tasks_per_run, 'new task')} per push"
        if settings.max_tasks_per_run
        else "no limit per push"
    )
    per_owner = (
        f"{plural(settings.max_tasks_per_owner, 'task')} per owner in 24 hours"
        if settings.max_tasks_per_owner
        else "no limit per owner"
    )
    return (
        f"task caps: {per_run}, {per_owner} "
        "([push] max_tasks_per_run, max_tasks_per_owner); the most urgent go first"
        + (
            "; HIGH priority is never held (urgent_bypass_caps)"
            if settings.urgent_bypass_caps
            else ""
        )
    )
