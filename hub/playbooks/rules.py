"""What a playbook is: the ``Playbook`` base class, the ``Trigger`` it yields and the
``PlaybookContext`` it reads the hub's tables through.

A playbook plugin subclasses ``Playbook``; the engine (``hub.playbooks.engine``) builds it
from ``[playbooks.<name>]``, calls ``evaluate(ctx)`` and turns each ``Trigger`` into a task.
Option validation lives here with the class, so a typo in a playbook's table is reported
when the config loads, naming the key and the fix.
"""

from __future__ import annotations

import datetime as dt
import json
import string
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hub import clock
from hub.errors import ConfigError
from hub.store import Store, health_queries
from hub.vocabulary import vocabulary

PRIORITIES = ("LOW", "MEDIUM", "HIGH")

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

STANDARD_BODY_TAIL = "\n\n{evidence}\n\n{drivers}"
"""What the built-in body templates end with: the evidence, then the health drivers.

Both placeholders render whole sections (heading included) and render to nothing when there
is nothing to say, so a task never shows an empty "Evidence:" heading.
"""


@dataclass
class Trigger:
    """One finding of a playbook: this account needs this follow-up, for this reason.

    ``reason`` is the dedupe key within (account, playbook): keep it stable for a condition
    that persists (``"score_drop"``) and specific for a distinct problem (``"invoice in_123"``).
    ``detail`` is a one-line "why" in plain words (``{detail}`` in templates). Evidence is
    what a CSM checks: ``evidence`` are event rows (dicts with ``id``, ``type``, ``ts``,
    ``summary``, ``link``) and ``moved`` the measures that changed (dicts with ``name``,
    ``before``, ``after``). A trigger with neither is refused by the engine: every task
    names its evidence. ``values`` fill the playbook's own placeholders.
    """

    account_id: str
    reason: str
    detail: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    moved: list[dict[str, Any]] = field(default_factory=list)


class PlaybookContext:
    """Read access to accounts, health and events for playbooks; cached per batch.

    ``now`` is ``hub.clock.now()`` at the start of the run, ``today`` its date. The engine
    evaluates the playbooks over batches of accounts (``bounds``: ids ``>= bounds[0]`` and
    ``< bounds[1]``, None = open): every read (``accounts``, ``health``, ``history``,
    ``events``) sees only the accounts of the batch, so memory is bounded by a batch however
    many accounts there are. A playbook that loops over ``ctx.accounts``, ``ctx.health`` or
    ``ctx.events(...)`` needs no change.
    """

    def __init__(
        self,
        store: Store,
        now: dt.datetime | None = None,
        *,
        bounds: tuple[str | None, str | None] = (None, None),
        shared: dict[Any, str] | None = None,
    ):
        self.store = store
        # What the run's batches share: the temp tables listing matching events.
        self.shared: dict[Any, str] = shared if shared is not None else {}
        self.db = store.db
        self.now = now or clock.now()
        self.today = self.now.date()
        self.bounds = bounds
        self._accounts: dict[str, dict[str, Any]] | None = None
        self._health: dict[str, dict[str, Any]] | None = None
        self._history: dict[str, list[dict[str, Any]]] | None = None
        self._events: dict[tuple[tuple[str, ...], str], dict[str, list[dict[str, Any]]]] = {}
        self._baseline_days: dict[int, str | None] = {}

    # accounts and health ----------------------------------------------------------------

    @property
    def accounts(self) -> dict[str, dict[str, Any]]:
        """Every account by id, ``facts`` decoded."""
        if self._accounts is None:
            out = {}
            where, args = self._scope("id")
            for row in self.db.query(f"SELECT * FROM accounts{where}", args):
                row = dict(row)
                row["facts"] = loads(row.get("facts"), {})
                out[row["id"]] = row
            self._accounts = out
        return self._accounts

    @property
    def health(self) -> dict[str, dict[str, Any]]:
        """Current health rows by account id; ``drivers`` and ``measures`` decoded."""
        if self._health is None:
            out = {}
            where, args = self._scope("account_id")
            for row in self.db.query(f"SELECT * FROM health_scores{where}", args):
                row = dict(row)
                row["drivers"] = loads(row.get("drivers"), [])
                row["measures"] = loads(row.get("measures"), {})
                out[row["account_id"]] = row
            self._health = out
        return self._health

    def history(self, account_id: str) -> list[dict[str, Any]]:
        """Health history of one account, oldest day first: a row for each day something
        changed (the state on any day is the latest row on or before it; ``baseline``
        reads a trend's baseline).

        Each row has ``day``, ``score`` (shown), ``computed`` (the computed score: what
        trends and score rules read) and ``band``.
        """
        if self._history is None:
            grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
            where, args = self._scope("account_id")
            for row in self.db.query(
                f"SELECT * FROM health_history{where} ORDER BY account_id, day", args
            ):
                row = dict(row)
                computed = row.get("computed_score")
                row["computed"] = row.get("score") if computed is None else computed
                grouped[row["account_id"]].append(row)
            self._history = grouped
        return self._history.get(account_id, [])

    def baseline(self, account_id: str, days: int) -> dict[str, Any] | None:
        """The account's state on the baseline day of a ``days``-day trend, as the health
        trends read it (the latest day health ran ``days`` to ``days + max(3, days // 4)``
        days ago; its latest history row on or before that day), or None."""
        if days not in self._baseline_days:
            newest = (self.today - dt.timedelta(days=days)).isoformat()
            oldest = (self.today - dt.timedelta(days=days + max(3, days // 4))).isoformat()
            self._baseline_days[days] = health_queries.run_day(self.store, newest, oldest)
        day = self._baseline_days[days]
        if day is None:
            return None
        older = [r for r in self.history(account_id) if str(r["day"])[:10] <= day]
        return older[-1] if older else None

    def _scope(self, column: str) -> tuple[str, list[str]]:
        """``WHERE`` text and arguments limiting ``column`` to the batch's accounts."""
        low, high = self.bounds
        conds, args = [], []
        if low is not None:
            conds.append(f"{column} >= ?")
            args.append(low)
        if high is not None:
            conds.append(f"{column} < ?")
            args.append(high)
        return (f" WHERE {' AND '.join(conds)}" if conds else ""), args

    def is_churned(self, account_id: str) -> bool:
        """The account's lifecycle is over (band ``churned``): only the churn follow-up."""
        health = self.health.get(account_id) or {}
        return str(health.get("band") or "") == "churned" or bool(health.get("churned"))

    def first_scored(self, account_id: str) -> str | None:
        """The day the account was first scored (``first_scored_at``, kept by the health
        engine, else its first history row), or None."""
        first = (self.health.get(account_id) or {}).get("first_scored_at")
        if first:
            return str(first)[:10]
        rows = self.history(account_id)
        return str(rows[0]["day"])[:10] if rows else None

    def is_baseline(self, account_id: str, *, days: float = 1) -> bool:
        """True while the account's first scoring is its baseline (scored < ``days`` ago).

        The first scoring is a baseline, not a change: band and score rules stay quiet and
        event rules look only at the recent past.
        """
        first = self.first_scored(account_id)
        if first is None:
            return True
        age = (self.today - dt.date.fromisoformat(first)).days
        return age < days

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
            if self.bounds == (None, None):
                sql = (
                    "SELECT id, account_id, ts, type, summary, attrs, link FROM events "
                    f"WHERE type IN ({marks}) AND ts >= ? AND ts <= ? "
                    "AND account_id IS NOT NULL ORDER BY ts, id"
                )
                args: list[Any] = [*types, since, upto]
            else:
                # One batch of a run: the matching events' row ids, by account, are listed
                # once per run in a temp table (one pass over the (type, ts) index), and each
                # batch reads its own through it: never the whole match per batch.
                table = self._matches(types, since, upto)
                scope, args = self._scope("t.account_id")
                sql = (
                    "SELECT e.id, e.account_id, e.ts, e.type, e.summary, e.attrs, e.link "
                    f"FROM temp.{table} t JOIN events e ON e.rowid = t.rid{scope} "
                    "ORDER BY e.ts, e.id"
                )
            for row in self.db.query(sql, args):
                if row["account_id"] not in accounts:
                    continue
                row = dict(row)
                row["attrs"] = loads(row.get("attrs"), {})
                grouped[row["account_id"]].append(row)
            self._events[key] = grouped
        return self._events[key]

    def _matches(self, types: tuple[str, ...], since: str, upto: str) -> str:
        """The temp table of (row id, account) of the events of ``types`` from ``since`` to
        ``upto``, made on first use and shared by the run's batches (``shared``)."""
        key = (types, since, upto)
        table = self.shared.get(key)
        if table is None:
            table = f"_playbook_events_{len(self.shared)}"
            marks = ",".join("?" * len(types))
            self.db.execute(f"DROP TABLE IF EXISTS temp.{table}")
            self.db.execute(
                f"CREATE TEMP TABLE {table} AS SELECT rowid AS rid, account_id FROM events "
                f"WHERE type IN ({marks}) AND ts >= ? AND ts <= ? AND account_id IS NOT NULL",
                [*types, since, upto],
            )
            self.db.execute(f"CREATE INDEX temp.{table}_account ON {table} (account_id)")
            self.shared[key] = table
        return table

    def close(self) -> None:
        """Drop the temp tables the run's batches shared."""
        for table in self.shared.values():
            self.db.execute(f"DROP TABLE IF EXISTS temp.{table}")
        self.shared.clear()

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

    def measures_moved(
        self, account_id: str, *, days: int, min_points: float = 1
    ) -> list[dict[str, Any]]:
        """Measures whose score moved by ``min_points`` or more over ``days`` (now vs the
        measures of the latest history row ``days`` or more days old), biggest change first:
        ``[{"name", "label", "before", "after"}]`` (``None`` = no data then)."""
        from hub.health.moves import moves_between

        now = (self.health.get(account_id) or {}).get("measures") or {}
        cutoff = (self.today - dt.timedelta(days=days)).isoformat()
        older = [r for r in self.history(account_id) if str(r["day"])[:10] <= cutoff]
        then = loads(older[-1].get("measures"), {}) if older else {}
        if not then or not now:
            return []
        return [
            {"name": m.measure, "label": None, "before": m.before, "after": m.after}
            for m in moves_between(then, now, min_points=min_points)
        ]

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

    ``kind`` says how the engine treats the playbook on an account's first scoring (its
    baseline) and on churned accounts: ``"state"`` rules (band, score) stay quiet on the
    baseline; ``"event"`` rules fire on the baseline only for recent events (the playbook
    looks at ``ctx.is_baseline``); only a playbook with ``churn = True`` runs for churned
    accounts.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    kind: ClassVar[str] = "event"
    churn: ClassVar[bool] = False
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


# -- helpers ------------------------------------------------------------------------------------


def loads(text: Any, default: Any) -> Any:
    """Decode stored JSON text; ``default`` when empty or unreadable."""
    if text is None or text == "":
        return default
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return default


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
