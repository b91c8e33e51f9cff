"""Benchmark of the health engine: full and incremental recompute at 10k and 100k accounts.

    python bench/bench_health.py            # 10k and 100k accounts × 100 events each
    python bench/bench_health.py --quick    # 10k only
    python bench/bench_health.py --sizes 10000,50000 --events 100 --keep /tmp/bench

For each size it generates accounts and events (spread over the last 180 days, with the mix
of types the built-in measures read) into a temporary database, then, in a fresh process so
that peak memory is the engine's own, runs a full recompute, touches 1% of the accounts (one
new event each), runs an incremental recompute, and a full recompute again (nothing changed
since: the score rows need no rewriting, as on a day few scores change). Prints seconds, accounts/s and peak RSS
(``resource.getrusage``; on Linux the process's own VmHWM, because getrusage() of an exec'd
child also counts its parent's memory), with the first size as the baseline for the time
ratio. At 100k a full run splits the accounts between two processes (``[health] workers``);
the figures include starting the worker. CPU seconds (this process's threads and the worker
processes) are printed beside the wall time: on a shared machine they say what the run cost
when wall time says what else was running. Targets (issue 21): 100k accounts / 10M events
full < 20 s on 2 cores, 1% changed < 1 s, peak RSS < 300 MB per process. The machine's load
average is printed too: other work slows every figure.

``--breakdown`` profiles one process over the first size's database: CPU seconds of the
aggregation statement alone (reading and decoding the events in SQLite), of the per-account
Python evaluation (measures, model, drivers), and of writing scores and history.

``--event-bytes DB`` prints the bytes per ``events`` row of any hub database (``dbstat``:
the table and each of its indexes), e.g. of a ``hub demo --companies 5000`` database.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.timezone.utc)
SPREAD_SECONDS = 180 * 86400

# (share of events in 1000ths, type, attrs SQL): the mix the built-in measures read.
MIX = [
    (200, "ticket_opened", "json_object('ticket_id', t)"),
    (180, "ticket_solved", "json_object('ticket_id', t, 'resolution_hours', abs(r) % 96)"),
    (20, "ticket_reopened", "json_object('ticket_id', t, 'reopens', 1)"),
    (20, "ticket_urgent", "json_object('ticket_id', t, 'priority', 'urgent')"),
    (80, "csat_good", "json_object('ticket_id', t)"),
    (20, "csat_bad", "json_object('ticket_id', t)"),
    (150, "invoice_paid", "json_object('invoice_id', 'in_' || t, 'amount', 100)"),
    (20, "invoice_paid_late", "json_object('invoice_id', 'in_' || t, 'days_late', 3)"),
    (15, "payment_failed", "json_object('invoice_id', 'in_' || t, 'attempt_count', 1)"),
    (10, "invoice_past_due", "json_object('invoice_id', 'in_' || t, 'days_overdue', 5)"),
    (5, "card_expiring", "json_object('exp_month', 12, 'exp_year', 2026, 'days_left', 20)"),
    (
        30,
        "mrr_changed",
        "json_object('mrr_before', 1000, 'mrr_after', 1000 + (r % 200), 'delta', r % 200)",
    ),
    (
        10,
        "subscription_upgraded",
        "json_object('mrr_before', 1000, 'mrr_after', 1100, 'seats_before', 10, 'seats_after', 11)",
    ),
    (
        10,
        "subscription_downgraded",
        "json_object('mrr_before', 1100, 'mrr_after', 1000, 'seats_before', 11, 'seats_after', 10)",
    ),
    (40, "contact_unsubscribed", "json_object('contact_id', t)"),
    (30, "lifecycle_changed", "json_object('from', 'opportunity', 'to', 'customer')"),
    (40, "deal_won", "json_object('deal_id', t, 'amount', 5000)"),
    (30, "nps_changed", "json_object('score', abs(r) % 11)"),
    (40, "widget_detected", "json_object('technology', 'Lumen Widget')"),
    (10, "widget_removed", "json_object('technology', 'Lumen Widget')"),
    (30, "competitor_detected", "json_object('technology', 'Intercom')"),
    (10, "competitor_removed", "json_object('technology', 'Intercom')"),
]
assert sum(m[0] for m in MIX) == 1000


def _type_case() -> tuple[str, str]:
    type_sql, attrs_sql, edge = ["CASE"], ["CASE"], 0
    for share, kind, attrs in MIX:
        edge += share
        type_sql.append(f"WHEN k < {edge} THEN '{kind}'")
        attrs_sql.append(f"WHEN k < {edge} THEN {attrs}")
    return " ".join(type_sql) + " END", " ".join(attrs_sql) + " END"


def generate(path: str, accounts: int, events: int) -> float:
    """Fill a new database with ``accounts`` accounts and ``events`` events each; seconds taken."""
    from hub import clock
    from hub.store import Store

    started = time.perf_counter()
    store = Store(path)
    db = store.db
    db.execute("PRAGMA cache_size = -65536")
    rows = []
    for i in range(accounts):
        facts = {
            "nps": i % 11,
            "contacts_total": 5 + i % 20,
            "contacts_unsubscribed": i % 4,
            "last_touch": clock.iso(NOW - dt.timedelta(days=i % 150)),
            "has_payment_method": i % 50 != 0,
            "card_expires": f"{2026 + i % 3}-{1 + i % 12:02d}",
            "widget_present": i % 10 != 0,
            "competitors": ["Intercom"] if i % 7 == 0 else [],
            "subscription_status": "canceled" if i % 40 == 0 else "active",
        }
        rows.append(
            (
                f"{5_000_000_000 + i}",
                f"Company {i}",
                f"company-{i}.example",
                str(70_000_000 + i % 40) if i % 30 else None,
                "customer",
                float(500 + (i % 50) * 100),
                ["starter", "growth", "enterprise"][i % 3],
                5 + i % 60,
                (NOW.date() + dt.timedelta(days=i % 365)).isoformat(),
                clock.iso(NOW - dt.timedelta(days=400)),
                json.dumps(facts),
                clock.iso(NOW),
            )
        )
    with db.atomic():
        db.conn.executemany(
            "INSERT INTO accounts (id, name, domain, owner_id, lifecycle_stage, mrr, plan, seats, "
            "renewal_date, customer_since, facts, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    # Bulk load without the secondary indexes, then rebuild them (sorting once is far faster
    # than maintaining five B-trees row by row).
    indexes = [
        (name, sql)
        for name, sql in db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
            "AND sql IS NOT NULL"
        )
    ]
    for name, _ in indexes:
        db.execute(f"DROP INDEX [{name}]")
    type_sql, attrs_sql = _type_case()
    mapped = clock.iso(NOW - dt.timedelta(days=1))
    step = 2000
    for lo in range(0, accounts, step):
        ids = [r[0] for r in rows[lo : lo + step]]
        with db.atomic():
            db.execute(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?), "
                "g AS MATERIALIZED (SELECT a.id AS aid, n.i AS i, a.rowid * 1000 + n.i AS t, random() AS r, "
                "abs(random()) % 1000 AS k FROM accounts a, n WHERE a.id >= ? AND a.id <= ?) "
                "INSERT INTO events (id, entity, account_id, ts, source, type, summary, attrs, link, mapped_at) "
                f"SELECT 'bench:' || aid || ':' || printf('%03d', i), 'bench:' || aid, aid, "
                "strftime('%Y-%m-%dT%H:%M:%S.000000Z', ?, '-' || (abs(r) % ?) || ' seconds'), "
                f"'bench', {type_sql}, '', {attrs_sql}, NULL, ? FROM g",
                [events - 1, ids[0], ids[-1], clock.iso(NOW), SPREAD_SECONDS, mapped],
            )
    for _, sql in indexes:
        db.execute(sql)
    db.execute("ANALYZE")
    store.close()
    return time.perf_counter() - started


def measure(path: str, accounts: int) -> dict[str, float]:
    """Full recompute, then 1% changed; runs in its own process (see ``main``)."""
    from hub import clock
    from hub.health import compute_health
    from hub.store import Store

    clock.set_source(lambda: NOW)
    store = Store(path)
    _fresh(store)
    children = _children_cpu()
    started, cpu = time.perf_counter(), time.process_time()
    full = compute_health(store, None, full=True)
    full_s = time.perf_counter() - started
    full_cpu = time.process_time() - cpu + _children_cpu() - children
    history_rows = store.db.execute("SELECT COUNT(*) FROM health_history").fetchone()[0]
    assert full.accounts == accounts, full
    # 1% of the accounts get one new event, mapped "now".
    changed = max(1, accounts // 100)
    ids = [r[0] for r in store.db.execute(f"SELECT id FROM accounts ORDER BY id LIMIT {changed}")]
    stamp = clock.iso(NOW)
    with store.db.atomic():
        store.db.conn.executemany(
            "INSERT OR REPLACE INTO events (id, entity, account_id, ts, source, type, summary, attrs, mapped_at) "
            "VALUES (?, ?, ?, ?, 'bench', 'payment_failed', '', '{}', ?)",
            [(f"bench:new:{aid}", f"bench:{aid}", aid, stamp, stamp) for aid in ids],
        )
    started, cpu = time.perf_counter(), time.process_time()
    inc = compute_health(store, None)
    inc_s = time.perf_counter() - started
    inc_cpu = time.process_time() - cpu
    assert not inc.full and inc.accounts == changed, inc
    # A full recompute again, nothing changed since (a daily run changes few scores): how
    # much of a full run is left when the score rows need no rewriting.
    store.db.execute("UPDATE health_scores SET computed_at = 'before'")
    children = _children_cpu()
    started, cpu = time.perf_counter(), time.process_time()
    again = compute_health(store, None, full=True)
    again_s = time.perf_counter() - started
    again_cpu = time.process_time() - cpu + _children_cpu() - children
    assert again.accounts == accounts, again
    rewritten = store.db.execute(
        "SELECT COUNT(*) FROM health_scores WHERE computed_at != 'before'"
    ).fetchone()[0]
    store.close()
    # Peak resident memory of this process, and of the largest worker process (a full run
    # over many accounts splits them between processes: see [health] workers). On Linux
    # getrusage() of an exec'd child also counts its parent's memory at fork time, so this
    # process's own peak is read from /proc (VmHWM) where there is one; the workers' figure
    # (getrusage of the children) is an upper bound for the same reason.
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    own = _vm_hwm_mb() or usage
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "accounts": accounts,
        "full_s": full_s,
        "full_cpu_s": full_cpu,
        "processes": _processes(accounts),
        "incremental_s": inc_s,
        "incremental_cpu_s": inc_cpu,
        "again_s": again_s,
        "again_cpu_s": again_cpu,
        "rewritten": rewritten,
        "history_rows": history_rows,
        "changed": changed,
        "accounts_per_s": accounts / full_s,
        "peak_rss_mb": max(own, workers),
        "rss_main_mb": own,
        "rss_getrusage_mb": usage,
        "rss_worker_mb": workers,
    }


def _fresh(store: Any) -> None:
    """A reused database (--reuse) starts like a fresh one: no scores, history or runs."""
    with store.db.atomic():
        for table in ("health_scores", "health_history", "health_days", "_hub_health_dirty"):
            store.db.execute(f"DELETE FROM {table}")
        store.db.execute("DELETE FROM _hub_runs WHERE kind = 'health'")
        store.db.execute("DELETE FROM events WHERE id LIKE 'bench:new%'")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def breakdown(path: str) -> dict[str, float]:
    """CPU seconds of one process's full pass, by part: the aggregation statement alone,
    the Python evaluation (the pass with a sink that drops the results, minus the
    statement), and writing the rows (the pass with the writer, minus the pass without)."""
    from hub import clock
    from hub.health.engine import Writer, build_plan, run_pass
    from hub.health.measures import Window
    from hub.health.settings import load_settings
    from hub.store import Store

    clock.set_source(lambda: NOW)
    store = Store(path)
    _fresh(store)
    settings = load_settings(None)
    agg, _plan = build_plan(settings, Window(NOW))
    sql, args = agg.sql(targets=False)
    cpu = time.process_time()
    groups = sum(1 for _ in store.db.execute(sql, args))
    sql_s = time.process_time() - cpu
    cpu = time.process_time()
    run_pass(store, settings, NOW, None, sink=lambda ev: None)
    pass_s = time.process_time() - cpu
    # Written twice: the first makes every history row (a first scoring), the second is a
    # recompute with nothing changed (scores rewritten, no history row).
    figures = {"accounts_with_events": groups, "sql_cpu_s": sql_s}
    for label in ("write_first", "write_again"):
        writer = Writer(store, NOW, scores=True, history=True)
        cpu = time.process_time()
        run_pass(store, settings, NOW, None, sink=writer)
        writer.flush()
        figures[f"{label}_cpu_s"] = time.process_time() - cpu - pass_s
    figures["python_cpu_s"] = pass_s - sql_s
    store.close()
    return figures


def event_bytes(path: str) -> dict[str, Any]:
    """Bytes per ``events`` row in ``path``, from ``dbstat``: the table and each of its
    indexes (pages, so free space inside pages counts), and the average text of each column."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT count(*) FROM events").fetchone()[0] or 1
        parts = dict(
            conn.execute(
                "SELECT name, sum(pgsize) FROM dbstat WHERE name = 'events' OR name IN "
                "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events') "
                "GROUP BY name"
            ).fetchall()
        )
        columns = [r[1] for r in conn.execute("PRAGMA table_xinfo(events)")]
        lengths = conn.execute(
            "SELECT " + ", ".join(f"avg(length([{c}]))" for c in columns) + " FROM events"
        ).fetchone()
        total_db = conn.execute(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        ).fetchone()[0]
        free = conn.execute(
            "SELECT freelist_count * page_size FROM pragma_freelist_count(), pragma_page_size()"
        ).fetchone()[0]
    finally:
        conn.close()
    return {
        "events": rows,
        "per_row": {name: size / rows for name, size in sorted(parts.items())},
        "per_row_total": sum(parts.values()) / rows,
        "events_share": sum(parts.values()) / max(1, total_db - free),
        "column_chars": {c: round(v or 0, 1) for c, v in zip(columns, lengths)},
        "database_bytes": total_db,
        "free_bytes": free,
    }


def _print_event_bytes(path: str) -> None:
    data = event_bytes(path)
    print(f"{path}: {data['events']:,} events")
    for name, size in data["per_row"].items():
        print(f"  {name:<32} {size:7.1f} bytes per event")
    print(
        f"  {'table + indexes':<32} {data['per_row_total']:7.1f} bytes per event "
        f"({data['events_share']:.0%} of the database's used pages; file "
        f"{data['database_bytes'] / 1e6:,.0f} MB, {data['free_bytes'] / 1e6:,.0f} MB free pages)"
    )
    print(
        "  average length by column: "
        + ", ".join(f"{c} {v:g}" for c, v in data["column_chars"].items())
    )


def _vm_hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _processes(accounts: int) -> int:
    from hub.health import PARALLEL_MIN_ACCOUNTS

    return 2 if accounts >= PARALLEL_MIN_ACCOUNTS and (os.cpu_count() or 1) >= 2 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k accounts only")
    parser.add_argument("--sizes", default=None, help="comma-separated account counts")
    parser.add_argument("--events", type=int, default=100, help="events per account")
    parser.add_argument("--keep", default=None, help="directory for the databases (kept)")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: reuse a database generated before"
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="profile one process on the first size"
    )
    parser.add_argument(
        "--phase", choices=["generate", "measure", "breakdown"], help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--event-bytes",
        metavar="DB",
        help="print bytes per events row (table and each index, from dbstat) of DB and exit",
    )
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--accounts", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.event_bytes:
        _print_event_bytes(args.event_bytes)
        return
    if args.phase == "generate":
        print(generate(args.db, args.accounts, args.events))
        return
    if args.phase == "measure":
        print(json.dumps(measure(args.db, args.accounts)))
        return
    if args.phase == "breakdown":
        print(json.dumps(breakdown(args.db)))
        return
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([10_000] if args.quick else [10_000, 100_000])
    )
    workdir = args.keep or tempfile.mkdtemp(prefix="hub-bench-health-")
    os.makedirs(workdir, exist_ok=True)
    results = []
    try:
        for size in sizes:
            path = os.path.join(workdir, f"health-{size}x{args.events}.db")
            if args.keep and args.reuse and os.path.exists(path):
                print(f"reusing {path}", flush=True)
            else:
                _generate(path, size, args.events)
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--phase",
                    "measure",
                    "--db",
                    path,
                    "--accounts",
                    str(size),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(result)
            print(
                f"  full {result['full_s']:.2f} s ({result['full_cpu_s']:.1f} CPU s, "
                f"{result['accounts_per_s']:,.0f} accounts/s, {result['processes']} "
                f"process(es)), 1% changed ({result['changed']:,}) "
                f"{result['incremental_s']:.2f} s ({result['incremental_cpu_s']:.2f} CPU s), "
                f"peak RSS {result['rss_main_mb']:.0f} MB (worker process "
                f"{result['rss_worker_mb']:.0f} MB), {result['history_rows']:,} history rows; "
                f"full again with nothing changed {result['again_s']:.2f} s "
                f"({result['again_cpu_s']:.1f} CPU s, {result['rewritten']:,} score rows "
                "rewritten)",
                flush=True,
            )
            if args.breakdown and size == sizes[0]:
                out = subprocess.run(
                    [sys.executable, __file__, "--phase", "breakdown", "--db", path],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                parts = json.loads(out.stdout.strip().splitlines()[-1])
                print(
                    f"  one process, CPU s: aggregation (SQLite reads and decodes the events) "
                    f"{parts['sql_cpu_s']:.2f}, Python evaluation {parts['python_cpu_s']:.2f}, "
                    f"writing (first scoring) {parts['write_first_cpu_s']:.2f}, writing "
                    f"(nothing changed) {parts['write_again_cpu_s']:.2f}",
                    flush=True,
                )
            if not args.keep:
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(path + suffix):
                        os.remove(path + suffix)
    finally:
        if not args.keep:
            with contextlib.suppress(OSError):
                os.rmdir(workdir)
    _summary(results, args.events)


TARGETS = {"full_s": 20.0, "incremental_s": 1.0, "peak_rss_mb": 300.0}
"""Issue 21, at 100,000 accounts × 100 events on 2 cores."""


def _summary(results: list[dict[str, Any]], events: int) -> None:
    base = results[0]
    print()
    print(
        f"{'accounts':>10} {'events':>12} {'full s':>8} {'CPU s':>7} {'acc/s':>9} {'1% s':>7} "
        f"{'RSS MB':>7} {'x base':>7}"
    )
    for r in results:
        print(
            f"{r['accounts']:>10,} {r['accounts'] * events:>12,} {r['full_s']:>8.2f} "
            f"{r['full_cpu_s']:>7.1f} {r['accounts_per_s']:>9,.0f} {r['incremental_s']:>7.2f} "
            f"{r['peak_rss_mb']:>7.0f} {r['full_s'] / base['full_s']:>7.1f}"
        )
    print()
    for r in results:
        if r["accounts"] != 100_000:
            continue
        for key, label in (
            ("full_s", "full recompute, s"),
            ("incremental_s", "1% changed, s"),
            ("peak_rss_mb", "peak RSS per process, MB"),
        ):
            met = "met" if r[key] < TARGETS[key] else f"MISSED by {r[key] - TARGETS[key]:.1f}"
            print(f"target at 100k: {label} {r[key]:.2f} < {TARGETS[key]:g}: {met}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end: {load} (other work on the machine slows every number)")


def _generate(path: str, size: int, events: int) -> None:
    """Generate a fresh database in a child process (so this one stays small)."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    print(f"generating {size:,} accounts × {events} events …", flush=True)
    gen = subprocess.run(
        [
            sys.executable,
            __file__,
            "--phase",
            "generate",
            "--db",
            path,
            "--accounts",
            str(size),
            "--events",
            str(events),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    gen_s = float(gen.stdout.strip().splitlines()[-1])
    print(f"  generated in {gen_s:.1f} s ({os.path.getsize(path) / 1e6:,.0f} MB)", flush=True)


if __name__ == "__main__":
    main()
