"""Golden cases for billing that follows dunning, and for churn, worked by hand.

Raw Stripe rows are written as the connector stores them (current API shapes unless a case
says otherwise) and mapped with ``run_mappings``; every expected number is derived in the
test from the times and amounts given.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hub import clock
from hub.store import RawRecord, Store
from hub.testing.mappings import write_rows
from hub.timeline import MappingContext, build_accounts, resolve, run_mappings
from mappings.hubspot import HubSpotMapping
from mappings.stripe import StripeMapping

T0 = int(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc).timestamp())  # finalized
DAY = 86400


def at(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


@pytest.fixture
def stripe(store: Store):
    """``stripe(now_ts)`` maps what is stored, as of ``now_ts``; returns events by id."""

    def run(now: int) -> dict[str, dict]:
        clock.set_source(lambda: at(now))
        result = run_mappings(store, None, mappings=[StripeMapping])
        assert not result.errors
        return {
            r["id"]: {**r, "attrs": json.loads(r["attrs"])}
            for r in store.db.query("SELECT id, ts, type, summary, attrs FROM events")
        }

    write_rows(store, "stripe", "customers", [customer("cus_1")])
    return run


def customer(cid: str, email: str = "billing@acme.example") -> dict:
    return {
        "id": cid,
        "object": "customer",
        "email": email,
        "created": T0 - 400 * DAY,
        "metadata": {},
        "invoice_settings": {"default_payment_method": "pm_1"},
    }


def invoice(inv_id: str, **fields) -> dict:
    body = {
        "id": inv_id,
        "object": "invoice",
        "customer": "cus_1",
        "number": inv_id.upper(),
        "amount_due": 12000,
        "amount_paid": 0,
        "amount_remaining": 12000,
        "attempt_count": 1,
        "collection_method": "charge_automatically",
        "created": T0 - 3600,
        "due_date": None,
        "next_payment_attempt": None,
        "status": "open",
        "status_transitions": {"finalized_at": T0, "paid_at": None},
        "parent": {"subscription_details": {"subscription": "sub_main"}},
    }
    body.update(fields)
    return body


def failed_charge(ch_id: str, ts: int, code: str = "card_declined", **fields) -> dict:
    return {
        "id": ch_id,
        "object": "charge",
        "customer": "cus_1",
        "amount": 12000,
        "created": ts,
        "status": "failed",
        "failure_code": code,
        "payment_intent": "pi_" + ch_id[3:],
        **fields,
    }


def failed_notice(evt_id: str, ts: int, inv: dict) -> dict:
    return {
        "id": evt_id,
        "object": "event",
        "type": "invoice.payment_failed",
        "created": ts,
        "data": {"object": inv},
    }


def subscription(sub_id: str, status: str = "active", **fields) -> dict:
    body = {
        "id": sub_id,
        "object": "subscription",
        "customer": "cus_1",
        "status": status,
        "created": T0 - 300 * DAY,
        "start_date": T0 - 300 * DAY,
        "items": {
            "data": [
                {
                    "quantity": 10,
                    "price": {"unit_amount": 5000, "recurring": {"interval": "month"}},
                    "current_period_end": T0 + 20 * DAY,
                }
            ]
        },
    }
    body.update(fields)
    return body


def test_a_decline_with_a_retry_scheduled_is_failing_not_past_due(store, stripe):
    # Attempt 1 fails at T0 (the charge names no invoice; the invoice.payment_failed event of
    # the same second does); Stripe schedules attempt 2 three days later.
    inv = invoice("in_1", next_payment_attempt=T0 + 3 * DAY)
    write_rows(store, "stripe", "invoices", [inv])
    write_rows(store, "stripe", "charges", [failed_charge("ch_1", T0)])
    write_rows(store, "stripe", "events", [failed_notice("evt_1", T0, inv)])
    events = stripe(T0 + 1 * DAY)
    failed = events["stripe:payment_failed:in_1"]
    assert failed["ts"] == clock.iso(at(T0))
    assert {k: failed["attrs"][k] for k in ("invoice_id", "amount", "attempt_count")} == {
        "invoice_id": "in_1",
        "amount": 120.0,  # 12000 cents
        "attempt_count": 1,
    }
    assert failed["attrs"]["retrying"] is True
    assert failed["attrs"]["next_attempt_at"] == at(T0 + 3 * DAY).isoformat()
    assert failed["attrs"]["failure_code"] == "card_declined"
    assert not [e for e in events if e.startswith("stripe:invoice_past_due:")]

    # Attempt 2 fails on day 3 (code changes), attempt 3 scheduled on day 8: still ONE event,
    # dated at the first failure, with the invoice's count and the latest code.
    inv = invoice("in_1", attempt_count=2, next_payment_attempt=T0 + 8 * DAY)
    write_rows(store, "stripe", "invoices", [inv])
    write_rows(
        store, "stripe", "charges", [failed_charge("ch_2", T0 + 3 * DAY, "insufficient_funds")]
    )
    write_rows(store, "stripe", "events", [failed_notice("evt_2", T0 + 3 * DAY, inv)])
    events = stripe(T0 + 4 * DAY)
    assert [e for e in events if "payment_failed" in e] == ["stripe:payment_failed:in_1"]
    attrs = events["stripe:payment_failed:in_1"]["attrs"]
    assert (attrs["attempt_count"], attrs["failed_attempts"], attrs["failure_code"]) == (
        2,
        2,
        "insufficient_funds",
    )
    assert events["stripe:payment_failed:in_1"]["ts"] == clock.iso(at(T0))
    assert not [e for e in events if e.startswith("stripe:invoice_past_due:")]

    # Attempt 4 fails on day 15 and Stripe gives up (next_payment_attempt null): past due,
    # overdue since the first attempt: day 20 − day 0 = 20 days.
    inv = invoice("in_1", attempt_count=4, next_payment_attempt=None)
    write_rows(store, "stripe", "invoices", [inv])
    events = stripe(T0 + 20 * DAY + 3600)
    past_due = events["stripe:invoice_past_due:in_1"]
    assert past_due["attrs"] == {
        "invoice_id": "in_1",
        "amount": 120.0,
        "days_overdue": 20,
        "reason": "retries_exhausted",
        "attempt_count": 4,
    }
    failed = events["stripe:payment_failed:in_1"]["attrs"]
    assert failed["retrying"] is False and failed["next_attempt_at"] is None

    # Paid on day 21: no longer past due; the failure stays as history, not retrying.
    write_rows(
        store,
        "stripe",
        "invoices",
        [
            invoice(
                "in_1",
                attempt_count=5,
                status="paid",
                amount_paid=12000,
                amount_remaining=0,
                status_transitions={"finalized_at": T0, "paid_at": T0 + 21 * DAY},
            )
        ],
    )
    events = stripe(T0 + 22 * DAY)
    assert "stripe:invoice_past_due:in_1" not in events
    assert events["stripe:invoice_paid_late:in_1"]["attrs"]["days_late"] == 21
    assert events["stripe:payment_failed:in_1"]["attrs"]["failed_attempts"] == 4  # 5 − the paid one


def test_failures_link_through_the_payment_intent(store, stripe):
    # No event history; the invoice names its payment intent under ``payments``.
    inv = invoice(
        "in_2",
        next_payment_attempt=T0 + 3 * DAY,
        payments={"data": [{"payment": {"payment_intent": "pi_77"}}]},
    )
    write_rows(store, "stripe", "invoices", [inv])
    write_rows(store, "stripe", "charges", [failed_charge("ch_77", T0 + 600, "expired_card")])
    events = stripe(T0 + DAY)
    attrs = events["stripe:payment_failed:in_2"]["attrs"]
    assert attrs["failure_code"] == "expired_card"
    assert events["stripe:payment_failed:in_2"]["ts"] == clock.iso(at(T0 + 600))


@pytest.mark.parametrize(
    ("fields", "sub_status", "now", "reason", "days"),
    [
        # A sent invoice due on day 30, seen on day 35 (+1 h): 5 days overdue.
        (
            {"collection_method": "send_invoice", "due_date": T0 + 30 * DAY, "attempt_count": 0},
            "active",
            T0 + 35 * DAY + 3600,
            "due_date_passed",
            5,
        ),
        # Not yet due on day 29: nothing.
        (
            {"collection_method": "send_invoice", "due_date": T0 + 30 * DAY, "attempt_count": 0},
            "active",
            T0 + 29 * DAY,
            None,
            None,
        ),
        # Dunning made the subscription unpaid: overdue since the first attempt (day 0).
        ({"attempt_count": 4}, "unpaid", T0 + 40 * DAY, "unpaid", 40),
        # Never attempted, no retry, subscription past due.
        ({"attempt_count": 0}, "past_due", T0 + 2 * DAY, "subscription_past_due", 2),
        # Subscription past due but a retry is scheduled: failing, not past due.
        ({"next_payment_attempt": T0 + 5 * DAY}, "past_due", T0 + 2 * DAY, None, None),
    ],
)
def test_past_due_reasons(store, stripe, fields, sub_status, now, reason, days):
    write_rows(store, "stripe", "subscriptions", [subscription("sub_main", sub_status)])
    write_rows(store, "stripe", "invoices", [invoice("in_3", **fields)])
    event = stripe(now).get("stripe:invoice_past_due:in_3")
    if reason is None:
        assert event is None
    else:
        assert (event["attrs"]["reason"], event["attrs"]["days_overdue"]) == (reason, days)


def test_a_written_off_invoice_keeps_its_amount_as_bad_debt(store, stripe):
    # Stripe keeps amount_remaining on an uncollectible invoice; a fake that zeroes it still
    # gives due − paid: 30000 − 5000 = 25000 cents = $250.
    write_rows(
        store,
        "stripe",
        "invoices",
        [
            invoice(
                "in_4",
                status="uncollectible",
                amount_due=30000,
                amount_paid=5000,
                amount_remaining=0,
                attempt_count=4,
                status_transitions={"finalized_at": T0, "marked_uncollectible_at": T0 + 45 * DAY},
            )
        ],
    )
    events = stripe(T0 + 50 * DAY)
    off = events["stripe:invoice_written_off:in_4"]
    assert off["attrs"] == {"invoice_id": "in_4", "amount": 250.0}
    assert off["ts"] == clock.iso(at(T0 + 45 * DAY))
    assert "stripe:invoice_past_due:in_4" not in events


def test_cancelling_an_add_on_is_contraction_and_the_last_one_is_churn(store, stripe):
    main = subscription("sub_main")
    addon = subscription(
        "sub_addon",
        "canceled",
        canceled_at=T0 - 10 * DAY,
        ended_at=T0 - 10 * DAY,
        cancellation_details={"feedback": "unused"},
    )
    write_rows(store, "stripe", "subscriptions", [main, addon])
    events = stripe(T0)
    cancel = events["stripe:subscription_cancelled:sub_addon"]["attrs"]
    assert cancel["ends_account"] is False  # the main subscription continues
    facts = entity_facts(store)
    assert facts["active_subscriptions"] == 1 and facts["churned_at"] == ""
    assert facts["mrr"] == 500.0  # 10 seats × $50

    # The main subscription ends on day 20: that one ends the account.
    main.update(status="canceled", canceled_at=T0 + 5 * DAY, ended_at=T0 + 20 * DAY)
    write_rows(store, "stripe", "subscriptions", [main])
    events = stripe(T0 + 21 * DAY)
    assert events["stripe:subscription_cancelled:sub_main"]["attrs"]["ends_account"] is True
    assert events["stripe:subscription_cancelled:sub_addon"]["attrs"]["ends_account"] is False
    facts = entity_facts(store)
    assert facts["active_subscriptions"] == 0
    assert facts["churned_at"] == at(T0 + 20 * DAY).isoformat()
    assert facts["mrr"] == 0


def test_a_pending_cancellation_of_the_only_subscription_ends_the_account(store, stripe):
    sub = subscription("sub_main", canceled_at=T0, cancel_at_period_end=True)
    write_rows(store, "stripe", "subscriptions", [sub])
    events = stripe(T0 + DAY)
    assert events["stripe:subscription_cancelled:sub_main"]["attrs"]["ends_account"] is True
    # Still billing until the period ends on day 20: not churned yet.
    facts = entity_facts(store)
    assert facts["active_subscriptions"] == 1 and facts["churned_at"] == ""


def test_churn_at_account_level_needs_every_customer_to_have_ended(store):
    """Two billing customers of one account: the account has churned only when both have."""
    clock.set_source(lambda: at(T0))
    ctx = MappingContext(store=store, connection="hubspot", mapping=HubSpotMapping())
    ctx.entity("hubspot", "company", "100", name="Acme", domains=["acme.example"], is_root=True)
    for cid, active, churned in (("cus_a", 0, "2026-01-10T00:00:00+00:00"), ("cus_b", 1, "")):
        ctx.entity("stripe", "customer", cid, domains=["acme.example"])
        ctx.facts(f"stripe:customer:{cid}", active_subscriptions=active, churned_at=churned)
    ctx.flush()
    resolve(store)
    build_accounts(store)
    facts = json.loads(store.db.execute("SELECT facts FROM accounts").fetchone()[0])
    assert facts["active_subscriptions"] == 1 and facts["churned_at"] is None
    store.db.execute(
        "UPDATE entities SET facts = ? WHERE key = 'stripe:customer:cus_b'",
        [json.dumps({"active_subscriptions": 0, "churned_at": "2026-02-01T00:00:00+00:00"})],
    )
    build_accounts(store)
    facts = json.loads(store.db.execute("SELECT facts FROM accounts").fetchone()[0])
    # The later of the two endings.
    assert facts["active_subscriptions"] == 0 and facts["churned_at"] == "2026-02-01T00:00:00+00:00"


def entity_facts(store: Store) -> dict:
    row = store.db.execute("SELECT facts FROM entities WHERE key = 'stripe:customer:cus_1'")
    return json.loads(row.fetchone()[0])


def test_tombstoned_invoice_loses_its_failure(store, stripe):
    inv = invoice("in_5", next_payment_attempt=T0 + 3 * DAY)
    write_rows(store, "stripe", "invoices", [inv])
    assert "stripe:payment_failed:in_5" in stripe(T0 + DAY)
    store.write_page("stripe", "invoices", [RawRecord("in_5", {"id": "in_5"}, deleted=True)], None)
    assert "stripe:payment_failed:in_5" not in stripe(T0 + DAY)
