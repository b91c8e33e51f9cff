"""The standard mapping test suite: the properties every mapping must keep.

Subclass ``MappingTests`` in your plugin's tests, say how to fill a store with raw rows (the
way your connector would: sync it against your fake, or write rows with ``write_rows``) and
how to change them, and pytest collects these tests:

- the mapping is declared properly (name, connector, streams, typed ``Settings``) and every
  event it emits has a type it declares in ``event_types``;
- mapping the same rows again changes nothing (re-map is idempotent);
- mapping incrementally after a change gives exactly what a rebuild from scratch gives;
- a tombstone retracts the events of the record it deletes;
- a record whose event type changes (a CSAT rating from good to bad) leaves one event, of the
  new type, not both::

    from hub.testing.mappings import MappingTests, write_rows

    class TestAcmeMapping(MappingTests):
        mapping_class = AcmeMapping

        def load(self, store):               # the first sync
            write_rows(store, "acme", "tickets", [{"id": "1", "org_id": "o1", ...}])

        def change(self, store):             # a later sync: new and changed records
            write_rows(store, "acme", "tickets", [{"id": "2", ...}])

        def retype(self, store):             # change a record so its event type changes
            write_rows(store, "acme", "ratings", [{"id": "9", "score": "bad", ...}])
            return "ratings", "9"

The built-in mappings run this suite against the sandbox (``tests/test_mapping_standard.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar

try:
    import pytest
except ImportError:  # a plugin installed without its test extra
    raise ImportError(
        "hub.testing needs pytest: pip install 'cs-hub[test]' (or pytest) in your test environment"
    ) from None

from hub.store import RawRecord, Store, raw_table_name
from hub.timeline import Mapping, MappingSettings, run_mappings
from hub.timeline.origins import origin_of, parse_origin


def write_rows(
    store: Store,
    connection: str,
    stream: str,
    records: Iterable[dict[str, Any] | RawRecord],
    *,
    id_field: str = "id",
) -> int:
    """Store records in a raw table as a sync would (one page); dicts become ``RawRecord``s
    keyed by ``id_field``. Returns how many rows were new or changed."""
    page = [
        r if isinstance(r, RawRecord) else RawRecord(id=str(r[id_field]), data=r) for r in records
    ]
    return store.write_page(connection, stream, page, None)


def snapshot(store: Store) -> dict[str, list[tuple]]:
    """What a map run produces, without its timestamps: events, entities, links, accounts."""
    db = store.db

    def rows(sql: str) -> list[tuple]:
        return sorted(tuple(r) for r in db.execute(sql))

    # Origins by what they name (mapping, raw table, row), not by their code in this database.
    codes = {
        f"#{code}:": f"{mapping}/{table}:"
        for code, mapping, table in db.execute(
            "SELECT code, mapping, raw_table FROM _hub_map_origins"
        )
    }

    def named(origin: str | None) -> str | None:
        if origin and origin.startswith("#"):
            code, _, rest = origin.partition(":")
            return codes.get(code + ":", code + ":") + rest
        return origin

    return {
        "events": sorted(
            (*r[:-1], named(r[-1]))
            for r in db.execute(
                "SELECT id, entity, account_id, ts, source, type, summary, attrs, link, origin "
                "FROM events"
            )
        ),
        "entities": rows(
            "SELECT key, source, kind, source_id, name, domains, explicit_account, is_root, "
            "merged_into, deleted, facts FROM entities"
        ),
        "links": rows("SELECT entity, account_id, method, detail FROM account_links"),
        "accounts": [
            tuple(json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for v in r)
            for r in rows(
                "SELECT id, name, domain, owner_id, owner_name, owner_email, lifecycle_stage, "
                "mrr, plan, seats, renewal_date, customer_since, facts FROM accounts"
            )
        ],
    }


def diff(a: dict[str, list[tuple]], b: dict[str, list[tuple]], limit: int = 5) -> str:
    """A short description of how two snapshots differ (for assertion messages)."""
    out = []
    for table in a:
        left, right = set(a[table]), set(b[table])
        for row in sorted(left - right, key=str)[:limit]:
            out.append(f"{table} only in first:  {row}")
        for row in sorted(right - left, key=str)[:limit]:
            out.append(f"{table} only in second: {row}")
    return "\n".join(out) or "(no difference)"


class MappingTests:
    """Behaviour tests every mapping should pass. Override the hooks below."""

    mapping_class: ClassVar[type[Mapping] | None] = None
    # Mappings run beside it, e.g. the one that makes account roots, so links can form.
    other_mappings: ClassVar[list[type[Mapping]]] = []
    # ``[timeline.<name>]`` settings per mapping name.
    settings: ClassVar[dict[str, dict[str, Any]]] = {}

    # -- hooks ------------------------------------------------------------------------------

    def load(self, store: Store) -> None:
        """Fill raw tables as the first sync would."""
        raise NotImplementedError

    def change(self, store: Store) -> None:
        """Write what a later sync would bring: new, changed and deleted records."""
        raise NotImplementedError

    def retype(self, store: Store) -> tuple[str, str] | None:
        """Change one record so that the type of an event it gives changes; return its
        (stream, id). None skips the test (a mapping whose records never change type)."""
        return None

    def tombstone(self, store: Store) -> tuple[str, str]:
        """Delete one record that has events (write its tombstone); return (stream, id).

        The default picks the first row that owns events (``events.origin``) and stores it
        again with ``deleted`` set and its last body, as connectors store deletions."""
        mapping = self._mapping()
        tables = {raw_table_name(self.connection(), s): s for s in mapping.streams}
        for (origin,) in store.db.execute(
            "SELECT DISTINCT origin FROM events WHERE origin IS NOT NULL ORDER BY origin"
        ):
            owner, table, record_id = parse_origin(store, origin) or ("", "", "")
            if owner == mapping.name and table in tables:
                (data,) = store.db.execute(
                    f"SELECT data FROM [{table}] WHERE id = ?", [record_id]
                ).fetchone()
                page = [RawRecord(id=record_id, data=store.decode_raw(data), deleted=True)]
                store.write_page(self.connection(), tables[table], page, None)
                return tables[table], record_id
        pytest.skip("no row owns an event (override tombstone())")

    def connection(self) -> str:
        return self._mapping().connector

    # -- helpers ----------------------------------------------------------------------------

    def _mapping(self) -> type[Mapping]:
        assert self.mapping_class is not None, "set mapping_class"
        return self.mapping_class

    def run_map(self, store: Store, *, full: bool = False) -> None:
        """``hub map`` (``--full``) limited to this mapping and ``other_mappings``."""
        connections = {m.connector: [m.connector] for m in self.other_mappings}
        connections[self._mapping().connector] = [self.connection()]
        result = run_mappings(
            store,
            _Config(self.settings),
            full=full,
            connections=connections,
            mappings=[self._mapping(), *self.other_mappings],
        )
        assert not result.errors, result.errors

    def owned(self, store: Store, stream: str, record_id: str) -> list[tuple[str, str]]:
        name = self._mapping().name
        origin = origin_of(store, name, raw_table_name(self.connection(), stream), record_id)
        return sorted(
            tuple(r)
            for r in store.db.execute("SELECT id, type FROM events WHERE origin = ?", [origin])
        )

    @pytest.fixture
    def mapped(self, tmp_path):
        store = Store(tmp_path / "hub.db")
        self.load(store)
        self.run_map(store)
        yield store
        store.close()

    # -- the tests --------------------------------------------------------------------------

    def test_declares_itself(self, mapped):
        cls = self._mapping()
        assert cls.name and cls.connector, "set name and connector"
        assert cls.streams, "list the streams the mapping reads"
        assert issubclass(cls.Settings, MappingSettings)
        assert cls.Settings.model_config.get("extra") == "forbid"
        declared = {t.name for t in cls.event_types}
        others = {t.name for m in self.other_mappings for t in m.event_types}
        emitted = {t for (t,) in mapped.db.execute("SELECT DISTINCT type FROM events")}
        assert emitted & declared, "no event from load(): give it rows that make events"
        unknown = emitted - declared - others
        assert not unknown, f"emitted but not in event_types: {sorted(unknown)}"

    def test_remap_is_idempotent(self, mapped):
        before = snapshot(mapped)
        with mapped.db.atomic():
            mapped.db.execute("DELETE FROM _hub_map_state")  # every row is new again
        self.run_map(mapped)
        after = snapshot(mapped)
        assert before == after, diff(before, after)

    def test_incremental_equals_full_rebuild(self, mapped):
        self.change(mapped)
        self.run_map(mapped)
        incremental = snapshot(mapped)
        self.run_map(mapped, full=True)
        full = snapshot(mapped)
        assert incremental == full, diff(incremental, full)

    def test_tombstone_retracts(self, mapped):
        events_before = mapped.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        stream, record_id = self.tombstone(mapped)
        self.run_map(mapped)
        assert self.owned(mapped, stream, record_id) == [], "the deleted record kept events"
        assert mapped.db.execute("SELECT COUNT(*) FROM events").fetchone()[0] < events_before
        incremental = snapshot(mapped)
        self.run_map(mapped, full=True)
        full = snapshot(mapped)
        assert incremental == full, diff(incremental, full)

    def test_changed_event_type_leaves_one_event(self, mapped):
        target = self.retype(mapped)
        if target is None:
            pytest.skip("retype() not provided")
        stream, record_id = target
        before = self.owned(mapped, stream, record_id)
        assert before, f"{stream} {record_id} had no event before retype()"
        self.run_map(mapped)
        after = self.owned(mapped, stream, record_id)
        assert after, f"{stream} {record_id} has no event after retype()"
        assert {t for _, t in after} != {t for _, t in before}, "retype() changed no event type"
        assert len(after) <= len(before), f"events piled up: {before} → {after}"
        stale = {i for i, _ in before} - {i for i, _ in after}
        left = [
            i
            for i in stale
            if mapped.db.execute("SELECT 1 FROM events WHERE id = ?", [i]).fetchone()
        ]
        assert not left, f"old events left on the timeline: {left}"
        incremental = snapshot(mapped)
        self.run_map(mapped, full=True)
        full = snapshot(mapped)
        assert incremental == full, diff(incremental, full)


class _Config:
    """The part of ``hub.config.Config`` the map step reads: ``timeline`` sections, no
    connections (each mapping reads the connection named after its connector)."""

    def __init__(self, timeline: dict[str, dict[str, Any]]):
        self.timeline = dict(timeline)
        self.identity = None
        self.connections: dict[str, Any] = {}
