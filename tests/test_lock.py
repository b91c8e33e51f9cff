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


# -- one writer: never take over a live holder; a holder that lost the lock stops ----------

import datetime as dt  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

from hub.lock import database_lock, process_start  # noqa: E402
from hub.store import RawRecord  # noqa: E402


def _set_holder(store, **values):
    sets = ", ".join(f"{k} = ?" for k in values)
    with store.db.atomic():
        store.db.execute(
            f"UPDATE _hub_lock SET {sets} WHERE name = 'writer'", list(values.values())
        )


def test_live_holder_on_this_host_is_never_taken_over_however_stale(tmp_path):
    store = Store(tmp_path / "hub.db")
    holder = _other_process_lock(store)
    holder.started = process_start(holder.pid)
    holder.acquire()
    _set_holder(store, heartbeat_at="2000-01-01T00:00:00Z")  # suspended for a long time
    with pytest.raises(LockedError, match="another hub process"):
        DatabaseLock(store, stale_after=1).acquire()


def test_a_reused_pid_is_not_a_live_holder(tmp_path):
    store = Store(tmp_path / "hub.db")
    holder = _other_process_lock(store)
    holder.started = "1"  # the process that held it started long ago; this pid is new
    holder.acquire()
    mine = DatabaseLock(store)
    mine.acquire()
    assert mine.held


def test_other_host_holder_is_taken_over_only_when_stale(tmp_path):
    store = Store(tmp_path / "hub.db")
    remote = DatabaseLock(store, purpose="hub run")
    remote.host, remote.pid = "elsewhere", 1
    remote.acquire()
    with pytest.raises(LockedError, match="elsewhere"):
        DatabaseLock(store, stale_after=60).acquire()
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)).isoformat()
    _set_holder(store, heartbeat_at=old)
    DatabaseLock(store, stale_after=60).acquire()


def test_a_holder_that_lost_the_lock_stops_before_writing(tmp_path):
    store = Store(tmp_path / "hub.db")
    lost = []
    lock = DatabaseLock(store, on_lost=lambda: lost.append(True))
    lock.acquire()
    store.write_page("c", "s", [RawRecord("1", {"id": 1})], {"at": 1})
    _set_holder(store, host="elsewhere", pid=1)  # taken over while we were suspended
    with pytest.raises(LockedError, match="lost the database lock"):
        store.write_page("c", "s", [RawRecord("2", {"id": 2})], {"at": 2})
    assert store.db.execute("SELECT COUNT(*) FROM raw_c_s").fetchone()[0] == 1
    assert store.get_state("c", "s") == {"at": 1}
    assert lock.heartbeat() is False and lost == [True]


def test_runs_left_running_by_a_killed_process_become_interrupted(tmp_path):
    store = Store(tmp_path / "hub.db")
    run_id = store.start_run("sync", "c", "s")  # its process was SIGKILLed
    with database_lock(store, "hub sync"):
        pass
    status, error = store.db.execute(
        "SELECT status, error FROM _hub_runs WHERE id = ?", [run_id]
    ).fetchone()
    assert status == "interrupted" and "killed" in error


def test_database_lock_is_reentrant_and_refuses_a_second_process(tmp_path):
    store = Store(tmp_path / "hub.db")
    with database_lock(store, "hub run --once"), database_lock(store, "hub push"):
        row = store.db.execute("SELECT purpose FROM _hub_lock").fetchone()
        assert row == ("hub run --once",)
        proc = subprocess.run(
            [sys.executable, "-m", "hub", "--db", str(tmp_path / "hub.db"), "map"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert proc.returncode == 1 and "hub run --once" in proc.stderr
    assert store.db.execute("SELECT COUNT(*) FROM _hub_lock").fetchone()[0] == 0


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")
def test_a_paused_hub_run_is_never_run_beside_a_second_and_stops_when_taken_over(tmp_path):
    cfg = tmp_path / "hub.toml"
    cfg.write_text(
        '[hub]\ndatabase = "hub.db"\n[scheduler]\nrun_on_start = false\n'
        '[connections.s]\nconnector = "stripe"\nschedule = "every 12h"\n'
        '[connections.s.settings]\napi_key = "env:HUB_TEST_STRIPE_KEY"\n'
    )
    env = {**os.environ, "HUB_LOCK_HEARTBEAT": "0.5", "HUB_TEST_STRIPE_KEY": "sk_test_x"}
    first = subprocess.Popen(
        [sys.executable, "-m", "hub", "-c", str(cfg), "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = tmp_path / "hub.db"
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            if db.exists():
                store = Store(db)
                row = store.db.execute("SELECT pid FROM _hub_lock").fetchone()
                store.close()
                if row and row[0] == first.pid:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError("hub run never took the lock")
        os.kill(first.pid, signal.SIGSTOP)  # a laptop lid closed: no heartbeat any more
        store = Store(db)
        _set_holder(store, heartbeat_at="2000-01-01T00:00:00Z")
        second = subprocess.run(
            [sys.executable, "-m", "hub", "-c", str(cfg), "run"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1 and "another hub process" in second.stderr
        # Another host took the lock over meanwhile (its view: our heartbeat was stale).
        _set_holder(store, host="elsewhere", pid=1, heartbeat_at="2999-01-01T00:00:00Z")
        os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=30)
        assert first.returncode == 1, (out, err)
        assert "took the database lock over" in err and "Traceback" not in err
        assert store.db.execute("SELECT host FROM _hub_lock").fetchone() == ("elsewhere",)
        store.close()
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
            first.wait()
