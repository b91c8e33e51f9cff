"""Stripe fake: what makes billing more than one seat price: add-ons, coupons, yearly plans
and customers who come back.

Daily activity (``advance``), each kind on its own random stream so that the seeded world
and every other day's activity stay what they were:

- **add-ons**: an expanding customer adds the Analytics add-on (a second subscription item,
  per seat, monthly) at about 1 in 40 a day (``customer.subscription.updated``);
- **retention coupons**: a slipping customer is offered ``RETAIN25`` (25 % off for 3 months)
  at about 1 in 120 a day: a discount on the subscription, taken off the next invoices;
- **returning customers**: a churned customer whose subscription ended 2+ weeks ago
  re-subscribes at about 1 in 150 a day (a new subscription, ``customer.subscription.
  created``), half of them on the yearly plan (10 months' price), with ``WINBACK20`` (20 %
  off for 3 months); the company's ground truth gains the ``returned`` trait.

In Stripe's shapes: items with their prices (``recurring.interval`` month or year), the
subscription's ``discounts`` (ids; ``expand[]=discounts`` gives the objects; before 2025 the
single ``discount`` object), invoice lines per item, ``discounts`` and
``total_discount_amounts`` on invoices, and coupons.
"""

from __future__ import annotations

from typing import Any

from hub.sandbox.base import rng_for
from hub.sandbox.stripe.constants import DAY
from hub.sandbox.stripe.records import _anchor_of, _ri, _Subscription

ADDON = "analytics"  # the add-on's price key
COUPONS: dict[str, dict[str, Any]] = {
    "RETAIN25": {"name": "Stay with us: 25% off for 3 months", "percent_off": 25.0, "months": 3},
    "WINBACK20": {"name": "Welcome back: 20% off for 3 months", "percent_off": 20.0, "months": 3},
}
_ADDON_RATE, _RETAIN_RATE, _RETURN_RATE = 1 / 40, 1 / 120, 1 / 150


def price_key(plan: str, months: int) -> str:
    return plan if months == 1 else f"{plan}_yearly"


class _Variety:
    """Add-ons, coupons, yearly plans and returning customers (see the module docstring)."""

    def _variety(self, t0: int, t1: int, day_index: int) -> None:
        rng = rng_for(self.world.seed, "stripe", "variety", day_index)
        subs = self._store["subscription"]
        for key, sub_id in self._sub_by_company.items():
            sub = subs[sub_id]
            archetype = self.world.companies[key].archetype
            roll = rng.random()
            if sub.status == "canceled":
                if (
                    archetype == "churned"
                    and sub.ended_at is not None
                    and sub.ended_at <= t0 - 14 * DAY
                    and roll < _RETURN_RATE
                ):
                    months = 12 if rng.random() < 0.5 else 1
                    self._schedule(_ri(rng, t0, t1 - 1), "resubscribe", sub.customer, months)
                continue
            if sub.cancel_at_period_end or sub.status != "active":
                continue
            if archetype == "expanding" and not sub.addons and sub.months == 1:
                if roll < _ADDON_RATE:
                    self._schedule(_ri(rng, t0, t1 - 1), "addon", sub_id, ADDON)
            elif archetype == "slipping" and sub.discount is None and roll < _RETAIN_RATE:
                self._schedule(_ri(rng, t0, t1 - 1), "discount", sub_id, "RETAIN25")

    # -- actions (run by the simulation's heap) ---------------------------------------------

    def _do_addon(self, ts: int, sub_id: str, price: str, seeding: bool) -> None:
        sub = self._store["subscription"][sub_id]
        if sub.status != "active" or sub.addons:
            return
        prev = {"_item": {"addons": sub.addons}}
        sub.addons = ((price, sub.quantity),)
        self._emit("customer.subscription.updated", ts, "subscription", sub, prev)

    def _do_discount(self, ts: int, sub_id: str, coupon: str, seeding: bool) -> None:
        sub = self._store["subscription"][sub_id]
        if sub.status == "canceled" or sub.discount is not None:
            return
        sub.discount = (coupon, ts, self._discount_end(coupon, ts))
        self._emit("customer.subscription.updated", ts, "subscription", sub, {"discounts": []})

    def _do_resubscribe(self, ts: int, cus_id: str, months: int, seeding: bool) -> None:
        key = self._company_by_customer[cus_id]
        current = self._store["subscription"][self._sub_by_company[key]]
        if current.status != "canceled":
            return
        company = self.world.companies[key]
        customer = self._store["customer"][cus_id]
        collection = "charge_automatically" if customer.default_pm else "send_invoice"
        sub = _Subscription(
            id=self._new_id("sub"),
            customer=cus_id,
            company=key,
            created=ts,
            anchor=_anchor_of(ts),
            plan=company.plan,
            quantity=company.seats,
            collection_method=collection,
            status="active",
            period_k=-1,
            period_start=ts,
            period_end=ts,
            months=months,
            discount=("WINBACK20", ts, self._discount_end("WINBACK20", ts)),
        )
        self._add("subscription", sub, cus_id)
        self._sub_by_company[key] = sub.id
        company.traps.add("returned")
        self._emit("customer.subscription.created", ts, "subscription", sub)
        self._do_renew(ts, sub.id, None, seeding)  # the first invoice, as Stripe bills at once

    # -- billing ---------------------------------------------------------------------------

    def _discount_end(self, coupon: str, ts: int) -> int | None:
        months = COUPONS[coupon]["months"]
        return None if months is None else ts + int(months * 30.44 * DAY)

    def _bill(self, sub: _Subscription, ts: int) -> tuple[int, int, str | None]:
        """(subtotal, discount taken off, coupon) of the invoice for the period from ``ts``."""
        subtotal = sub.quantity * self._prices[price_key(sub.plan, sub.months)]["unit_amount"]
        for price, quantity in sub.addons:
            subtotal += quantity * self._prices[price]["unit_amount"]
        if sub.discount is None:
            return subtotal, 0, None
        coupon, start, end = sub.discount
        if ts < start or (end is not None and ts >= end):
            return subtotal, 0, None
        return subtotal, int(subtotal * COUPONS[coupon]["percent_off"] / 100), coupon

    def _discount_id(self, sub_id: str) -> str:
        return "di_" + sub_id[4:]

    def _coupon(self, coupon: str) -> dict[str, Any]:
        spec = COUPONS[coupon]
        return {
            "id": coupon,
            "object": "coupon",
            "amount_off": None,
            "created": int(self.world.start.timestamp()) - 400 * DAY,
            "currency": None,
            "duration": "repeating" if spec["months"] else "forever",
            "duration_in_months": spec["months"],
            "livemode": False,
            "max_redemptions": None,
            "metadata": {},
            "name": spec["name"],
            "percent_off": spec["percent_off"],
            "redeem_by": None,
            "times_redeemed": 0,
            "valid": True,
        }

    def _discount_object(self, sub: _Subscription) -> dict[str, Any] | None:
        if sub.discount is None:
            return None
        coupon, start, end = sub.discount
        return {
            "id": self._discount_id(sub.id),
            "object": "discount",
            "checkout_session": None,
            "coupon": self._coupon(coupon),
            "customer": sub.customer,
            "end": end,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": None,
            "start": start,
            "subscription": sub.id,
            "subscription_item": None,
        }
