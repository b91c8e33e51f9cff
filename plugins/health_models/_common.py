"""Helpers shared by the built-in measures: reading concatenated aggregates, medians,
numbers from facts, window words, and parameters with ordered thresholds."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from hub.health import Aggregates, MeasureParams

SEP = Aggregates.SEP


def _floats(text: Any) -> list[float]:
    """``concat`` output → numbers (unreadable entries are skipped)."""
    if text is None or text == "":
        return []
    out = []
    for part in str(text).split(SEP):
        try:
            out.append(float(part))
        except ValueError:
            continue
    return out


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _num(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _days(days: int) -> str:
    return f"in the last {days} days"


class OrderedParams(MeasureParams):
    """Measure parameters whose (good, bad) thresholds must be ordered, bad strictly above
    good: ``ordered = (("good_days", "bad_days"),)``. One rule, one message for every measure."""

    ordered: ClassVar[tuple[tuple[str, str], ...]] = ()

    @model_validator(mode="after")
    def _ordered(self) -> OrderedParams:
        for good, bad in self.ordered:
            if getattr(self, bad) <= getattr(self, good):
                raise ValueError(f"{bad} must be above {good}")
        return self
