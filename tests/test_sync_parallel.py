"""Connections sync in parallel threads, each on a connection of its own.

A thread race was once seen under load ("cannot start a transaction within a transaction"):
one sqlite3 connection carries one transaction state, so two threads on one connection
interleave their BEGINs. These tests hammer the parallel path: many writers on one file at
once, the writer-lock heartbeat beating every few milliseconds beside them, and the whole
sync of the sandbox repeated, each run storing exactly what the one before stored.
"""

from __future__ import annotations

import threading

from hub.lock import _Heartbeat, database_lock
from hub.store import RawRecord, Store
from hub.sync import _in_threads, _thread_store, sync_all
from tests.helpers import sandbox_config


def test_many_threads_write_pages_runs_and_bookmarks_at_once(tmp_path):
    store = Store(tmp_path / "hub.db")
    names = [f"conn{i}" for i in range(8)]
    connections: dict[str, set[int]] = {}
    stop = threading.Event()

    def one(db: Store, name: str) -> list[int]:
        assert db is not store  # never the caller's connection
        connections.setdefault(name, set()).add(id(db.db.conn))
        for page in range(40):
            run = db.start_run("sync", name, "items")
            records = [RawRecord(id=f"{page}-{i}", data={"n": i, "page": page}) for i in range(5)]
            db.write_page(name, "items", records, {"page": page})
            # A transaction nested in the thread's own, as the steps' helpers nest them.
            with db.db.atomic(), db.db.atomic():
                db.set_state(name, "other", {"page": page})
            db.finish_run(run, status="ok", records=5, duration_s=0.0)
        return [page]

    with database_lock(store, "test"):
        beats = _Heartbeat(store, _held_lock(store), every=0.002)
        beats.start()
        try:
            out = _in_threads(store, names, one, stop)
        finally:
            beats.stop()
    assert set(out) == set(names) and not stop.is_set()
    assert len({c for cs in connections.values() for c in cs}) == len(names)
    for name in names:
        assert store.db.execute(f"SELECT count(*) FROM [raw_{name}_items]").fetchone()[0] == 200
        assert store.get_state(name, "items") == {"page": 39}
        assert store.get_state(name, "other") == {"page": 39}
    finished = store.db.execute(
        "SELECT count(*) FROM _hub_runs WHERE kind = 'sync' AND status = 'ok'"
    ).fetchone()[0]
    assert finished == 8 * 40
    assert not store.db.conn.in_transaction
    store.close()


def _held_lock(store: Store):
    from hub.lock import DatabaseLock

    row = store.db.execute("SELECT pid, host FROM _hub_lock WHERE name = 'writer'").fetchone()
    lock = DatabaseLock(store, purpose="test")
    lock.pid, lock.host, lock.held = row[0], row[1], True
    return lock


def test_a_failed_page_leaves_no_transaction_open(tmp_path):
    """A page whose transaction fails is rolled back whole; the thread's connection is
    clean for the next page (never left inside a transaction nobody commits)."""
    store = Store(tmp_path / "hub.db")
    with _thread_store(store) as mine:
        try:
            with mine.db.atomic():
                mine.set_state("c", "s", {"n": 1})
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert not mine.db.conn.in_transaction
        mine.write_page("c", "s", [RawRecord(id="1", data={})], {"n": 2})
        assert not mine.db.conn.in_transaction
    assert store.get_state("c", "s") == {"n": 2}
    store.close()


def test_the_sandbox_synced_in_parallel_again_and_again_stores_the_same(tmp_path, monkeypatch):
    """Four connections, the look-ups starting while Stripe and Zendesk still write."""
    from hub.sandbox.world import build_sandbox

    monkeypatch.setenv("HUB_BUDGETS", "off")
    sandbox = build_sandbox(companies=15, seed=11)
    config = sandbox_config()
    store = Store(tmp_path / "hub.db")
    counts = []
    for _ in range(4):
        with database_lock(store, "test"):
            results = sync_all(
                store,
                config,
                ["hubspot", "stripe", "zendesk", "builtwith"],
                transport=sandbox.transport(),
                full_refresh=True,
            )
        failed = [(r.connection, r.stream, r.error) for rs in results.values() for r in rs]
        assert all(r.status == "ok" for rs in results.values() for r in rs), failed
        counts.append({t: store.db[t].count for t in store.raw_tables() if store.db[t].count})
    assert counts[0] and all(c == counts[0] for c in counts)
    # The look-ups ran beside the others, on the accounts mapped from HubSpot's companies.
    assert any(t.startswith("raw_builtwith_") for t in counts[0])
    store.close()
