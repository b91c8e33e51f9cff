"""The ``weighted`` model: Σ weight·measure over the measures with data, caps, coverage."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from hub.health import (
    Cap,
    Contribution,
    HealthModel,
    Lookup,
    MeasureResult,
    ModelContext,
    ModelSettings,
    Outcome,
    band_for,
    check_bands,
    exact_hundredths,
    hundredths,
)


def _weight_units(weights: dict[str, float]) -> tuple[dict[str, int], int]:
    """Weights as integers (scaled by a power of ten) so sums are exact."""
    places = 0
    for w in weights.values():
        exponent = Decimal(repr(float(w))).normalize().as_tuple().exponent
        places = max(places, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
    places = min(places, 6)
    factor = 10**places
    return {n: int(Decimal(repr(float(w))) * factor) for n, w in weights.items()}, factor


class WeightedSettings(ModelSettings):
    type: Literal["weighted"] = "weighted"
    weights: dict[str, float]
    caps: list[Cap] = Field(default_factory=list)


class WeightedModel(HealthModel):
    """score = Σ(weight · measure) / Σ(weight of measures with data); bands on the score.

    Measures without data are left out and the other weights renormalise (never counted as
    0). ``caps``: when a cap's condition holds, the score is at most its ``max`` (shown as a
    separate line of the calculation, so the lines still add up).
    """

    name = "weighted"
    Settings = WeightedSettings

    def __init__(self, model_name: str, settings: WeightedSettings, ctx: ModelContext):
        super().__init__(model_name, settings, ctx)
        where = f"health.models.{model_name}"
        if not settings.weights:
            raise ctx.fail(
                f"{where}.weights", "needs at least one measure", hint="e.g. billing = 20"
            )
        for name, weight in settings.weights.items():
            if name not in ctx.measures:
                raise ctx.fail(
                    f"{where}.weights.{name}",
                    f"unknown measure {name!r}",
                    hint=f"known: {', '.join(sorted(ctx.measures))}",
                )
            if weight < 0:
                raise ctx.fail(
                    f"{where}.weights.{name}",
                    f"weight {weight:g} is negative",
                    hint="use 0 or more",
                )
        if not any(w > 0 for w in settings.weights.values()):
            raise ctx.fail(
                f"{where}.weights",
                "every weight is 0",
                hint="give at least one measure a weight above 0",
            )
        try:
            check_bands(settings.bands, 0, 100, "(scores are 0-100)")
        except ValueError as exc:
            raise ctx.fail(f"{where}.bands", str(exc)) from None
        for i, cap in enumerate(settings.caps):
            ctx.check_condition(cap, f"{where}.caps.{i}")
        self.bands = dict(settings.bands) if settings.bands else dict(ctx.bands)
        self.weights = {n: float(w) for n, w in settings.weights.items() if w > 0}
        self.units, self.factor = _weight_units(self.weights)
        self.total_units = sum(self.units.values())
        self.caps = [(cap, hundredths(cap.max)) for cap in settings.caps]

    @property
    def score_bands(self) -> dict[str, float]:
        return self.bands

    def measures_needed(self) -> list[str]:
        names = list(self.weights)
        for cap in self.settings.caps:
            if cap.measure and cap.measure not in names:
                names.append(cap.measure)
        return names

    def conditions(self) -> list[Cap]:
        return list(self.settings.caps)

    def combine(
        self, results: dict[str, MeasureResult], lookup: Lookup, *, detail: bool = False
    ) -> Outcome:
        numerator = denominator = 0
        present: list[tuple[str, int, int]] = []
        for name, units in self.units.items():
            value_h = results[name].value_h
            if value_h is None:
                continue
            numerator += units * value_h
            denominator += units
            present.append((name, units, value_h))
        weights = self.weights
        details: dict[str, Any] = {"bands": self.bands}
        missing = [
            self.ctx.measures[n].label or n for n in self.units if results[n].value_h is None
        ]
        if not denominator:
            details["excluded"] = list(self.units)
            return Outcome(
                None, None, None, details=details, weights=weights, coverage=0.0, missing=missing
            )
        coverage = denominator / self.total_units
        # The exact score, stated to 2 decimals rounded half up (66.666… → 66.67); the score
        # shown is that stated value rounded half up, so explain's arithmetic reads true.
        exact = exact_hundredths(numerator, denominator)
        # Drivers: points each measure costs against a perfect 100, worst first.
        drivers: list[tuple[float, Any]] = [
            ((value_h - 10000) * units / denominator / 100, results[name])
            for name, units, value_h in present
        ]
        contributions: list[Contribution] = []
        if detail:
            parts = []
            for name, units, value_h in present:
                q, r = divmod(units * value_h, denominator)
                parts.append([name, units, value_h, q, r])
            short = exact - sum(part[3] for part in parts)
            # Largest remainders get the missing hundredths: the stated lines add up exactly.
            for part in sorted(parts, key=lambda part: -part[4])[:short]:
                part[3] += 1
            total_w = denominator / self.factor
            contributions = [
                Contribution(
                    name,
                    self.ctx.measures[name].label or name,
                    amount,
                    weight=weights[name],
                    measure_h=value_h,
                    detail=f"{weights[name]:g} / {total_w:g} × {value_h / 100:.2f}",
                )
                for name, units, value_h, amount, _ in parts
            ]
            details["weight_total"] = total_w
            details["excluded"] = [n for n in self.units if results[n].value_h is None]
        covered: set[str] = set()
        for cap, cap_h in self.caps:
            if exact <= cap_h:
                continue
            value = lookup.value(cap)
            if cap.holds(value):
                reason = lookup.describe(cap, value)
                if detail:
                    contributions.append(
                        Contribution("cap", f"capped at {cap.max:g}: {reason}", cap_h - exact)
                    )
                    details["capped_by"] = cap.source_text()
                # The lowest cap is the one that sets the score: it leads the drivers.
                drivers.append(
                    (-1000.0 - (100 - cap.max), f"{reason}: score capped at {cap.max:g}")
                )
                covered.add(reason)
                exact = cap_h
        score = (exact + 50) // 100
        return Outcome(
            exact,
            score,
            band_for(score, self.bands),
            contributions,
            drivers,
            details,
            weights,
            covered,
            coverage,
            missing,
        )
