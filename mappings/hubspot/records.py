"""Reading HubSpot CRM records: property history, numbers, links and the CSM override fields."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub import clock, text
from hub.timeline import MappingContext
from mappings.hubspot.vocabulary import OVERRIDE_PROPERTIES, SOURCE

COMPANY_EVENTS = ("lifecycle_changed", "owner_changed", "nps_changed")
DEAL_EVENTS = ("deal_won", "deal_lost", "renewal_due")
TRACKED = ("lifecyclestage", "hubspot_owner_id")  # company properties read with history
DEFAULT_WINDOW_DAYS = 90
DEFAULT_RENEWAL_TYPES = ("existingbusiness",)
DEFAULT_RENEWAL_PATTERN = "renew"
LINK = "https://app.hubspot.com/contacts/_/record/{type}/{id}"


def override_fact(props: dict[str, Any]) -> dict[str, Any] | str:
    """The CSM's override from the hub-owned properties ("" clears a previous one).

    The property names are the pusher's (``OVERRIDE_PROPERTIES``): what the hub writes and
    what it reads back can never drift apart."""
    value = number(props.get(OVERRIDE_PROPERTIES["value"]))
    if value is None:
        return ""
    return {
        "value": int(value),
        "reason": props.get(OVERRIDE_PROPERTIES["reason"]) or "",
        "until": (props.get(OVERRIDE_PROPERTIES["until"]) or "")[:10] or None,
    }


def company_key(company_id: Any) -> str:
    return MappingContext.entity_key(SOURCE, "company", company_id)


PRIOR = "HUB_OBSERVED_PRIOR"
"""``sourceType`` the connector gives the value a record held before the first change it
observed (history read from the API switched off): dated at the stored row's last
modification, not when it was set, so it is the "from" of the next entry, never a change."""


def history_entries(data: dict[str, Any], name: str) -> list[tuple[str, str | None, bool]]:
    """A property's history oldest first as (timestamp, value or None, is prior value)."""
    entries = ((data.get("propertiesWithHistory") or {}).get(name)) or []
    out = []
    for entry in entries:
        when = entry.get("timestamp") if isinstance(entry, dict) else None
        if when:
            value = entry.get("value")
            prior = entry.get("sourceType") == PRIOR
            out.append((str(when), None if value in (None, "") else str(value), prior))
    out.sort(key=lambda e: clock.parse(e[0]) or dt.datetime.min.replace(tzinfo=dt.timezone.utc))
    return out


def history(
    data: dict[str, Any], name: str, *, dated_only: bool = False
) -> list[tuple[str, str | None]]:
    """A property's history oldest first as (timestamp, value or None); ``dated_only`` leaves
    out a prior value the hub saw but cannot date (so "since when" reads never use it)."""
    return [
        (when, value)
        for when, value, prior in history_entries(data, name)
        if not (dated_only and prior)
    ]


def version_ms(ts: str) -> int:
    moment = clock.parse(ts)
    return int(moment.timestamp() * 1000) if moment else 0


def number(value: Any) -> float | int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else number


def money(value: Any) -> str:
    return text.money(number(value), whole=True)


def email_domain(email: Any) -> str | None:
    text = str(email or "")
    return text.rsplit("@", 1)[1] if "@" in text else None
