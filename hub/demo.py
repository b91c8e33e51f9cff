"""``hub demo``: the whole product against the built-in sandbox, with no config and no credentials.

Builds a seeded world, runs the full pipeline into a fresh database, advances the world's
clock a few weeks while running incremental cycles, and summarises what happened in words a
newcomer can follow. ``--companies``/``--seed`` make it a reproducible scenario.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub import clock
from hub.config import Config, parse_config
from hub.errors import ConfigError
from hub.pipeline import STEPS, run_pipeline
from hub.store import Store


@dataclass
class DemoResult:
    """Figures the demo prints (and the benchmark reads)."""

    db_path: str
    companies: int
    seed: int
    seconds: float = 0.0
    bands: dict[str, int] = field(default_factory=dict)
    tasks_by_playbook: dict[str, int] = field(default_factory=dict)
    hubspot_writes: dict[str, int] = field(default_factory=dict)
    cycles: int = 0
    errors: list[str] = field(default_factory=list)
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
    console: Console | None = None,
    quiet: bool = False,
) -> DemoResult:
    """Run the demo and print its story; returns the figures."""
    from hub.registry import get_registry
    from hub.sandbox.world import advance, build_sandbox

    console = console or Console()
    started = time.perf_counter()
    path = Path(db_path).expanduser().resolve()
    _fresh_database(path)
    result = DemoResult(db_path=str(path), companies=companies, seed=seed)
    cycles = weeks + 1
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    ) as progress:
        overall = progress.add_task("Building a world of companies", total=1 + cycles * len(STEPS))
        # The simulated weeks end today, so that after the demo every command (run on the
        # wall clock) sees the same picture the demo printed.
        today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        sandbox = build_sandbox(
            companies=companies,
            seed=seed,
            start=today - dt.timedelta(days=7 * weeks),
            extra_apis=list(get_registry().sandbox_apis.values()),
        )
        clock.set_source(sandbox.world.now)
        start_day = sandbox.world.now()
        progress.advance(overall)
        config = demo_config(str(path))
        store = Store(path)
        try:
            for cycle in range(cycles):
                if cycle:
                    advance(sandbox, 7)
                label = "first full sync" if cycle == 0 else f"week {cycle}: incremental"
                records = {"n": 0}

                def on_step(step: str, label: str = label) -> None:
                    progress.update(
                        overall, description=f"{label} · {step} · {sandbox.world.now():%Y-%m-%d}"
                    )
                    progress.advance(overall)

                def on_page(
                    connection: str,
                    stream: str,
                    count: int,
                    done: bool,
                    label: str = label,
                    records: dict[str, int] = records,
                ) -> None:
                    records["n"] += count
                    progress.update(
                        overall,
                        description=f"{label} · sync {connection}.{stream} · {records['n']:,} records",
                    )

                out = run_pipeline(
                    store,
                    config,
                    transport=sandbox.transport(),
                    sync_progress=on_page,
                    on_step=on_step,
                )
                result.errors += [f"week {cycle} {step}: {err}" for step, err in out.errors.items()]
                result.cycles += 1
                if cycle == 0:
                    # A new install sees its history: score the past 30 days from the
                    # timeline so trends mean something from the first week on.
                    from hub.health import backfill_health

                    progress.update(
                        overall,
                        description="first sync · scoring the past five weeks from the timeline",
                    )
                    backfill_health(store, config, days=35, every=7)
            _collect(store, sandbox, result)
            result.seconds = time.perf_counter() - started
            if not quiet:
                _print_summary(console, store, sandbox, result, start_day)
        finally:
            store.close()
            clock.set_source(None)
    return result


def _collect(store: Store, sandbox: Any, result: DemoResult) -> None:
    db = store.db
    if db["health_scores"].exists():
        result.bands = {
            r["band"]: r["n"]
            for r in db.query("SELECT band, COUNT(*) AS n FROM health_scores GROUP BY band")
        }
    result.tasks_by_playbook = {
        r["playbook"]: r["n"]
        for r in db.query(
            "SELECT playbook, COUNT(*) AS n FROM tasks GROUP BY playbook ORDER BY n DESC"
        )
    }
    hubspot = sandbox.apis.get("hubspot")
    writes = getattr(hubspot, "writes", []) or []
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
    result.hubspot_writes = counts
    from hub.portfolio import csm_rows

    result.nrr_by_csm = csm_rows(store)


def _print_summary(
    console: Console, store: Store, sandbox: Any, result: DemoResult, start_day: Any
) -> None:
    db = store.db
    world = sandbox.world
    console.print()
    console.print(
        f"[bold]hub demo[/] · {result.companies:,} companies (seed {result.seed}) · simulated {start_day:%Y-%m-%d} → {world.now():%Y-%m-%d} · {result.cycles} sync cycles",
        highlight=False,
    )
    console.print(f"Database: [bold]{result.db_path}[/]", highlight=False)
    accounts = db["accounts"].count
    unmatched = db.execute("SELECT COUNT(*) FROM identity_issues").fetchone()[0]
    events = db["events"].count
    links = {
        r["method"]: r["n"]
        for r in db.query("SELECT method, COUNT(*) AS n FROM account_links GROUP BY method")
    }
    console.print(
        f"\nOne timeline per customer: [bold]{accounts:,}[/] accounts, [bold]{events:,}[/] events from Zendesk, Stripe, HubSpot and BuiltWith. "
        f"Records linked by HubSpot id {links.get('explicit_id', 0):,}, by domain {links.get('domain', 0):,}; {unmatched:,} records need a look (hub accounts --unmatched).",
        highlight=False,
    )
    if result.bands:
        total = sum(result.bands.values()) or 1
        parts = [
            f"[{c}]{b}[/] {result.bands.get(b, 0):,} ({100 * result.bands.get(b, 0) / total:.0f}%)"
            for b, c in (("green", "green"), ("yellow", "yellow"), ("red", "red"))
        ]
        console.print("\n[bold]Health[/]: " + " · ".join(parts))
        sql = (
            "SELECT a.name, h.score, h.band, h.trend_30d, h.drivers FROM health_scores h "
            "JOIN accounts a ON a.id = h.account_id WHERE h.trend_30d {} 0 "
            "ORDER BY h.trend_30d {}, a.name LIMIT {}"
        )
        # The steepest falls (who needs a call) and the best climbs (who is recovering).
        movers = list(db.query(sql.format("<", "ASC", 4))) + list(
            db.query(sql.format(">", "DESC", 2))
        )
        if movers:
            console.print()
            table = Table(title="Biggest movers over the simulated month", title_justify="left")
            for col in ("account", "score", "change", "band", "why"):
                table.add_column(col)
            for m in movers:
                drivers = json.loads(m["drivers"] or "[]")
                arrow = "↓" if (m["trend_30d"] or 0) < 0 else "↑"
                colour = {"green": "green", "yellow": "yellow", "red": "red"}.get(
                    m["band"], "white"
                )
                table.add_row(
                    m["name"],
                    str(m["score"]),
                    f"{arrow} {m['trend_30d']:+d}",
                    f"[{colour}]{m['band']}[/]",
                    drivers[0] if drivers else "",
                )
            console.print(table)
    if result.tasks_by_playbook:
        console.print(
            "\n[bold]Follow-up tasks opened for CSMs[/] (deduplicated, owner = the company's CSM): "
            + ", ".join(f"{p} {n}" for p, n in result.tasks_by_playbook.items()),
            highlight=False,
        )
    w = result.hubspot_writes
    if w.get("requests"):
        console.print(
            f"\n[bold]Written to the sandbox HubSpot[/]: {w['properties_created']} hub-owned company properties created once, "
            f"{w['company_updates']:,} company field updates (only changed values, batches of 100), {w['tasks_created']:,} tasks with company association, "
            f"in {w['requests']:,} write requests.",
            highlight=False,
        )
    for error in result.errors[:5]:
        console.print(f"[red]problem:[/] {error}", highlight=False)
    # Suggest the steepest faller (the story's protagonist), by domain: names can repeat.
    example = next(
        iter(
            db.query(
                "SELECT a.domain FROM health_scores h JOIN accounts a ON a.id = h.account_id "
                "WHERE a.domain IS NOT NULL ORDER BY h.trend_30d IS NULL, h.trend_30d, h.score LIMIT 1"
            )
        ),
        None,
    )
    name = example["domain"] if example else "ACCOUNT"
    dbarg = f"--db {result.db_path}"
    console.print("\n[bold]Explore[/]:")
    for cmd in (
        f"hub {dbarg} accounts",
        f'hub {dbarg} timeline "{name}"',
        f'hub {dbarg} health --explain "{name}"',
        f"hub {dbarg} health --band red",
        f"hub {dbarg} tasks",
        f"hub {dbarg} status",
        f"hub {dbarg} portfolio --by owner",
    ):
        console.print(f"  {cmd}", highlight=False, soft_wrap=True)
    console.print("Then connect your real accounts: [bold]hub init[/] (see README.md).")
    if result.nrr_by_csm:
        from hub.portfolio.render import csm_table

        console.print()
        console.print(csm_table(result.nrr_by_csm))
    console.print(f"\nDone in {result.seconds:.1f} s.", highlight=False)
