"""Golden cases worked by hand for the health rules a CSM has to trust (issue 15): dunning,
churn, one add-on cancelled, the support backlog, overrides (clear, expiry, the hub's own
write read back), trends with gaps, coverage, points factors, rounding. Each case states its
arithmetic; measures are scored through ``hub.testing.measures`` (the real aggregation) or
the whole engine on a small database."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_health)

from __future__ import annotations

import datetime as dt
import json

import pytest

from hub.health import (
    biggest_movers,
    clear_override,
    compute_health,
    explain,
    moves_between,
    moves_for,
    set_override,
)
from hub.store import health_queries
from hub.testing.measures import MeasureCase, event
from plugins.health_models import BillingMeasure, GrowthMeasure, SupportMeasure
from tests.test_health import (  # noqa: F401 (clk, db: fixtures)
    NOW,
    add_account,
    add_event,
    clk,
    config,
    db,
    score_row,
    set_facts,
    solved,
)

AS_OF = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)

# Billing and CSAT side by side, with the default model's past-due cap.
BILLING = {
    "model": "b",
    "models": {
        "b": {
            "type": "weighted",
            "weights": {"billing": 1, "csat": 1},
            "caps": [{"input": "billing.invoice_past_due", "at_least": 1, "max": 39}],
        }
    },
}


def _good_csat(db, account_id: str) -> None:
    for _ in range(2):
        add_event(db, account_id, "csat_good", 2)  # CSAT 2 / 2 = 100


# -- dunning --------------------------------------------------------------------------------


def test_a_failed_attempt_with_a_retry_scheduled_is_failing_retrying_not_past_due():
    result = MeasureCase(
        events=[
            event(
                "payment_failed",
                1,
                id="stripe:payment_failed:in_1",
                invoice_id="in_1",
                amount=450,
                attempt_count=1,
                retrying=True,
                next_attempt_at="2026-01-18T10:00:00Z",
                failure_code="card_declined",
            )
        ],
        facts={"has_payment_method": True},
        mrr=450,
    ).score(BillingMeasure)
    # 100 − 25 (payment failed on one invoice) = 75; nothing past due.
    assert result.value == 75
    assert result.inputs["payment_failed"] == 1
    assert result.inputs["payment_retrying"] == 1
    assert result.inputs["invoice_past_due"] == 0
    assert result.drivers == [
        "payment failed on 1 invoice ($450) in the last 60 days, retry scheduled 2026-01-18"
    ]


def test_an_invoice_counts_once_however_many_attempts():
    # Older mappings emit one payment_failed per attempt: three attempts on in_1, one on in_2.
    attempts = [event("payment_failed", d, invoice_id="in_1", amount=100) for d in (9, 6, 2)]
    result = MeasureCase(
        events=[*attempts, event("payment_failed", 4, invoice_id="in_2", amount=50)],
        facts={"has_payment_method": True},
    ).score(BillingMeasure)
    # Two invoices, not four attempts: 100 − 2 × 25 = 50.
    assert result.value == 50
    assert result.inputs["payment_failed"] == 2
    assert "payment failed on 2 invoices ($150)" in result.drivers[0]


def test_past_due_after_retries_counts_once_and_a_recovered_invoice_is_paid_late():
    result = MeasureCase(
        events=[
            event("payment_failed", 20, invoice_id="in_1", amount=300, retrying=False),
            event(
                "invoice_past_due",
                5,
                invoice_id="in_1",
                amount=300,
                days_overdue=5,
                reason="retries_exhausted",
            ),
            # in_2 failed once, then the retry worked (the mapping calls it paid late).
            event("payment_failed", 12, invoice_id="in_2", amount=80, retrying=True),
            event("invoice_paid_late", 9, invoice_id="in_2"),
        ],
        facts={"has_payment_method": True},
    ).score(BillingMeasure)
    # in_1: worst state past due → −35 (its failure does not count again);
    # in_2: paid late → −10 (its failure does not count either). 100 − 35 − 10 = 55.
    assert result.value == 55
    assert (result.inputs["invoice_past_due"], result.inputs["payment_failed"]) == (1, 0)
    assert result.inputs["invoice_paid_late"] == 1
    assert result.inputs["amount_past_due"] == 300
    assert result.drivers[0] == "1 invoice past due ($300), 5 days overdue"


def test_written_off_invoice_keeps_its_amount_and_is_bad_debt():
    result = MeasureCase(
        events=[event("invoice_written_off", 30, invoice_id="in_7", amount=1200)],
        facts={"has_payment_method": True},
    ).score(BillingMeasure)
    # 100 − 40 (written off) = 60.
    assert result.value == 60
    assert result.inputs["invoice_written_off"] == 1
    assert result.drivers == ["1 invoice written off ($1,200) (bad debt)"]


def test_without_a_card_fact_the_latest_card_expiring_event_dates_the_card():
    # Card expiry events ride in the invoice concatenation (entry c<time>|<year>-<month>);
    # the latest event's card counts, here 2026-01 (the earlier one said 2025-12).
    result = MeasureCase(
        events=[
            event("card_expiring", 20, exp_year=2025, exp_month=12),
            event("card_expiring", 2, exp_year=2026, exp_month=1),
            event("invoice_paid", 10, invoice_id="in_1"),
        ],
    ).score(BillingMeasure)
    # Valid through 2026-01-31, 16 days after 2026-01-15: within 30 days, 100 − 15 = 85.
    assert result.value == 85
    assert (result.inputs["card_expiring"], result.inputs["card_days_left"]) == (1, 16)
    assert result.inputs["invoices_paid"] == 1
    assert result.drivers == ["card expires in 16 days (2026-1)"]


def test_an_older_past_due_event_with_a_retry_scheduled_is_read_as_retrying():
    # Before the dunning-aware mapping, a first declined attempt was "past due" at once,
    # with Stripe's next_payment_attempt still set.
    result = MeasureCase(
        events=[
            event(
                "invoice_past_due",
                0,
                invoice_id="in_3",
                amount=99,
                days_overdue=0,
                next_payment_attempt=1768730400,
            )
        ],
        facts={"has_payment_method": True},
    ).score(BillingMeasure)
    # Failing, retrying: 100 − 25 = 75, never the past-due state.
    assert result.value == 75
    assert (result.inputs["invoice_past_due"], result.inputs["payment_retrying"]) == (0, 1)


def test_retrying_never_turns_the_account_red_but_past_due_caps_it(db, clk):
    add_account(db, "retry", has_payment_method=True)
    _good_csat(db, "retry")
    add_event(db, "retry", "payment_failed", 1, invoice_id="in_1", retrying=True)
    add_account(db, "due", has_payment_method=True)
    _good_csat(db, "due")
    add_event(db, "due", "invoice_past_due", 3, invoice_id="in_2", reason="retries_exhausted")
    compute_health(db, config(BILLING))
    # retry: (75 + 100) / 2 = 87.50 → 88, green; no cap.
    retry = score_row(db, "retry")
    assert (retry["score"], retry["band"]) == (88, "green")
    # due: (65 + 100) / 2 = 82.50 → capped at 39 by the past-due invoice → red.
    due = score_row(db, "due")
    assert (due["score"], due["band"]) == (39, "red")
    assert due["drivers"][0] == "1 invoice past due: score capped at 39"


# -- churn and contraction ------------------------------------------------------------------

# Growth alone, with the default model's cancellation cap.
GROWTH = {
    "model": "g",
    "models": {
        "g": {
            "type": "weighted",
            "weights": {"growth": 1},
            "caps": [{"input": "growth.cancelled", "at_least": 1, "max": 20}],
        }
    },
}


def test_all_subscriptions_ended_is_churned_outside_the_bands(db, clk):
    add_account(db, "gone", active_subscriptions=0, churned_at="2026-09-30T00:00:00Z")
    add_event(db, "gone", "subscription_cancelled", 51, ends_account=True, reason="budget")
    add_account(db, "stays", active_subscriptions=1)
    result = compute_health(db, config(GROWTH))
    gone = score_row(db, "gone")
    assert gone["band"] == "churned" and gone["churned"] == 1
    assert gone["drivers"][0] == "churned: every subscription ended (2026-09-30)"
    # Churned is counted apart from green/yellow/red ("stays": flat MRR, growth 75 → yellow).
    assert result.bands == {"churned": 1, "yellow": 1}
    assert health_queries.band_counts(db) == {"churned": 1, "yellow": 1}


def test_a_former_customer_stage_in_the_crm_is_churned(db, clk):
    add_account(db, "former", lifecycle_stage="Former customer")
    add_account(db, "other", lifecycle_stage="other")
    compute_health(db, config(GROWTH))
    assert score_row(db, "former")["band"] == "churned"  # default stages, any spelling
    assert score_row(db, "other")["band"] != "churned"
    compute_health(db, config({**GROWTH, "churned_stages": ["other"]}), full=True)
    assert score_row(db, "other")["band"] == "churned"


def test_cancelling_one_of_several_subscriptions_is_contraction_not_churn(db, clk):
    # The add-on (MRR 200 of 1,200) is cancelled; the main subscription continues.
    add_account(db, "addon", mrr=1000.0, active_subscriptions=1)
    add_event(db, "addon", "subscription_cancelled", 3, ends_account=False, reason="unused")
    add_event(db, "addon", "mrr_changed", 3, mrr_before=1200, mrr_after=1000, delta=-200)
    # The last subscription is cancelled (to end at the period's end: still active now).
    add_account(db, "last", mrr=1000.0, active_subscriptions=1)
    add_event(db, "last", "subscription_cancelled", 3, ends_account=True, reason="budget")
    compute_health(db, config(GROWTH))
    addon = score_row(db, "addon")
    # growth: MRR −200 / 1,200 = −16.67 %; 75 × (1 − 0.1667 / 0.3) = 33.33 → 33, no cap.
    assert (addon["score"], addon["band"]) == (33, "red")
    assert addon["measures"]["growth"]["score"] == 33.33
    assert not any("capped" in d for d in addon["drivers"])
    inputs = next(m for m in explain(db, "addon", config(GROWTH))["measures"])["inputs"]
    assert (inputs["cancelled"], inputs["contractions"]) == (0, 1)
    # The account-ending cancellation scores 0 and caps (20 ≥ 0, so the score stays 0).
    last = score_row(db, "last")
    assert (last["score"], last["band"]) == (0, "red")
    assert last["band"] != "churned"  # still active until the period ends


def test_a_cancellation_without_ends_account_reads_the_active_subscriptions_fact():
    cancelled = event("subscription_cancelled", 2, reason="switched")
    # Older mappings: no ends_account attribute. One subscription still active → contraction.
    partial = MeasureCase(events=[cancelled], facts={"active_subscriptions": 1}, mrr=None).score(
        GrowthMeasure
    )
    # No MRR base: 75 − 10 per contraction = 65.
    assert (partial.value, partial.inputs["cancelled"]) == (65, 0)
    ended = MeasureCase(events=[cancelled], facts={"active_subscriptions": 0}, mrr=None).score(
        GrowthMeasure
    )
    assert (ended.value, ended.inputs["cancelled"]) == (0, 1)


# -- support backlog --------------------------------------------------------------------------


def test_open_tickets_and_the_oldest_age_count():
    # Three tickets opened 40 days ago, none solved: each is 40 days old, past the 30-day
    # zero point → 0 each; smoothed: (0 + 0 + 0 + 2 × 100) / (3 + 2) = 40.00.
    case = MeasureCase(events=[event("ticket_opened", 40, ticket_id=str(t)) for t in (1, 2, 3)])
    result = case.score(SupportMeasure)
    assert result.value == 40
    assert result.inputs["open_tickets"] == 3
    assert result.inputs["oldest_open_days"] == 40
    assert result.inputs["tickets_solved"] == 0
    assert result.drivers == ["3 tickets open, the oldest for 40 days"]


def test_one_slow_ticket_cannot_swing_support_from_100_to_0():
    # One ticket solved in 100 h (target 24 h, 0 at 72 h): the ticket scores 0;
    # (0 + 2 × 100) / (1 + 2) = 66.666… → stated 66.67.
    case = MeasureCase(events=[event("ticket_solved", 3, ticket_id="9", resolution_hours=100)])
    result = case.score(SupportMeasure)
    assert result.value_h == 6667
    # Without smoothing the same ticket would be 0: the prior is what holds it.
    assert case.score(SupportMeasure, params={"prior_tickets": 0}).value == 0


def test_a_reopened_ticket_is_open_again_and_counts_once():
    events = [
        event("ticket_opened", 20, ticket_id="5"),
        event("ticket_solved", 15, ticket_id="5", resolution_hours=120),
        event("ticket_reopened", 10, ticket_id="5"),
        event("ticket_opened", 8, ticket_id="6"),
        event("ticket_solved", 8, ticket_id="6", resolution_hours=12),
    ]
    result = MeasureCase(events=events).score(SupportMeasure)
    # Ticket 5 is open (reopened 10 days ago, not solved since): 100 × (1 − (10 − 7) / 23)
    # = 86.96; its earlier solve does not count again. Ticket 6: 12 h ≤ 24 h → 100.
    # (86.9565 + 100 + 200) / (2 + 2) = 96.74
    assert result.value_h == 9674
    assert (result.inputs["open_tickets"], result.inputs["tickets_solved"]) == (1, 1)


# -- overrides ----------------------------------------------------------------------------------


def _pushed(db, account_id: str, value: str) -> None:
    """What the HubSpot pusher records after writing the override field."""
    db.db["_hub_push_log"].insert(
        {
            "target": "hubspot:hubspot",
            "object_type": "companies",
            "object_id": account_id,
            "property": "hub_health_override",
            "value": value,
            "pushed_at": "2026-11-20T12:00:00Z",
        },
        pk=("target", "object_type", "object_id", "property"),
        replace=True,
    )


def test_clear_returns_the_computed_score_although_the_crm_still_echoes_the_override(db, clk):
    add_account(db, "a", has_payment_method=True)
    _good_csat(db, "a")
    compute_health(db, config(BILLING))
    computed = score_row(db, "a")["computed_score"]  # (100 + 100) / 2 = 100
    assert computed == 100
    until = (NOW.date() + dt.timedelta(days=10)).isoformat()
    set_override(db, "a", 10, "payment plan agreed", until, config(BILLING))
    # The pusher wrote it to the CRM; the next sync reads it back as the account fact.
    _pushed(db, "a", "10")
    set_facts(
        db, "a", health_override={"value": 10, "reason": "payment plan agreed", "until": until}
    )
    row = clear_override(db, "a", config(BILLING))
    assert (row["score"], row["override_value"]) == (100, None)
    # Later runs (before the next push empties the CRM field) keep the computed score.
    clk.advance(hours=2)
    compute_health(db, config(BILLING), full=True)
    row = score_row(db, "a")
    assert (row["score"], row["computed_score"], row["override_value"]) == (100, 100, None)


def test_a_csm_override_set_in_the_crm_wins_until_its_date(db, clk):
    add_account(db, "a", has_payment_method=True)
    _good_csat(db, "a")
    until = (NOW.date() + dt.timedelta(days=2)).isoformat()
    set_facts(db, "a", health_override={"value": 30, "reason": "exec left", "until": until})
    compute_health(db, config(BILLING))
    row = score_row(db, "a")
    assert (row["score"], row["computed_score"], row["band"]) == (30, 100, "red")
    # The pusher echoes the CSM's value back: still the CSM's (the hub never set it).
    _pushed(db, "a", "30")
    clk.advance(days=2)  # the last day the override holds (inclusive)
    compute_health(db, config(BILLING))
    assert score_row(db, "a")["score"] == 30
    clk.advance(days=1)
    compute_health(db, config(BILLING))
    row = score_row(db, "a")
    assert (row["score"], row["override_value"]) == (100, None)


# -- history and trends -------------------------------------------------------------------------


def _history(db, account_id: str, days_ago: int, computed: int, shown: int | None = None):
    db.db["health_history"].insert(
        {
            "account_id": account_id,
            "day": (NOW.date() - dt.timedelta(days=days_ago)).isoformat(),
            "score": computed if shown is None else shown,
            "band": "green",
            "computed_score": computed,
            "measures": json.dumps({"billing": 100.0, "csat": 100.0}),
        },
        pk=("account_id", "day"),
        replace=True,
    )


def test_trends_read_the_computed_score_from_a_baseline_of_bounded_age(db, clk):
    for aid in ("fresh", "stale", "overridden", "late"):
        add_account(db, aid, has_payment_method=True)
        _good_csat(db, aid)
        add_event(db, aid, "payment_failed", 1, invoice_id="in_1")  # billing 75
    # Now: (75 + 100) / 2 = 87.50 → 88 for every account.
    # fresh: rows 12 and 9 days old → the 7-day baseline is the row 9 days old (7–10 days).
    _history(db, "fresh", 12, 50)
    _history(db, "fresh", 9, 80)
    # 30-day: a row 33 days old is in 30–37, one 40 days old would not be.
    _history(db, "fresh", 33, 98)
    # History keeps only changes: an account's state on a day is its latest row on or before
    # it. The 7-day baseline day is the latest day health ran 7–10 days ago (8: the
    # "overridden" row), the 30-day one 30–37 days ago (33).
    # late: first scored 5 days ago → nothing on either baseline day → no trends.
    _history(db, "late", 5, 20)
    # stale: last changed 11 days ago → its state on day 8 is that row: 88 − 20 = 68; first
    # scored after day 33 → no 30-day trend.
    _history(db, "stale", 11, 20)
    # overridden: 8 days ago a CSM override showed 10 while the computed score was 90.
    _history(db, "overridden", 8, 90, shown=10)
    compute_health(db, config(BILLING))
    fresh, stale, over, late = (score_row(db, a) for a in ("fresh", "stale", "overridden", "late"))
    assert (fresh["trend_7d"], fresh["trend_30d"]) == (88 - 80, 88 - 98)
    assert (stale["trend_7d"], stale["trend_30d"]) == (88 - 20, None)
    assert (late["trend_7d"], late["trend_30d"]) == (None, None)
    assert over["trend_7d"] == 88 - 90  # −2, not +78 from the shown 10
    # History keeps the computed score beside the shown one, and today's measure scores.
    today = health_queries.history_row(db, "fresh", NOW.date().isoformat())
    assert (today["score"], today["computed_score"]) == (88, 88)
    assert today["measures"] == {"billing": 75.0, "csat": 100.0}


def test_what_moved_names_the_measures_from_to(db, clk):
    add_account(db, "a", has_payment_method=True, name="Acme")
    _good_csat(db, "a")
    add_event(db, "a", "payment_failed", 1, invoice_id="in_1")
    _history(db, "a", 31, 100)  # billing 100, csat 100 then
    compute_health(db, config(BILLING))
    moves = moves_for(db, 30, config=config(BILLING))["a"]
    assert [m.text for m in moves] == ["Billing 100 → 75"]
    (mover,) = biggest_movers(db, 30, config=config(BILLING))
    assert (mover.name, mover.trend, mover.cause) == ("Acme", 88 - 100, "Billing 100 → 75")
    # Measures that gained or lost data move too; small wiggles do not.
    assert [m.text for m in moves_between({"x": 50.0, "y": 10.0}, {"x": 50.4, "y": None})] == [
        "y 10 → no data"
    ]


def test_first_scoring_is_recorded_for_playbooks_baselines(db, clk):
    add_account(db, "a")
    compute_health(db, config(BILLING))
    first = score_row(db, "a")["first_scored_at"]
    assert health_queries.first_scored_since(db, first) == {"a"}
    clk.advance(days=1)
    compute_health(db, config(BILLING))
    assert score_row(db, "a")["first_scored_at"] == first
    assert health_queries.first_scored_since(db, "2026-11-21") == set()


# -- coverage ----------------------------------------------------------------------------------

HAND = {"model": "h", "models": {"h": {"weights": {"support": 3, "billing": 1, "csat": 2}}}}


def test_low_coverage_is_flagged_never_silently_green(db, clk):
    add_account(db, "a", has_payment_method=True)  # billing 100; no tickets, no ratings
    compute_health(db, config(HAND))
    row = score_row(db, "a")
    # Only billing had data: coverage = 1 / (3 + 1 + 2) = 16.67 %, below the 50 % minimum.
    assert row["score"] == 100 and row["coverage"] == 0.1667 and row["low_coverage"] == 1
    assert row["drivers"][0] == (
        "low coverage: only 17% of the model had data (no data: Support resolution, CSAT)"
    )
    data = explain(db, "a", config(HAND))
    assert (data["coverage"], data["low_coverage"], data["missing"]) == (
        0.1667,
        True,
        ["Support resolution", "CSAT"],
    )
    # The minimum is configurable.
    compute_health(db, config({**HAND, "min_coverage": 0.1}), full=True)
    assert score_row(db, "a")["low_coverage"] == 0


# -- points: linear factors and rules without data ---------------------------------------------

POINTS = {
    "model": "p",
    "models": {
        "p": {
            "type": "points",
            "base": 10,
            "min": 0,
            "max": 10,
            "rules": [
                # −0.5 points per open ticket beyond 1, at most −2.
                {
                    "input": "support.open_tickets",
                    "per": -0.5,
                    "offset": 1,
                    "min_points": -2,
                },
                {"input": "csat.ratio", "below": 0.5, "points": -3},
            ],
        }
    },
}


def test_points_linear_factor_and_a_rule_without_data_left_out(db, clk):
    add_account(db, "a")
    for t in range(4):
        add_event(db, "a", "ticket_opened", 2, ticket_id=f"t{t}")
    compute_health(db, config(POINTS))
    data = explain(db, "a", config(POINTS))
    rules = data["details"]["rules"]
    # 4 open tickets: −0.5 × (4 − 1) = −1.5 points; no CSAT rating: rule 2 left out.
    assert (rules[0]["points"], rules[0]["held"]) == (-1.5, "-0.5 × (4 − 1)")
    assert rules[1]["left_out"] is True and rules[1]["points"] == 0
    # 10 − 1.5 = 8.5 points → (8.5 − 0) / 10 × 100 = 85.00 → 85; coverage 1 of 2 rules.
    assert (data["score_exact"], data["computed_score"], data["coverage"]) == (85.0, 85, 0.5)


def test_rule_shapes_are_validated_in_one_line():
    from hub.errors import ConfigError
    from hub.health import load_settings

    bad = {
        "model": "p",
        "models": {
            "p": {"type": "points", "rules": [{"input": "csat.ratio", "per": 1, "points": 2}]}
        },
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(config(bad))
    assert "health.models.p.rules.0" in str(caught.value) and "\n" not in str(caught.value)


# -- rounding ------------------------------------------------------------------------------------


def test_exact_score_is_rounded_half_up_to_hundredths(db, clk):
    add_account(db, "a", has_payment_method=True)
    add_event(db, "a", "payment_failed", 1, invoice_id="in_1")  # billing 75
    add_event(db, "a", "csat_good", 1)
    add_event(db, "a", "csat_bad", 1)  # CSAT 50
    cfg = config({"model": "r", "models": {"r": {"weights": {"billing": 2, "csat": 1}}}})
    compute_health(db, cfg)
    data = explain(db, "a", cfg)
    # (2 × 75 + 1 × 50) / 3 = 66.666… → 66.67 (half up, not cut to 66.66) → score 67.
    assert data["score_exact"] == 66.67
    assert data["computed_score"] == 67
    assert sum(c["amount"] for c in data["contributions"]) == pytest.approx(66.67)
