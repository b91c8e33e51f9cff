"""``hub map`` killed with SIGKILL at every commit point, then run again, ends exactly where an
uninterrupted run ends: the same accounts, links, entities and events.

The killed runs are real processes (forked from the test, so they start in milliseconds)
that SIGKILL themselves when their Nth transaction is about to commit
(``HUB_TEST_KILL_AT_COMMIT``); N walks every commit of the run. Two runs are covered: the
first map of a fresh sync, and an incremental map after the world moved on and was synced
again (where Stripe's end-of-run facts used to be lost).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hub import clock
from hub.store import Store
from hub.testing.mappings import diff, snapshot
from hub.timeline import KILL_ENV, run_mappings
from tests.helpers import two_syncs

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork and signals")
ROOT = Path(__file__).resolve().parent.parent


def state(store: Store) -> dict:
    out = snapshot(store)
    out["markers"] = sorted(store.db.execute("SELECT mapping, raw_table, seq FROM _hub_map_state"))
    out["pending"] = sorted(store.db.execute("SELECT * FROM _hub_map_pending"))
    return out


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    """first.db: one sync, never mapped; second.db: that sync mapped, then a later sync."""
    folder = tmp_path_factory.mktemp("crash")
    first, second, now = two_syncs(folder, companies=14, seed=3, days=9, map_between=True)
    return folder, first, second, now


def mapped(template: Path, path: Path) -> dict:
    shutil.copy(template, path)
    store = Store(path)
    try:
        run_mappings(store)
        return state(store)
    finally:
        store.close()


def killed_at(template: Path, path: Path, n: int) -> bool:
    """Run ``hub map`` in a child process that kills itself at its Nth commit; True if it
    was killed (False: the run has fewer commits and finished)."""
    shutil.copy(template, path)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    pid = os.fork()
    if pid == 0:  # the child: map, and die at the Nth commit
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
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, "the child failed before reaching its kill point"
    return False


@pytest.mark.parametrize("which", ["first", "incremental"])
def test_kill_at_every_commit_point_then_map_again(dbs, which, tmp_path):
    folder, first, second, now = dbs
    template = first if which == "first" else second
    clock.set_source(lambda: now)
    expected = mapped(template, tmp_path / "reference.db")
    assert expected["events"] and expected["accounts"] and not expected["pending"]
    path = tmp_path / "killed.db"
    points = 0
    for n in range(1, 200):
        if not killed_at(template, path, n):
            break
        points += 1
        store = Store(path)
        try:
            run_mappings(store)
            got = state(store)
        finally:
            store.close()
        assert got == expected, f"killed at commit {n}:\n" + diff(got, expected)
    assert points >= 10, f"only {points} commit points: is the kill hook installed?"


def test_hub_map_command_killed_mid_run_then_resumed(dbs, tmp_path):
    """The same through the real ``hub map`` command in a separate interpreter."""
    folder, _, second, now = dbs
    clock.set_source(lambda: now)
    expected = mapped(second, tmp_path / "reference.db")
    db = tmp_path / "hub.db"
    shutil.copy(second, db)
    code = (
        "import datetime, sys; from hub import clock; "
        f"clock.set_source(lambda: datetime.datetime.fromisoformat({now.isoformat()!r})); "
        "from hub.cli import main; sys.argv = ['hub', '--db', sys.argv[1], 'map']; main()"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), KILL_ENV: "12"}
    child = subprocess.run(
        [sys.executable, "-c", code, str(db)], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    env.pop(KILL_ENV)
    child = subprocess.run(
        [sys.executable, "-c", code, str(db)], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert child.returncode == 0, child.stderr.decode()[-2000:]
    store = Store(db)
    try:
        assert state(store) == expected
    finally:
        store.close()
