"""Stripe fake: rendering customers, payment methods, prices and subscriptions."""

from __future__ import annotations

from typing import Any

from hub.sandbox.stripe.constants import DAYS_UNTIL_DUE
from hub.sandbox.stripe.records import _boundary, _Customer, _PaymentMethod, _Subscription
from hub.sandbox.stripe.variety import price_key


class _RenderObjects:
    """Render customers, cards, prices, plans and subscriptions in the requested API version's shapes."""

    # -- rendering ---------------------------------------------------------------------

    def _render(self, kind: str, rec: Any, legacy: bool) -> dict[str, Any]:
        return getattr(self, "_render_" + kind)(rec, legacy)

    def _price(self, plan: str) -> dict[str, Any]:
        price = self._prices[plan]
        amount = price["unit_amount"]
        return {
            "id": price["id"],
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": price["created"],
            "currency": "usd",
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": plan,
            "metadata": {},
            "nickname": price["nickname"],
            "product": price.get("product", self._product),
            "recurring": {
                "interval": price.get("interval", "month"),
                "interval_count": 1,
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            },
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring",
            "unit_amount": amount,
            "unit_amount_decimal": str(amount),
        }

    def _plan(self, plan: str) -> dict[str, Any]:
        price = self._prices[plan]
        amount = price["unit_amount"]
        return {
            "id": price["id"],
            "object": "plan",
            "active": True,
            "amount": amount,
            "amount_decimal": str(amount),
            "billing_scheme": "per_unit",
            "created": price["created"],
            "currency": "usd",
            "interval": price.get("interval", "month"),
            "interval_count": 1,
            "livemode": False,
            "metadata": {},
            "meter": None,
            "nickname": price["nickname"],
            "product": price.get("product", self._product),
            "tiers_mode": None,
            "transform_usage": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }

    def _render_customer(self, c: _Customer, legacy: bool) -> dict[str, Any]:
        return {
            "id": c.id,
            "object": "customer",
            "address": dict(c.address) if c.address else None,
            "balance": 0,
            "created": c.created,
            "currency": "usd",
            "customer_account": None,
            "default_source": None,
            "delinquent": c.delinquent,
            "description": c.description,
            "discount": None,
            "email": c.email,
            "invoice_prefix": c.invoice_prefix,
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": c.default_pm,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": dict(c.metadata),
            "name": c.name,
            "next_invoice_sequence": c.next_seq,
            "phone": c.phone,
            "preferred_locales": list(c.preferred_locales),
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }

    def _render_payment_method(self, pm: _PaymentMethod, legacy: bool) -> dict[str, Any]:
        return {
            "id": pm.id,
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "email": pm.email,
                "name": pm.name,
                "phone": None,
                "tax_id": None,
            },
            "card": self._card(pm, pm.exp_month, pm.exp_year),
            "created": pm.created,
            "customer": pm.customer,
            "customer_account": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
        }

    def _card(self, pm: _PaymentMethod, exp_month: int, exp_year: int) -> dict[str, Any]:
        return {
            "brand": pm.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": pm.country,
            "display_brand": pm.brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": pm.fingerprint,
            "funding": "credit",
            "generated_from": None,
            "last4": pm.last4,
            "networks": {"available": [pm.brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        }

    def _item(
        self,
        s: _Subscription,
        legacy: bool,
        quantity: int,
        period_start: int,
        period_end: int,
        plan: str | None = None,
        addon: int = 0,
    ) -> dict[str, Any]:
        """The subscription's item: its plan (``addon`` 0) or its ``addon``-th add-on, whose
        price key ``plan`` then names."""
        plan = plan or price_key(s.plan, s.months)
        item: dict[str, Any] = {
            "id": "si_" + s.id[4:] + (f"A{addon}" if addon else ""),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": s.created,
            "discounts": [],
            "metadata": {},
            "plan": self._plan(plan),
            "price": self._price(plan),
            "quantity": quantity,
            "subscription": s.id,
            "tax_rates": [],
        }
        if not legacy:
            item["current_period_end"] = period_end
            item["current_period_start"] = period_start
        return item

    def _render_subscription(self, s: _Subscription, legacy: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": s.id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": _boundary(s.anchor, 0),
            "billing_cycle_anchor_config": None,
            "billing_mode": {"type": "classic"},
            "billing_thresholds": None,
            "cancel_at": s.cancel_at,
            "cancel_at_period_end": s.cancel_at_period_end,
            "canceled_at": s.canceled_at,
            "cancellation_details": {
                "comment": s.comment,
                "feedback": s.feedback,
                "reason": s.reason,
            },
            "collection_method": s.collection_method,
            "created": s.created,
            "currency": "usd",
            "customer": s.customer,
            "customer_account": None,
            "days_until_due": DAYS_UNTIL_DUE if s.collection_method == "send_invoice" else None,
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [self._discount_id(s.id)] if s.discount else [],
            "ended_at": s.ended_at,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": self._items(s, legacy, s.quantity, s.period_start, s.period_end),
            "latest_invoice": s.latest_invoice,
            "livemode": False,
            "metadata": {},
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": s.created,
            "status": s.status,
            "test_clock": None,
            "transfer_data": None,
            "trial_end": None,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": None,
        }
        if legacy:
            body["current_period_start"] = s.period_start
            body["current_period_end"] = s.period_end
            body["plan"] = self._plan(price_key(s.plan, s.months))
            body["quantity"] = s.quantity
            body["discount"] = self._discount_object(s)
            del body["billing_mode"], body["customer_account"], body["discounts"]
        return body

    def _items(
        self,
        s: _Subscription,
        legacy: bool,
        quantity: int,
        start: int,
        end: int,
        plan: str | None = None,
        addons: tuple[tuple[str, int], ...] | None = None,
    ) -> dict[str, Any]:
        """The ``items`` list: the plan, then each add-on."""
        data = [self._item(s, legacy, quantity, start, end, plan)]
        for n, (price, count) in enumerate(s.addons if addons is None else addons, start=1):
            data.append(self._item(s, legacy, count, start, end, price, addon=n))
        return {
            "object": "list",
            "data": data,
            "has_more": False,
            "total_count": len(data),
            "url": f"/v1/subscription_items?subscription={s.id}",
        }
