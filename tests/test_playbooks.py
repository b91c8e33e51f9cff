"""Playbooks and the task outbox: each rule on a scenario built for it, dedupe, snooze, config.

Accounts, health scores and events are inserted directly (the playbooks engine is under
test, not the mappings or the health engine); "now" is pinned with ``hub.clock``.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hub import clock
from hub.config import parse_config
from hub.errors import ConfigError
from hub.playbooks import Outbox, load_playbooks, run_playbooks
from hub.store import RawRecord

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
FAR_RENEWAL = "2027-06-01"


@pytest.fixture(autouse=True)
def _now():
    clock.set_source(lambda: NOW)
    yield
    clock.set_source(None)


def ago(days: float) -> str:
    return clock.iso(NOW - dt.timedelta(days=days))


def add_account(
    store,
    account_id: str,
    *,
    score: int = 85,
    band: str = "green",
    trend_7d: int | None = 0,
    history: list[tuple[int, int, str]] | None = None,
    renewal: str | None = FAR_RENEWAL,
    owner: str | None = "70000001",
    mrr: float = 450.0,
    facts: dict | None = None,
    drivers: list[str] | None = None,
) -> None:
    """A healthy account unless told otherwise; history = [(days ago, score, band)]."""
    base_facts = {"has_payment_method": True, "card_expires": "2028-01", "widget_present": True}
    base_facts.update(facts or {})
    store.db["accounts"].insert(
        {
            "id": account_id,
            "name": f"Company {account_id}",
            "domain": f"{account_id}.example",
            "hubspot_company_id": account_id,
            "owner_id": owner,
            "mrr": mrr,
            "seats": 10,
            "renewal_date": renewal,
            "facts": json.dumps(base_facts),
        }
    )
    store.db["health_scores"].insert(
        {
            "account_id": account_id,
            "score": score,
            "computed_score": score,
            "band": band,
            "model": "default",
            "segment": "smb",
            "drivers": json.dumps(drivers or ["all quiet"]),
            "trend_7d": trend_7d,
            "trend_30d": 0,
            "computed_at": clock.iso(NOW),
        }
    )
    for days, s, b in history or [(d, score, band) for d in range(10, -1, -1)]:
        store.db["health_history"].insert(
            {
                "account_id": account_id,
                "day": (NOW.date() - dt.timedelta(days=days)).isoformat(),
                "score": s,
                "band": b,
                "computed_score": s,
            }
        )


_seq = [0]


def add_event(store, account_id: str, etype: str, days_ago: float, **attrs) -> str:
    _seq[0] += 1
    event_id = f"test:{etype}:{_seq[0]}"
    store.db["events"].insert(
        {
            "id": event_id,
            "entity": f"hubspot:company:{account_id}",
            "account_id": account_id,
            "ts": ago(days_ago),
            "source": "test",
            "type": etype,
            "summary": f"{etype} happened",
            "attrs": json.dumps(attrs),
            "link": f"https://example.test/{etype}/{_seq[0]}",
            "mapped_at": clock.iso(NOW),
        }
    )
    return event_id


def make_config(playbooks: dict | None = None, push: dict | None = None):
    return parse_config({"playbooks": playbooks or {}, "push": push or {}})


def build_scenarios(store) -> set[tuple[str, str]]:
    """One account per playbook (plus near-misses and healthy ones); returns what must fire."""
    # healthy accounts: nothing fires
    add_account(store, "healthy1")
    add_account(store, "healthy2", facts={"has_payment_method": True})
    # band_red: yellow → red two days ago, small drop (not a score_drop)
    add_account(
        store,
        "red",
        score=38,
        band="red",
        trend_7d=-4,
        history=[(d, 42, "yellow") for d in range(10, 2, -1)] + [(d, 38, "red") for d in (2, 1, 0)],
    )
    # red for months: no "changed to red" (and no other rule)
    add_account(
        store,
        "red_forever",
        score=30,
        band="red",
        history=[(d, 30, "red") for d in range(60, -1, -1)],
    )
    # score_drop: 85 → 60 in a week (yellow)
    add_account(
        store,
        "drop",
        score=60,
        band="yellow",
        trend_7d=-25,
        history=[(d, 85, "green") for d in range(10, 6, -1)] + [(d, 60, "yellow") for d in (5, 0)],
    )
    # payment_failed (and a failure that was paid afterwards: no task)
    add_account(store, "pay")
    add_event(store, "pay", "payment_failed", 3, invoice_id="in_1", amount=120.0, attempt_count=1)
    add_account(store, "pay_paid")
    add_event(store, "pay_paid", "payment_failed", 5, invoice_id="in_2", amount=99.0)
    add_event(store, "pay_paid", "invoice_paid", 4, invoice_id="in_2", amount=99.0)
    # card_expiring: expires end of November (10 days); a replaced card does not fire
    add_account(store, "card", facts={"card_expires": "2026-11"})
    add_event(store, "card", "card_expiring", 2, exp_month=11, exp_year=2026, days_left=12)
    add_account(store, "card_replaced", facts={"card_expires": "2029-05"})
    add_event(store, "card_replaced", "card_expiring", 2, exp_month=11, exp_year=2026)
    # billing_missing
    add_account(store, "billing", facts={"has_payment_method": False}, mrr=500.0)
    add_event(store, "billing", "billing_details_missing", 1)
    # competitor_detected (and one that went away again)
    add_account(store, "comp")
    add_event(store, "comp", "competitor_detected", 5, technology="Intercom", domain="comp.example")
    add_account(store, "comp_gone")
    add_event(store, "comp_gone", "competitor_detected", 10, technology="Drift")
    add_event(store, "comp_gone", "competitor_removed", 2, technology="Drift")
    # widget_removed (and one that came back)
    add_account(store, "widget", facts={"widget_present": False})
    add_event(store, "widget", "widget_removed", 4, technology="Lumen Widget")
    add_account(store, "widget_back")
    add_event(store, "widget_back", "widget_removed", 8, technology="Lumen Widget")
    add_event(store, "widget_back", "widget_detected", 3, technology="Lumen Widget")
    # renewal_at_risk: yellow, renewal in 20 days
    renew_soon = (NOW.date() + dt.timedelta(days=20)).isoformat()
    add_account(store, "renewal", score=55, band="yellow", renewal=renew_soon)
    # churn_followup
    add_account(store, "churn", facts={"subscription_status": "canceled"})
    add_event(
        store,
        "churn",
        "subscription_cancelled",
        6,
        subscription_id="sub_9",
        reason="cancellation_requested",
        feedback="too_expensive",
        comment="Budget cut",
    )
    # no_first_value: started 20 days ago, no widget since; the other got its widget
    add_account(store, "nfv")
    add_event(store, "nfv", "subscription_started", 20, subscription_id="sub_nfv")
    add_account(store, "nfv_ok")
    add_event(store, "nfv_ok", "subscription_started", 20, subscription_id="sub_ok")
    add_event(store, "nfv_ok", "widget_detected", 15, technology="Lumen Widget")
    # expansion: seats and MRR up, green, renewal far; the near-renewal one does not fire
    add_account(store, "expand")
    add_event(
        store,
        "expand",
        "subscription_upgraded",
        10,
        seats_before=10,
        seats_after=14,
        mrr_before=450,
        mrr_after=630,
    )
    near = (NOW.date() + dt.timedelta(days=40)).isoformat()
    add_account(store, "expand_near", renewal=near)
    add_event(store, "expand_near", "subscription_upgraded", 10, seats_before=5, seats_after=8)
    # unsubscribe_burst: 4 in 10 days; 2 is not a burst
    add_account(store, "unsub")
    for days in (1, 3, 6, 9):
        add_event(store, "unsub", "contact_unsubscribed", days, contact_id=f"c{days}")
    add_account(store, "unsub_few")
    for days in (2, 5):
        add_event(store, "unsub_few", "contact_unsubscribed", days, contact_id=f"c{days}")
    return {
        ("red", "band_red"),
        ("drop", "score_drop"),
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
    return {(t["account_id"], t["playbook"]) for t in Outbox(store).tasks()}


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


def test_each_playbook_fires_on_its_scenario_and_nothing_else(store):
    expected = build_scenarios(store)
    result = run_playbooks(store, make_config())
    assert result.status == "ok", result.errors
    assert fired(store) == expected
    assert dict(result.by_playbook) == {pb: 1 for _, pb in expected}
    run = store.runs(kind="playbooks")[0]
    assert run["status"] == "ok" and run["records"] == len(expected)
    assert "12 tasks opened" in run["note"]


def test_each_playbook_can_be_switched_off(store):
    expected = build_scenarios(store)
    off = {name: {"enabled": False} for _, name in expected if name != "payment_failed"}
    run_playbooks(store, make_config(off))
    assert fired(store) == {("pay", "payment_failed")}
    store.db.execute("DELETE FROM tasks")
    run_playbooks(store, make_config({"enabled": False}))
    assert fired(store) == set()


def test_task_content_subject_body_owner_due_priority_evidence(store):
    add_account(store, "pay", owner="70000009", drivers=["2 failed payments in 30 days"])
    event_id = add_event(store, "pay", "payment_failed", 1, invoice_id="in_7", amount=250.0)
    add_account(store, "orphan", owner=None)
    add_event(store, "orphan", "payment_failed", 1, invoice_id="in_8", amount=10.0)
    run_playbooks(store, make_config(push={"fallback_owner_id": 70000002}))
    tasks = {t["account_id"]: t for t in Outbox(store).tasks()}
    task = tasks["pay"]
    assert task["subject"] == "Payment failed: Company pay"
    assert "$250.00" in task["body"] and "in_7" in task["body"]
    assert "- 2 failed payments in 30 days" in task["body"]  # the drivers
    assert f"https://example.test/payment_failed/{event_id.rsplit(':', 1)[1]}" in task["body"]
    assert task["evidence"][0]["id"] == event_id
    assert task["priority"] == "HIGH"  # payment_failed defaults to HIGH
    assert task["due_at"].startswith("2026-11-22")  # due_in_days = 2
    assert task["owner_id"] == "70000009"
    assert task["reason"] == "invoice in_7"
    assert task["status"] == "open"
    assert tasks["orphan"]["owner_id"] == "70000002"  # [push] fallback_owner_id


def test_templates_thresholds_and_priority_are_configurable(store):
    add_account(store, "unsub")
    for days in (1, 2):
        add_event(store, "unsub", "contact_unsubscribed", days)
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
    run_playbooks(store, config)
    (task,) = Outbox(store).tasks()
    assert task["subject"] == "2/2 unsubscribed at Company unsub"
    assert task["body"] == "Look at unsub.example. 2 contacts unsubscribed in 14 days"
    assert task["priority"] == "LOW"
    assert task["due_at"].startswith("2026-11-30")


def test_first_value_event_is_configurable(store):
    add_account(store, "nfv_ok")
    add_event(store, "nfv_ok", "subscription_started", 20, subscription_id="s1")
    add_event(store, "nfv_ok", "widget_detected", 15)
    run_playbooks(store, make_config())
    assert fired(store) == set()
    run_playbooks(store, make_config({"no_first_value": {"first_value_event": "deal_won"}}))
    assert fired(store) == {("nfv_ok", "no_first_value")}


def test_a_task_is_never_duplicated_across_runs(store):
    expected = build_scenarios(store)
    first = run_playbooks(store, make_config())
    second = run_playbooks(store, make_config())
    third = run_playbooks(store, make_config())
    assert len(first.opened) == len(expected)
    assert second.opened == [] and third.opened == []
    assert second.deduplicated == len(expected)
    assert len(Outbox(store).tasks()) == len(expected)
    # still deduplicated while the pusher holds it (pushing / pushed)
    outbox = Outbox(store)
    tasks = outbox.tasks()
    outbox.claim(tasks[0]["id"])
    outbox.mark_pushed(tasks[1]["id"], "999")
    assert run_playbooks(store, make_config()).opened == []


def test_completed_task_is_snoozed_then_reappears(store):
    add_account(store, "comp")
    add_event(store, "comp", "competitor_detected", 2, technology="Intercom")
    config = make_config(
        {"snooze_days": 10}, push={"connection": "crm"}
    )  # raw_crm_tasks is read back
    run_playbooks(store, config)
    (task,) = Outbox(store).tasks()
    Outbox(store).mark_pushed(task["id"], "30000077")
    # The HubSpot connector synced the task as completed.
    store.write_page(
        "crm",
        "tasks",
        [
            RawRecord(
                id="30000077",
                data={
                    "id": "30000077",
                    "properties": {
                        "hs_task_status": "COMPLETED",
                        "hs_task_completion_date": clock.iso(NOW),
                    },
                },
            )
        ],
        None,
    )
    result = run_playbooks(store, config)
    assert result.completed == 1 and result.snoozed == 1 and result.opened == []
    done = Outbox(store).get(task["id"])
    assert done["status"] == "completed"
    assert done["snoozed_until"].startswith("2026-11-30")
    # Within the snooze window: still nothing.
    clock.set_source(lambda: NOW + dt.timedelta(days=9))
    add_event(store, "comp", "competitor_detected", -8, technology="Intercom")  # seen again
    assert run_playbooks(store, config).opened == []
    # After it: the same finding opens a new task.
    clock.set_source(lambda: NOW + dt.timedelta(days=11))
    assert len(run_playbooks(store, config).opened) == 1
    assert len(Outbox(store).tasks(["open"])) == 1


def test_deleted_task_in_hubspot_counts_as_dismissed(store):
    add_account(store, "widget", facts={"widget_present": False})
    add_event(store, "widget", "widget_removed", 1)
    config = make_config()
    run_playbooks(store, config)
    (task,) = Outbox(store).tasks()
    Outbox(store).mark_pushed(task["id"], "31")
    store.write_page(
        "hubspot", "tasks", [RawRecord(id="31", data={"id": "31"}, deleted=True)], None
    )
    result = run_playbooks(store, config)
    assert result.completed == 1 and result.opened == []
    assert Outbox(store).get(task["id"])["status"] == "completed"


def test_unpushed_task_is_cancelled_when_the_condition_clears(store):
    add_account(store, "comp")
    add_event(store, "comp", "competitor_detected", 2, technology="Intercom")
    run_playbooks(store, make_config())
    (task,) = Outbox(store).tasks()
    add_event(store, "comp", "competitor_removed", 1, technology="Intercom")
    result = run_playbooks(store, make_config())
    assert result.cancelled == 1
    assert Outbox(store).get(task["id"])["status"] == "cancelled"
    # A pushed task is the CSM's now: never cancelled behind their back.
    add_event(store, "comp", "competitor_detected", 0.5, technology="Drift")
    run_playbooks(store, make_config())
    drift = [t for t in Outbox(store).tasks(["open"])][0]
    Outbox(store).mark_pushed(drift["id"], "55")
    run_playbooks(store, make_config({"competitor_detected": {"enabled": False}}))
    assert Outbox(store).get(drift["id"])["status"] == "pushed"


def test_band_red_include_new_and_window(store):
    add_account(store, "new_red", score=20, band="red", history=[(0, 20, "red")])
    run_playbooks(store, make_config({"band_red": {"include_new": False}}))
    assert fired(store) == set()
    run_playbooks(store, make_config())
    assert fired(store) == {("new_red", "band_red")}


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
    ],
)
def test_config_errors_name_the_key_and_the_fix(store, playbooks, message):
    with pytest.raises(ConfigError) as info:
        run_playbooks(store, make_config(playbooks))
    assert message in str(info.value)
    assert store.runs(kind="playbooks") == []  # a bad config records no half-run


def test_example_config_documents_every_playbook_and_push_option():
    from pathlib import Path

    from hub.config import load_config
    from hub.playbooks import COMMON_OPTIONS, PlaybooksSection
    from hub.push import PushSettings, push_settings

    path = Path(__file__).resolve().parent.parent / "config.example.toml"
    config = load_config(path)
    setup = load_playbooks(config)  # the example's tables validate
    push_settings(config)
    text = path.read_text()
    playbooks_part = text.split("\n[playbooks]\n")[0].rsplit("# Playbooks:", 1)[1]
    for option in COMMON_OPTIONS:
        assert f"#   {option}" in playbooks_part, f"common playbook option {option} undocumented"
    for field in PlaybooksSection.model_fields:
        assert f"\n{field} = " in text.split("\n[playbooks]\n")[1].split("\n[")[0]
    for name, playbook in setup.playbooks.items():
        assert f"[playbooks.{name}]" in text, f"config.example.toml lacks [playbooks.{name}]"
        section = text.split(f"[playbooks.{name}]\n")[1].split("\n[")[0]
        for option in playbook.options:
            assert f"\n{option} = " in section, f"[playbooks.{name}] does not show {option}"
        for placeholder in playbook.placeholders:
            assert "{" + placeholder + "}" in section
    push_part = text.split("\n[push]\n")[1]
    for field in PushSettings.model_fields:
        assert f"{field} = " in push_part, f"[push] {field} undocumented"
