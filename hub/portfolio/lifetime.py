"""Customer lifetime: time to first value, early churn and observed value per start cohort.

- An account *starts* on the day of its ``new`` movement (its first payment); its cohort is
  that month.
- Time to first value (TTFV): days from the start to the first event of the configured type
  (``[portfolio] first_value_event``, default ``widget_detected``) on or after the start
  (an event before the start counts as day 0: value came with the purchase).
- Early churn: the account's first ``churn`` movement within ``early_churn_days`` (default
  90) of its start. Accounts whose window has not ended yet and that have not churned are
  counted as ``maturing``, not as kept.
- Observed value to date: the MRR each account paid, summed over the months it paid
  (MRR × months between its movements, up to today), averaged over the cohort. This is an
  observed, not a projected, lifetime value; the book LTV (``hub.portfolio.books``) is the
  projected one.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from typing import Any

from hub import clock
from hub.portfolio.movements import build_movements
from hub.portfolio.settings import PortfolioSection
from hub.store import Store

DAYS_PER_MONTH = 365 / 12


@dataclass
class AccountLifetime:
    """One account's start, first value and early churn."""

    account_id: str
    name: str
    start: str
    cohort: str
    first_value_at: str | None
    ttfv_days: int | None
    churned_at: str | None
    early_churn: bool
    maturing: bool
    observed_value: int  # cents paid to date (MRR × months)


@dataclass
class Cohort:
    """Accounts that started in one month."""

    month: str
    accounts: list[AccountLifetime] = field(default_factory=list)

    @property
    def reached_value(self) -> list[int]:
        return [a.ttfv_days for a in self.accounts if a.ttfv_days is not None]

    def as_dict(self) -> dict[str, Any]:
        ttfv = self.reached_value
        early = sum(a.early_churn for a in self.accounts)
        decided = sum(not a.maturing for a in self.accounts)
        n = len(self.accounts)
        return {
            "cohort": self.month,
            "accounts": n,
            "reached_first_value": len(ttfv),
            "ttfv_median_days": statistics.median(ttfv) if ttfv else None,
            "ttfv_avg_days": round(sum(ttfv) / len(ttfv), 1) if ttfv else None,
            "early_churn": early,
            "maturing": n - decided,
            "early_churn_pct": round(100 * early / decided, 1) if decided else None,
            "observed_value_avg": round(sum(a.observed_value for a in self.accounts) / n / 100, 2)
            if n
            else None,
        }


_LIFETIME_SQL = """
WITH s AS (
    SELECT account_id, min(day) AS start FROM mrr_movements
    WHERE kind = 'new' AND (:account IS NULL OR account_id = :account) GROUP BY 1
), c AS (
    SELECT account_id, min(day) AS churned FROM mrr_movements m
    WHERE kind = 'churn' AND (:account IS NULL OR account_id = :account) GROUP BY 1
), v AS (
    SELECT account_id, sum(mrr_after * (julianday(coalesce(nxt, :today)) - julianday(day)))
               AS cents_days
    FROM (SELECT account_id, day, mrr_after,
                 lead(day) OVER (PARTITION BY account_id ORDER BY day) AS nxt
          FROM mrr_movements
          WHERE day <= :today AND (:account IS NULL OR account_id = :account))
    GROUP BY 1
), f AS (
    SELECT e.account_id, min(e.ts) AS first_value FROM events e JOIN s USING (account_id)
    WHERE e.type = :event AND substr(e.ts, 1, 10) >= s.start GROUP BY 1
), f0 AS (
    SELECT e.account_id FROM events e JOIN s USING (account_id)
    WHERE e.type = :event AND substr(e.ts, 1, 10) < s.start GROUP BY 1
)
SELECT s.account_id, coalesce(a.name, s.account_id), s.start, f.first_value,
       f0.account_id IS NOT NULL, c.churned, coalesce(v.cents_days, 0)
FROM s LEFT JOIN accounts a ON a.id = s.account_id
LEFT JOIN c ON c.account_id = s.account_id
LEFT JOIN v ON v.account_id = s.account_id
LEFT JOIN f ON f.account_id = s.account_id
LEFT JOIN f0 ON f0.account_id = s.account_id
ORDER BY s.start, s.account_id
"""


def lifetimes(
    store: Store,
    settings: PortfolioSection | None = None,
    today: dt.date | None = None,
    *,
    account_id: str | None = None,
) -> list[AccountLifetime]:
    """Start, TTFV, early churn and observed value of every account that ever paid (or of
    one account)."""
    settings = settings or PortfolioSection()
    build_movements(store)
    today = today or clock.now().date()
    out = []
    rows = store.db.execute(
        _LIFETIME_SQL,
        {"today": today.isoformat(), "event": settings.first_value_event, "account": account_id},
    )
    for aid, name, start, first_value, before_start, churned, cents_days in rows:
        start_day = dt.date.fromisoformat(start)
        ttfv = None
        if first_value:
            ttfv = max(0, (dt.date.fromisoformat(first_value[:10]) - start_day).days)
        elif before_start:
            ttfv = 0
        window_end = start_day + dt.timedelta(days=settings.early_churn_days)
        early = bool(churned) and dt.date.fromisoformat(churned) <= window_end
        out.append(
            AccountLifetime(
                account_id=aid,
                name=name,
                start=start,
                cohort=start[:7],
                first_value_at=first_value,
                ttfv_days=ttfv,
                churned_at=churned,
                early_churn=early,
                maturing=not early and today < window_end,
                observed_value=round(cents_days / DAYS_PER_MONTH),
            )
        )
    return out


def cohorts(
    store: Store, settings: PortfolioSection | None = None, today: dt.date | None = None
) -> list[Cohort]:
    """Accounts grouped by the month they started, oldest first."""
    groups: dict[str, Cohort] = {}
    for a in lifetimes(store, settings, today):
        groups.setdefault(a.cohort, Cohort(a.cohort)).accounts.append(a)
    return [groups[k] for k in sorted(groups)]
