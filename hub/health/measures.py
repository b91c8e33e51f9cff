"""The measure API: what a measure author subclasses and gets.

A **measure** (``Measure`` subclass, registered with ``register_health_models``) turns one
account's recent events and facts into 0–100, or ``None`` when there is no data. It also
returns its inputs (numbers a person can check) and plain-words driver texts with numbers
("2 failed payments in the last 60 days"). Measures compute *set-wise*: each adds its
aggregates (counts, sums, latest values, concatenations, each with its own event types and
window) to one SQL aggregation per run over ``events`` (see ``Aggregates``), never a query
per account, and the table is read once.

``hub.testing.measures`` scores a measure on hand-made events and facts for tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from hub import clock


def scale(value: float, good: float, bad: float) -> float:
    """100 at ``good`` (or better), 0 at ``bad`` (or worse), linear between.

    Works in both directions: ``good < bad`` when higher is worse (hours, rates),
    ``good > bad`` when higher is better.
    """
    if good == bad:
        return 100.0 if value == good else 0.0
    t = (value - good) / (bad - good)
    if t <= 0:
        return 100.0
    if t >= 1:
        return 0.0
    return 100.0 * (1.0 - t)


class MeasureParams(BaseModel):
    """Base of a measure's parameters (``[health.measures.<name>]``); unknown keys are errors.

    A parameter named in ``by_segment`` may also be a table by segment name with a
    ``default`` entry (``target_days = { default = 30, enterprise = 14 }``); the config
    check refuses names that are not segments, and ``for_segment`` reads the account's value.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    by_segment: ClassVar[tuple[str, ...]] = ()

    def for_segment(self, name: str, segment: str | None) -> Any:
        """Parameter ``name`` for an account in ``segment`` (its entry, else ``default``)."""
        value = getattr(self, name)
        if isinstance(value, dict):
            return value.get(segment or "default", value.get("default"))
        return value


class MeasureResult:
    """What a measure says about one account.

    ``value`` is 0–100 or None (no data: the measure is left out, never counted as 0).
    ``inputs`` are the numbers it used (shown by ``--explain``, usable in points rules);
    ``drivers`` are plain-words texts with numbers, most important first; ``texts`` may give a
    text per input, used when a points rule or cap on that input holds. Instead of
    ``drivers``/``texts`` a measure may pass ``words``, a function returning both: the engine
    calls it only when the words are needed (the top drivers, explain), which keeps a full
    run over many accounts fast.
    """

    __slots__ = ("value", "inputs", "_drivers", "_texts", "_words", "value_h")

    def __init__(
        self,
        value: float | None,
        inputs: dict[str, Any] | None = None,
        drivers: list[str] | None = None,
        texts: dict[str, str] | None = None,
        *,
        words: Callable[[], tuple[list[str], dict[str, str]]] | None = None,
    ):
        self.value = value
        self.inputs = inputs if inputs is not None else {}
        self._drivers = drivers
        self._texts = texts
        self._words = words
        self.value_h: int | None = None  # set by the engine: value to 2 decimals, in hundredths

    def _resolve(self) -> None:
        drivers, texts = self._words() if self._words is not None else ([], {})
        if self._drivers is None:
            self._drivers = list(drivers)
        if self._texts is None:
            self._texts = dict(texts)
        self._words = None

    @property
    def drivers(self) -> list[str]:
        if self._drivers is None:
            self._resolve()
        return self._drivers  # type: ignore[return-value]

    @property
    def texts(self) -> dict[str, str]:
        if self._texts is None:
            self._resolve()
        return self._texts  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"MeasureResult(value={self.value!r}, inputs={self.inputs!r})"


class Account:
    """One ``accounts`` row as measures see it: columns as attributes, ``facts`` decoded,
    ``segment`` the name of the account's ``[[health.segments]]`` entry (or ``default``)."""

    __slots__ = (
        "id",
        "name",
        "domain",
        "owner_id",
        "lifecycle_stage",
        "mrr",
        "plan",
        "seats",
        "renewal_date",
        "customer_since",
        "facts",
        "segment",
    )
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "id",
        "name",
        "domain",
        "owner_id",
        "lifecycle_stage",
        "mrr",
        "plan",
        "seats",
        "renewal_date",
        "customer_since",
    )

    def __init__(self, values: tuple[Any, ...], facts: dict[str, Any]):
        (
            self.id,
            self.name,
            self.domain,
            self.owner_id,
            self.lifecycle_stage,
            self.mrr,
            self.plan,
            self.seats,
            self.renewal_date,
            self.customer_since,
        ) = values
        self.facts = facts
        self.segment = "default"  # the engine sets the [[health.segments]] name it chose

    def get(self, key: str, default: Any = None) -> Any:
        """A column, else a fact, else ``default``."""
        if key in self.COLUMNS:
            value = getattr(self, key)
            return default if value is None else value
        return self.facts.get(key, default)


class Window:
    """The moment a computation is "as of": ``as_of``, ``today``, ``since(days)``,
    ``days_ago(ts)``, and ``memo(key)``: a dict a measure may fill with what depends only on
    the moment and its parameters (a score per day, say), shared by every account of a run."""

    def __init__(self, as_of: dt.datetime):
        self.as_of = as_of
        self.today = as_of.date()
        self.until = clock.iso(as_of)
        self._since: dict[int, str] = {}
        self._ages: dict[str, int] = {}
        self._memo: dict[Any, dict[Any, Any]] = {}

    def memo(self, key: Any) -> dict[Any, Any]:
        """The run's dict for ``key`` (a hashable naming what it holds and its parameters)."""
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = {}
        return found

    def days_ago(self, ts: str) -> int:
        """Calendar days from an ISO UTC time's day (its first 10 characters) to ``today``,
        never negative; cached per day, since a run asks for the same days again and again."""
        day = ts[:10]
        age = self._ages.get(day)
        if age is None:
            try:
                age = max(0, (self.today - dt.date.fromisoformat(day)).days)
            except ValueError:
                age = 0
            self._ages[day] = age
        return age

    def since(self, days: int) -> str:
        """ISO time ``days`` before ``as_of``."""
        if days not in self._since:
            self._since[days] = clock.iso(self.as_of - dt.timedelta(days=days))
        return self._since[days]


class Aggregates:
    """Builds the one set-wise aggregation over ``events`` that feeds every measure.

    Each measure adds what it needs (``count``, ``total``, ``latest``, ``concat``, or ``add``
    for any SQL aggregate), each filtered to its event types and window, and gets back
    handles. The engine runs everything in *one* statement per run::

        SELECT account_id, <aggregates> FROM events
        WHERE <each type within its widest window> AND ts <= as_of
        GROUP BY account_id ORDER BY account_id

    so the events table is read once (a sequential scan on a full run; an index seek per
    account on an incremental one), never once per account or per measure. Identical
    expressions are shared. Every ``count`` shares a single aggregate: the types of the
    counted events, each tagged with the narrowest count window it falls in, which the engine
    tallies per account; that keeps the work per event row constant however many counts the
    measures and points rules ask for. In expressions, ``type``, ``ts``, ``id`` and ``attrs``
    are the event's columns (``json_extract(attrs, '$.x')`` reads an attribute), and
    ``subject_id`` / ``metric`` its typed columns, filled from ``attrs`` by SQLite when the row is
    written (``hub.store.event_columns``): the ticket, invoice or technology the event is
    about, and its resolution hours, amount or delta, read without parsing JSON.
    """

    TARGETS = "temp._health_targets"
    SEP = "\x1f"

    def __init__(self, window: Window):
        self.window = window
        self.exprs: list[str] = []
        self.args: list[Any] = []
        self.type_days: dict[str, int] = {}
        self.count_days: set[int] = set()
        self.count_types: set[str] = set()
        self._index: dict[tuple[str, tuple[Any, ...]], int] = {}

    def _use(self, types: Iterable[str], days: int) -> list[str]:
        types = list(types)
        if not types:
            raise ValueError("an aggregate needs at least one event type")
        for t in types:
            self.type_days[t] = max(self.type_days.get(t, 0), days)
        return types

    def add(self, sql: str, args: Iterable[Any], types: Iterable[str], days: int) -> int:
        """Add an aggregate expression (with ``?`` arguments) over events of ``types`` within
        ``days``; returns its column number. The expression must do its own filtering."""
        self._use(types, days)
        return self._expr(sql, args)

    def _expr(self, sql: str, args: Iterable[Any]) -> int:
        key = (sql, tuple(args))
        if key not in self._index:
            self.exprs.append(sql)
            self.args.extend(key[1])
            self._index[key] = len(self.exprs)  # column 0 is account_id
        return self._index[key]

    def _when(self, types: list[str], days: int) -> tuple[str, list[Any]]:
        test = "type = ?" if len(types) == 1 else f"type IN ({','.join('?' * len(types))})"
        return f"{test} AND ts >= ?", [*types, self.window.since(days)]

    def count(self, types: Iterable[str], days: int) -> tuple[str, tuple[str, ...], int]:
        """Number of events of ``types`` in the last ``days`` (an int for ``score``)."""
        types = self._use(types, days)
        self.count_days.add(days)
        self.count_types.update(types)
        return ("count", tuple(sorted(types)), days)

    def total(self, types: Iterable[str], days: int, expr: str, args: Iterable[Any] = ()) -> int:
        """Sum of ``expr`` over those events (None when there are none)."""
        types = self._use(types, days)
        cond, cond_args = self._when(types, days)
        return self.add(f"SUM(CASE WHEN {cond} THEN {expr} END)", [*cond_args, *args], types, days)

    def latest(
        self, types: Iterable[str], days: int, expr: str = "ts", args: Iterable[Any] = ()
    ) -> int:
        """Largest ``expr`` (by default the latest ``ts``) over those events, or None.

        ``ts || '|' || <value>`` gives the value of the latest event after the ``|``.
        """
        types = self._use(types, days)
        cond, cond_args = self._when(types, days)
        return self.add(f"MAX(CASE WHEN {cond} THEN {expr} END)", [*cond_args, *args], types, days)

    def concat(
        self,
        types: Iterable[str],
        days: int,
        expr: str,
        args: Iterable[Any] = (),
        sep: str = "\x1f",
    ) -> int:
        """``expr`` of every such event joined with ``sep`` (None when there are none)."""
        types = self._use(types, days)
        cond, cond_args = self._when(types, days)
        return self.add(
            f"GROUP_CONCAT(CASE WHEN {cond} THEN {expr} END, ?)",
            [*cond_args, *args, sep],
            types,
            days,
        )

    def concat_each(
        self, parts: Iterable[tuple[Iterable[str], int, str]], sep: str = "\x1f"
    ) -> int:
        """One concatenation over several ``(types, days, expr)`` parts: each event gives the
        ``expr`` of the first part whose types and window it matches (None when none do).
        Cheaper than a ``concat`` per part: SQLite evaluates one aggregate per event row."""
        whens: list[str] = []
        args: list[Any] = []
        for types, days, expr in parts:
            cond, cond_args = self._when(self._use(types, days), days)
            whens.append(f"WHEN {cond} THEN {expr}")
            args.extend(cond_args)
        return self._expr(f"GROUP_CONCAT(CASE {' '.join(whens)} END, ?)", [*args, sep])

    def count_column(self) -> tuple[int, list[int]] | None:
        """Add the shared tally of counted events; returns (column, windows ascending)."""
        if not self.count_days:
            return None
        windows = sorted(self.count_days)
        types = sorted(self.count_types)
        tags = " ".join(f"WHEN ts >= ? THEN type || '{i}'" for i in range(len(windows)))
        column = self.add(
            f"GROUP_CONCAT(CASE WHEN type IN ({','.join('?' * len(types))}) THEN CASE {tags} END END, ?)",
            [*types, *(self.window.since(d) for d in windows), self.SEP],
            types,
            windows[-1],
        )
        return column, windows

    def sql(
        self, *, targets: bool, bounds: tuple[str | None, str | None] = (None, None)
    ) -> tuple[str, list[Any]]:
        """The statement and its arguments (``targets``: only accounts in the temp table;
        ``bounds``: only account ids ``>= bounds[0]`` and ``< bounds[1]``)."""
        by_days: dict[int, list[str]] = {}
        for t, days in self.type_days.items():
            by_days.setdefault(days, []).append(t)
        parts, args = [], [*self.args]
        for days, types in sorted(by_days.items()):
            types.sort()
            column = "+type" if targets else "type"
            parts.append(f"({column} IN ({','.join('?' * len(types))}) AND ts >= ?)")
            args.extend([*types, self.window.since(days)])
        args.append(self.window.until)
        scope = ""
        if bounds[0] is not None:
            scope += " AND account_id >= ?"
            args.append(bounds[0])
        if bounds[1] is not None:
            scope += " AND account_id < ?"
            args.append(bounds[1])
        if targets:
            # Unary + keeps the planner off the (type, ts) index: seek each target account.
            where = f"({' OR '.join(parts)}) AND +ts <= ? AND account_id IN (SELECT id FROM {self.TARGETS})"
            source = "events"
        else:
            # A full run reads most of the table: one sequential scan beats random row reads.
            where = f"({' OR '.join(parts)}) AND ts <= ? AND account_id IS NOT NULL{scope}"
            source = "events NOT INDEXED"
        return (
            f"SELECT account_id, {', '.join(self.exprs)} FROM {source} WHERE {where} "
            "GROUP BY account_id ORDER BY account_id",
            args,
        )


class Measure:
    """Base class of a health measure: one account's events and facts → 0–100 or no data.

    Subclasses set ``name``, ``label``, ``Params`` (a ``MeasureParams`` subclass: every
    parameter configurable in ``[health.measures.<name>]``), ``inputs`` (name → meaning, for
    docs and for validating points rules) and ``default_weight`` (its weight in the built-in
    default model; 0 leaves it out). ``aggregate()`` adds the measure's aggregates to the
    run's one aggregation (see ``Aggregates``) and returns their handles; ``score()`` then
    gets the account's values for those handles, in the same order (counts are ints, other
    aggregates None when no event matched), or None when the account has no event in any
    window of the run.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[MeasureParams]] = MeasureParams
    inputs: ClassVar[dict[str, str]] = {}
    default_weight: ClassVar[float] = 0.0
    # Caps the default model applies when this measure is in it (see WeightedModel).
    default_caps: ClassVar[list[dict[str, Any]]] = []

    def aggregate(self, params: Any, agg: Aggregates) -> tuple[Any, ...]:
        """Add aggregates to ``agg``; return their handles (empty: the measure reads facts only)."""
        return ()

    def score(
        self, params: Any, account: Account, values: tuple[Any, ...] | None, window: Window
    ) -> MeasureResult:
        raise NotImplementedError


__all__ = [
    "Account",
    "Aggregates",
    "Measure",
    "MeasureParams",
    "MeasureResult",
    "Window",
    "scale",
]
