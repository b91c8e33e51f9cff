"""The rule language of health models: comparisons, tiers, conditions, points rules, caps.

A condition tests one value: a measure input (``"support.breach_rate"``), a measure's score
(``"csat.score"``), an account column or fact (``"account.mrr"``), or a count of events
(``events = ["payment_failed"]`` within ``days``). ``Lookup`` reads that value for one
account. Points rules add points when a condition holds (or per unit of a value: a linear
factor); caps bound a weighted score.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from hub.health.measures import Account, MeasureResult
from hub.health.rounding import from_hundredths
from hub.health.wording import event_count_text


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
        # Through the private-attribute slot: ``self._op`` goes through pydantic's
        # ``__getattr__``, and this runs for every cap of every account.
        private = self.__pydantic_private__
        found = private.get("_op") if private is not None else None
        if found is None:
            found = _one_op(self, required=True)
            if private is not None:
                private["_op"] = found
        return found

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
    def measure(self) -> str | None:
        """The measure whose input or score this condition reads (None: an account column or
        fact, or an event count)."""
        if self.input is None:
            return None
        head = self.input.partition(".")[0]
        return None if head == "account" else head

    @property
    def spec(self) -> tuple[tuple[str, ...], int] | None:
        """The event-count key this condition reads (None for input conditions)."""
        return (tuple(sorted(self.events)), self.days) if self.events else None

    def source_text(self) -> str:
        if self.events:
            return f"events {', '.join(self.events)} in {self.days} days"
        return str(self.input)


class PointsRule(Condition):
    """A points rule, one of three shapes:

    - one condition with ``points``: ``{ input = "csat.score", below = 60, points = -2 }``;
    - ``tiers``, the first that holds counts: ``tiers = [{ above = 0.3, points = -2 }, …]``;
    - a linear factor ``per`` (points per unit of the value, after subtracting ``offset``),
      optionally bounded by ``min_points``/``max_points`` and gated by a condition:
      ``{ input = "relationship.days_since_touch", above = 30, per = -0.1, offset = 30,
      min_points = -3 }`` gives −0.1 points per day beyond 30, at most −3.

    ``no_data``: a rule whose value has no data (its measure had none, or the fact or input
    is missing) is left out by default (``"leave_out"``: no points, and it counts against the
    model's coverage); ``"test"`` tests the inputs a measure still reports when it has no data
    (for example ``tickets_solved = 0``). Event-count rules always have data.
    """

    points: float | None = None
    tiers: list[Tier] | None = None
    per: float | None = None
    offset: float = 0
    min_points: float | None = None
    max_points: float | None = None
    no_data: Literal["leave_out", "test"] = "leave_out"

    @model_validator(mode="after")
    def _shape(self) -> PointsRule:
        op = _one_op(self, required=False)
        given = [n for n in ("points", "tiers", "per") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of points (with a condition), tiers, or per (a linear factor)"
                + (f", not {' and '.join(given)}" if given else "")
            )
        if self.tiers is not None:
            if op is not None:
                raise ValueError("give either tiers or one condition with points, not both")
            if not self.tiers:
                raise ValueError("tiers must have at least one entry")
        elif self.points is not None and op is None:
            raise ValueError(
                "give one condition (above, at_least, below, at_most, equals) and points, or tiers"
            )
        if self.per is None and (
            self.min_points is not None or self.max_points is not None or self.offset
        ):
            raise ValueError("offset, min_points and max_points go with per (a linear factor)")
        if (
            self.min_points is not None
            and self.max_points is not None
            and self.min_points > self.max_points
        ):
            raise ValueError("min_points must not be above max_points")
        return self

    def points_for(self, value: Any) -> tuple[float, str] | None:
        """Points this rule gives for ``value`` and the condition that held, or None."""
        if self.tiers is not None:
            for tier in self.tiers:
                if tier.test(value):
                    return tier.points, tier.op_text()
            return None
        if self.per is not None:
            if _one_op(self, required=False) is not None and not self.test(value):
                return None
            number = _number(value)
            if number is None:
                return None
            points = self.per * (number - self.offset)
            if self.min_points is not None:
                points = max(points, self.min_points)
            if self.max_points is not None:
                points = min(points, self.max_points)
            shown = f"{number:g}" if self.offset == 0 else f"({number:g} − {self.offset:g})"
            return points, f"{self.per:+g} × {shown}"
        if self.test(value):
            return float(self.points), self.op_text()  # type: ignore[arg-type]
        return None


def _number(value: Any) -> float | None:
    """A value as a number for a linear factor (lists count their items), or None."""
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, (list, tuple, set, dict)):
        return float(len(value))
    try:
        return float(value)
    except (TypeError, ValueError):
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
            return from_hundredths(result.value_h)
        return result.inputs.get(tail)

    def has_data(self, cond: Condition) -> bool:
        """Whether the value ``cond`` reads had data: event counts always do; a measure input
        or score only when the measure had data; an account column or fact when it is set."""
        if cond.events:
            return True
        head, _, tail = cond.input.partition(".")
        if head == "account":
            return self.account.get(tail) is not None
        result = self.results.get(head)
        if result is None or result.value_h is None:
            return False
        return tail == "score" or result.inputs.get(tail) is not None

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


__all__ = ["Cap", "Condition", "Lookup", "PointsRule", "Tier"]
