"""``hub health``: recompute scores and list them by band; explain one; override one."""

from __future__ import annotations

from typing import Any

import click

from hub.cli.render import Column, emit_json, line, listing, styled, table, text
from hub.cli.util import Env, limit_option, pass_env
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
            raise  # a config with an error is never silently ignored
        return None


def arrow(trend: int | None) -> str:
    """``↑``, ``↓`` or ``→`` (flat) for a trend in points; ``–`` when there is no trend yet."""
    if trend is None:
        return "–"
    if trend == 0:
        return "→"
    return "↑" if trend > 0 else "↓"


def _trend(trend: int | None) -> str:
    """``↓ -4``, ``→ 0``, or ``– (not yet)`` before there are two scored days to compare."""
    return "– (not yet)" if trend is None else f"{arrow(trend)} {trend:+d}"


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
@limit_option("Rows", 50)
@click.option("--no-compute", is_flag=True, help="List the stored scores without recomputing.")
@pass_env
def health(
    env: Env,
    as_json: bool,
    band: str | None,
    full: bool,
    backfill: int | None,
    explain_account: str | None,
    limit: int | None,
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
      hub health --no-compute --json | jq '.items[0]'
    """
    if click.get_current_context().invoked_subcommand is not None:
        return
    from hub.health import backfill_health, compute_health, explain

    config = _config(env)
    store = env.store()
    if explain_account:
        data = explain(store, explain_account, config)
        if as_json:
            emit_json(explain_json(data))
        else:
            print_explain(env, data)
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
    if limit is None:
        limit = 0 if as_json else 50
    shown = rows if limit == 0 else rows[:limit]
    if as_json:
        run = None
        if result is not None:
            run = {
                "accounts": result.accounts,
                "full": result.full,
                "reason": result.reason,
                "bands": result.bands,
                "backfilled_days": result.backfilled_days,
                "duration_s": round(result.duration_s, 3),
            }
        emit_json(listing(shown, len(rows), band=band, run=run))
        return
    if result is not None:
        kind = "full" if result.full else "incremental"
        line(
            f"Scored {result.accounts} accounts ("
            + (kind if result.reason in (None, "", kind) else f"{kind}: {result.reason}")
            + f") in {result.duration_s:.2f} s"
            + (
                f", history rebuilt for {result.backfilled_days} days"
                if result.backfilled_days
                else ""
            )
        )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["band"] or "none"] = counts.get(row["band"] or "none", 0) + 1
    if not counts:
        line("No scores yet: run 'hub map' first, then 'hub health'.")
        return
    parts: list[Any] = []
    for b, n in sorted(counts.items(), key=lambda kv: BAND_ORDER.get(kv[0], 3)):
        parts += [text(b, _style(b)), f" {n}", "  "]
    line(*parts[:-1])
    if not shown:
        return
    table(
        shown,
        [
            Column("account", lambda r: r["name"] or r["account_id"]),
            Column(
                "score",
                lambda r: (
                    ("" if r["score"] is None else str(r["score"]))
                    + ("*" if r["override_value"] is not None else "")
                ),
                justify="right",
            ),
            Column("band", lambda r: text(r["band"] or "none", _style(r["band"]))),
            Column(
                "trend 7d",
                lambda r: (
                    f"{arrow(r['trend_7d'])} {r['trend_7d']:+d}"
                    if r["trend_7d"]
                    else arrow(r["trend_7d"])
                ),
                justify="right",
            ),
            Column(
                "coverage",
                lambda r: coverage_text(r["coverage"]) + ("!" if r["low_coverage"] else ""),
                justify="right",
            ),
            Column("top driver", lambda r: (r["drivers"] or [""])[0]),
        ],
        env=env,
        title=f"Health{f' ({band})' if band else ''}",
    )
    if len(rows) > len(shown):
        line(
            f"… {len(rows) - len(shown)} more (--limit 0 shows all, --json lists everything)",
            err=True,
        )
    if any(r["override_value"] is not None for r in shown):
        line("* CSM override in force (the computed score is kept: see --explain)")
    if any(r["low_coverage"] for r in shown):
        line(
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


def explain_json(data: dict[str, Any]) -> dict[str, Any]:
    """``--explain --json``: the measures as ``items`` (the list shape), the rest beside them."""
    rest = {k: v for k, v in data.items() if k != "measures"}
    return listing(list(data["measures"]), **rest)


def print_explain(env: Env, data: dict[str, Any]) -> None:
    """The whole calculation of one account: tables on a terminal, plain lines otherwise."""
    acc = data["account"]
    line(
        styled("[bold]{name}[/]", name=acc["name"] or acc["id"]),
        f" ({acc['id']}, {acc['domain'] or 'no domain'}), plan {acc['plan'] or '—'}, "
        f"MRR {_fmt(acc['mrr'])}, stage {acc['lifecycle_stage'] or '—'}",
    )
    line(
        "Segment ",
        styled("[bold]{s}[/]", s=data["segment"]),
        " → model ",
        styled("[bold]{m}[/]", m=data["model"]),
        f" ({data['model_type']})"
        + (f": {data['model_description']}" if data.get("model_description") else ""),
    )
    weighted = data["model_type"] == "weighted"
    columns = [
        Column("measure", "label"),
        Column(
            "score",
            lambda m: "no data" if m["score"] is None else f"{m['score']:.2f}",
            justify="right",
        ),
    ]
    if weighted:
        columns += [
            Column(
                "weight",
                lambda m: _fmt(m["weight"]) + (" (left out)" if m["score"] is None else ""),
                justify="right",
            ),
            Column(
                "contribution",
                lambda m: "" if m["contribution"] is None else f"{m['contribution']:.2f}",
                justify="right",
            ),
        ]
    columns.append(Column("why", lambda m: "; ".join(m["drivers"])))
    table(data["measures"], columns, env=env, title="Measures")
    line(styled("[bold]Inputs[/] (and parameters):"))
    for m in data["measures"]:
        inputs = ", ".join(f"{k}={_fmt(v)}" for k, v in m["inputs"].items())
        params = ", ".join(
            f"{k}={_fmt(v)}" for k, v in m["params"].items() if not isinstance(v, dict)
        )
        line(f"  {m['name']}: {inputs or '—'}  ", text(f"({params})", "dim"))
    details = data["details"]
    if not weighted and "rules" in details:
        table(
            details["rules"],
            [
                Column("rule", "rule"),
                Column("on", "on"),
                Column("value", lambda r: _fmt(r["value"])),
                Column("holds", lambda r: str(r["held"] or "no")),
                Column("points", lambda r: f"{r['points']:+g}" if r["held"] else ""),
            ],
            env=env,
            title=f"Points (base {details['base']:g}, range {details['min']:g}..{details['max']:g})",
        )
    table(
        data["contributions"],
        [
            Column("line", "label"),
            Column("amount", lambda c: f"{c['amount']:+.2f}", justify="right"),
            Column("detail", lambda c: c["detail"] or ""),
        ],
        env=env,
        title="Calculation (lines add up exactly)",
    )
    if data["score_exact"] is None:
        line("No measure of this model has data: no score.")
    elif weighted:
        line(
            "Σ = ",
            styled("[bold]{v}[/]", v=f"{data['score_exact']:.2f}"),
            " (unrounded) → score ",
            styled("[bold]{v}[/]", v=data["computed_score"]),
            " (rounded half up)",
        )
    else:
        line(
            "Σ = ",
            styled("[bold]{v}[/]", v=f"{details['points']:g}"),
            f" points → {details['scaling']} = {data['score_exact']:.2f} → score ",
            styled("[bold]{v}[/]", v=data["computed_score"]),
            f" (rounded half up); bands on the {details['bands_on']}",
        )
    if data.get("coverage") is not None:
        missing = f"; no data: {', '.join(data['missing'])}" if data.get("missing") else ""
        flag = (
            text(
                f" below the {coverage_text(data['min_coverage'])} minimum: flagged", "bold yellow"
            )
            if data.get("low_coverage")
            else ""
        )
        line(
            f"Coverage {coverage_text(data['coverage'])} of the model's weight had data{missing}",
            flag,
        )
    if data.get("churned"):
        line(
            styled("[bold]Churned[/]"),
            f" ({data['churned'].removeprefix('churned: ')}): shown as band churned, outside "
            "green/yellow/red",
        )
    if data["override"]:
        o = data["override"]
        line(
            styled("[bold]Override[/]"),
            f" {o['value']} until {o['until'] or 'removed'} (from {o['source']}): {o['reason']}; "
            f"computed score {data['computed_score']} is kept",
        )
    bands = ", ".join(
        f"{n} ≥ {v:g}" for n, v in sorted(data["bands"].items(), key=lambda kv: -kv[1])
    )
    line(
        "Shown score ",
        styled("[bold]{v}[/]", v=_fmt(data["score"])),
        ", band ",
        text(data["band"] or "none", _style(data["band"])),
        f" ({bands}); trend 7d {_trend(data['trend_7d'])}, 30d {_trend(data['trend_30d'])}",
    )
    if data["event_counts"]:
        line(
            "Event counts: "
            + "; ".join(
                f"{'+'.join(e['events'])} in {e['days']} d = {e['count']}"
                for e in data["event_counts"]
            )
        )
    line("Drivers:")
    for driver in data["drivers"]:
        line(f"  • {driver}")


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
        line(
            f"Override removed: {_matched(row, account)} is back to its computed score "
            f"{row.get('score')} ({row.get('band')})."
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
    line(
        f"{_matched(row, account)}: score {row.get('score')} ({row.get('band')}) until "
        f"{row.get('override_until')}; computed score {row.get('computed_score')} is kept."
    )


def _matched(row: dict[str, Any], typed: str) -> str:
    """The account the lookup matched (name and id), not the text that was typed."""
    name, account_id = row.get("name"), row.get("account_id")
    if name and account_id:
        return f"{name} (id {account_id})"
    return str(account_id or typed)
