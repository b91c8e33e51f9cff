"""The Stripe fake's webhooks: each event it records is delivered as Stripe sends it (the
event object, current API version), and ``fail_payment`` makes a payment fail now.

``StripeAPI._emit`` calls ``send_event`` for every event of a world change (a renewal, a
failed or paid invoice, a cancelled subscription, a hub write); nothing is sent unless a
sender is attached (``hub.sandbox.webhooks.attach_webhooks``).
"""

from __future__ import annotations

from typing import Any

from hub.sandbox.stripe.constants import RETRY_OFFSETS


def send_event(api: Any, event: Any) -> None:
    """Queue ``event`` (a recorded ``_Event``) for delivery, rendered as the API shows it."""
    sender = api.sandbox.webhooks
    if sender is None or not sender.wants(api.name):
        return
    sender.emit(api.name, api._render_event(event, legacy=False), [event.id])


def fail_payment(api: Any, company_key: int, code: str = "card_declined") -> dict[str, Any]:
    """A payment fails now: the company's subscription is invoiced off-cycle for one period,
    finalised and charged, and the card is declined (``invoice.finalized``,
    ``charge.failed``, ``invoice.payment_failed``; the subscription goes past due and a retry
    is scheduled like any other). Returns the invoice as the API renders it."""
    with api._lock:
        sub = api._store["subscription"][api.subscription_id_for(company_key)]
        customer = api._store["customer"][sub.customer]
        if sub.status == "canceled":
            raise ValueError(f"company {company_key}'s subscription is cancelled")
        now = api._now()
        inv = api._new_invoice(sub, now, sub.period_k, now)
        inv.billing_reason = "manual"
        inv.collection_method = "charge_automatically"
        api._emit("invoice.created", now, "invoice", inv)
        inv.status = "open"
        inv.finalized_at = now
        inv.number = api._next_number(customer.id)
        inv.billed_to = (customer.email, customer.name, customer.address)
        api._emit("invoice.finalized", now, "invoice", inv)
        inv.attempt_count += 1
        if customer.default_pm:
            charge = api._new_charge(inv, now, customer.default_pm, code)
            inv.charge = charge.id
        inv.next_attempt = now + RETRY_OFFSETS[0]
        api._schedule(inv.next_attempt, "attempt", inv.id)
        api._emit("invoice.payment_failed", now, "invoice", inv)
        api._past_due(sub, customer, inv, now)
        api._invalidate_encoded()
        return api.get("invoices", inv.id)


def next_healthy(api: Any) -> Any:
    """The first healthy world company with an active subscription, a Stripe customer that
    points at it (``stripe_link`` not ``none``: a client can tell whose payment failed) and
    no failed payment made by ``fail_payment`` yet (None when every one had its turn)."""
    failed = api.__dict__.setdefault("_failed_on_demand", set())
    for company in api.world.companies:
        if company.archetype != "healthy" or company.key in failed:
            continue
        if company.stripe_link == "none":
            continue
        sub_id = api._sub_by_company.get(company.key)
        if sub_id and api._store["subscription"][sub_id].status == "active":
            failed.add(company.key)
            return company
    return None
