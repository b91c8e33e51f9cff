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

from hub import clock
from hub.store import Store

EVENT = "subscription_mrr"
KINDS = ("new", "expansion", "contraction", "churn", "reactivation")
_META_KEY = "movements_fingerprint"
_MARK_KEY = "movements_mark"


@dataclass
class BuildResult:
    """What ``build_movements`` did."""

    rebuilt: bool
    points: int = 0
    movements: int = 0
    seconds: float = 0.0


def _fingerprint(db) -> tuple[str, str | None]:
    """(fingerprint, newest ``mapped_at`` on the timeline), from indexes only.

    The timeline stamps every event it writes or relinks with ``mapped_at``, so a newer
    stamp means something may have changed; a different count means events were removed.
    """
    count = db.execute("SELECT count(*) FROM events WHERE type = ?", [EVENT]).fetchone()[0]
    newest = db.execute("SELECT max(mapped_at) FROM events").fetchone()[0]
    return f"{count}|{newest}", newest


_POINTS_SELECT = (
    "SELECT id, account_id, entity, json_extract(attrs, '$.subscription_id'), ts, "
    "substr(ts, 1, 10), CAST(round(json_extract(attrs, '$.mrr') * 100) AS INTEGER), "
    "json_extract(attrs, '$.plan'), json_extract(attrs, '$.reason') FROM events "
)
_POINTS_INSERT = (
    "INSERT INTO portfolio_mrr_points "
    "(event_id, account_id, entity, subscription_id, ts, day, mrr, plan, reason) "
)


_POINT_INDEXES = (
    ("idx_portfolio_mrr_points_account_id_ts", "account_id, ts"),
    ("idx_portfolio_mrr_points_entity_subscription_id_ts", "entity, subscription_id, ts"),
)


def _meta(db, key: str) -> str | None:
    row = db.execute("SELECT value FROM _hub_portfolio_meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def build_movements(store: Store, *, force: bool = False) -> BuildResult:
    """Bring points and movements up to date with the timeline.

    Nothing happens when the ``subscription_mrr`` events did not change. Otherwise only the
    accounts with events mapped since the last build (and the accounts their subscriptions
    were on before a relink) are recomputed; a full rebuild happens with ``force``, on the
    first build, and when events disappeared from accounts that were not recomputed. Both
    give the same rows.
    """
    started = time.perf_counter()
    db = store.db
    fingerprint, newest = _fingerprint(db)
    if not force and _meta(db, _META_KEY) == fingerprint:
        return BuildResult(rebuilt=False, seconds=time.perf_counter() - started)
    mark = None if force else _meta(db, _MARK_KEY)
    with db.atomic():
        if mark is None or not _incremental(db, mark):
            db.execute("DELETE FROM portfolio_mrr_points")
            db.execute("DELETE FROM mrr_movements")
            # Bulk load: the secondary indexes are rebuilt once at the end (twice as fast).
            for name, _ in _POINT_INDEXES:
                db.execute(f"DROP INDEX IF EXISTS {name}")
            db.execute(
                _POINTS_INSERT + _POINTS_SELECT + "WHERE type = ? AND account_id IS NOT NULL",
                [EVENT],
            )
            for name, columns in _POINT_INDEXES:
                db.execute(f"CREATE INDEX {name} ON portfolio_mrr_points ({columns})")
            db.execute(_MOVEMENTS_SQL.format(where=""))
        for key, value in ((_META_KEY, fingerprint), (_MARK_KEY, newest or "")):
            db.execute(
                "INSERT OR REPLACE INTO _hub_portfolio_meta (key, value) VALUES (?, ?)",
                [key, value],
            )
    points = db.execute("SELECT count(*) FROM portfolio_mrr_points").fetchone()[0]
    movements = db.execute("SELECT count(*) FROM mrr_movements").fetchone()[0]
    return BuildResult(True, points, movements, time.perf_counter() - started)


def _incremental(db, mark: str) -> bool:
    """Recompute the accounts touched since ``mark``; False when a full rebuild is needed."""
    changed = db.execute(
        # ``+type``: walk the mapped_at index (few rows), not every event of the type.
        "SELECT DISTINCT account_id, entity FROM events WHERE mapped_at >= ? AND +type = ?",
        [mark, EVENT],
    ).fetchall()
    db.execute("DROP TABLE IF EXISTS temp._portfolio_accounts")
    db.execute("CREATE TEMP TABLE _portfolio_accounts (id TEXT PRIMARY KEY)")
    entities = sorted({e for _, e in changed})
    accounts = {a for a, _ in changed if a}
    for i in range(0, len(entities), 500):
        chunk = entities[i : i + 500]
        accounts.update(
            r[0]
            for r in db.execute(
                "SELECT DISTINCT account_id FROM portfolio_mrr_points "
                f"WHERE entity IN ({','.join('?' * len(chunk))})",
                chunk,
            )
        )
    db.conn.executemany(
        "INSERT INTO temp._portfolio_accounts (id) VALUES (?)", [(a,) for a in accounts]
    )
    scope = "account_id IN (SELECT id FROM temp._portfolio_accounts)"
    db.execute(f"DELETE FROM portfolio_mrr_points WHERE {scope}")
    db.execute(f"DELETE FROM mrr_movements WHERE {scope}")
    db.execute(_POINTS_INSERT + _POINTS_SELECT + f"WHERE +type = ? AND {scope}", [EVENT])
    db.execute(_MOVEMENTS_SQL.format(where=f"WHERE {scope}"))
    db.execute("DROP TABLE temp._portfolio_accounts")
    # Every linked event must now be a point; if not, one disappeared elsewhere: rebuild all.
    total = db.execute("SELECT count(*) FROM events WHERE type = ?", [EVENT]).fetchone()[0]
    unlinked = db.execute(
        "SELECT count(*) FROM events WHERE account_id IS NULL AND +type = ?", [EVENT]
    ).fetchone()[0]
    points = db.execute("SELECT count(*) FROM portfolio_mrr_points").fetchone()[0]
    return total == points + unlinked


# Deltas per subscription (LAG), netted per account and day, running MRR per account, then the
# kind from before/after and whether the account ever paid before that day.
_MOVEMENTS_SQL = """
INSERT INTO mrr_movements (account_id, day, month, kind, amount, mrr_before, mrr_after, reason)
WITH d AS (
    SELECT account_id, day,
           mrr - coalesce(lag(mrr) OVER (PARTITION BY entity, subscription_id
                                         ORDER BY ts, event_id), 0)
               AS delta,
           CASE WHEN mrr = 0 THEN coalesce(reason, 'unknown') END AS reason
    FROM portfolio_mrr_points {where}
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
    last = (until or clock.now().date()).strftime("%Y-%m")
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
