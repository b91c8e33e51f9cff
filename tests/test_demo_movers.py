"""The demo's "why it moved", worked by hand: a measure without data is left out of a score
(DESIGN.md, Health), so a measure that gained or lost data is never given as the reason a
score dropped; only measures with data then and now that moved the score's way are."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_health)

from __future__ import annotations

from hub.health import biggest_movers, compute_health
from tests.test_health import add_account, add_event, clk, config, db  # noqa: F401
from tests.test_health_golden import BILLING
from tests.test_health_moves_golden import _baseline


def test_a_measure_that_gained_data_is_no_reason_for_a_fall(db, clk):
    # Model: billing and CSAT weighted 1 : 1. 31 days ago: billing 100, CSAT no data, so the
    # score was billing alone: 100. Now: a failed payment, retrying → billing 75; CSAT 1 good
    # of 2 → 50. (75 + 50) / 2 = 62.5 → 63: 63 − 100 = −37.
    # Billing's share is 1/2 × (75 − 100) = −12.5: a reason. CSAT went from no data to 50:
    # before, it was left out, not counted as a value, so "CSAT no data → 50" is no reason
    # (the old rule ranked it first, 1/2 × (50 − 100) = −25, against the old score).
    add_account(db, "gained", name="Polar Finance", has_payment_method=True)
    add_event(db, "gained", "csat_good", 2)
    add_event(db, "gained", "csat_bad", 2)
    add_event(db, "gained", "payment_failed", 1, invoice_id="in_1", retrying=True)
    _baseline(db, "gained", 100, {"billing": 100.0, "csat": None})
    # Lost data the other way: 31 days ago billing 100, CSAT 100 → 100; now CSAT has no data
    # (no rating in its window) and billing 75 → 75: −25, billing 1/1 × (75 − 100) the reason.
    add_account(db, "lost", name="Quiet Travel", has_payment_method=True)
    add_event(db, "lost", "payment_failed", 1, invoice_id="in_2", retrying=True)
    _baseline(db, "lost", 100, {"billing": 100.0, "csat": 100.0})
    compute_health(db, config(BILLING))

    movers = {m.name: m for m in biggest_movers(db, 30, config=config(BILLING))}
    gained, lost = movers["Polar Finance"], movers["Quiet Travel"]
    assert (gained.computed_score, gained.trend) == (63, 63 - 100)
    assert gained.cause == "Billing 100 → 75"
    assert (lost.computed_score, lost.trend) == (75, 75 - 100)
    assert lost.cause == "Billing 100 → 75"
    assert all("no data" not in m.cause for m in movers.values())


def test_a_fall_only_coverage_explains_says_so(db, clk):
    # 31 days ago: billing 100, CSAT no data → 100. Now: nothing happened to billing (one
    # invoice paid on time keeps it at 100); CSAT 0 good of 1 → 0. (100 + 0) / 2 = 50:
    # 50 − 100 = −50. No measure with data moved: the fall is CSAT being scored at all.
    from hub.health import moves_for
    from hub.health.moves import coverage_change

    add_account(db, "only", name="Swift Dental", has_payment_method=True)
    add_event(db, "only", "csat_bad", 2)
    _baseline(db, "only", 100, {"billing": 100.0, "csat": None})
    compute_health(db, config(BILLING))
    (mover,) = biggest_movers(db, 30, config=config(BILLING))
    assert (mover.computed_score, mover.trend) == (50, 50 - 100)
    assert mover.reasons == [] and mover.cause == "no measure moved by itself"
    moves = moves_for(db, 30, config=config(BILLING))["only"]
    assert coverage_change(moves) == "no measure with data moved; newly scored: CSAT"
