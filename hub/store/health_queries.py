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


_HISTORY_KEYS = ("account_id", "day", "score", "computed_score", "band", "coverage", "measures")


def run_day(store: Any, newest: str, oldest: str = "") -> str | None:
    """The latest day from ``oldest`` to ``newest`` (ISO dates) on which health ran, or None.

    ``health_days`` lists the days every run wrote history for; a day that has history rows
    counts too (rows written before that table existed, or by hand in tests)."""
    found = [
        store.db.execute(
            f"SELECT MAX(day) FROM {table} WHERE day >= ? AND day <= ?", [oldest, newest]
        ).fetchone()[0]
        for table in ("health_days", "health_history")
    ]
    days = [d for d in found if d]
    return max(days) if days else None


def baseline_day(store: Any, today: dt.date, days: int) -> str | None:
    """The day a ``days``-day trend compares with: the latest day health ran between ``days``
    and ``TREND_BASELINES[days]`` (else ``days`` + ``days`` // 4 + 1) days before ``today``;
    None when it did not run then (no trend)."""
    oldest = TREND_BASELINES.get(days, days + days // 4 + 1)
    return run_day(
        store,
        (today - dt.timedelta(days=days)).isoformat(),
        (today - dt.timedelta(days=oldest)).isoformat(),
    )


def states_on(
    store: Any, day: str, account_ids: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per account, its state on ``day``: the latest history row on or before it (history
    keeps a row only when something in it changed); ``measures`` decoded."""
    scope, args = "", [day]
    if account_ids is not None:
        ids = list(account_ids)
        if not ids:
            return {}
        scope = f" AND account_id IN ({','.join('?' * len(ids))})"
        args.extend(ids)
    out: dict[str, dict[str, Any]] = {}
    # SQLite returns the bare columns of the row that holds MAX(day).
    for row in store.db.execute(
        "SELECT account_id, MAX(day), score, computed_score, band, coverage, measures "
        f"FROM health_history WHERE day <= ?{scope} GROUP BY account_id",
        args,
    ):
        out[row[0]] = _decode(dict(zip(_HISTORY_KEYS, row)))
    return out


def history_row(store: Any, account_id: str, day: str) -> dict[str, Any] | None:
    """One account's state on a day health ran (its latest history row on or before that
    day, ``measures`` decoded, ``day`` = the day asked), or None (no run that day, or the
    account was not scored yet)."""
    if run_day(store, day, day) is None:
        return None
    row = states_on(store, day, [account_id]).get(account_id)
    if row is not None:
        row["day"] = day
    return row


def daily_history(store: Any, account_id: str, since: str) -> list[dict[str, Any]]:
    """One account's score on every day health ran from ``since`` on, oldest first:
    ``[{"day", "score", "band", "computed_score"}]`` (the stored rows are only the changes;
    each day carries the latest change on or before it)."""
    db = store.db
    rows = db.execute(
        "SELECT day, score, band, computed_score FROM health_history WHERE account_id = ? "
        "AND day >= COALESCE((SELECT MAX(day) FROM health_history WHERE account_id = ? "
        "AND day <= ?), ?) ORDER BY day",
        [account_id, account_id, since, since],
    ).fetchall()
    if not rows:
        return []
    days = {
        r[0]
        for r in db.execute(
            "SELECT day FROM health_days WHERE day >= ? UNION SELECT DISTINCT day FROM "
            "health_history WHERE day >= ?",
            [max(since, rows[0][0]), max(since, rows[0][0])],
        )
    }
    out: list[dict[str, Any]] = []
    i = 0
    for day in sorted(days | {r[0] for r in rows if r[0] >= since}):
        while i + 1 < len(rows) and rows[i + 1][0] <= day:
            i += 1
        if rows[i][0] > day:
            continue
        out.append(dict(zip(("day", "score", "band", "computed_score"), (day, *rows[i][1:]))))
    return out


def baselines(
    store: Any, today: dt.date, days: int, account_ids: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per account, its state on the baseline day of a ``days``-day trend (``baseline_day``):
    the latest history row on or before that day; accounts without one are absent (as are
    all when health did not run in the baseline span)."""
    day = baseline_day(store, today, days)
    return {} if day is None else states_on(store, day, account_ids)


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
    "daily_history",
    "run_day",
    "baseline_day",
    "states_on",
    "log_override",
    "own_override_echoes",
    "score_rows",
]
