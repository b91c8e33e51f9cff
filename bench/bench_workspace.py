"""workspace: the first sync of a whole workspace, connections in parallel vs each alone.

The four built-in connections of one config against a 1,000-company world served by a child
process (``bench/sandbox_proc.py``, sandbox limits off), with the connectors' real budgets
(Zendesk's 10 exports a minute, HubSpot's 100 per 10 s, Stripe's 25/s...), into SQLite:

1. each connection **alone**, one after another, into one database
   (``hub.sync.sync_all(store, config, [name])`` per connection, wall time of each call);
2. all of them **in parallel** (``sync_all(store, config)``: one thread per connection) into
   a fresh database.

Each API has its own budget, so the parallel wall time should be about the slowest
connection's alone, not the sum. Both are measured twice: on loopback (responses at once:
each connection is CPU-bound, and threads of one interpreter share the CPU) and with a round
trip per response like a real API's (``--latency`` of ``bench/sandbox_proc.py``).
BuiltWith looks up the accounts' domains, so it starts once the connections that bring the
account roots (HubSpot) are done: the floor is the slowest connection alone, or the roots'
connection plus the look-ups, whichever is longer.
Alone: ``python bench/run.py --only workspace``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from common import Options, Section, rate
from hubside import CONNECTORS, connector_class, credentials
from sandbox_proc import SandboxProcess


def workspace_config(url: str):
    """The four built-in connections against the sandbox, with their documented budgets."""
    from hub.config import parse_config
    from hub.sandbox.base import COMPETITORS, OUR_TECHNOLOGY

    connections = {
        name: {"connector": name, "settings": {**credentials(name), "base_url": url}}
        for name in CONNECTORS
        if connector_class(name) is not None
    }
    timeline = {"builtwith": {"our_technologies": [OUR_TECHNOLOGY], "competitors": COMPETITORS}}
    return parse_config({"connections": connections, "timeline": timeline})


def _fresh_store(workdir: Path):
    from hub.store import Store

    return Store(Path(tempfile.mkdtemp(prefix="workspace-", dir=workdir)) / "hub.db")


def run(opts: Options) -> Section:
    section = Section("workspace", "Workspace first sync: connections in parallel vs each alone")
    companies = opts.pick(smoke=60, quick=1000, full=1000)
    latency = opts.pick(smoke=0.01, quick=0.1, full=0.1)
    os.environ["HUB_BUDGETS"] = "off"  # one process: budgets need no sharing
    _measure(section, opts, companies, 0.0)
    _measure(section, opts, companies, latency)
    section.notes.append(
        f"World of {companies:,} companies (seed {opts.seed}), connectors' real budgets, "
        "sandbox limits off, served by a child process. 'alone' = that connection's sync_all "
        "call with nothing else running. Look-ups (BuiltWith) need the accounts HubSpot "
        "brings, so they start once it is done (in parallel, while the others go on). "
        "Connections are threads of one process: on loopback (no latency) each connection is "
        "CPU-bound (parsing, storing) and the threads share one interpreter, so the parallel "
        f"wall is near the sum; with a round trip per response ({latency * 1000:.0f} ms, as "
        "a real API's), connections wait on the network and overlap: the wall is near the "
        "slowest connection's."
    )
    return section


def _measure(section: Section, opts: Options, companies: int, latency: float) -> None:
    from hub.http.ratelimit import reset_shared_limiters
    from hub.sync import _root_feeders, sync_all

    label = f"{latency * 1000:.0f} ms per response" if latency else "loopback"
    workdir = opts.workdir / "workspace"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    with SandboxProcess(companies, opts.seed, latency=latency) as sp:
        config = workspace_config(sp.url)
        names = list(config.connections)
        lookups = [n for n in names if getattr(connector_class(n), "uses_account_domains", 0)]
        others = [n for n in names if n not in lookups]
        order = others + lookups

        alone: dict[str, float] = {}
        records: dict[str, int] = {}
        failed: list[str] = []
        reset_shared_limiters()
        store = _fresh_store(workdir)
        try:
            for name in order:
                started = time.perf_counter()
                results = sync_all(store, config, [name])
                alone[name] = time.perf_counter() - started
                records[name] = sum(r.records for r in results[name])
                failed += [f"{name}.{r.stream}" for r in results[name] if r.status != "ok"]
        finally:
            store.close()

        reset_shared_limiters()
        store = _fresh_store(workdir)
        try:
            started = time.perf_counter()
            results = sync_all(store, config)
            wall = time.perf_counter() - started
        finally:
            store.close()
        failed += [
            f"{n}.{r.stream} (parallel)"
            for n, rs in results.items()
            for r in rs
            if r.status != "ok"
        ]
    shutil.rmtree(workdir, ignore_errors=True)

    for name in order:
        section.add(
            server=label,
            run=f"{name} alone",
            records=records[name],
            seconds=round(alone[name], 2),
            records_per_s=rate(records[name], alone[name]),
            note="",
        )
    total = sum(records.values())
    summed = sum(alone.values())
    feeders = _root_feeders(config, others)
    slowest = max(alone[n] for n in others)
    # Look-ups start once the connections bringing the account roots are done.
    floor = max(slowest, max(alone[n] for n in feeders) + sum(alone[n] for n in lookups))
    section.add(
        server=label,
        run="one after another (sum of alone)",
        records=total,
        seconds=round(summed, 2),
        records_per_s=rate(total, summed),
        note="",
    )
    section.add(
        server=label,
        run="in parallel (sync_all)",
        records=sum(r.records for rs in results.values() for r in rs),
        seconds=round(wall, 2),
        records_per_s=rate(total, wall),
        note=f"÷ slowest alone {wall / slowest:.2f}; ÷ floor {wall / floor:.2f} "
        f"(floor {floor:.1f} s); ÷ sum {wall / summed:.2f}"
        + (f"; not ok: {', '.join(failed)}" if failed else ""),
    )
    if latency:
        section.goal(
            f"workspace first sync ({label}): parallel wall ÷ floor (the slowest alone, or "
            "HubSpot then the look-ups, whichever is longer)",
            round(wall / floor, 2),
            1.2,
            "<=",
            note=f"floor {floor:.1f} s; slowest alone {slowest:.1f} s; "
            f"sum of alone {summed:.1f} s; parallel {wall:.1f} s",
        )
