"""``hub health --explain``: the whole calculation of one account, as a dict.

Every measure with its inputs, parameters, weight and contribution; the model and segment;
the stated exact score, which the contributions add up to exactly; override, band, drivers,
trend. Nothing is written.
"""

from __future__ import annotations

from typing import Any

from hub import clock
from hub.health.engine import evaluate_one, resolve_account
from hub.health.evaluate import Evaluation
from hub.health.rounding import from_hundredths as _h
from hub.health.settings import HealthSettings, load_settings
from hub.store import Store


def explain(store: Store, account_id: str, config: Any = None) -> dict[str, Any]:
    """The whole calculation for one account (by id, domain or name), as of now.

    Every measure with its inputs, parameters, weight and contribution; the model and segment
    chosen; the stated unrounded score (``score_exact``), which the ``contributions`` add up
    to exactly, and the score that is its rounding half up; override, band, drivers, trend.
    Nothing is written.
    """
    settings = load_settings(config)
    ev = evaluate_one(store, settings, resolve_account(store, account_id))
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
        "coverage": None if ev.coverage is None else round(ev.coverage, 4),
        "low_coverage": ev.low_coverage,
        "min_coverage": settings.section.min_coverage,
        "missing": list(outcome.missing),
        "churned": ev.churned,
        "drivers": ev.drivers,
        "trend_7d": ev.trend_7d,
        "trend_30d": ev.trend_30d,
        "rounding": (
            "each contribution is stated to 2 decimals; together they add up exactly to the "
            "unrounded score (score_exact), and the score is score_exact rounded half up"
        ),
    }


__all__ = ["explain"]
