"""The mapping API: the ``Mapping`` base class, its typed settings, and ``MappingContext``.

A mapping reads one connector's raw rows and writes *entities* (records that belong to an
account), *facts* about them and *events* on the timeline, all through ``MappingContext``.
It never computes account ids: identity resolution (``hub.timeline.identity``) links
entities to accounts after every run.

Three rules keep incremental mapping equal to a rebuild from scratch (``hub map --full``):

- **Event ids are deterministic**: ``source:type:source_id[:version]``, so mapping a record
  again replaces its events instead of adding to them.
- **An event follows the record it came from.** An event emitted while a stream's rows are
  mapped, whose ``source_id`` is the id of one of those rows, is *owned* by that row. When the
  row is mapped again (changed, or arriving as a tombstone), every event it owned before and
  did not emit again is retracted. So a CSAT rating changed from good to bad leaves one
  ``csat_bad`` event, a solved ticket reopened loses ``ticket_solved``, and a deleted record
  loses its events, with no ``retract`` call in the mapping.
- **End-of-run work is recomputable.** ``finalize`` runs after the streams of every run; what
  it needs to redo is recorded with ``ctx.mark_affected(key)`` while rows are mapped, stored
  with the map marker in one transaction, and read back with ``ctx.affected()``: a run killed
  before ``finalize`` finished leaves the keys for the next run.
- **Finalize reads what changed, through indexes.** A mapping keeps its own index over its rows
  (``ctx.index(kind, key, refs, value)``: an open invoice and its due date, a deal and its
  companies), written with the rows' batch, and ``finalize`` asks it (``ctx.indexed``) instead
  of scanning a raw table. A mapping whose logic changes what it indexes raises ``version``:
  its rows are then mapped again from the start, once.

Events that no row owns (``finalize``'s, or ones keyed by another record's id) are the
mapping's to retract with ``ctx.retract(event_id)``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from hub import clock
from hub.errors import MappingError
from hub.store import Store, raw_table_name
from hub.store.rawdoc import orjson
from hub.timeline.identity import normalize_domain
from hub.timeline.mapindex import MapIndex
from hub.timeline.origins import origin_code
from hub.vocabulary import EventType, Source

# A buffer this large is written out in its own transaction mid-stream.
FLUSH_EVERY = 5000
RAW_CACHE = 2000
"""Documents ``MappingContext.raw`` remembers (least recently used go first)."""


def to_iso(value: Any) -> str | None:
    """Any timestamp (ISO text, unix seconds or ms, datetime) → ISO 8601 UTC text."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return clock.iso(value)
    if isinstance(value, dt.date):
        return clock.iso(dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc))
    parsed = clock.parse(value)
    return clock.iso(parsed) if parsed else None


def attrs_json(attrs: dict[str, Any] | None) -> str:
    """An event's ``attrs`` as stored: compact JSON text, keys sorted (readers use
    ``json_extract(attrs, '$.x')`` or parse it)."""
    if orjson is not None:
        try:
            return orjson.dumps(
                attrs or {},
                default=str,
                option=orjson.OPT_SORT_KEYS
                | orjson.OPT_NON_STR_KEYS
                | orjson.OPT_PASSTHROUGH_DATETIME,
            ).decode()
        except TypeError:  # an integer beyond 64 bits, say
            pass
    return json.dumps(
        attrs or {}, sort_keys=True, default=str, separators=(",", ":"), ensure_ascii=False
    )


def mark_accounts_dirty(store: Store, entity_keys: Iterable[str]) -> None:
    """The accounts these entities are linked to must be rebuilt (call inside the write's
    transaction; an entity not linked yet gets its account when identity links it)."""
    keys = sorted(entity_keys)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        store.db.execute(
            "INSERT OR IGNORE INTO _hub_dirty_accounts (account_id) SELECT DISTINCT account_id "
            f"FROM account_links WHERE entity IN ({','.join('?' * len(chunk))})",
            chunk,
        )


def event_id(source: str, type: str, source_id: Any, version: Any = None) -> str:
    """The deterministic id of an event: ``source:type:source_id[:version]``."""
    return f"{source}:{type}:{source_id}" + (f":{version}" if version not in (None, "") else "")


class MappingSettings(BaseModel):
    """Base of a mapping's ``[timeline.<name>]`` settings: unknown keys are refused.

    Subclass it with typed fields and defaults; ``ctx.settings`` is the validated instance.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style read, for mappings written before settings were typed."""
        value = getattr(self, key, None)
        return default if value is None else value


class Mapping:
    """Base class of a mapping plugin: turns one connector's raw rows into entities and events."""

    name: ClassVar[str] = ""
    connector: ClassVar[str] = ""
    streams: ClassVar[list[str]] = []
    # Mappings run in ascending ``order``: the mapping that makes account roots first.
    order: ClassVar[int] = 100
    # The streams whose rows make account roots (None: every stream): what the root pass
    # before per-account look-ups maps (``run_mappings(..., roots_only=True)``).
    root_streams: ClassVar[list[str] | None] = None
    # Raised when what the mapping derives from rows changes (e.g. what it indexes): its rows
    # are then mapped again from the start, once.
    version: ClassVar[int] = 1
    # ``[timeline.<name>]`` in hub.toml, validated when the config loads.
    Settings: ClassVar[type[MappingSettings]] = MappingSettings
    # What the mapping contributes to ``hub.vocabulary`` (see that module).
    source: ClassVar[Source | None] = None
    event_types: ClassVar[list[EventType]] = []
    facts: ClassVar[dict[str, str]] = {}

    @classmethod
    def parse_settings(cls, raw: Any, *, where: str | None = None, origin: Any = None) -> Any:
        """Validate ``[timeline.<name>]``; errors are one line naming the key, never a value."""
        from hub.config import validate_section

        if isinstance(raw, cls.Settings):
            return raw
        return validate_section(
            cls.Settings, {} if raw is None else raw, where or f"timeline.{cls.name}", origin
        )

    def map_rows(self, ctx: MappingContext, stream: str, rows: Iterable[dict[str, Any]]) -> None:
        raise NotImplementedError

    def finalize(self, ctx: MappingContext) -> None:
        """Called once per run after all rows: emit events that depend on ``ctx.now`` and redo
        the work recorded with ``ctx.mark_affected``."""


@dataclass
class MappingContext(MapIndex):
    """What a mapping writes through. Buffers writes and flushes them in batches."""

    store: Store
    connection: str
    mapping: Mapping
    settings: Any = None
    now: dt.datetime = field(default_factory=clock.now)
    events_written: int = 0
    entities_written: int = 0
    skipped: list[str] = field(default_factory=list)
    _entities: dict[str, tuple] = field(default_factory=dict)
    _facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _events: dict[str, tuple] = field(default_factory=dict)
    _retract: set[str] = field(default_factory=set)
    _members: dict[str, str] = field(default_factory=dict)
    # The batch of rows being mapped: their raw table, ids, and the owned events emitted.
    _batch_table: str | None = None
    _batch_ids: frozenset[str] = frozenset()
    _origin_prefix: str = ""
    _emitted: set[str] = field(default_factory=set)
    _affected: set[str] = field(default_factory=set)
    _index: dict[tuple[str, str], tuple[tuple[str, ...], str | None] | None] = field(
        default_factory=dict
    )
    _raw_cache: OrderedDict[tuple[str, str], dict[str, Any] | None] = field(
        default_factory=OrderedDict
    )
    _tables: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.settings = type(self.mapping).parse_settings(self.settings)

    @staticmethod
    def entity_key(source: str, kind: str, source_id: Any) -> str:
        return f"{source}:{kind}:{source_id}"

    # -- what mappings call -----------------------------------------------------------------

    def entity(
        self,
        source: str,
        kind: str,
        source_id: Any,
        *,
        name: str | None = None,
        domains: Iterable[str | None] = (),
        explicit_account: str | None = None,
        is_root: bool = False,
        merged_into: str | None = None,
        deleted: bool = False,
        facts: dict[str, Any] | None = None,
    ) -> str:
        """Declare (or update) an entity; returns its key. Domains are normalised here."""
        key = self.entity_key(source, kind, source_id)
        # Order kept (duplicates dropped): the first domain is the primary one (accounts.domain).
        normalised = list(dict.fromkeys(d for d in (normalize_domain(x) for x in domains) if d))
        self._entities[key] = (
            key,
            source,
            kind,
            str(source_id),
            name,
            json.dumps(normalised),
            str(explicit_account) if explicit_account not in (None, "") else None,
            1 if is_root else 0,
            str(merged_into) if merged_into else None,
            1 if deleted else 0,
        )
        if facts:
            self.facts(key, **facts)
        if len(self._entities) >= FLUSH_EVERY:
            self.flush()
        return key

    def member_domains(self, entity_key: str, domains: Iterable[str | None]) -> None:
        """The e-mail domains of an entity's people (an organization's users). Identity links
        the entity through them, as ``member_domain``, when it has no explicit id or domain
        of its own and they name exactly one account (free-mail domains never count)."""
        normalised = sorted({d for d in (normalize_domain(x) for x in domains) if d})
        self._members[entity_key] = json.dumps(normalised)

    def facts(self, entity_key: str, **facts: Any) -> None:
        """Merge facts into an entity (None values are ignored; "" clears a fact's value)."""
        self._facts.setdefault(entity_key, {}).update(
            {k: v for k, v in facts.items() if v is not None}
        )

    def event(
        self,
        entity: str,
        type: str,
        ts: Any,
        *,
        source_id: Any,
        summary: str,
        source: str | None = None,
        attrs: dict[str, Any] | None = None,
        link: str | None = None,
        version: Any = None,
    ) -> str:
        """Add or replace a timeline event; returns its deterministic id."""
        source = source or self.mapping.connector
        eid = event_id(source, type, source_id, version)
        when = to_iso(ts)
        if when is None:
            raise MappingError(f"event {eid} has no valid time ({ts!r})")
        origin = None
        if self._batch_table is not None and str(source_id) in self._batch_ids:
            origin = f"{self._origin_prefix}{source_id}"
            self._emitted.add(eid)
        self._events[eid] = (
            eid,
            entity,
            when,
            source,
            type,
            summary,
            attrs_json(attrs),
            link,
            origin,
        )
        self._retract.discard(eid)
        if len(self._events) >= FLUSH_EVERY:
            self.flush()
        return eid

    def retract(self, event_id: str) -> None:
        """Remove an event that no longer holds (e.g. a deleted record)."""
        self._events.pop(event_id, None)
        self._emitted.discard(event_id)
        self._retract.add(event_id)

    def retract_prefix(self, prefix: str) -> None:
        """Remove every event whose id starts with ``prefix`` (flushes first)."""
        self.flush()
        with self.store.db.atomic():
            self.store.db.execute(
                "DELETE FROM events WHERE id >= ? AND id < ?", [prefix, prefix + "\uffff"]
            )
        self._emitted = {e for e in self._emitted if not e.startswith(prefix)}

    def existing_events(self, prefix: str) -> set[str]:
        """Ids of stored events starting with ``prefix`` (flushes first): what ``finalize``
        compares with what still holds, to retract the rest."""
        self.flush()
        return {
            row[0]
            for row in self.store.db.execute(
                "SELECT id FROM events WHERE id >= ? AND id < ?", [prefix, prefix + "\uffff"]
            )
        }

    def mark_affected(self, key: str) -> None:
        """Note that ``finalize`` must redo ``key`` (e.g. a customer whose facts change).

        The keys are stored with the map marker, so a run killed before ``finalize`` ends
        leaves them for the next run."""
        self._affected.add(str(key))

    def affected(self) -> set[str]:
        """Every key marked this run or left by an interrupted run (for ``finalize``)."""
        stored = {
            row[0]
            for row in self.store.db.execute(
                "SELECT key FROM _hub_map_pending WHERE mapping = ? AND connection = ?",
                [self.mapping.name, self.connection],
            )
        }
        return stored | self._affected

    def raw(self, stream: str, record_id: Any) -> dict[str, Any] | None:
        """Another raw row's JSON body from this connection, or None.

        Documents looked up are remembered for the run (the last ``RAW_CACHE``): a ticket's
        requester or a touch's owner is decoded once, however many rows name it. Read them,
        never change them."""
        key = (stream, str(record_id))
        cache = self._raw_cache
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        table = raw_table_name(self.connection, stream)
        if table not in self._tables:
            self._tables[table] = self.store.db[table].exists()
        if not self._tables[table]:
            return None
        row = self.store.db.execute(f"SELECT data FROM [{table}] WHERE id = ?", [key[1]]).fetchone()
        doc = self.store.decode_raw(row[0]) if row else None
        cache[key] = doc
        if len(cache) > RAW_CACHE:
            cache.popitem(last=False)
        return doc

    def rows(self, stream: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Every raw row of a stream of this connection."""
        return self.store.raw_rows(
            raw_table_name(self.connection, stream), include_deleted=include_deleted
        )

    # -- what the driver calls --------------------------------------------------------------

    def begin_batch(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Rows of ``table`` are about to be mapped: events keyed by their ids belong to them."""
        self._batch_table = table
        self._batch_ids = frozenset(str(r["id"]) for r in rows)
        # Scoped by mapping: two mappings may read the same raw row (each owns what it emitted).
        self._origin_prefix = f"#{origin_code(self.store, self.mapping.name, table)}:"
        self._emitted = set()

    def discard_batch(self) -> None:
        """The mapping failed on this batch: drop what it buffered (the rows are mapped again
        next run, since their marker did not move)."""
        self._batch_table, self._batch_ids = None, frozenset()
        self._emitted = set()
        self._entities.clear()
        self._facts.clear()
        self._events.clear()
        self._retract.clear()
        self._members.clear()
        self._index.clear()

    def end_batch(self) -> None:
        """Write the batch and retract what its rows owned before and did not emit again."""
        ids = sorted(self._batch_ids)
        self._batch_table, self._batch_ids = None, frozenset()
        db = self.store.db
        with db.atomic():
            # What the rows owned, looked up before this batch's events are written: rows new
            # to the map own nothing yet, so the look-up only probes the index, instead of
            # fetching every event just written to see that the batch emitted it (a fifth of
            # a first map at 20,000 companies). Whatever it would find after the write but
            # not before was emitted by this batch, so it never is stale either way.
            stale: list[str] = []
            for start in range(0, len(ids), 500):
                origins = [f"{self._origin_prefix}{i}" for i in ids[start : start + 500]]
                marks = ",".join("?" * len(origins))
                stale.extend(
                    row[0]
                    for row in db.execute(
                        f"SELECT id FROM events WHERE origin IN ({marks})", origins
                    )
                    # Written again by this flush (owned by another row now, or by none).
                    if row[0] not in self._emitted and row[0] not in self._events
                )
            self.flush()
            db.conn.executemany("DELETE FROM events WHERE id = ?", [(e,) for e in stale])
            self._emitted = set()
            if self._affected:
                db.conn.executemany(
                    "INSERT OR IGNORE INTO _hub_map_pending (mapping, connection, key) VALUES (?,?,?)",
                    [(self.mapping.name, self.connection, k) for k in sorted(self._affected)],
                )

    def clear_affected(self, keys: set[str]) -> None:
        """``finalize`` has redone ``keys``: forget them (call inside the final transaction)."""
        self.store.db.conn.executemany(
            "DELETE FROM _hub_map_pending WHERE mapping = ? AND connection = ? AND key = ?",
            [(self.mapping.name, self.connection, k) for k in sorted(keys)],
        )
        self._affected -= keys

    def select_in(self, sql: str, keys: Iterable[str]) -> Iterator[tuple]:
        """Rows of ``sql`` for many keys in one statement: ``{keys}`` in it stands for the
        list (``x IN ({keys})``), passed as one JSON array, so there is no chunking and no
        limit on the number of keys. What the batch has buffered is written first, so the
        query sees it."""
        self.flush()
        yield from self.store.db.execute(
            sql.format(keys="SELECT value FROM json_each(?1)"), [json.dumps(sorted(keys))]
        )

    def flush(self) -> None:
        """Write buffered entities, facts, events and retractions in one transaction."""
        if not (
            self._entities
            or self._facts
            or self._members
            or self._events
            or self._retract
            or self._index
        ):
            return
        db = self.store.db
        now = clock.iso()
        touched = {*self._entities, *self._facts, *self._members}
        with db.atomic():
            if touched:
                mark_accounts_dirty(self.store, touched)
            if self._entities:
                db.conn.executemany(
                    "INSERT INTO entities (key, source, kind, source_id, name, domains, explicit_account, is_root, merged_into, deleted, facts, updated_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,'{}',?) "
                    "ON CONFLICT(key) DO UPDATE SET name=excluded.name, domains=excluded.domains, "
                    "explicit_account=excluded.explicit_account, is_root=excluded.is_root, merged_into=excluded.merged_into, "
                    "deleted=excluded.deleted, updated_at=excluded.updated_at, "
                    # A deleted record says nothing about its account any more.
                    "facts=CASE WHEN excluded.deleted = 1 THEN '{}' ELSE entities.facts END",
                    [(*row, now) for row in self._entities.values()],
                )
                self.entities_written += len(self._entities)
                self._entities.clear()
            if self._facts:
                self._flush_facts(now)
            if self._members:
                db.conn.executemany(
                    "UPDATE entities SET member_domains = ? WHERE key = ?",
                    [(v, k) for k, v in self._members.items()],
                )
                self._members.clear()
            if self._events:
                db.conn.executemany(
                    "INSERT INTO events (id, entity, ts, source, type, summary, attrs, link, origin, mapped_at, account_id) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,(SELECT account_id FROM account_links WHERE entity = ?)) "
                    "ON CONFLICT(id) DO UPDATE SET entity=excluded.entity, ts=excluded.ts, summary=excluded.summary, "
                    "attrs=excluded.attrs, link=excluded.link, origin=excluded.origin, "
                    "mapped_at=excluded.mapped_at, account_id=excluded.account_id "
                    "WHERE events.entity IS NOT excluded.entity OR events.ts IS NOT excluded.ts OR events.summary IS NOT excluded.summary "
                    "OR events.attrs IS NOT excluded.attrs OR events.link IS NOT excluded.link "
                    "OR events.origin IS NOT excluded.origin",
                    [(*row, now, row[1]) for row in self._events.values()],
                )
                self.events_written += len(self._events)
                self._events.clear()
            if self._retract:
                db.conn.executemany(
                    "DELETE FROM events WHERE id = ?", [(e,) for e in self._retract]
                )
                self._retract.clear()
            if self._index:
                self._flush_index()

    def _flush_facts(self, now: str) -> None:
        db = self.store.db
        keys = list(self._facts)
        current: dict[str, str | None] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for key, stored, deleted in db.execute(
                f"SELECT key, facts, deleted FROM entities WHERE key IN ({marks})", chunk
            ):
                current[key] = None if deleted else (stored or "{}")
        updates, inserts = [], []
        for key, facts in self._facts.items():
            if key in current and current[key] is None:
                continue  # a deleted entity carries no facts
            if key in current:
                merged = {**json.loads(current[key] or "{}"), **facts}
                updates.append((json.dumps(merged, sort_keys=True, default=str), key))
            else:
                source, kind, source_id = key.split(":", 2)
                inserts.append(
                    (
                        key,
                        source,
                        kind,
                        source_id,
                        json.dumps(facts, sort_keys=True, default=str),
                        now,
                    )
                )
        db.conn.executemany("UPDATE entities SET facts = ? WHERE key = ?", updates)
        db.conn.executemany(
            "INSERT INTO entities (key, source, kind, source_id, domains, is_root, deleted, facts, updated_at) "
            "VALUES (?,?,?,?,'[]',0,0,?,?)",
            inserts,
        )
        self._facts.clear()
