"""The sync driver: runs a connection's streams page by page into the raw tables.

Each stream's run is recorded in ``_hub_runs`` (status, records, requests, retries,
duration, error, notes). A failing stream never stops the other streams, and a failing
connection never stops the other connections. Each page and its bookmark commit together
(``Store.write_page``), so a killed sync resumes where it stopped.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from hub.config import Config
from hub.connector import Connector, SyncContext
from hub.errors import CursorExpiredError, HubError
from hub.registry import get_registry
from hub.store import Store

log = logging.getLogger("hub.sync")

ProgressCallback = Callable[[str, str, int, bool], None]
"""``(connection, stream, records_in_page, stream_done)``."""


@dataclass
class StreamResult:
    """Outcome of one stream's sync."""

    connection: str
    stream: str
    status: str = "ok"  # ok | error | stopped
    records: int = 0  # rows fetched
    changed: int = 0  # rows new or changed in the store
    requests: int = 0
    retries: int = 0
    duration_s: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def build_connector(config: Config, name: str) -> Connector:
    """Instantiate the connector for connection ``name`` with its resolved settings."""
    conn = config.connection(name)
    cls = get_registry().connector(conn.connector)
    settings = cls.parse_settings(
        config.resolved_settings(name),
        where=f"{config.path or 'hub.toml'}: connections.{name}.settings",
    )
    return cls(settings, connection=name)


def sync_connection(
    store: Store,
    connector: Connector,
    *,
    streams: list[str] | None = None,
    full_refresh: bool = False,
    transport: httpx.BaseTransport | None = None,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] | None = None,
) -> list[StreamResult]:
    """Sync every (or the named) stream of one connection; never raises for a stream's failure."""
    results = []
    stop = stop or threading.Event()
    with connector.client(transport=transport, sleep=sleep) as client:
        for stream in connector.get_streams(streams):
            if stop.is_set():
                break
            results.append(
                _sync_stream(store, connector, stream, client, full_refresh, progress, stop)
            )
    return results


def _sync_stream(store, connector, stream, client, full_refresh, progress, stop) -> StreamResult:
    name = connector.connection
    result = StreamResult(name, stream.name)
    run_id = store.start_run("sync", name, stream.name)
    before = client.stats.snapshot()
    started = time.perf_counter()
    ctx = SyncContext(
        client=client,
        store=store,
        connection=name,
        connector=connector,
        full_refresh=full_refresh,
        stop=stop,
    )
    try:
        _read_pages(store, stream, ctx, result, progress)
        if stop.is_set() and result.status == "ok":
            result.status = "stopped"
    except CursorExpiredError as exc:
        # The API forgot our cursor: start this stream over from scratch, once.
        ctx.note(f"cursor no longer valid ({exc.message}); full re-read")
        store.clear_state(name, stream.name)
        ctx.full_refresh = True
        try:
            _read_pages(store, stream, ctx, result, progress)
        except HubError as exc2:
            result.status, result.error = "error", str(exc2)
    except HubError as exc:
        result.status, result.error = "error", str(exc)
        log.warning("%s.%s failed: %s", name, stream.name, exc)
    except Exception as exc:  # noqa: BLE001 - a bug in one stream must not stop the others
        result.status = "error"
        result.error = client.scrub(f"internal error: {type(exc).__name__}: {exc}")
        log.debug("%s", client.scrub(traceback.format_exc()))
        log.warning("%s.%s crashed: %s", name, stream.name, result.error)
    after = client.stats.snapshot()
    result.requests = after["requests"] - before["requests"]
    result.retries = after["retries"] - before["retries"]
    result.duration_s = time.perf_counter() - started
    result.notes = list(ctx.notes)
    store.finish_run(
        run_id,
        status=result.status,
        records=result.records,
        requests=result.requests,
        retries=result.retries,
        error=result.error,
        note="; ".join(result.notes) or None,
        duration_s=result.duration_s,
    )
    if progress:
        progress(name, stream.name, 0, True)
    return result


def _read_pages(store, stream, ctx, result, progress) -> None:
    state = None if ctx.full_refresh else store.get_state(ctx.connection, stream.name)
    for page in stream.pages(ctx, state):
        result.changed += store.write_page(ctx.connection, stream.name, page.records, page.state)
        result.records += len(page.records)
        if progress:
            progress(ctx.connection, stream.name, len(page.records), False)
        if ctx.stop.is_set() and not page.done:
            result.status = "stopped"
            return


def sync_all(
    store: Store,
    config: Config,
    names: list[str] | None = None,
    *,
    full_refresh: bool = False,
    transport: httpx.BaseTransport | None = None,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    streams: list[str] | None = None,
) -> dict[str, list[StreamResult]]:
    """Sync several connections; a connection that cannot even start is recorded as failed."""
    if names:
        for name in names:
            config.connection(name)  # clear error for a typo before anything runs
    names = names or [n for n, c in config.connections.items() if c.enabled]
    out: dict[str, list[StreamResult]] = {}
    for name in names:
        try:
            connector = build_connector(config, name)
        except HubError as exc:
            run_id = store.start_run("sync", name, None)
            store.finish_run(run_id, status="error", error=str(exc), duration_s=0.0)
            out[name] = [StreamResult(name, "*", status="error", error=str(exc))]
            continue
        out[name] = sync_connection(
            store,
            connector,
            streams=streams,
            full_refresh=full_refresh,
            transport=transport,
            progress=progress,
            stop=stop,
        )
    return out


def summarize(results: dict[str, list[StreamResult]]) -> dict[str, Any]:
    """Totals across connections, for CLI output."""
    flat = [r for rs in results.values() for r in rs]
    return {
        "streams": len(flat),
        "failed": sum(1 for r in flat if r.status == "error"),
        "records": sum(r.records for r in flat),
        "changed": sum(r.changed for r in flat),
        "requests": sum(r.requests for r in flat),
    }
