"""Benchmark of the portfolio: 100k accounts with 24 months of MRR history.

    python bench/bench_portfolio.py                 # 100k accounts, 24 months
    python bench/bench_portfolio.py --accounts 10000 --keep /tmp/pf.db

Generates (seeded, not timed) a database with accounts, ``subscription_mrr`` events (starts
spread over the first 20 months, a third with an add-on, monthly upgrades and downgrades,
yearly plans, churn with reasons, some returns), ``owner_changed`` events for 10% of the
accounts, health scores and a monthly health history. Then times, each in this process:

- ``build_movements`` from scratch (points and movements, set-based SQL);
- ``portfolio_report`` by owner, segment and plan for a quarter, and for the last 90 days;
- ``cohorts`` (TTFV, early churn, observed value per start month);
- a no-op ``build_movements`` (the timeline did not change).

Goal (issue 18): the portfolio for 100k accounts and 24 months in under 5 s on 2 cores
(build + one report). SQLite runs each query on one core; the load average is printed
because other work on the machine slows every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub import clock  # noqa: E402
from hub.portfolio import build_movements, cohorts, parse_period, portfolio_report  # noqa: E402
from hub.store import Store  # noqa: E402

START = dt.date(2025, 1, 1)
MONTHS = 24
REASONS = ["too_expensive", "unused", "switched_service", "missing_features", "low_quality"]
PLANS = {"starter": 50, "growth": 400, "enterprise": 3000}


def _day(months: float) -> str:
    return (START + dt.timedelta(days=int(months * 30.4))).isoformat()


def generate(store: Store, accounts: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    db = store.db
    owners = [str(70_000_000 + i) for i in range(40)]
    events: list[tuple] = []
    acc_rows, scores, history = [], [], []

    def ev(aid: str, kind: str, day: str, attrs: dict, sid: str) -> None:
        # A full map writes in batches, each stamped with its own time.
        stamp = f"2026-12-31T{(len(events) // 5000) // 60:02d}:{(len(events) // 5000) % 60:02d}:00+00:00"
        events.append(
            (
                f"bench:{kind}:{sid}:{len(events)}",
                f"bench:customer:{aid}",
                aid,
                f"{day}T10:00:00+00:00",
                "bench",
                kind,
                kind,
                json.dumps(attrs),
                stamp,
            )
        )

    for i in range(accounts):
        aid = str(5_000_000_000 + i)
        owner = rng.choice(owners)
        plan = rng.choices(list(PLANS), [0.5, 0.35, 0.15])[0]
        yearly = rng.random() < 0.25
        month = rng.uniform(0, 20)
        mrr = PLANS[plan] * rng.randint(1, 20) / (12 if yearly else 1) * (12 if yearly else 1)
        subs = [("m", round(mrr, 2))]
        ev(
            aid,
            "subscription_mrr",
            _day(month),
            {"subscription_id": f"{aid}m", "mrr": subs[0][1], "plan": plan},
            aid,
        )
        if rng.random() < 0.33:
            addon_at = month + rng.uniform(0, 3)
            ev(
                aid,
                "subscription_mrr",
                _day(addon_at),
                {"subscription_id": f"{aid}a", "mrr": 99.0, "plan": "addon"},
                aid,
            )
            if rng.random() < 0.3:
                ev(
                    aid,
                    "subscription_mrr",
                    _day(addon_at + rng.uniform(1, 6)),
                    {"subscription_id": f"{aid}a", "mrr": 0, "plan": "addon", "reason": "unused"},
                    aid,
                )
        m = month + 1
        while m < MONTHS:
            r = rng.random()
            if r < 0.06:
                mrr *= rng.choice([1.25, 1.5, 0.8])
                ev(
                    aid,
                    "subscription_mrr",
                    _day(m),
                    {"subscription_id": f"{aid}m", "mrr": round(mrr, 2), "plan": plan},
                    aid,
                )
            elif r < 0.075:
                ev(
                    aid,
                    "subscription_mrr",
                    _day(m),
                    {
                        "subscription_id": f"{aid}m",
                        "mrr": 0,
                        "plan": plan,
                        "reason": rng.choice(REASONS),
                    },
                    aid,
                )
                if rng.random() < 0.2 and m + 3 < MONTHS:
                    ev(
                        aid,
                        "subscription_mrr",
                        _day(m + 3),
                        {"subscription_id": f"{aid}r", "mrr": round(mrr, 2), "plan": plan},
                        aid,
                    )
                break
            m += 1
        if rng.random() < 0.1:
            new = rng.choice(owners)
            ev(
                aid,
                "owner_changed",
                _day(rng.uniform(month, MONTHS)),
                {"from": owner, "to": new},
                aid,
            )
            owner = new
        if rng.random() < 0.7:
            ev(aid, "widget_detected", _day(month + rng.uniform(0, 1.5)), {}, aid)
        acc_rows.append((aid, f"Company {i}", owner, f"Owner {owner[-2:]}", plan))
        score = rng.randint(10, 100)
        band = "green" if score >= 70 else "yellow" if score >= 40 else "red"
        scores.append((aid, score, score, band, "default", rng.choice(["smb", "mid", "ent"])))
        for k in range(MONTHS):
            s = max(0, min(100, score + rng.randint(-10, 10)))
            history.append(
                (aid, _day(k), s, "green" if s >= 70 else "yellow" if s >= 40 else "red", s)
            )
    with db.atomic():
        db.conn.executemany(
            "INSERT INTO events (id, entity, account_id, ts, source, type, summary, attrs, mapped_at) VALUES (?,?,?,?,?,?,?,?,?)",
            events,
        )
        db.conn.executemany(
            "INSERT INTO accounts (id, name, owner_id, owner_name, plan) VALUES (?,?,?,?,?)",
            acc_rows,
        )
        db.conn.executemany(
            "INSERT INTO health_scores (account_id, score, computed_score, band, model, segment) VALUES (?,?,?,?,?,?)",
            scores,
        )
        db.conn.executemany(
            "INSERT OR REPLACE INTO health_history (account_id, day, score, band, computed_score) VALUES (?,?,?,?,?)",
            history,
        )
    return len(events)


def timed(label: str, fn, results: list) -> object:
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    results.append((label, seconds, cpu))
    print(f"  {label:<44} {seconds:7.2f} s wall {cpu:7.2f} s CPU", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--keep", help="keep the database at this path")
    args = parser.parse_args()
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "portfolio.db"
    if path.exists():
        path.unlink()
    store = Store(path)
    clock.set_source(lambda: dt.datetime(2026, 12, 31, 12, tzinfo=dt.timezone.utc))
    print(f"portfolio benchmark: {args.accounts:,} accounts, {MONTHS} months of history")
    print(f"  load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    started = time.perf_counter()
    n = generate(store, args.accounts)
    print(f"  generated {n:,} events in {time.perf_counter() - started:.1f} s (not timed)")
    results: list = []
    built = timed(
        "build_movements (from scratch)", lambda: build_movements(store, force=True), results
    )
    print(f"    {built.points:,} points, {built.movements:,} movements")  # type: ignore[attr-defined]
    q = parse_period("2026-Q3")
    report = timed(
        "portfolio_report by owner, 2026-Q3", lambda: portfolio_report(store, q, "owner"), results
    )
    timed(
        "portfolio_report by segment, 2026-Q3",
        lambda: portfolio_report(store, q, "segment"),
        results,
    )
    timed("portfolio_report by plan, 2026-Q3", lambda: portfolio_report(store, q, "plan"), results)
    timed(
        "portfolio_report by owner, last-90d",
        lambda: portfolio_report(store, parse_period("last-90d"), "owner"),
        results,
    )
    timed("cohorts", lambda: cohorts(store), results)
    timed("build_movements (no change)", lambda: build_movements(store), results)
    touched = [
        (
            f"bench:subscription_mrr:late{i}",
            f"bench:customer:{5_000_000_000 + i}",
            str(5_000_000_000 + i),
            "2026-12-20T10:00:00+00:00",
            "bench",
            "subscription_mrr",
            "late",
            json.dumps({"subscription_id": f"late{i}", "mrr": 10.0, "plan": "addon"}),
            "2027-01-01T00:00:00+00:00",
        )
        for i in range(0, args.accounts, 100)
    ]
    with store.db.atomic():
        store.db.conn.executemany(
            "INSERT INTO events (id, entity, account_id, ts, source, type, summary, attrs, "
            "mapped_at) VALUES (?,?,?,?,?,?,?,?,?)",
            touched,
        )
    timed("build_movements (1% of accounts changed)", lambda: build_movements(store), results)
    total = report.total  # type: ignore[attr-defined]
    print(
        f"  total 2026-Q3: start ${total.opening / 100:,.0f}, end ${total.closing / 100:,.0f}, "
        f"NRR {total.nrr:.1%}, GRR {total.grr:.1%}, {len(report.books)} books, "  # type: ignore[attr-defined]
        f"reconciles: {report.reconciles()}"  # type: ignore[attr-defined]
    )
    goal, cpu = results[1][1], results[1][2]
    verdict = "met" if goal < 5 else "MISSED"
    print(f"  goal: report by owner = {goal:.2f} s wall, {cpu:.2f} s CPU (< 5 s): {verdict}")
    full = results[0][1] + results[1][1]
    print(
        f"  after a full re-map: rebuild + report = {full:.2f} s wall, "
        f"{results[0][2] + results[1][2]:.2f} s CPU"
    )
    print(f"  load average now {os.getloadavg()[0]:.2f}: wall times grow with it, CPU times less")
    store.close()


if __name__ == "__main__":
    main()
