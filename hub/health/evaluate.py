"""Evaluating one account: its measures from its aggregation row, the model's outcome, the
override in force, and the drivers in plain words (``Evaluation``).

``Plan`` says where each measure's values sit in the run's aggregation row and how the
shared event tally is split into counts; ``evaluate`` is called once per account per pass.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.health.measures import Account, Aggregates, MeasureResult, Window
from hub.health.models import Outcome
from hub.health.overrides import active_override
from hub.health.rounding import CHURNED, band_for, hundredths
from hub.health.rules import Lookup
from hub.health.settings import HealthSettings, ResolvedModel
from hub.health.wording import fmt_pct


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
    coverage: float | None = None
    low_coverage: bool = False
    churned: str | None = None
    """Why the account is churned (plain words), or None."""
    previous: tuple[Any, ...] | None = None
    """The account's latest history row on or before the day (day, score, band, computed
    score, coverage, measures JSON), or None."""
    stored: tuple[Any, ...] | None = None
    """The account's ``health_scores`` row as stored (``engine.STORED`` columns), when the
    sink compares it."""


def churn_reason(account: Account, settings: HealthSettings, as_of: dt.datetime) -> str | None:
    """Why ``account`` is churned as of ``as_of``, or None.

    Churned is a lifecycle state outside the bands: every subscription has ended (the facts
    ``active_subscriptions`` = 0 and ``churned_at`` on or before ``as_of``), or the CRM's
    lifecycle stage is one of ``[health] churned_stages``. Cancelling one of several
    subscriptions is a contraction, not churn.
    """
    facts = account.facts
    ended = facts.get("churned_at")
    active = facts.get("active_subscriptions") if ended else None
    if (
        ended
        and isinstance(active, (int, float))
        and not isinstance(active, bool)
        and active == 0
        and str(ended)[:10] <= as_of.date().isoformat()
    ):
        return f"churned: every subscription ended ({str(ended)[:10]})"
    stage = account.lifecycle_stage
    if stage:
        churned = settings.churned_stage.get(stage)
        if churned is None:
            churned = settings.churned_stage[stage] = settings.section.is_churned_stage(stage)
        if churned:
            return f"churned: the CRM lifecycle stage is {stage}"
    return None


def loads_facts(text: Any) -> dict[str, Any]:
    if not text:
        return {}
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class Plan:
    """Where each measure's values sit in the aggregation row, and how counts are tallied."""

    def __init__(self, agg: Aggregates):
        self.agg = agg
        self.handles: dict[str, tuple[Any, ...]] = {}  # measure stream key -> handles
        self.specs: dict[tuple[tuple[str, ...], int], Any] = {}  # event-count spec -> handle
        self.tally: int | None = None
        self.getters: dict[Any, Callable[[tuple[Any, ...], dict[str, int]], tuple[Any, ...]]] = {}
        # Per model: (measure, its bound score(), params, getter), built on first use.
        self.steps: dict[int, list[tuple[str, Callable[..., MeasureResult], Any, Any]]] = {}

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


def evaluate(
    settings: HealthSettings,
    plan: Plan,
    account: Account,
    row: tuple[Any, ...] | None,
    window: Window,
    stored_override: tuple[int, str, str, str] | None,
    *,
    historical: bool,
    detail: bool = False,
    echoes: Any = None,
) -> Evaluation:
    segment, resolved = settings.choose(account)
    account.segment = segment  # measures with per-segment parameters read it
    results: dict[str, MeasureResult] = {}
    tally = plan.tally_of(row)
    getters = plan.getters
    steps = plan.steps.get(id(resolved))
    if steps is None:
        steps = plan.steps[id(resolved)] = [
            (name, settings.measures[name].score, params, getters[key])
            for name, (params, key) in resolved.params.items()
        ]
    for name, score, params, getter in steps:
        result = score(params, account, None if row is None else getter(row, tally), window)
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
    override = active_override(
        account, stored_override, window.as_of, historical=historical, echoes=echoes
    )
    computed = outcome.score
    if override is not None:
        score = override["value"]
        band = band_for(score, resolved.model.score_bands)
    else:
        score, band = computed, outcome.band
    churned = churn_reason(account, settings, window.as_of)
    if churned is not None:
        band = CHURNED
    coverage = outcome.coverage
    low_coverage = (
        coverage is not None
        and outcome.exact_h is not None
        and coverage < settings.section.min_coverage
    )
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
    front: list[str] = []
    if override is not None:
        until = f" until {override['until']}" if override["until"] else ""
        reason = f": {override['reason']}" if override["reason"] else ""
        front.append(f"CSM override {override['value']}{until} (computed {computed}){reason}")
    if churned is not None:
        front.append(churned)
    if low_coverage:
        names = outcome.missing[:3]
        more = len(outcome.missing) - len(names)
        listed = ", ".join(names) + (f" and {more} more" if more > 0 else "")
        missing = f" (no data: {listed})" if names else ""
        front.append(f"low coverage: only {fmt_pct(coverage)} of the model had data{missing}")
    drivers[:0] = front
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
        coverage=coverage,
        low_coverage=low_coverage,
        churned=churned,
    )


def _impact(item: tuple[float, Any]) -> float:
    return item[0]


__all__ = ["Evaluation", "Plan", "churn_reason", "evaluate", "loads_facts"]
