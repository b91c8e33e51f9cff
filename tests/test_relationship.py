"""The relationship measure (days since the last two-way touch, touches per 30 days, targets
by segment) and the ``no_recent_touch`` playbook, with the arithmetic worked by hand.

Touches are ``csm_touch`` events as the HubSpot mapping writes them (attrs ``two_way`` and
``direction``); the measure runs through ``hub.testing.measures`` (the engine's one SQL
aggregation), the segment plumbing through the real engine, the playbook through
``hub.testing.playbooks``.
"""

from __future__ import annotations

import pytest

from hub import clock
from hub.errors import ConfigError
from hub.health import compute_health, load_settings
from hub.playbooks import Outbox
from hub.store import Store
from hub.testing.measures import Event, MeasureCase
from hub.testing.playbooks import PlaybookWorld
from plugins.health_models.engagement import RelationshipMeasure
from plugins.playbooks.touch import NoRecentTouch
from tests.test_health import NOW, FakeClock, add_account, add_event, config, score_row


def two_way(days_ago: float, kind: str = "meeting") -> Event:
    return Event("csm_touch", days_ago, {"type": kind, "direction": "two_way", "two_way": True})


def one_way(days_ago: float, kind: str = "email", direction: str = "outbound") -> Event:
    return Event("csm_touch", days_ago, {"type": kind, "direction": direction, "two_way": False})


# -- the measure ----------------------------------------------------------------------------------


def test_last_two_way_touch_and_cadence_against_their_targets():
    case = MeasureCase(
        events=[
            two_way(41),
            one_way(70),  # outside the 30 days: not in the cadence
            one_way(12),
            one_way(5, "call"),  # an unanswered call: a touch, but one-way
            one_way(2, "note", "internal"),  # a note is internal: not a customer touch
        ],
        owner_id="7",
    )
    result = case.score(RelationshipMeasure, {"touches_per_30d": 4})
    # Recency: 41 days against target 30, zero at 30 × 4 = 120:
    #   100 × (1 − (41 − 30) / (120 − 30)) = 100 × (1 − 11/90) = 87.777…
    # Cadence: 2 customer-facing touches in 30 days (the note does not count), target 4: 50.
    # Score: 87.777… × 0.7 + 50 × 0.3 = 61.444… + 15 = 76.444… → 76.44
    assert result.value_h == 7644
    assert result.inputs == {
        "days_since_touch": 41,
        "days_since_any_touch": 2,
        "touches_30d": 2,
        "target_days": 30,
        "touches_target": 4.0,
        "owner_assigned": True,
    }
    # Biggest loss first: cadence costs 0.3 × 50 = 15 points, recency 0.7 × 12.2 = 8.6.
    assert result.drivers == [
        "2 touches in the last 30 days (target 4)",
        "last two-way touch 41 days ago (target 30)",
    ]


def test_targets_by_segment():
    params = {
        "target_days": {"default": 30, "enterprise": 14},
        "touches_per_30d": {"enterprise": 4},  # other segments keep the built-in 2
    }
    events = [two_way(20), one_way(10), one_way(3)]
    enterprise = MeasureCase(events=events, owner_id="7", segment="enterprise")
    result = enterprise.score(RelationshipMeasure, params)
    # Recency: 20 days against 14, zero at 56: 100 × (1 − 6/42) = 85.714…
    # Cadence: 3 touches (the meeting and two e-mails), target 4: 75.
    # Score: 85.714… × 0.7 + 75 × 0.3 = 60 + 22.5 = 82.5
    assert result.value_h == 8250
    assert result.drivers[0] == "last two-way touch 20 days ago (target 14)"
    other = MeasureCase(events=events, owner_id="7", segment="smb").score(
        RelationshipMeasure, params
    )
    # Default segment targets: 20 ≤ 30 → 100; 3 touches ≥ 2 → 100.
    assert other.value_h == 10000
    assert other.inputs["target_days"] == 30 and other.inputs["touches_target"] == 2.0


def test_no_two_way_touch_in_the_lookback_scores_recency_zero():
    case = MeasureCase(events=[one_way(9), one_way(200)], owner_id="7")
    result = case.score(RelationshipMeasure)
    # Recency 0 (nobody answered within 365 days); cadence 1 of 2 = 50: 0 × 0.7 + 50 × 0.3 = 15
    assert result.value_h == 1500
    assert result.inputs["days_since_touch"] == 365
    assert result.drivers == [
        "no two-way touch in the last 365 days (target 30)",
        "1 touch in the last 30 days (target 2)",
    ]


def test_no_touch_data_abstains_and_says_so():
    result = MeasureCase(owner_id="7").score(RelationshipMeasure)
    assert result.value is None
    assert result.drivers == ["no CSM touch logged in the last 365 days"]
    # Without a touch, the CRM's last-contacted date scores recency alone:
    # 45 days, target 30, zero at 120: 100 × (1 − 15/90) = 83.333… → 83.33
    with_fact = MeasureCase(owner_id="7", facts={"last_touch": "2025-12-01T09:00:00Z"})
    result = with_fact.score(RelationshipMeasure)  # scored on 2026-01-15: 45 days
    assert result.value_h == 8333
    assert result.drivers == ["last contacted 45 days ago (target 30)"]
    # Nobody owns it: that is data. 100 − 30 (no_owner_penalty) = 70.
    orphan = MeasureCase(owner_id=None).score(RelationshipMeasure)
    assert orphan.value_h == 7000 and orphan.drivers == ["no owner assigned"]


def test_segment_tables_are_checked_against_the_segments():
    health = {
        "models": {"enterprise": {"weights": {"relationship": 1}}},
        "segments": [{"name": "enterprise", "model": "enterprise", "mrr_at_least": 5000}],
        "measures": {"relationship": {"target_days": {"default": 30, "enterprize": 14}}},
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(config(health))
    text = str(caught.value)
    assert "health.measures.relationship.target_days" in text and "'enterprize'" in text
    assert "\n" not in text and "enterprise" in text
    with pytest.raises(ConfigError, match="target_days"):
        load_settings(config({"measures": {"relationship": {"target_days": 0}}}))


@pytest.fixture
def db(tmp_path):
    clock.set_source(FakeClock(NOW))
    store = Store(tmp_path / "hub.db")
    yield store
    store.close()
    clock.set_source(None)


def test_the_engine_scores_each_account_against_its_segment_target(db):
    cfg = config(
        {
            "models": {"enterprise": {"weights": {"relationship": 1}}},
            "segments": [{"name": "enterprise", "model": "enterprise", "mrr_at_least": 5000}],
            "measures": {"relationship": {"target_days": {"default": 30, "enterprise": 14}}},
        }
    )
    for account, mrr in (("big", 9000), ("small", 400)):
        add_account(db, account, mrr=mrr)
        add_event(db, account, "csm_touch", 20, two_way=True, direction="two_way")
        add_event(db, account, "csm_touch", 5, two_way=False, direction="outbound")
    compute_health(db, cfg)
    big, small = score_row(db, "big"), score_row(db, "small")
    # big: enterprise target 14 → recency 100 × (1 − 6/42) = 85.714…; cadence 2/2 = 100:
    #   85.714… × 0.7 + 100 × 0.3 = 60 + 30 = 90
    assert big["segment"] == "enterprise"
    assert big["measures"]["relationship"]["score"] == 90.0
    assert "last two-way touch 20 days ago (target 14)" in big["drivers"]
    # small: default target 30, touched 20 days ago → 100
    assert small["measures"]["relationship"]["score"] == 100.0


# -- the playbook ---------------------------------------------------------------------------------


@pytest.fixture
def w(store):
    world = PlaybookWorld(store)
    yield world
    world.close()


def touch(w: PlaybookWorld, account: str, days_ago: float, *, two_way: bool, kind="call"):
    return w.event(
        account,
        "csm_touch",
        days_ago,
        type=kind,
        two_way=two_way,
        direction="two_way" if two_way else "outbound",
    )


def test_no_recent_touch_opens_one_task_for_an_account_at_risk(w):
    w.account("quiet", score=55, band="yellow", name="Acme")
    last = touch(w, "quiet", 41, two_way=True)
    attempt = touch(w, "quiet", 6, two_way=False, kind="email")  # unanswered: no reset
    w.account("talked", score=30, band="red")
    touch(w, "talked", 12, two_way=True)  # 12 < 30 days: fine
    w.account("green", score=90, band="green")
    touch(w, "green", 80, two_way=True)  # quiet, but not at risk
    w.account("never", score=35, band="red")  # at risk, nothing ever logged
    w.account("low", score=72, band="green")
    touch(w, "low", 33, two_way=True)

    triggers = {t.account_id: t for t in w.evaluate(NoRecentTouch)}
    assert sorted(triggers) == ["never", "quiet"]
    quiet = triggers["quiet"]
    assert quiet.reason == "no_touch"
    assert quiet.detail == "no two-way touch in 41 days (target 30; last 2026-10-10)"
    assert [e["id"] for e in quiet.evidence] == [last, attempt]
    assert triggers["never"].values["quiet_for"] == "over 365 days"
    # below_score adds accounts whose computed score is low whatever the band: 72 < 75
    low = {t.account_id for t in w.evaluate(NoRecentTouch, below_score=75)}
    assert low == {"quiet", "never", "low"}

    tasks = w.run({"no_recent_touch": {}})
    by_account = {t["account_id"]: t for t in tasks}
    assert by_account["quiet"]["subject"] == "Reach out to Acme: no two-way touch in 41 days"
    assert by_account["quiet"]["priority"] == "MEDIUM"
    assert by_account["quiet"]["owner_id"] == "70000001"
    assert by_account["quiet"]["body"].startswith(
        "Acme is yellow (55) and nobody has talked with them in 41 days (last two-way touch: "
        "2026-10-10; target every 30 days)."
    )
    # Deduped: the same lapse never opens a second task.
    assert w.run({"no_recent_touch": {}}) == []
    assert len(Outbox(w.store).tasks()) == 2


def test_no_recent_touch_by_segment_and_quiet_without_touch_data(w):
    w.account("ent", score=60, band="yellow")  # PlaybookWorld's health segment is "smb"
    touch(w, "ent", 20, two_way=True)
    assert w.evaluate(NoRecentTouch) == []  # 20 < 30
    found = w.evaluate(NoRecentTouch, segment_days={"smb": 14})
    assert [t.detail for t in found] == ["no two-way touch in 20 days (target 14; last 2026-10-31)"]
    with pytest.raises(ConfigError, match="segment_days"):
        NoRecentTouch({"segment_days": {"smb": "two weeks"}})


def test_no_recent_touch_stays_quiet_when_no_touch_was_ever_synced(store):
    world = PlaybookWorld(store)
    try:
        world.account("red", score=20, band="red")
        assert world.evaluate(NoRecentTouch) == []
    finally:
        world.close()
