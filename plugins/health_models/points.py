"""The ``points`` model: base ± rule points (fixed or linear), clamped, scaled to 0–100."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hub.health import (
    Contribution,
    HealthModel,
    Lookup,
    MeasureResult,
    ModelContext,
    ModelSettings,
    Outcome,
    PointsRule,
    band_for,
    check_bands,
    exact_hundredths,
    hundredths,
)


class PointsSettings(ModelSettings):
    type: Literal["points"]
    base: float = 5
    min: float = 0
    max: float = 10
    rules: list[PointsRule] = Field(default_factory=list)


class PointsModel(HealthModel):
    """Points: start at ``base``, each rule that holds adds its (signed) points (a linear rule
    adds ``per`` × its value), clamp to ``min``..``max``; rules without data are left out and
    lower the coverage (the share of rules that had data). Bands (``bands``, in points) apply to the clamped points; without them
    the global bands apply to the 0–100 score = (points − min) / (max − min) × 100."""

    name = "points"
    Settings = PointsSettings

    def __init__(self, model_name: str, settings: PointsSettings, ctx: ModelContext):
        super().__init__(model_name, settings, ctx)
        where = f"health.models.{model_name}"
        if settings.max <= settings.min:
            raise ctx.fail(
                f"{where}.max", f"max {settings.max:g} must be above min {settings.min:g}"
            )
        if not settings.min <= settings.base <= settings.max:
            raise ctx.fail(
                f"{where}.base",
                f"base {settings.base:g} is outside {settings.min:g}..{settings.max:g}",
            )
        try:
            check_bands(settings.bands, settings.min, settings.max, "points")
        except ValueError as exc:
            raise ctx.fail(f"{where}.bands", str(exc)) from None
        for i, rule in enumerate(settings.rules):
            ctx.check_condition(rule, f"{where}.rules.{i}")
        self.base_h = hundredths(settings.base)
        self.min_h = hundredths(settings.min)
        self.max_h = hundredths(settings.max)

    def measures_needed(self) -> list[str]:
        names: list[str] = []
        for rule in self.settings.rules:
            if rule.measure and rule.measure not in names:
                names.append(rule.measure)
        return names

    def conditions(self) -> list[PointsRule]:
        return list(self.settings.rules)

    def combine(
        self, results: dict[str, MeasureResult], lookup: Lookup, *, detail: bool = False
    ) -> Outcome:
        s = self.settings
        contributions = [Contribution("base", "base points", self.base_h)]
        drivers: list[tuple[float, str]] = []
        rules = []
        total = self.base_h
        span = (self.max_h - self.min_h) / 100
        with_data = 0
        missing: list[str] = []
        for i, rule in enumerate(s.rules):
            value = lookup.value(rule)
            if rule.no_data == "leave_out" and not lookup.has_data(rule):
                missing.append(rule.label or rule.source_text())
                rules.append(
                    {
                        "rule": i + 1,
                        "on": rule.source_text(),
                        "value": None,
                        "points": 0,
                        "held": None,
                        "left_out": True,
                    }
                )
                continue
            with_data += 1
            hit = rule.points_for(value)
            rules.append(
                {
                    "rule": i + 1,
                    "on": rule.source_text(),
                    "value": value,
                    "points": hit[0] if hit else 0,
                    "held": hit[1] if hit else None,
                    "left_out": False,
                }
            )
            if hit is None or not hit[0]:
                continue
            points, held = hit
            points_h = hundredths(points)
            total += points_h
            text = lookup.describe(rule, value)
            contributions.append(
                Contribution(f"rule {i + 1}", text, points_h, detail=f"{rule.source_text()} {held}")
            )
            drivers.append((points * 100 / span, f"{text} ({points:+g} points)"))
        clamped = min(max(total, self.min_h), self.max_h)
        if clamped != total:
            contributions.append(
                Contribution("clamp", f"clamped to {s.min:g}..{s.max:g}", clamped - total)
            )
        # Points → 0–100, stated to 2 decimals rounded half up; the score is its rounding.
        exact = exact_hundredths((clamped - self.min_h) * 10000, self.max_h - self.min_h)
        score = (exact + 50) // 100
        points = clamped / 100
        band = band_for(points, s.bands) if s.bands else band_for(score, self.ctx.bands)
        details = {
            "base": s.base,
            "min": s.min,
            "max": s.max,
            "points_raw": total / 100,
            "points": points,
            "rules": rules,
            "bands": dict(s.bands) if s.bands else self.ctx.bands,
            "bands_on": "points" if s.bands else "score",
            "scaling": f"score = (points - {s.min:g}) / ({s.max:g} - {s.min:g}) × 100",
        }
        if not drivers:
            drivers.append((0.0, f"no rule applies: {points:g} points (base {s.base:g})"))
        coverage = with_data / len(s.rules) if s.rules else 1.0
        return Outcome(
            exact,
            score,
            band,
            contributions,
            drivers,
            details,
            coverage=coverage,
            missing=missing,
        )
