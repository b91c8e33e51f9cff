"""``hub demo``: the whole product against the built-in sandbox, with no config and no credentials.

Builds a seeded world, runs the full pipeline into a fresh database, advances the world's
clock a few weeks while running incremental cycles, and summarises what happened in words a
newcomer can follow. ``--companies``/``--seed`` make it a reproducible scenario.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub import clock
from hub.config import Config, parse_config
from hub.errors import ConfigError
from hub.pipeline import STEPS, run_pipeline
from hub.store import Store


@dataclass
class DemoResult:
    """Figures of one demo run: the CLI prints them, the benchmark reads them."""

    db_path: str
    companies: int
    seed: int
    seconds: float = 0.0
    bands: dict[str, int] = field(default_factory=dict)
    tasks_by_playbook: dict[str, int] = field(default_factory=dict)
    crm_writes: dict[str, int] = field(default_factory=dict)
    cycles: int = 0
    errors: list[str] = field(default_factory=list)
    start_day: str = ""
    end_day: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    """Counts from ``hub.store.queries.database_overview``."""
    movers: list[dict[str, Any]] = field(default_factory=list)
    """The steepest falls and best climbs of the simulated month."""
    example_account: str | None = None
    sources: list[str] = field(default_factory=list)
    nrr_by_csm: list[dict[str, Any]] = field(default_factory=list)  # hub.portfolio.csm_rows


def demo_config(db_path: str) -> Config:
    """A hub.toml equivalent pointing every connection at the sandbox's credentials."""
    from hub.sandbox.base import COMPETITORS, OUR_TECHNOLOGY
    from hub.sandbox.world import CREDENTIALS

    zd = CREDENTIALS["zendesk"]
    # The in-process sandbox enforces no rate limits and its clock jumps weeks at a time, so
    # the demo runs each connector at the highest budget its API offers (Stripe live mode,
    # HubSpot with the limit increase, Zendesk's add-ons): real pacing would only add waiting.
    data: dict[str, Any] = {
        "hub": {"database": db_path},
        "connections": {
            "hubspot": {
                "connector": "hubspot",
                "schedule": "every 30m",
                "settings": {
                    "access_token": CREDENTIALS["hubspot"]["access_token"],
                    "burst_limit": 250,
                    "search_per_second": 10,
                },
            },
            "stripe": {
                "connector": "stripe",
                "schedule": "every 30m",
                "settings": {
                    "api_key": CREDENTIALS["stripe"]["api_key"],
                    "requests_per_second": 100,
                },
            },
            "zendesk": {
                "connector": "zendesk",
                "schedule": "every 30m",
                "settings": {
                    "subdomain": zd["subdomain"],
                    "email": zd["email"],
                    "api_token": zd["api_token"],
                    "incremental_per_minute": 100_000,
                    "requests_per_minute": 100_000,
                },
            },
            "builtwith": {
                "connector": "builtwith",
                "schedule": "every 1d",
                "settings": {
                    "api_key": CREDENTIALS["builtwith"]["api_key"],
                    "requests_per_second": 10_000,
                },
            },
        },
        "timeline": {
            "builtwith": {"our_technologies": [OUR_TECHNOLOGY], "competitors": COMPETITORS}
        },
        "push": {"hubspot": {"connection": "hubspot"}},
    }
    return parse_config(data)


def _fresh_database(path: Path) -> None:
    if not path.exists():
        return
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError:
        tables = set()
    finally:
        conn.close()
    if "_hub_runs" not in tables:
        raise ConfigError(
            f"{path} exists and is not a hub database", hint="choose another --db path"
        )
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def run_demo(
    db_path: str = "hub-demo.db",
    *,
    companies: int = 500,
    seed: int = 42,
    weeks: int = 4,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> DemoResult:
    """Run the demo into a fresh database and return its figures (the CLI tells the story).

    ``on_progress(description, done, total)`` is called as the steps advance.
    """
    from hub.registry import get_registry
    from hub.sandbox.world import advance, build_sandbox

    started = time.perf_counter()
    path = Path(db_path).expanduser().resolve()
    _fresh_database(path)
    result = DemoResult(db_path=str(path), companies=companies, seed=seed)
    cycles = weeks + 1
    total = 1 + cycles * len(STEPS)
    done = 0

    def progress(description: str, step: int = 0) -> None:
        nonlocal done
        done += step
        if on_progress:
            on_progress(description, done, total)

    progress("Building a world of companies")
    # The simulated weeks end today, so that after the demo every command (run on the wall
    # clock) sees the same picture the demo printed.
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    sandbox = build_sandbox(
        companies=companies,
        seed=seed,
        start=today - dt.timedelta(days=7 * weeks),
        extra_apis=list(get_registry().sandbox_apis.values()),
    )
    clock.set_source(sandbox.world.now)
    result.start_day = f"{sandbox.world.now():%Y-%m-%d}"
    progress("World built", 1)
    config = demo_config(str(path))
    store = Store(path)
    try:
        for cycle in range(cycles):
            if cycle:
                advance(sandbox, 7)
            label = "first full sync" if cycle == 0 else f"week {cycle}: incremental"
            records = {"n": 0}

            def on_step(step: str, label: str = label) -> None:
                progress(f"{label} · {step} · {sandbox.world.now():%Y-%m-%d}", 1)

            def on_page(
                connection: str,
                stream: str,
                count: int,
                done: bool,
                label: str = label,
                records: dict[str, int] = records,
            ) -> None:
                records["n"] += count
                progress(f"{label} · sync {connection}.{stream} · {records['n']:,} records")

            out = run_pipeline(
                store, config, transport=sandbox.transport(), sync_progress=on_page, on_step=on_step
            )
            result.errors += [f"week {cycle} {step}: {err}" for step, err in out.errors.items()]
            result.cycles += 1
            if cycle == 0:
                # A new install sees its history: score the past weeks from the timeline so
                # trends mean something from the first week on.
                from hub.health import backfill_health

                progress("first sync · scoring the past five weeks from the timeline")
                backfill_health(store, config, days=35, every=7)
        result.end_day = f"{sandbox.world.now():%Y-%m-%d}"
        _collect(store, sandbox, result, config)
        result.seconds = time.perf_counter() - started
    finally:
        store.close()
        clock.set_source(None)
    return result


def _collect(store: Store, sandbox: Any, result: DemoResult, config: Config) -> None:
    from hub.store import queries
    from hub.vocabulary import vocabulary

    overview = queries.database_overview(store)
    result.summary = overview
    result.bands = overview["bands"]
    result.tasks_by_playbook = overview["tasks_by_playbook"]
    result.movers = queries.health_movers(store)
    result.example_account = queries.steepest_faller_domain(store)
    vocab = vocabulary()
    result.sources = [vocab.source(name).title for name in vocab.source_order(vocab.sources)]
    targets = [v for v in config.push.values() if isinstance(v, dict) and v.get("connection")]
    crm = sandbox.apis.get(targets[0]["connection"] if targets else "")
    writes = getattr(crm, "writes", []) or []
    counts: dict[str, int] = {
        "requests": len(writes),
        "company_updates": 0,
        "tasks_created": 0,
        "properties_created": 0,
    }
    for entry in writes:
        method, path, body = entry[0], entry[1], entry[2] if len(entry) > 2 else None
        if "/objects/companies/batch/update" in path and isinstance(body, dict):
            counts["company_updates"] += len(body.get("inputs", []))
        elif "/objects/tasks" in path and method == "POST":
            counts["tasks_created"] += (
                len(body.get("inputs", [])) if isinstance(body, dict) and "inputs" in body else 1
            )
        elif "/properties/companies" in path and method == "POST" and not path.endswith("/groups"):
            counts["properties_created"] += 1
    result.crm_writes = counts
    from hub.portfolio import csm_rows

    result.nrr_by_csm = csm_rows(store)
