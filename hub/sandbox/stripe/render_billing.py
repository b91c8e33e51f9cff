"""Stripe fake: rendering invoices, charges and events."""

from __future__ import annotations

import copy
from typing import Any

from hub.sandbox.stripe.constants import _DECLINES, HOUR, SHAPE_CHANGE
from hub.sandbox.stripe.records import _MUTABLE, _Charge, _Event, _Invoice, _Subscription
from hub.sandbox.stripe.variety import price_key


class _RenderBilling:
    """Render invoices, charges and events (with ``previous_attributes``) in the requested API version's shapes."""

    def _render_invoice(self, i: _Invoice, legacy: bool) -> dict[str, Any]:
        customer = self._store["customer"].get(i.customer)
        if i.billed_to is not None:
            email, name, address = i.billed_to
        elif customer is not None:
            email, name, address = customer.email, customer.name, customer.address
        else:
            email = name = address = None
        main_price = price_key(i.plan, i.months)
        unit = self._prices[main_price]["unit_amount"]
        subtotal = i.amount_due + i.discount_off
        # Stripe keeps what is owed on a written-off invoice (uncollectible is not paid).
        remaining = (
            i.amount_due - i.amount_paid if i.status in ("open", "draft", "uncollectible") else 0
        )
        finalized = i.finalized_at is not None
        suffix = i.id[3:]
        per = "year" if i.months == 12 else "month"
        discount_id = self._discount_id(i.subscription) if i.coupon else None
        main_amount = i.quantity * unit
        line: dict[str, Any] = {
            "id": f"il_{suffix}",
            "object": "line_item",
            "amount": main_amount,
            "currency": "usd",
            "description": f"{i.quantity} × Lumen {i.plan.capitalize()} (at ${unit / 100:.2f} / {per})",
            "discount_amounts": [{"amount": i.discount_off, "discount": discount_id}]
            if discount_id
            else [],
            "discountable": True,
            "discounts": [discount_id] if discount_id else [],
            "invoice": i.id,
            "livemode": False,
            "metadata": {},
            "parent": {
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": i.subscription,
                    "subscription_item": "si_" + i.subscription[4:],
                },
                "type": "subscription_item_details",
            },
            "period": {"end": i.line_end, "start": i.line_start},
            "pretax_credit_amounts": [],
            "pricing": {
                "price_details": {
                    "price": self._prices[main_price]["id"],
                    "product": self._product,
                },
                "type": "price_details",
                "unit_amount_decimal": str(unit),
            },
            "quantity": i.quantity,
            "subtotal": main_amount,
            "taxes": [],
        }
        lines = [line]
        for n, (price, count) in enumerate(i.addons, start=1):
            spec = self._prices[price]
            extra = copy.deepcopy(line)
            extra.update(
                {
                    "id": f"il_{suffix}A{n}",
                    "amount": count * spec["unit_amount"],
                    "subtotal": count * spec["unit_amount"],
                    "description": f"{count} × {spec['nickname']} (at "
                    f"${spec['unit_amount'] / 100:.2f} / month)",
                    "discount_amounts": [],
                    "discounts": [],
                    "quantity": count,
                }
            )
            extra["parent"]["subscription_item_details"]["subscription_item"] += f"A{n}"
            extra["pricing"]["price_details"] = {
                "price": spec["id"],
                "product": spec.get("product", self._product),
            }
            extra["pricing"]["unit_amount_decimal"] = str(spec["unit_amount"])
            lines.append(extra)
        body: dict[str, Any] = {
            "id": i.id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "Lumen",
            "account_tax_ids": None,
            "amount_due": i.amount_due,
            "amount_overpaid": 0,
            "amount_paid": i.amount_paid,
            "amount_remaining": remaining,
            "amount_shipping": 0,
            "application": None,
            "attempt_count": i.attempt_count,
            "attempted": i.attempt_count > 0,
            "auto_advance": i.status in ("draft", "open"),
            "automatic_tax": {
                "disabled_reason": None,
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "automatically_finalizes_at": i.created + HOUR if i.status == "draft" else None,
            "billing_reason": i.billing_reason,
            "collection_method": i.collection_method,
            "created": i.created,
            "currency": "usd",
            "custom_fields": None,
            "customer": i.customer,
            "customer_account": None,
            "customer_address": dict(address) if address else None,
            "customer_email": email,
            "customer_name": name,
            "customer_phone": None,
            "customer_shipping": None,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [discount_id] if discount_id else [],
            "due_date": i.due_date,
            "effective_at": i.finalized_at,
            "ending_balance": 0 if finalized else None,
            "footer": None,
            "from_invoice": None,
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_{self._tag}/test_{suffix}"
            if finalized
            else None,
            "invoice_pdf": f"https://pay.stripe.com/invoice/acct_{self._tag}/test_{suffix}/pdf"
            if finalized
            else None,
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "total_count": len(lines),
                "url": f"/v1/invoices/{i.id}/lines",
            },
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": i.next_attempt,
            "number": i.number,
            "on_behalf_of": None,
            "parent": {
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": i.subscription},
                "type": "subscription_details",
            },
            "payment_settings": {
                "default_mandate": None,
                "payment_method_options": None,
                "payment_method_types": None,
            },
            "period_end": i.period_end,
            "period_start": i.period_start,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": 0,
            "statement_descriptor": None,
            "status": i.status,
            "status_transitions": {
                "finalized_at": i.finalized_at,
                "marked_uncollectible_at": i.uncollectible_at,
                "paid_at": i.paid_at,
                "voided_at": None,
            },
            "subscription": i.subscription,
            "subtotal": subtotal,
            "subtotal_excluding_tax": subtotal,
            "test_clock": None,
            "total": i.amount_due,
            "total_discount_amounts": [{"amount": i.discount_off, "discount": discount_id}]
            if discount_id
            else [],
            "total_excluding_tax": i.amount_due,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": i.created,
        }
        if legacy:
            for key in (
                "parent",
                "amount_overpaid",
                "automatically_finalizes_at",
                "customer_account",
                "total_pretax_credit_amounts",
                "total_taxes",
            ):
                del body[key]
            body["paid"] = i.status == "paid"
            body["paid_out_of_band"] = i.paid_out_of_band
            body["charge"] = i.charge
            body["payment_intent"] = self._intent_of(i)
            sub = self._store["subscription"].get(i.subscription)
            body["discount"] = self._discount_object(sub) if i.coupon and sub else None
            body["total_tax_amounts"] = []
            body["subscription_details"] = {"metadata": {}}
            prices = [main_price] + [price for price, _ in i.addons]
            for one, price in zip(lines, prices, strict=True):
                item_id = one["parent"]["subscription_item_details"]["subscription_item"]
                for key in ("parent", "pretax_credit_amounts", "pricing", "taxes"):
                    del one[key]
                one.update(
                    {
                        "amount_excluding_tax": one["amount"],
                        "plan": self._plan(price),
                        "price": self._price(price),
                        "proration": False,
                        "proration_details": {"credited_items": None},
                        "subscription": i.subscription,
                        "subscription_item": item_id,
                        "tax_amounts": [],
                        "tax_rates": [],
                        "type": "subscription",
                        "unit_amount_excluding_tax": str(self._prices[price]["unit_amount"]),
                    }
                )
        return body

    def _render_charge(self, c: _Charge, legacy: bool) -> dict[str, Any]:
        pm = self._store["payment_method"].get(c.pm)
        suffix = c.id[3:]
        ok = c.succeeded
        reason, message = _DECLINES.get(c.failure_code or "", (None, None))
        failure_code = "card_declined" if c.failure_code == "insufficient_funds" else c.failure_code
        card = self._card(pm, c.exp_month, c.exp_year) if pm else {}
        details_card = {
            "amount_authorized": c.amount if ok else None,
            "authorization_code": None,
            "brand": card.get("brand"),
            "checks": card.get("checks"),
            "country": card.get("country"),
            "exp_month": c.exp_month,
            "exp_year": c.exp_year,
            "extended_authorization": {"status": "disabled"},
            "fingerprint": card.get("fingerprint"),
            "funding": "credit",
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": card.get("last4"),
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": card.get("brand"),
            "network_token": {"used": False},
            "network_transaction_id": None,
            "overcapture": {"maximum_amount_capturable": c.amount, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": None,
            "wallet": None,
        }
        body: dict[str, Any] = {
            "id": c.id,
            "object": "charge",
            "amount": c.amount,
            "amount_captured": c.amount if ok else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": f"txn_{suffix}" if ok else None,
            "billing_details": {
                "address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "email": pm.email if pm else None,
                "name": pm.name if pm else None,
                "phone": None,
                "tax_id": None,
            },
            "calculated_statement_descriptor": "LUMEN",
            "captured": ok,
            "created": c.created,
            "currency": "usd",
            "customer": c.customer,
            "description": c.description,
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": failure_code,
            "failure_message": message,
            "fraud_details": {},
            "livemode": False,
            "metadata": {},
            "on_behalf_of": None,
            "outcome": {
                "advice_code": None if ok else "try_again_later",
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "approved_by_network" if ok else "declined_by_network",
                "reason": reason,
                "risk_level": "normal",
                "risk_score": 20 + int(suffix[-2:], 16) % 40,
                "seller_message": "Payment complete."
                if ok
                else "The bank did not return any further details with this decline.",
                "type": "authorized" if ok else "issuer_declined",
            },
            "paid": ok,
            "payment_intent": "pi_" + c.invoice[3:] if c.invoice else None,
            "payment_method": c.pm,
            "payment_method_details": {"card": details_card, "type": "card"},
            "receipt_email": None,
            "receipt_number": None,
            "receipt_url": f"https://pay.stripe.com/receipts/payment/{suffix}" if ok else None,
            "refunded": False,
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/charges/{c.id}/refunds",
            },
            "review": None,
            "shipping": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "succeeded" if ok else "failed",
            "transfer_data": None,
            "transfer_group": None,
        }
        if legacy:
            body["invoice"] = c.invoice
        return body

    def _render_event(self, e: _Event, legacy: bool) -> dict[str, Any]:
        rec = self._store[e.kind].get(e.obj_id)
        old_shape = e.api_version < SHAPE_CHANGE
        if rec is not None and e.state:
            rec = copy.copy(rec)
            for name, value in zip(_MUTABLE[e.kind], e.state):
                setattr(rec, name, value)
        data: dict[str, Any] = {
            "object": self._render(e.kind, rec, old_shape) if rec is not None else None
        }
        if e.prev is not None:
            data["previous_attributes"] = self._render_prev(e, rec, old_shape)
        return {
            "id": e.id,
            "object": "event",
            "api_version": e.api_version,
            "context": None,
            "created": e.created,
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": e.request_id, "idempotency_key": e.idempotency_key},
            "type": e.type,
        }

    def _render_prev(self, e: _Event, rec: Any, old_shape: bool) -> dict[str, Any]:
        prev = dict(e.prev or {})
        item = prev.pop("_item", None)
        if item is not None and isinstance(rec, _Subscription):
            quantity = item.get("quantity", rec.quantity)
            start = item.get("period_start", rec.period_start)
            end = item.get("period_end", rec.period_end)
            plan = price_key(item["plan"], rec.months) if "plan" in item else None
            if old_shape:
                if "quantity" in item:
                    prev["quantity"] = quantity
                if plan is not None:
                    prev["plan"] = self._plan(plan)
                if "period_start" in item:
                    prev["current_period_start"] = start
                    prev["current_period_end"] = end
            if not old_shape or {"quantity", "plan", "addons"} & set(item):
                addons = item.get("addons")
                prev["items"] = self._items(rec, old_shape, quantity, start, end, plan, addons)
        if "discounts" in prev and old_shape:
            prev["discount"] = None
            del prev["discounts"]
        return prev
