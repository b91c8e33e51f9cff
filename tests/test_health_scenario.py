"""A customer slides: failed payments, slow tickets and a competitor in one week. The score
drops, the trend is negative, and the drivers name each cause with its numbers."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_health)

from __future__ import annotations

import datetime as dt

from hub.health import compute_health, explain
from tests.test_health import (  # noqa: F401 (clk, db: fixtures)
    NOW,
    add_account,
    add_event,
    clk,
    db,
    history,
    score_row,
    set_facts,
    solved,
)


def test_trouble_drops_the_score_with_a_negative_trend_and_named_causes(db, clk):
    renewal = (NOW.date() + dt.timedelta(days=200)).isoformat()
    add_account(
        db,
        "acme",
        name="Acme Telecom",
        renewal_date=renewal,
        nps=9,
        contacts_total=20,
        contacts_unsubscribed=0,
        last_touch="2026-11-05T10:00:00Z",
        has_payment_method=True,
        card_expires="2028-04",
        widget_present=True,
        competitors=[],
    )
    add_account(db, "calm", has_payment_method=True, nps=9)

    # Ten days ago: a healthy customer (fast tickets, happy ratings, invoices paid).
    clk.now = NOW - dt.timedelta(days=10)
    solved(db, "acme", [2, 3, 4], days_ago=5)
    for _ in range(10):
        add_event(db, "acme", "csat_good", 6)
    for days in (40, 10):
        add_event(db, "acme", "invoice_paid", days, invoice_id=f"in_{days}")
    add_event(db, "acme", "widget_detected", 300, technology="Lumen Widget")
    compute_health(db)
    before = score_row(db, "acme")
    assert before["band"] == "green"

    # This week: two failed payments, five slow tickets, a competitor on the site.
    clk.now = NOW
    add_event(db, "acme", "payment_failed", 4, invoice_id="in_9", attempt_count=1)
    add_event(db, "acme", "payment_failed", 1, invoice_id="in_11", attempt_count=1)
    solved(db, "acme", [70, 90, 110, 130, 150], days_ago=2)
    add_event(db, "acme", "competitor_detected", 3, technology="Intercom")
    set_facts(db, "acme", competitors=["Intercom"])
    result = compute_health(db)
    assert result.full and result.reason == "day changed"

    after = score_row(db, "acme")
    assert after["score"] < before["score"] - 15
    assert after["band"] == "yellow"
    # Trend: against the history row of ten days ago (the nearest at least 7 days back).
    assert after["trend_7d"] == after["score"] - before["score"] < 0
    assert after["trend_30d"] is None
    assert [s for _, s in history(db, "acme")] == [before["score"], after["score"]]
    assert after["drivers"] == [
        "payment failed on 2 invoices in the last 60 days",
        "median resolution 80 h vs 24 h target (8 tickets solved in the last 90 days)",
        "competitor Intercom detected 3 days ago",
    ]
    # The unaffected account stays where it was.
    assert score_row(db, "calm")["trend_7d"] == 0

    data = explain(db, "Acme Telecom")
    by_name = {m["name"]: m for m in data["measures"]}
    assert by_name["billing"]["inputs"]["payment_failed"] == 2
    assert by_name["support"]["inputs"]["median_resolution_hours"] == 80
    assert by_name["technographics"]["inputs"]["competitors"] == ["Intercom"]
    assert data["trend_7d"] == after["trend_7d"]
