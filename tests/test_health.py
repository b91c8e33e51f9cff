"""Health engine: hand-computed weighted and points results, bands, rounding, explain,
overrides, history, trend, segments, incremental runs.

Accounts and events are inserted directly (the engine is under test, not the mappings);
``clock`` is bound so windows and days are deterministic. The helpers at the top are shared
with the other ``test_health_*`` files.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from decimal import Decimal
from typing import Any

import pytest

from hub import clock
from hub.config import parse_config
from hub.errors import ConfigError
from hub.health import (
    backfill_health,
    band_for,
    clear_override,
    compute_health,
    explain,
    round_half_up,
    set_override,
)
from hub.store import Store, health_queries

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
_ids = itertools.count(1)


class FakeClock:
    """A settable clock for ``hub.clock.set_source``."""

    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clk():
    fake = FakeClock(NOW)
    clock.set_source(fake)
    yield fake
    clock.set_source(None)


@pytest.fixture
def db(tmp_path):
    store = Store(tmp_path / "hub.db")
    yield store
    # Every write of the engine is committed: nothing is left in an open transaction.
    assert not store.db.conn.in_transaction
    store.close()


def add_account(
    store: Store,
    account_id: str,
    *,
    name: str | None = None,
    mrr: float | None = 1000.0,
    plan: str | None = "growth",
    seats: int | None = 10,
    owner_id: str | None = "70000001",
    lifecycle_stage: str | None = "customer",
    renewal_date: str | None = None,
    **facts: Any,
) -> None:
    store.db["accounts"].insert(
        {
            "id": account_id,
            "name": name or f"Company {account_id}",
            "domain": f"{(name or account_id).lower().replace(' ', '-')}.example",
            "owner_id": owner_id,
            "lifecycle_stage": lifecycle_stage,
            "mrr": mrr,
            "plan": plan,
            "seats": seats,
            "renewal_date": renewal_date,
            "facts": json.dumps(facts),
            "updated_at": clock.iso(),
        },
        pk="id",
        replace=True,
    )


def set_facts(store: Store, account_id: str, **facts: Any) -> None:
    row = store.db.execute("SELECT facts FROM accounts WHERE id = ?", [account_id]).fetchone()
    merged = {**json.loads(row[0] or "{}"), **facts}
    store.db["accounts"].update(account_id, {"facts": json.dumps(merged)})


def add_event(store: Store, account_id: str, type: str, days_ago: float, **attrs: Any) -> str:
    event_id = f"test:{type}:{next(_ids)}"
    store.db["events"].insert(
        {
            "id": event_id,
            "entity": f"test:entity:{account_id}",
            "account_id": account_id,
            "ts": clock.iso(clock.now() - dt.timedelta(days=days_ago)),
            "source": "test",
            "type": type,
            "summary": type,
            "attrs": json.dumps(attrs),
            "link": None,
            "mapped_at": clock.iso(),
        },
        pk="id",
    )
    return event_id


def config(health: dict[str, Any]) -> Any:
    return parse_config({"health": health})


def score_row(store: Store, account_id: str) -> dict[str, Any]:
    cursor = store.db.execute("SELECT * FROM health_scores WHERE account_id = ?", [account_id])
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    assert row is not None, f"no score for {account_id}"
    out = dict(zip(names, row))
    out["drivers"] = json.loads(out["drivers"])
    out["measures"] = json.loads(out["measures"])
    return out


def history(store: Store, account_id: str) -> list[tuple[str, int]]:
    return [
        (r[0], r[1])
        for r in store.db.execute(
            "SELECT day, score FROM health_history WHERE account_id = ? ORDER BY day", [account_id]
        )
    ]


def solved(store: Store, account_id: str, hours: list[float], days_ago: float = 5) -> None:
    for hour in hours:
        add_event(
            store,
            account_id,
            "ticket_solved",
            days_ago,
            ticket_id=next(_ids),
            resolution_hours=hour,
        )


# A small model whose numbers are easy to follow by hand.
HAND = {
    "model": "hand",
    "models": {
        "hand": {"type": "weighted", "weights": {"support": 3, "billing": 1, "csat": 2}},
    },
}


def test_weighted_model_matches_hand_computation(db, clk):
    add_account(db, "a")
    # support: each ticket on its own, 100 at 24 h, 0 at 72 h: 48 h → 50, 60 h → 25,
    # 72 h → 0; their mean smoothed by 2 imaginary tickets at 100:
    # (50 + 25 + 0 + 2·100) / (3 + 2) = 275 / 5 = 55.00
    solved(db, "a", [48, 60, 72])
    # billing: payment failed on one invoice (−25) → 75.00
    add_event(db, "a", "payment_failed", 3, invoice_id="in_1")
    # csat: 3 good, 1 bad → 75.00
    for kind in ("csat_good", "csat_good", "csat_good", "csat_bad"):
        add_event(db, "a", kind, 4)
    compute_health(db, config(HAND))
    row = score_row(db, "a")
    # (3·55 + 1·75 + 2·75) / 6 = 390 / 6 = 65.00 → 65
    assert row["computed_score"] == row["score"] == 65
    assert row["band"] == "yellow"
    assert row["measures"] == {
        "support": {"score": 55.0, "weight": 3.0},
        "billing": {"score": 75.0, "weight": 1.0},
        "csat": {"score": 75.0, "weight": 2.0},
    }
    assert row["coverage"] == 1.0 and not row["low_coverage"]
    data = explain(db, "a", config(HAND))
    assert data["score_exact"] == 65.0
    # 3/6 · 55 = 27.5, 1/6 · 75 = 12.5, 2/6 · 75 = 25 → 65
    assert {c["name"]: c["amount"] for c in data["contributions"]} == {
        "support": 27.5,
        "billing": 12.5,
        "csat": 25.0,
    }


def test_missing_measure_is_left_out_and_the_rest_renormalise(db, clk):
    add_account(db, "a")
    solved(db, "a", [48, 60, 72])  # (50 + 25 + 0 + 200) / 5 = 55.00
    add_event(db, "a", "payment_failed", 3)  # 75.00
    # no CSAT rating at all: csat has no data (not 0)
    compute_health(db, config(HAND))
    row = score_row(db, "a")
    # (3·55 + 1·75) / (3 + 1) = 240 / 4 = 60.00 → 60
    assert row["computed_score"] == 60
    assert row["measures"]["csat"] == {"score": None, "weight": 2.0}
    # coverage: the weight that had data, (3 + 1) / 6 = 0.6667 (above the 50% minimum)
    assert row["coverage"] == 0.6667 and not row["low_coverage"]
    data = explain(db, "a", config(HAND))
    assert data["score_exact"] == 60.0
    csat = next(m for m in data["measures"] if m["name"] == "csat")
    assert csat["score"] is None and csat["contribution"] is None
    assert data["details"]["excluded"] == ["csat"]


def test_no_measure_with_data_gives_no_score(db, clk):
    add_account(db, "a", mrr=None, owner_id="7")
    compute_health(db, config(HAND))
    row = score_row(db, "a")
    assert row["score"] is None and row["band"] is None
    assert row["drivers"] == ["no data yet for any measure of this model"]


POINTS = {
    "model": "pts",
    "models": {
        "pts": {
            "type": "points",
            "base": 5,
            "min": 0,
            "max": 10,
            "bands": {"green": 7, "yellow": 4, "red": 0},
            "measures": {"support": {"window_days": 30}},
            "rules": [
                {
                    "input": "support.breach_rate",
                    "tiers": [{"above": 0.3, "points": -2}, {"above": 0.2, "points": -1}],
                },
                {"events": ["payment_failed"], "days": 30, "at_least": 1, "points": -3},
                {"input": "csat.ratio", "below": 0.5, "points": -2},
                {"input": "csat.ratio", "at_least": 0.9, "points": 3},
                {"input": "nps.nps", "at_least": 9, "points": 4, "label": "promoter"},
            ],
        }
    },
}


def test_points_model_hand_computed_with_clamping(db, clk):
    cfg = config(POINTS)
    # "low": 5 − 2 (40% breach) − 3 (failed payment) − 2 (CSAT 25%) = −2 → clamped to 0
    add_account(db, "low")
    solved(db, "low", [10, 10, 10, 30, 30])  # 2 of 5 over 24 h = 40%
    add_event(db, "low", "payment_failed", 2)
    for kind in ("csat_good", "csat_bad", "csat_bad", "csat_bad"):
        add_event(db, "low", kind, 3)
    # "mid": 5 − 1 (25% breach) = 4 → 40 on 0–100; bands on points: 4 is yellow
    add_account(db, "mid")
    solved(db, "mid", [1, 1, 1, 30])
    # "high": 5 + 3 (CSAT 100%) + 4 (promoter) = 12 → clamped to 10 → 100
    add_account(db, "high", nps=9)
    add_event(db, "high", "csat_good", 1)
    # a payment failure older than the rule's 30 days does not count
    add_event(db, "mid", "payment_failed", 45)
    compute_health(db, cfg)
    low, mid, high = (score_row(db, a) for a in ("low", "mid", "high"))
    assert (low["score"], low["band"]) == (0, "red")
    assert (mid["score"], mid["band"]) == (40, "yellow")
    assert (high["score"], high["band"]) == (100, "green")
    data = explain(db, "low", cfg)
    amounts = [Decimal(str(c["amount"])) for c in data["contributions"]]
    assert [c["name"] for c in data["contributions"]] == [
        "base",
        "rule 1",
        "rule 2",
        "rule 3",
        "clamp",
    ]
    assert amounts == [Decimal(5), Decimal(-2), Decimal(-3), Decimal(-2), Decimal(2)]
    assert sum(amounts) == Decimal(str(data["details"]["points"])) == 0
    assert data["details"]["points_raw"] == -2
    assert any("failed payment" in d for d in low["drivers"])
    assert any("over the 24 h resolution target in the last 30 days" in d for d in low["drivers"])
    high_data = explain(db, "high", cfg)
    assert high_data["details"]["points_raw"] == 12 and high_data["details"]["points"] == 10
    assert high_data["contributions"][-1] == {
        "name": "clamp",
        "label": "clamped to 0..10",
        "amount": -2.0,
        "weight": None,
        "measure": None,
        "detail": "",
    }


@pytest.mark.parametrize(
    ("score", "band"),
    [(0, "red"), (39, "red"), (40, "yellow"), (79, "yellow"), (80, "green"), (100, "green")],
)
def test_band_boundaries(score, band):
    # Defaults: green from 80 (calibrated, see bench/bench_calibration.py), yellow from 40.
    assert band_for(score) == band
    assert band_for(score, {"green": 80, "yellow": 40, "red": 0}) == band


def test_custom_bands_and_no_score():
    bands = {"green": 80, "amber": 50, "red": 0}
    assert [band_for(s, bands) for s in (49, 50, 79, 80)] == ["red", "amber", "amber", "green"]
    assert band_for(None) is None


def test_round_half_up_is_the_one_rule():
    assert round_half_up(69.5) == 70
    assert round_half_up(69.49) == 69
    assert round_half_up(39.5) == 40
    assert round_half_up(0.5) == 1 and round_half_up(1.5) == 2 and round_half_up(2.5) == 3
    assert round_half_up(2.675, 2) == 2.68  # decimal text, not the binary approximation
    assert round_half_up(Decimal("62.50")) == 63


@pytest.mark.parametrize(
    ("value", "score", "band"),
    [(79.5, 80, "green"), (79.49, 79, "yellow"), (39.5, 40, "yellow"), (39.49, 39, "red")],
)
def test_scores_on_band_boundaries_round_then_band(db, clk, value, score, band):
    # NPS 7 is a passive; passive_score sets the measure's value exactly.
    cfg = config(
        {
            "model": "nps_only",
            "models": {"nps_only": {"weights": {"nps": 1}}},
            "measures": {"nps": {"passive_score": value}},
        }
    )
    add_account(db, "a", nps=7)
    compute_health(db, cfg)
    row = score_row(db, "a")
    assert (row["score"], row["band"]) == (score, band)
    assert explain(db, "a", cfg)["score_exact"] == value


AWKWARD = {
    "model": "odd",
    "models": {
        "odd": {
            "weights": {
                "support": 7,
                "support_load": 3.5,
                "billing": 11,
                "csat": 1.25,
                "engagement": 3,
                "technographics": 2,
                "relationship": 6,
                "growth": 1,
                "lifecycle": 0.3,
                "nps": 9,
            }
        }
    },
}


def test_explain_contributions_add_up_exactly_to_the_score(db, clk):
    """Weights that divide awkwardly (thirds, sevenths): the stated contributions still add up
    to the stated unrounded score, and the score is its rounding, for every account."""
    cfgs = [config(AWKWARD), None]
    for i in range(12):
        aid = f"acc{i}"
        add_account(
            db,
            aid,
            nps=i % 11,
            contacts_total=7 + i,
            contacts_unsubscribed=i % 4,
            last_touch=clock.iso(NOW - dt.timedelta(days=13 * i)),
            widget_present=i % 3 != 0,
            competitors=["Intercom"] if i % 4 == 0 else [],
            renewal_date=(NOW.date() + dt.timedelta(days=7 * i - 10)).isoformat(),
            owner_id=None if i == 5 else "7",
        )
        solved(db, aid, [3 + 7 * i, 11 + i, 29 + 3 * i][: 1 + i % 3])
        for k in range(i % 5):
            add_event(db, aid, "csat_good" if k % 2 else "csat_bad", k + 1)
        if i % 3 == 1:
            add_event(db, aid, "payment_failed", 4)
            add_event(db, aid, "ticket_urgent", 2, ticket_id=500 + i)
        if i % 4 == 2:
            add_event(db, aid, "mrr_changed", 9, mrr_before=900, mrr_after=1000, delta=100)
    for cfg in cfgs:
        compute_health(db, cfg, full=True)
        for i in range(12):
            data = explain(db, f"acc{i}", cfg)
            total = sum(Decimal(str(c["amount"])) for c in data["contributions"])
            assert total == Decimal(str(data["score_exact"])), data["contributions"]
            assert round_half_up(Decimal(str(data["score_exact"]))) == data["computed_score"]
            assert score_row(db, f"acc{i}")["computed_score"] == data["computed_score"]
            for m in data["measures"]:
                if m["score"] is not None and m["weight"]:
                    share = Decimal(str(m["weight"])) / Decimal(
                        str(data["details"]["weight_total"])
                    )
                    exact = share * Decimal(str(m["score"]))
                    assert abs(Decimal(str(m["contribution"])) - exact) < Decimal("0.01")


def test_cap_keeps_a_cancelled_customer_red(db, clk):
    add_account(db, "gone", nps=10, widget_present=True, competitors=[], has_payment_method=True)
    add_event(db, "gone", "invoice_paid", 10)
    add_event(db, "gone", "subscription_cancelled", 6, reason="too_expensive")
    compute_health(db)
    row = score_row(db, "gone")
    assert row["score"] == 20 and row["band"] == "red"
    assert row["drivers"][0] == (
        "subscription cancelled 6 days ago (reason: too expensive): score capped at 20"
    )
    assert len(row["drivers"]) == len(set(row["drivers"])) == 3
    assert not any(d.startswith("subscription cancelled") for d in row["drivers"][1:])
    data = explain(db, "gone")
    assert data["contributions"][-1]["name"] == "cap"
    assert sum(Decimal(str(c["amount"])) for c in data["contributions"]) == 20


def test_override_wins_until_it_expires_then_computed_returns(db, clk):
    add_account(db, "a")
    add_event(db, "a", "payment_failed", 1)
    add_event(db, "a", "payment_failed", 2)
    compute_health(db)
    computed = score_row(db, "a")["computed_score"]
    until = (NOW.date() + dt.timedelta(days=3)).isoformat()
    row = set_override(db, "a", 85, "exec sponsor confirmed the renewal", until)
    assert (row["score"], row["computed_score"], row["band"]) == (85, computed, "green")
    assert (row["override_value"], row["override_until"]) == (85, until)
    assert json.loads(row["drivers"])[0].startswith(f"CSM override 85 until {until}")
    clk.advance(days=3)  # the last day it holds
    compute_health(db)
    assert score_row(db, "a")["score"] == 85
    clk.advance(days=1)
    compute_health(db)
    row = score_row(db, "a")
    assert row["score"] == row["computed_score"] and row["override_value"] is None
    # history kept both numbers on the override days
    days = {
        r[0]: (r[1], r[2])
        for r in db.db.execute("SELECT day, score, computed_score FROM health_history")
    }
    assert days[NOW.date().isoformat()] == (85, computed)


def test_override_from_hubspot_fact_and_hub_override_precedence(db, clk):
    until = (NOW.date() + dt.timedelta(days=10)).isoformat()
    add_account(db, "a", health_override={"value": 30, "reason": "champion left", "until": until})
    add_account(
        db, "b", health_override={"value": 90, "reason": "old", "until": "2026-11-01"}
    )  # expired
    compute_health(db)
    a, b = score_row(db, "a"), score_row(db, "b")
    assert (a["score"], a["band"], a["override_reason"]) == (30, "red", "champion left")
    assert a["computed_score"] != 30
    assert b["override_value"] is None and b["score"] == b["computed_score"]
    set_override(db, "a", 75, "hub wins", until)
    assert score_row(db, "a")["score"] == 75
    clear_override(db, "a")
    assert score_row(db, "a")["score"] == 30  # back to the HubSpot one


@pytest.mark.parametrize(
    ("value", "reason", "until", "message"),
    [
        (101, "x", "2026-12-01", "outside 0-100"),
        (50, " ", "2026-12-01", "needs a reason"),
        (50, "x", "2026-11-19", "in the past"),
        (50, "x", "next week", "is not a date"),
    ],
)
def test_override_input_errors_are_one_line(db, clk, value, reason, until, message):
    add_account(db, "a")
    with pytest.raises(ConfigError) as exc:
        set_override(db, "a", value, reason, until)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_history_keeps_changes_only_and_same_day_replaces(db, clk):
    add_account(db, "a")
    compute_health(db)
    first = score_row(db, "a")["score"]
    add_event(db, "a", "payment_failed", 0)
    add_event(db, "a", "payment_failed", 0)
    clk.advance(hours=1)
    result = compute_health(db)
    assert not result.full and result.accounts == 1
    second = score_row(db, "a")["score"]
    assert second < first
    day1 = NOW.date().isoformat()
    assert history(db, "a") == [(day1, second)]
    # Next day, nothing changed: no new row, yet the day reads as scored at the same score.
    clk.advance(days=1)
    assert compute_health(db).full
    day2 = (NOW.date() + dt.timedelta(days=1)).isoformat()
    assert history(db, "a") == [(day1, second)]
    daily = health_queries.daily_history(db, "a", day1)
    assert [(r["day"], r["score"]) for r in daily] == [(day1, second), (day2, second)]
    assert health_queries.history_row(db, "a", day2)["score"] == second
    # A change writes a row on its day.
    add_event(db, "a", "invoice_past_due", 0)
    clk.advance(hours=1)
    compute_health(db)
    third = score_row(db, "a")["score"]
    assert third < second
    assert history(db, "a") == [(day1, second), (day2, third)]


def test_trend_reads_the_state_on_the_baseline_day_when_nothing_changed(db, clk):
    """Unchanged for days, the account has no rows in the 7–10-day span; its state there is
    its latest earlier row: a 7-day trend of 85 - 85 = 0, not "no trend"."""
    add_account(db, "a", has_payment_method=True, nps=10)
    clk.now = NOW - dt.timedelta(days=20)
    compute_health(db)
    for back in (12, 9, 8):
        clk.now = NOW - dt.timedelta(days=back)
        compute_health(db)
    clk.now = NOW
    compute_health(db)
    assert len(history(db, "a")) == 1
    row = score_row(db, "a")
    assert row["trend_7d"] == 0
    # 30 days: health first ran 20 days ago, so no run in the 30–37-day span, no trend.
    assert row["trend_30d"] is None


def test_trend_over_7_and_30_days_uses_nearest_earlier_row(db, clk):
    add_account(db, "a", has_payment_method=True, nps=10)
    add_account(db, "new")
    base = NOW
    clk.now = base - dt.timedelta(days=31)
    compute_health(db)  # 31 days ago: the nearest row at or before "30 days ago"
    old = score_row(db, "a")["score"]
    clk.now = base - dt.timedelta(days=9)
    add_event(db, "a", "payment_failed", 0)
    compute_health(db)  # 9 days ago: nearest at or before "7 days ago"
    mid = score_row(db, "a")["score"]
    clk.now = base
    for _ in range(3):
        add_event(db, "a", "invoice_past_due", 1)
    db.db.execute("DELETE FROM health_history WHERE account_id = 'new'")
    compute_health(db)
    row = score_row(db, "a")
    assert old > mid > row["score"]
    assert row["trend_7d"] == row["score"] - mid
    assert row["trend_30d"] == row["score"] - old
    new = score_row(db, "new")
    assert new["trend_7d"] is None and new["trend_30d"] is None


def test_segments_pick_the_model(db, clk):
    cfg = config(
        {
            "models": {
                "enterprise": {"weights": {"billing": 1}, "bands": {"green": 90, "red": 0}},
                "smb": {"weights": {"support": 1}},
                "onboarding": {"type": "points", "base": 8, "rules": []},
            },
            "segments": [
                {"name": "big", "model": "enterprise", "mrr_at_least": 5000},
                {"name": "new", "model": "onboarding", "lifecycle_stage": ["Opportunity"]},
                {"name": "small", "model": "smb", "plan": "starter", "mrr_below": 5000},
            ],
        }
    )
    add_account(db, "big", mrr=9000, plan="starter")  # first match wins
    add_account(db, "new", mrr=100, lifecycle_stage="opportunity")
    add_account(db, "small", mrr=400, plan="Starter")
    add_account(db, "other", mrr=400, plan="growth")
    add_event(db, "big", "invoice_paid_late", 3)  # billing 90 → green only from 90
    solved(db, "small", [4])
    compute_health(db, cfg)
    rows = {a: score_row(db, a) for a in ("big", "new", "small", "other")}
    assert {a: (r["segment"], r["model"]) for a, r in rows.items()} == {
        "big": ("big", "enterprise"),
        "new": ("new", "onboarding"),
        "small": ("small", "smb"),
        "other": ("default", "default"),
    }
    assert (rows["big"]["score"], rows["big"]["band"]) == (90, "green")
    assert rows["new"]["score"] == 80
    assert rows["small"]["measures"] == {"support": {"score": 100.0, "weight": 1.0}}


def test_incremental_recomputes_only_changed_accounts(db, clk):
    for i in range(6):
        add_account(db, f"a{i}")
    first = compute_health(db)
    assert first.full and first.reason == "first run" and first.accounts == 6
    stamp = {r[0]: r[1] for r in db.db.execute("SELECT account_id, computed_at FROM health_scores")}
    clk.advance(minutes=5)
    assert compute_health(db).accounts == 0  # nothing changed
    clk.advance(minutes=5)
    add_event(db, "a1", "payment_failed", 0)  # an event mapped since the last run
    set_facts(db, "a4", nps=2)  # an account fact changed
    add_account(db, "a9")  # a new account
    result = compute_health(db)
    assert (result.full, result.reason, result.accounts) == (False, "incremental", 3)
    after = {r[0]: r[1] for r in db.db.execute("SELECT account_id, computed_at FROM health_scores")}
    changed = {a for a in after if after[a] != stamp.get(a)}
    assert changed == {"a1", "a4", "a9"}
    runs = db.runs(kind="health")
    assert runs[0]["status"] == "ok" and runs[0]["records"] == 3
    assert "incremental" in runs[0]["note"]
    # a config change, and a new day, recompute everyone
    clk.advance(minutes=5)
    assert compute_health(db, config({"drivers": 2})).reason == "config changed"
    clk.advance(days=1)
    result = compute_health(db, config({"drivers": 2}))
    assert result.full and result.reason == "day changed" and result.accounts == 7
    # an account that disappeared loses its score
    db.db.execute("DELETE FROM accounts WHERE id = 'a9'")
    clk.advance(minutes=5)
    assert compute_health(db, config({"drivers": 2})).removed == 1


def test_changed_rows_are_marked_as_they_are_written(db, clk):
    """Triggers on ``accounts`` mark a row when a column health reads or the facts change,
    so an incremental run hashes nothing; a run clears the marks of what it scored."""

    def marks() -> set[str]:
        return {r[0] for r in db.db.execute("SELECT account_id FROM _hub_health_dirty")}

    for name in ("a", "b", "c"):
        add_account(db, name)
    assert marks() == {"a", "b", "c"}  # new rows
    compute_health(db)
    assert marks() == set()
    clk.advance(minutes=5)
    db.db.execute("UPDATE accounts SET updated_at = '2030-01-01' WHERE id = 'a'")  # not read
    db.db.execute("UPDATE accounts SET mrr = 1234 WHERE id = 'b'")
    set_facts(db, "c", nps=9)
    assert marks() == {"b", "c"}
    result = compute_health(db)
    assert (result.full, result.accounts) == (False, 2)
    assert marks() == set()
    clk.advance(minutes=5)
    assert compute_health(db).accounts == 0


def test_the_upgrade_marks_every_account_and_drops_the_old_hashes(tmp_path):
    """A database from before the change marks: the migration marks every account (the next
    run rescores them all) and drops the per-account hashes."""
    path = str(tmp_path / "hub.db")
    store = Store(path)
    for name in ("a", "b"):
        add_account(store, name)
    # Back to the schema before health_m003_change_marks.
    store.db.execute("DROP TRIGGER health_mark_inserted")
    store.db.execute("DROP TRIGGER health_mark_updated")
    store.db.execute("DROP TABLE _hub_health_dirty")
    store.db.execute(
        "CREATE TABLE _hub_health_state (account_id TEXT PRIMARY KEY, fingerprint TEXT)"
    )
    store.db.execute("DELETE FROM _sqlite_migrations WHERE name = 'health_m003_change_marks'")
    store.close()
    store = Store(path)
    try:
        marks = {r[0] for r in store.db.execute("SELECT account_id FROM _hub_health_dirty")}
        assert marks == {"a", "b"}
        assert "_hub_health_state" not in store.db.table_names()
        add_account(store, "c")  # the triggers are back
        assert store.db.execute("SELECT COUNT(*) FROM _hub_health_dirty").fetchone()[0] == 3
    finally:
        store.close()


def test_a_recompute_rewrites_only_the_score_rows_that_changed(db, clk):
    """A full recompute that changes nothing but the time leaves ``health_scores`` rows as
    they are: ``computed_at`` is when the row last changed; the run is in ``_hub_runs``."""
    add_account(db, "a")
    add_account(db, "b")
    compute_health(db)
    before = {
        r[0]: r[1] for r in db.db.execute("SELECT account_id, computed_at FROM health_scores")
    }
    clk.advance(minutes=5)
    add_event(db, "b", "payment_failed", 0)
    result = compute_health(db, full=True)
    assert result.full and result.accounts == 2
    after = {r[0]: r[1] for r in db.db.execute("SELECT account_id, computed_at FROM health_scores")}
    assert after["a"] == before["a"]  # nothing changed: not rewritten
    assert after["b"] != before["b"]  # its billing score changed
    assert db.runs(kind="health")[0]["status"] == "ok"


def test_backfill_rebuilds_history_from_the_timeline(db, clk):
    add_account(db, "a")
    add_event(db, "a", "invoice_paid", 20)
    add_event(db, "a", "payment_failed", 3.5)  # 4 days ago (midday − 3.5 days)
    add_event(db, "a", "payment_failed", 1.2)
    result = backfill_health(db, None, 6)
    assert result.backfilled_days == 6 and result.accounts == 1
    days = [(NOW.date() - dt.timedelta(days=k)).isoformat() for k in range(6, -1, -1)]
    rows = health_queries.daily_history(db, "a", days[0])
    assert [r["day"] for r in rows] == days
    scores = [r["score"] for r in rows]
    assert scores[0] == scores[1] == scores[2] > scores[3] == scores[4] > scores[5] == scores[6]
    # Stored: only the days the score changed.
    assert history(db, "a") == [(days[0], scores[0]), (days[3], scores[3]), (days[5], scores[5])]
    assert score_row(db, "a")["trend_7d"] is None  # no row 7 days back
    assert score_row(db, "a")["trend_30d"] is None
    with pytest.raises(ConfigError):
        backfill_health(db, None, 0)


def test_scores_written_for_every_account_and_run_recorded(db, clk):
    for i in range(3):
        add_account(db, f"x{i}")
    result = compute_health(db)
    assert result.records == 3 and sum(result.bands.values()) == 3
    run = db.runs(kind="health")[0]
    assert run["kind"] == "health" and run["status"] == "ok" and run["duration_s"] is not None


def test_worker_processes_give_the_same_scores(db, clk):
    """A big full run splits the accounts over processes ([health] workers); forced here on a
    small database, the result must equal the one-process run."""
    for i in range(30):
        add_account(db, f"w{i:02d}", nps=i % 11, has_payment_method=i % 4 != 0)
        solved(db, f"w{i:02d}", [5 + 4 * i])
        if i % 3 == 0:
            add_event(db, f"w{i:02d}", "payment_failed", 2)
    one = compute_health(db, config({"workers": 1}), full=True)
    rows = list(
        db.db.execute(
            "SELECT account_id, score, band, drivers, measures FROM health_scores ORDER BY account_id"
        )
    )
    two = compute_health(db, config({"workers": 2}), full=True)
    assert (two.accounts, two.bands) == (one.accounts, one.bands) == (30, two.bands)
    assert (
        list(
            db.db.execute(
                "SELECT account_id, score, band, drivers, measures FROM health_scores ORDER BY account_id"
            )
        )
        == rows
    )
    assert db.db.execute("SELECT COUNT(*) FROM health_history").fetchone()[0] == 30


def test_the_cap_that_sets_the_score_leads_the_drivers(db, clk):
    # Two caps hold: written off (at most 39) and cancelled (at most 20). The score is 20, so
    # the "why" must start with the cancellation, not with the looser cap.
    add_account(db, "both", nps=10, widget_present=True, competitors=[], has_payment_method=True)
    add_event(db, "both", "invoice_written_off", 20, invoice_id="in_1", amount=500)
    add_event(db, "both", "subscription_cancelled", 6, reason="too_expensive")
    compute_health(db)
    row = score_row(db, "both")
    assert row["score"] == 20
    assert row["drivers"][0].endswith("score capped at 20"), row["drivers"]


def test_pruning_keeps_the_measures_of_rows_still_in_force(db, clk):
    """History keeps measure scores for HISTORY_MEASURE_DAYS; with rows only at changes, an
    account's latest row before that span is still its state inside it (a baseline reads
    it), so only rows a newer row replaced before the span lose their measures."""
    add_account(db, "a")
    for days_ago, score in ((60, 50), (50, 60), (5, 70)):
        db.db["health_history"].insert(
            {
                "account_id": "a",
                "day": (NOW.date() - dt.timedelta(days=days_ago)).isoformat(),
                "score": score,
                "band": "yellow",
                "computed_score": score,
                "measures": json.dumps({"billing": float(score)}),
            },
            pk=("account_id", "day"),
        )
    compute_health(db, full=True)
    kept = dict(
        db.db.execute(
            "SELECT score, measures IS NOT NULL FROM health_history WHERE account_id = 'a' "
            "AND score IN (50, 60, 70)"
        ).fetchall()
    )
    # 60 days ago: replaced 50 days ago, before the 40-day span → pruned. 50 days ago: in
    # force until 5 days ago, inside the span → kept. 5 days ago: inside → kept.
    assert kept == {50: 0, 60: 1, 70: 1}
