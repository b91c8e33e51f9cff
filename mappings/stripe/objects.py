"""Reading Stripe objects in either API shape: ids, times, money, subscriptions, invoices.

Events keep the API version they were created in, and the connector may pin an older
version, so every reader here accepts both shapes: periods on the subscription or on its
items, ``invoice.paid`` or ``status`` + ``status_transitions.paid_at``, an invoice's
subscription at the top or under ``parent``, payment intents on the invoice (before 2025) or
under its ``payments``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hub import text

_PER_MONTH = {"day": 365 / 12, "week": 52 / 12, "month": 1.0, "year": 1 / 12}
_MONTH_SECONDS = 365.25 / 12 * 86_400
# Subscription statuses that still bill the customer (a customer with none has churned).
ACTIVE = frozenset({"active", "past_due", "unpaid", "trialing"})


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def ref(value: Any) -> str | None:
    """An object reference: an id string, or an expanded object's id."""
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value not in (None, "") else None


def when(value: Any) -> dt.datetime | None:
    number = num(value)
    if number is None or number <= 0:
        return None
    return dt.datetime.fromtimestamp(number, dt.timezone.utc)


def dollars(cents: Any) -> float | None:
    number = num(cents)
    return round(number / 100, 2) if number is not None else None


def money(cents: float) -> str:
    return text.money(Decimal(str(cents)) / 100)


def email_domain(email: Any) -> str | None:
    text = str(email or "")
    return text.rsplit("@", 1)[1].strip().lower() or None if "@" in text else None


def dashboard(obj: dict[str, Any], path: str) -> str:
    mode = "" if obj.get("livemode") else "test/"
    return f"https://dashboard.stripe.com/{mode}{path}"


def items_of(sub: dict[str, Any]) -> list[dict[str, Any]]:
    data = as_dict(sub.get("items")).get("data")
    return [i for i in data if isinstance(i, dict)] if isinstance(data, list) else []


def monthly_cents(price: dict[str, Any], quantity: float) -> float:
    """A price (or legacy plan) times quantity, per month, in cents."""
    unit = num(price.get("unit_amount"))
    if unit is None:
        unit = num(price.get("unit_amount_decimal")) or num(price.get("amount")) or 0.0
    recurring = as_dict(price.get("recurring")) or price  # a plan carries interval itself
    interval = str(recurring.get("interval") or "month")
    count = num(recurring.get("interval_count")) or 1.0
    return unit * quantity * _PER_MONTH.get(interval, 1.0) / count


def mrr_and_seats(sub: dict[str, Any]) -> tuple[float, int]:
    """(MRR in cents, seats) of a subscription, from its items or its legacy plan/quantity."""
    items = items_of(sub)
    if items:
        mrr = seats = 0.0
        for item in items:
            quantity = num(item.get("quantity"))
            quantity = 1.0 if quantity is None else quantity
            mrr += monthly_cents(as_dict(item.get("price")) or as_dict(item.get("plan")), quantity)
            seats += quantity
        return mrr, int(seats)
    quantity = num(sub.get("quantity"))
    quantity = 1.0 if quantity is None else quantity
    return monthly_cents(as_dict(sub.get("plan")), quantity), int(quantity)


def _interval_months(sub: dict[str, Any]) -> float:
    """Length of the subscription's billing interval in months (an amount_off spreads over it)."""
    for item in items_of(sub) or [sub]:
        price = as_dict(item.get("price")) or as_dict(item.get("plan"))
        recurring = as_dict(price.get("recurring")) or price
        if recurring.get("interval"):
            count = num(recurring.get("interval_count")) or 1.0
            return count / _PER_MONTH.get(str(recurring["interval"]), 1.0)
    return 1.0


def discounts(sub: dict[str, Any]) -> list[tuple[int, int | None, float, float]]:
    """(start, end or None, percent_off, amount_off cents per month) of each discount that
    changes MRR: ``repeating`` (until its ``end``) and ``forever``; a ``once`` coupon takes
    one invoice down and leaves MRR as it was. Discounts not expanded (ids) are unknown."""
    found = []
    raw = list(sub.get("discounts") or [])
    if isinstance(sub.get("discount"), dict):
        raw.append(sub["discount"])
    months = _interval_months(sub)
    for d in raw:
        if not isinstance(d, dict):
            continue  # an unexpanded id: its coupon is unknown
        coupon = as_dict(d.get("coupon")) or as_dict(as_dict(d.get("source")).get("coupon"))
        if not coupon or coupon.get("duration") == "once":
            continue
        start = int(num(d.get("start")) or num(sub.get("start_date")) or 0)
        end = num(d.get("end"))
        if end is None and coupon.get("duration") == "repeating":
            # Stripe sets ``end``; without it, the coupon's months from the start.
            span = num(coupon.get("duration_in_months"))
            end = start + span * _MONTH_SECONDS if span else None
        percent = num(coupon.get("percent_off")) or 0.0
        amount = (num(coupon.get("amount_off")) or 0.0) / months
        if percent or amount:
            found.append((start, int(end) if end else None, percent, amount))
    return found


def discounted(base: float, at: int, active: list[tuple[int, int | None, float, float]]) -> float:
    """MRR (cents) after the discounts running at ``at``: percent off, then amount off."""
    value = base
    for start, end, percent, amount in active:
        if start <= at and (end is None or at < end):
            value = value * (1 - percent / 100) - amount
    return max(0.0, value)


def mrr_after_discounts(sub: dict[str, Any], at: int) -> float:
    """The subscription's MRR (cents) at ``at``: items normalised to a month, less discounts."""
    return discounted(mrr_and_seats(sub)[0], at, discounts(sub))


def period_end(sub: dict[str, Any]) -> Any:
    if sub.get("current_period_end") is not None:
        return sub["current_period_end"]  # before 2025-03-31.basil
    ends = [num(i.get("current_period_end")) for i in items_of(sub)]
    ends = [e for e in ends if e is not None]
    return max(ends) if ends else None


def plan_name(sub: dict[str, Any]) -> str | None:
    for item in items_of(sub) or [sub]:
        price = as_dict(item.get("price")) or as_dict(item.get("plan"))
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
    parent = as_dict(as_dict(inv.get("parent")).get("subscription_details"))
    return ref(parent.get("subscription")) or ref(inv.get("subscription"))


def invoice_payment_refs(inv: dict[str, Any]) -> set[str]:
    """Payment intent and charge ids an invoice names: ``payment_intent``/``charge`` before
    2025, ``payments.data[].payment`` after (when the connector expands it)."""
    refs = {ref(inv.get("payment_intent")), ref(inv.get("charge"))}
    payments = as_dict(inv.get("payments")).get("data")
    for entry in payments if isinstance(payments, list) else []:
        payment = as_dict(as_dict(entry).get("payment"))
        refs |= {ref(payment.get("payment_intent")), ref(payment.get("charge"))}
    return {r for r in refs if r}


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def before_update(sub: dict[str, Any], previous: dict[str, Any]) -> tuple[float, int] | None:
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
            legacy["plan"] = as_dict(
                as_dict(items_of(sub)[0] if items_of(sub) else {}).get("price")
            )
        return mrr_and_seats(legacy)
    return None
