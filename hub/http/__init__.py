"""HTTP for connectors and pushers: the client (retries, limits, scrubbing), auth flows,
rate limiting, paginators and incremental strategies. ``hub.http.client`` holds the client,
``hub.http.incremental`` and ``hub.http.replay`` the strategies; the names here are the ones
connectors use.
"""

from __future__ import annotations

from hub.http.client import (
    APIError,
    Failure,
    HttpClient,
    RequestStats,
    RetryPolicy,
    default_classify,
    error_text,
    json_of,
    make_client,
    parse_retry_after,
    scrub_url,
)
from hub.http.incremental import (
    Cursor,
    CursorExport,
    FullTable,
    ListOnce,
    LoopGuard,
    Page,
    Strategy,
    TimeExport,
)
from hub.http.replay import BatchedLookup, EventReplay, KeysetSearch, LookupResult

__all__ = [
    "APIError",
    "BatchedLookup",
    "Cursor",
    "CursorExport",
    "EventReplay",
    "Failure",
    "FullTable",
    "HttpClient",
    "KeysetSearch",
    "ListOnce",
    "LookupResult",
    "LoopGuard",
    "Page",
    "RequestStats",
    "RetryPolicy",
    "Strategy",
    "TimeExport",
    "default_classify",
    "error_text",
    "json_of",
    "make_client",
    "parse_retry_after",
    "scrub_url",
]
