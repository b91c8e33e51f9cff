"""Per customer, recomputed from stored rows in ``finalize``: billing facts, cancellations and
churn, missing billing details, expiring cards.

- Facts: ``mrr`` (after the discounts running now, as the MRR history), ``seats``, ``plan``, ``subscription_status``, ``renewal_date`` from the main
  (largest) live subscription, ``active_subscriptions`` (still billing: active, trialing, past
  due, unpaid) and ``churned_at`` (when the last subscription ended, once none is active).
- ``subscription_cancelled`` per cancelled subscription, with ``ends_account``: true when no
  other subscription of the customer continued past this one's end (cancelling an add-on while
  the main subscription continues is a contraction, false).
- ``billing_details_missing`` for a paying customer without a default payment method.
- ``card_expiring`` for default cards within ``card_expiring_days`` of expiry (every run: it
  depends on today).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hub.store import raw_table_name
from hub.timeline import MappingContext
from mappings.stripe.billing import customer_key
from mappings.stripe.objects import (
    ACTIVE,
    as_dict,
    dashboard,
    iso,
    money,
    mrr_after_discounts,
    mrr_and_seats,
    num,
    period_end,
    plan_name,
    ref,
    when,
)

SOURCE = "stripe"


def _table(ctx: MappingContext, stream: str) -> str | None:
    table = raw_table_name(ctx.connection, stream)
    return table if ctx.store.db[table].exists() else None


def subscriptions_by_customer(
    ctx: MappingContext, customers: set[str]
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    table = _table(ctx, "subscriptions")
    if not table:
        return out
    # Every key in one statement (a JSON array): one pass over the table, not one per 500 keys.
    # The customer from the indexed ``ref`` (the document's own field only for rows without
    # one): a ``json_extract`` here would expand and parse every document a second time.
    for stored_ref, text in ctx.store.db.execute(
        f"SELECT ref, data FROM [{table}] WHERE deleted = 0 "
        # The indexed ``ref`` (the customer), or the document's field for rows without one.
        "AND (ref IN (SELECT value FROM json_each(?1)) OR (ref IS NULL AND "
        "json_extract(raw_json(data), '$.customer') IN (SELECT value FROM json_each(?1)))) "
        "ORDER BY id",
        [json.dumps(sorted(customers))],
    ):
        doc = ctx.store.decode_raw(text)
        customer = stored_ref if stored_ref is not None else ref(as_dict(doc).get("customer"))
        out.setdefault(customer, []).append(doc)
    return out


def customer_state(ctx: MappingContext, customers: set[str]) -> None:
    """Facts, cancellations and missing billing details of these customers."""
    subs_of = subscriptions_by_customer(ctx, customers)
    existing = _existing_cancellations(ctx, customers)
    wanted: set[str] = set()
    for customer_id in sorted(customers):
        customer = ctx.raw("customers", customer_id)
        subs = subs_of.get(customer_id, [])
        for sub in subs:
            event_id = _cancellation(ctx, customer_id, sub, subs)
            if event_id:
                wanted.add(event_id)
        if customer is not None:
            _facts(ctx, customer_id, customer, subs)
    for event_id in existing - wanted:
        ctx.retract(event_id)


def _existing_cancellations(ctx: MappingContext, customers: set[str]) -> set[str]:
    # One statement: events of the type through their (type, ts) index, not a scan per chunk.
    return {
        row[0]
        for row in ctx.select_in(
            "SELECT id FROM events WHERE type = 'subscription_cancelled' AND entity IN ({keys})",
            (customer_key(c) for c in customers),
        )
    }


def ends_at(sub: dict[str, Any]) -> dt.datetime | None:
    """When a subscription stops billing: ended, or scheduled to end; None if it continues."""
    ended = when(sub.get("ended_at"))
    if ended or sub.get("status") == "canceled":
        return ended or when(sub.get("canceled_at"))
    if sub.get("cancel_at"):
        return when(sub.get("cancel_at"))
    if sub.get("cancel_at_period_end"):
        return when(period_end(sub))
    return None


def _cancellation(
    ctx: MappingContext, customer_id: str, sub: dict[str, Any], subs: list[dict[str, Any]]
) -> str | None:
    cancelled = when(sub.get("canceled_at"))
    if not cancelled or not (
        sub.get("status") == "canceled" or sub.get("cancel_at_period_end") or sub.get("cancel_at")
    ):
        return None
    sub_id = str(sub.get("id"))
    end = ends_at(sub) or cancelled
    # Another subscription that had started by this one's end and outlives it: a contraction.
    continues = any(
        other is not sub
        and (when(other.get("start_date")) or when(other.get("created")) or end) <= end
        and (ends_at(other) is None or ends_at(other) > end)  # type: ignore[operator]
        for other in subs
    )
    details = as_dict(sub.get("cancellation_details"))
    reason, feedback, comment = (
        details.get("reason"),
        details.get("feedback"),
        details.get("comment"),
    )
    why = str(feedback or reason or "no reason given").replace("_", " ")
    ended = when(sub.get("ended_at")) or when(sub.get("cancel_at"))
    until = "" if sub.get("status") == "canceled" or not ended else f", ends {ended:%Y-%m-%d}"
    mrr, _ = mrr_and_seats(sub)
    scope = "" if continues else "; no other subscription left"
    return ctx.event(
        customer_key(customer_id),
        "subscription_cancelled",
        cancelled,
        source_id=sub_id,
        summary=f"Subscription cancelled ({why}){until}{scope}",
        attrs={
            "subscription_id": sub_id,
            "reason": feedback or reason,
            "stripe_reason": reason,
            "feedback": feedback,
            "comment": comment,
            "ended_at": iso(ended),
            "mrr": round(mrr / 100, 2),
            "plan": plan_name(sub),
            "ends_account": not continues,
        },
        link=dashboard(sub, f"subscriptions/{sub_id}"),
    )


def _facts(
    ctx: MappingContext,
    customer_id: str,
    customer: dict[str, Any],
    subs: list[dict[str, Any]],
) -> None:
    entity = customer_key(customer_id)
    settings = as_dict(customer.get("invoice_settings"))
    method = ref(settings.get("default_payment_method")) or ref(customer.get("default_source"))
    card = as_dict(as_dict(ctx.raw("payment_methods", method)).get("card")) if method else {}
    expires = ""
    if card.get("exp_year") and card.get("exp_month"):
        expires = f"{int(card['exp_year']):04d}-{int(card['exp_month']):02d}"
    live = [s for s in subs if s.get("status") in ACTIVE]
    totals = [mrr_and_seats(s) for s in live]
    now = int(ctx.now.timestamp())
    mrr = sum(mrr_after_discounts(s, now) for s in live)  # as ``stripe_mrr``'s history
    seats = sum(n for _, n in totals)
    ranked = sorted(
        live, key=lambda s: (mrr_and_seats(s)[0], num(s.get("created")) or 0), reverse=True
    )
    main = (
        ranked[0] if ranked else max(subs, key=lambda s: num(s.get("created")) or 0, default=None)
    )
    renewal = ""
    if main is not None and main in live and not main.get("cancel_at_period_end"):
        end = when(period_end(main))
        renewal = end.date().isoformat() if end else ""
    endings = [e for e in (ends_at(s) for s in subs) if e is not None]
    churned = "" if live or not endings else (iso(max(endings)) or "")
    ctx.facts(
        entity,
        mrr=round(mrr / 100, 2),
        seats=seats,
        plan=plan_name(main) if main else "",
        subscription_status=str(main.get("status")) if main else "none",
        renewal_date=renewal,
        active_subscriptions=len(live),
        churned_at=churned,
        has_payment_method=bool(method),
        card_expires=expires,
    )
    paying = mrr > 0 and not customer.get("deleted")
    since = [
        t
        for t in (when(customer.get("created")), when(main.get("start_date")) if main else None)
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


CARDS = "card"
"""The mapping's index of default cards (value: the last day they are valid): what
``expiring_cards`` reads."""


def card_last_day(pm: dict[str, Any]) -> dt.date | None:
    """The last day a card is valid (the end of its expiry month), or None."""
    card = as_dict(pm.get("card"))
    try:
        year, month = int(card["exp_year"]), int(card["exp_month"])
        return dt.date(year + (month == 12), 1 if month == 12 else month + 1, 1) - dt.timedelta(
            days=1
        )
    except (KeyError, TypeError, ValueError):
        return None


def index_card(ctx: MappingContext, row: dict[str, Any]) -> None:
    """Keep a payment method's place in the card index (``expiring_cards`` reads it)."""
    last_day = None if row["deleted"] else card_last_day(row["data"])
    customer = ref(row["data"].get("customer"))
    if last_day is None or not customer:
        ctx.unindex(CARDS, row["id"])
    else:
        ctx.index(CARDS, row["id"], [customer], last_day.isoformat())


def expiring_cards(ctx: MappingContext) -> None:
    """Default cards that expire within ``card_expiring_days`` (or have expired): the cards
    the index says are within the window, never the whole payment-method table."""
    existing = ctx.existing_events(f"{SOURCE}:card_expiring:")
    kept: set[str] = set()
    window = ctx.settings.card_expiring_days
    today = ctx.now.date()
    horizon = (today + dt.timedelta(days=window)).isoformat()
    near = {key for key, _, _ in ctx.indexed(CARDS, upto=horizon)}
    for pm_id, pm in sorted(ctx.raw_many("payment_methods", near).items()):
        event_id = _card_event(ctx, pm_id, pm, window, today)
        if event_id:
            kept.add(event_id)
    for event_id in existing - kept:
        ctx.retract(event_id)


def _card_event(
    ctx: MappingContext, pm_id: str, pm: dict[str, Any], window: int, today: dt.date
) -> str | None:
    card = as_dict(pm.get("card"))
    customer = ref(pm.get("customer"))
    try:
        year, month = int(card["exp_year"]), int(card["exp_month"])
        last_day = dt.date(year + (month == 12), 1 if month == 12 else month + 1, 1) - dt.timedelta(
            days=1
        )
    except (KeyError, TypeError, ValueError):
        return None
    days_left = (last_day - today).days
    if not customer or days_left > window:
        return None
    start = dt.datetime.combine(last_day - dt.timedelta(days=window), dt.time(), dt.timezone.utc)
    created = when(pm.get("created"))
    moment = max(start, created) if created else start
    brand = str(card.get("brand") or "card").title()
    state = f"expired {-days_left} days ago" if days_left < 0 else f"expires in {days_left} days"
    return ctx.event(
        customer_key(customer),
        "card_expiring",
        moment,
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
