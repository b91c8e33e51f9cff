"""Stripe mapping: customers, cards, subscriptions, invoices, charges and events → timeline.

Reads the streams of the Stripe connector (``connectors.stripe``), in this order:

- ``customers`` → ``stripe:customer:<id>`` entities: ``metadata.hubspot_company_id`` is the
  explicit link, the billing e-mail's domain the fallback (identity ignores free-mail).
- ``payment_methods`` (customers' default cards) → the ``card_expires`` fact.
- ``subscriptions`` → ``subscription_started`` (at ``start_date``) and
  ``subscription_cancelled`` (at ``canceled_at``, with ``cancellation_details``; retracted if
  a pending cancellation is undone); facts ``mrr``, ``seats``, ``plan``,
  ``subscription_status``, ``renewal_date`` per customer over all its subscriptions.
- ``invoices`` → ``invoice_paid`` or ``invoice_paid_late``: late means paid after the due
  date (``send_invoice``) or, for automatically charged invoices, more than
  ``late_grace_days`` after the first attempt (a retry succeeded). ``invoice_past_due`` is
  the *current* state: open or uncollectible after its due date, or after a failed automatic
  attempt; it goes away when the invoice is paid or voided.
- ``charges`` → ``payment_failed`` per failed charge (``failure_code``), the whole history.
- ``events`` (Stripe's log, kept by the connector) → ``subscription_upgraded`` /
  ``subscription_downgraded`` and ``mrr_changed`` from ``customer.subscription.updated``
  ``previous_attributes`` (items, or the older top-level quantity/plan), plus
  ``mrr_changed`` for subscriptions created or deleted. Renewals (period-only updates) are
  not changes. These exist from the connector's first sync minus Stripe's 30 days onward.
- Per customer: ``has_payment_method`` and ``billing_details_missing`` (paying, no default
  payment method); ``card_expiring`` for a default card within ``card_expiring_days``
  (or expired).

Both Stripe shapes are read (events keep the API version they were created in): periods on
the subscription or on its items, ``invoice.paid`` or ``status`` +
``status_transitions.paid_at``, invoice ``subscription`` at the top or under ``parent``.
Money is in dollars (amounts / 100), MRR normalises yearly/weekly/daily prices to a month.

Event ids are deterministic (``stripe:<type>:<object id>``; log-derived ones use the Stripe
event id), every object-derived event follows the object's current state, and the
time-dependent ones (past due, card expiring) are re-checked in ``finalize``, so incremental
mapping and a full rebuild give the same timeline.

``[timeline.stripe]`` in hub.toml may set ``card_expiring_days`` (default 30),
``late_grace_days`` (default 1) and ``metadata_key`` (default ``hubspot_company_id``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from typing import Any

from pydantic import Field

import hub
from hub.store import raw_table_name
from hub.timeline import Mapping, MappingContext, MappingSettings
from hub.vocabulary import EventType, Source

SOURCE = "stripe"


# What this mapping puts on the timeline (hub.vocabulary collects it when the mapping registers).
SOURCE_INFO = Source("stripe", label="Stripe", letter="S", fact_rank=10, style="magenta")
EVENT_TYPES = [
    EventType(
        "subscription_started",
        "A subscription started (attrs: subscription_id, plan, mrr, seats)",
        polarity="neutral",
        noun=("subscription started", "subscriptions started"),
    ),
    EventType(
        "subscription_upgraded",
        "Seats or price went up (attrs: mrr_before, mrr_after, seats_before, seats_after)",
        polarity="positive",
        noun=("upgrade", "upgrades"),
    ),
    EventType(
        "subscription_downgraded",
        "Seats or price went down (attrs: mrr_before, mrr_after, seats_before, seats_after)",
        polarity="negative",
        noun=("downgrade", "downgrades"),
    ),
    EventType(
        "subscription_cancelled",
        "A subscription was cancelled (attrs: reason, feedback, comment)",
        polarity="negative",
        noun=("cancellation", "cancellations"),
    ),
    EventType(
        "invoice_paid",
        "An invoice was paid on time (attrs: invoice_id, amount)",
        polarity="positive",
        noun=("invoice paid on time", "invoices paid on time"),
    ),
    EventType(
        "invoice_paid_late",
        "An invoice was paid after its due date (attrs: invoice_id, amount, days_late)",
        polarity="negative",
        noun=("invoice paid late", "invoices paid late"),
    ),
    EventType(
        "payment_failed",
        "A payment attempt failed (attrs: invoice_id, amount, attempt_count, failure_code)",
        polarity="negative",
        noun=("failed payment", "failed payments"),
    ),
    EventType(
        "invoice_past_due",
        "An invoice is open past its due date (attrs: invoice_id, amount, days_overdue)",
        polarity="negative",
        noun=("invoice past due", "invoices past due"),
    ),
    EventType(
        "card_expiring",
        "The default card expires soon (attrs: exp_month, exp_year, days_left)",
        polarity="negative",
        noun=("card-expiry warning", "card-expiry warnings"),
    ),
    EventType(
        "billing_details_missing",
        "A paying customer has no payment method on file",
        polarity="negative",
        noun=("missing billing details notice", "missing billing details notices"),
    ),
    EventType(
        "mrr_changed",
        "Monthly recurring revenue changed (attrs: mrr_before, mrr_after, delta)",
        polarity="neutral",
        noun=("MRR change", "MRR changes"),
    ),
]
FACTS = {
    "mrr": "Monthly recurring revenue in dollars, summed over active subscriptions",
    "plan": "Plan / price nickname of the main subscription",
    "seats": "Seats (quantity) on active subscriptions",
    "subscription_status": "Status of the main Stripe subscription",
    "has_payment_method": "Whether a default payment method is on file",
    "card_expires": "Default card expiry as YYYY-MM",
}
ACTIVE = {"active", "past_due", "unpaid", "trialing"}
DEFAULT_CARD_DAYS = 30
DEFAULT_LATE_GRACE_DAYS = 1
DEFAULT_METADATA_KEY = "hubspot_company_id"
INVOICE_TYPES = ("invoice_paid", "invoice_paid_late")
_PER_MONTH = {"day": 365 / 12, "week": 52 / 12, "month": 1.0, "year": 1 / 12}


# -- reading Stripe objects in either shape ---------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def _id(value: Any) -> str | None:
    """An object reference: an id string, or an expanded object's id."""
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value not in (None, "") else None


def _ts(value: Any) -> dt.datetime | None:
    number = _num(value)
    if number is None or number <= 0:
        return None
    return dt.datetime.fromtimestamp(number, dt.timezone.utc)


def dollars(cents: Any) -> float | None:
    number = _num(cents)
    return round(number / 100, 2) if number is not None else None


def money(cents: float) -> str:
    return f"${cents / 100:,.0f}" if cents % 100 == 0 else f"${cents / 100:,.2f}"


def email_domain(email: Any) -> str | None:
    text = str(email or "")
    return text.rsplit("@", 1)[1].strip().lower() or None if "@" in text else None


def dashboard(obj: dict[str, Any], path: str) -> str:
    mode = "" if obj.get("livemode") else "test/"
    return f"https://dashboard.stripe.com/{mode}{path}"


def items_of(sub: dict[str, Any]) -> list[dict[str, Any]]:
    data = _dict(sub.get("items")).get("data")
    return [i for i in data if isinstance(i, dict)] if isinstance(data, list) else []


def monthly_cents(price: dict[str, Any], quantity: float) -> float:
    """A price (or legacy plan) times quantity, per month, in cents."""
    unit = _num(price.get("unit_amount"))
    if unit is None:
        unit = _num(price.get("unit_amount_decimal")) or _num(price.get("amount")) or 0.0
    recurring = _dict(price.get("recurring")) or price  # a plan carries interval itself
    interval = str(recurring.get("interval") or "month")
    count = _num(recurring.get("interval_count")) or 1.0
    return unit * quantity * _PER_MONTH.get(interval, 1.0) / count


def mrr_and_seats(sub: dict[str, Any]) -> tuple[float, int]:
    """(MRR in cents, seats) of a subscription, from its items or its legacy plan/quantity."""
    items = items_of(sub)
    if items:
        mrr = seats = 0.0
        for item in items:
            quantity = _num(item.get("quantity"))
            quantity = 1.0 if quantity is None else quantity
            mrr += monthly_cents(_dict(item.get("price")) or _dict(item.get("plan")), quantity)
            seats += quantity
        return mrr, int(seats)
    quantity = _num(sub.get("quantity"))
    quantity = 1.0 if quantity is None else quantity
    return monthly_cents(_dict(sub.get("plan")), quantity), int(quantity)


def period_end(sub: dict[str, Any]) -> Any:
    if sub.get("current_period_end") is not None:
        return sub["current_period_end"]  # before 2025-03-31.basil
    ends = [_num(i.get("current_period_end")) for i in items_of(sub)]
    ends = [e for e in ends if e is not None]
    return max(ends) if ends else None


def plan_name(sub: dict[str, Any]) -> str | None:
    for item in items_of(sub) or [sub]:
        price = _dict(item.get("price")) or _dict(item.get("plan"))
        name = price.get("nickname") or price.get("lookup_key") or price.get("id")
        if name:
            return str(name)
    return None


def invoice_status(inv: dict[str, Any]) -> str | None:
    status = inv.get("status")
    if status:
        return str(status)
    if inv.get("paid") is True:  # very old shapes had only ``paid``
        return "paid"
    return None


def invoice_subscription(inv: dict[str, Any]) -> str | None:
    parent = _dict(_dict(inv.get("parent")).get("subscription_details"))
    return _id(parent.get("subscription")) or _id(inv.get("subscription"))


# -- the mapping ------------------------------------------------------------------------------


class StripeSettings(MappingSettings):
    """``[timeline.stripe]``: card-expiry window, lateness grace, the explicit-link key."""

    card_expiring_days: int = Field(DEFAULT_CARD_DAYS, ge=0)
    late_grace_days: float = Field(DEFAULT_LATE_GRACE_DAYS, ge=0)
    metadata_key: str = DEFAULT_METADATA_KEY


class StripeMapping(Mapping):
    """Stripe billing signals on the timeline, and billing facts on each customer."""

    name = "stripe"
    connector = "stripe"
    streams = ["customers", "payment_methods", "subscriptions", "invoices", "charges", "events"]
    Settings = StripeSettings
    source = SOURCE_INFO
    event_types = EVENT_TYPES
    facts = FACTS

    def map_rows(self, ctx: MappingContext, stream: str, rows: Iterable[dict[str, Any]]) -> None:
        handler = getattr(self, "_" + stream)
        for row in rows:
            handler(ctx, row)

    @staticmethod
    def customer_key(ctx: MappingContext, customer_id: str) -> str:
        return ctx.entity_key(SOURCE, "customer", customer_id)

    # -- streams ----------------------------------------------------------------------------

    def _customers(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        data = row["data"]
        metadata = _dict(data.get("metadata"))
        explicit = metadata.get(ctx.settings.metadata_key)
        created = _ts(data.get("created"))
        ctx.entity(
            SOURCE,
            "customer",
            row["id"],
            name=data.get("name") or data.get("email"),
            domains=[email_domain(data.get("email"))],
            explicit_account=str(explicit).strip() if explicit not in (None, "") else None,
            deleted=bool(row["deleted"] or data.get("deleted")),
            facts={"customer_since": created.isoformat() if created else None},
        )
        ctx.mark_affected(row["id"])

    def _payment_methods(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        customer = _id(row["data"].get("customer"))
        if customer:
            ctx.mark_affected(customer)

    def _subscriptions(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        sub, sub_id = row["data"], row["id"]
        customer = _id(sub.get("customer"))
        if not customer:
            return
        ctx.mark_affected(customer)
        entity = self.customer_key(ctx, customer)
        link = dashboard(sub, f"subscriptions/{sub_id}")
        if row["deleted"]:
            for kind in ("subscription_started", "subscription_cancelled"):
                ctx.retract(f"{SOURCE}:{kind}:{sub_id}")
            return
        mrr, seats = mrr_and_seats(sub)
        plan = plan_name(sub)
        started = _ts(sub.get("start_date")) or _ts(sub.get("created"))
        if started:
            ctx.event(
                entity,
                "subscription_started",
                started,
                source_id=sub_id,
                summary=f"Subscription started ({plan or 'no plan name'})",
                attrs={
                    "subscription_id": sub_id,
                    "plan": plan,
                    "mrr": round(mrr / 100, 2),
                    "seats": seats,
                },
                link=link,
            )
        cancelled = _ts(sub.get("canceled_at"))
        if cancelled and (
            sub.get("status") == "canceled"
            or sub.get("cancel_at_period_end")
            or sub.get("cancel_at")
        ):
            details = _dict(sub.get("cancellation_details"))
            reason, feedback, comment = (
                details.get("reason"),
                details.get("feedback"),
                details.get("comment"),
            )
            why = str(feedback or reason or "no reason given").replace("_", " ")
            ended = _ts(sub.get("ended_at")) or _ts(sub.get("cancel_at"))
            when = (
                ""
                if sub.get("status") == "canceled"
                else f", ends {ended:%Y-%m-%d}"
                if ended
                else ""
            )
            ctx.event(
                entity,
                "subscription_cancelled",
                cancelled,
                source_id=sub_id,
                summary=f"Subscription cancelled ({why}){when}",
                attrs={
                    "subscription_id": sub_id,
                    "reason": feedback or reason,
                    "stripe_reason": reason,
                    "feedback": feedback,
                    "comment": comment,
                    "ended_at": ended.isoformat() if ended else None,
                    "mrr": round(mrr / 100, 2),
                },
                link=link,
            )
        else:
            ctx.retract(f"{SOURCE}:subscription_cancelled:{sub_id}")

    def _invoices(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        inv, inv_id = row["data"], row["id"]
        status = invoice_status(inv)
        paid_at = _ts(_dict(inv.get("status_transitions")).get("paid_at"))
        customer = _id(inv.get("customer"))
        if row["deleted"] or status != "paid" or paid_at is None or not customer:
            for kind in INVOICE_TYPES:
                ctx.retract(f"{SOURCE}:{kind}:{inv_id}")
            return
        amount = _num(inv.get("amount_paid")) or 0.0
        due = _ts(inv.get("due_date"))
        grace = 0.0
        if due is None:
            # Charged automatically: due at the first attempt; a retry that worked is late.
            due = (
                _ts(_dict(inv.get("status_transitions")).get("finalized_at"))
                or _ts(inv.get("created"))
                or paid_at
            )
            grace = ctx.settings.late_grace_days
        late_days = (paid_at - due).total_seconds() / 86400
        kind = "invoice_paid_late" if late_days > grace else "invoice_paid"
        other = "invoice_paid" if kind == "invoice_paid_late" else "invoice_paid_late"
        ctx.retract(f"{SOURCE}:{other}:{inv_id}")
        number = inv.get("number") or inv_id
        attrs: dict[str, Any] = {
            "invoice_id": inv_id,
            "number": inv.get("number"),
            "amount": round(amount / 100, 2),
            "attempt_count": inv.get("attempt_count"),
            "subscription_id": invoice_subscription(inv),
        }
        if kind == "invoice_paid_late":
            attrs["days_late"] = math.ceil(late_days)
            summary = f"Invoice {number} ({money(amount)}) paid {math.ceil(late_days)} days late"
        else:
            summary = f"Invoice {number} ({money(amount)}) paid"
        ctx.event(
            self.customer_key(ctx, customer),
            kind,
            paid_at,
            source_id=inv_id,
            summary=summary,
            attrs=attrs,
            link=inv.get("hosted_invoice_url") or dashboard(inv, f"invoices/{inv_id}"),
        )

    def _charges(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        charge, charge_id = row["data"], row["id"]
        customer = _id(charge.get("customer"))
        if row["deleted"] or charge.get("status") != "failed" or not customer:
            ctx.retract(f"{SOURCE}:payment_failed:{charge_id}")
            return
        when = _ts(charge.get("created"))
        if when is None:
            return
        amount = _num(charge.get("amount")) or 0.0
        code = charge.get("failure_code")
        reason = _dict(charge.get("outcome")).get("reason")  # e.g. insufficient_funds
        message = charge.get("failure_message") or str(reason or code or "declined").replace(
            "_", " "
        )
        ctx.event(
            self.customer_key(ctx, customer),
            "payment_failed",
            when,
            source_id=charge_id,
            summary=f"Payment of {money(amount)} failed: {message}",
            attrs={
                "charge_id": charge_id,
                "invoice_id": _id(charge.get("invoice")),
                "amount": round(amount / 100, 2),
                "failure_code": code,
                "decline_reason": reason,
                "failure_message": charge.get("failure_message"),
            },
            link=dashboard(charge, f"payments/{charge_id}"),
        )

    def _events(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        event = row["data"]
        kind = str(event.get("type") or "")
        data = _dict(event.get("data"))
        sub = _dict(data.get("object"))
        if sub.get("object") != "subscription" or not kind.startswith("customer.subscription."):
            return
        customer = _id(sub.get("customer"))
        when = _ts(event.get("created"))
        if not customer or when is None:
            return
        after_mrr, after_seats = mrr_and_seats(sub)
        if kind == "customer.subscription.created":
            before_mrr, before_seats = 0.0, 0
        elif kind == "customer.subscription.deleted":
            before_mrr, before_seats, after_mrr, after_seats = after_mrr, after_seats, 0.0, 0
        elif kind == "customer.subscription.updated":
            before = _before(sub, _dict(data.get("previous_attributes")))
            if before is None:
                return
            before_mrr, before_seats = before
        else:
            return
        entity = self.customer_key(ctx, customer)
        sub_id = _id(sub.get("id"))
        link = dashboard(sub, f"subscriptions/{sub_id}")
        attrs = {
            "subscription_id": sub_id,
            "mrr_before": round(before_mrr / 100, 2),
            "mrr_after": round(after_mrr / 100, 2),
            "seats_before": before_seats,
            "seats_after": after_seats,
        }
        if kind == "customer.subscription.updated" and (before_mrr, before_seats) != (
            after_mrr,
            after_seats,
        ):
            up = after_mrr > before_mrr or (after_mrr == before_mrr and after_seats > before_seats)
            change = "subscription_upgraded" if up else "subscription_downgraded"
            ctx.event(
                entity,
                change,
                when,
                source_id=event.get("id") or row["id"],
                summary=(
                    f"Subscription {'upgraded' if up else 'downgraded'}: {before_seats} → {after_seats} seats "
                    f"({money(before_mrr)} → {money(after_mrr)}/mo)"
                ),
                attrs=attrs,
                link=link,
            )
        delta = after_mrr - before_mrr
        if abs(delta) >= 0.5:
            sign = "+" if delta > 0 else "−"
            ctx.event(
                entity,
                "mrr_changed",
                when,
                source_id=event.get("id") or row["id"],
                summary=f"MRR {money(before_mrr)} → {money(after_mrr)} ({sign}{money(abs(delta))})",
                attrs={**attrs, "delta": round(delta / 100, 2), "stripe_event": kind},
                link=link,
            )

    # -- per customer and time-dependent ----------------------------------------------------

    def finalize(self, ctx: MappingContext) -> None:
        affected = ctx.affected()
        if affected:
            self._customer_facts(ctx, affected)
        self._past_due(ctx)
        self._cards(ctx)

    def _table(self, ctx: MappingContext, stream: str) -> str | None:
        table = raw_table_name(ctx.connection, stream)
        return table if ctx.store.db[table].exists() else None

    def _customer_facts(self, ctx: MappingContext, customers: set[str]) -> None:
        subs_by_customer: dict[str, list[str]] = {}
        table = self._table(ctx, "subscriptions")
        if table:
            for sub_id, customer in ctx.store.db.execute(
                f"SELECT id, json_extract(data, '$.customer') FROM [{table}] WHERE deleted = 0"
            ):
                if customer in customers:
                    subs_by_customer.setdefault(customer, []).append(sub_id)
        for customer_id in sorted(customers):
            customer = ctx.raw("customers", customer_id)
            if customer is None:
                continue
            subs = [
                s
                for s in (
                    ctx.raw("subscriptions", i) for i in subs_by_customer.get(customer_id, [])
                )
                if s
            ]
            self._facts_for(ctx, customer_id, customer, subs)

    def _facts_for(
        self,
        ctx: MappingContext,
        customer_id: str,
        customer: dict[str, Any],
        subs: list[dict[str, Any]],
    ) -> None:
        entity = self.customer_key(ctx, customer_id)
        settings = _dict(customer.get("invoice_settings"))
        method = _id(settings.get("default_payment_method")) or _id(customer.get("default_source"))
        card = _dict(_dict(ctx.raw("payment_methods", method)).get("card")) if method else {}
        expires = ""
        if card.get("exp_year") and card.get("exp_month"):
            expires = f"{int(card['exp_year']):04d}-{int(card['exp_month']):02d}"
        live = [s for s in subs if s.get("status") in ACTIVE]
        totals = [mrr_and_seats(s) for s in live]
        mrr = sum(m for m, _ in totals)
        seats = sum(n for _, n in totals)
        ranked = sorted(
            live, key=lambda s: (mrr_and_seats(s)[0], _num(s.get("created")) or 0), reverse=True
        )
        main = (
            ranked[0]
            if ranked
            else max(subs, key=lambda s: _num(s.get("created")) or 0, default=None)
        )
        renewal = ""
        if main is not None and main in live and not main.get("cancel_at_period_end"):
            end = _ts(period_end(main))
            renewal = end.date().isoformat() if end else ""
        ctx.facts(
            entity,
            mrr=round(mrr / 100, 2),
            seats=seats,
            plan=plan_name(main) if main else "",
            subscription_status=str(main.get("status")) if main else "none",
            renewal_date=renewal,
            has_payment_method=bool(method),
            card_expires=expires,
        )
        paying = mrr > 0 and not customer.get("deleted")
        since = [
            t
            for t in (_ts(customer.get("created")), _ts(main.get("start_date")) if main else None)
            if t
        ]
        if paying and not method and since:
            ctx.event(
                entity,
                "billing_details_missing",
                max(since),
                source_id=customer_id,
                summary=f"No payment method on file for a paying customer ({money(mrr)}/mo)",
                attrs={
                    "mrr": round(mrr / 100, 2),
                    "collection_method": main.get("collection_method") if main else None,
                },
                link=dashboard(customer, f"customers/{customer_id}"),
            )
        else:
            ctx.retract(f"{SOURCE}:billing_details_missing:{customer_id}")

    def _existing(self, ctx: MappingContext, kind: str) -> set[str]:
        ctx.flush()
        prefix = f"{SOURCE}:{kind}:"
        return {
            r[0]
            for r in ctx.store.db.execute(
                "SELECT id FROM events WHERE id >= ? AND id < ?", [prefix, prefix + "\uffff"]
            )
        }

    def _past_due(self, ctx: MappingContext) -> None:
        """Open (or written-off) invoices past their due date, as of now."""
        existing = self._existing(ctx, "invoice_past_due")
        table = self._table(ctx, "invoices")
        kept: set[str] = set()
        now = ctx.now
        if table:
            rows = ctx.store.db.execute(
                f"SELECT id, data FROM [{table}] WHERE deleted = 0 AND "
                '(data LIKE \'%"status":"open"%\' OR data LIKE \'%"status":"uncollectible"%\')'
            )
            for inv_id, text in rows:
                inv = json.loads(text)
                status = invoice_status(inv)
                customer = _id(inv.get("customer"))
                if status not in ("open", "uncollectible") or not customer:
                    continue
                due = _ts(inv.get("due_date"))
                attempts = int(_num(inv.get("attempt_count")) or 0)
                if due is None:
                    if attempts < 1:
                        continue  # not attempted yet: not due
                    transitions = _dict(inv.get("status_transitions"))
                    due = _ts(transitions.get("finalized_at")) or _ts(inv.get("created"))
                if due is None or due >= now:
                    continue
                amount = _num(inv.get("amount_remaining"))
                if amount is None:
                    amount = (_num(inv.get("amount_due")) or 0.0) - (
                        _num(inv.get("amount_paid")) or 0.0
                    )
                days = int((now - due).total_seconds() // 86400)
                number = inv.get("number") or inv_id
                ctx.event(
                    self.customer_key(ctx, customer),
                    "invoice_past_due",
                    due,
                    source_id=inv_id,
                    summary=(
                        f"Invoice {number} ({money(amount)}) past due for {days} days"
                        + (f" after {attempts} failed attempts" if attempts > 1 else "")
                        + (" (written off)" if status == "uncollectible" else "")
                    ),
                    attrs={
                        "invoice_id": inv_id,
                        "amount": round(amount / 100, 2),
                        "days_overdue": days,
                        "attempt_count": attempts,
                        "status": status,
                        "next_payment_attempt": inv.get("next_payment_attempt"),
                    },
                    link=inv.get("hosted_invoice_url") or dashboard(inv, f"invoices/{inv_id}"),
                )
                kept.add(f"{SOURCE}:invoice_past_due:{inv_id}")
        for event_id in existing - kept:
            ctx.retract(event_id)

    def _cards(self, ctx: MappingContext) -> None:
        """Default cards that expire within ``card_expiring_days`` (or have expired)."""
        existing = self._existing(ctx, "card_expiring")
        table = self._table(ctx, "payment_methods")
        kept: set[str] = set()
        window = ctx.settings.card_expiring_days
        today = ctx.now.date()
        if table:
            horizon = (today + dt.timedelta(days=window)).year
            rows = ctx.store.db.execute(
                f"SELECT id, data FROM [{table}] WHERE deleted = 0 AND "
                "CAST(json_extract(data, '$.card.exp_year') AS INTEGER) <= ?",
                [horizon],
            )
            for pm_id, text in rows:
                pm = json.loads(text)
                card = _dict(pm.get("card"))
                customer = _id(pm.get("customer"))
                try:
                    year, month = int(card["exp_year"]), int(card["exp_month"])
                    last_day = dt.date(
                        year + (month == 12), 1 if month == 12 else month + 1, 1
                    ) - dt.timedelta(days=1)
                except (KeyError, TypeError, ValueError):
                    continue
                days_left = (last_day - today).days
                if not customer or days_left > window:
                    continue
                start = dt.datetime.combine(
                    last_day - dt.timedelta(days=window), dt.time(), dt.timezone.utc
                )
                created = _ts(pm.get("created"))
                when = max(start, created) if created else start
                brand = str(card.get("brand") or "card").title()
                state = (
                    f"expired {-days_left} days ago"
                    if days_left < 0
                    else f"expires in {days_left} days"
                )
                ctx.event(
                    self.customer_key(ctx, customer),
                    "card_expiring",
                    when,
                    source_id=pm_id,
                    summary=f"{brand} •••• {card.get('last4') or '????'} {state} ({month:02d}/{year})",
                    attrs={
                        "exp_month": month,
                        "exp_year": year,
                        "days_left": days_left,
                        "payment_method_id": pm_id,
                    },
                    link=dashboard(pm, f"customers/{customer}"),
                )
                kept.add(f"{SOURCE}:card_expiring:{pm_id}")
        for event_id in existing - kept:
            ctx.retract(event_id)


def _before(sub: dict[str, Any], previous: dict[str, Any]) -> tuple[float, int] | None:
    """MRR and seats before an update, or None when no item, price or quantity changed."""
    if "items" in previous and isinstance(previous["items"], dict):
        return mrr_and_seats({"items": previous["items"]})
    if "quantity" in previous or "plan" in previous:
        # Older shapes: quantity and plan at the top of the subscription.
        legacy = {
            "quantity": previous.get("quantity", sub.get("quantity")),
            "plan": previous.get("plan")
            if isinstance(previous.get("plan"), dict)
            else sub.get("plan"),
        }
        if not isinstance(legacy["plan"], dict):
            legacy["plan"] = _dict(_dict(items_of(sub)[0] if items_of(sub) else {}).get("price"))
        return mrr_and_seats(legacy)
    return None


@hub.hookimpl
def register_mappings(register):
    register(StripeMapping)


__all__ = ["StripeMapping", "mrr_and_seats", "period_end"]
