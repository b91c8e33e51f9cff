"""The model API: what a health model type subclasses, and what it returns.

A **model** (``HealthModel`` subclass, ``type = "<name>"`` in ``[health.models.X]``) combines
one account's measure results into an ``Outcome``: the exact score in hundredths, its
rounding, the band, the lines of the calculation and the drivers. The built-ins (weighted,
points) live in ``plugins/health_models/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from hub.errors import ConfigError
from hub.health.measures import Measure, MeasureResult
from hub.health.rules import Condition, Lookup, _Strict


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
    for explain; ``weights``: the weight of each measure, if the model has weights;
    ``coverage``: the share (0–1) of the model's weight that had data (for a points model,
    of its rules), None when the model cannot say; ``missing``: labels of what had no data.
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
    coverage: float | None = None
    missing: list[str] = field(default_factory=list)


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


__all__ = ["Contribution", "HealthModel", "ModelContext", "ModelSettings", "Outcome"]
