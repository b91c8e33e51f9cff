"""Stripe fake: auth, versions, rate limits, faults and parameters."""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

import httpx

from hub.sandbox.base import (
    SlidingWindow,
    json_response,
)
from hub.sandbox.stripe.account import INCLUDABLE, KNOWN_VERSIONS
from hub.sandbox.stripe.constants import (
    _CLIENT_FAULTS,
    _DOCS,
    _EXPANDABLE,
    CURRENT_API_VERSION,
    MAX_EXPAND_DEPTH,
    REQUESTS_PER_SECOND,
    SHAPE_CHANGE,
)
from hub.sandbox.stripe.protocol import _ApiError, _mask_key, parse_form
from hub.sandbox.world import CREDENTIALS


class _Protocol:
    """HTTP plumbing: auth, versions, rate limits, injected client errors and parameter parsing."""

    # -- HTTP plumbing -----------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self._request_seq += 1
            request_id = f"req_{self._tag}{self._request_seq:010X}"
        self._local.request_id = request_id
        self._local.version = None
        response = super().handle(request)
        if request.method not in ("GET", "HEAD"):
            self._invalidate_encoded()
        response.headers["Request-Id"] = request_id
        if self._local.version:
            response.headers["Stripe-Version"] = self._local.version
        return response

    def error(self, status: int, message: str, **extra: Any) -> httpx.Response:
        """Stripe's error body; 5xx say ``Stripe-Should-Retry: true`` like Stripe's lock errors."""
        body: dict[str, Any] = {
            "message": message,
            "type": extra.pop("type", "api_error" if status >= 500 else "invalid_request_error"),
        }
        headers = extra.pop("headers", None) or {}
        for key in ("code", "param", "decline_code"):
            value = extra.pop(key, None)
            if value is not None:
                body[key] = value
        if body.get("code"):
            body["doc_url"] = _DOCS + str(body["code"]).replace("_", "-")
        body["request_log_url"] = (
            f"https://dashboard.stripe.com/test/logs/{getattr(self._local, 'request_id', 'req')}"
        )
        if status >= 500:
            headers.setdefault("Stripe-Should-Retry", "true")
        return json_response(status, {"error": body}, headers)

    def _fail(self, exc: _ApiError) -> httpx.Response:
        return self.error(exc.status, exc.message, type=exc.type, code=exc.code, param=exc.param)

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.error(
            404,
            f"Unrecognized request URL ({request.method}: {request.url.path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    def too_many(
        self, request: httpx.Request, retry_after: float | None = None, text: bool = False
    ) -> httpx.Response:
        response = self.error(
            429,
            "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )
        if retry_after is not None:
            response.headers["retry-after"] = str(retry_after)
        return response

    def _api_key(self, request: httpx.Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() or None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip()).decode()
            except (ValueError, UnicodeDecodeError):
                return None
            return decoded.partition(":")[0] or None
        return None

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        key = self._api_key(request)
        if key is None:
            return self.error(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
            )
        if key != CREDENTIALS["stripe"]["api_key"]:
            return self.error(401, f"Invalid API Key provided: {_mask_key(key)}")
        version = request.headers.get("stripe-version")
        if version is not None and version not in KNOWN_VERSIONS:
            return self.error(400, f"Invalid Stripe API version: {version}", param="Stripe-Version")
        self._local.version = version or CURRENT_API_VERSION
        fault = self.faults.take(request, set(_CLIENT_FAULTS))
        if fault is not None:
            status, type_, code, message = _CLIENT_FAULTS[fault.kind]
            headers = {"Stripe-Should-Retry": "true"} if status == 409 else None
            return self.error(
                status, message.format(key=_mask_key(key)), type=type_, code=code, headers=headers
            )
        return None

    def rate_limit(self, request: httpx.Request, route_name: str) -> httpx.Response | None:
        key = self._api_key(request) or ""
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = SlidingWindow(
                    REQUESTS_PER_SECOND, 1.0 * self.sandbox.time_scale
                )
        allowed, _, _ = window.hit()
        return None if allowed else self.too_many(request)

    def _legacy(self) -> bool:
        version = getattr(self._local, "version", None) or CURRENT_API_VERSION
        return version[:10] < SHAPE_CHANGE

    # -- parameters --------------------------------------------------------------------

    def _params(self, request: httpx.Request) -> dict[str, Any]:
        if request.method == "GET":
            items = list(request.url.params.multi_items())
        else:
            items = list(request.url.params.multi_items())
            if request.content:
                items += urllib.parse.parse_qsl(
                    request.content.decode("utf-8", "replace"), keep_blank_values=True
                )
        return parse_form(items)

    @staticmethod
    def _check_allowed(params: dict[str, Any], allowed: set[str]) -> None:
        for name in params:
            if name not in allowed:
                raise _ApiError(
                    400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
                )

    @staticmethod
    def _int(value: Any, param: str) -> int:
        try:
            return int(str(value))
        except ValueError:
            raise _ApiError(
                400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
            ) from None

    def _range(self, value: Any, param: str) -> tuple[int | None, int | None]:
        """``created`` (or another timestamp filter) → inclusive low, exclusive high."""
        if value is None:
            return None, None
        if not isinstance(value, dict):
            exact = self._int(value, param)
            return exact, exact + 1
        low = high = None
        for op, raw in value.items():
            number = self._int(raw, f"{param}[{op}]")
            if op == "gte":
                low = number if low is None else max(low, number)
            elif op == "gt":
                low = number + 1 if low is None else max(low, number + 1)
            elif op == "lte":
                high = number + 1 if high is None else min(high, number + 1)
            elif op == "lt":
                high = number if high is None else min(high, number)
            else:
                raise _ApiError(
                    400,
                    f"Received unknown parameter: {param}[{op}]",
                    code="parameter_unknown",
                    param=f"{param}[{op}]",
                )
        return low, high

    def _expand_list(self, params: dict[str, Any]) -> list[str]:
        raw = params.get("expand")
        if raw is None:
            return []
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise _ApiError(400, "Invalid array", param="expand")
        return raw

    def _check_expand(self, kind: str, path: str, index: int) -> None:
        parts = path.split(".")
        if len(parts) > MAX_EXPAND_DEPTH:
            raise _ApiError(
                400,
                f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. Property: {path}",
                param=f"expand[{index}]",
            )
        if path in INCLUDABLE.get(kind, ()):
            return  # an includable list (``sources``, ``subscriptions``, ``payments``…)
        rest = path
        current = kind
        while rest:
            target = None
            for field_path, target_kind in _EXPANDABLE[current].items():
                if rest == field_path or rest.startswith(field_path + "."):
                    target = (field_path, target_kind)
                    break
            if target is None:
                raise _ApiError(
                    400, f"This property cannot be expanded ({rest}).", param=f"expand[{index}]"
                )
            rest = rest[len(target[0]) + 1 :]
            current = target[1]

    def _apply_expand(self, kind: str, body: dict[str, Any], path: str, legacy: bool) -> None:
        if path in INCLUDABLE.get(kind, ()):
            self._includable(kind, body, path, legacy)
            return
        for field_path, target_kind in _EXPANDABLE[kind].items():
            if path == field_path or path.startswith(field_path + "."):
                parts = field_path.split(".")
                node: Any = body
                for part in parts[:-1]:
                    node = node.get(part) if isinstance(node, dict) else None
                if not isinstance(node, dict):
                    return
                value = node.get(parts[-1])
                if isinstance(value, str):
                    rec = self._store[target_kind].get(value)
                    if rec is None:
                        return
                    value = node[parts[-1]] = self._render(target_kind, rec, legacy)
                rest = path[len(field_path) + 1 :]
                if rest and isinstance(value, dict):
                    self._apply_expand(target_kind, value, rest, legacy)
                return

    def _out(self, kind: str, rec: Any, expand: list[str], legacy: bool) -> dict[str, Any]:
        body = self._render(kind, rec, legacy)
        for path in expand:
            self._apply_expand(kind, body, path, legacy)
        return body
