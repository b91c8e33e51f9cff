"""The health engine: measures → model → score, band, trend, drivers, overrides, history.

How a score is made
-------------------
A **measure** (``Measure`` subclass, registered with ``register_health_models``) turns one
account's recent events and facts into 0–100, or ``None`` when there is no data. It also
returns its inputs (numbers a person can check) and plain-words driver texts with numbers
("2 failed payments in the last 60 days"). Measures compute *set-wise*: each adds its
aggregates (counts, sums, latest values, concatenations, each with its own event types and
window) to one SQL aggregation per run over ``events`` (``GROUP BY account_id``; see
``Aggregates``), never a query per account, and the table is read once. The engine streams
that aggregation ordered by account id (on its own connection in a thread, so SQLite works
while Python scores) and merges it with the ``accounts`` rows, so memory stays flat however
many accounts there are. A full run over many accounts splits the id range between processes
(``[health] workers``), because the per-account Python work is what takes the time.

A **model** (``HealthModel`` subclass) combines measure results. The built-ins (in
``plugins/health_models.py``) are ``weighted`` (Σ weight·measure / Σ weight of measures that
have data: a measure without data is left out and the rest renormalise, never counted as 0;
optional caps such as "a cancelled subscription scores at most 20") and ``points`` (start at a
base, rules add or subtract points on measure inputs or event counts, clamp to a range, bands
on the points, scaled to 0–100 for the shared fields). **Segments** pick the model per account
(MRR tiers, plan, lifecycle stage); every model has its own weights, bands and measure
parameters. Everything is configured in ``[health]`` of ``hub.toml`` (see
``config.example.toml``) and validated with one-line errors that name the key.

Rounding (one rule, everywhere)
-------------------------------
Measure values are stated to 2 decimals, rounded half up. A weighted score is computed exactly
in integer hundredths; its unrounded value is stated to 2 decimals (exact value cut after the
second decimal, so rounding it half up to an integer gives the same result as rounding the
exact value), and each measure's contribution is stated to 2 decimals so that the stated
contributions add up *exactly* to the stated unrounded score (largest-remainder allocation).
The score shown everywhere is that unrounded score rounded half up to an integer
(``round_half_up``). ``hub health --explain`` prints exactly these numbers.

Override, history, trend
------------------------
A CSM override (``set_override`` / ``hub health override``, or the account fact
``health_override`` = ``{"value", "reason", "until"}`` that the HubSpot mapping fills from the
hub-owned properties) replaces the shown score and band until its ``until`` date (inclusive);
the computed score is always kept beside it. When both exist, the one set in the hub wins.
``health_history`` has one row per account per day (recomputing the same day replaces it);
``trend_7d``/``trend_30d`` = score now − score on the latest history row at least 7/30 days
old (None if there is none). ``backfill_health`` recomputes history day by day from the
timeline: each past day sees the events up to that day's end, and the account facts *as they
are now* (facts have no history), and overrides set in the hub that were in force then.

Incremental runs
----------------
``compute_health(full=False)`` recomputes only accounts whose events were mapped since the
last health run started (``events.mapped_at``), whose ``accounts`` row changed (a hash of the
row, because the mappings rebuild that table every run), or that have no score yet. When the
day changed since the last run (windows slide), the ``[health]`` config changed, or it is the
first run, everything is recomputed. Events that were deleted, or moved to another account,
are caught by the next day's full run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import multiprocessing
import operator
import os
import queue
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from hub import clock
from hub.config import validate_section
from hub.errors import ConfigError, HubError
from hub.store import Store
from hub.vocabulary import vocabulary

log = logging.getLogger("hub.health")

ENGINE_VERSION = "1"  # bump when a change to the engine must recompute every score
DEFAULT_BANDS: dict[str, float] = {"green": 70, "yellow": 40, "red": 0}
_BATCH = 2000
_CHUNK = 2000  # accounts read per query

# ----------------------------------------------------------------------------------------
# Rounding and bands
# ----------------------------------------------------------------------------------------

_ONE = Decimal(1)
_CENT = Decimal("0.01")


def round_half_up(value: float | int | Decimal | str, places: int = 0) -> Any:
    """The one rounding rule of the health engine: half up (``69.5`` → 70, ``69.49`` → 69).

    Works on the value's decimal text (``repr`` of a float), not its binary approximation, so
    ``2.675`` rounds to ``2.68``. Returns an ``int`` for ``places=0``, else a ``float``.
    """
    if isinstance(value, float) and places == 0:
        near = math.floor(value + 0.5)
        # Only a value within a hair of .5 needs its decimal text to decide.
        if abs(value - near + 0.5) > 1e-9 and abs(value - near - 0.5) > 1e-9:
            return int(near)
    number = (
        value
        if isinstance(value, Decimal)
        else Decimal(repr(value) if isinstance(value, float) else str(value))
    )
    if places == 0:
        return int(number.quantize(_ONE, rounding=ROUND_HALF_UP))
    return float(number.quantize(_ONE.scaleb(-places), rounding=ROUND_HALF_UP))


def hundredths(value: float | int) -> int:
    """``value`` stated to 2 decimals (half up), as an integer number of hundredths."""
    if isinstance(value, int):
        return value * 100
    scaled = value * 100
    near = math.floor(scaled + 0.5)
    # Only a value within a hair of a half-hundredth needs its decimal text to decide.
    if abs(scaled - near + 0.5) > 1e-6 and abs(scaled - near - 0.5) > 1e-6:
        return int(near)
    return int(Decimal(repr(float(value))).quantize(_CENT, rounding=ROUND_HALF_UP) * 100)


def _h(value: int | None) -> float | None:
    """Hundredths back to a number with 2 decimals (exact in its decimal text)."""
    return None if value is None else value / 100


def _band_table(bands: Any) -> list[tuple[float, str]]:
    if bands is None:
        bands = DEFAULT_BANDS
    if isinstance(bands, BaseModel):
        bands = bands.model_dump()
    items = bands.items() if isinstance(bands, dict) else bands
    table = sorted(((float(minimum), str(name)) for name, minimum in items), reverse=True)
    if not table:
        raise ConfigError(
            "no health bands configured", hint="set [health.bands] (see config.example.toml)"
        )
    return table


def band_for(score: float | int | None, bands: Any = None) -> str | None:
    """The band of a score: the band with the highest minimum that ``score`` reaches.

    ``bands`` maps band name → minimum score (default green 70, yellow 40, red 0); a score
    below every minimum gets the lowest band. ``None`` (no score) has no band.
    """
    if score is None:
        return None
    table = _band_table(bands)
    for minimum, name in table:
        if score >= minimum:
            return name
    return table[-1][1]


# ----------------------------------------------------------------------------------------
# Helpers for measure authors
# ----------------------------------------------------------------------------------------


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


def plural(count: float, singular: str, many: str | None = None) -> str:
    """``plural(2, "failed payment")`` → ``"2 failed payments"``."""
    shown = int(count) if float(count).is_integer() else count
    word = singular if shown == 1 else (many or singular + "s")
    return f"{shown} {word}"


def fmt_hours(hours: float) -> str:
    """``52.0`` → ``"52 h"``, ``3.25`` → ``"3.3 h"``."""
    return f"{round_half_up(hours)} h" if hours >= 10 else f"{round_half_up(hours, 1):g} h"


def fmt_pct(ratio: float) -> str:
    """``0.4444`` → ``"44%"``."""
    return f"{round_half_up(ratio * 100)}%"


def fmt_money(amount: float) -> str:
    """``4500`` → ``"$4,500"``, ``12.5`` → ``"$12.50"``."""
    if float(amount).is_integer():
        return f"${int(amount):,}"
    return f"${amount:,.2f}"


parse_date = clock.parse_date


def days_since(ts: str | None, as_of: dt.datetime) -> int | None:
    """Calendar days from an ISO UTC timestamp (or date) to ``as_of``'s day, never negative
    ("yesterday" is 1 day ago); None if there is no timestamp."""
    if not ts:
        return None
    text = str(ts)
    try:
        if len(text) >= 10 and text[4] == "-" and (len(text) == 10 or text.endswith("Z")):
            day = dt.date(int(text[:4]), int(text[5:7]), int(text[8:10]))
        else:
            moment = clock.parse(text)
            if moment is None:
                return None
            day = moment.date()
    except (ValueError, OverflowError):
        return None
    return max(0, (as_of.date() - day).days)


# Phrases for event counts in driver texts ("2 failed payments in the last 30 days").


def event_count_text(types: Iterable[str], count: int, days: int) -> str:
    """``(["payment_failed"], 2, 30)`` → ``"2 failed payments in the last 30 days"``."""
    types = list(types)
    known = vocabulary().event_types
    if len(types) == 1 and types[0] in known and known[types[0]].noun:
        one, many = known[types[0]].noun
        what = plural(count, one, many)
    else:
        what = f"{plural(count, 'event')} ({', '.join(types)})"
    return f"{what} in the last {days} days"


# ----------------------------------------------------------------------------------------
# The measure API
# ----------------------------------------------------------------------------------------


class MeasureParams(BaseModel):
    """Base of a measure's parameters (``[health.measures.<name>]``); unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    """One ``accounts`` row as measures see it: columns as attributes, ``facts`` decoded."""

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

    def get(self, key: str, default: Any = None) -> Any:
        """A column, else a fact, else ``default``."""
        if key in self.COLUMNS:
            value = getattr(self, key)
            return default if value is None else value
        return self.facts.get(key, default)


class Window:
    """The moment a computation is "as of": ``as_of``, ``today``, ``since(days)``."""

    def __init__(self, as_of: dt.datetime):
        self.as_of = as_of
        self.today = as_of.date()
        self.until = clock.iso(as_of)
        self._since: dict[int, str] = {}

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
    measures and points rules ask for. In expressions, ``type``, ``ts`` and ``attrs`` are the
    event's columns (``json_extract(attrs, '$.x')`` reads an attribute).
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


# ----------------------------------------------------------------------------------------
# Conditions (points rules, caps) and how they read values
# ----------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_OPS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "above": (operator.gt, ">"),
    "at_least": (operator.ge, "≥"),
    "below": (operator.lt, "<"),
    "at_most": (operator.le, "≤"),
    "equals": (operator.eq, "="),
}


def _one_op(obj: Any, required: bool) -> tuple[str, Any] | None:
    given = [(name, getattr(obj, name)) for name in _OPS if getattr(obj, name) is not None]
    if len(given) > 1:
        raise ValueError(
            f"give one of above, at_least, below, at_most, equals, not {len(given)} "
            f"({', '.join(n for n, _ in given)})"
        )
    if not given:
        if required:
            raise ValueError("give one condition: above, at_least, below, at_most or equals")
        return None
    return given[0]


def _test(op: str, threshold: Any, value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (list, tuple, set, dict)):
        value = len(value)
    fn = _OPS[op][0]
    try:
        return bool(fn(value, threshold))
    except TypeError:
        return False


class _Comparison(_Strict):
    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None
    equals: float | bool | str | None = None
    _op: tuple[str, Any] | None = PrivateAttr(default=None)

    def op(self) -> tuple[str, Any]:
        """The one comparison given, as (name, threshold) (computed once)."""
        if self._op is None:
            self._op = _one_op(self, required=True)
        return self._op

    def test(self, value: Any) -> bool:
        name, threshold = self.op()
        return _test(name, threshold, value)

    def op_text(self) -> str:
        name, threshold = self.op()
        shown = f"{threshold:g}" if isinstance(threshold, float) else str(threshold)
        return f"{_OPS[name][1]} {shown}"


class Tier(_Comparison):
    """One step of a tiered rule: ``{ above = 0.3, points = -2 }``; the first tier that holds counts."""

    points: float

    @model_validator(mode="after")
    def _check(self) -> Tier:
        _one_op(self, required=True)
        return self


class Condition(_Comparison):
    """A test on one value: a measure input (``"support.breach_rate"``), a measure's score
    (``"csat.score"``), an account column or fact (``"account.mrr"``), or a count of events
    (``events = ["payment_failed"]`` within ``days``)."""

    label: str | None = None
    input: str | None = None
    events: list[str] | None = None
    days: int = Field(30, ge=1, le=3650)

    @field_validator("events", mode="before")
    @classmethod
    def _events_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _source(self) -> Condition:
        if (self.input is None) == (self.events is None):
            raise ValueError('give either input = "measure.input" or events = [event types]')
        if self.events is not None and not self.events:
            raise ValueError("events must name at least one event type")
        if self.input is not None and not re.fullmatch(
            r"[a-z][a-z0-9_]*\.[A-Za-z0-9_]+", self.input
        ):
            raise ValueError(
                f'input {self.input!r} must look like "measure.input" or "account.fact"'
            )
        return self

    @property
    def spec(self) -> tuple[tuple[str, ...], int] | None:
        """The event-count key this condition reads (None for input conditions)."""
        return (tuple(sorted(self.events)), self.days) if self.events else None

    def source_text(self) -> str:
        if self.events:
            return f"events {', '.join(self.events)} in {self.days} days"
        return str(self.input)


class PointsRule(Condition):
    """A points rule: one condition with ``points``, or ``tiers`` (first that holds counts)."""

    points: float | None = None
    tiers: list[Tier] | None = None

    @model_validator(mode="after")
    def _shape(self) -> PointsRule:
        op = _one_op(self, required=False)
        if self.tiers is not None:
            if op is not None or self.points is not None:
                raise ValueError("give either tiers or one condition with points, not both")
            if not self.tiers:
                raise ValueError("tiers must have at least one entry")
        elif op is None or self.points is None:
            raise ValueError(
                "give one condition (above, at_least, below, at_most, equals) and points, or tiers"
            )
        return self

    def points_for(self, value: Any) -> tuple[float, str] | None:
        """Points this rule gives for ``value`` and the condition that held, or None."""
        if self.tiers is not None:
            for tier in self.tiers:
                if tier.test(value):
                    return tier.points, tier.op_text()
            return None
        if self.test(value):
            return float(self.points), self.op_text()
        return None


class Cap(Condition):
    """A cap on a weighted score: when the condition holds the score is at most ``max``."""

    max: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _shape(self) -> Cap:
        _one_op(self, required=True)
        return self

    def holds(self, value: Any) -> bool:
        return self.test(value)


class Lookup:
    """Reads the value a condition tests, for one account."""

    __slots__ = ("account", "results", "counts")

    def __init__(
        self,
        account: Account,
        results: dict[str, MeasureResult],
        counts: dict[tuple[tuple[str, ...], int], int],
    ):
        self.account = account
        self.results = results
        self.counts = counts

    def value(self, cond: Condition) -> Any:
        if cond.events:
            return self.counts.get(cond.spec, 0)
        head, _, tail = cond.input.partition(".")
        if head == "account":
            return self.account.get(tail)
        result = self.results.get(head)
        if result is None:
            return None
        if tail == "score":
            return _h(result.value_h)
        return result.inputs.get(tail)

    def describe(self, cond: Condition, value: Any) -> str:
        """Plain words for a condition that held: its label, else the measure's text."""
        if cond.label:
            return cond.label
        if cond.events:
            return event_count_text(cond.events, int(value or 0), cond.days)
        head, _, tail = cond.input.partition(".")
        result = self.results.get(head)
        if result is not None:
            if tail in result.texts:
                return result.texts[tail]
            if tail == "score" and result.drivers:
                return result.drivers[0]
        shown = f"{value:g}" if isinstance(value, float) else value
        return f"{cond.input} is {shown}"


# ----------------------------------------------------------------------------------------
# The model API
# ----------------------------------------------------------------------------------------


class ModelSettings(_Strict):
    """Settings every model has: ``type``, ``description``, ``bands``, measure parameters."""

    type: str
    description: str | None = None
    bands: dict[str, float] | None = None
    measures: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclass(slots=True)
class Contribution:
    """One line of the calculation; the ``amount_h`` of all lines add up to the result."""

    name: str
    label: str
    amount_h: int
    weight: float | None = None
    measure_h: int | None = None
    detail: str = ""


@dataclass
class Outcome:
    """What a model made of one account's measures.

    ``exact_h``: the unrounded score on 0–100 in hundredths (None: no measure had data);
    ``score``: its rounding half up; ``band``; ``contributions`` (they add up exactly to
    ``exact_h``, or to the points for a points model; filled when ``combine`` is asked for
    ``detail``); ``drivers``: (impact in score points, text or a ``MeasureResult`` whose
    driver texts apply) — most negative first is worst; ``details``: model-specific numbers
    for explain; ``weights``: the weight of each measure, if the model has weights.
    """

    exact_h: int | None
    score: int | None
    band: str | None
    contributions: list[Contribution] = field(default_factory=list)
    drivers: list[tuple[float, str | MeasureResult]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    # Driver texts already said by another driver (a cap quotes its cause): not repeated.
    covered: set[str] = field(default_factory=set)


class ModelContext:
    """What a model constructor gets: the known measures, global settings, error helper."""

    def __init__(self, origin: str, measures: dict[str, Measure], bands: dict[str, float]):
        self.origin = origin
        self.measures = measures
        self.bands = bands

    def fail(self, path: str, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(f"{self.origin}: {path}: {message}", hint=hint)

    def check_condition(self, cond: Condition, path: str) -> None:
        """Refuse references to unknown measures or inputs, naming the key."""
        if cond.input is None:
            return
        head, _, tail = cond.input.partition(".")
        if head == "account":
            return
        measure = self.measures.get(head)
        if measure is None:
            raise self.fail(
                f"{path}.input",
                f"unknown measure {head!r} in {cond.input!r}",
                hint=f"known: account, {', '.join(sorted(self.measures))}",
            )
        if tail != "score" and tail not in measure.inputs:
            raise self.fail(
                f"{path}.input",
                f"measure {head!r} has no input {tail!r}",
                hint=f"its inputs: score, {', '.join(measure.inputs)}",
            )


class HealthModel:
    """Base class of a health model type (``type = "<name>"`` in ``[health.models.X]``).

    ``Settings`` validates the model's table; the constructor checks references and raises
    ``ctx.fail(...)`` errors; ``measures_needed()`` names the measures to compute;
    ``conditions()`` lists conditions (their event counts are aggregated set-wise);
    ``combine()`` turns results into an ``Outcome`` (with ``detail``: also the lines of the
    calculation, for explain).
    """

    name: ClassVar[str] = ""
    Settings: ClassVar[type[ModelSettings]] = ModelSettings

    def __init__(self, model_name: str, settings: Any, ctx: ModelContext):
        self.model_name = model_name
        self.settings = settings
        self.ctx = ctx

    @property
    def score_bands(self) -> dict[str, float]:
        """Bands on the 0–100 score (used for overrides)."""
        return self.ctx.bands

    def measures_needed(self) -> list[str]:
        raise NotImplementedError

    def conditions(self) -> list[Condition]:
        return []

    def combine(
        self, results: dict[str, MeasureResult], lookup: Lookup, *, detail: bool = False
    ) -> Outcome:
        raise NotImplementedError


# ----------------------------------------------------------------------------------------
# Configuration: [health]
# ----------------------------------------------------------------------------------------


def check_bands(value: dict[str, float] | None, low: float, high: float, unit: str) -> None:
    if value is None:
        return
    if not value:
        raise ValueError("bands needs at least one band, e.g. { green = 70, yellow = 40, red = 0 }")
    for name, minimum in value.items():
        if not name or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"band name {name!r} must be lower-case letters, digits or _")
        if not low <= minimum <= high:
            raise ValueError(f"band {name} starts at {minimum:g}, outside {low:g}..{high:g} {unit}")


class SegmentConfig(_Strict):
    """``[[health.segments]]``: accounts matching every given rule use ``model``."""

    name: str
    model: str
    mrr_at_least: float | None = None
    mrr_below: float | None = None
    plan: list[str] | None = None
    lifecycle_stage: list[str] | None = None

    @field_validator("plan", "lifecycle_stage", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def matches(self, account: Account) -> bool:
        mrr = account.mrr
        if self.mrr_at_least is not None and (mrr is None or mrr < self.mrr_at_least):
            return False
        if self.mrr_below is not None and (mrr is None or mrr >= self.mrr_below):
            return False
        if self.plan is not None and (
            not account.plan or account.plan.casefold() not in {p.casefold() for p in self.plan}
        ):
            return False
        return not (
            self.lifecycle_stage is not None
            and (
                not account.lifecycle_stage
                or account.lifecycle_stage.casefold()
                not in {s.casefold() for s in self.lifecycle_stage}
            )
        )


class HealthSection(_Strict):
    """``[health]`` of hub.toml (measure and model tables are validated by their plugins)."""

    model: str = "default"
    bands: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_BANDS))
    drivers: int = Field(3, ge=1, le=10)
    workers: int = Field(0, ge=0, le=16)
    measures: dict[str, dict[str, Any]] = Field(default_factory=dict)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    segments: list[SegmentConfig] = Field(default_factory=list)

    @field_validator("bands")
    @classmethod
    def _bands(cls, value: dict[str, float]) -> dict[str, float]:
        check_bands(value, 0, 100, "(scores are 0-100)")
        return value


def _validate(cls: type[BaseModel], data: Any, path: str, origin: str) -> Any:
    """Validate a piece of ``[health]`` (one-line errors naming the key path)."""
    return validate_section(cls, data, path, origin)


@dataclass
class ResolvedModel:
    """A configured model with its measures' parameters resolved."""

    name: str
    model: HealthModel
    params: dict[str, tuple[Any, str]]  # measure -> (params, stream key)
    specs: list[tuple[tuple[str, ...], int]]


class HealthSettings:
    """``[health]`` validated and resolved against the registered measures and models."""

    def __init__(self, config: Any = None):
        from hub.registry import get_registry

        raw = dict(getattr(config, "health", None) or {}) if config is not None else {}
        path = getattr(config, "path", None) if config is not None else None
        self.origin = str(path) if path else "hub.toml"
        self.raw = raw
        self.path = str(path) if path else None
        registry = get_registry()
        self.measures: dict[str, Measure] = {}
        model_types: dict[str, type[HealthModel]] = {}
        for name, obj in sorted(registry.health_models.items()):
            if isinstance(obj, type) and issubclass(obj, Measure):
                self.measures[name] = obj()
            elif isinstance(obj, type) and issubclass(obj, HealthModel):
                model_types[name] = obj
        self.section: HealthSection = _validate(HealthSection, raw, "health", self.origin)
        self.bands = dict(self.section.bands)
        ctx = ModelContext(self.origin, self.measures, self.bands)

        global_params: dict[str, dict[str, Any]] = {}
        for name, params in self.section.measures.items():
            if name not in self.measures:
                raise ctx.fail(
                    f"health.measures.{name}",
                    f"unknown measure {name!r}",
                    hint=f"known: {', '.join(self.measures) or 'none (is plugins.health_models installed?)'}",
                )
            _validate(self.measures[name].Params, params, f"health.measures.{name}", self.origin)
            global_params[name] = dict(params)

        models_raw = dict(self.section.models)
        if "default" not in models_raw:
            models_raw["default"] = default_model_config(self.measures)
        self.models: dict[str, ResolvedModel] = {}
        for model_name, table in models_raw.items():
            where = f"health.models.{model_name}"
            if not isinstance(table, dict):
                raise ctx.fail(where, "must be a table", hint=f"write [{where}] with type = …")
            kind = table.get("type", "weighted")
            table = {"type": kind, **table}
            if kind not in model_types:
                raise ctx.fail(
                    f"{where}.type",
                    f"unknown model type {kind!r}",
                    hint=f"known: {', '.join(sorted(model_types)) or 'none'}",
                )
            cls = model_types[kind]
            settings = _validate(cls.Settings, table, where, self.origin)
            model = cls(model_name, settings, ctx)
            params: dict[str, tuple[Any, str]] = {}
            for measure_name in model.measures_needed():
                if measure_name not in self.measures:
                    raise ctx.fail(where, f"unknown measure {measure_name!r}")
                override = settings.measures.get(measure_name, {})
                merged = {**global_params.get(measure_name, {}), **override}
                value = _validate(
                    self.measures[measure_name].Params,
                    merged,
                    f"{where}.measures.{measure_name}"
                    if override
                    else f"health.measures.{measure_name}",
                    self.origin,
                )
                key = (
                    measure_name + ":" + json.dumps(value.model_dump(), sort_keys=True, default=str)
                )
                params[measure_name] = (value, key)
            for measure_name in settings.measures:
                if measure_name not in self.measures:
                    raise ctx.fail(
                        f"{where}.measures.{measure_name}",
                        f"unknown measure {measure_name!r}",
                        hint=f"known: {', '.join(self.measures)}",
                    )
            specs = sorted({c.spec for c in model.conditions() if c.spec is not None})
            self.models[model_name] = ResolvedModel(model_name, model, params, specs)

        self.segments = list(self.section.segments)
        names = set()
        for i, segment in enumerate(self.segments):
            if segment.model not in self.models:
                raise ctx.fail(
                    f"health.segments.{i}.model",
                    f"unknown model {segment.model!r}",
                    hint=f"models: {', '.join(sorted(self.models))}",
                )
            if segment.name in names or segment.name == "default":
                raise ctx.fail(
                    f"health.segments.{i}.name",
                    f"segment name {segment.name!r} is used twice (or is the reserved 'default')",
                    hint="give every segment its own name",
                )
            names.add(segment.name)
        if self.section.model not in self.models:
            raise ctx.fail(
                "health.model",
                f"unknown model {self.section.model!r}",
                hint=f"models: {', '.join(sorted(self.models))}",
            )
        self.default_model = self.models[self.section.model]
        # Only models some account can get need their measures aggregated.
        self.used = [
            self.models[name]
            for name in dict.fromkeys([self.section.model, *(s.model for s in self.segments)])
        ]
        self.fingerprint = hashlib.blake2b(
            json.dumps(
                [ENGINE_VERSION, raw, sorted(registry.health_models)], sort_keys=True, default=str
            ).encode(),
            digest_size=12,
        ).hexdigest()

    def choose(self, account: Account) -> tuple[str, ResolvedModel]:
        """The account's segment and model: the first matching segment, else the default."""
        for segment in self.segments:
            if segment.matches(account):
                return segment.name, self.models[segment.model]
        return "default", self.default_model


def default_model_config(measures: dict[str, Measure]) -> dict[str, Any]:
    """The built-in ``default`` model: weighted, each measure at its ``default_weight``."""
    weights = {n: m.default_weight for n, m in measures.items() if m.default_weight > 0}
    caps = [cap for n, m in measures.items() if m.default_weight > 0 for cap in m.default_caps]
    return {
        "type": "weighted",
        "description": "built-in default: every measure at its default weight",
        "weights": weights,
        "caps": caps,
    }


def load_settings(config: Any = None) -> HealthSettings:
    """Validate ``[health]`` of ``config`` (None → defaults) against the registered plugins."""
    return HealthSettings(config)


# ----------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------


@dataclass
class HealthResult:
    """What one ``compute_health``/``backfill_health`` call did."""

    accounts: int = 0
    full: bool = False
    reason: str = ""
    bands: dict[str, int] = field(default_factory=dict)
    removed: int = 0
    backfilled_days: int = 0
    duration_s: float = 0.0
    run_id: int | None = None

    @property
    def records(self) -> int:
        return self.accounts


@dataclass
class Evaluation:
    """Everything computed for one account (what ``explain`` shows and the tables store)."""

    account: Account
    segment: str
    model: ResolvedModel
    results: dict[str, MeasureResult]
    counts: dict[tuple[tuple[str, ...], int], int]
    outcome: Outcome
    override: dict[str, Any] | None
    score: int | None
    computed_score: int | None
    band: str | None
    drivers: list[str]
    trend_7d: int | None = None
    trend_30d: int | None = None


class _Stream:
    """An aggregation cursor ordered by account id, read in step with the accounts."""

    __slots__ = ("cursor", "row")

    def __init__(self, cursor: Any):
        self.cursor = cursor
        self.row = next(cursor, None)

    def get(self, key: str) -> tuple[Any, ...] | None:
        row = self.row
        while row is not None and (row[0] is None or row[0] < key):
            row = next(self.cursor, None)
        self.row = row
        if row is not None and row[0] == key:
            return row
        return None


class _ThreadStream(_Stream):
    """The aggregation read on its own connection in a thread, so that SQLite computes the
    next groups (it releases the GIL) while Python scores the previous accounts: a full run
    uses both cores. Only for file databases (a second connection to ``:memory:`` would be
    another database)."""

    __slots__ = ("queue", "batch", "pos", "thread", "stop")

    def __init__(self, path: str, sql: str, args: list[Any]):
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=16)
        self.stop = threading.Event()
        self.batch: list[tuple[Any, ...]] = []
        self.pos = 0
        self.thread = threading.Thread(
            target=self._read, args=(path, sql, args), name="hub-health-reader", daemon=True
        )
        self.thread.start()
        self.row = self._next()

    def _read(self, path: str, sql: str, args: list[Any]) -> None:
        try:
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
            try:
                conn.execute("PRAGMA busy_timeout=30000")
                cursor = conn.execute(sql, args)
                while not self.stop.is_set():
                    rows = cursor.fetchmany(500)
                    if not rows:
                        break
                    self.queue.put(rows)
            finally:
                conn.close()
            self.queue.put(None)
        except BaseException as exc:  # handed to the consuming thread, which re-raises it
            self.queue.put(exc)

    def _next(self) -> tuple[Any, ...] | None:
        if self.pos >= len(self.batch):
            if self.batch is None:
                return None
            item = self.queue.get()
            if item is None:
                self.batch = None  # type: ignore[assignment]
                return None
            if isinstance(item, BaseException):
                raise item
            self.batch, self.pos = item, 0
        row = self.batch[self.pos]
        self.pos += 1
        return row

    def get(self, key: str) -> tuple[Any, ...] | None:
        row = self.row
        while row is not None and (row[0] is None or row[0] < key):
            row = self._next()
        self.row = row
        if row is not None and row[0] == key:
            return row
        return None

    def close(self) -> None:
        self.stop.set()
        while self.thread.is_alive():
            # Drain so a reader blocked on a full queue sees the stop flag.
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.1)
        self.thread.join()


def _loads(text: Any) -> dict[str, Any]:
    if not text:
        return {}
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _fingerprint(values: tuple[Any, ...]) -> str:
    """A hash of an ``accounts`` row (its columns and facts JSON, not ``updated_at``)."""
    text = "\x1f".join([str(v) for v in values])
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def _fact_override(facts: dict[str, Any]) -> dict[str, Any] | None:
    """The ``health_override`` fact as {value, reason, until}, or None if absent/invalid."""
    raw = facts.get("health_override")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, dict) or raw.get("value") in (None, ""):
        return None
    try:
        value = int(float(raw["value"]))
    except (TypeError, ValueError):
        return None
    if not 0 <= value <= 100:
        return None
    until = parse_date(raw.get("until"))
    if raw.get("until") not in (None, "") and until is None:
        return None
    return {
        "value": value,
        "reason": str(raw.get("reason") or ""),
        "until": until.isoformat() if until else None,
        "source": "hubspot",
    }


def _active_override(
    account: Account,
    stored: tuple[int, str, str, str] | None,
    as_of: dt.datetime,
    *,
    historical: bool,
) -> dict[str, Any] | None:
    """The override in force at ``as_of``: the hub's own first, then the HubSpot fact.

    For a past day (``historical``) only hub overrides set before that day's end count:
    facts have no history.
    """
    today = as_of.date().isoformat()
    if stored is not None:
        value, reason, until, set_at = stored
        in_force = (until is None or today <= until) and (
            not historical or (set_at or "") <= clock.iso(as_of)
        )
        if in_force:
            return {"value": value, "reason": reason or "", "until": until, "source": "hub"}
    if historical:
        return None
    fact = _fact_override(account.facts)
    if fact is not None and (fact["until"] is None or today <= fact["until"]):
        return fact
    return None


class _Plan:
    """Where each measure's values sit in the aggregation row, and how counts are tallied."""

    def __init__(self, agg: Aggregates):
        self.agg = agg
        self.handles: dict[str, tuple[Any, ...]] = {}  # measure stream key -> handles
        self.specs: dict[tuple[tuple[str, ...], int], Any] = {}  # event-count spec -> handle
        self.tally: int | None = None
        self.getters: dict[Any, Callable[[tuple[Any, ...], dict[str, int]], tuple[Any, ...]]] = {}

    def finish(self) -> None:
        """Compile, per measure, a function from (row, tally) to its values."""
        found = self.agg.count_column()
        self.tally, windows = found if found is not None else (None, [])

        def compile_(handles: tuple[Any, ...]) -> Callable[..., tuple[Any, ...]]:
            parts: list[Any] = []
            for h in handles:
                if h.__class__ is int:
                    parts.append(h)
                else:
                    _, types, days = h
                    tags = [str(i) for i, d in enumerate(windows) if d <= days]
                    parts.append(tuple(t + tag for t in types for tag in tags))
            if all(p.__class__ is int for p in parts):
                if not parts:
                    return lambda row, tally: ()
                cols = tuple(parts)
                return lambda row, tally: tuple([row[i] for i in cols])

            def get(row: tuple[Any, ...], tally: dict[str, int]) -> tuple[Any, ...]:
                return tuple(
                    [
                        row[p] if p.__class__ is int else sum([tally.get(k, 0) for k in p])
                        for p in parts
                    ]
                )

            return get

        for key, handles in self.handles.items():
            self.getters[key] = compile_(handles)
        for spec, handle in self.specs.items():
            self.getters[spec] = compile_((handle,))

    def tally_of(self, row: tuple[Any, ...] | None) -> dict[str, int]:
        if row is None or self.tally is None or not row[self.tally]:
            return {}
        return Counter(row[self.tally].split(Aggregates.SEP))


def _evaluate(
    settings: HealthSettings,
    plan: _Plan,
    account: Account,
    row: tuple[Any, ...] | None,
    window: Window,
    stored_override: tuple[int, str, str, str] | None,
    *,
    historical: bool,
    detail: bool = False,
) -> Evaluation:
    segment, resolved = settings.choose(account)
    results: dict[str, MeasureResult] = {}
    measures = settings.measures
    tally = plan.tally_of(row)
    getters = plan.getters
    for name, (params, key) in resolved.params.items():
        values = None if row is None else getters[key](row, tally)
        result = measures[name].score(params, account, values, window)
        value = result.value
        if value is not None:
            value = 100.0 if value > 100 else 0.0 if value < 0 else float(value)
            # hundredths(), inlined: this runs for every measure of every account.
            shifted = value * 100 + 0.5
            near = int(shifted)  # value >= 0: int() is floor
            if 1e-6 < shifted - near < 0.999999:
                result.value_h = near
            else:
                result.value_h = hundredths(value)
        results[name] = result
    counts: dict[tuple[tuple[str, ...], int], int] = {}
    for spec in resolved.specs:
        counts[spec] = getters[spec](row, tally)[0] if row is not None else 0
    lookup = Lookup(account, results, counts)
    outcome = resolved.model.combine(results, lookup, detail=detail)
    override = _active_override(account, stored_override, window.as_of, historical=historical)
    computed = outcome.score
    if override is not None:
        score = override["value"]
        band = band_for(score, resolved.model.score_bands)
    else:
        score, band = computed, outcome.band
    limit = settings.section.drivers
    drivers: list[str] = []
    covered = outcome.covered
    for _, source in sorted(outcome.drivers, key=_impact):
        for text in source.drivers if isinstance(source, MeasureResult) else (source,):
            if text and text not in drivers and text not in covered:
                drivers.append(text)
                if len(drivers) == limit:
                    break
        if len(drivers) == limit:
            break
    if override is not None:
        until = f" until {override['until']}" if override["until"] else ""
        reason = f": {override['reason']}" if override["reason"] else ""
        drivers.insert(0, f"CSM override {override['value']}{until} (computed {computed}){reason}")
    if outcome.exact_h is None and not drivers:
        drivers = ["no data yet for any measure of this model"]
    return Evaluation(
        account=account,
        segment=segment,
        model=resolved,
        results=results,
        counts=counts,
        outcome=outcome,
        override=override,
        score=score,
        computed_score=computed,
        band=band,
        drivers=drivers,
    )


def _impact(item: tuple[float, Any]) -> float:
    return item[0]


def _set_targets(store: Store, targets: Iterable[str] | None) -> None:
    """Fill (or, with None, empty) the temp table of accounts to recompute.

    In a transaction of its own: a bare DML statement would open an implicit transaction
    on the store's connection that later ``atomic()`` blocks only nest into as savepoints,
    leaving the run's writes uncommitted.
    """
    db = store.db
    db.execute("CREATE TEMP TABLE IF NOT EXISTS _health_targets (id TEXT PRIMARY KEY)")
    with db.atomic():
        db.execute("DELETE FROM temp._health_targets")
        if targets is not None:
            db.conn.executemany(
                "INSERT OR IGNORE INTO temp._health_targets (id) VALUES (?)",
                ((t,) for t in targets),
            )


def _run(
    store: Store,
    settings: HealthSettings,
    as_of: dt.datetime,
    targets: set[str] | None,
    *,
    sink: Callable[[Evaluation, str], None],
    historical: bool = False,
    with_trend: bool = True,
    detail: bool = False,
    bounds: tuple[str | None, str | None] = (None, None),
) -> None:
    """Evaluate the accounts (all, ``targets``, or ids within ``bounds``) as of ``as_of``,
    handing each to ``sink``."""
    db = store.db
    scoped = targets is not None
    if scoped:
        _set_targets(store, targets)
    window = Window(as_of)
    agg = Aggregates(window)
    plan = _Plan(agg)
    for resolved in settings.used:
        for name, (params, key) in resolved.params.items():
            if key not in plan.handles:
                plan.handles[key] = tuple(settings.measures[name].aggregate(params, agg))
        for spec in resolved.specs:
            plan.specs[spec] = agg.count(spec[0], spec[1])
    plan.finish()
    stream: _Stream | None = None
    if agg.exprs:
        sql, args = agg.sql(targets=scoped, bounds=bounds)
        if not scoped and store.path != ":memory:":
            stream = _ThreadStream(store.path, sql, args)
        else:
            # Fetched whole (a scoped run is small): no read statement stays open on the
            # connection that writes (see the chunked accounts below).
            stream = _Stream(iter(db.execute(sql, args).fetchall()))
    overrides = {
        row[0]: tuple(row[1:])
        for row in db.execute(
            "SELECT account_id, value, reason, until, set_at FROM health_overrides"
        )
    }
    day7 = (window.today - dt.timedelta(days=7)).isoformat()
    day30 = (window.today - dt.timedelta(days=30)).isoformat()
    trend_sql = (
        ", (SELECT score FROM health_history h WHERE h.account_id = a.id AND h.day <= ? "
        "ORDER BY h.day DESC LIMIT 1), (SELECT score FROM health_history h WHERE "
        "h.account_id = a.id AND h.day <= ? ORDER BY h.day DESC LIMIT 1)"
        if with_trend
        else ", NULL, NULL"
    )
    conditions, cond_args = [], []
    if scoped:
        conditions.append(f"a.id IN (SELECT id FROM {Aggregates.TARGETS})")
    if bounds[0] is not None:
        conditions.append("a.id >= ?")
        cond_args.append(bounds[0])
    if bounds[1] is not None:
        conditions.append("a.id < ?")
        cond_args.append(bounds[1])
    select = (
        f"SELECT {', '.join('a.' + c for c in Account.COLUMNS)}, a.facts{trend_sql} "
        f"FROM accounts a WHERE {' AND '.join([*conditions, 'a.id > ?'])} "
        f"ORDER BY a.id LIMIT {_CHUNK}"
    )
    args = [*([day7, day30] if with_trend else []), *cond_args]
    try:
        after = ""
        while True:
            # Accounts are read in chunks, each fully fetched before it is scored: a read
            # statement left open on this connection would pin an old snapshot, and the
            # writes of this run would then fail once another process (a worker) has
            # written ("database is locked").
            chunk = db.execute(select, [*args, after]).fetchall()
            if not chunk:
                break
            after = chunk[-1][0]
            for row in chunk:
                values = row[:10]
                account = Account(values, _loads(row[10]))
                evaluation = _evaluate(
                    settings,
                    plan,
                    account,
                    stream.get(account.id) if stream is not None else None,
                    window,
                    overrides.get(account.id),
                    historical=historical,
                    detail=detail,
                )
                if evaluation.score is not None:
                    if row[11] is not None:
                        evaluation.trend_7d = evaluation.score - row[11]
                    if row[12] is not None:
                        evaluation.trend_30d = evaluation.score - row[12]
                sink(evaluation, _fingerprint((*values, row[10])))
    finally:
        if isinstance(stream, _ThreadStream):
            stream.close()
    if scoped:
        _set_targets(store, None)


class _Writer:
    """Buffers score, history and fingerprint rows and writes them in batches."""

    def __init__(
        self,
        store: Store,
        as_of: dt.datetime,
        *,
        scores: bool,
        history: bool,
        computed_at: str | None = None,
    ):
        self.db = store.db
        self.day = as_of.date().isoformat()
        self.computed_at = computed_at or clock.iso()
        self.write_scores = scores
        self.write_history = history
        self.scores: list[tuple[Any, ...]] = []
        self.history: list[tuple[Any, ...]] = []
        self.state: list[tuple[str, str]] = []
        self.count = 0
        self.bands: dict[str, int] = {}
        self.names: dict[str, str] = {}

    def __call__(self, ev: Evaluation, fingerprint: str) -> None:
        self.count += 1
        band = ev.band or "none"
        self.bands[band] = self.bands.get(band, 0) + 1
        aid = ev.account.id
        if self.write_scores:
            # {"<measure>": {"score": 72.5, "weight": 15.0}, ...}: scores and weights only
            # (the inputs are for --explain, which recomputes). Written by hand because
            # this runs for every account and json.dumps is the slow part of it.
            weights = ev.outcome.weights
            names = self.names
            parts = []
            for name, result in ev.results.items():
                key = names.get(name) or names.setdefault(name, json.dumps(name))
                value_h = result.value_h
                score = "null" if value_h is None else repr(value_h / 100)
                weight = weights.get(name)
                parts.append(
                    f'{key}:{{"score":{score}}}'
                    if weight is None
                    else f'{key}:{{"score":{score},"weight":{weight!r}}}'
                )
            override = ev.override or {}
            self.scores.append(
                (
                    aid,
                    ev.score,
                    ev.computed_score,
                    ev.band,
                    ev.model.name,
                    ev.segment,
                    "{" + ",".join(parts) + "}",
                    json.dumps(ev.drivers, ensure_ascii=False),
                    ev.trend_7d,
                    ev.trend_30d,
                    override.get("value"),
                    override.get("reason"),
                    override.get("until"),
                    self.computed_at,
                )
            )
            self.state.append((aid, fingerprint))
        if self.write_history:
            self.history.append((aid, self.day, ev.score, ev.band, ev.computed_score))
        if len(self.history) >= _BATCH or len(self.scores) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if not (self.scores or self.history or self.state):
            return
        with self.db.atomic():
            if self.scores:
                self.db.conn.executemany(
                    "INSERT OR REPLACE INTO health_scores (account_id, score, computed_score, band, "
                    "model, segment, measures, drivers, trend_7d, trend_30d, override_value, "
                    "override_reason, override_until, computed_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    self.scores,
                )
            if self.history:
                self.db.conn.executemany(
                    "INSERT OR REPLACE INTO health_history (account_id, day, score, band, "
                    "computed_score) VALUES (?,?,?,?,?)",
                    self.history,
                )
            if self.state:
                self.db.conn.executemany(
                    "INSERT OR REPLACE INTO _hub_health_state (account_id, fingerprint) VALUES (?,?)",
                    self.state,
                )
        self.scores.clear()
        self.history.clear()
        self.state.clear()


# Below this many accounts one process is faster than starting another.
PARALLEL_MIN_ACCOUNTS = 20_000


def _worker_count(store: Store, settings: HealthSettings) -> int:
    wanted = settings.section.workers
    if store.path == ":memory:" or wanted == 1:
        return 1
    if wanted:
        return wanted
    if (os.cpu_count() or 1) < 2:
        return 1
    accounts = store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
    return 2 if accounts >= PARALLEL_MIN_ACCOUNTS else 1


def _full_pass(
    store: Store,
    settings: HealthSettings,
    as_of: dt.datetime,
    *,
    scores: bool,
    history: bool,
    historical: bool = False,
    with_trend: bool = True,
) -> tuple[int, dict[str, int]]:
    """Score every account and write the rows; returns (accounts, count per band).

    With many accounts the id range is split between this process and worker processes
    (``[health] workers``; 0 = two when there are at least 20,000 accounts and two CPUs):
    the per-account Python work is what takes the time, and one process uses one core.
    Each process reads its own share of the aggregation and writes its own rows.
    """
    computed_at = clock.iso()
    workers = _worker_count(store, settings)
    with _big_cache(store):
        return _split_pass(
            store, settings, as_of, workers, computed_at, scores, history, historical, with_trend
        )


@contextlib.contextmanager
def _big_cache(store: Store, kib: int = 32768) -> Iterator[None]:
    """A larger page cache while a full run writes every account's rows (fewer page reads
    and writes on the way), restored afterwards."""
    db = store.db
    before = db.execute("PRAGMA cache_size").fetchone()[0]
    db.execute(f"PRAGMA cache_size = -{kib}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA cache_size = {int(before)}")


def _split_pass(
    store: Store,
    settings: HealthSettings,
    as_of: dt.datetime,
    workers: int,
    computed_at: str,
    scores: bool,
    history: bool,
    historical: bool,
    with_trend: bool,
) -> tuple[int, dict[str, int]]:
    if workers <= 1:
        writer = _Writer(store, as_of, scores=scores, history=history, computed_at=computed_at)
        _run(
            store, settings, as_of, None, sink=writer, historical=historical, with_trend=with_trend
        )
        writer.flush()
        return writer.count, dict(writer.bands)
    total = store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
    cuts: list[str | None] = [None]
    for k in range(1, workers):
        row = store.db.execute(
            "SELECT id FROM accounts ORDER BY id LIMIT 1 OFFSET ?", [total * k // workers]
        ).fetchone()
        if row is not None and row[0] not in cuts:
            cuts.append(row[0])
    cuts.append(None)
    ranges = list(zip(cuts[:-1], cuts[1:]))
    from hub.plugins import _plugin_dists

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    job = (
        store.path,
        settings.raw,
        settings.path,
        clock.iso(as_of),
        scores,
        history,
        historical,
        with_trend,
        computed_at,
        ",".join(sorted(_plugin_dists)),
    )
    procs = [
        context.Process(target=_worker, args=(*job, bounds, results), daemon=True)
        for bounds in ranges[1:]
    ]
    for proc in procs:
        proc.start()
    try:
        writer = _Writer(store, as_of, scores=scores, history=history, computed_at=computed_at)
        _run(
            store,
            settings,
            as_of,
            None,
            sink=writer,
            historical=historical,
            with_trend=with_trend,
            bounds=ranges[0],
        )
        writer.flush()
        count, bands = writer.count, dict(writer.bands)
        pending = len(procs)
        while pending:
            try:
                item = results.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and results.empty():
                    raise HubError(
                        "a health worker process died without a result",
                        hint="run again with [health] workers = 1 to see the error",
                    ) from None
                continue
            pending -= 1
            if item[0] == "error":
                raise HubError(f"a health worker process failed: {item[1]}")
            count += item[1]
            for band, n in item[2].items():
                bands[band] = bands.get(band, 0) + n
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
    return count, bands


def _worker(
    path: str,
    raw: dict[str, Any],
    config_path: str | None,
    as_of_iso: str,
    scores: bool,
    history: bool,
    historical: bool,
    with_trend: bool,
    computed_at: str,
    plugins: str,
    bounds: tuple[str | None, str | None],
    results: Any,
) -> None:
    """A worker process of ``_full_pass``: scores the accounts within ``bounds``."""
    try:
        # The same plugins as the parent (which skips entry points under tests).
        os.environ["HUB_LOAD_PLUGINS"] = plugins
        settings = HealthSettings(SimpleNamespace(health=raw, path=config_path))
        as_of = clock.parse(as_of_iso)
        assert as_of is not None
        store = Store(path, migrate=False)
        store.db.execute("PRAGMA cache_size = -32768")
        try:
            writer = _Writer(store, as_of, scores=scores, history=history, computed_at=computed_at)
            _run(
                store,
                settings,
                as_of,
                None,
                sink=writer,
                historical=historical,
                with_trend=with_trend,
                bounds=bounds,
            )
            writer.flush()
        finally:
            store.close()
        results.put(("ok", writer.count, dict(writer.bands)))
    except BaseException as exc:  # reported to the parent, which raises it
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def _meta(store: Store, key: str) -> str | None:
    row = store.db.execute("SELECT value FROM _hub_health_meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def _set_meta(store: Store, key: str, value: str) -> None:
    store.db.execute(
        "INSERT OR REPLACE INTO _hub_health_meta (key, value) VALUES (?, ?)", [key, value]
    )


def _changed_accounts(
    store: Store, settings: HealthSettings, now: dt.datetime, run_id: int
) -> tuple[set[str] | None, str]:
    """Which accounts an incremental run must recompute, or None (all) and why."""
    db = store.db
    last = db.execute(
        "SELECT started_at FROM _hub_runs WHERE kind = 'health' AND status = 'ok' AND id != ? "
        "ORDER BY id DESC LIMIT 1",
        [run_id],
    ).fetchone()
    if last is None:
        return None, "first run"
    last_start = clock.parse(last[0])
    if last_start is None or now < last_start:
        return None, "clock moved back"
    if last_start.date() != now.date():
        return None, "day changed"
    if _meta(store, "config") != settings.fingerprint:
        return None, "config changed"
    # ``>=``: a simulated clock may stamp a mapping and the health run with the same time.
    # No DISTINCT: it would steer SQLite to walk the account index over every event.
    changed = {
        row[0]
        for row in db.execute(
            "SELECT account_id FROM events WHERE mapped_at >= ? AND account_id IS NOT NULL",
            [last[0]],
        )
    }
    known = dict(db.execute("SELECT account_id, fingerprint FROM _hub_health_state").fetchall())
    cols = ", ".join(Account.COLUMNS)
    for row in db.execute(f"SELECT {cols}, facts FROM accounts"):
        if known.get(row[0]) != _fingerprint(tuple(row)):
            changed.add(row[0])
    return changed, "incremental"


def compute_health(store: Store, config: Any = None, *, full: bool = False) -> HealthResult:
    """Recompute health scores (only what changed unless ``full``), write scores and today's
    history rows, and record the run in ``_hub_runs`` (kind ``health``)."""
    settings = load_settings(config)
    started = time.perf_counter()
    now = clock.now()
    with store.recorded_run("health") as run:
        run_id = run.id
        result = HealthResult(run_id=run_id)
        targets, reason = (
            (None, "requested") if full else _changed_accounts(store, settings, now, run_id)
        )
        result.full = targets is None
        result.reason = reason
        if targets is None:
            result.accounts, result.bands = _full_pass(
                store, settings, now, scores=True, history=True
            )
        elif targets:
            writer = _Writer(store, now, scores=True, history=True)
            _run(store, settings, now, targets, sink=writer)
            writer.flush()
            result.accounts, result.bands = writer.count, dict(writer.bands)
        result.bands = dict(sorted(result.bands.items()))
        with store.db.atomic():
            result.removed = store.db.execute(
                "DELETE FROM health_scores WHERE account_id NOT IN (SELECT id FROM accounts)"
            ).rowcount
            store.db.execute(
                "DELETE FROM _hub_health_state WHERE account_id NOT IN (SELECT id FROM accounts)"
            )
            _set_meta(store, "config", settings.fingerprint)
        result.duration_s = time.perf_counter() - started
        run.records = result.accounts
        run.notes.append(
            f"{'full' if result.full else 'incremental'} ({reason}): "
            + ", ".join(f"{n} {b}" for b, n in result.bands.items())
        )
    return result


def backfill_health(
    store: Store, config: Any = None, days: int = 30, *, every: int = 1
) -> HealthResult:
    """Rebuild ``health_history`` for the ``days`` days before today, then compute today.

    ``every`` > 1 computes only every N-th day (oldest first), enough for trends at a
    fraction of the cost.

    Each past day is computed as of its last moment: events with ``ts`` up to that day's end,
    account facts as they are now, and only overrides set in the hub that were in force then.
    """
    if days < 1:
        raise ConfigError(f"--backfill needs a number of days ≥ 1, not {days}")
    settings = load_settings(config)
    started = time.perf_counter()
    now = clock.now()
    with store.recorded_run("health") as run:
        result = HealthResult(run_id=run.id, full=True, reason=f"backfill {days} days")
        for back in range(days, 0, -max(1, every)):
            day = now.date() - dt.timedelta(days=back)
            as_of = dt.datetime.combine(day, dt.time.max, tzinfo=dt.timezone.utc)
            _full_pass(
                store,
                settings,
                as_of,
                scores=False,
                history=True,
                historical=True,
                with_trend=False,
            )
            result.backfilled_days += 1
        result.accounts, bands = _full_pass(store, settings, now, scores=True, history=True)
        result.bands = dict(sorted(bands.items()))
        with store.db.atomic():
            result.removed = store.db.execute(
                "DELETE FROM health_scores WHERE account_id NOT IN (SELECT id FROM accounts)"
            ).rowcount
            _set_meta(store, "config", settings.fingerprint)
        result.duration_s = time.perf_counter() - started
        run.records = result.accounts
        run.notes.append(
            f"backfill {days} days, then today: "
            + ", ".join(f"{n} {b}" for b, n in result.bands.items())
        )
    return result


def _resolve_account(store: Store, account: str) -> str:
    from hub.timeline.identity import account_for

    row = store.db.execute("SELECT id FROM accounts WHERE id = ?", [str(account)]).fetchone()
    if row:
        return row[0]
    found = account_for(store, str(account))
    if found is None:
        raise ConfigError(
            f"no account matches {account!r}",
            hint="give an account id, domain or exact name ('hub health --json' lists them)",
        )
    return found["id"]


def _evaluate_one(store: Store, settings: HealthSettings, account_id: str) -> Evaluation:
    collected: list[Evaluation] = []
    _run(
        store,
        settings,
        clock.now(),
        {account_id},
        sink=lambda ev, _fp: collected.append(ev),
        detail=True,
    )
    if not collected:
        raise ConfigError(f"no account {account_id!r}", hint="run 'hub map' first")
    return collected[0]


def explain(store: Store, account_id: str, config: Any = None) -> dict[str, Any]:
    """The whole calculation for one account (by id, domain or name), as of now.

    Every measure with its inputs, parameters, weight and contribution; the model and segment
    chosen; the stated unrounded score (``score_exact``), which the ``contributions`` add up
    to exactly, and the score that is its rounding half up; override, band, drivers, trend.
    Nothing is written.
    """
    settings = load_settings(config)
    ev = _evaluate_one(store, settings, _resolve_account(store, account_id))
    return _explain_dict(settings, ev)


def _explain_dict(settings: HealthSettings, ev: Evaluation) -> dict[str, Any]:
    acc = ev.account
    outcome = ev.outcome
    by_measure = {c.name: c for c in outcome.contributions if c.name in ev.results}
    measures = []
    for name, result in ev.results.items():
        contribution = by_measure.get(name)
        params, _ = ev.model.params[name]
        weight = outcome.weights.get(name)
        measures.append(
            {
                "name": name,
                "label": settings.measures[name].label or name,
                "score": _h(result.value_h),
                "status": "ok" if result.value_h is not None else "no data (left out)",
                "weight": weight,
                "contribution": _h(contribution.amount_h) if contribution else None,
                "inputs": result.inputs,
                "drivers": result.drivers,
                "params": params.model_dump(),
            }
        )
    counts = [
        {"events": list(types), "days": days, "count": ev.counts.get((types, days), 0)}
        for types, days in ev.model.specs
    ]
    exact = outcome.exact_h
    return {
        "account": {
            "id": acc.id,
            "name": acc.name,
            "domain": acc.domain,
            "plan": acc.plan,
            "mrr": acc.mrr,
            "seats": acc.seats,
            "lifecycle_stage": acc.lifecycle_stage,
            "owner_id": acc.owner_id,
        },
        "as_of": clock.iso(),
        "segment": ev.segment,
        "model": ev.model.name,
        "model_type": ev.model.model.name,
        "model_description": ev.model.model.settings.description,
        "measures": measures,
        "event_counts": counts,
        "contributions": [
            {
                "name": c.name,
                "label": c.label,
                "amount": _h(c.amount_h),
                "weight": c.weight,
                "measure": _h(c.measure_h),
                "detail": c.detail,
            }
            for c in outcome.contributions
        ],
        "details": outcome.details,
        "score_exact": _h(exact),
        "computed_score": ev.computed_score,
        "score": ev.score,
        "band": ev.band,
        "bands": outcome.details.get("bands", ev.model.model.score_bands),
        "override": ev.override,
        "drivers": ev.drivers,
        "trend_7d": ev.trend_7d,
        "trend_30d": ev.trend_30d,
        "rounding": (
            "each contribution is stated to 2 decimals; together they add up exactly to the "
            "unrounded score (score_exact), and the score is score_exact rounded half up"
        ),
    }


def set_override(
    store: Store,
    account_id: str,
    value: int,
    reason: str,
    until: str | dt.date,
    config: Any = None,
    *,
    set_by: str | None = None,
) -> dict[str, Any]:
    """Override an account's shown score until ``until`` (inclusive); the computed score is
    kept. Rescores the account at once and returns its row of ``health_scores``."""
    aid = _resolve_account(store, account_id)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"override value {value!r} is not a whole number", hint="give 0-100"
        ) from None
    if not 0 <= number <= 100 or (isinstance(value, float) and not value.is_integer()):
        raise ConfigError(
            f"override value {value} is outside 0-100", hint="give a whole number 0-100"
        )
    if not reason or not str(reason).strip():
        raise ConfigError("an override needs a reason", hint='pass --reason "why"')
    day = until if isinstance(until, dt.date) else parse_date(until)
    if day is None or (isinstance(until, str) and len(until.strip()) != 10):
        raise ConfigError(f"override until {until!r} is not a date", hint="use YYYY-MM-DD")
    if day < clock.now().date():
        raise ConfigError(f"override until {day} is in the past", hint="give today or a later date")
    with store.db.atomic():
        store.db.execute(
            "INSERT OR REPLACE INTO health_overrides (account_id, value, reason, until, set_at, set_by) "
            "VALUES (?,?,?,?,?,?)",
            [aid, number, str(reason).strip(), day.isoformat(), clock.iso(), set_by],
        )
    return _rescore(store, aid, config)


def clear_override(store: Store, account_id: str, config: Any = None) -> dict[str, Any]:
    """Remove the hub's override of an account and rescore it."""
    aid = _resolve_account(store, account_id)
    with store.db.atomic():
        store.db.execute("DELETE FROM health_overrides WHERE account_id = ?", [aid])
    return _rescore(store, aid, config)


def _rescore(store: Store, account_id: str, config: Any) -> dict[str, Any]:
    settings = load_settings(config)
    now = clock.now()
    writer = _Writer(store, now, scores=True, history=True)
    _run(store, settings, now, {account_id}, sink=writer)
    writer.flush()
    row = store.db.execute("SELECT * FROM health_scores WHERE account_id = ?", [account_id])
    names = [d[0] for d in row.description]
    found = row.fetchone()
    return dict(zip(names, found)) if found else {}


__all__ = [
    "DEFAULT_BANDS",
    "PARALLEL_MIN_ACCOUNTS",
    "Account",
    "Aggregates",
    "Cap",
    "Condition",
    "Contribution",
    "HealthModel",
    "HealthResult",
    "HealthSettings",
    "Lookup",
    "Measure",
    "MeasureParams",
    "MeasureResult",
    "ModelContext",
    "ModelSettings",
    "Outcome",
    "PointsRule",
    "Tier",
    "Window",
    "backfill_health",
    "check_bands",
    "band_for",
    "clear_override",
    "compute_health",
    "event_count_text",
    "explain",
    "fmt_hours",
    "fmt_money",
    "fmt_pct",
    "days_since",
    "hundredths",
    "load_settings",
    "parse_date",
    "plural",
    "round_half_up",
    "scale",
    "set_override",
]
