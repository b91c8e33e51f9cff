"""HubSpot helpers shared by the streams: page sizes, timestamps, ids, decoded bodies."""

from __future__ import annotations

import datetime as dt
import email.utils
from typing import Any

import httpx

from hub import clock
from hub.errors import FatalAPIError
from hub.http.client import json_of

LIST_LIMIT = 100  # the list endpoints' maximum page
SEARCH_LIMIT = 200  # the search endpoint's maximum page
ASSOC_BATCH = 1000  # ids per v4 association batch read (HubSpot's limit since 2025-02)
HISTORY_BATCH = 50  # ids per batch read that asks for property history
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def to_ms(value: Any) -> int | None:
    """Milliseconds since the epoch from HubSpot's ISO timestamps (or ms text)."""
    try:
        parsed = clock.parse(value)
    except (TypeError, ValueError):
        return None
    if parsed is None:
        return None
    return int(parsed.timestamp()) * 1000 + parsed.microsecond // 1000


def numeric_id(record: dict[str, Any]) -> int:
    """HubSpot's numeric object id (0 when absent or not a number: such records are skipped)."""
    try:
        return int(record.get("id") or 0)
    except (TypeError, ValueError):
        return 0


def ms_iso(ms: int) -> str:
    """Milliseconds → the ISO text kept in bookmarks (sorts as text, reads in ``hub status``)."""
    value = _EPOCH + dt.timedelta(milliseconds=ms)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def server_ms(response: httpx.Response) -> int | None:
    """The server's clock from the ``Date`` header (whole seconds), or None."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return int(when.timestamp()) * 1000 if when else None


def json_body(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = json_of(response)
    except ValueError:
        raise FatalAPIError(
            f"HubSpot {what} answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
            hint="check base_url points at https://api.hubapi.com",
        ) from None
    if not isinstance(body, dict):
        raise FatalAPIError(f"HubSpot {what} answered with an unexpected body")
    return body


__all__ = [
    "ASSOC_BATCH",
    "HISTORY_BATCH",
    "LIST_LIMIT",
    "SEARCH_LIMIT",
    "json_body",
    "ms_iso",
    "numeric_id",
    "server_ms",
    "to_ms",
]
