"""Small helpers the built-in playbooks share: money, days, ordering, fallback evidence."""

from __future__ import annotations

from typing import Any

from hub import text
from hub.playbooks import PlaybookContext


def money(value: Any) -> str:
    return text.money(value, missing="an unknown amount")


def day(ts: str | None) -> str:
    return str(ts or "")[:10]


def newest_first(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: (e["ts"], e["id"]), reverse=True)


def fact_evidence(summary: str) -> dict[str, Any]:
    """Evidence that is a fact about the account now (no event, no link)."""
    return {"id": None, "type": "fact", "ts": None, "summary": summary, "link": None}


def state_evidence(ctx: PlaybookContext, account_id: str, days: int) -> dict[str, Any]:
    """Evidence for a rule on the account's state: the trouble of the last ``days`` and the
    measures that moved over them; the drivers when neither says anything."""
    events = ctx.recent_trouble(account_id, days=max(days, 1))
    moved = [
        m
        for m in ctx.measures_moved(account_id, days=max(days, 1))
        if m["before"] is not None and m["after"] is not None and m["after"] < m["before"]
    ]
    if not events and not moved:
        drivers = (ctx.health.get(account_id) or {}).get("drivers") or []
        events = [fact_evidence(str(d)) for d in drivers[:3] if d]
    return {"evidence": events, "moved": moved}


BAND_RANK = {"red": 0, "yellow": 1, "green": 2}
