"""HubSpot helpers shared by the streams: page sizes, timestamps, ids, decoded bodies, and
the v4 association batch read (``read_links``)."""

from __future__ import annotations

import datetime as dt
import email.utils
from typing import TYPE_CHECKING, Any

import httpx

from hub import clock
from hub.errors import FatalAPIError
from hub.http.client import json_of
from hub.http.pagination import dig

if TYPE_CHECKING:
    from hub.connector import SyncContext

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


def read_links(
    ctx: SyncContext, from_type: str, ids: list[str], to_type: str
) -> dict[str, list[str]]:
    """Ids of ``to_type`` records linked to each record (v4 batch read; 207 = some have none)."""
    links: dict[str, list[str]] = {}
    path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
    for start in range(0, len(ids), ASSOC_BATCH):
        chunk = ids[start : start + ASSOC_BATCH]
        body = json_body(
            ctx.client.post(path, json={"inputs": [{"id": i} for i in chunk]}, idempotent=True),
            f"{from_type} → {to_type} association read",
        )
        for result in body.get("results") or []:
            targets = {
                str(t.get("toObjectId"))
                for t in result.get("to") or []
                if t.get("toObjectId") is not None
            }
            links[str(dig(result, "from.id"))] = sorted(targets, key=_id_order)
        for error in body.get("errors") or []:
            # "No company is associated with …" is an answer, not a failure.
            if (
                "NO_ASSOCIATIONS" not in str(error.get("subCategory") or "")
                and error.get("category") != "OBJECT_NOT_FOUND"
            ):
                raise FatalAPIError(
                    f"HubSpot association read failed: {error.get('message') or error}"
                )
    return links


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (1 << 62, value)


__all__ = [
    "ASSOC_BATCH",
    "HISTORY_BATCH",
    "LIST_LIMIT",
    "SEARCH_LIMIT",
    "json_body",
    "ms_iso",
    "numeric_id",
    "read_links",
    "server_ms",
    "to_ms",
]
