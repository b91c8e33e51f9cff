"""The Zendesk streams: tickets (with their metric sets), satisfaction ratings, organizations
and users, each declared with a framework strategy.

- ``tickets``: ``CursorExport`` over the cursor-based incremental export. The cursor is a
  position in (updated_at, id) order, so it is the bookmark and moves page by page; a crash
  resumes at the page after the last committed one, and the next run asks only for what
  changed.
- ``organizations``/``users``: ``TimeExport`` over the time-based exports: ``{"bookmark":
  end_time, "seen": [ids updated in that very second]}``, committed per page. The next
  request starts *at* ``end_time``, so the API sends that second's records again; ``seen``
  drops them. The bookmark never moves past now − 61 s: Zendesk does not serve the most
  recent minute and a later write could still land in it.
- ``satisfaction_ratings``: ``Cursor("start_time", inclusive=True)`` with cursor paging: the
  highest ``created_at`` seen plus that second's ids; the list is not documented as ordered,
  so the bookmark only moves when the run finishes and a killed run resumes from the saved
  ``page[after]`` cursor.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hub import clock
from hub.connector import Stream
from hub.errors import FatalAPIError
from hub.http.client import json_of
from hub.http.incremental import Cursor, CursorExport, TimeExport
from hub.http.pagination import CursorPaginator
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
    """The JSON body of a 200 (the client has already retried bodies that are not JSON)."""
    try:
        body = json_of(response)
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
    """Base of the Zendesk streams (records keep Zendesk's shape; times compared as unix s)."""

    primary_key = "id"
    cursor_field = "updated_at"

    def parse_response(self, response: Any) -> tuple[Any, list[Any]]:
        body = body_of(response, f"{self.name} export")
        records = body.get(self.records_path or "")
        return body, list(records) if isinstance(records, list) else []

    def cursor_value(self, record: dict[str, Any]) -> Any:
        return unix(record.get(self.cursor_field))

    def initial_bookmark(self) -> Any:
        return first_start(self.settings)


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
    incremental = CursorExport(start_param="start_time", cursor_param="cursor")

    def request_params(self, bookmark: Any) -> dict[str, Any]:
        return {"per_page": self.settings.per_page, "include": "metric_sets"}

    def parse_response(self, response: Any) -> tuple[Any, list[Any]]:
        body, tickets = super().parse_response(response)
        metrics = {
            m.get("ticket_id"): m for m in body.get("metric_sets") or [] if isinstance(m, dict)
        }
        records = [
            {**t, "metric_set": metrics.get(t.get("id"))} if isinstance(t, dict) else t
            for t in tickets
        ]
        return body, records

    def to_raw(self, record: dict[str, Any]) -> RawRecord:
        raw = super().to_raw(record)
        raw.deleted = record.get("status") == "deleted"  # the export carries deleted tickets
        return raw


class TimeExportStream(ZendeskStream):
    """A time-based incremental export (``start_time`` → ``end_time``/``end_of_stream``)."""

    incremental = TimeExport(lag_seconds=WINDOW_SECONDS + 1)

    def request_params(self, bookmark: Any) -> dict[str, Any]:
        return {"per_page": self.settings.per_page}


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
    incremental = Cursor("start_time", inclusive=True)

    def make_paginator(self) -> CursorPaginator:
        return CursorPaginator(
            "meta.after_cursor",
            "page[after]",
            has_more_path="meta.has_more",
            page_size=self.settings.page_size,
            size_param="page[size]",
        )


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
