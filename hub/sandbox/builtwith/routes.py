"""BuiltWith fake: routing, auth and endpoints."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import httpx

from hub.sandbox.base import (
    SlidingWindow,
    json_response,
    route,
)
from hub.sandbox.builtwith.catalogue import _DOMAIN, _GUID, MAX_LOOKUP, REQUESTS_PER_SECOND
from hub.sandbox.builtwith.records import _day, _flag, _parse_range, normalise_domain


class _Routes:
    """Routing, authentication and the Domain, WhoAmI and Usage endpoints."""

    # -- routing and auth ---------------------------------------------------------------

    def owns(self, path: str) -> bool:
        match = self._LOOKUP_PATH.match(path)
        if match:
            # /v1/… is Stripe's; BuiltWith's Domain API versions start at 20.
            return int(match.group(1)) >= 20
        return path in ("/whoamiv1/api.json", "/usagev2/api.json")

    def error(
        self, status: int, message: str, code: int | None = None, **extra: Any
    ) -> httpx.Response:
        return json_response(status, self._envelope([], [self._error_item(None, message, code)]))

    def too_many(
        self, request: httpx.Request, retry_after: float | None = None, text: bool = False
    ) -> httpx.Response:
        response = self.error(429, "Rate limit exceeded: slow down and retry later")
        if retry_after is not None:
            response.headers["retry-after"] = str(retry_after)
        return response

    def _key_ok(self, request: httpx.Request) -> bool:
        return request.url.params.get("KEY", "") == self.api_key

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        key = request.url.params.get("KEY", "").strip()
        if key == self.api_key:
            return None
        body = self._envelope(
            [], [self._error_item(None, "API key wrong - it needs to be a Guid", -2)]
        )
        # Not a GUID at all: BuiltWith answers 200 with the error in the body (the CLI notes
        # errors "sometimes" arrive with 200). A well-formed but unknown GUID: 401.
        return json_response(401 if _GUID.match(key) else 200, body)

    def rate_limit(self, request: httpx.Request, route_name: str) -> httpx.Response | None:
        scale = self.sandbox.time_scale
        if self._window is None or self._window_scale != scale:
            self._window = SlidingWindow(REQUESTS_PER_SECOND, 1.0 * scale)
            self._window_scale = scale
        allowed, _remaining, wait = self._window.hit()
        if allowed:
            return None
        return self.too_many(request, retry_after=max(1, math.ceil(wait)))

    def handle(self, request: httpx.Request) -> httpx.Response:
        response = super().handle(request)
        if self._key_ok(request):
            # "where available": only an identified account has a balance to report.
            with self._lock:
                response.headers["X-API-CREDITS-AVAILABLE"] = str(
                    self.credits_used + self.credits_remaining
                )
                response.headers["X-API-CREDITS-USED"] = str(self.credits_used)
                response.headers["X-API-CREDITS-REMAINING"] = str(self.credits_remaining)
        return response

    # -- routes -------------------------------------------------------------------------

    @route("GET", r"/v(?P<version>\d+)/api\.(?P<fmt>json|xml|csv)", name="domain")
    def domain_lookup(self, request: httpx.Request, version: str, fmt: str) -> httpx.Response:
        fault = self.faults.take(request, {"400", "403", "404"})
        if fault:  # client errors the generic kinds do not cover (the standard suite uses 400)
            return self.error(int(fault.kind), f"Injected {fault.kind} error")
        if fmt != "json":
            return self.error(
                200, f"Unsupported return type api.{fmt} in the sandbox: use api.json", -1
            )
        params = request.url.params
        raw = [part for part in params.get("LOOKUP", "").split(",") if part.strip()]
        if not raw:
            return self.error(200, "LOOKUP is required: one domain or up to 16 comma-separated", -8)
        lookups: list[str] = []
        for part in raw:
            domain = normalise_domain(part)
            if domain not in lookups:
                lookups.append(domain)
        if len(lookups) > MAX_LOOKUP:
            return self.error(
                200,
                f"Too many domains in one lookup: {len(lookups)} given, at most {MAX_LOOKUP} per call on this plan",
                -7,
            )
        if self.credits_remaining <= 0:
            return self.error(200, "Out of API credits: purchase more credits to continue", -3)
        options = {
            flag: _flag(params, flag)
            for flag in ("HIDETEXT", "HIDEDL", "LIVEONLY", "NOMETA", "NOPII", "NOATTR")
        }
        fd_range = _parse_range(params.get("FDRANGE"))
        ld_range = _parse_range(params.get("LDRANGE"))
        today = _day(self.world.clock.now())
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for domain in lookups:
            if not _DOMAIN.match(domain):
                errors.append(self._error_item(domain, "Invalid or unsupported root domain", -8))
                continue
            profile = self._profile(domain)
            if profile is None:
                errors.append(
                    self._error_item(
                        domain,
                        "Domain not found in the BuiltWith index: invalid or unsupported root domain",
                        -8,
                    )
                )
                continue
            if self.credits_remaining <= 0:
                errors.append(
                    self._error_item(
                        domain, "Out of API credits: purchase more credits to continue", -3
                    )
                )
                continue
            self.credits_remaining -= 1
            self.credits_used += 1
            results.append(self._render_bytes(profile, today, options, fd_range, ld_range))
        # The envelope {"Results", "Errors", "Trust"} around already encoded results.
        content = (
            b'{"Results":['
            + b",".join(results)
            + b'],"Errors":'
            + json.dumps(errors, separators=(",", ":")).encode()
            + b',"Trust":null}'
        )
        return httpx.Response(
            200, content=content, headers={"content-type": "application/json; charset=utf-8"}
        )

    @route("GET", r"/whoamiv1/api\.json", name="whoami")
    def whoami(self, request: httpx.Request) -> httpx.Response:
        expiry = self.world.start + dt.timedelta(days=365)
        return json_response(
            200,
            {
                "account": {
                    "email": "admin@lumen.example",
                    "plan": "pro",
                    "plan_expiry": expiry.strftime("%Y-%m-%dT00:00:00Z"),
                    "max_batch_size": {"domain_lookup": MAX_LOOKUP, "domain_bulk_submit": 5000},
                },
                "rate_limits": {"requests_per_second": REQUESTS_PER_SECOND, "concurrency": 8},
                "credits": {
                    "purchased": self.credits_used + self.credits_remaining,
                    "used": self.credits_used,
                    "remaining": self.credits_remaining,
                    "costs": {"domain_lookup": 1, "whoami": 0, "usage": 0},
                },
                "privacy": {"pii_allowed": True, "flags_supported": ["NOPII"]},
            },
        )

    @route("GET", r"/usagev2/api\.json", name="usage")
    def usage(self, request: httpx.Request) -> httpx.Response:
        return json_response(
            200,
            {
                "used": self.credits_used,
                "purchased": self.credits_used + self.credits_remaining,
                "remaining": self.credits_remaining,
            },
        )
