"""The Stripe side of the portfolio contract: ``subscription_mrr`` events from subscriptions.

Golden checks of the normalisation (arithmetic in the tests), and the standard mapping suite
(``hub.testing.mappings``) on the sandbox world.
"""

from __future__ import annotations

from hub.store import RawRecord
from mappings.hubspot import HubSpotMapping
from mappings.stripe import StripeMapping
from mappings.stripe_mrr import StripeMrrHistory, subscription_points
from tests.test_mapping_standard import SandboxMappingTests, templates  # noqa: F401

JAN = 1_767_225_600  # 2026-01-01 00:00 UTC
DAY = 86_400
LATER = JAN + 400 * DAY


def sub(**extra):
    base = {
        "status": "active",
        "start_date": JAN,
        "items": {
            "data": [
                {"quantity": 4, "price": {"unit_amount": 2_500, "recurring": {"interval": "month"}}}
            ]
        },
    }
    return {**base, **extra}


def test_quantity_times_unit_amount_per_month():
    # 4 seats × $25 = $100 a month = 10,000 cents.
    assert subscription_points(sub(), [], LATER) == [(JAN, 10_000.0)]


def test_percent_and_amount_discounts_apply_while_they_run():
    ends = JAN + 90 * DAY
    d = {"coupon": {"percent_off": 20, "duration": "repeating"}, "start": JAN, "end": ends}
    # 20 % off $100 = $80 until the discount ends, then $100 again (an expansion).
    assert subscription_points(sub(discounts=[d]), [], LATER) == [(JAN, 8_000.0), (ends, 10_000.0)]
    # $120 off a yearly invoice is $10 off a month: $100 − $10 = $90.
    yearly = sub(discount={"coupon": {"amount_off": 12_000, "duration": "forever"}, "start": JAN})
    yearly["items"]["data"][0]["price"] = {"unit_amount": 30_000, "recurring": {"interval": "year"}}
    # 4 × $300 ÷ 12 = $100 a month, minus $10 = $90.
    assert subscription_points(yearly, [], LATER) == [(JAN, 9_000.0)]
    # A one-off coupon does not change MRR.
    once = sub(discounts=[{"coupon": {"percent_off": 50, "duration": "once"}, "start": JAN}])
    assert subscription_points(once, [], LATER) == [(JAN, 10_000.0)]


def test_log_changes_trial_and_end():
    up = JAN + 40 * DAY
    # The log says MRR went $60 → $100 on day 40: before it, the subscription paid $60.
    assert subscription_points(sub(), [(up, 6_000.0, 10_000.0)], LATER) == [
        (JAN, 6_000.0),
        (up, 10_000.0),
    ]
    # A 14-day trial counts from its end; an ended subscription drops to 0 at ended_at.
    trial_end, ended = JAN + 14 * DAY, JAN + 200 * DAY
    s = sub(trial_end=trial_end, status="canceled", ended_at=ended)
    assert subscription_points(s, [], LATER) == [(trial_end, 10_000.0), (ended, 0.0)]
    # Nothing after now; never-paid subscriptions have no history.
    assert subscription_points(s, [], JAN + 100 * DAY) == [(trial_end, 10_000.0)]
    assert subscription_points(sub(status="incomplete_expired"), [], LATER) == []


class TestStripeMrrHistory(SandboxMappingTests):
    mapping_class = StripeMrrHistory
    other_mappings = [HubSpotMapping, StripeMapping]

    def tombstone(self, store):
        """A deleted subscription takes its MRR points with it."""
        (event_id,) = store.db.execute(
            "SELECT id FROM events WHERE type = 'subscription_mrr' ORDER BY id LIMIT 1"
        ).fetchone()
        sub_id = event_id.split(":")[2]
        (data,) = store.db.execute(
            "SELECT data FROM raw_stripe_subscriptions WHERE id = ?", [sub_id]
        ).fetchone()
        store.write_page(
            "stripe",
            "subscriptions",
            [RawRecord(sub_id, store.decode_raw(data), deleted=True)],
            None,
        )
        self._gone = f"stripe:subscription_mrr:{sub_id}:"
        return "subscriptions", sub_id

    def test_tombstone_retracts(self, mapped):
        super().test_tombstone_retracts(mapped)
        left = mapped.db.execute(
            "SELECT count(*) FROM events WHERE id >= ? AND id < ?", [self._gone, self._gone + "~"]
        ).fetchone()[0]
        assert left == 0
