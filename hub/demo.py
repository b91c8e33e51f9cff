"""``hub demo``: the whole product against the built-in sandbox, with no config and no credentials.

Builds a seeded world, runs the full pipeline into a fresh database, advances the world's
clock a few weeks while running incremental cycles, and summarises what happened in words a
newcomer can follow. ``--companies``/``--seed`` make it a reproducible scenario.

Then, unless told not to, it shows webhooks (``_webhook_section``): the hub's app is served
on a loopback port with its webhook worker, the sandbox's Stripe sends it signed deliveries,
a payment fails, and the demo measures how long the HubSpot company property and the
"Payment failed" task take to change, with no scheduled sync in between.
"""

from __future__ import annotations

import dataclasses
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
    nrr_period: dict[str, Any] = field(default_factory=dict)
    """The NRR table's period: ``label``, ``start``, ``end`` (last day), ``accounts`` (all),
    ``starting_accounts`` (paying at the start: NRR and GRR are over these)."""
    band_limits: dict[str, float] = field(default_factory=dict)
    """Each band's lowest score (``[health] bands``), so the bands can be read."""
    tasks: dict[str, Any] = field(default_factory=dict)
    """How the playbooks' findings became the tasks created in the CRM: ``findings``,
    ``merged`` (into another finding's task of the same account), ``opened`` (tasks: findings
    − merged), ``cancelled`` (before the push, the finding cleared), ``held`` (by the push
    caps for a later push), ``created`` (= opened − cancelled − held), ``crm_created`` (what
    the CRM received), ``by_playbook`` (findings per playbook)."""
    task_counts: dict[str, Any] = field(default_factory=dict)
    """Deprecated (dropped in the next release): ``tasks`` with ``opened`` counting findings."""
    webhook: dict[str, Any] | None = None
    """The webhook section's measurements (``WebhookDemo`` as a dict), None when skipped."""


@dataclass
class WebhookDemo:
    """A payment fails in the sandbox; when did the CRM show it (wall-clock epoch seconds)?"""

    account: str
    failed_at: float
    score_before: int | None = None
    score_after: int | None = None
    score_at: float | None = None
    task: str | None = None
    task_at: float | None = None
    deliveries: int = 0
    synced: list[str] = field(default_factory=list)  # "connection.stream" the worker ran
    error: str | None = None
    crm: str = ""
    """The CRM's and the billing system's names, as the vocabulary titles them."""
    billing: str = ""

    @property
    def seconds(self) -> float | None:
        """From the failure to the later of the two CRM changes (None if one never came)."""
        if self.score_at is None or self.task_at is None:
            return None
        return max(self.score_at, self.task_at) - self.failed_at


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
    webhooks: bool = True,
) -> DemoResult:
    """Run the demo into a fresh database and return its figures (the CLI tells the story).

    ``on_progress(description, done, total)`` is called as the steps advance; ``webhooks``
    adds the webhook section (a few seconds).
    """
    from hub.registry import get_registry
    from hub.sandbox.world import advance, build_sandbox

    started = time.perf_counter()
    path = Path(db_path).expanduser().resolve()
    _fresh_database(path)
    result = DemoResult(db_path=str(path), companies=companies, seed=seed)
    cycles = weeks + 1
    total = 1 + cycles * len(STEPS) + (1 if webhooks else 0)
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
        if webhooks:
            progress("webhooks: a payment fails in the sandbox")
            try:
                hook = _webhook_section(store, sandbox, str(path))
            except (OSError, RuntimeError) as exc:  # no loopback port: the rest still stands
                hook = WebhookDemo(account="", failed_at=time.time(), error=f"not run: {exc}")
            result.webhook = dataclasses.asdict(hook)
            progress("webhooks: the CRM changed", 1)
        _collect(store, sandbox, result, config)
        result.seconds = time.perf_counter() - started
    finally:
        store.close()
        clock.set_source(None)
    return result


def _movers(store: Store, config: Config) -> list[dict[str, Any]]:
    """The month's steepest falls and best climbs, each with what moved it (a cap, then the
    measures with data before and after that moved its way). A move no such measure explains
    came from coverage (a measure newly scored or left without data: the weights
    renormalised), and says so; without a baseline holding measure scores, the first driver."""
    from hub.health import biggest_movers, moves_for
    from hub.health.moves import coverage_change
    from hub.store import queries

    movers = biggest_movers(store, 30, config=config)
    if not movers:
        return queries.health_movers(store)
    drivers = {r["name"]: r["drivers"] for r in queries.health_movers(store, falls=50, climbs=50)}
    every = moves_for(store, 30, account_ids=[m.account_id for m in movers], config=config)
    return [
        {
            "name": m.name,
            "domain": m.domain,
            "score": m.score,
            "band": m.band,
            "trend_30d": m.trend,
            # A cap that moved it, then the measures that moved it most: three say it; the
            # rest is in --explain.
            "cause": "; ".join(m.reasons[:3])
            or coverage_change(every.get(m.account_id, []))
            or (drivers.get(m.name) or [""])[0],
        }
        for m in movers
    ]


def _collect(store: Store, sandbox: Any, result: DemoResult, config: Config) -> None:
    from hub.store import queries
    from hub.vocabulary import vocabulary

    overview = queries.database_overview(store)
    result.summary = overview
    result.bands = overview["bands"]
    result.tasks_by_playbook = overview["tasks_by_playbook"]
    result.movers = _movers(store, config)
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
    result.tasks = _task_counts(store, counts["tasks_created"])
    result.task_counts = {**result.tasks, "opened": result.tasks["findings"]}
    del result.task_counts["findings"]
    from hub.health.settings import load_settings
    from hub.portfolio import PortfolioSection, csm_rows, parse_period, portfolio_report

    result.band_limits = dict(load_settings(config).bands)
    result.nrr_by_csm = csm_rows(store)
    period = parse_period(PortfolioSection().default_period)
    total = portfolio_report(store, period, "owner", PortfolioSection()).total
    result.nrr_period = {
        "label": period.label,
        "start": period.start.isoformat(),
        "end": (period.end - dt.timedelta(days=1)).isoformat(),
        "accounts": result.summary.get("accounts", 0),
        "starting_accounts": total.starting_accounts,
    }


def _task_counts(store: Store, crm_created: int) -> dict[str, Any]:
    """Every finding a playbook made, and what became of it: merged into another finding's
    task of the same account, then each task opened cancelled before the push (its finding
    cleared), held by the push caps for a later push, or created in the CRM. Counted from the
    outbox, so the figures add up."""
    from hub.playbooks.outbox import Outbox

    rows = Outbox(store).tasks()
    findings = merged = cancelled = held = 0
    by_playbook: dict[str, int] = {}
    for row in rows:
        reasons = max(1, len(row.get("reasons") or []))
        findings += reasons
        merged += reasons - 1
        for reason in row.get("reasons") or [{"playbook": row.get("playbook")}]:
            name = str(reason.get("playbook") or row.get("playbook"))
            by_playbook[name] = by_playbook.get(name, 0) + 1
        if row["status"] == "cancelled":
            cancelled += 1
        elif row["status"] in ("open", "pushing"):
            held += 1
    opened = findings - merged
    return {
        "findings": findings,
        "merged": merged,
        "opened": opened,
        "cancelled": cancelled,
        "held": held,
        "created": opened - cancelled - held,
        "crm_created": crm_created,
        "by_playbook": dict(sorted(by_playbook.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def _webhook_config(db_path: str) -> Config:
    from hub.sandbox.webhooks import DEFAULT_SECRETS

    data = demo_config(db_path).model_dump()
    # Secrets are the sandbox's own literals; the worker waits a second for a burst to end.
    data["webhooks"] = {"secrets": dict(DEFAULT_SECRETS), "debounce_seconds": 1.0}
    return parse_config(data)


def _webhook_section(store: Store, sandbox: Any, db_path: str) -> WebhookDemo:
    """Serve the hub (receivers + worker) on loopback, let the sandbox's Stripe send signed
    webhooks to it, fail one payment of a healthy customer, and time the CRM's changes."""
    from hub.sandbox.stripe.webhooks import fail_payment
    from hub.sandbox.webhooks import attach_webhooks, detach_webhooks
    from hub.store import webhooks as inbox
    from hub.web import WebOptions
    from hub.web.server import serve_in_thread

    crm = sandbox.apis.get("hubspot")
    billing = sandbox.apis.get("stripe")
    company = _webhook_subject(sandbox, store)
    if crm is None or billing is None or company is None:
        return WebhookDemo(account="", failed_at=time.time(), error="no healthy customer to use")
    options = WebOptions(
        db_path=db_path, config=_webhook_config(db_path), transport=sandbox.transport()
    )
    mark = inbox.last_run_id(store)
    running = serve_in_thread(options)
    sender = attach_webhooks(sandbox, f"{running.url}/webhooks", apis=("stripe",))
    from hub.vocabulary import vocabulary

    vocab = vocabulary()
    demo = WebhookDemo(
        account=company.name,
        failed_at=time.time(),
        crm=vocab.source("hubspot").title,
        billing=vocab.source("stripe").title,
    )
    try:
        before = crm.get("companies", company.hubspot_id) or {"properties": {}}
        demo.score_before = _int(before["properties"].get("hub_health_score"))
        demo.failed_at = time.time()
        fail_payment(billing, company.key)
        deadline = demo.failed_at + 30
        while time.time() < deadline and (demo.score_at is None or demo.task_at is None):
            time.sleep(0.05)
            now = time.time()
            props = (crm.get("companies", company.hubspot_id) or {"properties": {}})["properties"]
            score = _int(props.get("hub_health_score"))
            if demo.score_at is None and score != demo.score_before:
                demo.score_after, demo.score_at = score, now
            if demo.task_at is None:
                task = _payment_task(crm, company)
                if task:
                    demo.task, demo.task_at = task, now
        if demo.seconds is None:
            demo.error = "the CRM did not change within 30 s"
    finally:
        sender.flush(5)
        demo.deliveries = len(sender.delivered)
        detach_webhooks(sandbox)
        running.stop()
    demo.synced = [f"{c}.{s}" for c, s in inbox.syncs_after(store, mark)]
    return demo


def _webhook_subject(sandbox: Any, store: Store) -> Any:
    """A healthy customer with an active subscription, a CRM record and its billing record
    linked to its account: its failed payment is news (no payment task yet) and moves its
    score (a customer the identity review still holds would change nothing)."""
    from hub.store import queries
    from hub.store.web import links

    billing = sandbox.apis.get("stripe")
    for company in sandbox.world.companies:
        if company.archetype != "healthy" or not getattr(company, "hubspot_id", None):
            continue
        account = queries.find_account(store, company.name, domain=company.domain)
        if account is None or not any(
            link["source"] == billing.name for link in links(store, account["id"])
        ):
            continue
        try:
            sub = billing.get("subscriptions", billing.subscription_id_for(company.key))
        except (KeyError, AttributeError):
            continue
        if sub.get("status") == "active":
            return company
    return None


def _payment_task(crm: Any, company: Any) -> str | None:
    for task in crm.objects("tasks"):
        subject = str(task["properties"].get("hs_task_subject") or "")
        if subject.startswith("Payment failed") and company.name in subject:
            return subject
    return None


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None
