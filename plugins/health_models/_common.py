"""Helpers shared by the built-in measures: reading concatenated aggregates, medians,
numbers from facts, window words."""

from __future__ import annotations

from typing import Any

from hub.health import Aggregates

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
