"""Rounding and bands: hundredths (the engine's exact unit), half-up rounding, band lookup.

A score is computed in integer hundredths so that the lines of a calculation add up exactly;
the score shown is the exact value rounded half up (``round_half_up``, the hub's one rule, in
``hub.text``). Bands map a name to the minimum score that reaches it.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel

from hub.errors import ConfigError
from hub.text import round_half_up

DEFAULT_BANDS: dict[str, float] = {"green": 80, "yellow": 40, "red": 0}
CHURNED = "churned"
"""The lifecycle state outside the bands: every subscription ended, or the CRM says former
customer. Stored and shown as the band ``churned``, never counted in green/yellow/red."""

_CENT = Decimal("0.01")


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


def from_hundredths(value: int | None) -> float | None:
    """Hundredths back to a number with 2 decimals (exact in its decimal text)."""
    return None if value is None else value / 100


def exact_hundredths(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` (both ≥ 0) rounded half up to an integer: the exact score
    in hundredths from a weighted sum in hundredths (66.666… → 66.67, i.e. 6667)."""
    return (2 * numerator + denominator) // (2 * denominator)


def _band_table(bands: Any) -> list[tuple[float, str]]:
    if bands is None:
        bands = DEFAULT_BANDS
    if isinstance(bands, BaseModel):
        bands = bands.model_dump()
    items = bands.items() if isinstance(bands, dict) else bands
    table = sorted(((float(minimum), str(name)) for name, minimum in items), reverse=True)
    if not table:
        raise ConfigError(
            "no health bands configured",
            hint="set [health.bands] (run `hub init --example` to see every option)",
        )
    return table


def band_for(score: float | int | None, bands: Any = None) -> str | None:
    """The band of a score: the band with the highest minimum that ``score`` reaches.

    ``bands`` maps band name → minimum score (default green 80, yellow 40, red 0); a score
    below every minimum gets the lowest band. ``None`` (no score) has no band.
    """
    if score is None:
        return None
    table = _band_table(bands)
    for minimum, name in table:
        if score >= minimum:
            return name
    return table[-1][1]


def check_bands(value: dict[str, float] | None, low: float, high: float, unit: str) -> None:
    """Refuse bands outside ``low``..``high`` or with bad names (a ``ValueError`` for pydantic)."""
    if value is None:
        return
    if not value:
        raise ValueError("bands needs at least one band, e.g. { green = 80, yellow = 40, red = 0 }")
    for name, minimum in value.items():
        if not name or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"band name {name!r} must be lower-case letters, digits or _")
        if name == CHURNED:
            raise ValueError("'churned' is a lifecycle state, not a band: choose another name")
        if name not in ("green", "yellow", "red"):
            # The CRM's band property, playbooks and filters know these three: a typo such as
            # "gren" would silently become a band of its own and be pushed.
            raise ValueError(f"band {name!r} is not one of green, yellow, red")
        if not low <= minimum <= high:
            raise ValueError(f"band {name} starts at {minimum:g}, outside {low:g}..{high:g} {unit}")


__all__ = [
    "CHURNED",
    "DEFAULT_BANDS",
    "band_for",
    "check_bands",
    "exact_hundredths",
    "from_hundredths",
    "hundredths",
    "round_half_up",
]
