"""HubSpot fake: rate budgets (burst, search, daily), auth and errors."""

from __future__ import annotations

import email.utils
import json
import uuid
from typing import Any

import httpx

from hub.sandbox.base import (
    json_response,
)
from hub.sandbox.hubspot.common import (
    _AUTH_MESSAGE,
    _CATEGORY,
    _CLIENT_FAULTS,
    _SEARCH_PATH,
    _Reject,
    _Window,
)
from hub.sandbox.hubspot.schema import (
    ALIASES,
    to_ms,
)
from hub.sandbox.hubspot.tokens import fault_scopes, required_scope


class _Guard:
    """Rate budgets, authentication and HubSpot's error shapes."""

    # -- rate budgets ---------------------------------------------------------------------

    @property
    def burst_limit(self) -> int:
        """Requests allowed per 10 s (100 for Free/Starter apps, 190 for Pro/Enterprise)."""
        return self._burst.limit

    @burst_limit.setter
    def burst_limit(self, value: int) -> None:
        self._burst = _Window(int(value), 10.0 * self.sandbox.time_scale)

    def _interval_ms(self) -> int:
        return int(10_000 * self.sandbox.time_scale)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self._tl.remaining = None
        searching = bool(_SEARCH_PATH.search(request.url.path))
        if not searching:
            self._count_daily()
        response = super().handle(request)
        # Like HubSpot's edge, every answer says when it was made (the world clock); clients
        # use it as the server's "now" (the connector bounds a full read's bookmark with it).
        response.headers["Date"] = email.utils.format_datetime(self.world.clock.now(), usegmt=True)
        if not searching:
            # Every non-search answer carries the budget headers, 429s included.
            _, used = self._daily
            remaining = self._tl.remaining
            if remaining is None:
                remaining = (
                    self._burst.remaining() if self.sandbox.enforce_limits else self.burst_limit - 1
                )
            response.headers.update(
                {
                    "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
                    "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - used)),
                    "X-HubSpot-RateLimit-Interval-Milliseconds": str(self._interval_ms()),
                    "X-HubSpot-RateLimit-Max": str(self.burst_limit),
                    "X-HubSpot-RateLimit-Remaining": str(remaining),
                }
            )
        return response

    def _count_daily(self) -> None:
        today = self.world.clock.now().date()
        with self._lock:
            day, used = self._daily
            self._daily = (today, (used if day == today else 0) + 1)

    def rate_limit(self, request: httpx.Request, route_name: str) -> httpx.Response | None:
        if _SEARCH_PATH.search(request.url.path):
            if self._search.limit != self.search_per_second:
                self._search = _Window(self.search_per_second, 1.0 * self.sandbox.time_scale)
            allowed, _, _ = self._search.hit()
            if not allowed:
                return self._rate_body("You have reached your secondly limit.", "SECONDLY")
            return None
        if self._daily[1] > self.daily_limit:
            self._tl.remaining = self._burst.remaining()
            return self._rate_body("You have reached your daily limit.", "DAILY")
        allowed, remaining, _ = self._burst.hit()
        self._tl.remaining = remaining
        if not allowed:
            return self._rate_body(
                "You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING"
            )
        return None

    def _rate_body(self, message: str, policy: str) -> httpx.Response:
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": self._correlation_id(),
            "policyName": policy,
        }
        return json_response(429, body)

    def too_many(
        self, request: httpx.Request, retry_after: float | None = None, text: bool = False
    ) -> httpx.Response:
        if _SEARCH_PATH.search(request.url.path):
            response = self._rate_body("You have reached your secondly limit.", "SECONDLY")
        else:
            response = self._rate_body(
                "You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING"
            )
        if retry_after is not None:
            response.headers["retry-after"] = str(retry_after)
        return response

    # -- auth and errors --------------------------------------------------------------------

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.path.startswith("/oauth/v2/private-apps/"):
            return None  # the token to describe is the body, not a header
        token = self._token_of(request)
        if token is None:
            return self.error(401, _AUTH_MESSAGE, category="INVALID_AUTHENTICATION")
        needed = required_scope(request, self.granular_activity_scopes)
        if needed is not None and needed not in token.scopes:
            return self.missing_scope(needed)
        # Injected client errors (kinds "400", "401", "403", "404", "409") answer here, after
        # the generic faults and before the handler, in HubSpot's shape.
        fault = self.faults.take(request, set(_CLIENT_FAULTS))
        if fault is None:
            return None
        category, message = _CLIENT_FAULTS[fault.kind]
        extra: dict[str, Any] = {}
        if fault.kind == "403":
            scopes = fault_scopes(fault.params) or ["crm.objects.companies.read"]
            extra["errors"] = [
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": scopes},
                }
            ]
        return self.error(
            int(fault.kind), fault.params.get("message") or message, category=category, **extra
        )

    def _correlation_id(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._corr.getrandbits(128), version=4))

    def error(
        self, status: int, message: str, category: str | None = None, **extra: Any
    ) -> httpx.Response:
        """An error in HubSpot's shape: status, message, correlationId, category, errors?, context?"""
        body: dict[str, Any] = {
            "status": "error",
            "message": message,
            "correlationId": self._correlation_id(),
            "category": category or _CATEGORY.get(status, "INTERNAL_ERROR"),
        }
        body.update({k: v for k, v in extra.items() if v is not None})
        return json_response(status, body)

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.error(
            404,
            f"No endpoint matches {request.method} {request.url.path}",
            category="OBJECT_NOT_FOUND",
        )

    def _reject(
        self, status: int, message: str, category: str | None = None, **extra: Any
    ) -> _Reject:
        return _Reject(self.error(status, message, category, **extra))

    def _record_write(self, request: httpx.Request) -> None:
        try:
            body = json.loads(request.content) if request.content else None
        except ValueError:
            body = request.content.decode("utf-8", "replace")
        self.writes.append((request.method, request.url.path, body))

    def _body(self, request: httpx.Request) -> Any:
        if not request.content:
            return {}
        try:
            return json.loads(request.content)
        except ValueError as exc:
            raise self._reject(
                400, f"Invalid input JSON on line 1, column {getattr(exc, 'colno', 1)}: {exc}"
            ) from None

    def _type(self, name: str) -> str:
        t = ALIASES.get(name.lower())
        if t is None:
            raise self._reject(
                400, f"Unable to infer object type from: {name}", category="VALIDATION_ERROR"
            )
        return t

    def _now_ms(self) -> int:
        return to_ms(self.world.clock.now())
