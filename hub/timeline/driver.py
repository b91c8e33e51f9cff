"""The map step: run every mapping over new raw rows, resolve identity, rebuild accounts.

Crash safety: each stream's rows, the retraction of what they no longer say, the keys
``finalize`` must redo and the stream's map marker commit in one transaction; ``finalize``'s
writes and the clearing of those keys in another; identity links and the events they move
in a third. A run killed at any moment leaves a state from which the next ``hub map`` ends
exactly where an uninterrupted run would have.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hub import clock
from hub.errors import ConfigError, HubError
from hub.store import Store, raw_table_name
from hub.timeline.accounts import build_accounts
from hub.timeline.identity import resolve
from hub.timeline.mapping import Mapping, MappingContext
from hub.timeline.origins import convert_legacy as convert_legacy_origins

log = logging.getLogger("hub.timeline")

# Test-only: SIGKILL this process when its Nth transaction is about to commit, so crash
# tests can stop a real ``hub map`` between any two commit points.
KILL_ENV = "HUB_TEST_KILL_AT_COMMIT"

BATCH_ROWS = 2000
"""Raw rows mapped per batch (whole pages): what bounds the map step's memory."""


@dataclass
class MapResult:
    """Counts from one ``run_mappings`` call."""

    rows: int = 0
    entities: int = 0
    events: int = 0
    relinked_events: int = 0
    links: dict[str, int] = field(default_factory=dict)
    unmatched: int = 0
    conflicts: int = 0
    accounts: int = 0
    duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)


def validate_config(config: Any) -> None:
    """Validate every ``[timeline.<mapping>]`` section against its mapping's ``Settings``.

    Raises ``ConfigError`` (one line naming the key) for an unknown mapping name or key, or a
    bad value. ``load_config`` and ``hub check --offline`` call it.
    """
    from hub.registry import get_registry

    sections = getattr(config, "timeline", None) or {}
    mappings = get_registry().mappings
    origin = getattr(config, "path", None)
    prefix = f"{origin}: " if origin else ""
    for name, section in sections.items():
        if name not in mappings:
            known = ", ".join(sorted(mappings)) or "none installed"
            raise ConfigError(
                f"{prefix}unknown section timeline.{name}",
                hint=f"check the spelling; mappings: {known}; run `hub init --example` to see every option",
            )
        mappings[name].parse_settings(section, origin=origin)
    # A mapping whose connector is configured must accept an absent section too (BuiltWith's
    # ``our_technologies`` has no default: there is no sensible "our product").
    configured = {
        c.connector for c in (getattr(config, "connections", None) or {}).values() if c.enabled
    }
    for name, mapping in mappings.items():
        if name not in sections and mapping.connector in configured:
            mapping.parse_settings({}, origin=origin)


def _connections_for(config: Any, connector: str) -> list[str]:
    if config is None:
        return [connector]
    return [
        name for name, c in config.connections.items() if c.connector == connector and c.enabled
    ]


def _install_kill_hook(store: Store) -> None:
    target = int(os.environ.get(KILL_ENV) or 0)
    if target <= 0:
        return
    seen = 0

    def trace(statement: str) -> None:
        nonlocal seen
        if statement.strip().upper().startswith("COMMIT"):
            seen += 1
            if seen >= target:
                os.kill(os.getpid(), signal.SIGKILL)

    store.db.conn.set_trace_callback(trace)


def run_mappings(
    store: Store,
    config: Any = None,
    *,
    full: bool = False,
    connections: dict[str, list[str]] | None = None,
    mappings: list[type[Mapping]] | None = None,
    roots_only: bool = False,
) -> MapResult:
    """Map new raw rows (or everything with ``full``), resolve identity, rebuild accounts.

    ``connections`` maps connector name → connection names; by default it comes from the
    config (or, without one, each connector's name is taken as its connection name).
    ``mappings`` limits the run to those classes (default: every registered mapping).
    ``roots_only`` maps only each mapping's ``root_streams`` and skips ``finalize`` (what
    per-account look-ups need before a sync goes on; the next full map does the rest).
    """
    from hub.registry import get_registry

    started = time.perf_counter()
    result = MapResult()
    db = store.db
    registry = get_registry()
    sections = dict(getattr(config, "timeline", None) or {})
    _install_kill_hook(store)
    with store.recorded_run("map") as run:
        # A database from before raw compaction: convert it, once, in batches.
        store.compact_legacy_raw()
        convert_legacy_origins(store)  # likewise: events' origins from before their codes
        if full:
            with db.atomic():
                for table in (
                    "events",
                    "entities",
                    "account_links",
                    "identity_issues",
                    "_hub_map_state",
                    "_hub_map_pending",
                    "_hub_map_index",
                    "_hub_map_versions",
                    "_hub_dirty_accounts",
                    "accounts",
                ):
                    db.execute(f"DELETE FROM [{table}]")
        chosen = mappings if mappings is not None else list(registry.mappings.values())
        for mapping_cls in sorted(chosen, key=lambda m: (m.order, m.name)):
            mapping = mapping_cls()
            names = (connections or {}).get(mapping.connector) or _connections_for(
                config, mapping.connector
            )
            for connection in names:
                ctx = MappingContext(
                    store=store,
                    connection=connection,
                    mapping=mapping,
                    settings=sections.get(mapping.name),
                )
                _check_version(store, mapping, connection)
                result.rows += _map_streams(store, mapping, ctx, result, roots_only)
                if not roots_only:
                    _finalize(store, mapping, ctx)
                result.entities += ctx.entities_written
                result.events += ctx.events_written
        _link(store, config, result, hold=roots_only)
        run.status = "ok" if not result.errors else "partial"
        run.records = result.rows
        run.error = "; ".join(result.errors) or None
        run.notes.append(
            f"{result.events} events, {result.accounts} accounts, {result.unmatched} unmatched"
        )
    store.checkpoint()
    result.duration_s = time.perf_counter() - started
    return result


def _link(store: Store, config: Any, result: MapResult, *, hold: bool) -> None:
    """Identity, then the accounts of what changed.

    ``hold``: both run in one transaction. The root pass before look-ups runs while other
    connections still write; identity reads every entity, then clears the marks: holding the
    write lock from the read to the clearing means no mark set in between is cleared unseen
    (the same for the accounts' marks)."""
    identity = getattr(config, "identity", None)

    def work() -> None:
        res = resolve(
            store,
            overrides=dict(identity.overrides) if identity else None,
            freemail=set(identity.freemail_domains) if identity else None,
            only_changed=True,
        )
        result.links, result.unmatched, result.conflicts = (
            dict(res.links),
            res.unmatched,
            res.conflicts,
        )
        result.relinked_events = res.relinked_events
        result.accounts = build_accounts(store, only_changed=True)

    if hold:
        with store.db.atomic():
            work()
    else:
        work()


def _check_version(store: Store, mapping: Mapping, connection: str) -> None:
    """A mapping whose ``version`` changed since it last mapped this connection maps every
    row again: its markers and its own index are reset (events stay, and are replaced or
    retracted as the rows are mapped again)."""
    db = store.db
    row = db.execute(
        "SELECT version FROM _hub_map_versions WHERE mapping = ? AND connection = ?",
        [mapping.name, connection],
    ).fetchone()
    # No row: the database predates versions, i.e. version 1.
    if (row[0] if row is not None else 1) == mapping.version:
        return
    tables = [raw_table_name(connection, s) for s in mapping.streams]
    marks = ",".join("?" * len(tables))
    mapped = db.execute(
        f"SELECT count(*) FROM _hub_map_state WHERE mapping = ? AND raw_table IN ({marks}) AND seq > 0",
        [mapping.name, *tables],
    ).fetchone()[0]
    if not mapped:
        return  # never mapped: nothing to redo
    log.info(
        "mapping %s changed (version %s): mapping %s again",
        mapping.name,
        mapping.version,
        connection,
    )
    with db.atomic():
        db.execute(
            f"DELETE FROM _hub_map_state WHERE mapping = ? AND raw_table IN ({marks})",
            [mapping.name, *tables],
        )
        db.execute("DELETE FROM _hub_map_index WHERE scope = ?", [f"{mapping.name}/{connection}"])


def _map_streams(
    store: Store, mapping: Mapping, ctx: MappingContext, result: MapResult, roots_only: bool = False
) -> int:
    """Map each stream's new rows in bounded batches; each batch's rows, retractions, pending
    keys and the stream's marker commit together, so memory holds one batch, not a table."""
    db = store.db
    mapped = 0
    streams = mapping.streams
    if roots_only and mapping.root_streams is not None:
        streams = [s for s in streams if s in mapping.root_streams]
    for stream in streams:
        table = raw_table_name(ctx.connection, stream)
        row = db.execute(
            "SELECT seq FROM _hub_map_state WHERE mapping = ? AND raw_table = ?",
            [mapping.name, table],
        ).fetchone()
        for upto, rows in _batches(store, table, row[0] if row else 0):
            ctx.begin_batch(table, rows)
            try:
                mapping.map_rows(ctx, stream, rows)
            except HubError as exc:
                # Nothing of this batch is committed past what was flushed; the marker stays,
                # so the next run maps these rows (and the rest of the stream) again.
                result.errors.append(f"{mapping.name}.{stream}: {exc}")
                ctx.discard_batch()
                break
            with db.atomic():
                ctx.end_batch()
                db.execute(
                    "INSERT INTO _hub_map_state (mapping, raw_table, seq, updated_at) VALUES (?,?,?,?) "
                    "ON CONFLICT(mapping, raw_table) DO UPDATE SET seq=excluded.seq, updated_at=excluded.updated_at",
                    [mapping.name, table, upto, clock.iso()],
                )
            mapped += len(rows)
    return mapped


def _batches(store: Store, table: str, since: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(last seq, rows)`` of ``table`` after ``since``, about ``BATCH_ROWS`` rows at a time.

    A batch always ends at a whole page (``seq``), so the map marker, a seq, never splits one:
    the page sizes come from the index alone, then each batch is one range read.
    """
    if not store.db[table].exists():
        return
    pages = store.db.execute(
        f"SELECT seq, count(*) FROM [{table}] WHERE seq > ? GROUP BY seq ORDER BY seq", [since]
    ).fetchall()
    start, count = since, 0
    for i, (seq, n) in enumerate(pages):
        count += n
        if count >= BATCH_ROWS or i == len(pages) - 1:
            yield seq, list(store.raw_rows(table, since_seq=start, until_seq=seq))
            start, count = seq, 0


def _finalize(store: Store, mapping: Mapping, ctx: MappingContext) -> None:
    """Run ``finalize``; its last writes and the clearing of the keys it redid commit together."""
    keys = ctx.affected()
    mapping.finalize(ctx)
    with store.db.atomic():
        ctx.flush()
        ctx.clear_affected(keys)
        # Mapped and finalized whole with this version: no need to map again.
        store.db.execute(
            "INSERT INTO _hub_map_versions (mapping, connection, version, updated_at) "
            "VALUES (?,?,?,?) ON CONFLICT(mapping, connection) DO UPDATE SET "
            "version=excluded.version, updated_at=excluded.updated_at",
            [mapping.name, ctx.connection, mapping.version, clock.iso()],
        )
