"""Stripe fake: lists (filters, cursors, expansions) and single-object retrieval."""

from __future__ import annotations

import bisect
import functools
from typing import Any

import httpx

from hub.sandbox.base import (
    json_response,
)
from hub.sandbox.stripe.constants import (
    _COMMON_LIST_PARAMS,
    _INVOICE_STATUSES,
    _LIST_PARAMS,
    _SHIFT,
    _SUB_STATUSES,
    EVENT_RETENTION,
)
from hub.sandbox.stripe.encoded import list_response, object_response
from hub.sandbox.stripe.lazy import _COMPLETE, _DEFERRED, _NO_EVENTS
from hub.sandbox.stripe.protocol import _ApiError, _missing, _select


class _Lists:
    """List and retrieve endpoints: filters, cursors, ``created`` ranges and expansions."""

    # -- lists -------------------------------------------------------------------------

    def _list(
        self, request: httpx.Request, kind: str, *, customer: str | None = None
    ) -> httpx.Response:
        try:
            return self._list_inner(request, kind, customer)
        except _ApiError as exc:
            return self._fail(exc)

    def _list_inner(
        self, request: httpx.Request, kind: str, forced_customer: str | None
    ) -> httpx.Response:
        params = self._params(request)
        allowed = _COMMON_LIST_PARAMS | _LIST_PARAMS[kind]
        if forced_customer is not None:
            allowed = allowed - {"customer"}
        self._check_allowed(params, allowed)
        limit = 10
        if "limit" in params:
            limit = self._int(params["limit"], "limit")
            if limit < 1:
                raise _ApiError(
                    400,
                    "This value must be greater than or equal to 1.",
                    code="parameter_invalid_integer",
                    param="limit",
                )
            if limit > 100:
                raise _ApiError(
                    400,
                    "This value must be less than or equal to 100.",
                    code="parameter_invalid_integer",
                    param="limit",
                )
        after, before = params.get("starting_after") or None, params.get("ending_before") or None
        if after and before:
            raise _ApiError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        expand = self._expand_list(params)
        for index, path in enumerate(expand):
            if not path.startswith("data."):
                raise _ApiError(
                    400,
                    f"This property cannot be expanded ({path}). You may want to try expanding 'data.{path}' instead.",
                    param=f"expand[{index}]",
                )
            self._check_expand(kind, path[5:], index)
        low, high = self._range(params.get("created"), "created")
        store = self._store[kind]
        now = self._now()
        if kind == "event":
            retention = now - EVENT_RETENTION
            low = retention if low is None else max(low, retention)
        cursor_param = "starting_after" if after else "ending_before" if before else None
        if cursor_param and self.faults.take(request, {"cursor_expired"}):
            raise _missing(kind, after or before, param=cursor_param, status=400)
        cursor_key = None
        if cursor_param:
            cursor_id = after or before
            rec = store.get(cursor_id)
            if rec is None or (kind == "event" and rec.created < now - EVENT_RETENTION):
                raise _missing(kind, cursor_id, param=cursor_param, status=400)
            cursor_key = self._key_of(rec)
        predicate = self._predicate(kind, params)
        customer = forced_customer if forced_customer is not None else params.get("customer")
        if customer is not None and kind != "customer":
            self._materialise_id(customer, _COMPLETE if kind in _DEFERRED else _NO_EVENTS)
            if customer not in self._store["customer"]:
                raise _missing(
                    "customer",
                    customer,
                    param="customer",
                    status=400 if forced_customer is None else 404,
                )
            keys = sorted(self._key_of(store[i]) for i in self._by_customer[kind].get(customer, ()))
        elif kind == "customer" and params.get("email") is not None:
            keys = sorted(self._key_of(store[i]) for i in self._by_email.get(params["email"], ()))
        else:
            keys = self._keys[kind]
        lazy = keys is self._keys[kind]  # across customers: may reach unmaterialised companies
        while True:
            lo = 0 if low is None else bisect.bisect_left(keys, low << _SHIFT)
            hi = len(keys) if high is None else bisect.bisect_left(keys, high << _SHIFT)
            ids, has_more, floor = _select(
                keys, lo, hi, after_key=cursor_key if after else None, before_key=cursor_key if before else None,
                limit=limit, predicate=predicate, store=store, id_of=functools.partial(self._id_of, kind),
            )  # fmt: skip
            if floor is None:
                floor = -1 if low is None else low << _SHIFT
            if not (lazy and self._ensure_listed(kind, floor)):
                break
        legacy = self._legacy()
        url = request.url.path
        if not expand:
            parts = [self._encoded(kind, store[i], legacy) for i in ids]
            return list_response(parts, has_more, url)
        data = [self._out(kind, store[i], [p[5:] for p in expand], legacy) for i in ids]
        return json_response(
            200, {"object": "list", "data": data, "has_more": has_more, "url": url}
        )

    def _predicate(self, kind: str, params: dict[str, Any]) -> Any:
        checks = []
        if kind == "subscription":
            status = params.get("status")
            if status is not None and status not in _SUB_STATUSES:
                raise _ApiError(
                    400,
                    f"Invalid status: must be one of {', '.join(sorted(_SUB_STATUSES))}",
                    param="status",
                )
            if status is None:
                checks.append(lambda r: r.status not in ("canceled", "incomplete_expired"))
            elif status == "ended":
                checks.append(lambda r: r.status in ("canceled", "incomplete_expired"))
            elif status != "all":
                checks.append(lambda r: r.status == status)
            if params.get("collection_method"):
                method = params["collection_method"]
                checks.append(lambda r: r.collection_method == method)
            if params.get("price"):
                price = params["price"]
                plans = {p for p, v in self._prices.items() if v["id"] == price}
                checks.append(lambda r: r.plan in plans)
        elif kind == "invoice":
            status = params.get("status")
            if status is not None:
                if status not in _INVOICE_STATUSES:
                    raise _ApiError(
                        400,
                        f"Invalid status: must be one of {', '.join(sorted(_INVOICE_STATUSES))}",
                        param="status",
                    )
                checks.append(lambda r: r.status == status)
            if params.get("subscription"):
                sub_id = params["subscription"]
                checks.append(lambda r: r.subscription == sub_id)
            if params.get("collection_method"):
                method = params["collection_method"]
                checks.append(lambda r: r.collection_method == method)
            if params.get("due_date") is not None:
                d_lo, d_hi = self._range(params["due_date"], "due_date")
                checks.append(
                    lambda r: (
                        r.due_date is not None
                        and (d_lo is None or r.due_date >= d_lo)
                        and (d_hi is None or r.due_date < d_hi)
                    )
                )
        elif kind == "payment_method":
            pm_type = params.get("type")
            if pm_type is not None and pm_type != "card":
                checks.append(lambda r: False)
        elif kind == "event":
            types: list[str] = []
            if params.get("type"):
                types.append(params["type"])
            raw = params.get("types")
            if raw:
                types.extend(raw if isinstance(raw, list) else [raw])
            if types:
                exact = {t for t in types if not t.endswith("*")}
                prefixes = tuple(t[:-1] for t in types if t.endswith("*"))
                checks.append(
                    lambda r: r.type in exact or (bool(prefixes) and r.type.startswith(prefixes))
                )
        elif kind == "charge" and params.get("payment_intent"):
            intent = params["payment_intent"]
            checks.append(lambda r: bool(r.invoice) and "pi_" + r.invoice[3:] == intent)
        if not checks:
            return None
        if len(checks) == 1:
            return checks[0]
        return lambda r: all(check(r) for check in checks)

    # -- retrieve ----------------------------------------------------------------------

    def _retrieve(self, request: httpx.Request, kind: str, obj_id: str) -> httpx.Response:
        try:
            params = self._params(request)
            self._check_allowed(params, {"expand"})
            expand = self._expand_list(params)
            for index, path in enumerate(expand):
                self._check_expand(kind, path, index)
            rec = self._store[kind].get(obj_id)
            if rec is None or (kind == "event" and rec.created < self._now() - EVENT_RETENTION):
                raise _missing(kind, obj_id)
            if not expand:
                return object_response(self._encoded(kind, rec, self._legacy()))
            return json_response(200, self._out(kind, rec, expand, self._legacy()))
        except _ApiError as exc:
            return self._fail(exc)
