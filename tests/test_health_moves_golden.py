"""Why a score moved, worked by hand: a cap that newly set the score leads a fall and a lifted
cap leads a climb; only measures that moved the way the score did are reasons, the largest
share of the change first, shown in whole points."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_health)

from __future__ import annotations

import datetime as dt
import json

from hub.health import biggest_movers, compute_health
from tests.test_health import NOW, add_account, add_event, clk, config, db  # noqa: F401
from tests.test_health_golden import BILLING, _good_csat


def _baseline(db, account_id: str, computed: int, measures: dict[str, float]) -> None:
    db.db["health_history"].insert(
        {
            "account_id": account_id,
            "day": (NOW.date() - dt.timedelta(days=31)).isoformat(),
            "score": computed,
            "band": "yellow",
            "computed_score": computed,
            "measures": json.dumps(measures),
        },
        pk=("account_id", "day"),
    )


def test_a_new_cap_leads_a_fall_and_a_lifted_cap_leads_a_climb(db, clk):
    # Model: billing and CSAT weighted 1 : 1; an invoice past due caps the score at 39.
    # Fall. 31 days ago: billing 90, CSAT 50.33 → (90 + 50.33) / 2 = 70.165 → 70.
    # Now: an invoice past due → billing 65; CSAT 2 good of 2 → 100. (65 + 100) / 2 = 82.5,
    # capped at 39 by the past-due invoice: 39 − 70 = −31. The cap made the fall and is
    # named first; billing's share is 1/2 × (65 − 90) = −12.5; CSAT rose (1/2 × (100 −
    # 50.33) = +24.84), so it is no reason for a fall.
    add_account(db, "fall", name="Iron Harbor", has_payment_method=True)
    _good_csat(db, "fall")
    add_event(db, "fall", "invoice_past_due", 3, invoice_id="in_1", reason="retries_exhausted")
    _baseline(db, "fall", 70, {"billing": 90.0, "csat": 50.33})
    # Climb. 31 days ago: billing 50, CSAT 89.6 → (50 + 89.6) / 2 = 69.8, capped at 39.
    # Now: one failed payment, retrying → billing 75; CSAT 100. (75 + 100) / 2 = 87.5 → 88:
    # 88 − 39 = +49. The lifted cap is named first; then billing 1/2 × 25 = +12.5 before
    # CSAT 1/2 × (100 − 89.6) = +5.2; 89.6 is shown rounded half up, 90.
    add_account(db, "climb", name="Swift Legal", has_payment_method=True)
    _good_csat(db, "climb")
    add_event(db, "climb", "payment_failed", 1, invoice_id="in_2", retrying=True)
    _baseline(db, "climb", 39, {"billing": 50.0, "csat": 89.6})
    compute_health(db, config(BILLING))

    fall, climb = biggest_movers(db, 30, config=config(BILLING))
    assert (fall.name, fall.computed_score, fall.trend) == ("Iron Harbor", 39, 39 - 70)
    assert fall.cause == ("Billing cap applied (1 invoice past due: capped at 39); Billing 90 → 65")
    assert fall.lifted is None
    assert (climb.name, climb.computed_score, climb.trend) == ("Swift Legal", 88, 88 - 39)
    assert climb.cause == (
        "Billing cap lifted (invoice past due: was capped at 39); Billing 50 → 75; CSAT 90 → 100"
    )
    assert climb.capped is None
