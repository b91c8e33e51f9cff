"""Stripe mapping: customers, cards, subscriptions, invoices, charges and events → timeline.

Reads the streams of the Stripe connector (``connectors.stripe``), in this order:

- ``customers`` → ``stripe:customer:<id>`` entities: ``metadata.hubspot_company_id`` (the
  ``metadata_key`` setting) is the explicit link, the billing e-mail's domain the fallback
  (identity ignores free-mail).
- ``payment_methods`` (customers' default cards) → the ``card_expires`` fact.
- ``subscriptions`` → ``subscription_started`` (at ``start_date``); cancellations and the
  billing facts are per customer (``mappings.stripe.customers``).
- ``invoices`` → ``invoice_paid``, ``invoice_paid_late``, ``invoice_written_off``; failed
  payments and past due follow Stripe's dunning (``mappings.stripe.billing``).
- ``charges`` and the ``invoice.payment_failed`` events → tie failed attempts to invoices.
- ``events`` (Stripe's log, kept by the connector) → ``subscription_upgraded`` /
  ``subscription_downgraded`` and ``mrr_changed`` from ``customer.subscription.updated``
  ``previous_attributes`` (items, or the older top-level quantity/plan), plus
  ``mrr_changed`` for subscriptions created or deleted. Renewals (period-only updates) are
  not changes. These exist from the connector's first sync minus Stripe's 30 days onward.

Rows mark the customers they touch (``ctx.mark_affected``); ``finalize`` recomputes those
customers' facts, cancellations and failed payments from stored rows, and re-checks the
time-dependent events (past due, card expiring) from the mapping's index of open invoices and
cards (``ctx.index``): never a whole raw table. So incremental mapping, a
rebuild from scratch and a run killed half-way and run again give the same timeline.

Money is in dollars (amounts / 100); MRR normalises yearly/weekly/daily prices to a month.
Event ids are ``stripe:<type>:<object id>`` (log-derived ones use the Stripe event id).
``[timeline.stripe]`` in hub.toml sets ``card_expiring_days`` (default 30),
``late_grace_days`` (default 1) and ``metadata_key`` (default ``hubspot_company_id``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field

import hub
from hub.timeline import Mapping, MappingContext, MappingSettings
from mappings.stripe import billing, customers
from mappings.stripe.billing import customer_key
from mappings.stripe.objects import (
    as_dict,
    before_update,
    dashboard,
    email_domain,
    money,
    mrr_and_seats,
    period_end,
    plan_name,
    ref,
    when,
)
from mappings.stripe.vocabulary import EVENT_TYPES, FACTS, SOURCE_INFO

SOURCE = "stripe"
DEFAULT_CARD_DAYS = 30
DEFAULT_LATE_GRACE_DAYS = 1
DEFAULT_METADATA_KEY = "hubspot_company_id"
FINALIZE_CUSTOMERS = 2000  # customers recomputed together in finalize


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
    # 2: open invoices and default cards indexed for finalize; 3: failed charges and
    # payment-failure notices indexed (dunning reads only those)
    version = 3

    def map_rows(self, ctx: MappingContext, stream: str, rows: Iterable[dict[str, Any]]) -> None:
        handler = getattr(self, "_" + stream)
        for row in rows:
            handler(ctx, row)

    @staticmethod
    def customer_key(ctx: MappingContext, customer_id: str) -> str:
        return customer_key(customer_id)

    @staticmethod
    def _touch(ctx: MappingContext, customer: str | None, *event_ids: str) -> None:
        """Mark the row's customer for ``finalize``; a tombstone that lost its customer field
        is traced through the events it gave before."""
        if customer:
            ctx.mark_affected(customer)
            return
        for event_id in event_ids:
            row = ctx.store.db.execute(
                "SELECT entity FROM events WHERE id = ?", [event_id]
            ).fetchone()
            if row:
                ctx.mark_affected(row[0].split(":", 2)[2])
                return

    # -- streams ----------------------------------------------------------------------------

    def _customers(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        data = row["data"]
        metadata = as_dict(data.get("metadata"))
        explicit = metadata.get(ctx.settings.metadata_key)
        created = when(data.get("created"))
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
        self._touch(ctx, ref(row["data"].get("customer")))
        customers.index_card(ctx, row)

    def _subscriptions(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        sub, sub_id = row["data"], row["id"]
        customer = ref(sub.get("customer"))
        self._touch(ctx, customer, f"{SOURCE}:subscription_started:{sub_id}")
        if row["deleted"] or not customer:
            return
        mrr, seats = mrr_and_seats(sub)
        plan = plan_name(sub)
        started = when(sub.get("start_date")) or when(sub.get("created"))
        if started:
            ctx.event(
                customer_key(customer),
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
                link=dashboard(sub, f"subscriptions/{sub_id}"),
            )

    def _invoices(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        self._touch(ctx, ref(row["data"].get("customer")), f"{SOURCE}:payment_failed:{row['id']}")
        billing.map_invoice(ctx, row)

    def _charges(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        self._touch(ctx, ref(row["data"].get("customer")))
        billing.index_charge(ctx, row)

    def _events(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        event = row["data"]
        kind = str(event.get("type") or "")
        data = as_dict(event.get("data"))
        if kind == "invoice.payment_failed":
            customer = ref(as_dict(data.get("object")).get("customer"))
            self._touch(ctx, customer)
            billing.index_notice(ctx, row, customer)
            return
        if row["deleted"]:
            # A tombstone may have lost its type: it is no notice any more, whatever it was.
            billing.index_notice(ctx, row, None)
            return  # the changes it recorded go with it
        sub = as_dict(data.get("object"))
        if sub.get("object") != "subscription" or not kind.startswith("customer.subscription."):
            return
        customer = ref(sub.get("customer"))
        moment = when(event.get("created"))
        if not customer or moment is None:
            return
        after_mrr, after_seats = mrr_and_seats(sub)
        if kind == "customer.subscription.created":
            before_mrr, before_seats = 0.0, 0
        elif kind == "customer.subscription.deleted":
            before_mrr, before_seats, after_mrr, after_seats = after_mrr, after_seats, 0.0, 0
        elif kind == "customer.subscription.updated":
            before = before_update(sub, as_dict(data.get("previous_attributes")))
            if before is None:
                return
            before_mrr, before_seats = before
        else:
            return
        entity = customer_key(customer)
        sub_id = ref(sub.get("id"))
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
                moment,
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
                moment,
                source_id=event.get("id") or row["id"],
                summary=f"MRR {money(before_mrr)} → {money(after_mrr)} ({sign}{money(abs(delta))})",
                attrs={**attrs, "delta": round(delta / 100, 2), "stripe_event": kind},
                link=link,
            )

    # -- per customer and time-dependent ----------------------------------------------------

    def finalize(self, ctx: MappingContext) -> None:
        # Customers a few thousand at a time: what is read for them (subscriptions, invoices)
        # stays bounded however many changed (a first map changes them all).
        affected = sorted(ctx.affected())
        for start in range(0, len(affected), FINALIZE_CUSTOMERS):
            chunk = set(affected[start : start + FINALIZE_CUSTOMERS])
            customers.customer_state(ctx, chunk)
            billing.payment_failures(ctx, chunk)
        billing.past_due(ctx)
        customers.expiring_cards(ctx)


@hub.hookimpl
def register_mappings(register):
    register(StripeMapping)


__all__ = ["StripeMapping", "StripeSettings", "mrr_and_seats", "period_end"]
