"""A tiny example connector and its fake API, used only by tests to prove the base works.

The fake serves ``GET /items?cursor=&limit=&updated_since=`` with a cursor paginator, a
bearer token, and an optional per-page hook so tests can inject failures or kills.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

import hub
from hub.connector import Connector, ConnectorSettings, Stream
from hub.http.auth import BearerAuth
from hub.http.pagination import CursorPaginator
from hub.http.ratelimit import RateLimit

TOKEN = "example-token-123"


class ExampleSettings(ConnectorSettings):
    """Settings of the example connector."""

    token: SecretStr
    base_url: str | None = "https://example.invalid"
    page_size: int = 10
    requests_per_second: float | None = None


class Items(Stream):
    """Items, incremental on ``updated_at``."""

    name = "items"
    path = "/items"
    records_path = "items"
    cursor_field = "updated_at"
    incremental = "cursor"
    bookmark_param = "updated_since"
    paginator = CursorPaginator("next_cursor", "cursor", has_more_path="has_more")

    def request_params(self, bookmark: Any) -> dict[str, Any]:
        params = super().request_params(bookmark)
        params["limit"] = self.settings.page_size
        return params


class ExampleConnector(Connector):
    """The example connector."""

    name = "example"
    title = "Example"
    default_base_url = "https://example.invalid"
    Settings = ExampleSettings
    streams = [Items]

    def auth(self) -> httpx.Auth:
        return BearerAuth(self.settings.token)

    def rate_limits(self) -> list[RateLimit]:
        rps = self.settings.requests_per_second
        return [RateLimit("global", int(rps), 1.0)] if rps else []


@hub.hookimpl
def register_connectors(register: Callable[[Any], Any]) -> None:
    register(ExampleConnector)


class ExampleAPI:
    """Stateful fake: ``items`` sorted by (updated_at, id); ``on_page(n)`` may raise or sleep."""

    def __init__(
        self,
        count: int = 35,
        on_page: Callable[[int, httpx.Request], httpx.Response | None] | None = None,
        token: str = TOKEN,
    ):
        self.token = token
        self.items = [
            {"id": i, "name": f"item {i}", "updated_at": f"2026-01-01T00:00:{i:02d}Z"}
            for i in range(1, count + 1)
        ]
        self.on_page = on_page
        self.requests: list[httpx.Request] = []
        self.faults: list[dict[str, Any]] = []

    def fail(self, status: int, *, count: int = 1, after: int = 0) -> None:
        """Answer ``status`` to ``count`` requests after letting ``after`` through."""
        self.faults.append({"status": status, "count": count, "after": after})

    def touch(self, n: int) -> None:
        """Change ``n`` items upstream (new updated_at)."""
        for i, item in enumerate(self.items[:n]):
            item["updated_at"] = f"2026-01-02T00:00:{i:02d}Z"
            item["name"] += " (edited)"

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"error": "bad token"})
        for fault in self.faults:
            if fault["after"] > 0:
                fault["after"] -= 1
                continue
            if fault["count"] > 0:
                fault["count"] -= 1
                headers = {"Retry-After": "0"} if fault["status"] == 429 else {}
                return httpx.Response(fault["status"], json={"error": "injected"}, headers=headers)
        if self.on_page:
            hooked = self.on_page(len(self.requests), request)
            if hooked is not None:
                return hooked
        params = request.url.params
        limit = int(params.get("limit", 10))
        since = params.get("updated_since")
        rows = sorted(
            (i for i in self.items if since is None or i["updated_at"] > since),
            key=lambda i: (i["updated_at"], i["id"]),
        )
        start = int(params.get("cursor", 0))
        page = rows[start : start + limit]
        has_more = start + limit < len(rows)
        return httpx.Response(
            200,
            json={
                "items": page,
                "next_cursor": str(start + limit) if has_more else None,
                "has_more": has_more,
            },
        )

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
