"""``[portfolio]`` in hub.toml, and the periods the portfolio reports on.

::

    [portfolio]
    first_value_event = "widget_detected"   # the timeline event that means "first value"
    early_churn_days = 90                    # lost within this many days of the start
    default_period = "last-90d"              # 2026-Q3, 2026-10, 2026 or last-<N>d
    ltv_max_months = 60                      # cap on the expected lifetime in LTV

Periods are half-open ranges of days ``[start, end)`` in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub import clock
from hub.errors import ConfigError

PERIOD_HINT = "use a quarter (2026-Q3), a month (2026-10), a year (2026) or last-<N>d (last-90d)"
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.I)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")
_LAST = re.compile(r"^last-(\d{1,4})d$", re.I)


class PortfolioSection(BaseModel):
    """The ``[portfolio]`` section."""

    model_config = ConfigDict(extra="forbid")

    first_value_event: str = Field(default="widget_detected", min_length=1)
    """Event type whose first occurrence after a subscription starts is the account's first value."""
    early_churn_days: int = Field(default=90, ge=1, le=3650)
    """An account lost within this many days of its start is early churn."""
    default_period: str = "last-90d"
    """Period of ``hub portfolio`` when ``--period`` is not given."""
    ltv_max_months: int = Field(default=60, ge=1, le=600)
    """Upper bound on the expected lifetime (months) used by LTV when churn is very low."""

    @field_validator("default_period")
    @classmethod
    def _period(cls, value: str) -> str:
        try:
            parse_period(value, today=dt.date(2000, 1, 1))
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value


def validate_config(config: Any) -> PortfolioSection:
    """The validated ``[portfolio]`` section of a config (or of a plain dict); defaults if absent.

    The config loader calls this so ``hub check --offline`` catches a typo here.
    """
    from hub.config import validate_section

    if isinstance(config, dict):
        raw = config.get("portfolio", config)
    else:
        raw = getattr(config, "portfolio", None)
    if isinstance(raw, PortfolioSection):
        return raw
    origin = getattr(config, "path", None) if not isinstance(config, dict) else None
    return validate_section(PortfolioSection, dict(raw or {}), "portfolio", origin)


@dataclass(frozen=True)
class Period:
    """Days ``[start, end)`` and the label the user gave."""

    label: str
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def months(self) -> float:
        return self.days / (365 / 12)


def _month_start(year: int, month: int) -> dt.date:
    return dt.date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def parse_period(text: str, today: dt.date | None = None) -> Period:
    """``2026-Q3``, ``2026-10``, ``2026`` or ``last-90d`` (the 90 days up to and including today)."""
    value = (text or "").strip()
    today = today or clock.now().date()
    if m := _QUARTER.match(value):
        year, q = int(m[1]), int(m[2])
        return Period(f"{year}-Q{q}", _month_start(year, 3 * q - 2), _month_start(year, 3 * q + 1))
    if m := _MONTH.match(value):
        year, month = int(m[1]), int(m[2])
        if 1 <= month <= 12:
            return Period(value, _month_start(year, month), _month_start(year, month + 1))
    if m := _YEAR.match(value):
        year = int(m[1])
        return Period(value, dt.date(year, 1, 1), dt.date(year + 1, 1, 1))
    if (m := _LAST.match(value)) and int(m[1]) > 0:
        end = today + dt.timedelta(days=1)
        return Period(value.lower(), end - dt.timedelta(days=int(m[1])), end)
    raise ConfigError(f"unknown period {value!r}", hint=PERIOD_HINT)
