"""The Zendesk streams: tickets (with their metric sets), satisfaction ratings, organizations
and users.

Every stream overrides ``pages()`` because Zendesk's exports do not fit the declarative
loop: the ticket export is cursor-based with its own end-of-stream flag, the organization
and user exports are time-based and repeat the boundary second, and satisfaction ratings
take a ``start_time`` filter beside cursor pagination.

Bookmarks:

- ``tickets``: the export's ``after_cursor``, committed with every page. The cursor is a
  position in (updated_at, id) order, so it is safe to move it page by page; a crash resumes
  at the page after the last committed one, and the next run asks only for what changed.
- ``organizations``/``users``: ``{"bookmark": end_time, "seen": [ids updated in that very
  second]}``, also committed per page (the export is ordered by ``updated_at``). The next
  request starts *at* ``end_time``, so the API sends that second's records again; ``seen``
  drops them. The bookmark never moves past now − 60 s: Zendesk does not serve the most
  recent minute and a later write could still land in it.
- ``satisfaction_ratings``: the highest ``created_at`` seen plus that second's ids; the list
  is not documented as ordered, so the bookmark only moves when the run finishes and a
  killed run resumes from the saved ``page[after]`` cursor.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from hub import clock
from hub.connector import Page, Stream, SyncContext
from hub.errors import FatalAPIError
from hub.store import RawRecord

WINDOW_SECONDS = 60  # Zendesk never returns the most recent minute of an export


def unix(value: Any) -> int | None:
    """Unix seconds from Zendesk's ISO timestamps (``None`` if absent or unparseable)."""
    try:
        parsed = clock.parse(value)
    except (TypeError, ValueError):
        return None
    return int(parsed.timestamp()) if parsed else None


def safe_now() -> int:
    """The newest start time an export accepts and the furthest a bookmark may move."""
    return int(clock.now().timestamp()) - WINDOW_SECONDS - 1


def first_start(settings: Any) -> int:
    """Start time of a first export: ``start_date`` or the beginning of the account."""
    start = settings.start_date
    if start is None:
        return 0
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.timezone.utc)
    return max(0, min(int(start.timestamp()), safe_now()))


def body_of(response: Any, what: str) -> dict[str, Any]:
    """The JSON body of a 200, or a clear error when Zendesk sent something else."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise FatalAPIError(
            f"Zendesk {what} answered 200 with a body that is not JSON "
            f"({response.headers.get('content-type', 'no content type')})",
            status=response.status_code,
            hint="check base_url points at https://<subdomain>.zendesk.com",
        ) from None
    if not isinstance(body, dict):
        raise FatalAPIError(
            f"Zendesk {what} answered with an unexpected body", status=response.status_code
        )
    return body


class ZendeskStream(Stream):
    """Base of the Zendesk streams (custom paging; records keep Zendesk's shape)."""

    incremental = "custom"
    primary_key = "id"
    cursor_field = "updated_at"


class TicketsStream(ZendeskStream):
    """Tickets from the cursor-based incremental export, each with its ``metric_set``.

    Ticket metrics come as the ``include=metric_sets`` sideload of the same export and are
    stored inside each ticket as ``metric_set`` rather than read from ``/ticket_metrics``.
    That costs no request at all: a metric set only changes together with its ticket (a
    reply, a solve, a reopen bump the ticket's ``updated_at``), so the export already
    brings every changed one, whereas ``/ticket_metrics`` has no change filter and would
    mean re-listing every ticket's metrics, 100 per request, on every run.
    """

    name = "tickets"
    path = "/api/v2/incremental/tickets/cursor.json"
    records_path = "tickets"

    def to_raw(self, record: dict[str, Any]) -> RawRecord:
        raw = super().to_raw(record)
        raw.deleted = record.get("status") == "deleted"  # the export carries deleted tickets
        return raw

    def pages(self, ctx: SyncContext, state: dict[str, Any] | None) -> Iterator[Page]:
        state = {} if ctx.full_refresh else dict(state or {})
        cursor = state.get("bookmark")
        start = first_start(self.settings)
        while True:
            params: dict[str, Any] = {"per_page": self.settings.per_page, "include": "metric_sets"}
            if cursor:
                params["cursor"] = cursor
            else:
                params["start_time"] = start
            body = body_of(ctx.client.get(self.path, params=params), "ticket export")
            tickets = body.get("tickets") or []
            metrics = {
                m.get("ticket_id"): m for m in body.get("metric_sets") or [] if isinstance(m, dict)
            }
            unique: dict[str, dict[str, Any]] = {}
            for ticket in tickets:
                record = dict(ticket)
                record["metric_set"] = metrics.get(ticket.get("id"))
                unique[self.record_id(record)] = record  # a ticket twice in a page: keep the last
            after = body.get("after_cursor") or cursor
            done = bool(body.get("end_of_stream")) or not tickets
            yield Page([self.to_raw(r) for r in unique.values()], {"bookmark": after}, done=done)
            if done or ctx.stop.is_set():
                return
            if not after or after == cursor:
                raise FatalAPIError(
                    "Zendesk ticket export returned the same cursor twice",
                    hint="the stream stopped to avoid looping; run the sync again",
                )
            cursor = after


class TimeExportStream(ZendeskStream):
    """A time-based incremental export (``start_time`` → ``end_time``/``end_of_stream``)."""

    def pages(self, ctx: SyncContext, state: dict[str, Any] | None) -> Iterator[Page]:
        state = {} if ctx.full_refresh else dict(state or {})
        start = state.get("bookmark")
        seen = set(state.get("seen") or [])
        if start is None:
            start, seen = first_start(self.settings), set()
        if start > safe_now():  # only if the clock went backwards; Zendesk would say 400
            start, seen = safe_now(), set()
        while True:
            params = {"start_time": start, "per_page": self.settings.per_page}
            body = body_of(ctx.client.get(self.path, params=params), f"{self.name} export")
            records = body.get(self.records_path) or []
            unique: dict[str, dict[str, Any]] = {}
            for record in records:
                rid = self.record_id(record)
                updated = unix(record.get(self.cursor_field))
                if rid in seen and updated is not None and updated <= start:
                    continue  # the boundary second again: already stored
                unique[rid] = record
            end_time = body.get("end_time")
            end_time = max(int(end_time), start) if end_time is not None else start
            boundary = {
                rid for rid, r in unique.items() if unix(r.get(self.cursor_field)) == end_time
            }
            if end_time == start:
                boundary |= seen
            if end_time <= safe_now():
                page_state = {"bookmark": end_time, "seen": sorted(boundary)}
            else:  # never bookmark into the last minute; re-reading it later is harmless
                page_state = {"bookmark": safe_now(), "seen": []}
            done = bool(body.get("end_of_stream")) or not records
            yield Page([self.to_raw(r) for r in unique.values()], page_state, done=done)
            if done or ctx.stop.is_set():
                return
            if end_time == start and not unique:
                raise FatalAPIError(
                    f"Zendesk {self.name} export did not move past start_time={start}",
                    hint="lower per_page is no help here; report it to Zendesk support",
                )
            start, seen = end_time, boundary


class OrganizationsStream(TimeExportStream):
    """Organizations (``external_id``, ``domain_names`` link them to accounts)."""

    name = "organizations"
    path = "/api/v2/incremental/organizations.json"
    records_path = "organizations"


class UsersStream(TimeExportStream):
    """Users (end users carry ``organization_id``; agents and admins too)."""

    name = "users"
    path = "/api/v2/incremental/users.json"
    records_path = "users"


class SatisfactionRatingsStream(ZendeskStream):
    """CSAT ratings (good/bad), read with ``start_time`` from the bookmark and cursor paging.

    Zendesk's ``start_time`` filter is inclusive, so the bookmark's own second comes again;
    the ids seen in it are skipped.
    """

    name = "satisfaction_ratings"
    path = "/api/v2/satisfaction_ratings.json"
    records_path = "satisfaction_ratings"
    cursor_field = "created_at"

    def pages(self, ctx: SyncContext, state: dict[str, Any] | None) -> Iterator[Page]:
        state = {} if ctx.full_refresh else dict(state or {})
        bookmark = state.get("bookmark")
        committed = {k: v for k, v in state.items() if k != "resume"}
        resume = state.get("resume")
        if resume:
            start, after = resume["start_time"], resume.get("after")
            high, high_ids = resume.get("high"), set(resume.get("high_ids") or [])
            seen = set(resume.get("seen") or [])
        else:
            start = bookmark if bookmark is not None else first_start(self.settings)
            seen = set(state.get("seen") or []) if bookmark is not None else set()
            after, high, high_ids = None, bookmark, set(seen)
        while True:
            params: dict[str, Any] = {"page[size]": self.settings.page_size, "start_time": start}
            if after:
                params["page[after]"] = after
            body = body_of(ctx.client.get(self.path, params=params), "satisfaction ratings")
            records = body.get(self.records_path) or []
            unique: dict[str, dict[str, Any]] = {}
            for record in records:
                rid = self.record_id(record)
                created = unix(record.get(self.cursor_field))
                if rid in seen and created is not None and created <= start:
                    continue
                unique[rid] = record
                if created is not None:
                    if high is None or created > high:
                        high, high_ids = created, {rid}
                    elif created == high:
                        high_ids.add(rid)
            meta = body.get("meta") or {}
            nxt = meta.get("after_cursor") if meta.get("has_more") else None
            raws = [self.to_raw(r) for r in unique.values()]
            if not nxt:
                final = {"bookmark": high if high is not None else start, "seen": sorted(high_ids)}
                yield Page(raws, final, done=True)
                return
            if nxt == after:
                raise FatalAPIError("Zendesk satisfaction ratings returned the same cursor twice")
            after = nxt
            resume_state = {
                "start_time": start,
                "after": after,
                "high": high,
                "high_ids": sorted(high_ids),
                "seen": sorted(seen),
            }
            yield Page(raws, {**committed, "resume": resume_state})
            if ctx.stop.is_set():
                return


__all__ = [
    "OrganizationsStream",
    "SatisfactionRatingsStream",
    "TicketsStream",
    "TimeExportStream",
    "UsersStream",
    "first_start",
    "safe_now",
    "unix",
]
