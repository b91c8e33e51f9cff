"""One writer, exactly once: concurrent pushes and SIGKILL at every commit point of the
playbooks and push steps, against the HubSpot sandbox served over loopback HTTP.

* Two pushes at once (threads on separate connections, so only the conditional outbox claims
  stand between them), two ``hub push`` processes, and ``hub push`` beside ``hub run
  --once``: each task exists once in HubSpot.
* A forked child runs playbooks then push and is SIGKILLed right after its N-th database
  commit, for every N; a re-run then gives exactly what an uninterrupted run gives.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from hub.config import load_config
from hub.lock import DatabaseLock
from hub.playbooks import Outbox, run_playbooks, task_keys
from hub.push import run_push
from hub.sandbox.world import build_sandbox
from hub.store import Store
from hub.testing import hub_toml
from plugins.hubspot_pusher import marker_for
from tests.test_push import hub_tasks, seed_health

ROOT = Path(__file__).resolve().parent.parent
COMPANIES, SEED = 8, 3


def write_config(folder: Path, url: str) -> Path:
    return hub_toml(
        folder / "hub.toml",
        url,
        ["hubspot"],
        settings={"hubspot": {"burst_limit": 250, "search_per_second": 10}},
        extra="[push]\nmax_tasks_per_run = 0\nmax_tasks_per_owner = 0\n"
        "[push.hubspot]\nrecord_retry_delay = 0",
    ).path


@pytest.fixture
def world(tmp_path):
    """A served sandbox, a config pointing at it, and a database with health and open tasks."""
    sandbox = build_sandbox(companies=COMPANIES, seed=SEED)
    server = sandbox.serve()
    conf = write_config(tmp_path, server.url)
    store = Store(tmp_path / "hub.db")
    seed_health(store, sandbox)
    run_playbooks(store, load_config(conf))
    assert len(Outbox(store).tasks(["open"])) >= 3
    store.close()
    try:
        yield sandbox, conf
    finally:
        server.stop()


def assert_each_task_once(store: Store, hs: Any) -> None:
    tasks = Outbox(store).tasks()
    markers = [marker_for(t["id"]) for t in tasks]
    bodies = [t["properties"]["hs_task_body"] for t in hub_tasks(hs)]
    for task, marker in zip(tasks, markers, strict=True):
        count = sum(marker in b for b in bodies)
        assert count == (1 if task["status"] == "pushed" else 0), (task["status"], count)
    assert len(bodies) == sum(t["status"] == "pushed" for t in tasks)


def hub_cli(conf: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "HUB_CONFIG": str(conf)}
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "-c", str(conf), *args],
        cwd=conf.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_pushes_at_once_claim_each_task_once(world):
    sandbox, conf = world
    config = load_config(conf)
    stores = [Store(conf.parent / "hub.db"), Store(conf.parent / "hub.db")]
    results: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def push(i: int) -> None:
        barrier.wait()
        results[i] = run_push(stores[i], config)  # no lock: only the claims protect

    threads = [threading.Thread(target=push, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None and r.status in ("ok", "partial") for r in results), results
    assert_each_task_once(stores[0], sandbox.api("hubspot"))
    created = [a.task_id for r in results for a in r.tasks if a.action == "created"]
    assert len(created) == len(set(created)) == len(Outbox(stores[0]).tasks())
    for s in stores:
        s.close()


def test_two_hub_push_processes_and_push_beside_run_once(world):
    sandbox, conf = world
    hs = sandbox.api("hubspot")
    procs = [hub_cli(conf, "push"), hub_cli(conf, "push")]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes, outs
    for code, (_, err) in zip(codes, outs, strict=True):
        # The loser of the database lock says so in one line and writes nothing.
        assert code == 0 or ("another hub process" in err and "Traceback" not in err), err
    store = Store(conf.parent / "hub.db")
    assert_each_task_once(store, hs)
    # New work, then `hub push` beside `hub run --once` (which syncs, maps, scores, pushes).
    store.db.execute("UPDATE tasks SET status = 'cancelled' WHERE status = 'open'")
    store.db.execute("DELETE FROM health_history WHERE day >= date('now', '-8 days')")
    procs = [hub_cli(conf, "run", "--once"), hub_cli(conf, "push")]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert "Traceback" not in err, err
        assert proc.returncode == 0 or "another hub process" in err or "failed" in err, err
    assert_each_task_once(store, hs)
    store.close()


# -- SIGKILL at every commit point ------------------------------------------------------------


def _playbooks_then_push(db: Path, conf: Path) -> None:
    store = Store(db)
    config = load_config(conf)
    run_playbooks(store, config)
    with DatabaseLock(store):
        run_push(store, config)
    store.close()


def _run_killed_after(commit: int, db: Path, conf: Path) -> bool:
    """Fork a child that runs playbooks + push and SIGKILLs itself right after its
    ``commit``-th commit (at its next statement); True when it was killed."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            seen = [0]
            real_connect = sqlite3.connect

            def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
                conn = real_connect(*args, **kwargs)

                def trace(statement: str) -> None:
                    if seen[0] >= commit:
                        os.kill(os.getpid(), signal.SIGKILL)
                    if statement.lstrip().upper().startswith("COMMIT"):
                        seen[0] += 1

                conn.set_trace_callback(trace)
                return conn

            sqlite3.connect = connect
            _playbooks_then_push(db, conf)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _outcome(db: Path, hs: Any) -> dict[str, Any]:
    store = Store(db)
    try:
        tasks = Outbox(store).tasks()
        for task in tasks:
            found = [
                t
                for t in hub_tasks(hs)
                if marker_for(task["id"]) in t["properties"]["hs_task_body"]
            ]
            assert len(found) == (task["status"] == "pushed"), task
        log = sorted(
            store.db.execute(
                "SELECT object_id, property, value FROM _hub_push_log ORDER BY 1, 2"
            ).fetchall()
        )
        companies = {
            c["id"]: {k: v for k, v in c["properties"].items() if k.startswith("hub_health_")}
            for c in hs.objects("companies")
        }
        return {
            "tasks": sorted((t["account_id"], tuple(task_keys(t)), t["status"]) for t in tasks),
            "crm_tasks": sorted(t["properties"]["hs_task_subject"] for t in hub_tasks(hs)),
            "log": log,
            "companies": companies,
        }
    finally:
        store.close()


def test_sigkill_at_every_commit_point_then_rerun_equals_uninterrupted(world, tmp_path):
    sandbox, conf = world
    base = tmp_path / "base.db"
    shutil.copy(conf.parent / "hub.db", base)
    # The outbox of the fixture is the starting point of every trial: playbooks run again.
    with sqlite3.connect(base) as conn:
        conn.execute("DELETE FROM tasks")

    def trial(kill_after: int | None) -> tuple[bool, dict[str, Any]]:
        fresh = build_sandbox(companies=COMPANIES, seed=SEED)
        server = fresh.serve()
        try:
            folder = tmp_path / f"trial{kill_after}"
            folder.mkdir()
            here = write_config(folder, server.url)
            shutil.copy(base, folder / "hub.db")
            killed = False
            if kill_after is not None:
                killed = _run_killed_after(kill_after, folder / "hub.db", here)
            _playbooks_then_push(folder / "hub.db", here)  # the re-run
            return killed, _outcome(folder / "hub.db", fresh.api("hubspot"))
        finally:
            server.stop()

    _, expected = trial(None)
    assert expected["tasks"] and all(status == "pushed" for *_, status in expected["tasks"])
    points = 0
    for n in range(1, 200):
        killed, outcome = trial(n)
        for key in expected:
            if outcome[key] != expected[key] and isinstance(expected[key], list):
                extra = sorted(set(outcome[key]) ^ set(expected[key]))
                raise AssertionError(f"killed after commit {n}: {key} differs: {extra[:6]}")
        assert outcome == expected, f"killed after commit {n}"
        if not killed:
            break
        points += 1
    assert points >= 8  # playbooks' task inserts, the claims, the push log, the run records
