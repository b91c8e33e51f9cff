"""``hub run``'s pipeline ends where ``hub sync`` then ``hub map`` do, over two cycles, and
its map step counts what it mapped."""

from __future__ import annotations

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


def test_pipeline_ends_where_sync_then_map_does(tmp_path):
    piped, results = _cycles(tmp_path / "pipeline.db", pipeline=True)
    separate, plain = _cycles(tmp_path / "separate.db", pipeline=False)
    assert piped["events"] and piped["accounts"]
    assert piped == separate, diff(piped, separate)
    for got, want in zip(results, plain, strict=True):
        assert got.ok, got.errors
        assert got.steps["map"].rows == want.rows
        assert got.steps["map"].events == want.events
        assert got.steps["map"].accounts == want.accounts
