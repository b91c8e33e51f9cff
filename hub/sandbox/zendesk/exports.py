"""Zendesk fake: incremental exports."""

from __future__ import annotations

import binascii
import bisect
from typing import Any
from urllib.parse import urlencode

import httpx

from hub.sandbox.base import (
    base_url,
    json_response,
    route,
)
from hub.sandbox.zendesk.records import (
    EXPORT_MAX_PER_PAGE,
    WINDOW_SECONDS,
    _b64,
    _BadParam,
    _Ticket,
    _unb64,
)


class _Exports:
    """The incremental export endpoints (time-based and cursor-based)."""

    # ------------------------------------------------------------------ incremental exports

    def _cursor_export(
        self, request: httpx.Request, keys: list[tuple[int, int]], plural: str, render: Any
    ) -> httpx.Response:
        try:
            fault = self._cursor_fault(request) if "cursor" in request.url.params else None
            if fault is not None:
                return fault
            now = self.world.clock.ts()
            per_page = (
                self._int_param(request, "per_page", EXPORT_MAX_PER_PAGE) or EXPORT_MAX_PER_PAGE
            )
            if per_page < 1:
                raise _BadParam(400, "InvalidValue", "per_page must be positive")
            per_page = min(per_page, EXPORT_MAX_PER_PAGE)
            hi = bisect.bisect_left(keys, (now - WINDOW_SECONDS,))
            cursor = request.url.params.get("cursor")
            backwards = False
            if cursor:
                try:
                    ts_part, direction, id_part, _ = _unb64(cursor).split("|")
                    pos = (int(float(ts_part)), int(id_part))
                except (ValueError, binascii.Error, UnicodeDecodeError):
                    return self._invalid_cursor()
                backwards = direction == "b"
            else:
                pos = (self._start_time(request, now), 0)
        except _BadParam as exc:
            return self.error(exc.status, exc.error, exc.description)
        if backwards:
            stop = min(bisect.bisect_left(keys, pos), hi)
            first = max(0, stop - per_page)
            page = keys[first:stop]
            end_of_stream = first == 0
        else:
            first = min(bisect.bisect_right(keys, pos), hi)
            stop = min(first + per_page, hi)
            page = keys[first:stop]
            end_of_stream = stop >= hi
        after = _b64(f"{page[-1][0]}.0||{page[-1][1]}|") if page else _b64(f"{pos[0]}.0||{pos[1]}|")
        before = _b64(f"{page[0][0]}.0|b|{page[0][1]}|") if page and first > 0 else None
        extra = {k: v for k, v in request.url.params.items() if k in ("per_page", "include")}
        path = request.url.path

        def link(token: str | None) -> str | None:
            if token is None:
                return None
            return f"{base_url(request)}{path}?{urlencode({'cursor': token, **extra})}"

        store = self.tickets if plural == "tickets" else self.users
        objects = [store[rid] for _, rid in page]
        body: dict[str, Any] = {plural: [render(o, request) for o in objects]}
        body.update(self._sideloads(request, objects if plural == "tickets" else []))
        body.update(
            {
                "after_url": link(after),
                "after_cursor": after,
                "before_url": link(before),
                "before_cursor": before,
                "end_of_stream": end_of_stream,
            }
        )
        return json_response(200, body)

    def _sideloads(self, request: httpx.Request, tickets: list[_Ticket]) -> dict[str, Any]:
        include = {
            p.strip() for p in (request.url.params.get("include") or "").split(",") if p.strip()
        }
        out: dict[str, Any] = {}
        if "metric_sets" in include:
            out["metric_sets"] = [self.render_metric(t, request) for t in tickets]
        if "users" in include:
            ids = sorted({t.requester_id for t in tickets} | {t.assignee_id for t in tickets})
            out["users"] = [
                self.render_user(self.users[i], request) for i in ids if i in self.users
            ]
        if "organizations" in include:
            ids = sorted({t.org_id for t in tickets})
            out["organizations"] = [
                self.render_org(self.orgs[i], request) for i in ids if i in self.orgs
            ]
        return out

    def _time_export(
        self,
        request: httpx.Request,
        keys: list[tuple[int, int]],
        plural: str,
        store: dict[int, Any],
        render: Any,
    ) -> httpx.Response:
        try:
            now = self.world.clock.ts()
            start = self._start_time(request, now)
            per_page = (
                self._int_param(request, "per_page", EXPORT_MAX_PER_PAGE) or EXPORT_MAX_PER_PAGE
            )
            if per_page < 1:
                raise _BadParam(400, "InvalidValue", "per_page must be positive")
            per_page = min(per_page, EXPORT_MAX_PER_PAGE)
        except _BadParam as exc:
            return self.error(exc.status, exc.error, exc.description)
        hi = bisect.bisect_left(keys, (now - WINDOW_SECONDS,))
        first = min(bisect.bisect_left(keys, (start,)), hi)
        stop = min(first + per_page, hi)
        page = keys[first:stop]
        end_time = page[-1][0] if page else start
        if len(page) == per_page and page[0][0] == page[-1][0]:
            # A whole page within one second: starting the next page at that second again
            # would loop forever, so take the rest of that second and move past it.
            stop = min(bisect.bisect_left(keys, (end_time + 1,)), hi)
            page = keys[first:stop]
            end_time += 1
        end_of_stream = len(page) < per_page
        params = {"start_time": end_time}
        if "per_page" in request.url.params:
            params["per_page"] = per_page
        next_page = f"{base_url(request)}{request.url.path}?{urlencode(params)}"
        body = {
            plural: [render(store[rid], request) for _, rid in page],
            "count": len(page),
            "end_time": end_time,
            "next_page": next_page,
            "end_of_stream": end_of_stream,
        }
        return json_response(200, body)

    @route("GET", r"/api/v2/incremental/tickets/cursor(?:\.json)?")
    def incremental_tickets_cursor(self, request: httpx.Request) -> httpx.Response:
        return self._cursor_export(request, self._ticket_keys, "tickets", self.render_ticket)

    @route("GET", r"/api/v2/incremental/users/cursor(?:\.json)?")
    def incremental_users_cursor(self, request: httpx.Request) -> httpx.Response:
        return self._cursor_export(request, self._user_keys, "users", self.render_user)

    @route("GET", r"/api/v2/incremental/tickets(?:\.json)?")
    def incremental_tickets(self, request: httpx.Request) -> httpx.Response:
        return self._time_export(
            request, self._ticket_keys, "tickets", self.tickets, self.render_ticket
        )

    @route("GET", r"/api/v2/incremental/organizations(?:\.json)?")
    def incremental_organizations(self, request: httpx.Request) -> httpx.Response:
        return self._time_export(
            request, self._org_keys, "organizations", self.orgs, self.render_org
        )

    @route("GET", r"/api/v2/incremental/users(?:\.json)?")
    def incremental_users(self, request: httpx.Request) -> httpx.Response:
        return self._time_export(request, self._user_keys, "users", self.users, self.render_user)
