"""``hub map`` does work in proportion to what changed: ``finalize`` reads the mappings' own
index (open invoices, cards, open deals, contacts and users by company) instead of whole raw
tables, and still ends exactly where a rebuild from scratch ends, also days later when the
time-dependent events (past due, card expiring, renewal due) have moved."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from hub import clock
from hub.store import Store
from hub.testing.mappings import diff, snapshot
from hub.timeline import run_mappings
from tests.helpers import two_syncs


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    folder = tmp_path_factory.mktemp("incremental")
    return two_syncs(folder, companies=12, seed=11, days=9, map_between=True)


def _snapshot_after(path, now, *, full: bool) -> dict:
    clock.set_source(lambda: now)
    store = Store(path)
    try:
        run_mappings(store, full=full)
        return snapshot(store)
    finally:
        store.close()
        clock.set_source(None)


@pytest.mark.parametrize("later_days", [0, 45])
def test_incremental_equals_rebuild_days_later(synced, tmp_path, later_days):
    _, second, now = synced
    when = now + dt.timedelta(days=later_days)
    shutil.copy(second, tmp_path / "inc.db")
    shutil.copy(second, tmp_path / "full.db")
    _snapshot_after(tmp_path / "inc.db", now, full=False)  # the week's rows
    incremental = _snapshot_after(tmp_path / "inc.db", when, full=False)  # nothing new
    rebuilt = _snapshot_after(tmp_path / "full.db", when, full=True)
    assert incremental["events"]
    assert incremental == rebuilt, diff(incremental, rebuilt)


def test_rerun_with_nothing_new_decodes_almost_nothing(synced, tmp_path, monkeypatch):
    _, second, now = synced
    path = tmp_path / "hub.db"
    shutil.copy(second, path)
    _snapshot_after(path, now, full=False)
    store = Store(path)
    decoded = []
    real = store.codec.decode
    monkeypatch.setattr(store.codec, "decode", lambda v: decoded.append(1) or real(v))
    try:
        clock.set_source(lambda: now + dt.timedelta(days=1))
        run_mappings(store)
        raw_rows = sum(
            store.db.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0]
            for t in store.raw_tables()
        )
    finally:
        store.close()
        clock.set_source(None)
    # Only the time-dependent candidates (open invoices due, cards and renewals near their
    # date) are read again: a few per cent of the raw rows, never a whole table.
    assert len(decoded) < raw_rows * 0.06, (len(decoded), raw_rows)


def test_version_change_maps_every_row_again(synced, tmp_path, monkeypatch):
    from mappings.hubspot import HubSpotMapping

    _, second, now = synced
    path = tmp_path / "hub.db"
    shutil.copy(second, path)
    before = _snapshot_after(path, now, full=False)
    store = Store(path)
    try:
        # As a database from before the mapping's index: no version row, no index rows.
        with store.db.atomic():
            store.db.execute("DELETE FROM _hub_map_versions WHERE mapping = 'hubspot'")
            store.db.execute("DELETE FROM _hub_map_index WHERE scope LIKE 'hubspot/%'")
        contacts = store.db.execute("SELECT count(*) FROM raw_hubspot_contacts").fetchone()[0]
        monkeypatch.setattr(HubSpotMapping, "version", HubSpotMapping.version + 1)
        clock.set_source(lambda: now)
        result = run_mappings(store)
        assert result.rows >= contacts  # every HubSpot row again
        indexed = store.db.execute(
            "SELECT count(*) FROM _hub_map_index WHERE scope LIKE 'hubspot/%' AND kind = 'contact'"
        ).fetchone()[0]
        assert (
            indexed
            == store.db.execute(
                "SELECT count(*) FROM raw_hubspot_contacts WHERE deleted = 0"
            ).fetchone()[0]
        )
        (version,) = store.db.execute(
            "SELECT version FROM _hub_map_versions WHERE mapping = 'hubspot'"
        ).fetchone()
        assert version == HubSpotMapping.version
        assert snapshot(store) == before, diff(snapshot(store), before)
        # Mapped with this version: the next run maps nothing again.
        assert run_mappings(store).rows == 0
    finally:
        store.close()
        clock.set_source(None)


def test_only_changed_accounts_are_rebuilt(synced, tmp_path):
    _, second, now = synced
    path = tmp_path / "hub.db"
    shutil.copy(second, path)
    before = _snapshot_after(path, now, full=False)
    store = Store(path)
    try:
        assert store.db.execute("SELECT count(*) FROM _hub_dirty_accounts").fetchone()[0] == 0
        # One linked Stripe customer renamed upstream: only its account is looked at.
        account, customer = store.db.execute(
            "SELECT account_id, source_id FROM account_links WHERE source = 'stripe' "
            "AND kind = 'customer' ORDER BY entity LIMIT 1"
        ).fetchone()
        (data,) = store.db.execute(
            "SELECT data FROM raw_stripe_customers WHERE id = ?", [customer]
        ).fetchone()
        doc = store.decode_raw(data)
        doc["created"] = int(doc.get("created") or 0) - 86400  # customer_since moves a day
        from hub.store import RawRecord

        store.write_page("stripe", "customers", [RawRecord(id=customer, data=doc)], None)
        clock.set_source(lambda: now)
        from hub.timeline import accounts as accounts_module

        seen: list[list[str] | None] = []
        real = accounts_module._rebuild
        accounts_module._rebuild = lambda s, ids: seen.append(ids) or real(s, ids)
        try:
            run_mappings(store)
        finally:
            accounts_module._rebuild = real
        assert seen and all(ids is not None and account in ids for ids in seen)
        assert sum(len(ids or []) for ids in seen) <= 3, seen
        assert store.db.execute("SELECT count(*) FROM _hub_dirty_accounts").fetchone()[0] == 0
        after = snapshot(store)
        assert len(after["accounts"]) == len(before["accounts"])
    finally:
        store.close()
        clock.set_source(None)
    # And the result is what a rebuild from scratch gives.
    shutil.copy(path, tmp_path / "full.db")
    assert _snapshot_after(tmp_path / "full.db", now, full=True) == after


def test_legacy_origins_are_converted_and_still_retract(synced, tmp_path, monkeypatch):
    from hub.timeline import origins

    _, second, now = synced
    path = tmp_path / "hub.db"
    shutil.copy(second, path)
    before = _snapshot_after(path, now, full=False)
    store = Store(path)
    try:
        # As a database from before the codes: "<mapping>/<raw table>:<row id>".
        with store.db.atomic():
            for code, mapping, table in store.db.execute(
                "SELECT code, mapping, raw_table FROM _hub_map_origins"
            ).fetchall():
                store.db.execute(
                    "UPDATE events SET origin = ? || substr(origin, ?) WHERE origin >= ? AND origin < ?",
                    [f"{mapping}/{table}:", len(f"#{code}:") + 1, f"#{code}:", f"#{code};"],
                )
        legacy = store.db.execute("SELECT count(*) FROM events WHERE origin >= '0'").fetchone()[0]
        assert legacy > 10
        monkeypatch.setattr(origins, "BATCH", 7)  # several batches, each its own transaction
        clock.set_source(lambda: now)
        run_mappings(store)
        assert (
            store.db.execute("SELECT count(*) FROM events WHERE origin >= '0'").fetchone()[0] == 0
        )
        assert snapshot(store) == before, diff(snapshot(store), before)
        # A converted origin still owns its events: a tombstone retracts them.
        origin = store.db.execute(
            "SELECT origin FROM events WHERE origin IS NOT NULL ORDER BY origin LIMIT 1"
        ).fetchone()[0]
        mapping, table, record_id = origins.parse_origin(store, origin)
        (data,) = store.db.execute(
            f"SELECT data FROM [{table}] WHERE id = ?", [record_id]
        ).fetchone()
        from hub.store import RawRecord

        stream = table.split("_", 2)[2]
        connection = table.split("_", 2)[1]
        store.write_page(
            connection,
            stream,
            [RawRecord(id=record_id, data=store.decode_raw(data), deleted=True)],
            None,
        )
        run_mappings(store)
        assert not store.db.execute("SELECT 1 FROM events WHERE origin = ?", [origin]).fetchall()
    finally:
        store.close()
        clock.set_source(None)


def test_identity_resolved_only_when_its_inputs_moved(synced, tmp_path, monkeypatch):
    from hub.timeline import identity

    _, second, now = synced
    path = tmp_path / "hub.db"
    shutil.copy(second, path)
    _snapshot_after(path, now, full=False)
    store = Store(path)
    full_runs = []
    real = identity._relink_events
    monkeypatch.setattr(identity, "_relink_events", lambda *a: full_runs.append(1) or real(*a))
    try:
        clock.set_source(lambda: now)
        links = dict(store.db.execute("SELECT method, count(*) FROM account_links GROUP BY 1"))
        result = run_mappings(store)  # nothing new: the links stand
        assert not full_runs and dict(result.links) == links
        # A Stripe customer's e-mail domain changes: identity runs again.
        store.db.execute(
            "UPDATE entities SET domains = '[\"elsewhere.example\"]' WHERE key = "
            "(SELECT min(key) FROM entities WHERE source = 'stripe')"
        )
        store.db.conn.commit()
        assert store.db.execute("SELECT count(*) FROM _hub_identity_dirty").fetchone()[0] == 1
        run_mappings(store)
        assert full_runs == [1]
        assert store.db.execute("SELECT count(*) FROM _hub_identity_dirty").fetchone()[0] == 0
        # So does a new override, with no entity changed.
        from types import SimpleNamespace

        key = store.db.execute("SELECT min(key) FROM entities WHERE source = 'zendesk'").fetchone()[
            0
        ]
        account = store.db.execute("SELECT min(id) FROM accounts").fetchone()[0]
        config = SimpleNamespace(
            identity=SimpleNamespace(overrides={key: account}, freemail_domains=[]),
            timeline={},
            connections={},
        )
        run_mappings(store, config)
        assert full_runs == [1, 1]
    finally:
        store.close()
        clock.set_source(None)
