"""``hub map`` reads raw tables in bounded batches (whole pages at a time) and ends exactly where
one pass over everything ends; a run killed between two batches resumes from the last one."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from hub import clock
from hub.store import Store
from hub.testing.mappings import diff, snapshot
from hub.timeline import KILL_ENV, driver, run_mappings
from tests.helpers import two_syncs


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batches")
    first, second, now = two_syncs(folder, companies=12, seed=5, days=6, map_between=True)
    return first, second, now


def _map(template: Path, path: Path, batch: int, monkeypatch) -> tuple[dict, list]:
    shutil.copy(template, path)
    monkeypatch.setattr(driver, "BATCH_ROWS", batch)
    store = Store(path)
    try:
        run_mappings(store)
        markers = sorted(store.db.execute("SELECT mapping, raw_table, seq FROM _hub_map_state"))
        return snapshot(store), markers
    finally:
        store.close()


@pytest.mark.parametrize("which", ["first", "incremental"])
def test_small_batches_map_like_one_pass(synced, which, tmp_path, monkeypatch):
    first, second, now = synced
    template = first if which == "first" else second
    clock.set_source(lambda: now)
    whole, whole_markers = _map(template, tmp_path / "whole.db", 10**9, monkeypatch)
    small, small_markers = _map(template, tmp_path / "small.db", 5, monkeypatch)
    assert whole["events"] and whole["accounts"]
    assert small == whole, diff(small, whole)
    assert small_markers == whole_markers


def test_batches_end_at_whole_pages(synced, monkeypatch):
    _, second, _ = synced
    store = Store(second)
    try:
        table = max(
            store.raw_tables(),
            key=lambda t: store.db.execute(f"SELECT count(DISTINCT seq) FROM [{t}]").fetchone()[0],
        )
        pages = dict(store.db.execute(f"SELECT seq, count(*) FROM [{table}] GROUP BY seq"))
        monkeypatch.setattr(driver, "BATCH_ROWS", 3)
        batches = list(driver._batches(store, table, 0))
        assert len(batches) > 1
        seen = 0
        for upto, rows in batches:
            assert rows[-1]["seq"] == upto
            seen += len(rows)
            # Every page in the batch is there whole.
            for seq in {r["seq"] for r in rows}:
                assert sum(1 for r in rows if r["seq"] == seq) == pages[seq]
        assert seen == sum(pages.values())
    finally:
        store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork and signals")
def test_killed_between_batches_resumes(synced, tmp_path, monkeypatch):
    first, _, now = synced
    clock.set_source(lambda: now)
    expected, _ = _map(first, tmp_path / "reference.db", 5, monkeypatch)
    path = tmp_path / "killed.db"
    for n in (3, 9, 17):
        shutil.copy(first, path)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.environ[KILL_ENV] = str(n)
                store = Store(path)
                run_mappings(store)
                store.close()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        store = Store(path)
        try:
            run_mappings(store)
            got = snapshot(store)
        finally:
            store.close()
        assert got == expected, f"killed at commit {n}:\n" + diff(got, expected)
