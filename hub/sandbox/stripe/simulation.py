"""Stripe fake: the billing simulation (renew, finalize, attempt, retry, dunning, cancel, card updates)."""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
from typing import Any

from hub.sandbox.base import (
    rng_for,
)
from hub.sandbox.stripe import draws
from hub.sandbox.stripe.constants import (
    _FEEDBACK,
    _FEEDBACK_COMMENT,
    _SHIFT,
    DAY,
    DAYS_UNTIL_DUE,
    EVENT_RETENTION,
    HOUR,
    IDEMPOTENCY_TTL,
    MAX_ATTEMPTS,
    RETRY_OFFSETS,
    UNCOLLECTIBLE_AFTER,
)
from hub.sandbox.stripe.records import (
    _boundary,
    _card_expiry,
    _Charge,
    _Customer,
    _Invoice,
    _ri,
    _Subscription,
    _ym,
)
from hub.sandbox.world import PLANS


class _Simulation:
    """Billing machinery shared by seeding and ``advance``: renewals, invoices, attempts, retries, dunning, cancellations."""

    # -- simulation --------------------------------------------------------------------

    def advance(self, start: dt.datetime, end: dt.datetime, day_index: int) -> None:
        self._materialise_all()  # every company moves from here on
        rng = rng_for(self.world.seed, "stripe", "day", day_index)
        self._rng = rng
        t0, t1 = int(start.timestamp()), int(end.timestamp())
        companies = self.world.companies
        for key, sub_id in self._sub_by_company.items():
            sub = self._store["subscription"][sub_id]
            if sub.status == "canceled" or sub.cancel_at_period_end:
                continue
            archetype = companies[key].archetype
            if archetype == "expanding" and rng.random() < 1 / 20:
                extra = _ri(rng, 1, max(1, sub.quantity // 5))
                self._schedule(_ri(rng, t0, t1 - 1), "seats", sub_id, sub.quantity + extra)
            elif archetype == "slipping" and sub.quantity > 1 and rng.random() < 1 / 40:
                # Slipping customers shed seats now and then (a downgrade).
                fewer = _ri(rng, 1, max(1, sub.quantity // 5))
                self._schedule(_ri(rng, t0, t1 - 1), "seats", sub_id, max(1, sub.quantity - fewer))
            elif archetype == "at_risk" and rng.random() < 1 / 120:
                self._schedule(_ri(rng, t0, t1 - 1), "cancel", sub_id, rng.random() < 0.6)
        self._plan_changes(t0, t1, day_index)
        self._variety(t0, t1, day_index)
        self._run_until(t1, seeding=False)
        # Stripe keeps 30 days of events; drop what no request can reach any more.
        keys = self._keys["event"]
        cut = bisect.bisect_left(keys, (t1 - EVENT_RETENTION - DAY) << _SHIFT)
        if cut:
            events = self._store["event"]
            for key in keys[:cut]:
                events.pop(self._id_of("event", key), None)
            del keys[:cut]
        for key, (*_, saved_at) in list(self._idempotency.items()):
            if saved_at < t1 - IDEMPOTENCY_TTL:
                del self._idempotency[key]
        self._invalidate_encoded()

    def _plan_changes(self, t0: int, t1: int, day_index: int) -> None:
        """Expanding customers move up a plan now and then, slipping ones down (own random
        stream, so the rest of the day is what it was)."""
        rng = rng_for(self.world.seed, "stripe", "plans", day_index)
        tiers = list(PLANS)
        companies = self.world.companies
        for key, sub_id in self._sub_by_company.items():
            sub = self._store["subscription"][sub_id]
            if sub.status == "canceled" or sub.cancel_at_period_end:
                continue
            archetype, tier = companies[key].archetype, tiers.index(sub.plan)
            roll = rng.random()
            if archetype == "expanding" and tier + 1 < len(tiers) and roll < 1 / 90:
                self._schedule(_ri(rng, t0, t1 - 1), "plan", sub_id, tiers[tier + 1])
            elif archetype == "slipping" and tier > 0 and roll < 1 / 120:
                self._schedule(_ri(rng, t0, t1 - 1), "plan", sub_id, tiers[tier - 1])

    def _run_until(self, until: int, *, seeding: bool) -> None:
        heap = self._heap
        while heap and heap[0][0] < until:
            ts, _, action, target, extra = heapq.heappop(heap)
            getattr(self, "_do_" + action)(ts, target, extra, seeding)

    def _do_renew(self, ts: int, sub_id: str, extra: Any, seeding: bool) -> None:
        sub = self._store["subscription"][sub_id]
        if sub.status == "canceled" or sub.period_end != ts:
            return
        if sub.cancel_at_period_end:
            self._end_subscription(sub, ts)
            return
        prev_item = {"period_start": sub.period_start, "period_end": sub.period_end}
        prev_latest = sub.latest_invoice
        k = sub.period_k + 1
        sub.period_k = k
        sub.period_start = ts
        sub.period_end = _boundary(sub.anchor, (k + 1) * sub.months)
        inv = self._new_invoice(sub, ts, k, prev_item["period_start"] if k > 0 else ts)
        sub.latest_invoice = inv.id
        if k > 0:
            self._emit(
                "customer.subscription.updated",
                ts,
                "subscription",
                sub,
                {"_item": prev_item, "latest_invoice": prev_latest},
            )
        self._emit("invoice.created", ts, "invoice", inv)
        if sub.status != "unpaid":
            # An unpaid subscription keeps billing, but its invoices stay drafts (Stripe).
            self._schedule(ts + HOUR, "finalize", inv.id)
        self._schedule(sub.period_end, "renew", sub.id)

    def _new_invoice(self, sub: _Subscription, ts: int, k: int, usage_start: int) -> _Invoice:
        subtotal, off, coupon = self._bill(sub, ts)
        amount = subtotal - off
        inv = _Invoice(
            id=self._new_id("in"),
            customer=sub.customer,
            subscription=sub.id,
            created=ts,
            billing_reason="subscription_create" if k == 0 else "subscription_cycle",
            collection_method=sub.collection_method,
            period_start=usage_start,
            period_end=ts,
            line_start=ts,
            line_end=sub.period_end,
            plan=sub.plan,
            quantity=sub.quantity,
            amount_due=amount,
            next_attempt=ts + HOUR if sub.collection_method == "charge_automatically" else None,
            months=sub.months,
            addons=sub.addons,
            coupon=coupon,
            discount_off=off,
        )
        self._add("invoice", inv, sub.customer)
        return inv

    def _do_finalize(self, ts: int, inv_id: str, extra: Any, seeding: bool) -> None:
        inv = self._store["invoice"][inv_id]
        if inv.status != "draft":
            return
        customer = self._store["customer"][inv.customer]
        inv.status = "open"
        inv.finalized_at = ts
        inv.number = self._next_number(inv.customer)
        inv.billed_to = (customer.email, customer.name, customer.address)
        if inv.collection_method == "send_invoice":
            inv.due_date = ts + DAYS_UNTIL_DUE * DAY
            inv.next_attempt = None
        self._emit("invoice.finalized", ts, "invoice", inv)
        if inv.collection_method == "charge_automatically":
            self._attempt(inv, ts, seeding)
        else:
            pay_at = self._send_invoice_payment(inv, seeding)
            if pay_at is not None:
                self._schedule(pay_at, "pay", inv.id)
            if pay_at is None or pay_at > inv.due_date:
                self._schedule(inv.due_date, "overdue", inv.id)
            if pay_at is None:
                self._schedule(inv.due_date + UNCOLLECTIBLE_AFTER, "uncollectible", inv.id)

    def _do_attempt(self, ts: int, inv_id: str, extra: Any, seeding: bool) -> None:
        inv = self._store["invoice"][inv_id]
        if inv.status == "open" and inv.next_attempt == ts:
            self._attempt(inv, ts, seeding)

    def _do_pay(self, ts: int, inv_id: str, extra: Any, seeding: bool) -> None:
        inv = self._store["invoice"][inv_id]
        if inv.status != "open":
            return
        customer = self._store["customer"][inv.customer]
        charge = None
        if customer.default_pm:
            charge = self._new_charge(inv, ts, customer.default_pm, None)
            inv.attempt_count += 1
        else:
            inv.paid_out_of_band = True
        self._mark_paid(inv, ts, charge)

    def _attempt(self, inv: _Invoice, ts: int, seeding: bool) -> None:
        """One automatic payment attempt of an open invoice (charge, then invoice events)."""
        sub = self._store["subscription"][inv.subscription]
        customer = self._store["customer"][inv.customer]
        company = self.world.companies[sub.company]
        inv.attempt_count += 1
        pm = self._store["payment_method"].get(customer.default_pm) if customer.default_pm else None
        failure = None
        if pm is None:
            failure = "no_payment_method"
        else:
            if ts >= _card_expiry(pm.exp_year, pm.exp_month):
                if company.archetype in ("healthy", "expanding"):
                    # The card account updater refreshes good customers' expired cards.
                    prev = {"card": {"exp_month": pm.exp_month, "exp_year": pm.exp_year}}
                    pm.exp_year += 3
                    self._emit("payment_method.updated", ts, "payment_method", pm, prev)
                else:
                    failure = "expired_card"
            if failure is None:
                failure = self._decide_failure(inv, sub, company.archetype, seeding)
        charge = None
        if pm is not None:
            charge = self._new_charge(inv, ts, pm.id, failure)
        if failure is None:
            self._mark_paid(inv, ts, charge)
            return
        if charge is not None:
            inv.charge = charge.id
        exhausted = inv.attempt_count >= MAX_ATTEMPTS
        if not exhausted:
            inv.next_attempt = ts + RETRY_OFFSETS[inv.attempt_count - 1]
            self._schedule(inv.next_attempt, "attempt", inv.id)
        else:
            # Retries exhausted: the invoice stays open (past due) until the finance team
            # writes it off, unless the account's dunning settings say otherwise.
            inv.next_attempt = None
            self._schedule(ts + UNCOLLECTIBLE_AFTER, "uncollectible", inv.id)
        self._emit("invoice.payment_failed", ts, "invoice", inv)
        self._past_due(sub, customer, inv, ts)
        if exhausted:
            self._retries_exhausted(sub, inv, ts, seeding)
        if (
            failure == "expired_card"
            and company.archetype == "slipping"
            and self._rng.random() < 0.7
        ):
            self._schedule(ts + _ri(self._rng, 1, 3) * DAY, "newcard", customer.id)

    def _retries_exhausted(self, sub: _Subscription, inv: _Invoice, ts: int, seeding: bool) -> None:
        """Apply the account's settings for "if all retries for a payment fail"."""
        if self.dunning_invoice == "uncollectible":
            # The subscription follows its own setting below, not the write-off.
            self._do_uncollectible(ts, inv.id, "dunning", seeding)
        if sub.latest_invoice != inv.id or sub.status == "canceled":
            return
        if self.dunning_subscription == "unpaid" and sub.status == "past_due":
            sub.status = "unpaid"
            self._emit(
                "customer.subscription.updated", ts, "subscription", sub, {"status": "past_due"}
            )
        elif self.dunning_subscription == "cancel":
            sub.reason, sub.feedback, sub.comment = "payment_failed", None, None
            self._end_subscription(sub, ts)

    def _next_number(self, customer_id: str) -> str:
        # The customer's prefix and its own sequence (a company's numbers do not depend on
        # which histories were generated first). ``next_invoice_sequence`` is not moved:
        # Stripe sends no event for it, so listing and event replay agree.
        n = self._numbers[customer_id] = self._numbers.get(customer_id, 0) + 1
        return f"{self._store['customer'][customer_id].invoice_prefix}-{n:04d}"

    def _set_delinquent(self, customer: _Customer, value: bool, ts: int) -> None:
        if customer.delinquent != value:
            prev = {"delinquent": customer.delinquent}
            customer.delinquent = value
            self._emit("customer.updated", ts, "customer", customer, prev)

    def _past_due(self, sub: _Subscription, customer: _Customer, inv: _Invoice, ts: int) -> None:
        self._set_delinquent(customer, True, ts)
        if sub.status == "active" and sub.latest_invoice == inv.id:
            sub.status = "past_due"
            self._emit(
                "customer.subscription.updated", ts, "subscription", sub, {"status": "active"}
            )

    def _do_overdue(self, ts: int, inv_id: str, extra: Any, seeding: bool) -> None:
        inv = self._store["invoice"][inv_id]
        if inv.status == "open":
            sub = self._store["subscription"][inv.subscription]
            self._past_due(sub, self._store["customer"][inv.customer], inv, ts)

    def _do_uncollectible(self, ts: int, inv_id: str, extra: Any, seeding: bool) -> None:
        inv = self._store["invoice"][inv_id]
        if inv.status != "open":
            return
        inv.status = "uncollectible"
        inv.uncollectible_at = ts
        self._emit("invoice.marked_uncollectible", ts, "invoice", inv)
        sub = self._store["subscription"][inv.subscription]
        if extra != "dunning" and sub.status == "past_due" and sub.latest_invoice == inv.id:
            sub.status = "unpaid"
            self._emit(
                "customer.subscription.updated", ts, "subscription", sub, {"status": "past_due"}
            )

    def _decide_failure(
        self, inv: _Invoice, sub: _Subscription, archetype: str, seeding: bool
    ) -> str | None:
        rng = self._rng
        decline = "insufficient_funds" if rng.random() < 0.5 else "card_declined"
        if seeding:
            script = self._script.get(sub.id, {})
            if "fail_from" in script and inv.created >= script["fail_from"]:
                return decline
            if script.get("late") == inv.created and inv.attempt_count == 1:
                return decline
            return None
        if archetype == "at_risk":
            return decline if rng.random() < (0.5 if inv.attempt_count == 1 else 0.7) else None
        if archetype == "slipping":
            return decline if rng.random() < (0.12 if inv.attempt_count == 1 else 0.3) else None
        return None

    def _send_invoice_payment(self, inv: _Invoice, seeding: bool) -> int | None:
        """When a customer on ``send_invoice`` pays (None = not before something else happens)."""
        rng = self._rng
        sub = self._store["subscription"][inv.subscription]
        archetype = self.world.companies[sub.company].archetype
        assert inv.finalized_at is not None and inv.due_date is not None
        if seeding:
            script = self._script.get(sub.id, {})
            if "fail_from" in script and inv.created >= script["fail_from"]:
                return None
            if script.get("late_open") == inv.created:
                return self._now() + (1 + sub.company % 9) * DAY  # after the seed's "now"
            late = script.get("late") == inv.created
            return draws.invoice_paid_at(self.world.seed, sub.company, inv.created, late)
        if archetype == "at_risk" and rng.random() < 0.5:
            return None
        if archetype in ("slipping", "at_risk") and rng.random() < 0.3:
            return inv.due_date + _ri(rng, 2, 12) * DAY + _ri(rng, 0, DAY - 1)
        return inv.finalized_at + _ri(rng, 2, 20) * DAY + _ri(rng, 0, DAY - 1)

    def _new_charge(self, inv: _Invoice, ts: int, pm_id: str, failure: str | None) -> _Charge:
        pm = self._store["payment_method"][pm_id]
        charge = _Charge(
            id=self._new_id("ch"),
            customer=inv.customer,
            created=ts,
            amount=inv.amount_due,
            succeeded=failure is None,
            failure_code=failure,
            pm=pm_id,
            exp_month=pm.exp_month,
            exp_year=pm.exp_year,
            invoice=inv.id,
            description="Subscription creation"
            if inv.billing_reason == "subscription_create"
            else "Subscription update",
        )
        self._add("charge", charge, inv.customer)
        self._emit("charge.succeeded" if failure is None else "charge.failed", ts, "charge", charge)
        return charge

    def _mark_paid(self, inv: _Invoice, ts: int, charge: _Charge | None) -> None:
        inv.status = "paid"
        inv.amount_paid = inv.amount_due
        inv.paid_at = ts
        inv.next_attempt = None
        if charge is not None:
            inv.charge = charge.id
        self._emit("invoice.paid", ts, "invoice", inv)
        sub = self._store["subscription"][inv.subscription]
        customer = self._store["customer"][inv.customer]
        if not customer.delinquent and sub.status == "active":
            return
        invoices = self._store["invoice"]
        still_open = any(
            invoices[i].status == "open" and invoices[i].attempt_count > 0
            for i in self._by_customer["invoice"][inv.customer][-3:]
        )
        if not still_open:
            self._set_delinquent(customer, False, ts)
            if sub.status in ("past_due", "unpaid"):
                prev_status = sub.status
                sub.status = "active"
                self._emit(
                    "customer.subscription.updated",
                    ts,
                    "subscription",
                    sub,
                    {"status": prev_status},
                )

    def _do_seats(self, ts: int, sub_id: str, quantity: int, seeding: bool) -> None:
        sub = self._store["subscription"][sub_id]
        if sub.status == "canceled" or quantity == sub.quantity:
            return
        prev = {"_item": {"quantity": sub.quantity}}
        sub.quantity = quantity
        company = self.world.companies[sub.company]
        company.seats = quantity  # ground truth follows billing
        self._emit("customer.subscription.updated", ts, "subscription", sub, prev)

    def _do_plan(self, ts: int, sub_id: str, plan: str, seeding: bool) -> None:
        """An upgrade or downgrade to another plan (same seats; the next invoice shows it)."""
        sub = self._store["subscription"][sub_id]
        if sub.status == "canceled" or plan == sub.plan:
            return
        prev = {"_item": {"plan": sub.plan}}
        sub.plan = plan
        company = self.world.companies[sub.company]
        company.plan, company.unit_amount = plan, PLANS[plan]  # ground truth follows billing
        self._emit("customer.subscription.updated", ts, "subscription", sub, prev)

    def _do_cancel(self, ts: int, sub_id: str, immediately: bool, seeding: bool) -> None:
        sub = self._store["subscription"][sub_id]
        if sub.status == "canceled" or sub.cancel_at_period_end:
            return
        company = self.world.companies[sub.company]
        rng = self._rng
        feedback = rng.choice(_FEEDBACK)
        if feedback == "switched_service" and not company.competitor:
            feedback = "too_expensive"
        comment = _FEEDBACK_COMMENT[feedback]
        if comment:
            comment = comment.format(competitor=company.competitor)
        sub.reason, sub.feedback, sub.comment = "cancellation_requested", feedback, comment
        sub.canceled_at = ts
        if immediately:
            self._end_subscription(sub, ts)
            return
        prev = {
            "cancel_at_period_end": False,
            "cancel_at": None,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        }
        sub.cancel_at_period_end = True
        sub.cancel_at = sub.period_end
        self._emit("customer.subscription.updated", ts, "subscription", sub, prev)

    def _end_subscription(self, sub: _Subscription, ts: int) -> None:
        sub.status = "canceled"
        sub.ended_at = ts
        if sub.canceled_at is None:
            sub.canceled_at = ts
        self._emit("customer.subscription.deleted", ts, "subscription", sub)

    def _do_newcard(self, ts: int, cus_id: str, extra: Any, seeding: bool) -> None:
        customer = self._store["customer"][cus_id]
        company = self.world.companies[self._company_by_customer[cus_id]]
        year, month = _ym(ts + _ri(self._rng, 400, 1400) * DAY)
        pm = self._new_card(cus_id, ts, month, year, self._rng, company)
        self._emit("payment_method.attached", ts, "payment_method", pm)
        prev = {"invoice_settings": {"default_payment_method": customer.default_pm}}
        customer.default_pm = pm.id
        self._emit("customer.updated", ts, "customer", customer, prev)
        # Stripe retries open invoices when the customer's payment method is updated.
        for inv_id in self._by_customer["invoice"][cus_id][-3:]:
            inv = self._store["invoice"][inv_id]
            if (
                inv.status == "open"
                and inv.collection_method == "charge_automatically"
                and inv.attempt_count < MAX_ATTEMPTS
            ):
                self._attempt(inv, ts, seeding)
