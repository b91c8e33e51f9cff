"""Checks a push makes before it writes: may the connection do what the push will do, and
will every task have an owner.

``access_problems(pusher)`` asks the pusher (``Pusher.check_access``) for missing
permissions; ``unowned_accounts(ctx)`` lists the accounts in scope without an owner when
tasks are on and the pusher has no ``fallback_owner_id``. ``check_push(config)`` runs both
for every configured pusher for ``hub check``; ``hub push --dry-run`` runs them before its
preview (``hub.push.engine``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hub.errors import HubError
from hub.push.context import PushContext
from hub.push.pusher import Pusher
from hub.push.results import PushResult
from hub.push.scope import scoped_accounts
from hub.push.settings import push_settings, pusher_classes, pusher_settings
from hub.text import plural

SHOW_NAMES = 5


@dataclass
class PushCheck:
    """One pusher's verdict: the connection it writes through, problems, warnings."""

    pusher: str
    connection: str
    problems: list[str]
    warnings: list[str]
    seconds: float = 0.0


def access_problems(pusher: Pusher) -> list[str]:
    """What the pusher says it may not do (each line names the fix)."""
    return [f"{pusher.name}: {p}" for p in pusher.check_access()]


def unowned_accounts(ctx: PushContext, pusher: Pusher) -> list[str]:
    """Names of in-scope accounts whose tasks would go unassigned (none when tasks are off,
    the pusher delivers none, or it has a ``fallback_owner_id``)."""
    if not (ctx.settings.tasks and pusher.handles_tasks):
        return []
    if getattr(pusher.settings, "fallback_owner_id", None):
        return []
    scoped = scoped_accounts(ctx)
    return sorted(
        (a.get("name") or a["id"])
        for a in ctx.accounts().values()
        if a["id"] in scoped and not a.get("owner_id") and pusher.object_id(a) is not None
    )


def unowned_warning(pusher: Pusher, names: list[str]) -> str | None:
    if not names:
        return None
    shown = ", ".join(names[:SHOW_NAMES]) + (" …" if len(names) > SHOW_NAMES else "")
    return (
        f"{plural(len(names), 'account', 'accounts')} without an owner ({shown}): their tasks "
        f"would be unassigned; set [push.{pusher.name}] fallback_owner_id"
    )


def check_push(
    config: Any,
    *,
    database: str | None = None,
    transport: httpx.BaseTransport | None = None,
    skip_connections: set[str] | None = None,
) -> list[PushCheck]:
    """Every configured pusher's access and owner check (reads only; nothing is written).

    The database is read only when it exists (``hub check`` runs before the first sync).
    ``skip_connections``: connections that already failed their own check.
    """
    from hub.push.engine import client_for
    from hub.store import Store

    settings = push_settings(config)
    if not settings.enabled:
        return []
    path = database or config.database_path()
    exists = bool(path) and Path(path).exists()
    # Before the first sync there is no database: the access check needs none.
    # A check never changes the database: no migration (reads only what the first ones made).
    store = Store(path, migrate=False) if exists else Store(":memory:")
    out = []
    try:
        for cls in pusher_classes(settings):
            pusher_config = pusher_settings(config, cls)
            connection = pusher_config.connection or cls.name
            if cls.connector is not None and connection in (skip_connections or set()):
                continue
            if settings.pushers is None and connection not in config.connections:
                continue  # a default pusher with nothing to write through: push is not set up
            started = time.perf_counter()
            check = PushCheck(cls.name, connection, [], [])
            ctx = PushContext(store, config, settings, PushResult(dry_run=True), dry_run=True)
            client = None
            try:
                client = client_for(config, cls, pusher_config, transport)
                pusher = cls(ctx, pusher_config, client)
                check.problems = list(pusher.check_access())
                if exists:
                    warning = unowned_warning(pusher, unowned_accounts(ctx, pusher))
                    if warning:
                        check.warnings.append(warning)
            except HubError as exc:
                check.problems.append(str(exc))
            finally:
                if client is not None:
                    client.close()
            check.seconds = round(time.perf_counter() - started, 3)
            out.append(check)
    finally:
        store.close()
    return out
