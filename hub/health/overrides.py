"""Overrides: a CSM's score that replaces the shown one until a date; the computed score is
always kept beside it.

Two places set one: ``hub health override`` (``set_override``/``clear_override``, stored in
``health_overrides``), and the CRM, through the account fact ``health_override`` =
``{"value", "reason", "until"}`` that a CRM mapping fills from the override fields. When both
exist, the one set in the hub wins. An override holds until its ``until`` date (inclusive).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hub import clock
from hub.errors import ConfigError
from hub.health.measures import Account
from hub.health.wording import parse_date
from hub.store import Store, health_queries


def fact_override(facts: dict[str, Any]) -> dict[str, Any] | None:
    """The ``health_override`` fact as {value, reason, until}, or None if absent/invalid."""
    raw = facts.get("health_override")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, dict) or raw.get("value") in (None, ""):
        return None
    try:
        value = int(float(raw["value"]))
    except (TypeError, ValueError):
        return None
    if not 0 <= value <= 100:
        return None
    until = parse_date(raw.get("until"))
    if raw.get("until") not in (None, "") and until is None:
        return None
    return {
        "value": value,
        "reason": str(raw.get("reason") or ""),
        "until": until.isoformat() if until else None,
        "source": "crm",
    }


def override_properties() -> list[str] | None:
    """The CRM properties that carry the hub's ``override`` field, as registered pushers
    declare them (``field_properties = {"override": "<property>", …}``); None when no pusher
    declares its properties."""
    from hub.registry import get_registry

    declared = False
    props: list[str] = []
    for cls in get_registry().pushers.values():
        fields = getattr(cls, "field_properties", None)
        if isinstance(fields, dict):
            declared = True
            if fields.get("override"):
                props.append(str(fields["override"]))
    return props if declared else None


def active_override(
    account: Account,
    stored: tuple[int, str, str, str] | None,
    as_of: dt.datetime,
    *,
    historical: bool,
    echoes: Any = None,
) -> dict[str, Any] | None:
    """The override in force at ``as_of``: the hub's own first, then the CRM's fact.

    For a past day (``historical``) only hub overrides set before that day's end count:
    facts have no history. ``echoes`` holds the (value, until) of overrides the hub itself set
    and wrote to this account's CRM record: a CRM fact equal to one of them is the hub's own
    write read back (say after ``--clear``, before the next push empties the field), never a
    CSM's.
    """
    today = as_of.date().isoformat()
    if stored is not None:
        value, reason, until, set_at = stored
        in_force = (until is None or today <= until) and (
            not historical or (set_at or "") <= clock.iso(as_of)
        )
        if in_force:
            return {"value": value, "reason": reason or "", "until": until, "source": "hub"}
    if historical:
        return None
    fact = fact_override(account.facts)
    if fact is None or (fact["until"] is not None and today > fact["until"]):
        return None
    if echoes and (fact["value"], fact["until"]) in echoes:
        return None
    return fact


def set_override(
    store: Store,
    account_id: str,
    value: int,
    reason: str,
    until: str | dt.date,
    config: Any = None,
    *,
    set_by: str | None = None,
) -> dict[str, Any]:
    """Override an account's shown score until ``until`` (inclusive); the computed score is
    kept. Rescores the account at once and returns its row of ``health_scores``."""
    from hub.health.engine import rescore, resolve_account  # engine imports this module

    aid = resolve_account(store, account_id)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"override value {value!r} is not a whole number", hint="give 0-100"
        ) from None
    if not 0 <= number <= 100 or (isinstance(value, float) and not value.is_integer()):
        raise ConfigError(
            f"override value {value} is outside 0-100", hint="give a whole number 0-100"
        )
    if not reason or not str(reason).strip():
        raise ConfigError("an override needs a reason", hint='pass --reason "why"')
    day = until if isinstance(until, dt.date) else parse_date(until)
    if day is None or (isinstance(until, str) and len(until.strip()) != 10):
        raise ConfigError(f"override until {until!r} is not a date", hint="use YYYY-MM-DD")
    if day < clock.now().date():
        raise ConfigError(f"override until {day} is in the past", hint="give today or a later date")
    now = clock.iso()
    with store.db.atomic():
        store.db.execute(
            "INSERT OR REPLACE INTO health_overrides (account_id, value, reason, until, set_at, set_by) "
            "VALUES (?,?,?,?,?,?)",
            [aid, number, str(reason).strip(), day.isoformat(), now, set_by],
        )
        health_queries.log_override(store, aid, number, str(reason).strip(), day.isoformat(), now)
    return rescore(store, aid, config)


def clear_override(store: Store, account_id: str, config: Any = None) -> dict[str, Any]:
    """Remove the hub's override of an account and rescore it."""
    from hub.health.engine import rescore, resolve_account  # engine imports this module

    aid = resolve_account(store, account_id)
    with store.db.atomic():
        store.db.execute("DELETE FROM health_overrides WHERE account_id = ?", [aid])
        health_queries.clear_logged_override(store, aid, clock.iso())
    return rescore(store, aid, config)


__all__ = [
    "active_override",
    "clear_override",
    "fact_override",
    "override_properties",
    "set_override",
]
