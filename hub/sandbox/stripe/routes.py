"""Stripe fake: the HTTP routes (reads, writes, idempotent POSTs)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from hub.sandbox.base import (
    json_response,
    route,
)
from hub.sandbox.stripe.constants import _CUSTOMER_WRITE_PARAMS, IDEMPOTENCY_TTL
from hub.sandbox.stripe.protocol import _ApiError, _missing
from hub.sandbox.stripe.records import _Customer


class _Routes:
    """The routes: reads, writes and idempotency."""

    # -- routes ------------------------------------------------------------------------

    @route("GET", r"/v1/customers", "list_customers")
    def list_customers(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "customer")

    @route("GET", r"/v1/customers/(?P<obj_id>[^/]+)", "get_customer")
    def get_customer(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "customer", obj_id)

    @route(
        "GET", r"/v1/customers/(?P<obj_id>[^/]+)/payment_methods", "list_customer_payment_methods"
    )
    def list_customer_payment_methods(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._list(request, "payment_method", customer=obj_id)

    @route("GET", r"/v1/payment_methods", "list_payment_methods")
    def list_payment_methods(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "payment_method")

    @route("GET", r"/v1/payment_methods/(?P<obj_id>[^/]+)", "get_payment_method")
    def get_payment_method(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "payment_method", obj_id)

    @route("GET", r"/v1/subscriptions", "list_subscriptions")
    def list_subscriptions(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "subscription")

    @route("GET", r"/v1/subscriptions/(?P<obj_id>[^/]+)", "get_subscription")
    def get_subscription(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "subscription", obj_id)

    @route("GET", r"/v1/invoices", "list_invoices")
    def list_invoices(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "invoice")

    @route("GET", r"/v1/invoices/(?P<obj_id>[^/]+)", "get_invoice")
    def get_invoice(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "invoice", obj_id)

    @route("GET", r"/v1/charges", "list_charges")
    def list_charges(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "charge")

    @route("GET", r"/v1/charges/(?P<obj_id>[^/]+)", "get_charge")
    def get_charge(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "charge", obj_id)

    @route("GET", r"/v1/events", "list_events")
    def list_events(self, request: httpx.Request) -> httpx.Response:
        return self._list(request, "event")

    @route("GET", r"/v1/events/(?P<obj_id>[^/]+)", "get_event")
    def get_event(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        return self._retrieve(request, "event", obj_id)

    @route("POST", r"/v1/customers", "create_customer")
    def create_customer(self, request: httpx.Request) -> httpx.Response:
        try:
            params = self._params(request)
            self._check_allowed(params, _CUSTOMER_WRITE_PARAMS)
            expand = self._customer_expand(params)
        except _ApiError as exc:
            return self._fail(exc)
        return self._idempotent(
            request, params, lambda: self._create_customer(request, params, expand)
        )

    @route("POST", r"/v1/customers/(?P<obj_id>[^/]+)", "update_customer")
    def update_customer(self, request: httpx.Request, obj_id: str) -> httpx.Response:
        try:
            params = self._params(request)
            self._check_allowed(params, _CUSTOMER_WRITE_PARAMS)
            expand = self._customer_expand(params)
        except _ApiError as exc:
            return self._fail(exc)
        return self._idempotent(
            request, params, lambda: self._update_customer(request, obj_id, params, expand)
        )

    def _customer_expand(self, params: dict[str, Any]) -> list[str]:
        expand = self._expand_list(params)
        for index, path in enumerate(expand):
            self._check_expand("customer", path, index)
        for name in ("metadata", "address", "invoice_settings"):
            if name in params and not isinstance(params[name], (dict, str)):
                raise _ApiError(400, f"Invalid object: {name}", param=name)
        return expand

    def _request_ref(self, request: httpx.Request) -> tuple[str | None, str | None]:
        return getattr(self._local, "request_id", None), request.headers.get("idempotency-key")

    def _create_customer(
        self, request: httpx.Request, params: dict[str, Any], expand: list[str]
    ) -> httpx.Response:
        try:
            now = self._now()
            n = len(self.world.companies) + self._counters["cus"] + 1  # after the world's
            customer = _Customer(
                id=self._new_id("cus"),
                created=now,
                email=None,
                name=None,
                metadata={},
                address=None,
                phone=None,
                description=None,
                default_pm=None,
                delinquent=False,
                invoice_prefix=f"{(n * 2654435761) % 0xFFFFFFFF:08X}",
                next_seq=1,
            )
            self._apply_customer_params(customer, params)
            self._add("customer", customer)
            if customer.email:
                self._by_email[customer.email].append(customer.id)
            self._emit(
                "customer.created", now, "customer", customer, request=self._request_ref(request)
            )
            return json_response(200, self._out("customer", customer, expand, self._legacy()))
        except _ApiError as exc:
            return self._fail(exc)

    def _update_customer(
        self, request: httpx.Request, obj_id: str, params: dict[str, Any], expand: list[str]
    ) -> httpx.Response:
        try:
            customer = self._store["customer"].get(obj_id)
            if customer is None:
                raise _missing("customer", obj_id)
            old_email = customer.email
            prev = self._apply_customer_params(customer, params)
            if customer.email != old_email:
                if old_email and obj_id in self._by_email.get(old_email, []):
                    self._by_email[old_email].remove(obj_id)
                if customer.email:
                    self._by_email[customer.email].append(obj_id)
            if prev:
                self._emit(
                    "customer.updated",
                    self._now(),
                    "customer",
                    customer,
                    prev,
                    request=self._request_ref(request),
                )
            return json_response(200, self._out("customer", customer, expand, self._legacy()))
        except _ApiError as exc:
            return self._fail(exc)

    def _apply_customer_params(self, customer: _Customer, params: dict[str, Any]) -> dict[str, Any]:
        """Apply write parameters; returns Stripe's ``previous_attributes`` for what changed."""
        prev: dict[str, Any] = {}
        for name in ("email", "name", "phone", "description"):
            if name in params:
                value = params[name] or None
                if not isinstance(value, (str, type(None))):
                    raise _ApiError(400, f"Invalid string: {name}", param=name)
                if getattr(customer, name) != value:
                    prev[name] = getattr(customer, name)
                    setattr(customer, name, value)
        if "metadata" in params:
            raw = params["metadata"]
            if raw == "":
                new_meta: dict[str, str] = {}
            else:
                new_meta = dict(customer.metadata)
                for key, value in raw.items():
                    if not isinstance(value, str):
                        raise _ApiError(
                            400, f"Invalid string: metadata[{key}]", param=f"metadata[{key}]"
                        )
                    if value == "":
                        new_meta.pop(key, None)
                    else:
                        new_meta[key] = value
            changed = {
                k: customer.metadata.get(k)
                for k in set(customer.metadata) | set(new_meta)
                if customer.metadata.get(k) != new_meta.get(k)
            }
            if changed:
                prev["metadata"] = changed
                customer.metadata = new_meta
        if "address" in params:
            raw = params["address"]
            address = None
            if raw != "":
                address = {
                    k: None for k in ("city", "country", "line1", "line2", "postal_code", "state")
                }
                for key, value in raw.items():
                    if key not in address:
                        raise _ApiError(
                            400,
                            f"Received unknown parameter: address[{key}]",
                            code="parameter_unknown",
                            param=f"address[{key}]",
                        )
                    address[key] = value or None
            if address != customer.address:
                prev["address"] = customer.address
                customer.address = address
        if "invoice_settings" in params:
            raw = params["invoice_settings"] or {}
            for key in raw:
                if key != "default_payment_method":
                    raise _ApiError(
                        400,
                        f"Received unknown parameter: invoice_settings[{key}]",
                        code="parameter_unknown",
                        param=f"invoice_settings[{key}]",
                    )
            if "default_payment_method" in raw:
                pm_id = raw["default_payment_method"] or None
                if pm_id is not None:
                    pm = self._store["payment_method"].get(pm_id)
                    if pm is None or pm.customer != customer.id:
                        raise _missing(
                            "payment_method",
                            pm_id,
                            param="invoice_settings[default_payment_method]",
                            status=400,
                        )
                if pm_id != customer.default_pm:
                    prev["invoice_settings"] = {"default_payment_method": customer.default_pm}
                    customer.default_pm = pm_id
        if "preferred_locales" in params:
            raw = params["preferred_locales"]
            locales = tuple(raw) if isinstance(raw, list) else ()
            if locales != customer.preferred_locales:
                prev["preferred_locales"] = list(customer.preferred_locales)
                customer.preferred_locales = locales
        return prev

    def _idempotent(
        self, request: httpx.Request, params: dict[str, Any], execute: Any
    ) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        if not key:
            return execute()
        if len(key) > 255:
            return self.error(
                400, "Idempotency keys can be at most 255 characters long.", param="Idempotency-Key"
            )
        fingerprint = (request.method, request.url.path, json.dumps(params, sort_keys=True))
        saved = self._idempotency.get(key)
        now = self._now()
        if saved is not None and saved[4] >= now - IDEMPOTENCY_TTL:
            if saved[0] != fingerprint:
                return self.error(
                    400,
                    f"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
            headers = dict(saved[3])
            headers["Idempotent-Replayed"] = "true"
            headers["Idempotency-Key"] = key
            return httpx.Response(saved[1], content=saved[2], headers=headers)
        response = execute()
        headers = {k: v for k, v in response.headers.items() if k.lower() in ("content-type",)}
        self._idempotency[key] = (fingerprint, response.status_code, response.content, headers, now)
        response.headers["Idempotency-Key"] = key
        return response
