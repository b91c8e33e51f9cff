"""Stripe fake: payment intents and invoice payments (how a charge is tied to its invoice).

Current Stripe (``2025-03-31.basil`` and later) removed ``invoice`` from charges and
``payment_intent``/``charge`` from invoices. Every finalized invoice with an amount gets one
PaymentIntent (``pi_`` + the invoice's id suffix); each automatic attempt is a charge on it
(``charge.payment_intent``). The link back is the InvoicePayment: ``GET /v1/invoice_payments``
filtered by ``invoice`` or ``payment[type]=payment_intent&payment[payment_intent]=pi_…``,
or ``expand[]=payments`` on an invoice. Older API versions still see
``invoice.payment_intent`` and ``charge.invoice``.
"""

from __future__ import annotations

from typing import Any

import httpx

from hub.sandbox.base import json_response, route
from hub.sandbox.stripe.constants import _DECLINES
from hub.sandbox.stripe.protocol import _ApiError, _missing, _select
from hub.sandbox.stripe.records import _Invoice

_IP_PARAMS = {"limit", "starting_after", "ending_before", "invoice", "payment", "status", "expand"}


class _Payments:
    """PaymentIntents and InvoicePayments derived from invoices and their charges."""

    def _intent_of(self, inv: _Invoice) -> str | None:
        if inv.finalized_at is None or inv.amount_due <= 0:
            return None
        return "pi_" + inv.id[3:]

    def _invoice_of_intent(self, intent: str) -> _Invoice | None:
        if not intent.startswith("pi_"):
            return None
        inv = self._store["invoice"].get("in_" + intent[3:])
        return inv if inv is not None and self._intent_of(inv) == intent else None

    def _ip_status(self, inv: _Invoice) -> str:
        if inv.status == "paid":
            return "paid"
        if inv.status == "void":
            return "canceled"
        return "open"

    def _render_invoice_payment(self, inv: _Invoice) -> dict[str, Any]:
        paid = inv.status == "paid"
        return {
            "id": "inpay_" + inv.id[3:],
            "object": "invoice_payment",
            "amount_paid": inv.amount_paid if paid else None,
            "amount_requested": inv.amount_due,
            "created": inv.finalized_at,
            "currency": "usd",
            "invoice": inv.id,
            "is_default": True,
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": self._intent_of(inv)},
            "status": self._ip_status(inv),
            "status_transitions": {
                "canceled_at": None,
                "paid_at": inv.paid_at if paid else None,
            },
        }

    def _invoice_payments_list(self, inv: _Invoice) -> dict[str, Any]:
        data = [self._render_invoice_payment(inv)] if self._intent_of(inv) else []
        return {
            "object": "list",
            "data": data,
            "has_more": False,
            "total_count": len(data),
            "url": f"/v1/invoice_payments?invoice={inv.id}",
        }

    def _render_payment_intent(self, inv: _Invoice) -> dict[str, Any]:
        charge = self._store["charge"].get(inv.charge) if inv.charge else None
        if inv.status == "paid" and not inv.paid_out_of_band:
            status = "succeeded"
        elif inv.status == "void" or inv.paid_out_of_band:
            status = "canceled"
        elif inv.attempt_count == 0:
            status = (
                "requires_confirmation"
                if inv.collection_method == "charge_automatically"
                else "requires_payment_method"
            )
        else:
            status = "requires_payment_method"
        error = None
        if charge is not None and not charge.succeeded and status == "requires_payment_method":
            reason, message = _DECLINES.get(charge.failure_code or "", (None, None))
            code = charge.failure_code
            error = {
                "charge": charge.id,
                "code": "card_declined" if code == "insufficient_funds" else code,
                "decline_code": reason if code in ("insufficient_funds", "card_declined") else None,
                "doc_url": f"https://stripe.com/docs/error-codes/{code}",
                "message": message,
                "payment_method": {"id": charge.pm, "object": "payment_method", "type": "card"},
                "type": "card_error",
            }
        return {
            "id": self._intent_of(inv),
            "object": "payment_intent",
            "amount": inv.amount_due,
            "amount_capturable": 0,
            "amount_received": inv.amount_paid if status == "succeeded" else 0,
            "application": None,
            "automatic_payment_methods": None,
            "canceled_at": inv.paid_at if status == "canceled" else None,
            "cancellation_reason": "void_invoice" if status == "canceled" else None,
            "capture_method": "automatic",
            "client_secret": None,
            "confirmation_method": "automatic",
            "created": inv.finalized_at,
            "currency": "usd",
            "customer": inv.customer,
            "description": "Subscription creation"
            if inv.billing_reason == "subscription_create"
            else "Subscription update",
            "last_payment_error": error,
            "latest_charge": inv.charge,
            "livemode": False,
            "metadata": {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": charge.pm if charge is not None else None,
            "payment_method_types": ["card"],
            "receipt_email": None,
            "setup_future_usage": None,
            "shipping": None,
            "statement_descriptor": None,
            "status": status,
        }

    @route("GET", r"/v1/payment_intents/(?P<obj_id>[^/]+)", "get_payment_intent")
    def get_payment_intent(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        try:
            params = self._params(request)
            self._check_allowed(params, {"expand"})
            inv = self._invoice_of_intent(obj_id)
            if inv is None:
                raise _missing("payment_intent", obj_id, param="intent")
            return json_response(200, self._render_payment_intent(inv))
        except _ApiError as exc:
            return self._fail(exc)

    @route("GET", r"/v1/invoice_payments/(?P<obj_id>[^/]+)", "get_invoice_payment")
    def get_invoice_payment(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        try:
            params = self._params(request)
            self._check_allowed(params, {"expand"})
            inv = (
                self._store["invoice"].get("in_" + obj_id[6:])
                if obj_id.startswith("inpay_")
                else None
            )
            if inv is None or self._intent_of(inv) is None:
                raise _missing("invoice_payment", obj_id)
            return json_response(200, self._render_invoice_payment(inv))
        except _ApiError as exc:
            return self._fail(exc)

    @route("GET", r"/v1/invoice_payments", "list_invoice_payments")
    def list_invoice_payments(self, request: httpx.Request) -> httpx.Response:
        try:
            params = self._params(request)
            self._check_allowed(params, _IP_PARAMS)
            limit = self._int(params["limit"], "limit") if "limit" in params else 10
            if not 1 <= limit <= 100:
                raise _ApiError(400, "limit must be between 1 and 100", param="limit")
            status = params.get("status")
            payment = params.get("payment") or {}
            if not isinstance(payment, dict):
                raise _ApiError(400, "Invalid hash", param="payment")
            invoices = self._store["invoice"]
            single: list[_Invoice] | None = None
            if params.get("invoice"):
                inv = invoices.get(params["invoice"])
                single = [inv] if inv is not None else []
            if payment:
                if payment.get("type") != "payment_intent" or not payment.get("payment_intent"):
                    raise _ApiError(
                        400,
                        "payment[type] must be payment_intent, with payment[payment_intent]",
                        param="payment",
                    )
                inv = self._invoice_of_intent(str(payment["payment_intent"]))
                found = [inv] if inv is not None else []
                single = found if single is None else [i for i in single if i in found]
            url = "/v1/invoice_payments"
            if single is not None:
                data = [
                    self._render_invoice_payment(i)
                    for i in single
                    if self._intent_of(i) and (status is None or self._ip_status(i) == status)
                ]
                return json_response(
                    200, {"object": "list", "data": data, "has_more": False, "url": url}
                )

            def cursor(name: str) -> int | None:
                value = params.get(name)
                if not value:
                    return None
                inv = (
                    invoices.get("in_" + str(value)[6:])
                    if str(value).startswith("inpay_")
                    else None
                )
                if inv is None:
                    raise _missing("invoice_payment", str(value), param=name)
                return self._key_of(inv)

            self._materialise_all()
            keys = self._keys["invoice"]
            ids, has_more, _ = _select(
                keys,
                0,
                len(keys),
                after_key=cursor("starting_after"),
                before_key=cursor("ending_before"),
                limit=limit,
                predicate=lambda i: (
                    self._intent_of(i) is not None
                    and (status is None or self._ip_status(i) == status)
                ),
                store=invoices,
                id_of=lambda key: self._id_of("invoice", key),
            )
            data = [self._render_invoice_payment(invoices[i]) for i in ids]
            return json_response(
                200, {"object": "list", "data": data, "has_more": has_more, "url": url}
            )
        except _ApiError as exc:
            return self._fail(exc)
