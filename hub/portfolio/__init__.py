"""Portfolio: MRR movements per account, book metrics per CSM, segment and plan, lifetimes.

A customer-success leader is measured on the book, not the account. This package reads the
timeline through one vendor-neutral contract, the ``subscription_mrr`` event (see
``hub.portfolio.movements``), plus ``owner_changed`` events, ``accounts`` and the health
history, and computes:

- ``movements``: per account and day, new / expansion / contraction / churn / reactivation
  (ChartMogul conventions), stored in ``mrr_movements`` and rebuilt when the timeline changes;
  ``account_bridge`` gives one account's month-by-month bridge;
- ``books``: per owner (at the period start), segment or plan, starting MRR, NRR, GRR, logo
  churn, churn by reason, health bands, LTV; totals reconcile with the movements;
- ``lifetime``: time to first value, early churn and observed value per start cohort.

``[portfolio]`` settings: ``hub.portfolio.settings`` (``validate_config``).
"""

from __future__ import annotations

from typing import Any

from hub.portfolio.books import (
    AccountPeriod,
    Book,
    PortfolioReport,
    account_periods,
    owner_names,
    portfolio_report,
)
from hub.portfolio.lifetime import AccountLifetime, Cohort, cohorts, lifetimes
from hub.portfolio.movements import (
    EVENT,
    KINDS,
    BuildResult,
    MonthBridge,
    account_bridge,
    build_movements,
)
from hub.portfolio.settings import Period, PortfolioSection, parse_period, validate_config
from hub.store import Store


def csm_rows(store: Store, config: Any = None, period: str | None = None) -> list[dict[str, Any]]:
    """NRR per CSM for the default (or given) period: the rows ``hub demo`` ends with.

    Each row: owner, starting and closing MRR, NRR and GRR (percent), churned MRR and its
    top reason; the last row is the total.
    """
    settings = validate_config(config) if config is not None else PortfolioSection()
    report = portfolio_report(
        store, parse_period(period or settings.default_period), "owner", settings
    )
    rows = []
    for book in [*report.books, report.total]:
        d = book.as_dict()
        top = max(book.churn_by_reason.items(), key=lambda kv: kv[1], default=(None, 0))[0]
        rows.append(
            {
                "owner": d["label"],
                "accounts": d["accounts"],
                "starting_mrr": d["starting_mrr"],
                "closing_mrr": d["closing_mrr"],
                "nrr_pct": d["nrr_pct"],
                "grr_pct": d["grr_pct"],
                "churn": d["churn"],
                "top_churn_reason": top,
                "period": report.period.label,
            }
        )
    return rows


__all__ = [
    "EVENT",
    "KINDS",
    "AccountLifetime",
    "AccountPeriod",
    "Book",
    "BuildResult",
    "Cohort",
    "MonthBridge",
    "Period",
    "PortfolioReport",
    "PortfolioSection",
    "account_bridge",
    "account_periods",
    "build_movements",
    "cohorts",
    "csm_rows",
    "lifetimes",
    "owner_names",
    "parse_period",
    "portfolio_report",
    "validate_config",
]
