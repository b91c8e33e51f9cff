"""Invoices and dunning: paid, paid late, written off, failed payments per invoice, past due.

Stripe's dunning, as the mapping reads it:

- A ``charge_automatically`` invoice is attempted when it is finalized; a failed attempt with a
  retry scheduled (``next_payment_attempt`` set) is *failing, retrying*: a ``payment_failed``
  event, never "past due". An invoice has **one** ``payment_failed`` event
  (``stripe:payment_failed:<invoice id>``), dated at its first failed attempt, however many
  attempts it takes; its attrs follow the invoice (``attempt_count``, ``retrying``,
  ``next_attempt_at``) and the latest failed charge (``failure_code``).
- Which charges belong to an invoice: the charge's ``invoice`` (before 2025), a payment
  intent or charge id the invoice names (``payment_intent``/``charge`` before 2025,
  ``payments`` after), or the synced ``invoice.payment_failed`` event (by the charge or
  payment intent it names, else by customer and time: Stripe writes the event in the same
  second as the charge). The invoice itself says how many attempts failed, so an invoice
  whose charges cannot be tied to it still gets its event (without a failure code).
- ``invoice_past_due`` is the *current* state, recomputed every run: retries exhausted (an
  attempted, open ``charge_automatically`` invoice with no next attempt), the subscription
  ``unpaid`` or ``past_due`` with no retry scheduled, or a ``send_invoice`` invoice past its
  due date. Dated at the due moment (the due date, or the first attempt), with
  ``days_overdue`` as of now.
- An uncollectible invoice is ``invoice_written_off`` (bad debt) with the amount still owed
  (``amount_remaining``, else due minus paid), not past due.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any

from hub import clock
from hub.timeline import MappingContext
from mappings.stripe.objects import (
    as_dict,
    dashboard,
    invoice_payment_refs,
    invoice_status,
    invoice_subscription,
    iso,
    money,
    num,
    ref,
    when,
)

SOURCE = "stripe"
PAID_TYPES = ("invoice_paid", "invoice_paid_late")
# An invoice.payment_failed event and its charge are written within this many seconds.
SAME_ATTEMPT_S = 120


def customer_key(customer_id: str) -> str:
    return MappingContext.entity_key(SOURCE, "customer", customer_id)


def invoice_link(inv: dict[str, Any], inv_id: str) -> str:
    return inv.get("hosted_invoice_url") or dashboard(inv, f"invoices/{inv_id}")


def amount_owed(inv: dict[str, Any]) -> float:
    """Cents still owed: ``amount_remaining``, else due minus paid (what Stripe keeps)."""
    remaining = num(inv.get("amount_remaining"))
    if remaining:
        return remaining
    return max(0.0, (num(inv.get("amount_due")) or 0.0) - (num(inv.get("amount_paid")) or 0.0))


def due_moment(inv: dict[str, Any]) -> dt.datetime | None:
    """When the invoice was due: its due date, else (charged automatically) its first attempt."""
    return (
        when(inv.get("due_date"))
        or when(as_dict(inv.get("status_transitions")).get("finalized_at"))
        or when(inv.get("created"))
    )


# -- per invoice row: paid, paid late, written off ---------------------------------------------


OPEN = "open_invoice"
"""The mapping's index of open invoices (value: when each was due): what ``past_due`` reads."""


FAILED_CHARGE = "failed_charge"
"""The mapping's index of failed charges under their customer: what dunning reads of charges."""
FAILURE_NOTICE = "failure_notice"
"""Its index of ``invoice.payment_failed`` events under their customer."""


def index_charge(ctx: MappingContext, row: dict[str, Any]) -> None:
    """A failed charge is indexed under its customer (dunning reads only those)."""
    data = as_dict(row["data"])
    customer = ref(data.get("customer"))
    if row["deleted"] or not customer or data.get("status") != "failed":
        ctx.unindex(FAILED_CHARGE, row["id"])
    else:
        ctx.index(FAILED_CHARGE, row["id"], [customer])


def index_notice(ctx: MappingContext, row: dict[str, Any], customer: str | None) -> None:
    """An ``invoice.payment_failed`` event is indexed under its invoice's customer."""
    if row["deleted"] or not customer:
        ctx.unindex(FAILURE_NOTICE, row["id"])
    else:
        ctx.index(FAILURE_NOTICE, row["id"], [customer])


def map_invoice(ctx: MappingContext, row: dict[str, Any]) -> None:
    """Events that follow one invoice's own state (the row owns them)."""
    inv, inv_id = row["data"], row["id"]
    customer = ref(inv.get("customer"))
    if row["deleted"] or not customer:
        ctx.unindex(OPEN, inv_id)
        return
    status = invoice_status(inv)
    if status == "open":
        due = due_moment(inv)
        ctx.index(OPEN, inv_id, [customer], clock.iso(due) if due else "")
    else:
        ctx.unindex(OPEN, inv_id)
    transitions = as_dict(inv.get("status_transitions"))
    entity = customer_key(customer)
    number = inv.get("number") or inv_id
    if status == "uncollectible":
        owed = amount_owed(inv)
        ctx.event(
            entity,
            "invoice_written_off",
            when(transitions.get("marked_uncollectible_at")) or due_moment(inv),
            source_id=inv_id,
            summary=f"Invoice {number} ({money(owed)}) written off as uncollectible",
            attrs={"invoice_id": inv_id, "amount": round(owed / 100, 2)},
            link=invoice_link(inv, inv_id),
        )
        return
    paid_at = when(transitions.get("paid_at"))
    if status != "paid" or paid_at is None:
        return
    amount = num(inv.get("amount_paid")) or 0.0
    due = when(inv.get("due_date"))
    grace = 0.0
    if due is None:
        # Charged automatically: due at the first attempt; a retry that worked is late.
        due = due_moment(inv) or paid_at
        grace = float(ctx.settings.late_grace_days)
    late_days = (paid_at - due).total_seconds() / 86400
    kind = "invoice_paid_late" if late_days > grace else "invoice_paid"
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
        entity,
        kind,
        paid_at,
        source_id=inv_id,
        summary=summary,
        attrs=attrs,
        link=invoice_link(inv, inv_id),
    )


# -- per customer, in finalize: one payment_failed event per invoice ---------------------------


# A row's customer: the indexed ``ref`` the connector stores, or (rows stored before it had
# one) the document's own field.
_CUSTOMER_IN = (
    "(ref IN ({keys}) OR (ref IS NULL AND json_extract(raw_json(data), '%s') IN ({keys})))"
)


def _table(ctx: MappingContext, stream: str) -> str | None:
    from hub.store import raw_table_name

    table = raw_table_name(ctx.connection, stream)
    return table if ctx.store.db[table].exists() else None


# Only the fields dunning reads are kept of each document: whole invoices and events are
# large, and a first map reads every customer's.
_INVOICE_FIELDS = [
    "id",
    "amount_due",
    "attempt_count",
    "charge",
    "collection_method",
    "created",
    "customer",
    "due_date",
    "hosted_invoice_url",
    "livemode",
    "next_payment_attempt",
    "number",
    "paid",
    "payment_intent",
    "payments",
    "status",
    "status_transitions",
]
_CHARGE_FIELDS = [
    "id",
    "created",
    "customer",
    "failure_code",
    "invoice",
    "payment_intent",
    "status",
]
_NOTICE_FIELDS = ["id", "charge", "customer", "payment_intent", "payments"]


def _fields(doc: Any, fields: list[str]) -> dict[str, Any]:
    """The fields dunning reads of a document (absent ones as None)."""
    doc = as_dict(doc)
    return {f: doc.get(f) for f in fields}


def payment_failures(ctx: MappingContext, customers: set[str]) -> None:
    """Recompute the ``payment_failed`` events of these customers from stored rows."""
    if not customers:
        return
    keys = sorted(customers)
    # Whole documents decoded once in Python (orjson), the fields dunning reads kept: cheaper
    # than a json_extract per field in SQL, which parses a large invoice again for each.
    invoices: dict[str, dict[str, Any]] = {}
    table = _table(ctx, "invoices")
    if table:
        for inv_id, data in ctx.select_in(
            f"SELECT id, data FROM [{table}] WHERE deleted = 0 AND " + _CUSTOMER_IN % "$.customer",
            keys,
        ):
            invoices[inv_id] = _fields(ctx.store.decode_raw(data), _INVOICE_FIELDS)
    # Failed charges and payment-failure notices through the mapping's index: a customer's
    # other charges and events are never read (they are most of the Stripe tables). In
    # (created, id) order, so ties between attempts resolve the same way every run.
    charges = sorted(
        (
            _fields(doc, _CHARGE_FIELDS)
            for doc in ctx.raw_many(
                "charges", [key for key, _, _ in ctx.indexed(FAILED_CHARGE, refs=keys)]
            ).values()
            if as_dict(doc).get("status") == "failed"
        ),
        key=lambda c: (num(c.get("created")) or 0, str(c.get("id"))),
    )
    notices: list[dict[str, Any]] = []  # invoice.payment_failed events
    found = ctx.raw_many("events", [key for key, _, _ in ctx.indexed(FAILURE_NOTICE, refs=keys)])
    for _, event in sorted(
        found.items(), key=lambda item: (num(as_dict(item[1]).get("created")) or 0, item[0])
    ):
        event = as_dict(event)
        if event.get("type") != "invoice.payment_failed":
            continue
        obj = as_dict(as_dict(event.get("data")).get("object"))
        notices.append(
            {"created": event.get("created"), "data": {"object": _fields(obj, _NOTICE_FIELDS)}}
        )
    failed_at, codes = _link_failures(invoices, charges, notices)
    wanted: set[str] = set()
    for inv_id, inv in sorted(invoices.items()):
        event_id = _failure_event(ctx, inv_id, inv, failed_at.get(inv_id, []), codes.get(inv_id))
        if event_id:
            wanted.add(event_id)
    existing = {
        row[0]
        for row in ctx.select_in(
            "SELECT id FROM events WHERE type = 'payment_failed' AND entity IN ({keys})",
            [customer_key(c) for c in keys],
        )
    }
    for event_id in existing - wanted:
        ctx.retract(event_id)


def _link_failures(
    invoices: dict[str, dict[str, Any]],
    charges: list[dict[str, Any]],
    notices: list[dict[str, Any]],
) -> tuple[dict[str, list[dt.datetime]], dict[str, str | None]]:
    """Tie failed charges and ``invoice.payment_failed`` events to invoices: the times of
    each invoice's failed attempts, and the failure code of its latest failed charge."""
    by_ref: dict[str, str] = {}
    for inv_id, inv in invoices.items():
        for r in invoice_payment_refs(inv):
            by_ref[r] = inv_id
    failed_at: dict[str, list[dt.datetime]] = defaultdict(list)
    notice_times: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for notice in notices:
        inv = as_dict(as_dict(notice.get("data")).get("object"))
        inv_id, at = ref(inv.get("id")), when(notice.get("created"))
        if not inv_id or inv_id not in invoices or at is None:
            continue
        failed_at[inv_id].append(at)
        for r in invoice_payment_refs(inv):
            by_ref.setdefault(r, inv_id)
        notice_times[str(ref(inv.get("customer")))].append((at, inv_id))
    latest: dict[str, tuple[dt.datetime, str | None]] = {}
    for charge in charges:
        at = when(charge.get("created"))
        if at is None:
            continue
        inv_id = ref(charge.get("invoice"))
        if inv_id not in invoices:
            inv_id = by_ref.get(ref(charge.get("payment_intent")) or "") or by_ref.get(
                ref(charge.get("id")) or ""
            )
        if inv_id is None:
            near = [
                (abs((t - at).total_seconds()), i)
                for t, i in notice_times.get(str(ref(charge.get("customer"))), [])
                if abs((t - at).total_seconds()) <= SAME_ATTEMPT_S
            ]
            inv_id = min(near)[1] if near else None
        if inv_id is None:
            continue  # not an invoice payment
        failed_at[inv_id].append(at)
        if inv_id not in latest or at >= latest[inv_id][0]:
            latest[inv_id] = (at, charge.get("failure_code"))
    return failed_at, {inv_id: code for inv_id, (_, code) in latest.items()}


def _failure_event(
    ctx: MappingContext,
    inv_id: str,
    inv: dict[str, Any],
    times: list[dt.datetime],
    code: str | None,
) -> str | None:
    """The invoice's one ``payment_failed`` event, or None when no attempt failed."""
    customer = ref(inv.get("customer"))
    status = invoice_status(inv)
    attempts = int(num(inv.get("attempt_count")) or 0)
    automatic = (inv.get("collection_method") or "charge_automatically") == "charge_automatically"
    if status == "paid":
        failed = max(attempts - 1, 0)
    elif status in ("open", "uncollectible", "void") and automatic:
        failed = attempts
    else:
        failed = 0
    failed = max(failed, len(set(times)))
    if not customer or failed == 0 or status == "draft":
        return None
    # Every failed attempt tied to a charge or notice: the earliest is the first failure.
    # Otherwise the first attempt failed too (only the last attempt of a paid invoice
    # succeeds), and automatic invoices are first attempted when finalized.
    first = min(times) if len(set(times)) >= failed else due_moment(inv)
    if first is None:
        return None
    retrying = status == "open" and inv.get("next_payment_attempt") is not None
    next_at = when(inv.get("next_payment_attempt")) if retrying else None
    amount = num(inv.get("amount_due")) or 0.0
    number = inv.get("number") or inv_id
    if retrying and next_at:
        state = f"retrying {next_at:%Y-%m-%d}"
    elif status == "paid":
        state = "paid later"
    elif status == "uncollectible":
        state = "written off"
    elif status == "void":
        state = "voided"
    else:
        state = "no retry left"
    tries = f"{failed} failed attempt" + ("s" if failed != 1 else "")
    why = f": {str(code).replace('_', ' ')}" if code else ""
    return ctx.event(
        customer_key(customer),
        "payment_failed",
        first,
        source_id=inv_id,
        summary=f"Payment of invoice {number} ({money(amount)}) failed{why} ({tries}, {state})",
        attrs={
            "invoice_id": inv_id,
            "amount": round(amount / 100, 2),
            "attempt_count": attempts,
            "failed_attempts": failed,
            "retrying": retrying,
            "next_attempt_at": iso(next_at),
            "failure_code": code,
            "last_failed_at": iso(max(times)) if times else iso(first),
            "status": status,
        },
        link=invoice_link(inv, inv_id),
    )


# -- every run, in finalize: which open invoices are past due now -------------------------------


def past_due(ctx: MappingContext) -> None:
    """``invoice_past_due`` for open invoices past due as of ``ctx.now``; retract the rest.

    Reads the open invoices already due (the mapping's index), never the invoices table."""
    existing = ctx.existing_events(f"{SOURCE}:invoice_past_due:")
    kept: set[str] = set()
    due = {key for key, _, _ in ctx.indexed(OPEN, upto=clock.iso(ctx.now))}
    for inv_id, inv in sorted(ctx.raw_many("invoices", due).items()):
        event_id = _past_due_event(ctx, inv_id, inv)
        if event_id:
            kept.add(event_id)
    for event_id in existing - kept:
        ctx.retract(event_id)


def past_due_reason(inv: dict[str, Any], sub_status: str | None, now: dt.datetime) -> str | None:
    """Why an open invoice is past due now, or None (not due yet, or a retry is scheduled)."""
    if (inv.get("collection_method") or "charge_automatically") == "charge_automatically":
        if inv.get("next_payment_attempt") is not None:
            return None  # failing, retrying: not past due
        if sub_status == "unpaid":
            return "unpaid"
        if int(num(inv.get("attempt_count")) or 0) >= 1:
            return "retries_exhausted"
        return "subscription_past_due" if sub_status == "past_due" else None
    due = when(inv.get("due_date"))
    if due is not None and due < now:
        return "due_date_passed"
    if sub_status in ("past_due", "unpaid"):
        return "unpaid" if sub_status == "unpaid" else "subscription_past_due"
    return None


def _past_due_event(ctx: MappingContext, inv_id: str, inv: dict[str, Any]) -> str | None:
    customer = ref(inv.get("customer"))
    if invoice_status(inv) != "open" or not customer:
        return None
    sub_id = invoice_subscription(inv)
    sub = ctx.raw("subscriptions", sub_id) if sub_id else None
    reason = past_due_reason(inv, (sub or {}).get("status"), ctx.now)
    due = due_moment(inv)
    if reason is None or due is None or due > ctx.now:
        return None
    owed = amount_owed(inv)
    days = int((ctx.now - due).total_seconds() // 86400)
    attempts = int(num(inv.get("attempt_count")) or 0)
    number = inv.get("number") or inv_id
    why = {
        "retries_exhausted": f"after {attempts} failed attempts",
        "subscription_past_due": "subscription past due",
        "unpaid": "subscription unpaid",
        "due_date_passed": "due date passed",
    }[reason]
    return ctx.event(
        customer_key(customer),
        "invoice_past_due",
        due,
        source_id=inv_id,
        summary=f"Invoice {number} ({money(owed)}) past due for {days} days ({why})",
        attrs={
            "invoice_id": inv_id,
            "amount": round(owed / 100, 2),
            "days_overdue": days,
            "reason": reason,
            "attempt_count": attempts,
        },
        link=invoice_link(inv, inv_id),
    )
