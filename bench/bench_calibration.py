"""Calibration of the health defaults against the sandbox world's ground truth.

    python bench/bench_calibration.py                       # 3 seeds × 2,000 companies
    python bench/bench_calibration.py --seeds 1,2 --companies 500 --weeks 2
    python bench/bench_calibration.py --keep /tmp/cal       # keep the databases ...
    python bench/bench_calibration.py --keep /tmp/cal --reuse --health '{"min_coverage": 0.6}'
                                                            # ... and rescore them only

The world (``hub/sandbox/world.py``) builds each company from an archetype: healthy,
expanding, slipping, at risk, churned. For each seed the script syncs the in-process sandbox,
maps, scores, then lets ``--weeks`` simulated weeks pass (a sync, map and score each week,
like ``hub demo``), and compares the final bands with the archetypes. Merge survivors are
left out (they hold two companies' records, so their truth is a mix).

The targets (issue 15): yellow must warn — at least half of the slipping accounts yellow or
red — while at least 97% of the healthy and expanding accounts stay green. The script prints
the band shares per archetype and seed, the totals, and whether each target holds; it exits
1 when one does not. ``--health`` passes a ``[health]`` table (JSON) to try other settings.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLIPPING_WARNED = 0.50  # at least this share of slipping accounts yellow or red
GOOD_GREEN = 0.97  # at least this share of healthy and expanding accounts green
BANDS = ("green", "yellow", "red", "churned", "none")


def _config(db_path: str, health: dict[str, Any] | None) -> Any:
    from hub.config import parse_config
    from hub.demo import demo_config

    data = demo_config(db_path).model_dump(exclude_none=True)
    if health:
        data["health"] = health
    return parse_config(data)


def build(seed: int, companies: int, weeks: int, folder: Path, health: Any) -> Path:
    """Sync, map and score a fresh world for ``weeks`` weeks; returns the database path."""
    from hub import clock
    from hub.health import compute_health
    from hub.sandbox.world import advance, build_sandbox
    from hub.store import Store
    from hub.sync import sync_all
    from hub.timeline import run_mappings

    path = folder / f"calibration-{companies}-{seed}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    sandbox = build_sandbox(companies=companies, seed=seed)
    clock.set_source(sandbox.world.now)
    config = _config(str(path), health)
    store = Store(path)
    try:
        for week in range(weeks + 1):
            if week:
                advance(sandbox, 7)
            sync_all(store, config, transport=sandbox.transport())
            run_mappings(store, config)
            compute_health(store, config)
        truth = {
            c.hubspot_id: c.archetype
            for c in sandbox.world.companies
            if c.key not in {x.merged_into for x in sandbox.world.companies if x.merged_into}
        }
        store.db["_calibration_truth"].insert_all(
            [{"account_id": k, "archetype": v} for k, v in truth.items()],
            pk="account_id",
            replace=True,
        )
        store.db.execute(
            "CREATE TABLE IF NOT EXISTS _calibration_clock (now TEXT)",
        )
        store.db.execute("DELETE FROM _calibration_clock")
        store.db.execute("INSERT INTO _calibration_clock VALUES (?)", [clock.iso()])
        store.db.conn.commit()
    finally:
        store.close()
        clock.set_source(None)
    return path


def rescore(path: Path, health: Any) -> None:
    """Score a kept database again (all accounts) with other ``[health]`` settings."""
    import datetime as dt

    from hub import clock
    from hub.health import compute_health
    from hub.store import Store

    store = Store(path)
    try:
        now = clock.parse(store.db.execute("SELECT now FROM _calibration_clock").fetchone()[0])
        assert isinstance(now, dt.datetime)
        clock.set_source(lambda: now)
        compute_health(store, _config(str(path), health), full=True)
    finally:
        store.close()
        clock.set_source(None)


def tally(path: Path) -> dict[str, collections.Counter[str]]:
    from hub.store import Store

    store = Store(path)
    try:
        got: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for archetype, band in store.db.execute(
            "SELECT t.archetype, h.band FROM _calibration_truth t "
            "LEFT JOIN health_scores h ON h.account_id = t.account_id"
        ):
            got[archetype][band or "none"] += 1
        return got
    finally:
        store.close()


def share(counter: collections.Counter[str], *bands: str) -> float:
    total = sum(counter.values())
    return sum(counter[b] for b in bands) / total if total else 0.0


def report(results: dict[int, dict[str, collections.Counter[str]]]) -> bool:
    overall: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    print(f"{'seed':>6} {'archetype':<10} {'n':>5} " + " ".join(f"{b:>8}" for b in BANDS))
    for seed, got in results.items():
        for archetype in sorted(got):
            counter = got[archetype]
            overall[archetype].update(counter)
            print(
                f"{seed:>6} {archetype:<10} {sum(counter.values()):>5} "
                + " ".join(f"{share(counter, b):>8.1%}" for b in BANDS)
            )
    print()
    for archetype in sorted(overall):
        counter = overall[archetype]
        print(
            f"{'all':>6} {archetype:<10} {sum(counter.values()):>5} "
            + " ".join(f"{share(counter, b):>8.1%}" for b in BANDS)
        )
    slipping = overall["slipping"]
    good = overall["healthy"] + overall["expanding"]
    warned = share(slipping, "yellow", "red")
    green = share(good, "green")
    ok_warn = warned >= SLIPPING_WARNED
    ok_green = green >= GOOD_GREEN
    print()
    print(
        f"slipping accounts yellow or red: {warned:.1%} (target ≥ {SLIPPING_WARNED:.0%}) "
        f"{'ok' if ok_warn else 'MISSED'}"
    )
    print(
        f"healthy and expanding accounts green: {green:.1%} (target ≥ {GOOD_GREEN:.0%}) "
        f"{'ok' if ok_green else 'MISSED'}"
    )
    per_seed = [
        (
            seed,
            share(got["slipping"], "yellow", "red"),
            share(got["healthy"] + got["expanding"], "green"),
        )
        for seed, got in results.items()
    ]
    print(
        "per seed (slipping warned, good green): "
        + ", ".join(f"{s}: {w:.1%} / {g:.1%}" for s, w, g in per_seed)
    )
    return ok_warn and ok_green


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated world seeds")
    parser.add_argument("--companies", type=int, default=2000)
    parser.add_argument("--weeks", type=int, default=4, help="simulated weeks after the first sync")
    parser.add_argument("--keep", help="folder for the databases (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="rescore the kept databases only")
    parser.add_argument("--health", help="a [health] table as JSON, instead of the defaults")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    health = json.loads(args.health) if args.health else None
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep) if args.keep else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        results = {}
        for seed in seeds:
            started = time.perf_counter()
            path = folder / f"calibration-{args.companies}-{seed}.db"
            if args.reuse and path.exists():
                rescore(path, health)
                how = "rescored"
            else:
                build(seed, args.companies, args.weeks, folder, health)
                how = f"built ({args.weeks} weeks)"
            results[seed] = tally(path)
            print(
                f"seed {seed}: {args.companies:,} companies {how} in "
                f"{time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
        return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
