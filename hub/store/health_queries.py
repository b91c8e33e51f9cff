"""Read models over the health tables: what the CLI, the web app, playbooks, the pusher and
the demo read about scores, history, overrides and what the hub itself pushed.

Every query over ``health_scores``, ``health_history``, ``health_override_log`` and the push
log that a part outside ``hub.health`` needs lives here, so callers hold no SQL. Values come
back as plain dicts; the business rules (which measures "moved", what a baseline is) live in
``hub.health.moves``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable
from typing import Any

SCORE_COLUMNS = (
    "account_id",
    "score",
    "computed_score",
    "band",
    "model",
    "segment",
    "measures",
    "drivers",
    "trend_7d",
    "trend_30d",
    "override_value",
    "override_reason",
    "override_until",
    "computed_at",
    "coverage",
    "low_coverage",
    "churned",
    "first_scored_at",
)
"""The columns of ``health_scores`` as read models return them (JSON columns decoded)."""

TREND_BASELINES: dict[int, int] = {7: 10, 30: 37}
"""For a trend over N days, the oldest history row that may serve as its baseline (days)."""


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("measures", "drivers"):
        if key in row:
            try:
                row[key] = json.loads(row[key]) if row[key] else ({} if key == "measures" else [])
            except ValueError:
                row[key] = {} if key == "measures" else []
    for key in ("low_coverage", "churned"):
        if key in row:
            row[key] = bool(row[key])
    return row


def score_rows(
    store: Any, *, band: str | None = None, account_ids: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Current scores with the account's name and domain (``drivers`` and ``measures``
    decoded, ``low_coverage``/``churned`` as booleans), optionally one band or some accounts."""
    where, args = [], []
    if band:
        where.append("h.band = ?")
        args.append(band)
    if account_ids is not None:
        ids = list(account_ids)
        where.append(f"h.account_id IN ({','.join('?' * len(ids))})")
        args.extend(ids)
    cols = ", ".join(f"h.{c}" for c in SCORE_COLUMNS)
    sql = (
        f"SELECT {cols}, a.name, a.domain, a.owner_id FROM health_scores h "
        f"LEFT JOIN accounts a ON a.id = h.account_id"
        + (f" WHERE {' AND '.join(where)}" if where else "")
    )
    return [_decode(dict(row)) for row in store.db.query(sql, args)]


def band_counts(store: Any) -> dict[str, int]:
    """Accounts per band (``churned`` is its own entry, never counted as red)."""
    return {
        (row[0] or "none"): row[1]
        for row in store.db.execute("SELECT band, COUNT(*) FROM health_scores GROUP BY band")
    }


def first_scored_since(store: Any, since: str) -> set[str]:
    """Accounts scored for the first time at or after ``since`` (ISO time): for playbooks,
    that scoring is a baseline, not a change."""
    return {
        row[0]
        for row in store.db.execute(
            "SELECT account_id FROM health_scores WHERE first_scored_at >= ?", [since]
        )
    }


def history_row(store: Any, account_id: str, day: str) -> dict[str, Any] | None:
    """The history row of one account on one day (``measures`` decoded), or None."""
    row = store.db.execute(
        "SELECT account_id, day, score, computed_score, band, coverage, measures "
        "FROM health_history WHERE account_id = ? AND day = ?",
        [account_id, day],
    ).fetchone()
    if row is None:
        return None
    keys = ("account_id", "day", "score", "computed_score", "band", "coverage", "measures")
    return _decode(dict(zip(keys, row)))


def baselines(
    store: Any, today: dt.date, days: int, account_ids: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per account, the history row that is the baseline of a ``days``-day trend: the latest
    row between ``days`` and ``TREND_BASELINES[days]`` (else ``days`` + ``days`` // 4 + 1)
    days before ``today``; accounts without such a row are absent."""
    oldest = TREND_BASELINES.get(days, days + days // 4 + 1)
    newest_day = (today - dt.timedelta(days=days)).isoformat()
    oldest_day = (today - dt.timedelta(days=oldest)).isoformat()
    scope, args = "", [oldest_day, newest_day]
    if account_ids is not None:
        ids = list(account_ids)
        scope = f" AND account_id IN ({','.join('?' * len(ids))})"
        args.extend(ids)
    out: dict[str, dict[str, Any]] = {}
    keys = ("account_id", "day", "score", "computed_score", "band", "coverage", "measures")
    for row in store.db.execute(
        "SELECT account_id, day, score, computed_score, band, coverage, measures "
        f"FROM health_history WHERE day >= ? AND day <= ?{scope} ORDER BY account_id, day",
        args,
    ):
        out[row[0]] = _decode(dict(zip(keys, row)))  # ascending: the latest row wins
    return out


def log_override(
    store: Any, account_id: str, value: int, reason: str, until: str, set_at: str
) -> None:
    """Remember an override set in the hub (kept after it is cleared: see
    ``own_override_echoes``)."""
    store.db.execute(
        "INSERT INTO health_override_log (account_id, value, reason, until, set_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [account_id, value, reason, until, set_at],
    )


def clear_logged_override(store: Any, account_id: str, cleared_at: str) -> None:
    store.db.execute(
        "UPDATE health_override_log SET cleared_at = ? WHERE account_id = ? AND cleared_at IS NULL",
        [cleared_at, account_id],
    )


def own_override_echoes(
    store: Any, override_properties: Collection[str] | None
) -> dict[str, set[tuple[int, str | None]]]:
    """Per account, the (value, until) of overrides the hub set itself and wrote to the
    account's CRM record.

    A CRM override field that holds one of them is the hub's own write read back, not a
    CSM's entry. ``override_properties`` are the CRM properties that carry the override (as
    pushers declare them in ``field_properties``); the push log must show the hub wrote one
    of them for the account. None: no pusher declares them, and the override log alone
    decides.
    """
    sql = "SELECT account_id, value, until FROM health_override_log"
    args: list[Any] = []
    if override_properties is not None:
        props = list(override_properties)
        if not props:
            return {}
        sql += (
            " WHERE account_id IN (SELECT object_id FROM _hub_push_log WHERE property IN "
            f"({','.join('?' * len(props))}))"
        )
        args = props
    out: dict[str, set[tuple[int, str | None]]] = {}
    for account_id, value, until in store.db.execute(sql, args):
        out.setdefault(account_id, set()).add((int(value), until))
    return out


__all__ = [
    "SCORE_COLUMNS",
    "TREND_BASELINES",
    "band_counts",
    "baselines",
    "clear_logged_override",
    "first_scored_since",
    "history_row",
    "log_override",
    "own_override_echoes",
    "score_rows",
]
