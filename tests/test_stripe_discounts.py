"""MRR after discount: the Stripe connector reads subscriptions' discounts (expanded on the
listing, carried over or read once when events bring them as ids) and the mapping takes them
off the account's ``mrr`` fact and its MRR history alike. Arithmetic worked by hand."""

from __future__ import annotations

import json

from hub.sandbox.stripe import StripeAPI
from hub.sandbox.world import advance
from hub.timeline import MappingContext
from mappings.stripe.objects import mrr_after_discounts
from mappings.stripe_mrr import StripeMrrHistory
from tests.test_mapping_stripe import facts, map_new, sync

JAN = 1_767_225_600  # 2026-01-01 00:00 UTC
DAY = 86_400


def subscription(*discounts: dict) -> dict:
    # 10 seats × $50 a month + an add-on billed yearly: 2 × $600 ÷ 12 = $100 a month.
    return {
        "status": "active",
        "start_date": JAN,
        "items": {
            "data": [
                {
                    "quantity": 10,
                    "price": {"unit_amount": 5_000, "recurring": {"interval": "month"}},
                },
                {
                    "quantity": 2,
                    "price": {"unit_amount": 60_000, "recurring": {"interval": "year"}},
                },
            ]
        },
        "discounts": list(discounts),
    }


def mrr_history(store, customer: str) -> list[tuple[float, float]]:
    """(MRR before, after) of the customer's ``subscription_mrr`` events, a full rebuild."""
    mapping = StripeMrrHistory()
    ctx = MappingContext(store=store, connection="stripe", mapping=mapping, settings={})
    for stream in mapping.streams:
        mapping.map_rows(ctx, stream, list(store.raw_rows(f"raw_stripe_{stream}")))
    ctx.flush()
    mapping.finalize(ctx)
    ctx.flush()
    rows = store.db.execute(
        "SELECT attrs FROM events WHERE type = 'subscription_mrr' AND entity = ? ORDER BY ts",
        [f"stripe:customer:{customer}"],
    )
    return [(a["mrr_before"], a["mrr"]) for a in (json.loads(r[0]) for r in rows)]


def test_mrr_after_percent_amount_once_and_repeating_coupons():
    at = JAN + 10 * DAY
    # Undiscounted: $500 + $100 = $600 a month = 60,000 cents.
    assert mrr_after_discounts(subscription(), at) == 60_000
    # 25 % off for 3 months: $600 × 0.75 = $450; after the end date, $600 again.
    retain = {
        "coupon": {"percent_off": 25, "duration": "repeating"},
        "start": JAN,
        "end": JAN + 90 * DAY,
    }
    assert mrr_after_discounts(subscription(retain), at) == 45_000
    assert mrr_after_discounts(subscription(retain), JAN + 91 * DAY) == 60_000
    # No ``end`` on a repeating coupon: its 3 months (91.3 days) from the start.
    open_ended = {
        "coupon": {"percent_off": 25, "duration": "repeating", "duration_in_months": 3},
        "start": JAN,
    }
    assert mrr_after_discounts(subscription(open_ended), JAN + 91 * DAY) == 45_000
    assert mrr_after_discounts(subscription(open_ended), JAN + 92 * DAY) == 60_000
    # $120 off forever, per invoice of the first item's interval (monthly): $600 − $120 = $480.
    forever = {"coupon": {"amount_off": 12_000, "duration": "forever"}, "start": JAN}
    assert mrr_after_discounts(subscription(forever), at) == 48_000
    # A one-off coupon takes one invoice down, not the MRR; an unexpanded id is unknown.
    once = {"coupon": {"percent_off": 50, "duration": "once"}, "start": JAN}
    assert mrr_after_discounts(subscription(once, "di_unexpanded"), at) == 60_000


def test_a_retention_coupon_through_sync_map_and_its_end(api_env):
    sandbox, api, store = api_env(StripeAPI, companies=16, seed=0)
    company = sandbox.world.companies[5]  # healthy, starter plan, card on file
    assert (company.archetype, company.plan, company.seats, company.traps) == (
        "healthy",
        "starter",
        8,
        set(),
    )
    customer = api.customer_id_for(company.key)
    sync(sandbox, store)
    map_new(store)
    # 8 seats × $20 = $160 a month.
    assert facts(store, customer)["mrr"] == 160.0

    api.offer_coupon(company.key, "RETAIN25")  # 25 % off for 3 months, from now
    advance(sandbox, 1)
    sync(sandbox, store)  # the event carries the discount's id: read once, expanded
    map_new(store)
    # $160 × 0.75 = $120.
    assert facts(store, customer)["mrr"] == 120.0
    assert mrr_history(store, customer)[-1] == (160.0, 120.0)
    reads = api.requests["GET get_subscription"]
    assert reads == 1

    advance(sandbox, 40)  # a renewal: its event names the same discount, known already
    sync(sandbox, store)
    map_new(store)
    assert facts(store, customer)["mrr"] == 120.0
    assert api.requests["GET get_subscription"] == reads

    advance(sandbox, 55)  # past the coupon's 3 months: full price at the next renewal
    sync(sandbox, store)
    map_new(store)
    assert facts(store, customer)["mrr"] == 160.0
    assert mrr_history(store, customer)[-1] == (120.0, 160.0)
