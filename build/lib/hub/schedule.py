"""Schedules in hub.toml: ``every 30m`` / ``every 2h`` / ``every 1d`` or a five-field cron line."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.errors import ConfigError

_EVERY = re.compile(r"^every\s+(\d+)\s*(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: either an interval in seconds or a cron expression."""

    interval_s: int | None = None
    cron: str | None = None

    def describe(self) -> str:
        return f"every {self.interval_s}s" if self.interval_s else f"cron '{self.cron}'"


def parse_schedule(text: str) -> Schedule:
    """Parse a schedule string; raises ``ConfigError`` with an example on bad input."""
    value = text.strip().lower()
    match = _EVERY.match(value)
    if match:
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        if seconds < 1:
            raise ConfigError(
                f"schedule {text!r} is shorter than a second", hint="use at least 'every 1s'"
            )
        return Schedule(interval_s=seconds)
    fields = value.split()
    if len(fields) == 5:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ConfigError(
                f"schedule {text!r} is not a valid cron line: {exc}", hint="e.g. '*/30 * * * *'"
            ) from None
        return Schedule(cron=value)
    raise ConfigError(
        f"schedule {text!r} is not understood",
        hint="write 'every 30m', 'every 2h' or a cron line like '*/30 * * * *'",
    )
