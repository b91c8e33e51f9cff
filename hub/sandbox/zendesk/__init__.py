"""Stateful fake of the Zendesk Support API (the parts the hub reads).

What it serves, with the real API's paths (with or without ``.json``), envelopes, errors and
limits (facts: ``shared/specs/README.md`` Zendesk rows and Zendesk's OAS):

- ``GET /api/v2/incremental/tickets/cursor.json`` (and ``users/cursor``): cursor-based export
  ordered by ``(updated_at, id)``; ``start_time`` first, then ``cursor``; ``per_page`` ≤ 1000;
  ``include=metric_sets`` (also ``users``, ``organizations``) sideloads. The cursor encodes
  the position, so a ticket updated later reappears later. ``start_time`` must be at least
  one minute in the past and the most recent minute is never returned.
- ``GET /api/v2/incremental/{organizations,users,tickets}.json``: time-based exports
  (``count``, ``end_time``, ``next_page``, ``end_of_stream``). Like the real API they repeat
  items: the next page starts *at* ``end_time`` (the last item's ``updated_at``), so items of
  that second come again.
- ``GET /api/v2/ticket_metrics``, ``/satisfaction_ratings``, ``/organizations``: cursor
  pagination (``page[size]`` ≤ 100, ``page[after]``/``page[before]``, ``meta``, ``links``) or
  classic offset pagination (``page``/``per_page``, ``next_page``, 400 past 10,000 records).
- ``GET /api/v2/users/me``, ``/tickets/{id}``, ``/organizations/{id}``, ``/ticket_metrics/{id}``,
  ``/tickets/{id}/metrics``, ``/satisfaction_ratings/{id}``; ``POST /api/v2/tickets``
  (validation errors are 422 ``RecordInvalid`` with ``details``).

Auth is ``Basic base64("{email}/token:{api_token}")`` or ``Bearer {oauth_token}`` (values in
``CREDENTIALS["zendesk"]``). With ``sandbox.enforce_limits`` the incremental exports allow
``incremental_per_minute`` (10) requests and everything ``requests_per_minute`` (400), windows
scaled by ``sandbox.time_scale``; a 429 carries ``Retry-After`` and its body alternates between
JSON and ``text/plain`` as the real API's does. Retry-After is whole seconds at
``time_scale >= 1`` and fractional when scaled down (zenpy parses it with ``int``).

Fault kinds taken here: ``cursor_expired`` (422 ``InvalidCursor`` on the next export cursor
request, 400 on a list's ``page[after]``) and client errors ``400``/``401``/``403``/``404``/
``422`` in Zendesk's classic error shape (the base applies 429, 5xx, timeouts and drops).

Records are kept as slotted objects with integer timestamps and rendered to JSON per request,
so seeding 100k companies stays fast and every request costs O(page size) (sorted key lists
plus bisect).
"""

from __future__ import annotations

from hub.sandbox.zendesk.api import ZendeskAPI

__all__ = ["ZendeskAPI"]
