"""Zendesk fake: paginated lists and single records."""

from __future__ import annotations

import binascii
import bisect
from typing import Any
from urllib.parse import urlencode

import httpx

from hub.sandbox.base import (
    base_url,
    json_response,
    request_json,
    route,
)
from hub.sandbox.zendesk.records import (
    _PRIORITIES,
    LIST_MAX_PER_PAGE,
    METRIC_BASE,
    OFFSET_RECORD_LIMIT,
    _b64,
    _BadParam,
    _Ticket,
    _unb64,
)
from hub.sandbox.zendesk.webhooks import ticket_events


class _Routes:
    """Paginated lists (cursor and offset) and single-record endpoints."""

    # ------------------------------------------------------------------ paginated lists

    def _list(
        self,
        request: httpx.Request,
        keys: list[Any],
        lo: int,
        hi: int,
        *,
        descending: bool,
        plural: str,
        render: Any,
    ) -> httpx.Response:
        """Cursor (``page[size]``/``page[after]``/``page[before]``) or offset (``page``/
        ``per_page``) pagination over ``keys[lo:hi]`` in ascending or descending order."""
        params = request.url.params
        cbp = any(k in params for k in ("page[size]", "page[after]", "page[before]"))
        try:
            if cbp:
                return self._cursor_page(request, keys, lo, hi, descending, plural, render)
            return self._offset_page(request, keys, lo, hi, descending, plural, render)
        except _BadParam as exc:
            return self.error(exc.status, exc.error, exc.description)

    @staticmethod
    def _encode_key(key: Any) -> str:
        if isinstance(key, tuple):
            return _b64("k:" + ":".join(str(p) for p in key))
        return _b64(f"k:{key}")

    @staticmethod
    def _decode_key(token: str, sample: Any) -> Any:
        try:
            text = _unb64(token)
            if not text.startswith("k:"):
                raise ValueError(text)
            parts = [int(p) for p in text[2:].split(":")]
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _BadParam(
                400, "InvalidPaginationParameter", "page[after]/page[before] is not a valid cursor"
            ) from None
        return tuple(parts) if isinstance(sample, tuple) else parts[0]

    def _cursor_page(
        self,
        request: httpx.Request,
        keys: list[Any],
        lo: int,
        hi: int,
        descending: bool,
        plural: str,
        render: Any,
    ) -> httpx.Response:
        params = request.url.params
        if self.faults.take(request, {"cursor_expired"}) is not None:
            raise _BadParam(
                400,
                "InvalidPaginationParameter",
                "The cursor has expired. Start again without page[after].",
            )
        size = self._int_param(request, "page[size]", LIST_MAX_PER_PAGE) or LIST_MAX_PER_PAGE
        if size < 1 or size > LIST_MAX_PER_PAGE:
            raise _BadParam(
                400,
                "InvalidPaginationParameter",
                f"page[size] must be between 1 and {LIST_MAX_PER_PAGE}",
            )
        sample = keys[0] if keys else 0
        after, before = params.get("page[after]"), params.get("page[before]")
        # Work in "forward" terms: forward = ascending, or descending when ``descending``.
        if after:
            k = self._decode_key(after, sample)
            if descending:
                stop = max(lo, min(bisect.bisect_left(keys, k), hi))
                start = max(lo, stop - size)
                more = start > lo
            else:
                start = min(hi, max(bisect.bisect_right(keys, k), lo))
                stop = min(hi, start + size)
                more = stop < hi
        elif before:
            k = self._decode_key(before, sample)
            if descending:
                start = min(hi, max(bisect.bisect_right(keys, k), lo))
                stop = min(hi, start + size)
                more = stop < hi
            else:
                stop = max(lo, min(bisect.bisect_left(keys, k), hi))
                start = max(lo, stop - size)
                more = start > lo
        else:
            if descending:
                stop, start = hi, max(lo, hi - size)
                more = start > lo
            else:
                start, stop = lo, min(hi, lo + size)
                more = stop < hi
        page = keys[start:stop]
        if descending:
            page = page[::-1]
        after_cursor = self._encode_key(page[-1]) if page else None
        before_cursor = self._encode_key(page[0]) if page else None
        keep = {k: v for k, v in params.items() if k not in ("page[after]", "page[before]")}
        keep.setdefault("page[size]", str(size))

        def link(name: str, token: str | None) -> str | None:
            if token is None:
                return None
            return f"{base_url(request)}{request.url.path}?{urlencode({**keep, name: token})}"

        body = {
            plural: [render(k) for k in page],
            "meta": {
                "has_more": more,
                "after_cursor": after_cursor,
                "before_cursor": before_cursor,
            },
            "links": {
                "next": link("page[after]", after_cursor),
                "prev": link("page[before]", before_cursor),
            },
        }
        return json_response(200, body)

    def _offset_page(
        self,
        request: httpx.Request,
        keys: list[Any],
        lo: int,
        hi: int,
        descending: bool,
        plural: str,
        render: Any,
    ) -> httpx.Response:
        page_no = self._int_param(request, "page", 1) or 1
        per_page = self._int_param(request, "per_page", LIST_MAX_PER_PAGE) or LIST_MAX_PER_PAGE
        if page_no < 1 or per_page < 1:
            raise _BadParam(400, "InvalidPaginationParameter", "page and per_page must be positive")
        per_page = min(per_page, LIST_MAX_PER_PAGE)
        offset = (page_no - 1) * per_page
        if offset >= OFFSET_RECORD_LIMIT:
            raise _BadParam(
                400,
                "InvalidPaginationParameter",
                "Offset pagination is limited to the first 10000 records (100 pages); use cursor pagination (page[size]) instead.",
            )
        total = hi - lo
        if descending:
            stop = max(lo, hi - offset)
            start = max(lo, stop - per_page)
            page = keys[start:stop][::-1]
        else:
            start = min(hi, lo + offset)
            page = keys[start : min(hi, start + per_page)]
        keep = {k: v for k, v in request.url.params.items() if k != "page"}

        def link(number: int) -> str:
            return f"{base_url(request)}{request.url.path}?{urlencode({**keep, 'page': number})}"

        has_next = offset + per_page < total
        body = {
            plural: [render(k) for k in page],
            "next_page": link(page_no + 1) if has_next else None,
            "previous_page": link(page_no - 1) if page_no > 1 else None,
            "count": total,
        }
        return json_response(200, body)

    @route("GET", r"/api/v2/ticket_metrics(?:\.json)?", name="list_ticket_metrics")
    def list_ticket_metrics(self, request: httpx.Request) -> httpx.Response:
        # Ticket ids are 1..N in creation order, so "newest first" is descending ids.
        ids = range(1, len(self.tickets) + 1)
        return self._list(
            request,
            ids,
            0,
            len(ids),
            descending=True,
            plural="ticket_metrics",  # type: ignore[arg-type]
            render=lambda i: self.render_metric(self.tickets[i], request),
        )

    @route("GET", r"/api/v2/satisfaction_ratings(?:\.json)?", name="list_satisfaction_ratings")
    def list_satisfaction_ratings(self, request: httpx.Request) -> httpx.Response:
        try:
            start = self._int_param(request, "start_time")
            end = self._int_param(request, "end_time")
        except _BadParam as exc:
            return self.error(exc.status, exc.error, exc.description)
        score = (request.url.params.get("score") or "").strip()
        keys = self._rating_keys
        if score:
            base_score = score.split("_with")[0]
            if base_score in ("good", "bad"):
                keys = self._rating_keys_by_score[base_score]
            elif base_score != "received":
                keys = []  # offered/unoffered: the fake stores received ratings only
            if score.endswith("_with_comment"):
                keys = [k for k in keys if self.ratings[k[1]].comment]
            elif score.endswith("_without_comment"):
                keys = [k for k in keys if not self.ratings[k[1]].comment]
        lo = bisect.bisect_left(keys, (start,)) if start is not None else 0
        hi = bisect.bisect_left(keys, (end + 1,)) if end is not None else len(keys)
        return self._list(
            request,
            keys,
            lo,
            max(lo, hi),
            descending=False,
            plural="satisfaction_ratings",
            render=lambda k: self.render_rating(self.ratings[k[1]], request),
        )

    @route("GET", r"/api/v2/organizations(?:\.json)?", name="list_organizations")
    def list_organizations(self, request: httpx.Request) -> httpx.Response:
        ids = self._org_ids
        return self._list(
            request,
            ids,
            0,
            len(ids),
            descending=False,
            plural="organizations",
            render=lambda i: self.render_org(self.orgs[i], request),
        )

    # ------------------------------------------------------------------ single records

    @route("GET", r"/api/v2/users/me(?:\.json)?")
    def users_me(self, request: httpx.Request) -> httpx.Response:
        user = self.render_user(self.users[self.admin_id], request)
        user["role"] = self.token_role  # tests may take admin rights away from the token
        return json_response(200, {"user": user})

    @route("GET", r"/api/v2/tickets/(?P<ticket_id>\d+)(?:\.json)?")
    def show_ticket(self, request: httpx.Request, ticket_id: str) -> httpx.Response:
        ticket = self.tickets.get(int(ticket_id))
        if ticket is None:
            return self._record_not_found()
        return json_response(200, {"ticket": self.render_ticket(ticket, request)})

    @route("GET", r"/api/v2/tickets/(?P<ticket_id>\d+)/metrics(?:\.json)?")
    def show_ticket_metrics(self, request: httpx.Request, ticket_id: str) -> httpx.Response:
        ticket = self.tickets.get(int(ticket_id))
        if ticket is None:
            return self._record_not_found()
        return json_response(200, {"ticket_metric": self.render_metric(ticket, request)})

    @route("GET", r"/api/v2/ticket_metrics/(?P<metric_id>\d+)(?:\.json)?")
    def show_metric(self, request: httpx.Request, metric_id: str) -> httpx.Response:
        ticket = self.tickets.get(int(metric_id) - METRIC_BASE)
        if ticket is None:
            return self._record_not_found()
        return json_response(200, {"ticket_metric": self.render_metric(ticket, request)})

    @route("GET", r"/api/v2/satisfaction_ratings/(?P<rating_id>\d+)(?:\.json)?")
    def show_rating(self, request: httpx.Request, rating_id: str) -> httpx.Response:
        rating = self.ratings.get(int(rating_id))
        if rating is None:
            return self._record_not_found()
        return json_response(200, {"satisfaction_rating": self.render_rating(rating, request)})

    @route("GET", r"/api/v2/organizations/(?P<org_id>\d+)(?:\.json)?")
    def show_organization(self, request: httpx.Request, org_id: str) -> httpx.Response:
        org = self.orgs.get(int(org_id))
        if org is None:
            return self._record_not_found()
        return json_response(200, {"organization": self.render_org(org, request)})

    @route("POST", r"/api/v2/tickets(?:\.json)?")
    def create_ticket(self, request: httpx.Request) -> httpx.Response:
        try:
            payload = request_json(request) or {}
        except ValueError:
            return self.error(400, "InvalidJSON", "The request body is not valid JSON")
        data = payload.get("ticket") if isinstance(payload, dict) else None
        details: dict[str, list[dict[str, str]]] = {}
        if not isinstance(data, dict):
            data = {}
            details["ticket"] = [{"description": "Ticket: is required", "error": "BlankValue"}]
        comment = data.get("comment") or {}
        body = comment.get("body") if isinstance(comment, dict) else comment
        if not (body or data.get("description")):
            details["description"] = [
                {"description": "Description: cannot be blank", "error": "BlankValue"}
            ]
        requester = data.get("requester_id") or self.admin_id
        if requester not in self.users:
            details["requester"] = [
                {"description": "Requester: is invalid", "error": "InvalidValue"}
            ]
        priority = data.get("priority") or "normal"
        if priority not in _PRIORITIES:
            details["priority"] = [
                {"description": f"Priority: {priority} is not valid", "error": "InvalidValue"}
            ]
        if details:
            return self.error(422, "RecordInvalid", "Record validation errors", details=details)
        user = self.users[requester]
        org_id = data.get("organization_id") or user.org_id
        org = self.orgs.get(org_id) if org_id else None
        now = self.world.clock.ts()
        t = _Ticket()
        t.id = len(self.tickets) + 1
        t.company_key = org.company_key if org else -1
        t.org_id = org_id
        t.requester_id = requester
        t.assignee_id = data.get("assignee_id")
        t.type = data.get("type") or "question"
        t.subject = data.get("subject") or str(body)[:60]
        t.priority = priority
        t.status = data.get("status") or "new"
        t.tags = list(data.get("tags") or [])
        t.channel = "api"
        t.created = t.updated = t.status_updated = now
        self.tickets[t.id] = t
        if org:
            self._tickets_by_company.setdefault(org.company_key, []).append(t.id)
        if t.status in ("new", "open", "pending"):
            self._open.add(t.id)
        bisect.insort(self._ticket_keys, (t.updated, t.id))
        if self.sandbox.webhooks is not None:
            ticket_events(self, {t.id: (-1, -1)}, now)
        return json_response(201, {"ticket": self.render_ticket(t, request)})
