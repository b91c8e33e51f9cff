"""web: server time of every ``hub serve`` page on a demo database (issue 19: < 200 ms at
2,000 companies).

Builds (once, kept in the workdir) a demo database of N companies with ``hub.demo.run_demo``,
then requests each page in process through the ASGI app (Starlette's test client: the whole
app, middleware and templates, without a socket) a few times and reports the median and the
slowest. The first request of each page is a warm-up and not counted (it fills SQLite's page
cache, as any served page would have been).

Run alone: ``python bench/bench_web.py [--companies 2000] [--db PATH] [--repeat 5]``, or as
part of ``bench/run.py --only web``. ``--webhooks`` runs ``bench_webhooks.py`` instead (a
sandbox payment failure to the HubSpot property, webhooks vs the scheduled sync).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(BENCH.parent))

from common import Options, Section, fmt  # noqa: E402

TARGET_MS = 200


def build_database(path: Path, companies: int, seed: int) -> float:
    """Run the demo into ``path`` unless it is already there; returns the build seconds."""
    if path.exists():
        return 0.0
    from hub.demo import run_demo

    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run_demo(str(path), companies=companies, seed=seed, weeks=4)
    return time.perf_counter() - started


def pages(db: Path) -> list[tuple[str, str]]:
    """The pages to time, with real ids from the database: the account with most events."""
    conn = sqlite3.connect(db)
    try:
        busiest = conn.execute(
            "SELECT account_id FROM events WHERE account_id IS NOT NULL GROUP BY account_id "
            "ORDER BY COUNT(*) DESC LIMIT 1"
        ).fetchone()[0]
        owner = conn.execute("SELECT owner_id FROM accounts WHERE owner_id IS NOT NULL").fetchone()
        domain = conn.execute("SELECT domain FROM accounts WHERE domain IS NOT NULL").fetchone()
        run_id = conn.execute("SELECT MAX(id) FROM _hub_runs").fetchone()[0]
    finally:
        conn.close()
    return [
        ("overview", "/"),
        ("accounts", "/accounts"),
        ("accounts red", "/accounts?band=red"),
        ("accounts owner+coverage", f"/accounts?owner={owner[0]}&coverage=full"),
        ("accounts search", f"/accounts?q={domain[0][:6]}"),
        ("accounts sort mrr p3", "/accounts?sort=mrr&dir=desc&page=3"),
        ("accounts.csv (all)", "/accounts.csv"),
        ("accounts.json (all)", "/accounts.json"),
        ("account (busiest)", f"/accounts/{busiest}"),
        ("account stripe only", f"/accounts/{busiest}?source=stripe"),
        ("explain", f"/accounts/{busiest}/explain"),
        ("portfolio", "/portfolio"),
        ("identity", "/identity"),
        ("runs", "/runs"),
        ("run", f"/runs/{run_id}"),
        ("settings", "/settings"),
        ("not found", "/accounts/no-such-account"),
    ]


def measure(db: Path, repeat: int) -> list[dict[str, Any]]:
    from hub.store import Store
    from hub.web import WebOptions, create_app

    Store(db).close()  # apply pending migrations first: pages open the database read-only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    rows = []
    with TestClient(create_app(WebOptions(db_path=str(db))), base_url="http://127.0.0.1") as c:
        for name, path in pages(db):
            c.get(path)
            times, size, status = [], 0, 0
            for _ in range(repeat):
                started = time.perf_counter()
                response = c.get(path)
                times.append((time.perf_counter() - started) * 1000)
                size, status = len(response.content), response.status_code
            rows.append(
                {
                    "page": name,
                    "status": status,
                    "median_ms": round(statistics.median(times), 1),
                    "max_ms": round(max(times), 1),
                    "kb": round(size / 1024, 1),
                }
            )
    return rows


def run(opts: Options, *, db: Path | None = None, companies: int | None = None) -> Section:
    section = Section("web", "Web app: server time per page of `hub serve`")
    companies = companies or opts.pick(smoke=60, quick=2000, full=2000)
    path = db or opts.workdir / "web" / f"demo-{companies}-{opts.seed}.db"
    built = build_database(path, companies, opts.seed) if db is None else 0.0
    repeat = opts.pick(smoke=2, quick=5, full=10)
    rows = measure(path, repeat)
    for row in rows:
        section.add(**row)
    accounts = sqlite3.connect(path).execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
    slowest = max(rows, key=lambda r: r["max_ms"])
    exports = {"accounts.csv (all)", "accounts.json (all)"}
    pages_only = [r for r in rows if r["page"] not in exports]
    section.goal(
        f"slowest page, median of {repeat} ({accounts:,} accounts)",
        max(r["median_ms"] for r in pages_only),
        TARGET_MS,
        "<",
        "ms",
    )
    section.notes.append(
        f"In process through the ASGI app (no socket), read-only connection, after one warm-up "
        f"request per page; {repeat} timed requests each. Database: {path} "
        f"({accounts:,} accounts{f', built in {built:.0f} s' if built else ''}). Slowest single "
        f"request: {slowest['page']} {slowest['max_ms']} ms. The exports return every matching "
        "account at once and are not pages; they are listed for scale."
    )
    return section


def run_webhooks(opts: Options) -> Section:
    """Webhooks vs the scheduled sync, measured over real processes: ``bench_webhooks``."""
    import bench_webhooks

    return bench_webhooks.run(opts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=2000)
    parser.add_argument("--db", type=Path, help="An existing hub database to measure instead.")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hub-bench"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--webhooks",
        action="store_true",
        help="Measure a payment failure's latency to HubSpot, webhooks vs scheduled, instead.",
    )
    args = parser.parse_args()
    opts = Options(mode="quick", seed=args.seed, workdir=args.workdir)
    if args.webhooks:
        section = run_webhooks(opts)
    else:
        section = run(opts, db=args.db, companies=args.companies)
    widths = {c: max(len(c), *(len(fmt(r.get(c))) for r in section.rows)) for c in section.columns}
    print(" | ".join(c.ljust(widths[c]) for c in section.columns))
    for row in section.rows:
        print(" | ".join(fmt(row.get(c)).ljust(widths[c]) for c in section.columns))
    for goal in section.goals:
        verdict = "met" if goal.met else "MISSED"
        print(f"goal: {goal.name}: {goal.value} {goal.unit} {goal.op} {goal.target} → {verdict}")
    for note in section.notes:
        print(note)


if __name__ == "__main__":
    main()
