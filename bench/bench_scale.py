"""scale: the whole pipeline at 5k–100k companies: wall time, hub memory, database bytes, requests.

For each size a fresh child process (so each size's peak RSS is its own) runs what a new
install lives through: the first run (sync → map → health → playbooks → push, then the health
backfill of the past five weeks), then four weekly cycles (the world advances 7 days, then the
pipeline again). The sandbox is served by a grandchild process (``bench/sandbox_proc.py``,
limits off), so the figures are the hub's alone; the connectors keep the budgets ``hub demo``
gives them (each API's highest), so HubSpot pacing is part of the wall time, as in production.

Printed per size: wall seconds per step and cycle, the hub process's peak RSS (``VmHWM``) and
the highest RSS seen inside each step (a sampler thread), database bytes (per raw record, per
account, and per table/index from ``dbstat``), requests per stream beside the floor (records ÷
the largest page the API allows), and the growth from one size to the next.

    python bench/bench_scale.py --companies 5000,20000        # alone
    python bench/run.py --only scale [--quick]                # in the suite
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
if str(BENCH.parent) not in sys.path:
    sys.path.insert(1, str(BENCH.parent))

from common import Options, Section  # noqa: E402

WEEKS = 4
# The largest page each stream's API allows, per request (the floor is records ÷ this). HubSpot
# companies listed with propertiesWithHistory page by 50; BuiltWith is one request per domain.
PAGE_MAX = {
    ("hubspot", "companies"): 50,
    ("hubspot", "contacts"): 100,
    ("hubspot", "deals"): 100,
    ("hubspot", "tasks"): 100,
    ("hubspot", "owners"): 100,
    ("stripe", "*"): 100,
    ("zendesk", "tickets"): 1000,
    ("zendesk", "users"): 1000,
    ("zendesk", "organizations"): 1000,
    ("zendesk", "ticket_events"): 1000,
    ("zendesk", "satisfaction_ratings"): 100,
    ("hubspot", "calls"): 100,
    ("hubspot", "emails"): 100,
    ("hubspot", "meetings"): 100,
    ("hubspot", "notes"): 100,
    ("builtwith", "*"): 1,
}
# HubSpot streams whose records carry their company links: one v4 association batch read per
# 1,000 records on top of the list pages; every CRM object list has an archived twin (one
# request when nothing is archived). Both are part of the floor.
LINKED = {"deals", "tasks", "calls", "emails", "meetings", "notes"}
HUBSPOT_CRM = {"companies", "contacts", *LINKED}
ASSOC_BATCH = 1000
# ``hub demo``'s HubSpot budget (the highest tier's burst): the pacing floor of a first sync.
HUBSPOT_BURST = (250, 10.0)


def _status_kb(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """A thread sampling this process's RSS every 50 ms: the peak inside each step."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_kb = max(self.peak_kb, _status_kb("VmRSS"))

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def take(self) -> float:
        """The peak since the last ``take`` (MB), and start a new window."""
        peak = max(self.peak_kb, _status_kb("VmRSS"))
        self.peak_kb = 0
        return round(peak / 1024, 1)

    def stop(self) -> None:
        self._stop.set()


def scale_config(db_path: str, url: str) -> Any:
    """``hub demo``'s config (each API at its highest budget) pointed at the served sandbox."""
    from hub.demo import demo_config

    config = demo_config(db_path)
    for conn in config.connections.values():
        conn.settings["base_url"] = url
    return config


def db_figures(path: Path) -> dict[str, Any]:
    """Bytes on disk (with the WAL), rows, and the biggest tables/indexes by ``dbstat``."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith("sqlite_")
        ]
        raw_rows = sum(
            conn.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0]
            for t in tables
            if t.startswith("raw_")
        )
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        accounts = conn.execute("SELECT count(*) FROM accounts").fetchone()[0]
        try:
            by_name = conn.execute(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
        except sqlite3.DatabaseError:
            by_name = []
        raw_bytes = sum(b for n, b in by_name if n.startswith("raw_"))
        raw_index_bytes = sum(
            b for n, b in by_name if n.startswith(("idx_raw_", "sqlite_autoindex_raw_"))
        )
    finally:
        conn.close()
    size = sum(
        os.path.getsize(str(path) + s) for s in ("", "-wal") if os.path.exists(str(path) + s)
    )
    return {
        "db_bytes": size,
        "raw_rows": raw_rows,
        "events": events,
        "accounts": accounts,
        "raw_bytes": raw_bytes,
        "raw_index_bytes": raw_index_bytes,
        "by_name": by_name[:14],
    }


def stream_requests(all_results: list[dict[str, list[Any]]]) -> list[dict[str, Any]]:
    """Per stream of the first sync: records, requests, requests per record and the floor."""
    rows = []
    for name, results in all_results[0].items():
        for r in results:
            page = PAGE_MAX.get((name, r.stream)) or PAGE_MAX.get((name, "*"))
            floor = math.ceil(r.records / page) if page and r.records else None
            if floor is not None and name == "hubspot" and r.stream in HUBSPOT_CRM:
                floor += 1  # the archived list
                if r.stream in LINKED:
                    floor += math.ceil(r.records / ASSOC_BATCH)
            rows.append(
                {
                    "stream": f"{name}.{r.stream}",
                    "records": r.records,
                    "requests": r.requests,
                    "req_per_record": round(r.requests / r.records, 4) if r.records else None,
                    "floor_per_record": round(1 / page, 4) if page else None,
                    "floor_requests": floor,
                    "seconds": round(r.duration_s, 2),
                    "later_requests": sum(
                        x.requests
                        for week in all_results[1:]
                        for x in week.get(name, [])
                        if x.stream == r.stream
                    ),
                }
            )
    return rows


def run_size(
    companies: int,
    seed: int,
    workdir: Path,
    weeks: int = WEEKS,
    profile: int | None = None,
    trace_memory: bool = False,
) -> dict[str, Any]:
    """The whole run at one size, in this process (the hub) with the sandbox in a child.

    ``profile=N`` profiles cycle N's pipeline (0 = the first run) into
    ``workdir/scale-<companies>-cycle<N>.prof`` (cProfile; read it with ``pstats``; the
    sync's connection threads into ``…-threads.prof``). ``trace_memory`` keeps a
    ``tracemalloc`` snapshot after each weekly cycle (tracing starts after the first run) and
    reports, in ``out["retained"]``, the
    allocation sites whose live memory grew most from one cycle to the next (what the
    process keeps between runs: caches, module-level state)."""
    from sandbox_proc import SandboxProcess

    from hub import clock
    from hub.pipeline import run_pipeline
    from hub.store import Store

    os.environ["HUB_BUDGETS"] = "off"  # one hub process: budgets need no sharing
    snapshots: list[Any] = []
    sampler = RssSampler().start()
    out: dict[str, Any] = {"companies": companies, "steps": [], "errors": []}
    tmp = Path(tempfile.mkdtemp(prefix=f"scale-{companies}-", dir=workdir))
    db = tmp / "hub.db"
    try:
        started = time.perf_counter()
        with SandboxProcess(companies, seed, timeout=1800) as sp:
            out["sandbox_start_s"] = round(sp.start_s, 2)
            # The hub's clock follows the world's (fixed between advances), as in ``hub demo``.
            world_now = {"t": clock.parse(sp.now)}
            clock.set_source(lambda: world_now["t"])
            config = scale_config(str(db), sp.url)
            store = Store(db)
            syncs: list[dict[str, list[Any]]] = []
            hub_s = 0.0
            try:
                for cycle in range(weeks + 1):
                    if cycle:
                        t0 = time.perf_counter()
                        world_now["t"] = clock.parse(sp.advance(7))
                        out["steps"].append(
                            {
                                "cycle": cycle,
                                "step": "world +7 days (sandbox)",
                                "seconds": round(time.perf_counter() - t0, 2),
                                "rss_mb": sampler.take(),
                            }
                        )
                    marks: list[tuple[str, float, float]] = []
                    sampler.take()

                    def on_step(
                        step: str, marks: list[tuple[str, float, float]] = marks, cycle: int = cycle
                    ) -> None:
                        marks.append((step, time.perf_counter(), time.process_time()))
                        if len(marks) > 1:
                            _close_step(out, cycle, marks[-2], marks[-1][1:], sampler)

                    profiler = None
                    threads: list[Any] = []
                    if profile is not None and profile == cycle:
                        import cProfile

                        profiler = cProfile.Profile()
                        _profile_threads(threads)
                        profiler.enable()
                    result = run_pipeline(store, config, on_step=on_step)
                    if profiler is not None:
                        profiler.disable()
                        threading.setprofile(None)  # type: ignore[arg-type]
                        name = f"scale-{companies}-cycle{cycle}"
                        profiler.dump_stats(str(workdir / f"{name}.prof"))
                        if threads:
                            import pstats

                            pstats.Stats(*threads).dump_stats(str(workdir / f"{name}-threads.prof"))
                    _close_step(
                        out, cycle, marks[-1], (time.perf_counter(), time.process_time()), sampler
                    )
                    out["errors"] += [f"week {cycle} {k}: {v}" for k, v in result.errors.items()]
                    if "sync" in result.steps:
                        syncs.append(result.steps["sync"])
                        for name, results in result.steps["sync"].items():
                            out["errors"] += [
                                f"week {cycle} sync {name}.{r.stream}: {r.error}"
                                for r in results
                                if r.status != "ok"
                            ]
                    if trace_memory and cycle:
                        import gc
                        import tracemalloc

                        gc.collect()
                        snapshots.append(tracemalloc.take_snapshot())
                        if len(snapshots) > 1:
                            out.setdefault("retained", []).append(
                                _retained(cycle, snapshots[-2], snapshots[-1])
                            )
                            snapshots.pop(0)
                    if cycle == 0:
                        from hub.health import backfill_health

                        t0, c0 = time.perf_counter(), time.process_time()
                        if profile is not None:
                            import cProfile

                            backfill_profiler = cProfile.Profile()
                            backfill_profiler.runcall(
                                backfill_health, store, config, days=35, every=7
                            )
                            backfill_profiler.dump_stats(
                                str(workdir / f"scale-{companies}-backfill.prof")
                            )
                        else:
                            backfill_health(store, config, days=35, every=7)
                        out["steps"].append(
                            {
                                "cycle": 0,
                                "step": "health backfill",
                                "seconds": round(time.perf_counter() - t0, 2),
                                "cpu_s": round(time.process_time() - c0, 2),
                                "rss_mb": sampler.take(),
                            }
                        )
                        if trace_memory:
                            import tracemalloc

                            # From the first weekly cycle on: what each cycle leaves behind.
                            tracemalloc.start(8)
                hub_s = sum(s["seconds"] for s in out["steps"] if "sandbox" not in s["step"])
            finally:
                store.close()
                clock.set_source(None)
        out["wall_s"] = round(time.perf_counter() - started, 2)
        out["hub_s"] = round(hub_s, 2)
        out["hub_cpu_s"] = round(sum(s.get("cpu_s", 0.0) for s in out["steps"]), 2)
        out["streams"] = stream_requests(syncs) if syncs else []
        out["db"] = db_figures(db)
        out["peak_rss_mb"] = round(_status_kb("VmHWM") / 1024, 1)
    finally:
        sampler.stop()
        if os.environ.get("HUB_BENCH_KEEP_DB"):
            out["db_path"] = str(db)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _retained(cycle: int, before: Any, after: Any, top: int = 8) -> dict[str, Any]:
    """The allocation sites whose live memory grew most between two cycles' ends."""
    stats = after.compare_to(before, "traceback")
    total = sum(s.size_diff for s in stats)
    sites = []
    for stat in stats[:top]:
        frames = [
            f"{Path(f.filename).name}:{f.lineno}"
            for f in stat.traceback
            if "/hub/" in f.filename
            or "/mappings/" in f.filename
            or "/connectors/" in f.filename
            or "/plugins/" in f.filename
        ][:3]
        sites.append(
            {"kb": round(stat.size_diff / 1024), "count": stat.count_diff, "where": frames}
        )
    return {"cycle": cycle, "grew_kb": round(total / 1024), "sites": sites}


def _profile_threads(profiles: list[Any]) -> None:
    """Profile every thread started from now on (cProfile sees only its own thread): the
    sync's connection threads go to ``profiles``, merged into ``…-threads.prof``."""
    import cProfile

    def bootstrap(frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        profiler = cProfile.Profile()
        profiles.append(profiler)
        profiler.enable()

    threading.setprofile(bootstrap)  # type: ignore[arg-type]


def _close_step(out, cycle, mark, end, sampler) -> None:
    step, began, cpu_began = mark
    row = {
        "cycle": cycle,
        "step": step,
        "seconds": round(end[0] - began, 2),
        "cpu_s": round(end[1] - cpu_began, 2),
        "rss_mb": sampler.take(),
        # RSS as the next step begins (after ``release_memory``): what the step left behind.
        "rss_end_mb": round(_status_kb("VmRSS") / 1024, 1),
    }
    out["steps"].append(row)
    # Progress on stderr: a 20k run lasts tens of minutes on a shared machine.
    print(f"[scale {out['companies']:,}] {json.dumps(row)}", file=sys.stderr, flush=True)


def run_child(companies: int, seed: int, workdir: Path, timeout: float = 3600) -> dict[str, Any]:
    """``run_size`` in a fresh interpreter (its own peak RSS); the JSON it prints."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        str(companies),
        "--seed",
        str(seed),
        "--workdir",
        str(workdir),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"companies": companies, "error": f"exit {proc.returncode}: {' ⏎ '.join(tail)}"}


def sizes_for(opts: Options) -> list[int]:
    chosen = os.environ.get("HUB_BENCH_SCALE_COMPANIES")
    if chosen:
        return [int(x) for x in chosen.split(",") if x.strip()]
    return opts.pick(smoke=[200], quick=[1000, 5000], full=[5000, 20000, 100000])


def run(opts: Options, sizes: list[int] | None = None) -> Section:
    section = Section("scale", "Scale: first run + 4 weekly cycles, hub process only")
    sizes = sizes or sizes_for(opts)
    previous: dict[str, Any] | None = None
    for n in sizes:
        print(f"[scale] {n:,} companies …", file=sys.stderr, flush=True)
        res = run_child(n, opts.seed, opts.workdir)
        if "error" in res:
            section.add(companies=n, note=res["error"][:400])
            section.status = "error"
            continue
        _report_size(section, res, previous)
        previous = res
    section.notes.append(
        "Each size runs in its own process (peak RSS = that process's VmHWM); the sandbox runs in "
        "a grandchild process and its build, advance and serving time are not the hub's. "
        "wall_s covers sandbox start to finish; hub_s is the sum of the hub's steps (wall); "
        "hub_cpu_s the CPU time the hub process spent in them (every thread)."
    )
    return section


def _report_size(section: Section, res: dict[str, Any], previous: dict[str, Any] | None) -> None:
    n = res["companies"]
    db = res["db"]
    per_cycle: dict[int, float] = {}
    for s in res["steps"]:
        if "sandbox" not in s["step"]:
            per_cycle[s["cycle"]] = per_cycle.get(s["cycle"], 0.0) + s["seconds"]
    by_step: dict[str, list[float]] = {}
    cpu_by_step: dict[str, list[float]] = {}
    for s in res["steps"]:
        by_step.setdefault(s["step"], []).append(s["seconds"])
        cpu_by_step.setdefault(s["step"], []).append(s.get("cpu_s") or 0.0)
    row = section.add(
        companies=n,
        wall_s=res["wall_s"],
        hub_s=res["hub_s"],
        hub_cpu_s=res.get("hub_cpu_s"),
        first_run_s=round(per_cycle.get(0, 0.0), 1),
        weekly_s=round(sum(v for k, v in per_cycle.items() if k) / max(1, len(per_cycle) - 1), 1),
        peak_rss_mb=res["peak_rss_mb"],
        db_mb=round(db["db_bytes"] / 1e6, 1),
        raw_rows=db["raw_rows"],
        events=db["events"],
        accounts=db["accounts"],
        bytes_per_raw=round(db["raw_bytes"] / db["raw_rows"]) if db["raw_rows"] else None,
        bytes_per_account=round(db["db_bytes"] / db["accounts"]) if db["accounts"] else None,
    )
    if previous:
        k = n / previous["companies"]
        row["growth"] = (
            f"×{k:g} companies: wall ×{res['hub_s'] / max(previous['hub_s'], 0.01):.2f}, "
            f"RSS ×{res['peak_rss_mb'] / max(previous['peak_rss_mb'], 0.1):.2f}, "
            f"db ×{db['db_bytes'] / max(previous['db']['db_bytes'], 1):.2f}"
        )
    steps = "; ".join(
        f"{name} {v[0]:.1f}" + (f" / {sum(v[1:]) / len(v[1:]):.1f}" if len(v) > 1 else "")
        for name, v in by_step.items()
    )
    section.notes.append(f"{n:,} companies, seconds per step (first run / weekly mean): {steps}.")
    cpu = "; ".join(
        f"{name} {v[0]:.1f}" + (f" / {sum(v[1:]) / len(v[1:]):.1f}" if len(v) > 1 else "")
        for name, v in cpu_by_step.items()
        if "sandbox" not in name
    )
    section.notes.append(
        f"{n:,} companies, hub CPU seconds per step (all threads; first run / weekly mean): "
        f"{cpu}. Wall minus CPU is waiting: on the sandbox process, on rate limits, on disk."
    )
    rss = {}
    for s in res["steps"]:
        rss[s["step"]] = max(rss.get(s["step"], 0.0), s["rss_mb"])
    section.notes.append(
        f"{n:,} companies, highest RSS (MB) inside each step: "
        + ", ".join(f"{k} {v:.0f}" for k, v in rss.items())
        + "."
    )
    section.notes.append(
        f"{n:,} companies, database by table/index (MB, dbstat): "
        + ", ".join(f"{name} {b / 1e6:.1f}" for name, b in db["by_name"])
        + "."
    )
    streams = "; ".join(
        f"{s['stream']} {s['requests']:,} req / {s['records']:,} rec = {s['req_per_record']} "
        f"(floor {s['floor_per_record']}, {s['floor_requests']} req; weekly total "
        f"{s['later_requests']})"
        for s in res["streams"]
    )
    section.notes.append(f"{n:,} companies, first sync requests per stream: {streams}.")
    hubspot = [s for s in res["streams"] if s["stream"].startswith("hubspot.")]
    if hubspot:
        sent = sum(s["requests"] for s in hubspot)
        floor = sum(s["floor_requests"] or 0 for s in hubspot)
        count, window = HUBSPOT_BURST
        section.notes.append(
            f"{n:,} companies, HubSpot first sync: {sent:,} requests against a floor of "
            f"{floor:,} (list pages of the largest size, the archived lists, company links "
            f"1,000 per read); at {count} per {window:g} s that is {sent / count * window:.0f} s "
            f"of pacing (floor {floor / count * window:.0f} s) whatever the hub's speed."
        )
    for grew in res.get("retained") or []:
        sites = "; ".join(
            f"{site['kb']:,} KB in {site['count']:,} blocks at {' < '.join(site['where']) or '?'}"
            for site in grew["sites"][:5]
        )
        section.notes.append(
            f"{n:,} companies, memory kept by weekly cycle {grew['cycle']} (tracemalloc): "
            f"{grew['grew_kb']:,} KB in all; largest: {sites}."
        )
    if res["errors"]:
        section.notes.append(f"{n:,} companies, errors: " + "; ".join(res["errors"])[:600])
    if n == 20000:
        section.goal("20k companies: first run + 4 weeks, hub wall", res["hub_s"], 180, "<", "s")
        section.goal("20k companies: hub peak RSS", res["peak_rss_mb"], 1024, "<", "MB")
        section.goal("20k companies: database", round(db["db_bytes"] / 1e6), 1000, "<", "MB")
    if n == 100000:
        section.goal("100k companies: hub peak RSS", res["peak_rss_mb"], 1024, "<", "MB")
        section.goal("100k companies: database", round(db["db_bytes"] / 1e6), 5000, "<", "MB")
    companies = next((s for s in res["streams"] if s["stream"] == "hubspot.companies"), None)
    if companies and companies["req_per_record"] is not None:
        section.goal(
            f"HubSpot companies requests per record, full read with history ({n:,})",
            companies["req_per_record"],
            0.021,
            "<=",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", default="5000,20000,100000")
    parser.add_argument("--one", type=int, help="run one size in this process, print JSON")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", default="/tmp/hub-bench")
    parser.add_argument("--weeks", type=int, default=WEEKS)
    parser.add_argument("--profile", type=int, help="with --one: cProfile this cycle (0 = first)")
    parser.add_argument(
        "--no-trim",
        action="store_true",
        help="with --one: no malloc_trim after each step and no arena limit (to measure them)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="with --one: keep the database (its path is printed in the JSON as db_path)",
    )
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="with --one: tracemalloc between cycles (what grows from one to the next)",
    )
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.no_trim:
        import hub.pipeline

        hub.pipeline.release_memory = lambda: None
        hub.pipeline.limit_malloc_arenas = lambda: None
    if args.keep:
        os.environ["HUB_BENCH_KEEP_DB"] = "1"
    if args.one:
        print(
            json.dumps(
                run_size(args.one, args.seed, workdir, args.weeks, args.profile, args.trace_memory),
                default=str,
            )
        )
        return
    from common import machine_info
    from run import render_markdown

    sizes = [int(x) for x in args.companies.split(",") if x.strip()]
    started = time.perf_counter()
    section = run(Options(mode="full", seed=args.seed, workdir=workdir), sizes)
    section.seconds = time.perf_counter() - started
    print(render_markdown([section], machine_info(), "scale", section.seconds))


if __name__ == "__main__":
    main()
