"""The portfolio as the web app shows it: movements brought up to date on a page view, and the
books per CSM for a period (the same numbers as ``hub portfolio``)."""

from __future__ import annotations

import sqlite3
from typing import Any

from hub.errors import ConfigError
from hub.portfolio.books import portfolio_report
from hub.portfolio.movements import build_movements
from hub.portfolio.settings import PortfolioSection, parse_period, validate_config
from hub.store import Store


def ensure_portfolio(db_path: str) -> None:
    """Bring ``hub.portfolio``'s MRR movements up to date with the timeline (a derived table:
    a no-op when nothing changed). Writes through a short-lived connection of its own; a busy
    database leaves the previous movements in place."""

    try:
        store = Store(db_path)
    except ConfigError:
        return
    try:
        # A page must not wait behind a long write of ``hub run``: give up quickly and show
        # the movements as they were.
        store.db.execute("PRAGMA busy_timeout=250")
        build_movements(store)
    except sqlite3.OperationalError:
        pass
    finally:
        store.close()


def portfolio_books(store: Store, period: str | None, config: Any = None) -> dict[str, Any]:
    """The books per CSM for ``period`` (``hub.portfolio``): NRR, GRR, churn by reason, bands.

    Raises ``ConfigError`` for a period that does not parse."""

    settings = validate_config(config) if config is not None else PortfolioSection()
    chosen = parse_period(period or settings.default_period)
    report = portfolio_report(store, chosen, "owner", settings)
    return {
        "period": chosen.label,
        "start": chosen.start.isoformat(),
        "end": chosen.end.isoformat(),
        "books": [dict(b.as_dict(), owner_id=b.key) for b in report.books],
        "total": report.total.as_dict(),
    }
