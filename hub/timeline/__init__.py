"""Mappings and the unified timeline: raw rows → entities, account links, events, accounts.

The mapping contract (for plugin authors; see PLUGINS.md)
---------------------------------------------------------
A mapping is a ``Mapping`` subclass registered with ``register_mappings``::

    class AcmeMapping(Mapping):
        name = "acme"            # unique mapping name
        connector = "acme"       # the connector whose raw tables it reads
        streams = ["accounts", "tickets"]   # processed in this order

        def map_rows(self, ctx, stream, rows):
            for row in rows:              # row: {"id", "updated_at", "deleted", "data", ...}
                data = row["data"]
                if stream == "accounts":
                    ctx.entity("acme", "account", row["id"], name=data["name"],
                               domains=[data["website"]], explicit_account=data.get("crm_id"))
                else:
                    ctx.event(ctx.entity_key("acme", "account", data["account_id"]),
                              "ticket_opened", data["created_at"], source="acme",
                              source_id=row["id"], summary=f"Ticket #{row['id']} opened",
                              attrs={"priority": data["priority"]}, link=data["url"])

        def finalize(self, ctx):          # optional: time-dependent events ("renewal due")
            ...

``ctx.entity()`` declares a record that can belong to an account (only HubSpot companies are
``is_root``); ``ctx.event()`` adds a timeline event attached to an entity; identity
resolution (``hub.timeline.identity``) decides the account afterwards, so a mapping never needs to
know account ids. Event ids are deterministic (``source:type:source_id[:version]``), so
re-mapping is idempotent. ``ctx.facts(entity_key, **facts)`` merges facts (MRR, plan,
owner, renewal date…) that become account facts. ``ctx.raw(stream, id)`` reads another raw
row of the same connection; ``ctx.rows(stream)`` iterates a whole raw table (for
``finalize``); ``ctx.settings`` is ``[mappings.<name>]``-style config from
``hub.toml`` ``[timeline]``; ``ctx.now`` is ``hub.clock.now()``.

Incremental: each mapping sees only raw rows whose ``seq`` is above what it processed last
time (``_hub_map_state``); ``run_mappings(full=True)`` rebuilds everything from scratch and
gives the same result.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hub import clock
from hub.errors import HubError, MappingError
from hub.store import Store, raw_table_name
from hub.timeline.identity import normalize_domain, resolve
from hub.vocabulary import EventType, Source, vocabulary

log = logging.getLogger("hub.timeline")


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


class Mapping:
    """Base class of a mapping plugin: turns one connector's raw rows into entities and events."""

    name: ClassVar[str] = ""
    connector: ClassVar[str] = ""
    streams: ClassVar[list[str]] = []
    # Mappings run in ascending ``order``: the mapping that makes account roots first.
    order: ClassVar[int] = 100
    # What the mapping contributes to ``hub.vocabulary`` (see that module).
    source: ClassVar[Source | None] = None
    event_types: ClassVar[list[EventType]] = []
    facts: ClassVar[dict[str, str]] = {}

    def map_rows(self, ctx: MappingContext, stream: str, rows: Iterable[dict[str, Any]]) -> None:
        raise NotImplementedError

    def finalize(self, ctx: MappingContext) -> None:
        """Called once per run after all rows: emit events that depend on ``ctx.now``."""


@dataclass
class MappingContext:
    """What a mapping writes through. Buffers writes and flushes them in batches."""

    store: Store
    connection: str
    mapping: Mapping
    settings: dict[str, Any] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=clock.now)
    events_written: int = 0
    entities_written: int = 0
    skipped: list[str] = field(default_factory=list)
    _entities: dict[str, tuple] = field(default_factory=dict)
    _facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _events: dict[str, tuple] = field(default_factory=dict)
    _retract: set[str] = field(default_factory=set)

    @staticmethod
    def entity_key(source: str, kind: str, source_id: Any) -> str:
        return f"{source}:{kind}:{source_id}"

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
        if len(self._entities) >= 5000:
            self.flush()
        return key

    def facts(self, entity_key: str, **facts: Any) -> None:
        """Merge facts into an entity (None values are ignored)."""
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
        event_id = f"{source}:{type}:{source_id}" + (
            f":{version}" if version not in (None, "") else ""
        )
        when = to_iso(ts)
        if when is None:
            raise MappingError(f"event {event_id} has no valid time ({ts!r})")
        self._events[event_id] = (
            event_id,
            entity,
            when,
            source,
            type,
            summary,
            json.dumps(attrs or {}, sort_keys=True, default=str),
            link,
        )
        self._retract.discard(event_id)
        if len(self._events) >= 5000:
            self.flush()
        return event_id

    def retract(self, event_id: str) -> None:
        """Remove an event that no longer holds (e.g. a deleted record)."""
        self._events.pop(event_id, None)
        self._retract.add(event_id)

    def retract_prefix(self, prefix: str) -> None:
        """Remove every event whose id starts with ``prefix`` (flushes first)."""
        self.flush()
        self.store.db.execute(
            "DELETE FROM events WHERE id >= ? AND id < ?", [prefix, prefix + "\uffff"]
        )

    def raw(self, stream: str, record_id: Any) -> dict[str, Any] | None:
        """Another raw row's JSON body from this connection, or None."""
        table = raw_table_name(self.connection, stream)
        if not self.store.db[table].exists():
            return None
        row = self.store.db.execute(
            f"SELECT data FROM [{table}] WHERE id = ?", [str(record_id)]
        ).fetchone()
        return json.loads(row[0]) if row else None

    def rows(self, stream: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Every raw row of a stream of this connection."""
        return self.store.raw_rows(
            raw_table_name(self.connection, stream), include_deleted=include_deleted
        )

    def flush(self) -> None:
        db = self.store.db
        now = clock.iso()
        with db.atomic():
            if self._entities:
                db.conn.executemany(
                    "INSERT INTO entities (key, source, kind, source_id, name, domains, explicit_account, is_root, merged_into, deleted, facts, updated_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,COALESCE((SELECT facts FROM entities WHERE key = ?), '{}'),?) "
                    "ON CONFLICT(key) DO UPDATE SET name=excluded.name, domains=excluded.domains, "
                    "explicit_account=excluded.explicit_account, is_root=excluded.is_root, merged_into=excluded.merged_into, "
                    "deleted=excluded.deleted, updated_at=excluded.updated_at",
                    [(*row, row[0], now) for row in self._entities.values()],
                )
                self.entities_written += len(self._entities)
                self._entities.clear()
            if self._facts:
                keys = list(self._facts)
                current: dict[str, str] = {}
                for i in range(0, len(keys), 500):
                    chunk = keys[i : i + 500]
                    marks = ",".join("?" * len(chunk))
                    current.update(
                        db.execute(
                            f"SELECT key, facts FROM entities WHERE key IN ({marks})", chunk
                        ).fetchall()
                    )
                updates, inserts = [], []
                for key, facts in self._facts.items():
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
                    "INSERT INTO entities (key, source, kind, source_id, domains, is_root, deleted, facts, updated_at) VALUES (?,?,?,?,'[]',0,0,?,?)",
                    inserts,
                )
                self._facts.clear()
            if self._events:
                db.conn.executemany(
                    "INSERT INTO events (id, entity, ts, source, type, summary, attrs, link, mapped_at, account_id) "
                    "VALUES (?,?,?,?,?,?,?,?,?,(SELECT account_id FROM account_links WHERE entity = ?)) "
                    "ON CONFLICT(id) DO UPDATE SET entity=excluded.entity, ts=excluded.ts, summary=excluded.summary, "
                    "attrs=excluded.attrs, link=excluded.link, mapped_at=excluded.mapped_at, account_id=excluded.account_id "
                    "WHERE events.entity IS NOT excluded.entity OR events.ts IS NOT excluded.ts OR events.summary IS NOT excluded.summary "
                    "OR events.attrs IS NOT excluded.attrs OR events.link IS NOT excluded.link",
                    [(*row, now, row[1]) for row in self._events.values()],
                )
                self.events_written += len(self._events)
                self._events.clear()
            if self._retract:
                db.conn.executemany(
                    "DELETE FROM events WHERE id = ?", [(e,) for e in self._retract]
                )
                self._retract.clear()


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


def _connections_for(config: Any, connector: str) -> list[str]:
    if config is None:
        return [connector]
    return [
        name for name, c in config.connections.items() if c.connector == connector and c.enabled
    ]


def run_mappings(
    store: Store,
    config: Any = None,
    *,
    full: bool = False,
    connections: dict[str, list[str]] | None = None,
) -> MapResult:
    """Map new raw rows (or everything with ``full``), resolve identity, rebuild accounts.

    ``connections`` maps connector name → connection names; by default it comes from the
    config (or, without one, each connector's name is taken as its connection name).
    """
    from hub.registry import get_registry

    started = time.perf_counter()
    result = MapResult()
    db = store.db
    registry = get_registry()
    settings = dict(getattr(config, "timeline", None) or {})
    with store.recorded_run("map") as run:
        if full:
            with db.atomic():
                for table in (
                    "events",
                    "entities",
                    "account_links",
                    "identity_issues",
                    "_hub_map_state",
                    "accounts",
                ):
                    db.execute(f"DELETE FROM [{table}]")
        mappings = sorted(registry.mappings.values(), key=lambda m: (m.order, m.name))
        for mapping_cls in mappings:
            mapping = mapping_cls()
            names = (connections or {}).get(mapping.connector) or _connections_for(
                config, mapping.connector
            )
            for connection in names:
                ctx = MappingContext(
                    store=store,
                    connection=connection,
                    mapping=mapping,
                    settings=settings.get(mapping.name, {}),
                )
                for stream in mapping.streams:
                    table = raw_table_name(connection, stream)
                    state_key = (f"{mapping.name}", table)
                    row = db.execute(
                        "SELECT seq FROM _hub_map_state WHERE mapping = ? AND raw_table = ?",
                        state_key,
                    ).fetchone()
                    since = row[0] if row else 0
                    rows = list(store.raw_rows(table, since_seq=since))
                    if not rows:
                        continue
                    try:
                        mapping.map_rows(ctx, stream, rows)
                    except HubError as exc:
                        result.errors.append(f"{mapping.name}.{stream}: {exc}")
                        continue
                    ctx.flush()
                    result.rows += len(rows)
                    db.execute(
                        "INSERT INTO _hub_map_state (mapping, raw_table, seq, updated_at) VALUES (?,?,?,?) "
                        "ON CONFLICT(mapping, raw_table) DO UPDATE SET seq=excluded.seq, updated_at=excluded.updated_at",
                        [*state_key, max(r["seq"] for r in rows), clock.iso()],
                    )
                mapping.finalize(ctx)
                ctx.flush()
                result.entities += ctx.entities_written
                result.events += ctx.events_written
        identity = getattr(config, "identity", None)
        res = resolve(
            store,
            overrides=dict(identity.overrides) if identity else None,
            freemail=set(identity.freemail_domains) if identity else None,
        )
        result.links, result.unmatched, result.conflicts = (
            dict(res.links),
            res.unmatched,
            res.conflicts,
        )
        result.relinked_events = _relink_events(store, res.changed_entities)
        result.accounts = build_accounts(store)
        run.status = "ok" if not result.errors else "partial"
        run.records = result.rows
        run.error = "; ".join(result.errors) or None
        run.notes.append(
            f"{result.events} events, {result.accounts} accounts, {result.unmatched} unmatched"
        )
    result.duration_s = time.perf_counter() - started
    return result


def _relink_events(store: Store, entities: set[str]) -> int:
    """Point events of entities whose account changed (and unlinked events) at their account."""
    db = store.db
    total = 0
    with db.atomic():
        for start in range(0, len(entities), 500):
            chunk = sorted(entities)[start : start + 500]
            marks = ",".join("?" * len(chunk))
            cursor = db.execute(
                f"UPDATE events SET account_id = (SELECT account_id FROM account_links l WHERE l.entity = events.entity), mapped_at = ? "
                f"WHERE entity IN ({marks})",
                [clock.iso(), *chunk],
            )
            total += cursor.rowcount
        cursor = db.execute(
            "UPDATE events SET account_id = (SELECT account_id FROM account_links l WHERE l.entity = events.entity), mapped_at = ? "
            "WHERE account_id IS NULL AND entity IN (SELECT entity FROM account_links)",
            [clock.iso()],
        )
        total += cursor.rowcount
    return total


# Facts that add up across an account's entities (two Stripe customers → both MRRs count).
_SUMMED = {"mrr", "seats"}
_COLUMNS = [
    "name",
    "domain",
    "owner_id",
    "owner_name",
    "owner_email",
    "lifecycle_stage",
    "mrr",
    "plan",
    "seats",
    "renewal_date",
    "customer_since",
]


def build_accounts(store: Store) -> int:
    """Rebuild the ``accounts`` table from root entities and their linked entities' facts."""
    db = store.db
    accounts: dict[str, dict[str, Any]] = {}
    # Which source wins for a fact when several entities carry it: the vocabulary's rank.
    vocab = vocabulary()
    rows = db.query(
        "SELECT l.account_id, e.key, e.source, e.name, e.domains, e.facts, e.is_root, l.method "
        "FROM account_links l JOIN entities e ON e.key = l.entity ORDER BY l.account_id"
    )
    for row in rows:
        acc = accounts.setdefault(row["account_id"], {"facts": {}, "sources": {}, "_prio": {}})
        facts = json.loads(row["facts"] or "{}")
        if row["is_root"] and row["method"] == "root":
            acc["name"] = row["name"]
            domains = json.loads(row["domains"] or "[]")
            acc["domain"] = domains[0] if domains else None
        acc["sources"][row["source"]] = acc["sources"].get(row["source"], 0) + 1
        prio = vocab.fact_rank(row["source"])
        for key, value in facts.items():
            if key in _SUMMED and isinstance(value, (int, float)):
                acc["facts"][key] = acc["facts"].get(key, 0) + value
            elif key not in acc["facts"] or prio < acc["_prio"].get(key, 99):
                acc["facts"][key] = value
                acc["_prio"][key] = prio
    now = clock.iso()
    out = []
    for account_id, acc in accounts.items():
        if "name" not in acc:
            continue  # only live HubSpot companies are accounts
        facts = acc["facts"]
        record = {
            "id": account_id,
            "name": acc.get("name"),
            "domain": acc.get("domain"),
            "hubspot_company_id": account_id,
            **{col: facts.get(col) for col in _COLUMNS if col not in ("name", "domain")},
        }
        extra = {k: v for k, v in facts.items() if k not in _COLUMNS}
        extra["sources"] = acc["sources"]
        record["facts"] = json.dumps(extra, sort_keys=True, default=str)
        out.append(record)
    # Rewrite only accounts whose content changed, so ``updated_at`` tells the health engine
    # which accounts need recomputing.
    columns = [
        "id",
        "name",
        "domain",
        "hubspot_company_id",
        *[c for c in _COLUMNS if c not in ("name", "domain")],
        "facts",
    ]
    existing = {
        row[0]: tuple(row) for row in db.execute(f"SELECT {', '.join(columns)} FROM accounts")
    }
    changed = [r for r in out if tuple(r[c] for c in columns) != existing.get(r["id"])]
    keep = {r["id"] for r in out}
    with db.atomic():
        gone = [k for k in existing if k not in keep]
        for start in range(0, len(gone), 500):
            chunk = gone[start : start + 500]
            db.execute(f"DELETE FROM accounts WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        if changed:
            for r in changed:
                r["updated_at"] = now
            db["accounts"].upsert_all(changed, pk="id", batch_size=1000)
    return len(out)
