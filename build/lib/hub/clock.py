"""The hub's notion of "now".

Everything that depends on the current time (health windows, trends, snoozes, stale
bookmarks) asks ``hub.clock.now()``. In production that is the wall clock; ``hub demo`` and
tests bind it to the sandbox world's clock so that a simulated month behaves like one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

_source: Callable[[], dt.datetime] | None = None


def now() -> dt.datetime:
    """Current time, timezone-aware UTC."""
    if _source is not None:
        return _source()
    return dt.datetime.now(dt.timezone.utc)


def set_source(source: Callable[[], dt.datetime] | None) -> None:
    """Bind ``now()`` to another clock (``None`` restores the wall clock)."""
    global _source
    _source = source


def iso(value: dt.datetime | None = None) -> str:
    """ISO 8601 UTC with a ``Z`` and microseconds: sorts as text."""
    value = value or now()
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(value: str | int | float | None) -> dt.datetime | None:
    """Parse ISO 8601 text, unix seconds or unix milliseconds into aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 10**11 else value
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    text = str(value).strip()
    if text.isdigit():
        return parse(int(text))
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def parse_date(value: object) -> dt.date | None:
    """An ISO date or datetime (text or object) → date; None when empty or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        parsed = parse(text)
        return parsed.date() if parsed else None
    except (ValueError, OverflowError):
        return None
