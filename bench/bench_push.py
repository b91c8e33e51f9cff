"""push: HubSpot write requests for N changed accounts (goal: N/100) and for none (goal: 0).

Full runs aim at N ≈ 10,000 (the issue's figure); quick runs at about 2,000.

In process (``sandbox.transport()``, the hub's clock bound to the world's): sync HubSpot
owners and companies, map, compute health, then push three times with ``hub.push.run_push``:

1. the first push: creates the hub's property group and properties, writes every account;
2. a push with nothing changed (goal: 0 write requests);
3. after changing every scored account's score in ``health_scores`` (a direct SQL update: the same
   as a health run that moved every score, without the cost of one), a push of N changed
   accounts (goal: N / 100 write requests, batches of 100).

Tasks are left out (no playbooks step), so the writes counted are company updates and the
one-time setup. Write requests are the fake HubSpot's ``writes`` log. The HubSpot
connection's ``burst_limit`` is 250 (its maximum) and the limiter is fresh for each push, so
the figure is requests, not pacing.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import NOT_AVAILABLE, Options, Section, unavailable
from hubside import connector_for


def world_size(opts: Options) -> int:
    # About 64 % of the accounts get a score from HubSpot data alone: 16k companies ≈ 10k.
    return opts.pick(smoke=150, quick=3_000, full=16_000)


def _kind(method: str, path: str) -> str:
    if "/batch/update" in path:
        return "company batch updates"
    if "/properties/" in path:
        return "property setup"
    if "/objects/tasks" in path or "/associations/" in path:
        return "tasks"
    return f"other {method}"


def _push(store: Any, config: Any, sandbox: Any) -> dict[str, Any]:
    from hub.http.ratelimit import reset_shared_limiters
    from hub.push import run_push

    reset_shared_limiters()
    hubspot = sandbox.apis["hubspot"]
    before = len(hubspot.writes)
    requests_before = hubspot.total_requests()
    started = time.perf_counter()
    result = run_push(store, config, transport=sandbox.transport())
    seconds = time.perf_counter() - started
    writes = hubspot.writes[before:]
    kinds = Counter(_kind(w[0], w[1]) for w in writes)
    return {
        "writes": len(writes),
        "kinds": dict(kinds),
        "requests": hubspot.total_requests() - requests_before,
        "values": len(result.written),
        "companies": len({c.object_id for c in result.written}),
        "seconds": seconds,
        "status": result.status,
        "errors": result.errors,
    }


def run(opts: Options) -> Section:
    try:
        import hub.push  # noqa: F401
        import plugins.hubspot_pusher  # noqa: F401
    except ImportError as exc:
        return unavailable("push", "Push", f"hub.push or the HubSpot pusher is missing ({exc})")
    from hub import clock
    from hub.demo import demo_config
    from hub.pipeline import run_pipeline
    from hub.sandbox.world import build_sandbox
    from hub.store import Store
    from hub.sync import sync_connection

    section = Section("push", "Push: HubSpot write requests per changed accounts")
    companies = world_size(opts)
    started = time.perf_counter()
    sandbox = build_sandbox(companies=companies, seed=opts.seed)
    clock.set_source(sandbox.world.now)
    workdir = opts.workdir / "push"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            db = str(Path(tmp) / "hub.db")
            config = demo_config(db)
            config.connections["hubspot"].settings["burst_limit"] = 250
            store = Store(db)
            try:
                connector = connector_for("hubspot", None, limits="off")
                sync_connection(
                    store, connector, streams=["owners", "companies"], transport=sandbox.transport()
                )
                prep = run_pipeline(
                    store, config, steps=("map", "health"), transport=sandbox.transport()
                )
                scored = store.db.execute(
                    "SELECT COUNT(*) FROM health_scores h JOIN accounts a ON a.id = h.account_id "
                    "WHERE a.hubspot_company_id IS NOT NULL AND a.hubspot_company_id != '' "
                    "AND h.score IS NOT NULL"
                ).fetchone()[0]
                prep_s = time.perf_counter() - started
                first = _push(store, config, sandbox)
                none = _push(store, config, sandbox)
                with store.db.conn:
                    store.db.execute(
                        "UPDATE health_scores SET score = CASE WHEN score >= 50 THEN score - 1 "
                        "ELSE score + 1 END"
                    )
                changed = _push(store, config, sandbox)
            finally:
                store.close()
    finally:
        clock.set_source(None)
    if prep.errors:
        section.notes.append(f"map/health errors: {prep.errors}")
    expected = -(-scored // 100)
    for label, out in (
        (f"first push ({scored:,} accounts, with setup)", first),
        ("nothing changed", none),
        (f"every score changed ({scored:,} accounts)", changed),
    ):
        section.add(
            push=label,
            write_requests=out["writes"],
            by_kind=", ".join(f"{k} {v}" for k, v in sorted(out["kinds"].items())) or "none",
            all_requests=out["requests"],
            companies_written=out["companies"],
            values_written=out["values"],
            seconds=round(out["seconds"], 2),
            status=out["status"],
            note="; ".join(out["errors"])[:200],
        )
    section.goal("write requests with nothing changed", none["writes"], 0, "==")
    section.goal(
        f"write requests for {scored:,} changed accounts",
        changed["writes"],
        expected,
        "<=",
        note=f"batches of 100 → {expected}",
    )
    section.notes.append(
        f"World of {companies:,} companies; {scored:,} accounts with a HubSpot company and a "
        f"score (accounts without any scored measure have no score and nothing to push). Preparation (world, sync, map, health) took {prep_s:.1f} s."
    )
    if not scored:
        section.status = NOT_AVAILABLE
        section.notes.append("no scored accounts: the health step produced nothing to push")
    return section
