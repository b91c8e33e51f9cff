"""Operation commands: run (scheduler or --once) and demo."""

from __future__ import annotations

import click

from hub.cli.render import Column, emit_json, line, listing, page_progress, table, text
from hub.cli.util import Env, pass_env
from hub.errors import ConfigError


def register(cli: click.Group) -> None:
    cli.add_command(run)
    cli.add_command(demo)


@click.command()
@click.option("--once", is_flag=True, help="Run the whole pipeline once and exit (for cron/CI).")
@click.option("--dry-run", is_flag=True, help="Do everything but write to the CRM.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the steps as JSON.")
@pass_env
def run(env: Env, once: bool, dry_run: bool, as_json: bool) -> None:
    """Keep every connection on its schedule: sync → map → health → playbooks → push.

    \b
    Examples:
      hub run
      hub run --once
      hub run --once --dry-run --json | jq '.items[] | {step, status}'
      hub --log-file /var/log/hub/hub.log --log-json run
    """
    from hub.scheduler import HubScheduler, run_once

    explicit = click.get_current_context().get_parameter_source("as_json")
    if as_json and not once and explicit is click.core.ParameterSource.COMMANDLINE:
        raise ConfigError(
            "--json needs --once (the scheduler runs until stopped)",
            hint="hub run --once --json, or --log-json for the scheduler's log",
        )
    config = env.config()
    store = env.store()
    if once:
        result = run_once(store, config, dry_run=dry_run)
        rows = result.step_rows()
        if as_json:
            emit_json(
                listing(
                    rows,
                    ok=result.ok,
                    failed_steps=result.failed_steps,
                    duration_s=round(result.duration_s, 3),
                    failed_connections=result.failed_connections,
                )
            )
        else:
            for row in rows:
                colour = {"ok": "green", "error": "red"}.get(row["status"], "yellow")
                line(f"{row['step']}: ", text(row["status"], colour), f" · {row['summary']}")
            if result.failed_connections:
                line(
                    text("connections with errors: ", "yellow"),
                    f"{', '.join(result.failed_connections)} (see hub status)",
                    err=True,
                )
            if result.ok:
                line(f"Pipeline finished in {result.duration_s:.1f}s: ok.")
            else:
                line(
                    f"Pipeline finished in {result.duration_s:.1f}s: ",
                    text(f"failed: {', '.join(result.failed_steps)}", "red"),
                    " (see hub status).",
                )
        if not result.ok:
            raise SystemExit(1)
        return

    def report(name, result):
        if scheduler.stop_event.is_set():
            # Cut short by Ctrl-C/SIGTERM: its committed pages are kept, the next start resumes.
            line(f"{name}: cycle stopped after {result.duration_s:.1f}s; resumes at the next start")
            return
        state = "ok" if result.ok else f"failed: {', '.join(result.failed_steps)} (see hub status)"
        line(f"{name}: cycle finished in {result.duration_s:.1f}s {state}")

    scheduler = HubScheduler(store, config, dry_run=dry_run, on_result=report)
    scheduler.start()
    line(
        f"hub run: {len(config.connections)} connections scheduled on {env.database()} "
        f"(cron lines in {config.scheduler.timezone}); Ctrl-C to stop."
    )
    scheduler.wait()
    if scheduler.lock.lost:
        from hub.errors import LockedError

        raise LockedError(
            "hub run stopped: another process took the database lock over while this one "
            "was not heartbeating (suspended?)",
            hint="see 'hub status'; run one 'hub run' per database",
        )
    line("Stopped cleanly.")


@click.command()
@click.option(
    "--companies",
    default=500,
    show_default=True,
    type=click.IntRange(10, 200_000),
    help="Companies in the sandbox world.",
)
@click.option(
    "--seed", default=42, show_default=True, help="World seed: the same seed tells the same story."
)
@click.option(
    "--db",
    "demo_db",
    type=click.Path(dir_okay=False),
    help="Database to create (default ./hub-demo.db; replaced if it is a hub database).",
)
@click.option(
    "--weeks",
    default=4,
    show_default=True,
    type=click.IntRange(0, 26),
    help="Simulated weeks of incremental cycles after the first sync.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the demo's figures as JSON.")
@click.option("--serve", is_flag=True, help="Then serve the demo database in the web app.")
@click.option("--port", default=8321, show_default=True, help="Port for --serve (0 = any free).")
@pass_env
def demo(
    env: Env,
    companies: int,
    seed: int,
    demo_db: str | None,
    weeks: int,
    as_json: bool,
    serve: bool,
    port: int,
) -> None:
    """Run the whole product against the built-in sandbox: no config, no credentials.

    \b
    Examples:
      hub demo
      hub demo --companies 2000 --seed 7 --weeks 8
      hub demo --db /tmp/demo.db --json | jq .bands
      hub demo --serve
    """
    import dataclasses

    from hub.demo import run_demo

    with page_progress(
        quiet=as_json, counter="{task.completed}/{task.total}", transient=True
    ) as bar:
        task = bar.add_task("Building a world of companies", total=None)

        def on_progress(description: str, done: int, total: int) -> None:
            bar.update(task, description=description, completed=done, total=total)

        result = run_demo(
            demo_db or env.db_path or "hub-demo.db",
            companies=companies,
            seed=seed,
            weeks=weeks,
            on_progress=on_progress,
        )
    if as_json:
        emit_json(dataclasses.asdict(result))
    else:
        print_demo(env, result)
    if serve:
        from hub.cli.serve import run_server

        run_server(result.db_path, None, port=port)


def print_webhook_demo(w: dict) -> None:
    """The webhook section: a failed payment reaching the CRM, timed."""
    import datetime as dt

    from hub.cli.render import styled

    def at(ts: float) -> str:
        return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-5]

    line()
    if w.get("error") or w.get("score_at") is None or w.get("task_at") is None:
        line(styled("[bold]Webhooks[/]: "), f"{w.get('error') or 'no change seen'}.")
        return
    done = max(w["score_at"], w["task_at"])
    line(
        styled("[bold]Webhooks[/] (no scheduled sync): "),
        f"payment of {w['account']} failed at {at(w['failed_at'])} → "
        f"{w.get('crm') or 'CRM'} health score "
        f"{w['score_before']}→{w['score_after']} and task '{w['task']}' at {at(done)}, ",
        styled("[bold]{s} s[/]", s=f"{done - w['failed_at']:.1f}"),
        f" ({w['deliveries']} signed {w.get('billing') or 'billing'} deliveries; the worker synced "
        f"{', '.join(dict.fromkeys(w['synced'])) or 'nothing'}).",
    )


def print_demo(env: Env, result) -> None:
    """The demo's story in words a newcomer can follow."""
    from hub.cli.render import styled

    s = result.summary
    line()
    line(
        styled("[bold]hub demo[/]"),
        f" · {result.companies:,} companies (seed {result.seed}) · simulated "
        f"{result.start_day} → {result.end_day} · {result.cycles} sync cycles",
    )
    line("Database: ", styled("[bold]{p}[/]", p=result.db_path))
    links = s.get("links", {})
    line()
    line(
        "One timeline per customer: ",
        styled("[bold]{n}[/]", n=f"{s['accounts']:,}"),
        f" accounts{_account_gap(result.companies, s)}, ",
        styled("[bold]{n}[/]", n=f"{s['events']:,}"),
        f" events from {', '.join(result.sources) or 'the sandbox'}. Records linked by id "
        f"{links.get('explicit_id', 0):,}, by domain {links.get('domain', 0):,}; "
        f"{s['unmatched']:,} records need a look "
        f"(hub --db {result.db_path} accounts --unmatched).",
    )
    if result.bands:
        total = sum(result.bands.values()) or 1
        parts = []
        for band in ("green", "yellow", "red", "churned"):
            n = result.bands.get(band, 0)
            parts += [text(band, band), f" {n:,} ({100 * n / total:.0f}%)", " · "]
        line()
        line(styled("[bold]Health[/]"), _band_limits(result.band_limits), ": ", *parts[:-1])
        if result.movers:
            line()
            table(
                result.movers,
                [
                    Column("account", "name"),
                    Column("domain", "domain"),
                    Column("score", "score"),
                    Column(
                        "change",
                        lambda m: (
                            f"{'↓' if (m['trend_30d'] or 0) < 0 else '↑'} {m['trend_30d']:+d}"
                        ),
                    ),
                    Column("band", lambda m: text(m["band"], m["band"] or None)),
                    Column(
                        "why it moved",
                        lambda m: m.get("cause") or (m.get("drivers") or [""])[0],
                    ),
                ],
                env=env,
                title="Biggest movers over the simulated month",
                title_justify="left",
            )
    t = result.tasks
    if t.get("findings"):
        line()
        line(
            styled("[bold]Follow-up tasks for CSMs[/]"),
            " (deduplicated, owner = the company's CSM): "
            f"{t['findings']:,} findings ("
            + ", ".join(f"{p.replace('_', ' ')} {n}" for p, n in t["by_playbook"].items())
            + f") → {t['merged']:,} merged into one task per account → "
            f"{t['opened']:,} tasks opened − {t['cancelled']:,} "
            f"cancelled before the push (finding cleared) − {t['held']:,} held by the push "
            f"caps for a later push = {t['created']:,} created in the CRM.",
        )
    w = result.crm_writes
    if w.get("requests"):
        line()
        line(
            styled("[bold]Written to the sandbox CRM[/]: "),
            f"{w['properties_created']} hub-owned company properties created once, "
            f"{w['company_updates']:,} company field updates (only changed values, batches of "
            f"100), {w['tasks_created']:,} tasks with company association, in "
            f"{w['requests']:,} write requests.",
        )
    if result.webhook:
        print_webhook_demo(result.webhook)
    if result.nrr_by_csm:
        line()
        print_csm_rows(env, result.nrr_by_csm, result.nrr_period)
    for error in result.errors[:5]:
        line(text("problem: ", "red"), error)
    dbarg = f"--db {result.db_path}"
    name = result.example_account or "ACCOUNT"
    line()
    line(styled("[bold]Explore[/]:"))
    for cmd in (
        f"hub {dbarg} accounts",
        f'hub {dbarg} timeline "{name}"',
        f'hub {dbarg} health --explain "{name}"',
        f"hub {dbarg} health --band red",
        f"hub {dbarg} tasks",
        f"hub {dbarg} status",
        f"hub {dbarg} portfolio --by owner",
    ):
        line(f"  {cmd}")
    line("Then connect your real accounts: ", styled("[bold]hub init[/]"), " (see README.md).")
    line()
    line(f"Done in {result.seconds:.1f} s.")


def _account_gap(companies: int, summary: dict) -> str:
    """Why the world's companies are fewer accounts, said where the number changes: records
    merged into another in the CRM, and root records deleted there (their other records
    wait in the identity review)."""
    gap = companies - summary.get("accounts", 0)
    if gap <= 0:
        return ""
    merged = summary.get("links", {}).get("merged", 0)
    deleted = summary.get("deleted_roots", 0)
    parts = []
    if merged:
        parts.append(f"{merged:,} merged into another in the CRM")
    if deleted:
        parts.append(f"{deleted:,} deleted from the CRM, its other records held for review")
    if merged + deleted != gap:
        parts = [f"{gap:,} fewer: merged or deleted in the CRM, or held for review"]
    return f" (of {companies:,} companies: {'; '.join(parts)})"


def _band_limits(limits: dict[str, float]) -> str:
    """`` (green ≥ 80, yellow ≥ 40, red < 40)``: a band is read against its limits."""
    ordered = sorted(limits.items(), key=lambda kv: -kv[1])
    if len(ordered) < 2:
        return ""
    shown = [f"{name} ≥ {low:g}" for name, low in ordered[:-1]]
    return f" ({', '.join([*shown, f'{ordered[-1][0]} < {ordered[-2][1]:g}'])})"


def _period_title(label: str, period: dict | None) -> str:
    """``last 90 days (2026-09-07 → 2026-12-05)``; the label alone without the dates."""
    import re

    days = re.fullmatch(r"last-(\d+)d", label)
    words = f"last {days.group(1)} days" if days else label
    if not period or not period.get("start"):
        return words
    return f"{words} ({period['start']} → {period['end']})"


def print_csm_rows(env: Env, rows: list[dict], period: dict | None = None) -> None:
    """NRR per CSM book (``hub.portfolio.csm_rows``; the last row is the total, in bold),
    then, with ``period``, one line saying which accounts NRR and GRR are over."""
    from rich import box

    from hub.portfolio.render import short

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}%"

    last = rows[-1]
    right = {"justify": "right", "no_wrap": True}
    table(
        rows,
        [
            Column("CSM", "owner", ratio=1, min_width=12),
            Column("Accts", "accounts", **right),
            Column("Start", lambda r: short(r["starting_mrr"]), **right),
            Column("End", lambda r: short(r["closing_mrr"]), **right),
            Column("NRR", lambda r: pct(r["nrr_pct"]), **right),
            Column("GRR", lambda r: pct(r["grr_pct"]), **right),
            Column("Churned", lambda r: short(r["churn"]), **right),
            Column(
                "Top churn reason",
                lambda r: str(r["top_churn_reason"] or "—").replace("_", " "),
                no_wrap=True,
            ),
        ],
        env=env,
        title=f"Net revenue retention per CSM book, {_period_title(rows[0]['period'], period)}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        row_style=lambda r: "bold" if r is last else None,
        section_before=lambda r: r is last,
    )
    if period and period.get("starting_accounts") is not None:
        starting, accounts = period["starting_accounts"], period.get("accounts") or 0
        rest = accounts - starting
        line(
            f"NRR and GRR are over the {starting:,} accounts paying on {period['start']}, the "
            "period's start"
            + (f"; the other {rest:,} of {accounts:,} paid nothing then." if rest > 0 else ".")
        )
