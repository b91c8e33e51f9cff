"""HTTP for connectors and pushers: the client (retries, limits, scrubbing), auth flows,
rate limiting and paginators. ``hub.http.client`` holds the client; the names here are the
ones connectors use.
"""

from __future__ import annotations

from hub.http.client import (
    APIError,
    HttpClient,
    RequestStats,
    RetryPolicy,
    default_classify,
    error_text,
    make_client,
    parse_retry_after,
    scrub_url,
)

__all__ = [
    "APIError",
    "HttpClient",
    "RequestStats",
    "RetryPolicy",
    "default_classify",
    "error_text",
    "make_client",
    "parse_retry_after",
    "scrub_url",
]
