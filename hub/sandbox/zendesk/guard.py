"""Zendesk fake: errors, auth, rate budgets and parameters."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import httpx

from hub.sandbox.base import (
    Fault,
    SlidingWindow,
    json_response,
    text_response,
)
from hub.sandbox.zendesk.records import CLIENT_ERRORS, WINDOW_SECONDS, _BadParam


class _Guard:
    """Errors, authentication, rate budgets and request parameters."""

    # ------------------------------------------------------------------ errors, auth, limits

    def error(
        self, status: int, message: str, description: str | None = None, **extra: Any
    ) -> httpx.Response:
        body: dict[str, Any] = {"error": message}
        if description is not None:
            body["description"] = description
        body.update(extra)
        return json_response(status, body)

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.error(404, "InvalidEndpoint", "Not found")

    def _record_not_found(self) -> httpx.Response:
        return self.error(404, "RecordNotFound", "Not found")

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        from hub.sandbox.world import CREDENTIALS

        creds = CREDENTIALS["zendesk"]
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip()).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if decoded == f"{creds['email']}/token:{creds['api_token']}":
                return self._client_error_fault(request)
        elif (
            scheme.lower() == "bearer"
            and value.strip()
            and value.strip() == creds.get("oauth_token")
        ):
            return self._client_error_fault(request)
        return self.error(401, "Couldn't authenticate you")

    def _client_error_fault(self, request: httpx.Request) -> httpx.Response | None:
        """Injected 4xx faults (the base applies only 429/5xx/timeouts), in Zendesk's shapes."""
        fault = self.faults.take(request, set(CLIENT_ERRORS))
        if fault is None:
            return None
        error, description = CLIENT_ERRORS[fault.kind]
        return self.error(int(fault.kind), error, description)

    def _window(self, name: str, limit: int) -> SlidingWindow:
        span = 60.0 * self.sandbox.time_scale
        window = self._windows.get(name)
        if window is None or window.limit != limit or window.window != span:
            window = self._windows[name] = SlidingWindow(limit, span)
        return window

    def _retry_after(self, wait: float) -> str:
        if self.sandbox.time_scale >= 1:
            return str(max(1, math.ceil(wait)))
        return f"{max(wait, 0.001):.3f}"

    def rate_limit(self, request: httpx.Request, route_name: str) -> httpx.Response | None:
        with self._lock:
            account = self._window("account", self.requests_per_minute)
            if route_name.startswith("incremental"):
                ok, _, wait = self._window("incremental", self.incremental_per_minute).hit()
                if not ok:
                    return self._limited_response(request, wait, self.incremental_per_minute)
            ok, remaining, wait = account.hit()
            if not ok:
                return self._limited_response(request, wait, self.requests_per_minute)
            headers = {
                "x-rate-limit": str(self.requests_per_minute),
                "x-rate-limit-remaining": str(remaining),
            }
            if route_name in (
                "list_ticket_metrics",
                "list_satisfaction_ratings",
                "list_organizations",
            ):
                reset = max(1, math.ceil(account.window))
                headers.update(
                    {
                        "ratelimit-limit": str(self.requests_per_minute),
                        "ratelimit-remaining": str(remaining),
                        "ratelimit-reset": str(reset),
                    }
                )
            self._local.headers = headers
        return None

    def _limited_response(self, request: httpx.Request, wait: float, limit: int) -> httpx.Response:
        self._limited += 1
        # The real API is not consistent about 429 bodies; alternate so clients cope with both.
        response = self.too_many(request, retry_after=None, text=self._limited % 2 == 0)
        response.headers["retry-after"] = self._retry_after(wait)
        response.headers["x-rate-limit"] = str(limit)
        return response

    def too_many(
        self, request: httpx.Request, retry_after: float | None = None, text: bool = False
    ) -> httpx.Response:
        headers = {"x-rate-limit": str(self.requests_per_minute), "x-rate-limit-remaining": "0"}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        if text:
            return text_response(429, "Too Many Requests", headers)
        body = {
            "error": "APIRateLimitExceeded",
            "description": "Number of allowed API requests per minute exceeded",
        }
        return json_response(429, body, headers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self._local.headers = None
        response = super().handle(request)
        extra = getattr(self._local, "headers", None)
        if extra and response.status_code < 400:
            response.headers.update(extra)
        self._local.headers = None
        return response

    # ------------------------------------------------------------------ parameters

    @staticmethod
    def _int_param(request: httpx.Request, name: str, default: int | None = None) -> int | None:
        raw = request.url.params.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise _BadParam(400, "InvalidValue", f"{name} must be an integer") from None

    def _cursor_fault(self, request: httpx.Request) -> httpx.Response | None:
        fault: Fault | None = self.faults.take(request, {"cursor_expired"})
        if fault is None:
            return None
        return self._invalid_cursor()

    def _invalid_cursor(self) -> httpx.Response:
        return self.error(
            422,
            "InvalidCursor",
            "The cursor is invalid or has expired. Restart the export with start_time.",
        )

    def _start_time(self, request: httpx.Request, now: int) -> int:
        start = self._int_param(request, "start_time")
        if start is None:
            raise _BadParam(400, "InvalidValue", "start_time is required (unix seconds)")
        if start > now - WINDOW_SECONDS:
            raise _BadParam(
                400,
                "InvalidValue",
                "Invalid start_time: start_time is too recent. Use a time at least one minute in the past.",
            )
        return max(start, 0)
