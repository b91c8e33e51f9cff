"""The connector base end to end with the example connector: paging, bookmarks, resume."""

from __future__ import annotations

import httpx

from hub.errors import FatalAPIError
from hub.http.pagination import CursorPaginator, LastIdPaginator, NextLinkPaginator, OffsetPaginator
from hub.sync import sync_connection
from tests.plugins.example import TOKEN, ExampleAPI, ExampleConnector


def ids(store, table="raw_ex_items"):
    return [r["id"] for r in store.raw_rows(table)]


def make(**settings):
    return ExampleConnector({"token": TOKEN, **settings}, connection="ex")


def test_full_then_incremental_sync(store):
    api = ExampleAPI(count=35)
    [result] = sync_connection(store, make(), transport=api.transport())
    assert result.status == "ok"
    assert result.records == 35 and result.changed == 35
    assert result.requests == 4  # 10 + 10 + 10 + 5
    assert sorted(ids(store), key=int) == [str(i) for i in range(1, 36)]
    assert store.get_state("ex", "items") == {"bookmark": "2026-01-01T00:00:35Z"}

    # Nothing changed upstream: one request, nothing written.
    [again] = sync_connection(store, make(), transport=api.transport())
    assert again.requests == 1 and again.changed == 0

    # One item changes: only it comes back, and the bookmark moves.
    api.items[4]["updated_at"] = "2026-01-01T00:01:00Z"
    api.items[4]["name"] = "renamed"
    [third] = sync_connection(store, make(), transport=api.transport())
    assert third.records == 1 and third.changed == 1
    assert store.get_state("ex", "items") == {"bookmark": "2026-01-01T00:01:00Z"}


def test_failure_mid_stream_resumes_from_last_committed_page(store):
    def fail_third(n, request):
        return httpx.Response(400, json={"error": "boom"}) if n == 3 else None

    api = ExampleAPI(count=35, on_page=fail_third)
    [result] = sync_connection(store, make(), transport=api.transport())
    assert result.status == "error" and "400" in result.error
    assert len(ids(store)) == 20  # two pages committed
    resume = store.get_state("ex", "items")["resume"]
    assert resume["params"]["cursor"] == "20"

    api.on_page = None
    api.requests.clear()
    [result] = sync_connection(store, make(), transport=api.transport())
    assert result.status == "ok"
    assert api.requests[0].url.params["cursor"] == "20"  # no page read twice, none skipped
    assert sorted(map(int, ids(store))) == list(range(1, 36))
    assert store.get_state("ex", "items") == {"bookmark": "2026-01-01T00:00:35Z"}


def test_retries_5xx_and_records_them(store):
    def flaky(n, request):
        return httpx.Response(503, json={"error": "down"}) if n in (1, 2) else None

    api = ExampleAPI(count=5, on_page=flaky)
    [result] = sync_connection(store, make(), transport=api.transport(), sleep=lambda s: None)
    assert result.status == "ok" and result.retries == 2 and result.records == 5
    run = store.runs(kind="sync")[0]
    assert run["retries"] == 2 and run["status"] == "ok" and run["requests"] == 3


def test_401_is_fatal_with_clear_message(store):
    connector = ExampleConnector({"token": "wrong-token-value"}, connection="ex")
    [result] = sync_connection(
        store, connector, transport=ExampleAPI().transport(), sleep=lambda s: None
    )
    assert result.status == "error"
    assert result.requests == 1  # no retry on 401
    assert "refused (401)" in result.error and "hub check" in result.error
    assert "wrong-token-value" not in result.error


def test_paginators_detect_loops():
    def response(body):
        return httpx.Response(200, json=body, request=httpx.Request("GET", "https://x/"))

    p = CursorPaginator("next", "cursor").fresh()
    assert p.next_page(response({}), {"next": "a"}, []) == {"cursor": "a"}
    try:
        p.next_page(response({}), {"next": "a"}, [])
        raise AssertionError("expected a loop error")
    except FatalAPIError as exc:
        assert "pagination loop" in str(exc)
    link = NextLinkPaginator("links.next").fresh()
    assert (
        link.next_page(response({}), {"links": {"next": "https://x/?p=2"}}, []) == "https://x/?p=2"
    )
    assert link.next_page(response({}), {"links": {"next": None}}, []) is None
    off = OffsetPaginator(2).fresh()
    assert off.next_page(response({}), {}, [1, 2]) == {"limit": 2, "offset": 2}
    assert off.next_page(response({}), {}, [1]) is None
    last = LastIdPaginator(limit=2).fresh()
    assert last.next_page(response({}), {"has_more": True}, [{"id": "a"}, {"id": "b"}]) == {
        "limit": 2,
        "starting_after": "b",
    }
    assert last.next_page(response({}), {"has_more": False}, [{"id": "c"}]) is None


def test_hostile_field_names_stored_as_json(store):
    api = ExampleAPI(count=1)
    api.items[0].update({"rowid": 7, "ID": "upper", "select": 1, "a b": "space", "data": "x"})
    sync_connection(store, make(), transport=api.transport())
    [row] = list(store.raw_rows("raw_ex_items"))
    assert row["id"] == "1" and row["data"]["ID"] == "upper" and row["data"]["rowid"] == 7
    assert set(store.db["raw_ex_items"].columns_dict) == {
        "id",
        "updated_at",
        "deleted",
        "synced_at",
        "seq",
        "data",
        "ref",
    }


def test_json_logs_carry_utc_time_and_structured_fields(store, capsys):
    import json

    from hub import logs

    try:
        logs.configure(1, json_lines=True)
        sync_connection(store, make(), transport=ExampleAPI(count=12).transport())
    finally:
        logs.configure(0)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    done = [entry for entry in lines if entry.get("stream") == "items" and "records" in entry]
    assert done, lines
    entry = done[-1]
    assert entry["connection"] == "ex" and entry["records"] == 12 and entry["requests"] == 2
    assert entry["status"] == "ok" and entry["ts"].endswith("Z") and "T" in entry["ts"]
