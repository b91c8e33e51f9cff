"""The pipeline maps each connection as soon as its own sync is over (while the others still
sync): what it ends with is what ``hub sync`` then ``hub map`` give, over two cycles."""

from __future__ import annotations

import threading

import pytest

from hub import clock
from hub.pipeline import run_pipeline
from hub.sandbox.world import advance, build_sandbox
from hub.store import Store
from hub.sync import sync_all
from hub.testing.mappings import diff, snapshot
from hub.timeline import run_mappings
from tests.helpers import sandbox_config

pytest.importorskip("mappings.hubspot", reason="the HubSpot mapping is not installed yet")


def _cycles(path, *, pipeline: bool) -> tuple[dict, list]:
    sandbox = build_sandbox(companies=12, seed=21)
    clock.set_source(sandbox.world.now)
    config = sandbox_config()
    store = Store(path)
    results = []
    try:
        for week in range(2):
            if week:
                advance(sandbox, 8)
            if pipeline:
                results.append(
                    run_pipeline(
                        store, config, steps=("sync", "map"), transport=sandbox.transport()
                    )
                )
            else:
                sync_all(store, config, transport=sandbox.transport())
                results.append(run_mappings(store, config))
        return snapshot(store), results
    finally:
        store.close()
        clock.set_source(None)


def test_mapping_during_the_sync_ends_where_sync_then_map_does(tmp_path, monkeypatch):
    from hub import pipeline as pipeline_module

    # Which connections were mapped early, and from which threads.
    seen: list[tuple[str, str]] = []
    original = pipeline_module._EarlyMaps.__call__

    def spy(self, store, connection):
        seen.append((connection, threading.current_thread().name))
        return original(self, store, connection)

    monkeypatch.setattr(pipeline_module._EarlyMaps, "__call__", spy)
    overlapped, results = _cycles(tmp_path / "pipeline.db", pipeline=True)
    separate, plain = _cycles(tmp_path / "separate.db", pipeline=False)
    assert overlapped["events"] and overlapped["accounts"]
    assert overlapped == separate, diff(overlapped, separate)
    # Every connection with a mapping was mapped in a sync thread, not the main one.
    assert {c for c, _ in seen} == {"hubspot", "stripe", "zendesk", "builtwith"}
    assert all(t != threading.main_thread().name for _, t in seen)
    # The map step's counts include what was mapped early (events written may count a
    # ``finalize`` event twice: the early map and the map step each run ``finalize``).
    for got, want in zip(results, plain, strict=True):
        assert got.ok, got.errors
        assert got.steps["map"].rows == want.rows
        assert got.steps["map"].events >= want.events
        assert got.steps["map"].accounts == want.accounts
