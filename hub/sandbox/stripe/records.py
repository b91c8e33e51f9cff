"""Stripe fake: the slotted records (customers, cards, subscriptions, invoices, charges, events) and calendar helpers."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import operator
from dataclasses import dataclass
from typing import Any

from hub.sandbox.stripe.constants import DAY

# -- records (slotted: 100k companies means millions of them) -------------------------------


@dataclass(slots=True)
class _Customer:
    id: str
    created: int
    email: str | None
    name: str | None
    metadata: dict[str, str]  # replaced, never mutated (events share it)
    address: dict[str, Any] | None  # replaced, never mutated
    phone: str | None
    description: str | None
    default_pm: str | None
    delinquent: bool
    invoice_prefix: str
    next_seq: int
    preferred_locales: tuple[str, ...] = ()


@dataclass(slots=True)
class _PaymentMethod:
    id: str
    created: int
    customer: str | None
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    country: str
    name: str | None
    email: str | None


@dataclass(slots=True)
class _Subscription:
    id: str
    customer: str
    company: int
    created: int
    anchor: tuple[int, int, int, int]  # (year, month, day, seconds of day) of the billing anchor
    plan: str
    quantity: int
    collection_method: str
    status: str
    period_k: int  # index of the current period counted from the anchor
    period_start: int
    period_end: int
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    reason: str | None = None
    feedback: str | None = None
    comment: str | None = None
    latest_invoice: str | None = None
    months: int = 1  # billing interval: 1 (monthly) or 12 (yearly)
    addons: tuple[tuple[str, int], ...] = ()  # (add-on price key, quantity): more items
    discount: tuple[str, int, int | None] | None = None  # (coupon id, start, end or None)


@dataclass(slots=True)
class _Invoice:
    id: str
    customer: str
    subscription: str
    created: int
    billing_reason: str
    collection_method: str
    period_start: int  # "usage" period (the previous cycle), as Stripe reports for cycles
    period_end: int
    line_start: int  # the service period billed by the line
    line_end: int
    plan: str
    quantity: int
    amount_due: int
    status: str = "draft"
    attempt_count: int = 0
    amount_paid: int = 0
    finalized_at: int | None = None
    paid_at: int | None = None
    uncollectible_at: int | None = None
    next_attempt: int | None = None
    due_date: int | None = None
    number: str | None = None
    paid_out_of_band: bool = False
    charge: str | None = None
    billed_to: tuple[Any, ...] | None = (
        None  # customer (email, name, address) frozen at finalization
    )
    months: int = 1  # the subscription's billing interval when billed
    addons: tuple[tuple[str, int], ...] = ()  # add-on lines billed with the plan
    coupon: str | None = None  # the coupon that discounted this invoice
    discount_off: int = 0  # cents taken off the subtotal (amount_due is after it)


@dataclass(slots=True)
class _Charge:
    id: str
    customer: str
    created: int
    amount: int
    succeeded: bool
    failure_code: str | None
    pm: str
    exp_month: int
    exp_year: int
    invoice: str
    description: str


@dataclass(slots=True)
class _Event:
    id: str
    type: str
    created: int
    api_version: str
    kind: str
    obj_id: str
    state: tuple[Any, ...]
    prev: dict[str, Any] | None
    request_id: str | None
    idempotency_key: str | None


# The fields of each record that change over time: an event keeps these as a tuple.
_MUTABLE: dict[str, tuple[str, ...]] = {
    "customer": (
        "email",
        "name",
        "metadata",
        "address",
        "phone",
        "description",
        "default_pm",
        "delinquent",
    ),
    "payment_method": ("customer", "exp_month", "exp_year"),
    "subscription": (
        "plan",
        "quantity",
        "status",
        "period_k",
        "period_start",
        "period_end",
        "cancel_at_period_end",
        "cancel_at",
        "canceled_at",
        "ended_at",
        "reason",
        "feedback",
        "comment",
        "latest_invoice",
        "addons",
        "discount",
    ),
    "invoice": (
        "status",
        "attempt_count",
        "amount_paid",
        "finalized_at",
        "paid_at",
        "uncollectible_at",
        "next_attempt",
        "due_date",
        "number",
        "paid_out_of_band",
        "charge",
        "billed_to",
    ),
    "charge": (),
}
_SNAP = {
    kind: (operator.attrgetter(*fields) if len(fields) > 1 else (lambda rec: ()))
    for kind, fields in _MUTABLE.items()
}


# -- calendar helpers ------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _month_info(year: int, month: int) -> tuple[int, int]:
    """(unix seconds of the month's first midnight UTC, days in the month)."""
    return calendar.timegm((year, month, 1, 0, 0, 0)), calendar.monthrange(year, month)[1]


def _anchor_of(ts: int) -> tuple[int, int, int, int]:
    d = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    return d.year, d.month, d.day, d.hour * 3600 + d.minute * 60 + d.second


# (month's first midnight, days in it) by month index (year * 12 + month - 1): a plain dict,
# since a history asks a dozen times per company (``_month_info``'s cache costs more).
_MONTHS: dict[int, tuple[int, int]] = {}


def _boundary(anchor: tuple[int, int, int, int], k: int) -> int:
    """Start of billing period ``k``: the anchor's day in the k-th month (clamped), same time."""
    year, month, day, sod = anchor
    idx = year * 12 + month - 1 + k
    info = _MONTHS.get(idx)
    if info is None:
        info = _MONTHS[idx] = _month_info(idx // 12, idx % 12 + 1)
    start, days = info
    return start + ((day if day < days else days) - 1) * DAY + sod


def _period_index(anchor: tuple[int, int, int, int], ts: int) -> int:
    """The largest k with ``_boundary(anchor, k) <= ts``."""
    k = max(0, int((ts - _boundary(anchor, 0)) // (30.44 * DAY)))
    while _boundary(anchor, k + 1) <= ts:
        k += 1
    while k > 0 and _boundary(anchor, k) > ts:
        k -= 1
    return k


def _ri(rng: Any, low: int, high: int) -> int:
    """``rng.randint`` without its argument checking (seeding calls it millions of times)."""
    return low + int(rng.random() * (high - low + 1))


def _card_expiry(year: int, month: int) -> int:
    """A card is good through the last second of its expiry month."""
    return _month_info(year + month // 12, month % 12 + 1)[0]


def _ym(ts: int) -> tuple[int, int]:
    d = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    return d.year, d.month
