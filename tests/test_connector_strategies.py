"""The framework's incremental strategies on a small fake: POST-body searches, hostile records,
loop guards. The built-in connectors' own tests cover the other strategies on the sandbox."""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import SecretStr

from hub.connector import Connector, ConnectorSettings, Stream
from hub.http import Cursor, CursorExport
from hub.http.auth import BearerAuth
from hub.http.pagination import CursorPaginator
from hub.sync import sync_connection

TOKEN = "search-token-1234"


class SearchAPI:
    """``POST /search`` with ``{"query": {"updated_after": t}, "pagination": {...}}``."""

    def __init__(self, count: int = 25) -> None:
        self.items: list[Any] = [
            {"id": i, "updated_at": f"2026-02-01T00:00:{i:02d}Z", "name": f"n{i}"}
            for i in range(1, count + 1)
        ]
        self.bodies: list[dict[str, Any]] = []
        self.fail_at: int | None = None
        self.same_cursor = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        self.bodies.append(body)
        if self.fail_at is not None and len(self.bodies) == self.fail_at:
            return httpx.Response(400, json={"error": "injected"})
        since = (body.get("query") or {}).get("updated_after")
        page = body.get("pagination") or {}
        size, start = int(page.get("per_page", 10)), int(page.get("starting_after") or 0)

        def when(item: Any) -> str:
            return item.get("updated_at", "") if isinstance(item, (dict, Raw)) else ""

        rows = [i for i in self.items if since is None or when(i) > since]
        chunk = rows[start : start + size]
        more = start + size < len(rows)
        nxt = "0" if self.same_cursor else str(start + size)
        # Items given as text go in verbatim (too deep for json.dumps to write).
        data = ",".join(i.text if isinstance(i, Raw) else json.dumps(i) for i in chunk)
        text = f'{{"data":[{data}],"pages":{{"next":{json.dumps(nxt if more else None)}}}}}'
        return httpx.Response(
            200, content=text.encode(), headers={"content-type": "application/json"}
        )


class Raw:
    """An item already encoded as JSON text."""

    def __init__(self, text: str, updated_at: str) -> None:
        self.text = text
        self.updated_at = updated_at

    def get(self, key: str, default: Any = None) -> Any:
        return self.updated_at if key == "updated_at" else default


class Settings(ConnectorSettings):
    token: SecretStr
    base_url: str | None = "https://search.invalid"


class Searched(Stream):
    """Items from a POST search: bookmark and page token both travel in the JSON body."""

    name = "items"
    path = "/search"
    method = "POST"
    cursor_field = "updated_at"
    records_path = "data"
    body = {"sort": "updated_at"}
    incremental = Cursor()
    paginator = CursorPaginator(
        "pages.next",
        "pagination.starting_after",
        page_size=10,
        size_param="pagination.per_page",
        target="body",
    )

    def request_body(self, bookmark: Any) -> dict[str, Any]:
        body = dict(self.body or {})
        if bookmark is not None:
            body["query"] = {"updated_after": bookmark}
        return body


class SearchConnector(Connector):
    name = "searchy"
    Settings = Settings
    streams = [Searched]

    def auth(self) -> httpx.Auth:
        return BearerAuth(self.settings.token)


def run(store, api, **kwargs):
    connector = SearchConnector({"token": TOKEN}, connection="s")
    [result] = sync_connection(
        store, connector, transport=httpx.MockTransport(api.handler), sleep=lambda s: None, **kwargs
    )
    return result


def ids(store) -> list[int]:
    return sorted(int(r["id"]) for r in store.raw_rows("raw_s_items"))


def test_post_search_pages_in_the_body_and_resumes(store):
    api = SearchAPI(count=25)
    api.fail_at = 3
    broken = run(store, api)
    assert broken.status == "error" and ids(store) == list(range(1, 21))
    resume = store.get_state("s", "items")["resume"]
    assert resume["json"]["pagination"] == {"per_page": 10, "starting_after": "20"}
    api.fail_at = None
    done = run(store, api)
    assert done.status == "ok" and done.requests == 1 and ids(store) == list(range(1, 26))
    assert api.bodies[-1]["pagination"]["starting_after"] == "20"
    assert store.get_state("s", "items") == {"bookmark": "2026-02-01T00:00:25Z"}
    # Nothing new: one request, with the bookmark in the body.
    again = run(store, api)
    assert again.requests == 1 and again.changed == 0
    assert api.bodies[-1]["query"] == {"updated_after": "2026-02-01T00:00:25Z"}
    assert api.bodies[-1]["sort"] == "updated_at"


def test_hostile_records_are_skipped_reported_and_the_stream_goes_on(store):
    api = SearchAPI(count=12)
    deep = '{"x":' * 5000 + "{}" + "}" * 5000
    api.items[2] = {"name": "no id", "updated_at": "2026-02-01T00:00:03Z"}
    when = "2026-02-01T00:00:05Z"
    api.items[4] = Raw(f'{{"id":5,"updated_at":"{when}","payload":{deep}}}', when)
    api.items[6] = "not an object"
    api.items[7]["name"] = "[bold]ACME [/] Holdings[/]"
    result = run(store, api)
    assert result.status == "ok" and result.skipped == 3
    assert ids(store) == [1, 2, 4, 6, 8, 9, 10, 11, 12]
    assert store.get_state("s", "items") == {"bookmark": "2026-02-01T00:00:12Z"}
    note = store.runs(kind="sync")[0]["note"]
    assert "skipped 3 record(s)" in note
    assert "items page 1 record 3: the record has no 'id'" in note
    assert "record 5: nested deeper than 64 levels" in note
    assert "record 7: not an object (str)" in note
    # The bookmark moved on: the next run does not meet them again.
    assert run(store, api).skipped == 0


class Export(Stream):
    name = "export"
    path = "/export"
    records_path = "rows"
    incremental = CursorExport(cursor_param="cursor", cursor_path="after", end_path="end")


class ExportConnector(SearchConnector):
    name = "exporty"
    streams = [Export]


def test_cursor_export_stops_on_a_cursor_loop(store):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"rows": [{"id": 1}], "after": "same", "end": False})

    connector = ExportConnector({"token": TOKEN}, connection="e")
    [result] = sync_connection(store, connector, transport=httpx.MockTransport(handler))
    assert result.status == "error" and "pagination loop" in result.error
    assert result.requests == 2
