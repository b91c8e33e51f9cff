"""Push history is stored compactly (what a run's rows share kept once) and reads back whole,
in order; rows written in the earlier one-table form are converted by the migration."""

from __future__ import annotations

import sqlite3

from hub.store import Store
from hub.store.push_history import COLUMNS, insert_rows, list_runs, run_rows


def _row(run_id, i, **extra):
    return {
        "run_id": run_id,
        "target": "hubspot:crm",
        "action": "set",
        "object_type": "companies",
        "object_id": f"{100 + i}",
        "account_id": f"{100 + i}",
        "property": "hub_health_score",
        "old": str(50 + i),
        "new": str(60 + i),
        "task_id": None,
        "at": "2026-11-01T00:00:00.000000Z",
        **extra,
    }


def test_rows_read_back_whole_and_in_order(tmp_path):
    store = Store(tmp_path / "hub.db")
    try:
        run = store.start_run("push")
        rows = [
            _row(run, 0),
            _row(run, 1, property="hub_health_band", old=None, new="red"),
            _row(run, 2, account_id="200"),
            _row(run, 3, account_id=None),
            _row(
                run,
                4,
                action="task_created",
                object_type="tasks",
                property="",
                new="9001",
                task_id="task-1",
            ),
            _row(run, 5, action=None),  # written before ``action`` existed: a set
        ]
        assert insert_rows(store, rows) == len(rows)
        got = run_rows(store, run)
        expected = [{c: r.get(c) for c in COLUMNS} for r in rows]
        expected[-1]["action"] = "set"
        assert [{c: g[c] for c in COLUMNS} for g in got] == expected
        (item,) = list_runs(store)["items"]
        assert item["values_written"] == 5 and item["tasks_created"] == 1
        assert item["records"] == 5 and item["pushers"] == ["hubspot"]
        # One group per shared (run, target, action, object type, property, time).
        assert store.db.execute("SELECT count(*) FROM _hub_push_groups").fetchone()[0] == 3
    finally:
        store.close()


def test_old_one_table_history_is_converted(tmp_path):
    path = tmp_path / "hub.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE _hub_push_history")
    conn.execute("DROP TABLE _hub_push_groups")
    conn.execute(
        "CREATE TABLE _hub_push_history (run_id INTEGER, object_type TEXT, object_id TEXT, "
        "account_id TEXT, property TEXT, old TEXT, new TEXT, task_id TEXT, at TEXT, "
        "target TEXT, action TEXT)"
    )
    old = [
        (
            7,
            "companies",
            "101",
            "101",
            "hub_health_score",
            "40",
            "55",
            None,
            "T1",
            "hubspot:crm",
            None,
        ),
        (7, "tasks", "101", "101", "", None, "9001", "t-1", "T1", "hubspot:crm", None),
        (
            7,
            "companies",
            "102",
            None,
            "hub_health_score",
            "41",
            "56",
            None,
            "T1",
            "hubspot:crm",
            "set",
        ),
        (
            8,
            "companies",
            "101",
            "101",
            "hub_health_score",
            "55",
            "40",
            None,
            "T2",
            "hubspot:crm",
            "set",
        ),
    ]
    conn.executemany("INSERT INTO _hub_push_history VALUES (?,?,?,?,?,?,?,?,?,?,?)", old)
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'mapstore_m005_push_history_groups'")
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        names = ("run_id", "object_type", "object_id", "account_id", "property", "old", "new")
        seven = [tuple(r[n] for n in names) + (r["action"],) for r in run_rows(store, 7)]
        assert seven == [
            (7, "companies", "101", "101", "hub_health_score", "40", "55", "set"),
            (7, "tasks", "101", "101", "", None, "9001", "task_created"),
            (7, "companies", "102", None, "hub_health_score", "41", "56", "set"),
        ]
        assert [r["new"] for r in run_rows(store, 8)] == ["40"]
    finally:
        store.close()
