"""Wording of drivers: the shared formatters (from ``hub.text``), days since a moment, and
event counts in the words the vocabulary gives each event type.

Drivers never name a vendor: an event type's phrase ("failed payment") comes from the
mapping that declared it (``hub.vocabulary``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from hub import clock
from hub.text import hours as fmt_hours
from hub.text import money as fmt_money
from hub.text import pct as fmt_pct
from hub.text import plural
from hub.vocabulary import vocabulary

parse_date = clock.parse_date


def days_since(ts: str | None, as_of: dt.datetime) -> int | None:
    """Calendar days from an ISO UTC timestamp (or date) to ``as_of``'s day, never negative
    ("yesterday" is 1 day ago); None if there is no timestamp."""
    if not ts:
        return None
    text = str(ts)
    try:
        if len(text) >= 10 and text[4] == "-" and (len(text) == 10 or text.endswith("Z")):
            day = dt.date(int(text[:4]), int(text[5:7]), int(text[8:10]))
        else:
            moment = clock.parse(text)
            if moment is None:
                return None
            day = moment.date()
    except (ValueError, OverflowError):
        return None
    return max(0, (as_of.date() - day).days)


# Phrases for event counts in driver texts ("2 failed payments in the last 30 days").


def event_count_text(types: Iterable[str], count: int, days: int) -> str:
    """``(["payment_failed"], 2, 30)`` → ``"2 failed payments in the last 30 days"``."""
    types = list(types)
    known = vocabulary().event_types
    if len(types) == 1 and types[0] in known and known[types[0]].noun:
        one, many = known[types[0]].noun
        what = plural(count, one, many)
    else:
        what = f"{plural(count, 'event')} ({', '.join(types)})"
    return f"{what} in the last {days} days"


__all__ = [
    "days_since",
    "event_count_text",
    "fmt_hours",
    "fmt_money",
    "fmt_pct",
    "parse_date",
    "plural",
]
