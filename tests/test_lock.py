"""The database lock: a second `hub run` on the same database refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.errors import LockedError
from hub.lock import DatabaseLock
from hub.store import Store

ROOT = Path(__file__).resolve().parent.parent


def test_second_holder_is_refused_until_release(tmp_path):
    a, b = Store(tmp_path / "hub.db"), Store(tmp_path / "hub.db")
    first = DatabaseLock(a)
    first.acquire()
    with pytest.raises(LockedError) as info:
        _other_process_lock(b).acquire()
    assert f"pid {os.getpid()}" in str(info.value) and "another hub process" in str(info.value)
    first.release()
    other = _other_process_lock(b)
    other.acquire()
    assert other.held


def _other_process_lock(store):
    lock = DatabaseLock(store)
    lock.pid = os.getppid()  # an alive pid that is not ours
    return lock


def test_dead_holder_is_taken_over(tmp_path):
    store = Store(tmp_path / "hub.db")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ghost = DatabaseLock(store)
    ghost.pid = dead.pid
    ghost.acquire()  # written as if a process that has since died held it
    mine = DatabaseLock(store)
    mine.acquire()
    assert mine.held
    row = store.db.execute("SELECT pid FROM _hub_lock").fetchone()
    assert row[0] == os.getpid()


def test_hub_run_refuses_when_locked(tmp_path):
    (tmp_path / "hub.toml").write_text('[hub]\ndatabase = "hub.db"\n')
    store = Store(tmp_path / "hub.db")
    with DatabaseLock(store):
        proc = subprocess.run(
            [sys.executable, "-m", "hub", "-c", str(tmp_path / "hub.toml"), "run", "--once"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "another hub process" in lines[0] and "Traceback" not in proc.stderr
