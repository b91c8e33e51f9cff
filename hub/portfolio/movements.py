"""MRR movements: the timeline's ``subscription_mrr`` events → per-account movements per day.

The contract with mappings (vendor-neutral): an event of type ``subscription_mrr`` says that
one subscription's monthly recurring revenue is ``attrs.mrr`` (dollars, normalised to a
month, discounts applied) from the event's time on; 0 means it ended, and then
``attrs.reason`` carries the cancellation reason. ``attrs.subscription_id`` names the
subscription and ``attrs.plan`` its plan. Any billing mapping can emit it.

Conventions (ChartMogul, Baremetrics): an account's MRR is the sum of its subscriptions';
its changes on one day are netted into one movement, classified by the account's MRR before
and after that day:

- ``new``: from 0 to paying, the first time;
- ``reactivation``: from 0 to paying after having paid before;
- ``churn``: from paying to 0 (the *last* subscription ended);
- ``expansion`` / ``contraction``: any other rise or fall (an add-on cancelled while the
  main subscription continues is contraction; a plan switched on the same day is one change).

Two tables, rebuilt set-based from the timeline whenever its ``subscription_mrr`` events
changed (so a re-map rebuilds them identically and an incremental map extends them):
``portfolio_mrr_points`` (the events flattened, cents) and ``mrr_movements`` (one row per
account and day with a change: kind, signed amount, MRR before and after, reasons). Amounts
are integer cents, so movements add up exactly: for every account and every period, opening
MRR plus the sum of its movements is its closing MRR.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from hub.store import Store

EVENT = "subscription_mrr"
KINDS = ("new", "expansion", "contraction", "churn", "reactivation")
_META_KEY = "movements_fingerprint"


@dataclass
class BuildResult:
    """What ``build_movements`` did."""

    rebuilt: bool
    points: int = 0
    movements: int = 0
    seconds: float = 0.0


def _fingerprint(store: Store) -> str:
    """Changes whenever a ``subscription_mrr`` event is added, removed, moved or relinked."""
    row = store.db.execute(
        "SELECT count(*), max(mapped_at), total(julianday(ts)), "
        "total(json_extract(attrs, '$.mrr') * (julianday(ts) - 2460000)), "
        "total(length(account_id) * unicode(substr(account_id, -1))) "
        "FROM events WHERE type = ?",
        [EVENT],
    ).fetchone()
    return "|".join(str(x) for x in row)


def build_movements(store: Store, *, force: bool = False) -> BuildResult:
    """Rebuild points and movements from the timeline if it changed since the last build."""
    started = time.perf_counter()
    db = store.db
    fingerprint = _fingerprint(store)
    row = db.execute("SELECT value FROM _hub_portfolio_meta WHERE key = ?", [_META_KEY]).fetchone()
    if not force and row and row[0] == fingerprint:
        return BuildResult(rebuilt=False, seconds=time.perf_counter() - started)
    with db.atomic():
        db.execute("DELETE FROM portfolio_mrr_points")
        db.execute("DELETE FROM mrr_movements")
        db.execute(
            "INSERT OR REPLACE INTO portfolio_mrr_points "
            "(account_id, entity, subscription_id, ts, day, mrr, plan, reason) "
            "SELECT account_id, entity, json_extract(attrs, '$.subscription_id'), ts, "
            "substr(ts, 1, 10), CAST(round(json_extract(attrs, '$.mrr') * 100) AS INTEGER), "
            "json_extract(attrs, '$.plan'), json_extract(attrs, '$.reason') "
            "FROM events WHERE type = ? AND account_id IS NOT NULL ORDER BY id",
            [EVENT],
        )
        db.execute(_MOVEMENTS_SQL)
        db.execute(
            "INSERT OR REPLACE INTO _hub_portfolio_meta (key, value) VALUES (?, ?)",
            [_META_KEY, fingerprint],
        )
    points = db.execute("SELECT count(*) FROM portfolio_mrr_points").fetchone()[0]
    movements = db.execute("SELECT count(*) FROM mrr_movements").fetchone()[0]
    return BuildResult(True, points, movements, time.perf_counter() - started)


# Deltas per subscription (LAG), netted per account and day, running MRR per account, then the
# kind from before/after and whether the account ever paid before that day.
_MOVEMENTS_SQL = """
INSERT INTO mrr_movements (account_id, day, month, kind, amount, mrr_before, mrr_after, reason)
WITH d AS (
    SELECT account_id, day,
           mrr - coalesce(lag(mrr) OVER (PARTITION BY entity, subscription_id ORDER BY ts), 0)
               AS delta,
           CASE WHEN mrr = 0 THEN coalesce(reason, 'unknown') END AS reason
    FROM portfolio_mrr_points
), g AS (
    SELECT account_id, day, sum(delta) AS delta, group_concat(DISTINCT reason) AS reason
    FROM d GROUP BY account_id, day
), r AS (
    SELECT account_id, day, delta, reason,
           sum(delta) OVER (PARTITION BY account_id ORDER BY day ROWS UNBOUNDED PRECEDING)
               AS after
    FROM g
), c AS (
    SELECT *, after - delta AS before,
           coalesce(max(after > 0) OVER (PARTITION BY account_id ORDER BY day
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS paid_before
    FROM r
)
SELECT account_id, day, substr(day, 1, 7),
       CASE WHEN before <= 0 AND after > 0
                THEN CASE WHEN paid_before THEN 'reactivation' ELSE 'new' END
            WHEN before > 0 AND after <= 0 THEN 'churn'
            WHEN delta > 0 THEN 'expansion'
            ELSE 'contraction' END,
       delta, before, after, CASE WHEN delta < 0 THEN reason END
FROM c WHERE delta != 0
"""


@dataclass
class MonthBridge:
    """One account's MRR bridge for one month, in cents."""

    month: str
    opening: int = 0
    new: int = 0
    expansion: int = 0
    contraction: int = 0  # a positive magnitude
    churn: int = 0  # a positive magnitude
    reactivation: int = 0
    closing: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, kind: str, amount: int) -> None:
        setattr(self, kind, getattr(self, kind) + abs(amount))

    @property
    def net(self) -> int:
        return self.new + self.expansion + self.reactivation - self.contraction - self.churn


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def account_bridge(
    store: Store, account_id: str, until: dt.date | None = None
) -> list[MonthBridge]:
    """Month-by-month MRR bridge of one account, from its first movement to ``until``'s month.

    Months without a movement are listed too while the account pays (opening = closing).
    """
    build_movements(store)
    rows = store.db.execute(
        "SELECT month, kind, amount, mrr_before, mrr_after, reason FROM mrr_movements "
        "WHERE account_id = ? ORDER BY day",
        [account_id],
    ).fetchall()
    if not rows:
        return []
    last = (until or dt.date.today()).strftime("%Y-%m")
    last = max(last, rows[-1][0])
    months: list[MonthBridge] = []
    i, mrr, month = 0, 0, rows[0][0]
    while month <= last:
        bridge = MonthBridge(month, opening=mrr)
        while i < len(rows) and rows[i][0] == month:
            _, kind, amount, _, after, reason = rows[i]
            bridge.add(kind, amount)
            if reason and kind in ("churn", "contraction"):
                bridge.reasons.append(reason)
            mrr = after
            i += 1
        bridge.closing = mrr
        if bridge.opening or bridge.closing or bridge.net or bridge.churn:
            months.append(bridge)
        month = _next_month(month)
    return months
