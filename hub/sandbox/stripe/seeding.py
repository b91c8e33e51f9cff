"""Stripe fake: seeding the account from the world (customers, cards, subscriptions, history)."""

from __future__ import annotations

from typing import Any

from hub.sandbox.stripe import draws
from hub.sandbox.stripe.constants import (
    _CITIES,
    DAY,
    DAYS_UNTIL_DUE,
    HISTORY_DAYS,
    HISTORY_PERIODS,
    HOUR,
)
from hub.sandbox.stripe.records import (
    _anchor_of,
    _boundary,
    _Charge,
    _Customer,
    _Invoice,
    _PaymentMethod,
    _period_index,
    _ri,
    _Subscription,
    _ym,
)
from hub.sandbox.world import PLANS


class _Seeding:
    """Build the world's Stripe account: one customer, card and subscription per company, then run the past billing periods."""

    # -- seeding -----------------------------------------------------------------------

    def seed(self) -> None:
        """Plan the account (ids, indexes, bounds); histories are made on demand (lazy.py)."""
        self._plan_lazy(self._now())

    def _seed_company(self, company: Any, rng: Any, now: int) -> None:
        created = int(company.created_at.timestamp())
        seed = self.world.seed
        cus_id = self._new_id("cus")
        assert cus_id == self._customer_by_company[company.key]
        address = None
        if rng.random() > 0.05 and "no_payment_method" not in company.traps:
            city, country, postal, state = rng.choice(_CITIES)
            address = {
                "city": city,
                "country": country,
                "line1": f"{_ri(rng, 1, 999)} Market Street",
                "line2": None,
                "postal_code": postal,
                "state": state,
            }
        n = company.key + 1
        customer = _Customer(
            id=cus_id,
            created=created,
            email=company.billing_email,
            name=company.name,
            metadata={"hubspot_company_id": company.hubspot_id}
            if company.stripe_link == "explicit"
            else {},
            address=address,
            phone=None,
            description=None,
            default_pm=None,
            delinquent=False,
            invoice_prefix=f"{(n * 2654435761) % 0xFFFFFFFF:08X}",
            next_seq=1,
        )
        self._add("customer", customer)
        archetype = company.archetype
        has_card = "no_payment_method" not in company.traps
        if has_card:
            if (archetype == "at_risk" and rng.random() < 0.5) or (
                archetype == "slipping" and rng.random() < 0.25
            ):
                exp = now + _ri(rng, 0, 29) * DAY  # expires within 30 days of the clock
            else:
                exp = now + _ri(rng, 60, 1400) * DAY
            year, month = _ym(exp)
            pm = self._new_card(cus_id, created + 60, month, year, rng, company)
            customer.default_pm = pm.id
        anchor_ts = created + 300
        anchor = _anchor_of(anchor_ts)
        k_now = _period_index(anchor, now)
        script: dict[str, Any] = {}
        collection = "charge_automatically"
        if not has_card or (company.plan == "enterprise" and archetype != "at_risk"):
            collection = "send_invoice"
        elif archetype == "slipping" and company.key % 4 == 1:
            collection = "send_invoice"  # some slipping customers pay by invoice, late
        first_k = max(0, k_now - HISTORY_PERIODS + 1)
        if archetype == "churned":
            asked, immediately, last_k, _ = draws.churn(seed, company.key, anchor, k_now, now)
            script["cancel"] = (asked, immediately)
            first_k = max(0, last_k - HISTORY_PERIODS + 1)
        elif archetype == "slipping":
            # Late by a retry (days) or past a 30-day due date (weeks): old enough to be paid.
            newest = k_now - 1 if collection == "charge_automatically" else k_now - 2
            script["late"] = _boundary(anchor, _ri(rng, first_k, max(first_k, newest)))
            if collection == "send_invoice" and company.key % 4 == 1:
                # One invoice sits open past its due date right now, paid days later (no rng
                # draw here: the rest of the world stays as it was).
                k = k_now - 1
                if _boundary(anchor, k) + HOUR + DAYS_UNTIL_DUE * DAY >= now - DAY:
                    k -= 1
                if k >= first_k and _boundary(anchor, k) != script["late"]:
                    script["late_open"] = _boundary(anchor, k)
        elif archetype == "at_risk":
            fail_k = k_now if _boundary(anchor, k_now) <= now - 4 * DAY else max(first_k, k_now - 1)
            if collection == "send_invoice":
                fail_k = max(first_k, k_now - 2)  # an unpaid invoice is already past due

            script["fail_from"] = _boundary(anchor, fail_k)
            if rng.random() < 0.5 and fail_k - 2 >= first_k:
                script["late"] = _boundary(anchor, fail_k - 2)
        quantity = company.seats
        if archetype == "expanding":
            delta = _ri(rng, 1, max(1, company.seats // 4))
            if company.seats - delta >= 1:
                # Started with fewer seats; the rise shows as a subscription update.
                script["seats"] = (draws.seats_at(seed, company.key, now), company.seats)
                quantity = company.seats - delta
        sub = _Subscription(
            id=self._new_id("sub"),
            customer=cus_id,
            company=company.key,
            created=anchor_ts,
            anchor=anchor,
            plan=company.plan,
            quantity=quantity,
            collection_method=collection,
            status="active",
            period_k=first_k - 1,
            period_start=_boundary(anchor, max(first_k - 1, 0)),
            period_end=_boundary(anchor, first_k),
        )
        self._add("subscription", sub, cus_id)
        self._script[sub.id] = script
        # Periods that end long before anything scripted or visible as events are built
        # directly (paid on time); the rest run through the same machinery as advance().
        horizon = min(
            [now - HISTORY_DAYS * DAY]
            + [v[0] if isinstance(v, tuple) else v for v in script.values()]
        )
        k = first_k
        start = _boundary(anchor, k)
        # An automatic charge settles within the hour; an emailed invoice within 3 weeks.
        settle = HOUR + 1 if collection == "charge_automatically" else 22 * DAY
        while start + settle <= horizon:
            end = _boundary(anchor, k + 1)
            self._fast_invoice(sub, customer, k, start, end, rng)
            sub.period_k, sub.period_start, sub.period_end = k, start, end
            k, start = k + 1, end
        self._schedule(start, "renew", sub.id)
        if "cancel" in script:
            self._schedule(script["cancel"][0], "cancel", sub.id, script["cancel"][1])
        if "seats" in script:
            self._schedule(script["seats"][0], "seats", sub.id, script["seats"][1])

    def _fast_invoice(
        self, sub: _Subscription, customer: _Customer, k: int, start: int, end: int, rng: Any
    ) -> None:
        """A period's invoice settled on time, built without the event machinery (seed only)."""
        amount = sub.quantity * PLANS[sub.plan]
        finalized = start + HOUR
        number = self._next_number(customer.id)
        inv_id = self._new_id("in")
        if sub.collection_method == "charge_automatically":
            paid_at, due = finalized, None
        else:
            due = finalized + DAYS_UNTIL_DUE * DAY
            paid_at = finalized + _ri(rng, 2, 20) * DAY + _ri(rng, 0, DAY - 1)
        charge_id = None
        if customer.default_pm:
            pm = self._store["payment_method"][customer.default_pm]
            charge_id = self._new_id("ch")
            description = "Subscription creation" if k == 0 else "Subscription update"
            self._add(
                "charge",
                _Charge(
                    charge_id,
                    customer.id,
                    paid_at,
                    amount,
                    True,
                    None,
                    pm.id,
                    pm.exp_month,
                    pm.exp_year,
                    inv_id,
                    description,
                ),
                customer.id,
            )
        inv = _Invoice(
            inv_id, customer.id, sub.id, start, "subscription_create" if k == 0 else "subscription_cycle",
            sub.collection_method, sub.period_start if k > 0 else start, start, start, end, sub.plan,
            sub.quantity, amount, "paid", 1 if charge_id else 0, amount, finalized, paid_at, None, None,
            due, number, charge_id is None, charge_id, (customer.email, customer.name, customer.address),
        )  # fmt: skip
        self._add("invoice", inv, customer.id)
        sub.latest_invoice = inv_id

    def _new_card(
        self, cus_id: str, ts: int, month: int, year: int, rng: Any, company: Any
    ) -> _PaymentMethod:
        roll = rng.random()
        brand = "visa" if roll < 0.6 else "mastercard" if roll < 0.9 else "amex"
        pm = _PaymentMethod(
            id=self._new_id("pm"),
            created=ts,
            customer=cus_id,
            brand=brand,
            last4=f"{_ri(rng, 0, 9999):04d}",
            exp_month=month,
            exp_year=year,
            fingerprint=f"{rng.getrandbits(64):016x}"[:16],
            country="US",
            name=company.name,
            email=company.billing_email,
        )
        self._add("payment_method", pm, cus_id)
        return pm
