"""Push-back: writing health fields and the task outbox to a CRM, only what changed.

A pusher is a ``Pusher`` subclass registered with ``register_pushers`` (the built-in one is
``plugins.hubspot_pusher``). ``run_push(store, config)`` builds each pusher named in
``[push] pushers`` with a ``PushContext`` and calls ``run()``; the pusher reads what to write
from the hub's tables through the context and reports every write (or planned write, in a
dry run) into the shared ``PushResult``.

The context gives every pusher the same three services:

* ``health_values()``: per account with a CRM id, the health fields as text (score, band,
  trends, drivers, model, segment, the override in effect) — one shape for every CRM;
* the push log (``_hub_push_log``): ``logged()`` says what was last written successfully per
  object and property, ``record()`` stores new successes; a pusher writes a value only when
  it differs from the log, so a re-run with nothing changed writes nothing;
* the task outbox (``hub.playbooks.Outbox``) with its ``open → pushing → pushed`` states,
  committed around each create so a killed push never creates a task twice.

A dry run (``dry_run=True``) may read from the CRM but must not write to it or to the
database: pushers fill ``PushResult`` with planned changes (old → new) and tasks to create,
and ``PushContext.write_guard()`` refuses a write outright.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub import clock
from hub.config import validate_section
from hub.errors import ConfigError, HubError, PushError, StartupError
from hub.playbooks import Outbox, load_playbooks
from hub.store import Store

log = logging.getLogger("hub.push")

HEALTH_FIELDS = (
    "score",
    "band",
    "trend_7d",
    "trend_30d",
    "drivers",
    "updated_at",
    "model",
    "segment",
    "override",
    "override_reason",
    "override_until",
)
"""The health fields every pusher gets from ``health_values()`` (values are text, "" = unset)."""


class PushSettings(BaseModel):
    """``[push]`` of hub.toml."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    connection: str = "hubspot"
    """The connection whose credentials (and rate budget) the pusher uses."""
    pushers: list[str] = Field(default_factory=lambda: ["hubspot"])
    properties: bool = True
    """Write the health fields on CRM companies."""
    tasks: bool = True
    """Create the outbox's tasks in the CRM (and read their completion back)."""
    fallback_owner_id: str | None = None
    """Owner for tasks of companies without an owner; unset = the task stays unassigned."""
    batch_size: int = Field(default=100, ge=1, le=100)
    record_retries: int = Field(default=2, ge=0, le=5)
    """How often a record that failed with a retriable error inside a 207 is retried."""
    record_retry_delay: float = Field(default=1.0, ge=0, le=60)
    verify_associations: bool = True
    task_type: Literal["TODO", "CALL", "EMAIL"] = "TODO"
    max_tasks_per_run: int = Field(default=0, ge=0)
    """Create at most this many new tasks per push (0 = no limit); the rest wait."""
    drivers_max_chars: int = Field(default=1000, ge=50, le=65000)

    @field_validator("fallback_owner_id", mode="before")
    @classmethod
    def _owner_text(cls, value: Any) -> Any:
        # TOML users write owner ids as numbers as often as text.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value or None


def push_settings(config: Any) -> PushSettings:
    """Validate ``[push]``; errors name the key and the fix."""
    raw = dict(getattr(config, "push", None) or {})
    origin = getattr(config, "path", None) or "hub.toml"
    return validate_section(PushSettings, raw, "push", origin)


# -- results ----------------------------------------------------------------------------------


@dataclass
class PropertyChange:
    """One property of one CRM object: what it was (last push or CRM value) and will be."""

    object_type: str
    object_id: str
    account_id: str
    account_name: str
    property: str
    old: str
    new: str
    status: str = "planned"  # planned | written | failed
    error: str | None = None


@dataclass
class TaskAction:
    """What happened (or would happen) to one outbox task."""

    task_id: str
    account_id: str
    company_id: str | None
    playbook: str
    subject: str
    owner_id: str | None
    due_at: str | None
    priority: str | None
    action: str  # create | reconcile | created | found | cancelled | failed | completed
    remote_id: str | None = None
    error: str | None = None


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
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    writes: int = 0
    """Write requests sent to the CRM (always 0 in a dry run)."""
    duration_s: float = 0.0

    def error(self, text: str) -> None:
        if text not in self.errors:
            self.errors.append(text)

    @property
    def written(self) -> list[PropertyChange]:
        return [c for c in self.changes if c.status == "written"]

    @property
    def failed(self) -> list[PropertyChange]:
        return [c for c in self.changes if c.status == "failed"]

    def companies_changed(self) -> int:
        return len({c.object_id for c in self.changes})

    def summary(self) -> str:
        verb = "would write" if self.dry_run else "wrote"
        ok = self.changes if self.dry_run else self.written
        created = [
            t
            for t in self.tasks
            if t.action in (("create", "reconcile") if self.dry_run else ("created", "found"))
        ]
        parts = [
            f"{verb} {len(ok)} values on {len({c.object_id for c in ok})} companies",
            f"{'would create' if self.dry_run else 'pushed'} {len(created)} tasks",
        ]
        if self.setup:
            parts.insert(0, f"setup: {len(self.setup)} actions")
        if self.completed:
            parts.append(f"{len(self.completed)} tasks completed in the CRM")
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
            "errors": list(self.errors),
            "requests": self.requests,
            "retries": self.retries,
            "writes": self.writes,
            "summary": self.summary(),
        }


# -- the context and the base class ------------------------------------------------------------


@dataclass
class PushContext:
    """What a pusher works with: store, config, settings, the outbox, the result, the clock."""

    store: Store
    config: Any
    settings: PushSettings
    result: PushResult
    dry_run: bool = False
    transport: httpx.BaseTransport | None = None
    now: dt.datetime = field(default_factory=clock.now)

    def __post_init__(self) -> None:
        self.outbox = Outbox(self.store)
        self._snooze: Any = None

    # guard ------------------------------------------------------------------------------

    def write_guard(self, what: str) -> None:
        """Raise if a dry run is about to write (a pusher bug, never a user error)."""
        if self.dry_run:
            raise PushError(f"internal error: a dry run tried to write ({what})")

    # health -----------------------------------------------------------------------------

    def accounts(self) -> dict[str, dict[str, Any]]:
        """Accounts by id (``facts`` left as JSON text)."""
        return {r["id"]: dict(r) for r in self.store.db.query("SELECT * FROM accounts")}

    def health_values(self) -> dict[str, dict[str, Any]]:
        """Per account with a CRM company id: ``{"crm_id", "name", "values": {field: text}}``."""
        out: dict[str, dict[str, Any]] = {}
        rows = self.store.db.query(
            "SELECT a.id AS account_id, a.name, a.hubspot_company_id, h.score, h.band, "
            "h.trend_7d, h.trend_30d, h.drivers, h.computed_at, h.model, h.segment, "
            "h.override_value, h.override_reason, h.override_until "
            "FROM health_scores h JOIN accounts a ON a.id = h.account_id "
            "WHERE a.hubspot_company_id IS NOT NULL AND a.hubspot_company_id != '' "
            "ORDER BY a.hubspot_company_id"
        )
        limit = self.settings.drivers_max_chars
        for row in rows:
            if row["score"] is None:
                continue
            drivers = _loads(row["drivers"])
            if isinstance(drivers, list):
                drivers_text = "; ".join(str(d) for d in drivers if d)
            else:
                drivers_text = str(drivers or "")
            if len(drivers_text) > limit:
                drivers_text = drivers_text[: limit - 1].rstrip() + "…"
            # The health engine keeps override_* only while the override is in force.
            active = row["override_value"] is not None
            values = {
                "score": _int_text(row["score"]),
                "band": str(row["band"] or "").lower(),
                "trend_7d": _int_text(row["trend_7d"]),
                "trend_30d": _int_text(row["trend_30d"]),
                "drivers": drivers_text,
                "updated_at": ms_iso(row["computed_at"]),
                "model": str(row["model"] or ""),
                "segment": str(row["segment"] or ""),
                "override": _int_text(row["override_value"]) if active else "",
                "override_reason": str(row["override_reason"] or "") if active else "",
                "override_until": _date_text(row["override_until"]) if active else "",
            }
            out[row["account_id"]] = {
                "crm_id": str(row["hubspot_company_id"]),
                "name": row["name"] or "",
                "values": values,
            }
        return out

    # push log ----------------------------------------------------------------------------

    def logged(self, target: str, object_type: str) -> dict[str, dict[str, str]]:
        """object id → {property: value last written successfully}."""
        out: dict[str, dict[str, str]] = {}
        for row in self.store.db.execute(
            "SELECT object_id, property, value FROM _hub_push_log WHERE target = ? AND object_type = ?",
            [target, object_type],
        ):
            out.setdefault(row[0], {})[row[1]] = row[2] if row[2] is not None else ""
        return out

    def record(self, target: str, object_type: str, values: dict[str, dict[str, str]]) -> None:
        """Store successful writes (object id → {property: value}) in one transaction."""
        self.write_guard("push log")
        at = clock.iso()
        rows = [
            (target, object_type, oid, prop, value, at)
            for oid, props in values.items()
            for prop, value in props.items()
        ]
        if not rows:
            return
        with self.store.db.atomic():
            self.store.db.conn.executemany(
                "INSERT INTO _hub_push_log (target, object_type, object_id, property, value, pushed_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(target, object_type, object_id, property) "
                "DO UPDATE SET value = excluded.value, pushed_at = excluded.pushed_at",
                rows,
            )

    def forget(
        self,
        target: str,
        object_type: str,
        *,
        object_id: str | None = None,
        prop: str | None = None,
    ) -> None:
        """Drop log rows (all, one object's or one property's) so those values are sent again."""
        self.write_guard("push log")
        where, params = "target = ? AND object_type = ?", [target, object_type]
        if object_id is not None:
            where, params = where + " AND object_id = ?", [*params, object_id]
        if prop is not None:
            where, params = where + " AND property = ?", [*params, prop]
        with self.store.db.atomic():
            self.store.db.execute(f"DELETE FROM _hub_push_log WHERE {where}", params)

    # tasks --------------------------------------------------------------------------------

    def snooze_days(self, playbook: str) -> int:
        """How long a completed task of ``playbook`` stays snoozed."""
        if self._snooze is None:
            try:
                self._snooze = load_playbooks(self.config)
            except HubError:
                self._snooze = False
        if not self._snooze:
            return 30
        return self._snooze.snooze_days(playbook)

    def owner_for(self, task: dict[str, Any], account: dict[str, Any] | None) -> str | None:
        """Current company owner, else the owner stored with the task, else the fallback."""
        owner = (account or {}).get("owner_id") or task.get("owner_id")
        return str(owner) if owner else self.settings.fallback_owner_id


class Pusher:
    """Base class of a write-back target plugin (``register_pushers``).

    Subclasses set ``name`` and implement ``run()``, reading from ``self.ctx`` and reporting
    into ``self.ctx.result``; a ``HubError`` raised from ``run()`` is recorded as the push's
    error. ``target`` names the push log's namespace (one per pusher and connection).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""

    def __init__(self, ctx: PushContext):
        self.ctx = ctx

    def __repr__(self) -> str:
        return f"<Pusher {self.name}>"

    @property
    def target(self) -> str:
        return f"{self.name}:{self.ctx.settings.connection}"

    def run(self) -> None:
        raise NotImplementedError


# -- running ------------------------------------------------------------------------------------


def run_push(
    store: Store,
    config: Any,
    *,
    dry_run: bool = False,
    transport: httpx.BaseTransport | None = None,
    registry: Any = None,
) -> PushResult:
    """Run every configured pusher; records a run (kind ``push``) unless ``dry_run``."""
    settings = push_settings(config)
    result = PushResult(dry_run=dry_run)
    if not settings.enabled:
        result.status = "disabled"
        return result
    if registry is None:
        from hub.registry import get_registry

        registry = get_registry()
    classes = []
    for name in settings.pushers:
        cls = registry.pushers.get(name)
        if cls is None:
            raise ConfigError(
                f"[push] pushers names {name!r}, which no installed plugin provides",
                hint=f"installed: {', '.join(sorted(registry.pushers)) or 'none'}",
            )
        if not (isinstance(cls, type) and issubclass(cls, Pusher)):
            raise StartupError(f"register_pushers got {cls!r}, not a hub.push.Pusher subclass")
        classes.append(cls)
    started = time.perf_counter()
    if not dry_run:
        result.run_id = store.start_run("push", settings.connection)
    ctx = PushContext(store, config, settings, result, dry_run=dry_run, transport=transport)
    for cls in classes:
        try:
            cls(ctx).run()
        except HubError as exc:
            result.status = "error"
            result.error(f"{cls.name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - close the run record, report in one line
            result.status = "error"
            result.error(f"{cls.name}: internal error: {type(exc).__name__}: {exc}")
            log.exception("pusher %s crashed", cls.name)
    if result.status == "ok" and (
        result.errors or result.failed or any(t.action == "failed" for t in result.tasks)
    ):
        result.status = "partial"
    result.duration_s = time.perf_counter() - started
    if result.run_id is not None:
        store.finish_run(
            result.run_id,
            status=result.status,
            records=len(result.written) + sum(1 for t in result.tasks if t.action == "created"),
            requests=result.requests,
            retries=result.retries,
            error="; ".join(result.errors)[:2000] or None,
            note=result.summary(),
            duration_s=result.duration_s,
        )
    return result


# -- helpers ------------------------------------------------------------------------------------


def _loads(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _int_text(value: Any) -> str:
    if value is None or value == "":
        return ""
    try:
        return str(int(round(float(value))))
    except (TypeError, ValueError):
        return ""


def _date_text(value: Any) -> str:
    """YYYY-MM-DD of a date or datetime text ("" when unset or unreadable)."""
    if value in (None, ""):
        return ""
    text = str(value)
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        return ""


def ms_iso(value: Any) -> str:
    """ISO 8601 UTC with milliseconds, the way HubSpot returns datetimes ("" when unset)."""
    try:
        parsed = clock.parse(value) if value not in (None, "") else None
    except ValueError:
        parsed = None
    if parsed is None:
        return ""
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


__all__ = [
    "HEALTH_FIELDS",
    "PropertyChange",
    "PushContext",
    "PushResult",
    "PushSettings",
    "Pusher",
    "TaskAction",
    "ms_iso",
    "push_settings",
    "run_push",
]
