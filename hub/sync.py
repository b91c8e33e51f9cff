"""The sync driver: runs connections' streams page by page into the raw tables.

Each stream's run is recorded in ``_hub_runs`` (status, records, requests, retries,
duration, error, notes, records skipped). A failing stream never stops the other streams,
and a failing connection never stops the other connections. Each page and its bookmark
commit together (``Store.write_page``), so a killed sync resumes where it stopped.

Connections sync in parallel, one thread each (each API has its own budget, so the first
sync of a workspace takes about as long as its slowest connection); the streams of one
connection run in their declared order, because some depend on the ones before them.
Connectors that look data up per account (``uses_account_domains``) start once the
connections that bring the account roots are done and those roots are mapped, while the
other connections go on.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from hub import logs
from hub.config import Config
from hub.connector import Connector, SyncContext
from hub.errors import CursorExpiredError, DeferredError, HubError, Stopped
from hub.registry import get_registry
from hub.store import Store

log = logging.getLogger("hub.sync")

ProgressCallback = Callable[[str, str, int, bool], None]
"""``(connection, stream, records_in_page, stream_done)``."""
WaitCallback = Callable[[str, str, str], None]
"""``(connection, stream, message)``: a wait began ("waiting 31 s (Zendesk Retry-After)")."""


@dataclass
class StreamResult:
    """Outcome of one stream's sync."""

    connection: str
    stream: str
    status: str = "ok"  # ok | error | stopped | deferred
    records: int = 0  # rows fetched
    changed: int = 0  # rows new or changed in the store
    requests: int = 0
    retries: int = 0
    duration_s: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    skipped: int = 0  # records that could not be stored (named in the notes)


def build_connector(config: Config, name: str) -> Connector:
    """Instantiate the connector for connection ``name`` with its resolved settings."""
    conn = config.connection(name)
    cls = get_registry().connector(conn.connector)
    settings = cls.parse_settings(
        config.resolved_settings(name),
        where=f"{config.path or 'hub.toml'}: connections.{name}.settings",
    )
    register_secrets(settings)
    return cls(settings, connection=name)


def register_secrets(settings: Any) -> None:
    """Register a connection's secret settings (only those) with log redaction."""
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            logs.register_secret(value.get_secret_value())


def register_config_secrets(config: Config) -> None:
    """Register every connection's secret fields with log redaction (URLs, e-mails stay).

    Only fields typed ``SecretStr`` in the connector's settings count as secrets; a setting
    that cannot be resolved or validated yet registers what it can.
    """
    try:
        registry = get_registry()
    except HubError:
        return  # reported by whatever needs the plugins next
    for name, conn in config.connections.items():
        try:
            cls = registry.connector(conn.connector)
            raw = config.resolved_settings(name)
        except HubError:
            continue
        for key, info in cls.Settings.model_fields.items():
            if _is_secret(info.annotation) and isinstance(raw.get(key), str):
                logs.register_secret(raw[key])


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return SecretStr in getattr(annotation, "__args__", ())


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
    on_wait: WaitCallback | None = None,
) -> list[StreamResult]:
    """Sync every (or the named) stream of one connection; never raises for a stream's failure."""
    results = []
    stop = stop or threading.Event()
    current = {"stream": ""}

    def waiting(seconds: float, message: str) -> None:
        if on_wait is not None:
            on_wait(connector.connection, current["stream"], message)

    with connector.client(transport=transport, sleep=sleep, stop=stop, on_wait=waiting) as client:
        deferred: StreamResult | None = None
        for stream in connector.get_streams(streams):
            if stop.is_set():
                break
            current["stream"] = stream.name
            if deferred is not None:
                # The API asked this credential to wait: the streams after it wait too.
                results.append(_deferred(store, connector, stream.name, deferred))
                continue
            result = _sync_stream(store, connector, stream, client, full_refresh, progress, stop)
            results.append(result)
            if result.status == "deferred":
                deferred = result
    return results


def _deferred(store: Store, connector: Connector, stream: str, cause: StreamResult) -> StreamResult:
    note = f"deferred to the next run: {cause.stream} was asked to wait (Retry-After)"
    result = StreamResult(connector.connection, stream, status="deferred", notes=[note])
    run_id = store.start_run("sync", connector.connection, stream)
    store.finish_run(run_id, status="deferred", note=note, duration_s=0.0)
    return result


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
    fields = {"connection": name, "stream": stream.name}
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
    except DeferredError as exc:
        result.status = "deferred"
        # The client's message may already say so; the note says it once.
        said = "deferred to the next run" in exc.message
        ctx.note(exc.message if said else f"deferred to the next run: {exc.message}")
    except Stopped:
        result.status = "stopped"
    except HubError as exc:
        result.status, result.error = "error", client.scrub(str(exc))
        log.warning("%s.%s failed: %s", name, stream.name, result.error, extra={"fields": fields})
    except Exception as exc:  # noqa: BLE001 - a bug in one stream must not stop the others
        result.status = "error"
        result.error = client.scrub(f"internal error: {type(exc).__name__}: {exc}")
        log.debug("%s", client.scrub(traceback.format_exc()))
        log.warning("%s.%s crashed: %s", name, stream.name, result.error, extra={"fields": fields})
    if ctx.skipped_count:
        shown = "; ".join(ctx.skipped)
        more = (
            f" and {ctx.skipped_count - len(ctx.skipped)} more"
            if ctx.skipped_count > len(ctx.skipped)
            else ""
        )
        ctx.note(f"skipped {ctx.skipped_count} record(s) that could not be stored: {shown}{more}")
    after = client.stats.snapshot()
    result.requests = after["requests"] - before["requests"]
    result.retries = after["retries"] - before["retries"]
    result.duration_s = time.perf_counter() - started
    result.skipped = ctx.skipped_count
    result.notes = [client.scrub(n) for n in ctx.notes]
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
    log.info(
        "%s.%s %s: %d records (%d changed), %d requests",
        name,
        stream.name,
        result.status,
        result.records,
        result.changed,
        result.requests,
        extra={
            "fields": {
                **fields,
                "status": result.status,
                "records": result.records,
                "changed": result.changed,
                "requests": result.requests,
                "retries": result.retries,
                "skipped": result.skipped,
                "duration_s": round(result.duration_s, 3),
            }
        },
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


# -- several connections ----------------------------------------------------------------

_write_locks: dict[str, threading.RLock] = {}
_write_locks_guard = threading.Lock()


def _write_lock(path: str) -> threading.RLock:
    with _write_locks_guard:
        return _write_locks.setdefault(path, threading.RLock())


@contextlib.contextmanager
def _thread_store(store: Store) -> Iterator[Store]:
    """A store of this thread's own (one SQLite connection per thread) for ``store``'s file.

    Never share a connection between the workers: Python's sqlite3 keeps one transaction
    state per connection, so one thread's ``BEGIN`` would land inside another's transaction
    ("cannot start a transaction within a transaction"). Write transactions begin
    immediately (``BEGIN IMMEDIATE``) under a per-file lock shared by this process's
    threads: a deferred transaction that read first could not upgrade once another thread
    had written, and would fail with "database is locked" instead of waiting its turn. The
    writer lock's fence comes along, so every page still checks that this process holds it.
    """
    mine = Store(store.path, migrate=False)
    mine.fence = store.fence
    lock = _write_lock(store.path)
    nested = mine.db.atomic

    @contextlib.contextmanager
    def immediate():
        with lock:
            # Decided under the lock: the answer cannot change before BEGIN.
            if mine.db.conn.in_transaction:
                with nested() as db:
                    yield db
                return
            mine.db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield mine.db
                mine.db.conn.execute("COMMIT")
            except BaseException:
                # Also when COMMIT fails: a connection left inside a transaction would
                # swallow every later page into a transaction nobody commits.
                if mine.db.conn.in_transaction:
                    mine.db.conn.rollback()
                raise

    mine.db.atomic = immediate  # type: ignore[method-assign]
    try:
        yield mine
    finally:
        mine.close()


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
    on_wait: WaitCallback | None = None,
    parallel: bool = True,
) -> dict[str, list[StreamResult]]:
    """Sync several connections, in parallel; one that cannot even start is recorded as failed."""
    if names:
        for name in names:
            config.connection(name)  # clear error for a typo before anything runs
    names = names or [n for n, c in config.connections.items() if c.enabled]
    stop = stop or threading.Event()
    out: dict[str, list[StreamResult]] = {}
    connectors: dict[str, Connector] = {}
    for name in names:
        try:
            connectors[name] = build_connector(config, name)
        except HubError as exc:
            run_id = store.start_run("sync", name, None)
            store.finish_run(run_id, status="error", error=str(exc), duration_s=0.0)
            out[name] = [StreamResult(name, "*", status="error", error=str(exc))]
    first = [n for n, c in connectors.items() if not c.uses_account_domains]
    lookups = [n for n, c in connectors.items() if c.uses_account_domains]

    def one(db: Store, name: str) -> list[StreamResult]:
        return sync_connection(
            db,
            connectors[name],
            streams=streams,
            full_refresh=full_refresh,
            transport=transport,
            progress=progress,
            stop=stop,
            on_wait=on_wait,
        )

    with _stop_on_sigterm(stop):
        if parallel and len(first) + len(lookups) > 1 and store.path != ":memory:":
            feeders = _root_feeders(config, first)

            def before_lookups() -> None:
                # Other connections are still writing: map through a store whose
                # transactions take turns with theirs (the per-file lock), so neither side
                # waits out SQLite's busy timeout behind the other.
                with _thread_store(store) as mine:
                    refresh_accounts(mine, config)

            out.update(_in_threads(store, first, one, stop, lookups, feeders, before_lookups))
        else:
            for group in (first, lookups):
                if not group or stop.is_set():
                    continue
                if group is lookups:
                    refresh_accounts(store, config)
                for name in group:
                    out[name] = one(store, name)
    store.checkpoint()
    return {n: out[n] for n in names if n in out}


def _root_feeders(config: Config, names: list[str]) -> list[str]:
    """The connections whose records make the account roots (the mappings of the lowest
    ``order``): look-ups need only them, not every connection, before they can start."""
    try:
        mappings = list(get_registry().mappings.values())
    except HubError:
        return list(names)
    if not mappings:
        return list(names)
    first = min(m.order for m in mappings)
    connectors = {m.connector for m in mappings if m.order == first}
    return [n for n in names if config.connection(n).connector in connectors] or list(names)


@contextlib.contextmanager
def _stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """SIGTERM sets ``stop``: every wait wakes, each stream commits its page and stops.

    Only from the main thread (signal handlers cannot be set elsewhere), and the previous
    handler comes back afterwards, so a host (the scheduler) keeps its own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        log.warning("SIGTERM: stopping after the current page")
        stop.set()

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _in_threads(
    store: Store,
    group: list[str],
    one: Callable[[Store, str], list[StreamResult]],
    stop: threading.Event,
    lookups: list[str] | None = None,
    feeders: list[str] | None = None,
    before_lookups: Callable[[], None] | None = None,
) -> dict[str, list[StreamResult]]:
    """Every connection of ``group`` in a thread of its own, each on its own connection to
    the database. ``lookups`` start as soon as the ``feeders`` (the connections that bring
    the account roots) are done and ``before_lookups`` has run, while the rest of ``group``
    goes on: a first sync lasts about its slowest connection, not the roots plus the rest."""
    lookups = lookups or []

    def work(name: str) -> list[StreamResult]:
        with _thread_store(store) as db:
            return one(db, name)

    from hub.pipeline import limit_malloc_arenas

    limit_malloc_arenas()
    workers = max(1, len(group) + len(lookups))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hub-sync") as pool:
        futures = {name: pool.submit(work, name) for name in group}
        try:
            if lookups:
                for name in feeders if feeders is not None else group:
                    if name in futures:
                        futures[name].result()
                if not stop.is_set():
                    if before_lookups is not None:
                        before_lookups()
                    futures.update({name: pool.submit(work, name) for name in lookups})
            return {name: future.result() for name, future in futures.items()}
        except BaseException:
            stop.set()  # Ctrl-C in the main thread: every wait in the workers wakes
            raise


def refresh_accounts(store: Store, config: Config) -> None:
    """Bring the accounts up to date before per-account look-ups.

    Only the mappings that make account roots (the lowest ``order``) run, then identity and
    the accounts table: that is what ``account_domains()`` reads, at a fraction of a full
    ``hub map`` (which maps the rest afterwards, incrementally, as usual).
    """
    from hub.timeline import run_mappings

    try:
        mappings = list(get_registry().mappings.values())
        if not mappings:
            return
        first = min(m.order for m in mappings)
        run_mappings(
            store, config, mappings=[m for m in mappings if m.order == first], roots_only=True
        )
    except HubError as exc:
        log.warning("accounts could not be refreshed before the look-ups: %s", exc)


def summarize(results: dict[str, list[StreamResult]]) -> dict[str, Any]:
    """Totals across connections, for CLI output."""
    flat = [r for rs in results.values() for r in rs]
    return {
        "streams": len(flat),
        "failed": sum(1 for r in flat if r.status == "error"),
        "records": sum(r.records for r in flat),
        "changed": sum(r.changed for r in flat),
        "requests": sum(r.requests for r in flat),
        "skipped": sum(r.skipped for r in flat),
        "deferred": sum(1 for r in flat if r.status == "deferred"),
    }
