"""``hub health``: recompute scores and list them by band; explain one; override one."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hub.cli.util import Env, console, err_console, pass_env
from hub.errors import ConfigError

BAND_ORDER = {"red": 0, "yellow": 1, "green": 2, "churned": 4}
BAND_STYLE = {"red": "bold red", "yellow": "yellow", "green": "green", "churned": "dim"}


def register(cli: click.Group) -> None:
    cli.add_command(health)


def _config(env: Env) -> Any:
    """The config, or None (the default health model) when ``--db`` is given and hub.toml is
    missing or its ``[health]`` section is invalid; without ``--db`` such errors stop here."""
    from hub.health import load_settings

    try:
        config = env.config()
        load_settings(config)
        return config
    except ConfigError as exc:
        if not env.db_path:
            raise
        if "not found" not in exc.message:
            err_console.print(
                f"[yellow]note:[/] ignoring the config ({escape(str(exc))}); "
                "using the default health model",
                highlight=False,
                soft_wrap=True,
            )
        return None


def arrow(trend: int | None) -> str:
    """``↑``, ``↓`` or ``→`` for a trend in points."""
    if trend is None or trend == 0:
        return "→"
    return "↑" if trend > 0 else "↓"


def _style(band: str | None) -> str:
    return BAND_STYLE.get(band or "", "dim")


def _rows(store: Any, band: str | None) -> list[dict[str, Any]]:
    from hub.store.health_queries import score_rows

    rows = score_rows(store, band=band)
    for row in rows:
        row.pop("measures", None)
    rows.sort(
        key=lambda r: (
            BAND_ORDER.get(r["band"], 3),
            r["score"] if r["score"] is not None else -1,
            r["name"] or "",
        )
    )
    return rows


def coverage_text(coverage: float | None) -> str:
    """``0.85`` → ``"85%"``; None → ``"—"``."""
    from hub.text import pct

    return "—" if coverage is None else pct(coverage)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--band",
    type=click.Choice(["red", "yellow", "green", "churned"]),
    help="Only accounts in this band.",
)
@click.option("--full", is_flag=True, help="Recompute every account, not only what changed.")
@click.option(
    "--backfill",
    type=click.IntRange(1, 3650),
    metavar="DAYS",
    help="Rebuild the daily history of the last DAYS days from the timeline, then today.",
)
@click.option(
    "--explain",
    "explain_account",
    metavar="ACCOUNT",
    help="Show one account's whole calculation (id, domain or name).",
)
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=50,
    show_default=True,
    help="Rows in the table (0 = all).",
)
@click.option("--no-compute", is_flag=True, help="List the stored scores without recomputing.")
@pass_env
def health(
    env: Env,
    as_json: bool,
    band: str | None,
    full: bool,
    backfill: int | None,
    explain_account: str | None,
    limit: int,
    no_compute: bool,
) -> None:
    """Recompute health scores and list accounts by band (score, trend, top driver).

    Recomputes only accounts whose events or facts changed since the last run, unless the day
    changed, the [health] config changed or --full is given. --backfill DAYS rebuilds history
    day by day from the timeline (account facts as they are now).

    \b
    Examples:
      hub health
      hub health --band red --limit 0
      hub health --explain acme.com
      hub health --backfill 30
      hub health --json | jq '.accounts[0]'
    """
    if click.get_current_context().invoked_subcommand is not None:
        return
    from hub.health import backfill_health, compute_health, explain

    config = _config(env)
    store = env.store()
    if explain_account:
        data = explain(store, explain_account, config)
        if as_json:
            console.print_json(json.dumps(data, default=str, ensure_ascii=False))
        else:
            print_explain(data)
        return
    result = None
    if backfill or not no_compute:
        from hub.lock import database_lock

        with database_lock(store, "hub health"):
            if backfill:
                result = backfill_health(store, config, backfill)
            else:
                result = compute_health(store, config, full=full)
    rows = _rows(store, band)
    if as_json:
        payload: dict[str, Any] = {"accounts": rows}
        if result is not None:
            payload["run"] = {
                "accounts": result.accounts,
                "full": result.full,
                "reason": result.reason,
                "bands": result.bands,
                "backfilled_days": result.backfilled_days,
                "duration_s": round(result.duration_s, 3),
            }
        console.print_json(json.dumps(payload, default=str, ensure_ascii=False))
        return
    if result is not None:
        kind = "full" if result.full else "incremental"
        console.print(
            f"Scored {result.accounts} accounts ("
            + (kind if result.reason in (None, "", kind) else f"{kind}: {result.reason}")
            + ") in "
            f"{result.duration_s:.2f} s"
            + (
                f", history rebuilt for {result.backfilled_days} days"
                if result.backfilled_days
                else ""
            ),
            highlight=False,
        )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["band"] or "none"] = counts.get(row["band"] or "none", 0) + 1
    console.print(
        "  ".join(
            f"[{_style(b)}]{b}[/] {n}"
            for b, n in sorted(counts.items(), key=lambda kv: BAND_ORDER.get(kv[0], 3))
        )
        or "No scores yet: run 'hub map' first, then 'hub health'."
    )
    shown = rows if limit == 0 else rows[:limit]
    if not shown:
        return
    table = Table(title=f"Health{f' ({band})' if band else ''}")
    table.add_column("account")
    table.add_column("score", justify="right")
    table.add_column("band")
    table.add_column("trend 7d", justify="right")
    table.add_column("coverage", justify="right")
    table.add_column("top driver")
    for row in shown:
        trend = row["trend_7d"]
        score = "" if row["score"] is None else str(row["score"])
        if row["override_value"] is not None:
            score += "*"
        table.add_row(
            Text(row["name"] or row["account_id"]),
            score,
            f"[{_style(row['band'])}]{row['band'] or 'none'}[/]",
            f"{arrow(trend)} {trend:+d}" if trend else arrow(trend),
            coverage_text(row["coverage"]) + ("!" if row["low_coverage"] else ""),
            Text((row["drivers"] or [""])[0]),
        )
    console.print(table)
    if len(rows) > len(shown):
        console.print(
            f"… {len(rows) - len(shown)} more (--limit 0 shows all, --json for everything)"
        )
    if any(r["override_value"] is not None for r in shown):
        console.print("* CSM override in force (the computed score is kept: see --explain)")
    if any(r["low_coverage"] for r in shown):
        console.print(
            "! low coverage: too little of the model had data for the score to be trusted "
            "(see --explain)"
        )


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def print_explain(data: dict[str, Any]) -> None:
    """The whole calculation of one account, in rich tables."""
    acc = data["account"]
    console.print(
        f"[bold]{escape(str(acc['name'] or acc['id']))}[/] ({escape(str(acc['id']))}, "
        f"{escape(str(acc['domain'] or 'no domain'))}), plan {escape(str(acc['plan'] or '—'))}, "
        f"MRR {_fmt(acc['mrr'])}, stage {escape(str(acc['lifecycle_stage'] or '—'))}",
        highlight=False,
    )
    console.print(
        f"Segment [bold]{escape(str(data['segment']))}[/] → model [bold]{escape(str(data['model']))}[/] "
        f"({escape(str(data['model_type']))})"
        + (f": {escape(data['model_description'])}" if data.get("model_description") else ""),
        highlight=False,
    )
    weighted = data["model_type"] == "weighted"
    table = Table(title="Measures")
    table.add_column("measure")
    table.add_column("score", justify="right")
    if weighted:
        table.add_column("weight", justify="right")
        table.add_column("contribution", justify="right")
    table.add_column("why")
    for m in data["measures"]:
        cells = [m["label"], "no data" if m["score"] is None else f"{m['score']:.2f}"]
        if weighted:
            cells += [
                _fmt(m["weight"]) + (" (left out)" if m["score"] is None else ""),
                "" if m["contribution"] is None else f"{m['contribution']:.2f}",
            ]
        cells.append("; ".join(m["drivers"]))
        table.add_row(*(Text(c) for c in cells))
    console.print(table)
    console.print("[bold]Inputs[/] (and parameters):", highlight=False)
    for m in data["measures"]:
        inputs = ", ".join(f"{k}={_fmt(v)}" for k, v in m["inputs"].items())
        params = ", ".join(
            f"{k}={_fmt(v)}" for k, v in m["params"].items() if not isinstance(v, dict)
        )
        console.print(
            f"  {escape(m['name'])}: {escape(inputs or '—')}  [dim]({escape(params)})[/]",
            highlight=False,
        )
    details = data["details"]
    if not weighted and "rules" in details:
        rules = Table(
            title=f"Points (base {details['base']:g}, range {details['min']:g}..{details['max']:g})"
        )
        for col in ("rule", "on", "value", "holds", "points"):
            rules.add_column(col)
        for r in details["rules"]:
            rules.add_row(
                Text(str(r["rule"])),
                Text(str(r["on"])),
                Text(_fmt(r["value"])),
                Text(str(r["held"] or "no")),
                f"{r['points']:+g}" if r["held"] else "",
            )
        console.print(rules)
    lines = Table(title="Calculation (lines add up exactly)")
    lines.add_column("line")
    lines.add_column("amount", justify="right")
    lines.add_column("detail")
    for c in data["contributions"]:
        lines.add_row(Text(c["label"]), f"{c['amount']:+.2f}", Text(c["detail"] or ""))
    console.print(lines)
    if data["score_exact"] is None:
        console.print("No measure of this model has data: no score.")
    elif weighted:
        console.print(
            f"Σ = [bold]{data['score_exact']:.2f}[/] (unrounded) → score "
            f"[bold]{data['computed_score']}[/] (rounded half up)",
            highlight=False,
        )
    else:
        console.print(
            f"Σ = [bold]{details['points']:g}[/] points → {details['scaling']} = "
            f"{data['score_exact']:.2f} → score [bold]{data['computed_score']}[/] (rounded half up); "
            f"bands on the {details['bands_on']}",
            highlight=False,
        )
    if data.get("coverage") is not None:
        missing = f"; no data: {', '.join(data['missing'])}" if data.get("missing") else ""
        flag = (
            f" [bold yellow]below the {coverage_text(data['min_coverage'])} minimum: flagged[/]"
            if data.get("low_coverage")
            else ""
        )
        console.print(
            f"Coverage {coverage_text(data['coverage'])} of the model's weight had data"
            f"{missing}{flag}",
            highlight=False,
        )
    if data.get("churned"):
        console.print(
            f"[bold]Churned[/] ({data['churned'].removeprefix('churned: ')}): shown as band "
            "churned, outside green/yellow/red",
            highlight=False,
        )
    if data["override"]:
        o = data["override"]
        console.print(
            f"[bold]Override[/] {o['value']} until {o['until'] or 'removed'} "
            f"(from {escape(str(o['source']))}): {escape(str(o['reason']))}; "
            f"computed score {data['computed_score']} is kept",
            highlight=False,
        )
    bands = ", ".join(
        f"{n} ≥ {v:g}" for n, v in sorted(data["bands"].items(), key=lambda kv: -kv[1])
    )
    console.print(
        f"Shown score [bold]{_fmt(data['score'])}[/], band [{_style(data['band'])}]{data['band'] or 'none'}[/] "
        f"({bands}); trend 7d {arrow(data['trend_7d'])} {_fmt(data['trend_7d'])}, "
        f"30d {arrow(data['trend_30d'])} {_fmt(data['trend_30d'])}",
        highlight=False,
    )
    if data["event_counts"]:
        console.print(
            "Event counts: "
            + "; ".join(
                f"{'+'.join(e['events'])} in {e['days']} d = {e['count']}"
                for e in data["event_counts"]
            ),
            highlight=False,
            markup=False,
        )
    console.print("Drivers:", highlight=False)
    for text in data["drivers"]:
        console.print(f"  • {text}", highlight=False, markup=False)


@health.command("override")
@click.argument("account")
@click.argument("value", required=False, type=click.IntRange(0, 100))
@click.option("--reason", help="Why (shown with the score).")
@click.option("--until", metavar="YYYY-MM-DD", help="Last day the override holds.")
@click.option("--clear", is_flag=True, help="Remove the override instead.")
@pass_env
def override(
    env: Env, account: str, value: int | None, reason: str | None, until: str | None, clear: bool
) -> None:
    """Set a CSM override: ACCOUNT shows VALUE (0-100) until --until.

    The computed score is kept beside it, and returns when the override expires (or with
    --clear). An override set in the CRM (the hub's override fields) works the same way;
    one set here wins over it.

    \b
    Examples:
      hub health override acme.com 80 --reason "exec sponsor confirmed renewal" --until 2026-12-31
      hub health override acme.com --clear
    """
    from hub.health import clear_override, set_override
    from hub.lock import database_lock

    config = _config(env)
    store = env.store()
    if clear:
        with database_lock(store, "hub health override"):
            row = clear_override(store, account, config)
        console.print(
            f"Override removed: {_matched(row, account)} is back to its computed score "
            f"{row.get('score')} ({row.get('band')}).",
            highlight=False,
            markup=False,
        )
        return
    if value is None:
        raise ConfigError(
            "give the override VALUE (0-100)",
            hint="hub health override ACCOUNT 80 --reason … --until YYYY-MM-DD",
        )
    if not reason:
        raise ConfigError(
            "an override needs --reason", hint='e.g. --reason "exec sponsor confirmed renewal"'
        )
    if not until:
        raise ConfigError("an override needs --until YYYY-MM-DD", hint="the last day it holds")
    with database_lock(store, "hub health override"):
        row = set_override(store, account, value, reason, until, config)
    console.print(
        f"{_matched(row, account)}: score {row.get('score')} ({row.get('band')}) until "
        f"{row.get('override_until')}; computed score {row.get('computed_score')} is kept.",
        highlight=False,
        markup=False,
    )


def _matched(row: dict[str, Any], typed: str) -> str:
    """The account the lookup matched (name and id), not the text that was typed."""
    name, account_id = row.get("name"), row.get("account_id")
    if name and account_id:
        return f"{name} (id {account_id})"
    return str(account_id or typed)
