"""Playbooks and the task outbox: each rule on a scenario built for it, task discipline
(baseline, churn, evidence, one task per account), dedupe, snooze, words, config.

Accounts, health rows and events are written with ``hub.testing.playbooks.PlaybookWorld``
(the engine is under test, not the mappings or the health engine); "now" is pinned.
"""

from __future__ import annotations

import datetime as dt

import pytest

from hub.config import parse_config
from hub.errors import ConfigError
from hub.playbooks import Outbox, load_playbooks, run_playbooks, task_keys
from hub.testing.playbooks import DEFAULT_NOW as NOW
from hub.testing.playbooks import PlaybookWorld


@pytest.fixture
def w(store):
    world = PlaybookWorld(store)
    yield world
    world.close()


def make_config(playbooks: dict | None = None):
    return parse_config({"playbooks": playbooks or {}})


def build_scenarios(w: PlaybookWorld) -> set[tuple[str, str]]:
    """One account per playbook (plus near-misses and healthy ones); returns what must fire."""
    # healthy accounts: nothing fires
    w.account("healthy1")
    w.account("healthy2", facts={"has_payment_method": True})
    # band_red: yellow → red two days ago, small drop (not a score_drop)
    w.account(
        "red",
        score=38,
        band="red",
        trend_7d=-4,
        history=[(d, 42, "yellow") for d in range(10, 2, -1)] + [(d, 38, "red") for d in (2, 1, 0)],
    )
    # red for months: no "changed to red" (and no other rule)
    w.account(
        "red_forever",
        score=30,
        band="red",
        history=[(d, 30, "red") for d in range(60, -1, -1)],
    )
    # score_drop: 85 → 60 in a week (yellow)
    w.account(
        "drop",
        score=60,
        band="yellow",
        trend_7d=-25,
        history=[(d, 85, "green") for d in range(10, 6, -1)] + [(d, 60, "yellow") for d in (5, 0)],
    )
    # payment_failed (and a failure that was paid afterwards: no task)
    w.account("pay")
    w.event("pay", "payment_failed", 3, invoice_id="in_1", amount=120.0, attempt_count=1)
    w.account("pay_paid")
    w.event("pay_paid", "payment_failed", 5, invoice_id="in_2", amount=99.0)
    w.event("pay_paid", "invoice_paid", 4, invoice_id="in_2", amount=99.0)
    # card_expiring: expires end of November (10 days); a replaced card does not fire
    w.account("card", facts={"card_expires": "2026-11"})
    w.event("card", "card_expiring", 2, exp_month=11, exp_year=2026, days_left=12)
    w.account("card_replaced", facts={"card_expires": "2029-05"})
    w.event("card_replaced", "card_expiring", 2, exp_month=11, exp_year=2026)
    # billing_missing
    w.account("billing", facts={"has_payment_method": False}, mrr=500.0)
    w.event("billing", "billing_details_missing", 1)
    # competitor_detected (and one that went away again)
    w.account("comp")
    w.event("comp", "competitor_detected", 5, technology="Intercom", domain="comp.example")
    w.account("comp_gone")
    w.event("comp_gone", "competitor_detected", 10, technology="Drift")
    w.event("comp_gone", "competitor_removed", 2, technology="Drift")
    # widget_removed (and one that came back)
    w.account("widget", facts={"widget_present": False})
    w.event("widget", "widget_removed", 4, technology="Lumen Widget")
    w.account("widget_back")
    w.event("widget_back", "widget_removed", 8, technology="Lumen Widget")
    w.event("widget_back", "widget_detected", 3, technology="Lumen Widget")
    # renewal_at_risk: yellow, renewal in 20 days
    renew_soon = (NOW.date() + dt.timedelta(days=20)).isoformat()
    w.account("renewal", score=55, band="yellow", renewal=renew_soon)
    # churn_followup
    w.account("churn", facts={"subscription_status": "canceled"})
    w.event(
        "churn",
        "subscription_cancelled",
        6,
        subscription_id="sub_9",
        reason="cancellation_requested",
        feedback="too_expensive",
        comment="Budget cut",
    )
    # no_first_value: started 20 days ago, no widget since; the other got its widget
    w.account("nfv")
    w.event("nfv", "subscription_started", 20, subscription_id="sub_nfv")
    w.account("nfv_ok")
    w.event("nfv_ok", "subscription_started", 20, subscription_id="sub_ok")
    w.event("nfv_ok", "widget_detected", 15, technology="Lumen Widget")
    # expansion: seats and MRR up, green, renewal far; the near-renewal one does not fire
    w.account("expand")
    w.event(
        "expand",
        "subscription_upgraded",
        10,
        seats_before=10,
        seats_after=14,
        mrr_before=450,
        mrr_after=630,
    )
    near = (NOW.date() + dt.timedelta(days=40)).isoformat()
    w.account("expand_near", renewal=near)
    w.event("expand_near", "subscription_upgraded", 10, seats_before=5, seats_after=8)
    # unsubscribe_burst: 4 in 10 days; 2 is not a burst
    w.account("unsub")
    for days in (1, 3, 6, 9):
        w.event("unsub", "contact_unsubscribed", days, contact_id=f"c{days}")
    w.account("unsub_few")
    for days in (2, 5):
        w.event("unsub_few", "contact_unsubscribed", days, contact_id=f"c{days}")
    return {
        ("red", "band_red"),
        ("drop", "score_drop"),
        ("red", "score_drop"),  # yellow → red is a worse band
        ("pay", "payment_failed"),
        ("card", "card_expiring"),
        ("billing", "billing_missing"),
        ("comp", "competitor_detected"),
        ("widget", "widget_removed"),
        ("renewal", "renewal_at_risk"),
        ("churn", "churn_followup"),
        ("nfv", "no_first_value"),
        ("expand", "expansion"),
        ("unsub", "unsubscribe_burst"),
    }


def fired(store) -> set[tuple[str, str]]:
    return {(a, p) for t in Outbox(store).tasks() for a, p, _ in task_keys(t)}


def test_every_builtin_playbook_is_registered():
    setup = load_playbooks(make_config())
    assert set(setup.playbooks) >= {
        "band_red",
        "score_drop",
        "payment_failed",
        "card_expiring",
        "billing_missing",
        "competitor_detected",
        "widget_removed",
        "renewal_at_risk",
        "churn_followup",
        "no_first_value",
        "expansion",
        "unsubscribe_burst",
    }


def test_each_playbook_fires_on_its_scenario_and_nothing_else(w):
    expected = build_scenarios(w)
    result = run_playbooks(w.store, make_config())
    assert result.status == "ok", result.errors
    assert fired(w.store) == expected
    assert sum(result.by_playbook.values()) == len(expected)
    # One task per account: "red" is both band_red and score_drop.
    assert len(result.opened) == len(expected) - 1 and result.merged == 1
    run = w.store.runs(kind="playbooks")[0]
    assert run["status"] == "ok" and run["records"] == len(expected) - 1
    assert "12 tasks opened" in run["note"] and "1 merged into one task per account" in run["note"]
    for task in Outbox(w.store).tasks():
        assert task["evidence"], task  # every task names its evidence
        assert "(no events)" not in task["body"] and "Evidence:\n\n" not in task["body"]


def test_batches_of_accounts_give_the_same_tasks(w, monkeypatch):
    """A run reads the accounts in batches (memory bounded by a batch); batches of 2 accounts
    must open exactly the tasks one batch opens, merged per account the same way."""
    from hub.playbooks import engine

    expected = build_scenarios(w)
    ids = [r[0] for r in w.store.db.execute("SELECT id FROM accounts ORDER BY id")]
    batches = engine.account_batches(w.store, 2)
    assert len(batches) == -(-len(ids) // 2)  # every batch full but perhaps the last
    assert batches[0][0] is None and batches[-1][1] is None
    monkeypatch.setattr(engine, "BATCH", 2)
    result = run_playbooks(w.store, make_config())
    assert result.status == "ok", result.errors
    assert fired(w.store) == expected
    assert len(result.opened) == len(expected) - 1 and result.merged == 1


def test_each_playbook_can_be_switched_off(w):
    expected = build_scenarios(w)
    off = {name: {"enabled": False} for _, name in expected if name != "payment_failed"}
    run_playbooks(w.store, make_config(off))
    assert fired(w.store) == {("pay", "payment_failed")}
    w.store.db.execute("DELETE FROM tasks")
    run_playbooks(w.store, make_config({"enabled": False}))
    assert fired(w.store) == set()


def test_task_content_subject_body_owner_due_priority_evidence(w):
    w.account("pay", owner="70000009", drivers=["2 failed payments in 30 days"])
    event_id = w.event(
        "pay",
        "payment_failed",
        1,
        invoice_id="in_7",
        amount=250.0,
        retrying=True,
        next_attempt_at=w.ago(-3),
        failure_code="card_declined",
    )
    w.account("orphan", owner=None)
    w.event("orphan", "payment_failed", 1, invoice_id="in_8", amount=10.0)
    run_playbooks(w.store, make_config({"timezone": "Europe/Berlin", "due_hour": 9}))
    tasks = {t["account_id"]: t for t in Outbox(w.store).tasks()}
    task = tasks["pay"]
    assert task["subject"] == "Payment failed: Company pay"
    assert task["body"].startswith(
        "A payment of $250 for invoice in_7 failed (card declined, 1 attempt). "
        "The billing system retries on 2026-11-23. Check the card with the customer."
    )
    assert "Evidence:\n- 2026-11-19 payment failed happened (https://example.test/" in task["body"]
    assert "Health: 85 (green), +0 in 7 days. What drives it:\n- 2 failed payments" in task["body"]
    assert task["evidence"][0]["id"] == event_id
    assert task["priority"] == "HIGH"  # payment_failed defaults to HIGH
    # due_in_days = 2 at 09:00 Berlin (UTC+1 in November) = 08:00 UTC
    assert task["due_at"].startswith("2026-11-22T08:00:00")
    assert task["owner_id"] == "70000009"
    assert task["reason"] == "invoice in_7"
    assert task["status"] == "open"
    assert tasks["orphan"]["owner_id"] is None  # the pusher applies its fallback owner


def test_templates_thresholds_and_priority_are_configurable(w):
    w.account("unsub")
    for days in (1, 2):
        w.event("unsub", "contact_unsubscribed", days)
    config = make_config(
        {
            "unsubscribe_burst": {
                "count": 2,
                "priority": "low",
                "due_in_days": 10,
                "subject": "{unsubscribed}/{count} unsubscribed at {account_name}",
                "body": "Look at {domain}. {detail}",
            }
        }
    )
    run_playbooks(w.store, config)
    (task,) = Outbox(w.store).tasks()
    assert task["subject"] == "2/2 unsubscribed at Company unsub"
    assert task["body"] == "Look at unsub.example. 2 contacts unsubscribed in 14 days"
    assert task["priority"] == "LOW"
    assert task["due_at"].startswith("2026-11-30T09:00")  # due_hour 9, UTC


def test_first_value_event_is_configurable(w):
    w.account("nfv_ok")
    w.event("nfv_ok", "subscription_started", 20, subscription_id="s1")
    w.event("nfv_ok", "widget_detected", 15)
    run_playbooks(w.store, make_config())
    assert fired(w.store) == set()
    run_playbooks(w.store, make_config({"no_first_value": {"first_value_event": "deal_won"}}))
    assert fired(w.store) == {("nfv_ok", "no_first_value")}


def test_a_task_is_never_duplicated_across_runs(w):
    expected = build_scenarios(w)
    first = run_playbooks(w.store, make_config())
    second = run_playbooks(w.store, make_config())
    third = run_playbooks(w.store, make_config())
    assert len(first.opened) == len(expected) - 1
    assert second.opened == [] and third.opened == []
    assert second.deduplicated == len(expected)
    assert len(Outbox(w.store).tasks()) == len(expected) - 1
    # still deduplicated while a pusher holds it (pushing / pushed)
    outbox = Outbox(w.store)
    tasks = outbox.tasks()
    assert outbox.claim(tasks[0]["id"]) is True
    assert outbox.claim(tasks[0]["id"]) is False  # claims are conditional on "open"
    assert outbox.claim_many([tasks[0]["id"], tasks[1]["id"]]) == [tasks[1]["id"]]
    outbox.mark_pushed(tasks[1]["id"], "999")
    assert run_playbooks(w.store, make_config()).opened == []


def test_completed_task_is_snoozed_then_reappears(w):
    w.account("comp")
    w.event("comp", "competitor_detected", 2, technology="Intercom")
    config = make_config({"snooze_days": 10})
    run_playbooks(w.store, config)
    (task,) = Outbox(w.store).tasks()
    outbox = Outbox(w.store)
    outbox.claim(task["id"])
    outbox.mark_pushed(task["id"], "30000077")
    # The pusher read it back as completed; the push core records it (hub.push).
    assert outbox.complete(task["id"], NOW, 10) is True
    result = run_playbooks(w.store, config)
    assert result.snoozed == 1 and result.opened == []
    done = outbox.get(task["id"])
    assert done["status"] == "completed"
    assert done["snoozed_until"].startswith("2026-11-30")
    assert [t["id"] for t in outbox.listing("snoozed")] == [task["id"]]
    # Within the snooze window: still nothing.
    w.now = NOW + dt.timedelta(days=9)
    w.event("comp", "competitor_detected", 0.5, technology="Intercom")  # seen again
    assert run_playbooks(w.store, config).opened == []
    # After it: the same finding opens a new task.
    w.now = NOW + dt.timedelta(days=11)
    assert len(run_playbooks(w.store, config).opened) == 1
    assert len(outbox.tasks(["open"])) == 1


def test_unpushed_task_is_cancelled_when_the_condition_clears(w):
    w.account("comp")
    w.event("comp", "competitor_detected", 2, technology="Intercom")
    run_playbooks(w.store, make_config())
    (task,) = Outbox(w.store).tasks()
    w.event("comp", "competitor_removed", 1, technology="Intercom")
    result = run_playbooks(w.store, make_config())
    assert result.cancelled == 1
    assert Outbox(w.store).get(task["id"])["status"] == "cancelled"
    # A pushed task is the CSM's now: never cancelled behind their back.
    w.event("comp", "competitor_detected", 0.5, technology="Drift")
    run_playbooks(w.store, make_config())
    drift = Outbox(w.store).tasks(["open"])[0]
    Outbox(w.store).claim(drift["id"])
    Outbox(w.store).mark_pushed(drift["id"], "55")
    run_playbooks(w.store, make_config({"competitor_detected": {"enabled": False}}))
    assert Outbox(w.store).get(drift["id"])["status"] == "pushed"


@pytest.mark.parametrize(
    ("playbooks", "message"),
    [
        ({"nope": {}}, "[playbooks.nope] names no installed playbook"),
        ({"band_red": {"within": 3}}, "unknown option 'within'"),
        ({"band_red": {"priority": "urgent"}}, "priority must be one of LOW, MEDIUM, HIGH"),
        ({"band_red": {"subject": "Hi {acount_name}"}}, "unknown placeholder {acount_name}"),
        ({"band_red": {"within_days": "seven"}}, "within_days must be a whole number"),
        ({"band_red": {"enabled": "yes"}}, "enabled must be true or false"),
        ({"snooze": 3}, "unknown key playbooks.snooze"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"due_hour": 25}, "playbooks.due_hour"),
    ],
)
def test_config_errors_name_the_key_and_the_fix(store, playbooks, message):
    from hub.playbooks import validate_config

    with pytest.raises(ConfigError) as info:
        validate_config(make_config(playbooks))
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError):
        run_playbooks(store, make_config(playbooks))
    assert store.runs(kind="playbooks") == []  # a bad config records no half-run


def test_example_config_documents_every_playbook_and_push_option():
    from pathlib import Path

    from hub.config import load_config
    from hub.playbooks import COMMON_OPTIONS, PlaybooksSection
    from hub.push import PushSettings, push_settings
    from hub.push import validate_config as validate_push
    from plugins.hubspot_pusher import HubSpotSettings

    path = Path(__file__).resolve().parent.parent / "config.example.toml"
    config = load_config(path)
    setup = load_playbooks(config)  # the example's tables validate
    push_settings(config)
    validate_push(config)
    text = path.read_text()
    playbooks_part = text.split("\n[playbooks]\n")[0].rsplit("# Playbooks:", 1)[1]
    for option in COMMON_OPTIONS:
        assert f"#   {option}" in playbooks_part, f"common playbook option {option} undocumented"
    for field in PlaybooksSection.model_fields:
        assert f"\n{field} = " in text.split("\n[playbooks]\n")[1].split("\n[")[0], field
    for name, playbook in setup.playbooks.items():
        assert f"[playbooks.{name}]" in text, f"config.example.toml lacks [playbooks.{name}]"
        section = text.split(f"[playbooks.{name}]\n")[1].split("\n[")[0]
        for option in playbook.options:
            assert f"\n{option} = " in section, f"[playbooks.{name}] does not show {option}"
        for placeholder in playbook.placeholders:
            assert "{" + placeholder + "}" in section
    push_part = text.split("\n[push]\n")[1].split("\n[push.hubspot]\n")[0]
    for field in PushSettings.model_fields:
        assert f"{field} = " in push_part, f"[push] {field} undocumented"
    hubspot_part = text.split("\n[push.hubspot]\n")[1].split("\n# ====")[0]
    for field in HubSpotSettings.model_fields:
        assert f"{field} = " in hubspot_part, f"[push.hubspot] {field} undocumented"
