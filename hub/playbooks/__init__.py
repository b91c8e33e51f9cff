"""Playbooks: rules on health scores and timeline events that open follow-up tasks.

A playbook is a ``Playbook`` subclass registered with ``register_playbooks``. It looks at the
hub's tables through a ``PlaybookContext`` and yields ``Trigger`` objects ("account X needs a
follow-up because Y"); the engine turns triggers into rows of the ``tasks`` table, the
*outbox* that pushers (``hub.push``) deliver to the CRM::

    class SlowTickets(Playbook):
        name = "slow_tickets"
        title = "Tickets take too long"
        options = {"hours": 48, "lookback_days": 14}
        subject = "Slow tickets at {account_name}"
        body = "Median resolution {median} h (target {hours} h)." + STANDARD_BODY_TAIL
        placeholders = ("median", "hours")

        def evaluate(self, ctx):
            for account_id, events in ctx.events(["ticket_solved"], days=self.opt("lookback_days")).items():
                ...
                yield Trigger(account_id, reason="slow_tickets", detail="…", evidence=events,
                              values={"median": 52, "hours": self.opt("hours")})

Every playbook is configured in ``hub.toml`` ``[playbooks.<name>]`` (``enabled``,
``due_in_days``, ``priority``, ``subject``, ``body``, ``snooze_days`` and its own thresholds)
and can be switched off. Templates use ``{placeholders}``; an unknown placeholder is a
config error at load time, not a broken task at run time.

Outbox rules (``Outbox``):

* a task is deduplicated on (account, playbook, reason) while it is ``open``, ``pushing`` or
  ``pushed``: re-running the playbooks never opens it twice;
* once the CRM user completes it (read back from HubSpot tasks: the raw ``tasks`` stream of
  the push connection, or the pusher asking HubSpot directly) it is ``completed`` and
  snoozed for ``snooze_days``: the same (account, playbook, reason) does not reappear before
  ``snoozed_until``; a task deleted in HubSpot counts as dismissed, i.e. completed;
* an ``open`` task that was never pushed is ``cancelled`` when its playbook no longer fires
  for it (the problem went away before anyone saw it) or the playbook was switched off.

``run_playbooks(store, config)`` does all of that and records a run (kind ``playbooks``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import string
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from hub import clock
from hub.config import validate_section
from hub.errors import ConfigError, HubError, StartupError
from hub.store import Store, raw_table_name
from hub.vocabulary import vocabulary

log = logging.getLogger("hub.playbooks")

PRIORITIES = ("LOW", "MEDIUM", "HIGH")
ACTIVE_STATUSES = ("open", "pushing", "pushed")
"""Statuses in which a task blocks a new one for the same (account, playbook, reason)."""

# Options every playbook has, with their defaults (a playbook may change the defaults).
COMMON_OPTIONS: dict[str, Any] = {
    "enabled": True,
    "due_in_days": 3,
    "priority": "MEDIUM",
    "snooze_days": None,  # None = [playbooks] snooze_days
    "subject": None,  # None = the playbook's default template
    "body": None,
}

# Placeholders every template may use.
COMMON_PLACEHOLDERS = (
    "account_name",
    "account_id",
    "domain",
    "owner_name",
    "score",
    "band",
    "trend_7d",
    "trend_30d",
    "mrr",
    "seats",
    "renewal_date",
    "drivers",
    "evidence",
    "detail",
    "reason",
    "playbook",
)

STANDARD_BODY_TAIL = (
    "\n\nHealth: {score} ({band}), 7-day change {trend_7d}.\n"
    "Drivers:\n{drivers}\n\nEvidence:\n{evidence}"
)
"""What the built-in body templates end with: the score, its drivers and the evidence links."""

# Event types that count as trouble: evidence for state-based playbooks (band, score, renewal).


class PlaybooksSection(BaseModel):
    """``[playbooks]`` scalars (the ``[playbooks.<name>]`` tables are per playbook)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Switch every playbook off at once."""
    snooze_days: int = Field(default=30, ge=0)
    """After a task is completed, the same task does not reappear for this many days."""
    evidence_limit: int = Field(default=5, ge=0, le=50)
    """How many evidence events (with links) a task body lists."""


# -- triggers and context ---------------------------------------------------------------------


@dataclass
class Trigger:
    """One finding of a playbook: this account needs this follow-up, for this reason.

    ``reason`` is the dedupe key within (account, playbook): keep it stable for a condition
    that persists (``"score_drop"``) and specific for a distinct problem (``"invoice in_123"``).
    ``detail`` is a one-line "why" (``{detail}`` in templates); ``evidence`` are event rows
    (dicts with ``id``, ``type``, ``ts``, ``summary``, ``link``); ``values`` fill the
    playbook's own placeholders.
    """

    account_id: str
    reason: str
    detail: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


class PlaybookContext:
    """Read access to accounts, health and events for playbooks; cached per run.

    ``now`` is ``hub.clock.now()`` at the start of the run, ``today`` its date.
    """

    def __init__(self, store: Store, now: dt.datetime | None = None):
        self.store = store
        self.db = store.db
        self.now = now or clock.now()
        self.today = self.now.date()
        self._accounts: dict[str, dict[str, Any]] | None = None
        self._health: dict[str, dict[str, Any]] | None = None
        self._history: dict[str, list[dict[str, Any]]] | None = None
        self._events: dict[tuple[tuple[str, ...], str], dict[str, list[dict[str, Any]]]] = {}

    # accounts and health ----------------------------------------------------------------

    @property
    def accounts(self) -> dict[str, dict[str, Any]]:
        """Every account by id, ``facts`` decoded."""
        if self._accounts is None:
            out = {}
            for row in self.db.query("SELECT * FROM accounts"):
                row = dict(row)
                row["facts"] = _loads(row.get("facts"), {})
                out[row["id"]] = row
            self._accounts = out
        return self._accounts

    @property
    def health(self) -> dict[str, dict[str, Any]]:
        """Current health score rows by account id, ``drivers`` decoded to a list."""
        if self._health is None:
            out = {}
            for row in self.db.query("SELECT * FROM health_scores"):
                row = dict(row)
                row["drivers"] = _loads(row.get("drivers"), [])
                out[row["account_id"]] = row
            self._health = out
        return self._health

    def history(self, account_id: str) -> list[dict[str, Any]]:
        """Daily health history of one account, oldest day first."""
        if self._history is None:
            grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in self.db.query(
                "SELECT account_id, day, score, band FROM health_history ORDER BY account_id, day"
            ):
                grouped[row["account_id"]].append(dict(row))
            self._history = grouped
        return self._history.get(account_id, [])

    def fact(self, account_id: str, name: str, default: Any = None) -> Any:
        """An account fact: a column of ``accounts`` or a key of its ``facts`` JSON."""
        account = self.accounts.get(account_id) or {}
        if account.get(name) is not None:
            return account[name]
        return account.get("facts", {}).get(name, default)

    # events -------------------------------------------------------------------------------

    def since(self, days: float) -> str:
        """ISO text of ``now - days`` (events at or after it are "within ``days``")."""
        return clock.iso(self.now - dt.timedelta(days=days))

    def events(
        self, types: Iterable[str], *, days: float | None = None, since: str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Events of ``types`` at or after ``since`` (or within ``days``), oldest first, by account.

        Only events of known accounts, never in the future. ``attrs`` is decoded.
        """
        types = tuple(sorted(set(types)))
        if since is None:
            since = self.since(days) if days is not None else ""
        key = (types, since)
        if key not in self._events:
            marks = ",".join("?" * len(types))
            grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
            accounts = self.accounts
            upto = clock.iso(self.now)
            for row in self.db.query(
                "SELECT id, account_id, ts, type, summary, attrs, link FROM events "
                f"WHERE type IN ({marks}) AND ts >= ? AND ts <= ? AND account_id IS NOT NULL "
                "ORDER BY ts, id",
                [*types, since, upto],
            ):
                if row["account_id"] not in accounts:
                    continue
                row = dict(row)
                row["attrs"] = _loads(row.get("attrs"), {})
                grouped[row["account_id"]].append(row)
            self._events[key] = grouped
        return self._events[key]

    def account_events(
        self, account_id: str, types: Iterable[str], *, days: float | None = None
    ) -> list[dict[str, Any]]:
        """One account's events of ``types`` (within ``days``), oldest first."""
        return self.events(types, days=days).get(account_id, [])

    def recent_trouble(self, account_id: str, *, days: float = 30) -> list[dict[str, Any]]:
        """Negative events of the last ``days``, newest first: evidence for state-based rules."""
        return list(
            reversed(self.account_events(account_id, vocabulary().negative_types(), days=days))
        )

    def days_until(self, value: str | None) -> int | None:
        """Whole days from today to an ISO date or datetime (negative when past)."""
        parsed = clock.parse_date(value)
        return None if parsed is None else (parsed - self.today).days


# -- the playbook base class -------------------------------------------------------------------


class Playbook:
    """Base class of a playbook plugin: a rule that opens follow-up tasks.

    Subclasses set ``name``, ``title``, ``options`` (their thresholds with defaults; the
    common options ``enabled``, ``due_in_days``, ``priority``, ``snooze_days``, ``subject``,
    ``body`` are added), default ``subject``/``body`` templates, the extra ``placeholders``
    those may use, and implement ``evaluate(ctx)`` yielding ``Trigger`` objects.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}
    defaults: ClassVar[dict[str, Any]] = {}
    """Overrides of the common options' defaults (e.g. ``{"priority": "HIGH"}``)."""
    subject: ClassVar[str] = "Follow up with {account_name}"
    body: ClassVar[str] = "{detail}" + STANDARD_BODY_TAIL
    placeholders: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: dict[str, Any] | None = None, *, where: str | None = None):
        self.where = where or f"[playbooks.{self.name}]"
        self.settings = self.validate(settings or {}, where=self.where)

    def __repr__(self) -> str:
        return f"<Playbook {self.name}>"

    # configuration ---------------------------------------------------------------------

    @classmethod
    def all_options(cls) -> dict[str, Any]:
        """Every option with its default: common ones, then the playbook's thresholds."""
        return {**COMMON_OPTIONS, **cls.defaults, **cls.options}

    @classmethod
    def validate(cls, raw: dict[str, Any], *, where: str) -> dict[str, Any]:
        """Check ``[playbooks.<name>]`` against the options; errors name the key and the fix."""
        allowed = cls.all_options()
        out = dict(allowed)
        for key, value in raw.items():
            if key not in allowed:
                raise ConfigError(
                    f"{where}: unknown option {key!r}",
                    hint=f"options of {cls.name}: {', '.join(sorted(allowed))}",
                )
            out[key] = _check_type(where, key, value, allowed[key])
        if str(out["priority"]).upper() not in PRIORITIES:
            raise ConfigError(
                f"{where}: priority must be one of {', '.join(PRIORITIES)}",
                hint='for example priority = "HIGH"',
            )
        out["priority"] = str(out["priority"]).upper()
        if not isinstance(out["due_in_days"], int) or out["due_in_days"] < 0:
            raise ConfigError(
                f"{where}: due_in_days must be a whole number of days ≥ 0", hint="e.g. 3"
            )
        snooze = out["snooze_days"]
        if snooze is not None and (
            isinstance(snooze, bool) or not isinstance(snooze, int) or snooze < 0
        ):
            raise ConfigError(
                f"{where}: snooze_days must be a whole number of days ≥ 0",
                hint="leave it out to use [playbooks] snooze_days",
            )
        out["subject"] = out["subject"] if out["subject"] is not None else cls.subject
        out["body"] = out["body"] if out["body"] is not None else cls.body
        known = set(COMMON_PLACEHOLDERS) | set(cls.placeholders) | set(cls.options)
        for key in ("subject", "body"):
            _check_template(where, key, out[key], known)
        return out

    def opt(self, key: str) -> Any:
        """The configured value of one option."""
        return self.settings[key]

    @property
    def enabled(self) -> bool:
        return bool(self.settings["enabled"])

    def thresholds(self) -> dict[str, Any]:
        """The playbook's own options (for ``hub playbooks``)."""
        return {k: self.settings[k] for k in self.options}

    # the rule ---------------------------------------------------------------------------

    def evaluate(self, ctx: PlaybookContext) -> Iterable[Trigger]:
        """Yield a ``Trigger`` per account that needs a follow-up now."""
        raise NotImplementedError


# -- the outbox -------------------------------------------------------------------------------


def task_id_for(account_id: str, playbook: str, reason: str, created_at: str) -> str:
    """A stable, token-safe id (hex) for a new outbox row."""
    text = "\0".join([account_id, playbook, reason, created_at])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Outbox:
    """The ``tasks`` table as an outbox: open, claim, mark pushed, complete, snooze, cancel.

    Every state change commits on its own, so a pusher that is killed between two writes
    leaves a row whose status says exactly how far it got (``pushing`` = a create may or may
    not have reached the CRM; reconcile before creating again).
    """

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    def get(self, task_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM tasks WHERE id = ?", [task_id]))
        return _task_row(rows[0]) if rows else None

    def tasks(self, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Rows (evidence decoded), oldest first, optionally only some statuses."""
        if statuses is None:
            rows = self.db.query("SELECT * FROM tasks ORDER BY created_at, id")
        else:
            statuses = list(statuses)
            marks = ",".join("?" * len(statuses))
            rows = self.db.query(
                f"SELECT * FROM tasks WHERE status IN ({marks}) ORDER BY created_at, id", statuses
            )
        return [_task_row(r) for r in rows]

    def blocking(self, now: dt.datetime) -> dict[tuple[str, str, str], str]:
        """(account, playbook, reason) → why a new task is blocked: ``active`` or ``snoozed``."""
        out: dict[tuple[str, str, str], str] = {}
        now_iso = clock.iso(now)
        for row in self.db.query(
            "SELECT account_id, playbook, reason, status, snoozed_until FROM tasks "
            "WHERE status IN ('open','pushing','pushed') "
            "OR (status = 'completed' AND snoozed_until > ?)",
            [now_iso],
        ):
            key = (row["account_id"], row["playbook"], row["reason"])
            out[key] = "active" if row["status"] in ACTIVE_STATUSES else "snoozed"
        return out

    def add(self, row: dict[str, Any]) -> None:
        with self.db.atomic():
            self.db["tasks"].insert(row)

    def claim(self, task_id: str) -> None:
        """``open`` → ``pushing``, committed before the CRM hears of it."""
        self._set(task_id, status="pushing")

    def claim_many(self, task_ids: Iterable[str]) -> None:
        """``claim`` for a batch, in one transaction."""
        with self.db.atomic():
            self.db.conn.executemany(
                "UPDATE tasks SET status = 'pushing' WHERE id = ?", [(i,) for i in task_ids]
            )

    def record_remote_many(self, remote_ids: dict[str, str]) -> None:
        """``record_remote`` for a batch (task id → CRM id), in one transaction."""
        with self.db.atomic():
            self.db.conn.executemany(
                "UPDATE tasks SET hubspot_task_id = ? WHERE id = ?",
                [(str(r), i) for i, r in remote_ids.items()],
            )

    def mark_pushed_many(self, remote_ids: dict[str, str], at: dt.datetime | None = None) -> None:
        """``mark_pushed`` for a batch (task id → CRM id), in one transaction."""
        when = clock.iso(at)
        with self.db.atomic():
            self.db.conn.executemany(
                "UPDATE tasks SET status = 'pushed', hubspot_task_id = ?, pushed_at = ? WHERE id = ?",
                [(str(r), when, i) for i, r in remote_ids.items()],
            )

    def record_remote(self, task_id: str, remote_id: str) -> None:
        """Remember the CRM's id as soon as the create answered (still ``pushing``)."""
        self._set(task_id, hubspot_task_id=str(remote_id))

    def mark_pushed(self, task_id: str, remote_id: str, at: dt.datetime | None = None) -> None:
        self._set(task_id, status="pushed", hubspot_task_id=str(remote_id), pushed_at=clock.iso(at))

    def release(self, task_id: str) -> None:
        """``pushing`` → ``open``: the create certainly did not happen (the CRM said no)."""
        self._set(task_id, status="open", hubspot_task_id=None)

    def complete(self, task_id: str, completed_at: dt.datetime, snooze_days: int) -> None:
        """The CRM user completed (or deleted) it: snooze the same task for ``snooze_days``."""
        self._set(
            task_id,
            status="completed",
            completed_at=clock.iso(completed_at),
            snoozed_until=clock.iso(completed_at + dt.timedelta(days=snooze_days)),
        )

    def cancel(self, task_id: str, at: dt.datetime | None = None) -> None:
        self._set(task_id, status="cancelled", completed_at=clock.iso(at))

    def _set(self, task_id: str, **values: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in values)
        with self.db.atomic():
            self.db.execute(f"UPDATE tasks SET {cols} WHERE id = ?", [*values.values(), task_id])


# -- configuration ------------------------------------------------------------------------------


@dataclass
class PlaybookSetup:
    """Validated ``[playbooks]``: the global section and every registered playbook, built."""

    section: PlaybooksSection
    playbooks: dict[str, Playbook]

    def snooze_days(self, playbook: str) -> int:
        pb = self.playbooks.get(playbook)
        value = pb.settings.get("snooze_days") if pb is not None else None
        return int(value if value is not None else self.section.snooze_days)

    def enabled(self) -> list[Playbook]:
        if not self.section.enabled:
            return []
        return [pb for pb in self.playbooks.values() if pb.enabled]


def load_playbooks(config: Any, registry: Any = None) -> PlaybookSetup:
    """Build every registered playbook from ``config.playbooks`` (validating it)."""
    if registry is None:
        from hub.registry import get_registry

        registry = get_registry()
    raw = dict(getattr(config, "playbooks", None) or {})
    origin = getattr(config, "path", None) or "hub.toml"
    tables = {k: v for k, v in raw.items() if isinstance(v, dict)}
    scalars = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    section = validate_section(PlaybooksSection, scalars, "playbooks", origin)
    classes = dict(registry.playbooks)
    unknown = sorted(set(tables) - set(classes))
    if unknown:
        raise ConfigError(
            f"{origin}: [playbooks.{unknown[0]}] names no installed playbook",
            hint=f"installed: {', '.join(sorted(classes)) or 'none'}",
        )
    built: dict[str, Playbook] = {}
    for name, cls in sorted(classes.items()):
        if not (isinstance(cls, type) and issubclass(cls, Playbook)):
            raise StartupError(f"register_playbooks got {cls!r}, not a hub.playbooks.Playbook")
        built[name] = cls(tables.get(name, {}), where=f"{origin}: [playbooks.{name}]")
    return PlaybookSetup(section, built)


# -- running ------------------------------------------------------------------------------------


@dataclass
class PlaybookResult:
    """Outcome of one playbooks run."""

    run_id: int | None = None
    status: str = "ok"
    opened: list[str] = field(default_factory=list)
    """Ids of the tasks opened by this run."""
    by_playbook: Counter[str] = field(default_factory=Counter)
    triggers: int = 0
    deduplicated: int = 0
    snoozed: int = 0
    cancelled: int = 0
    completed: int = 0
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def note(self) -> str:
        parts = [f"{len(self.opened)} tasks opened"]
        if self.by_playbook:
            parts.append(", ".join(f"{k} {v}" for k, v in sorted(self.by_playbook.items())))
        parts.append(
            f"{self.deduplicated} already open, {self.snoozed} snoozed, "
            f"{self.cancelled} cancelled, {self.completed} completed in the CRM"
        )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "opened": list(self.opened),
            "by_playbook": dict(self.by_playbook),
            "triggers": self.triggers,
            "deduplicated": self.deduplicated,
            "snoozed": self.snoozed,
            "cancelled": self.cancelled,
            "completed": self.completed,
            "errors": list(self.errors),
        }


def run_playbooks(store: Store, config: Any, *, registry: Any = None) -> PlaybookResult:
    """Read back completions, evaluate every enabled playbook and fill the outbox."""
    result = PlaybookResult()
    started = time.perf_counter()
    setup = load_playbooks(config, registry)  # config errors surface before a run is recorded
    result.run_id = store.start_run("playbooks")
    now = clock.now()
    outbox = Outbox(store)
    try:
        result.completed = read_back_completions(store, config, setup, now=now)
        _evaluate_all(store, config, setup, outbox, result, now)
    except HubError as exc:
        result.status = "error"
        result.errors.append(str(exc))
    except Exception as exc:  # a bug must still close the run record  # noqa: BLE001
        result.status = "error"
        result.errors.append(f"internal error: {type(exc).__name__}: {exc}")
        log.exception("playbooks run crashed")
    if result.errors and result.status == "ok":
        result.status = "partial"
    result.duration_s = time.perf_counter() - started
    store.finish_run(
        result.run_id,
        status=result.status,
        records=len(result.opened),
        error="; ".join(result.errors)[:2000] or None,
        note=result.note(),
        duration_s=result.duration_s,
    )
    return result


def _evaluate_all(
    store: Store,
    config: Any,
    setup: PlaybookSetup,
    outbox: Outbox,
    result: PlaybookResult,
    now: dt.datetime,
) -> None:
    ctx = PlaybookContext(store, now)
    blocking = outbox.blocking(now)
    fired: set[tuple[str, str, str]] = set()
    evaluated: set[str] = set()
    fallback_owner = _push_fallback_owner(config)
    for playbook in setup.enabled():
        try:
            triggers = list(playbook.evaluate(ctx))
        except HubError as exc:
            result.errors.append(f"playbook {playbook.name}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - one broken playbook must not stop the others
            result.errors.append(f"playbook {playbook.name} crashed: {type(exc).__name__}: {exc}")
            log.exception("playbook %s crashed", playbook.name)
            continue
        evaluated.add(playbook.name)
        for trigger in triggers:
            if trigger.account_id not in ctx.accounts:
                continue
            key = (trigger.account_id, playbook.name, trigger.reason)
            if key in fired:
                continue  # a playbook yielded the same finding twice
            fired.add(key)
            result.triggers += 1
            why = blocking.get(key)
            if why == "active":
                result.deduplicated += 1
                continue
            if why == "snoozed":
                result.snoozed += 1
                continue
            row = render_task(playbook, trigger, ctx, setup.section, fallback_owner)
            outbox.add(row)
            blocking[key] = "active"
            result.opened.append(row["id"])
            result.by_playbook[playbook.name] += 1
    # Open (never pushed) tasks whose rule stopped firing, or whose playbook is now off.
    enabled = {pb.name for pb in setup.enabled()}
    for task in outbox.tasks(["open"]):
        key = (task["account_id"], task["playbook"], task["reason"])
        gone = task["account_id"] not in ctx.accounts
        if (
            gone
            or task["playbook"] not in enabled
            or task["playbook"] in evaluated
            and key not in fired
        ):
            outbox.cancel(task["id"], now)
            result.cancelled += 1


def _push_fallback_owner(config: Any) -> str | None:
    push = getattr(config, "push", None) or {}
    value = push.get("fallback_owner_id") if isinstance(push, dict) else None
    return str(value) if value else None


def render_task(
    playbook: Playbook,
    trigger: Trigger,
    ctx: PlaybookContext,
    section: PlaybooksSection,
    fallback_owner: str | None = None,
) -> dict[str, Any]:
    """Turn a trigger into a ``tasks`` row: templates filled, owner, due date, evidence."""
    account = ctx.accounts[trigger.account_id]
    health = ctx.health.get(trigger.account_id) or {}
    evidence = [
        {k: e.get(k) for k in ("id", "type", "ts", "summary", "link")}
        for e in trigger.evidence[: section.evidence_limit]
    ]
    values: dict[str, Any] = {
        "account_name": account.get("name") or trigger.account_id,
        "account_id": trigger.account_id,
        "domain": account.get("domain") or "",
        "owner_name": account.get("owner_name") or "",
        "score": _blank(health.get("score")),
        "band": health.get("band") or "not scored",
        "trend_7d": _signed(health.get("trend_7d")),
        "trend_30d": _signed(health.get("trend_30d")),
        "mrr": _money(account.get("mrr")),
        "seats": _blank(account.get("seats")),
        "renewal_date": (account.get("renewal_date") or "")[:10],
        "drivers": "\n".join(f"- {d}" for d in health.get("drivers") or []) or "- (none recorded)",
        "evidence": "\n".join(_evidence_line(e) for e in evidence) or "- (no events)",
        "detail": trigger.detail,
        "reason": trigger.reason,
        "playbook": playbook.name,
        **{k: playbook.settings[k] for k in playbook.options},
        **trigger.values,
    }
    subject = _fill(playbook.settings["subject"], values).strip()[:250]
    body = _fill(playbook.settings["body"], values).strip()
    created = clock.iso(ctx.now)
    due = ctx.now + dt.timedelta(days=int(playbook.settings["due_in_days"]))
    return {
        "id": task_id_for(trigger.account_id, playbook.name, trigger.reason, created),
        "account_id": trigger.account_id,
        "playbook": playbook.name,
        "reason": trigger.reason,
        "status": "open",
        "subject": subject,
        "body": body,
        "priority": playbook.settings["priority"],
        "due_at": clock.iso(due),
        "owner_id": account.get("owner_id") or fallback_owner,
        "evidence": json.dumps(evidence, default=str),
        "hubspot_task_id": None,
        "created_at": created,
        "pushed_at": None,
        "completed_at": None,
        "snoozed_until": None,
    }


def read_back_completions(
    store: Store, config: Any, setup: PlaybookSetup | None = None, *, now: dt.datetime | None = None
) -> int:
    """Mark pushed tasks completed from the synced HubSpot ``tasks`` stream; returns how many.

    Reads ``raw_<[push] connection>_tasks`` (the HubSpot connector's tasks stream): a task
    whose ``hs_task_status`` is ``COMPLETED``, or whose record was deleted in HubSpot, is
    completed and snoozed. Without that table nothing happens (the pusher also asks HubSpot).
    """
    setup = setup or load_playbooks(config)
    push = getattr(config, "push", None) or {}
    connection = str(push.get("connection") or "hubspot")
    table = raw_table_name(connection, "tasks")
    if not store.db[table].exists():
        return 0
    pushed = {t["hubspot_task_id"]: t for t in Outbox(store).tasks(["pushed"])}
    pushed.pop(None, None)
    if not pushed:
        return 0
    outbox = Outbox(store)
    now = now or clock.now()
    done = 0
    ids = list(pushed)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in store.db.execute(
            f"SELECT id, deleted, data FROM [{table}] WHERE id IN ({marks})", chunk
        ):
            rid, deleted, data = row
            props = (_loads(data, {}) or {}).get("properties") or {}
            status = str(props.get("hs_task_status") or "").upper()
            if not deleted and status != "COMPLETED":
                continue
            task = pushed[rid]
            when = clock.parse(props.get("hs_task_completion_date")) if not deleted else None
            outbox.complete(task["id"], when or now, setup.snooze_days(task["playbook"]))
            done += 1
    return done


# -- helpers ------------------------------------------------------------------------------------


class _Placeholders(dict):
    def __missing__(self, key: str) -> str:  # pragma: no cover - validated at load time
        return "{" + key + "}"


def _fill(template: str, values: dict[str, Any]) -> str:
    return string.Formatter().vformat(template, (), _Placeholders(values))


def _check_template(where: str, key: str, template: Any, known: set[str]) -> None:
    if not isinstance(template, str):
        raise ConfigError(
            f"{where}: {key} must be text", hint='e.g. subject = "Call {account_name}"'
        )
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(
            f"{where}: {key} is not a valid template ({exc})",
            hint="write a literal brace as {{ or }}",
        ) from None
    for name in fields:
        base = name.split(".")[0].split("[")[0]
        if base not in known:
            raise ConfigError(
                f"{where}: {key} uses unknown placeholder {{{name}}}",
                hint=f"placeholders: {', '.join('{' + k + '}' for k in sorted(known))}",
            )


def _check_type(where: str, key: str, value: Any, default: Any) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(
                f"{where}: {key} must be true or false", hint=f"{key} = {str(default).lower()}"
            )
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ConfigError(f"{where}: {key} must be a whole number", hint=f"{key} = {default}")
        if value < 0:
            raise ConfigError(f"{where}: {key} must not be negative", hint=f"{key} = {default}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {key} must be a number", hint=f"{key} = {default}")
        return float(value)
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {key} must be a list of text", hint=f"{key} = {default!r}")
        return list(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be text", hint=f'{key} = "{default}"')
    return value


def _loads(text: Any, default: Any) -> Any:
    if text is None or text == "":
        return default
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return default


def _blank(value: Any) -> str:
    return "" if value is None else str(value)


def _signed(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{int(value):+d}"


def _money(value: Any) -> str:
    if value is None:
        return ""
    return f"${float(value):,.2f}"


def _evidence_line(event: dict[str, Any]) -> str:
    day = str(event.get("ts") or "")[:10]
    text = event.get("summary") or event.get("type") or ""
    link = event.get("link")
    return f"- {day} {text}" + (f" ({link})" if link else "")


def _task_row(row: Any) -> dict[str, Any]:
    row = dict(row)
    row["evidence"] = _loads(row.get("evidence"), [])
    return row


def iter_playbook_stats(store: Store) -> Iterator[dict[str, Any]]:
    """Per playbook: tasks opened in total, open now, last triggered (for ``hub playbooks``)."""
    for row in store.db.query(
        "SELECT playbook, COUNT(*) AS opened, MAX(created_at) AS last_triggered, "
        "SUM(CASE WHEN status IN ('open','pushing','pushed') THEN 1 ELSE 0 END) AS open_now "
        "FROM tasks GROUP BY playbook"
    ):
        yield dict(row)


__all__ = [
    "ACTIVE_STATUSES",
    "COMMON_OPTIONS",
    "COMMON_PLACEHOLDERS",
    "PRIORITIES",
    "STANDARD_BODY_TAIL",
    "Outbox",
    "Playbook",
    "PlaybookContext",
    "PlaybookResult",
    "PlaybookSetup",
    "PlaybooksSection",
    "Trigger",
    "iter_playbook_stats",
    "load_playbooks",
    "read_back_completions",
    "render_task",
    "run_playbooks",
    "task_id_for",
]
