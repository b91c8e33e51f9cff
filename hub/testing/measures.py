"""Test helpers for health measures: score a measure on hand-made events and facts.

A measure author writes golden cases with the arithmetic in the test, and the helper runs the
measure exactly as the engine does (its aggregates go through the one SQL aggregation over a
real, in-memory hub database; then ``score``)::

    from hub.testing.measures import MeasureCase, event

    def test_two_failed_payments():
        case = MeasureCase(
            events=[event("payment_failed", days_ago=3, invoice_id="in_1"),
                    event("payment_failed", days_ago=1, invoice_id="in_2")],
            facts={"has_payment_method": True},
            mrr=500,
        )
        result = case.score(BillingMeasure, params={"window_days": 60})
        # 100 − 2 invoices × 25 = 50
        assert result.value == 50
        assert result.inputs["payment_failed"] == 2

``MeasureCase`` holds one account (columns as keyword arguments, ``facts``, ``events``) and
the moment it is scored (``as_of``, default ``NOW``) and its ``segment`` (default
``"default"``); ``event(type, days_ago, **attrs)``
makes one event ``days_ago`` days before ``as_of``. ``score(measure, params=...)`` returns
the ``MeasureResult`` with ``value_h`` (the value to 2 decimals, in hundredths) set as the
engine sets it, and ``drivers``/``texts`` resolvable. ``params`` are validated with the
measure's ``Params`` (a typo is the usual one-line ``ConfigError``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from hub import clock
from hub.config import validate_section
from hub.health.evaluate import Plan
from hub.health.measures import Account, Aggregates, Measure, MeasureResult, Window
from hub.health.rounding import hundredths
from hub.store import Store

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)
"""The default moment a case is scored at."""

ACCOUNT_ID = "acct-under-test"
_ids = itertools.count(1)


@dataclass
class Event:
    """One hand-made event: its type, how many days before ``as_of``, its attributes."""

    type: str
    days_ago: float = 0
    attrs: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


def event(type: str, days_ago: float = 0, *, id: str | None = None, **attrs: Any) -> Event:
    """``event("ticket_opened", 12, ticket_id="7")``: a ``ticket_opened`` 12 days ago."""
    return Event(type, days_ago, attrs, id)


class MeasureCase:
    """One account for a measure to score: columns, facts, events and the moment."""

    def __init__(
        self,
        *,
        events: list[Event] | tuple[Event, ...] = (),
        facts: dict[str, Any] | None = None,
        as_of: dt.datetime = NOW,
        segment: str = "default",
        **columns: Any,
    ):
        unknown = sorted(set(columns) - set(Account.COLUMNS))
        if unknown:
            raise TypeError(
                f"unknown account column {unknown[0]!r} (columns: {', '.join(Account.COLUMNS)}; "
                "anything else goes in facts=)"
            )
        self.events = list(events)
        self.facts = dict(facts or {})
        self.as_of = as_of
        self.segment = segment
        self.columns = {"id": ACCOUNT_ID, "name": "Account under test", **columns}

    def account(self) -> Account:
        """The ``Account`` measures see (in ``segment``, as the engine would have chosen)."""
        account = Account(tuple(self.columns.get(c) for c in Account.COLUMNS), dict(self.facts))
        account.segment = self.segment
        return account

    def _store(self) -> Store:
        store = Store(":memory:")
        store.db["accounts"].insert(
            {**self.columns, "facts": json.dumps(self.facts), "updated_at": clock.iso(self.as_of)},
            pk="id",
        )
        rows = []
        for e in self.events:
            ts = clock.iso(self.as_of - dt.timedelta(days=e.days_ago))
            rows.append(
                {
                    "id": e.id or f"test:{e.type}:{next(_ids)}",
                    "entity": f"test:entity:{self.columns['id']}",
                    "account_id": self.columns["id"],
                    "ts": ts,
                    "source": "test",
                    "type": e.type,
                    "summary": e.type,
                    "attrs": json.dumps(e.attrs),
                    "link": None,
                    "mapped_at": ts,
                }
            )
        if rows:
            store.db["events"].insert_all(rows, pk="id")
        return store

    def score(
        self, measure: Measure | type[Measure], params: dict[str, Any] | None = None
    ) -> MeasureResult:
        """Score ``measure`` (a class or an instance) on this account, as the engine would."""
        instance = measure() if isinstance(measure, type) else measure
        name = instance.name or type(instance).__name__
        checked = validate_section(
            instance.Params, dict(params or {}), f"health.measures.{name}", "test"
        )
        window = Window(self.as_of)
        agg = Aggregates(window)
        plan = Plan(agg)
        plan.handles["m"] = tuple(instance.aggregate(checked, agg))
        plan.finish()
        values = None
        if agg.exprs:
            store = self._store()
            try:
                sql, args = agg.sql(targets=False)
                rows = store.db.execute(sql, args).fetchall()
            finally:
                store.close()
            if rows:
                values = plan.getters["m"](rows[0], plan.tally_of(rows[0]))
        result = instance.score(checked, self.account(), values, window)
        if result.value is not None:
            result.value_h = hundredths(min(100.0, max(0.0, float(result.value))))
        return result


def score_measure(
    measure: Measure | type[Measure],
    *,
    params: dict[str, Any] | None = None,
    events: list[Event] | tuple[Event, ...] = (),
    facts: dict[str, Any] | None = None,
    as_of: dt.datetime = NOW,
    **columns: Any,
) -> MeasureResult:
    """One-call form of ``MeasureCase(...).score(measure, params)``."""
    return MeasureCase(events=events, facts=facts, as_of=as_of, **columns).score(measure, params)


__all__ = ["NOW", "Event", "MeasureCase", "event", "score_measure"]
