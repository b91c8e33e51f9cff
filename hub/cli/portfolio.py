"""``hub portfolio``: NRR and MRR movements per CSM book, one account's bridge, cohorts."""

from __future__ import annotations

import csv
import io
from typing import Any

import click
from rich import box

from hub import text
from hub.cli.render import Column, emit_json, line, listing, table
from hub.cli.util import Env, pass_env
from hub.errors import ConfigError
from hub.portfolio.render import short


def register(cli: click.Group) -> None:
    cli.add_command(portfolio)


def _settings(env: Env) -> Any:
    """``[portfolio]`` from hub.toml; the defaults when ``--db`` is given without a config."""
    from hub.portfolio import PortfolioSection, validate_config

    try:
        return validate_config(env.config())
    except ConfigError as exc:
        if not env.db_path:
            raise
        if "not found" not in exc.message:
            raise  # a config with an error is never silently ignored
        return PortfolioSection()


def money(value: float | None) -> str:
    return text.money(value, missing="—", whole=True)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _print_csv(rows: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    click.echo(out.getvalue(), nl=False)


def _flat(book: dict[str, Any]) -> dict[str, Any]:
    """A book as one CSV row: reasons and bands as ``name=value`` lists."""
    row = {k: v for k, v in book.items() if not isinstance(v, (dict, list))}
    row["churn_by_reason"] = "; ".join(f"{k}={v}" for k, v in book["churn_by_reason"].items())
    row["health_bands"] = "; ".join(
        f"{k}={v['accounts']}/{v['mrr']}" for k, v in book["health_bands"].items()
    )
    row["owner_changes"] = len(book["owner_changes"])
    return row


@click.group(invoke_without_command=True)
@click.option(
    "--by",
    type=click.Choice(["owner", "segment", "plan"]),
    default="owner",
    show_default=True,
    help="Group the books by owner (CSM at the period start), health segment or plan.",
)
@click.option("--period", help="2026-Q3, 2026-10, 2026 or last-90d (default [portfolio]).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (one row per book, then the total).")
@click.pass_context
def portfolio(ctx: click.Context, by: str, period: str | None, as_json: bool, as_csv: bool) -> None:
    """MRR movements and retention per book: starting MRR, new, expansion, contraction,
    churn, NRR, GRR, logo churn, churn by reason, health at the period end, LTV.

    An account stays all period in the book of its owner at the period start; owner changes
    during the period are listed. NRR = (start + expansion − contraction − churn) ÷ start,
    over the accounts paying at the start; the movements of each book add up to its closing
    minus opening MRR.

    \b
    Examples:
      hub portfolio
      hub portfolio --by segment --period 2026-Q3
      hub portfolio --period 2026-10 --csv > october.csv
      hub portfolio movements acme.example
      hub portfolio cohorts
    """
    if ctx.invoked_subcommand is not None:
        return
    from hub.portfolio import parse_period, portfolio_report

    env = ctx.find_object(Env)
    assert env is not None
    settings = _settings(env)
    report = portfolio_report(
        env.store(), parse_period(period or settings.default_period), by, settings
    )
    data = report.as_dict()
    if as_json:
        books, overall = data.pop("books"), data.pop("total")
        emit_json(listing(books, **data, overall=overall))
        return
    if as_csv:
        _print_csv([_flat(b) for b in [*data["books"], data["total"]]])
        return
    _print_books(env, data)


def _band_order(band: str) -> tuple[int, str]:
    order = {"green": 0, "yellow": 1, "red": 2, "churned": 3, "unscored": 4}
    return order.get(band, 5), band


def _band_cell(slot: dict[str, Any] | None) -> str:
    return f"{slot['accounts']} {short(slot['mrr'])}" if slot else "—"


def _print_books(env: Env, data: dict[str, Any]) -> None:
    p = data["period"]
    if not data["books"]:
        line(
            f"No recurring revenue in {p['label']} ({p['start']} – {p['end_exclusive']}, "
            "end excluded). Run 'hub sync' and 'hub map' first."
        )
        return
    rows = [*data["books"], data["total"]]
    is_total = lambda b: b["key"] == "*"  # noqa: E731 - the last row, drawn apart in bold
    looks = {
        "env": env,
        "title_justify": "left",
        "box": box.SIMPLE_HEAD,
        "row_style": lambda b: "bold" if is_total(b) else None,
        "section_before": is_total,
    }
    right = {"justify": "right", "no_wrap": True}
    table(
        rows,
        [
            Column(data["by"].title(), "label", ratio=1, min_width=8),
            Column("Accts", "accounts", **right),
            Column("Start", lambda b: short(b["starting_mrr"]), **right),
            Column("New", lambda b: short(b["new"] + b["reactivation"]), **right),
            Column("Expand", lambda b: short(b["expansion"]), **right),
            Column(
                "Contr", lambda b: short(-b["contraction"]) if b["contraction"] else "$0", **right
            ),
            Column("Churn", lambda b: short(-b["churn"]) if b["churn"] else "$0", **right),
            Column("End", lambda b: short(b["closing_mrr"]), **right),
            Column("NRR", lambda b: pct(b["nrr_pct"]), **right),
            Column("GRR", lambda b: pct(b["grr_pct"]), **right),
            Column("Lost", "logos_lost", **right),
        ],
        title=f"Portfolio by {data['by']}, {p['label']} "
        f"({p['start']} to {p['end_exclusive']}, end excluded)",
        padding=(0, 1),
        pad_edge=False,
        collapse_padding=True,
        **looks,
    )
    line(
        "New includes reactivations; NRR and GRR count the accounts paying at the start; "
        "Lost = those paying nothing at the end."
    )
    line("Churned MRR by cancellation reason:")
    for book in rows:
        if book["churn_by_reason"]:
            reasons = ", ".join(
                f"{k.replace('_', ' ')} {short(v)}"
                for k, v in sorted(book["churn_by_reason"].items(), key=lambda kv: -kv[1])
            )
            line(f"  {book['label']}: {reasons}")
    bands = sorted({k for b in data["books"] for k in b["health_bands"]}, key=_band_order)
    table(
        rows,
        [
            Column(data["by"].title(), "label", ratio=1),
            Column(
                "Avg",
                lambda b: "—" if b["avg_health"] is None else f"{b['avg_health']:.0f}",
                **right,
            ),
            Column(
                "Change",
                lambda b: (
                    "—" if b["avg_health_change"] is None else f"{b['avg_health_change']:+.0f}"
                ),
                **right,
            ),
            *[
                Column(band.title(), lambda b, band=band: _band_cell(b["health_bands"].get(band)))
                for band in bands
            ],
        ],
        title="Health at the period end",
        padding=(0, 1),
        **looks,
    )
    total = data["total"]
    line(f"LTV (all books): {money(total['ltv'])} = {data['ltv_method']}")
    moves = [c for b in data["books"] for c in b["owner_changes"]]
    if moves and data["by"] == "owner":
        line(
            f"{len(moves)} owner change(s) during the period (each account stays in the book "
            "of its owner at the start):"
        )
        for c in moves[:10]:
            line(
                f"  {c.get('name') or c['account_id']}: "
                f"{c.get('from_name') or c['from'] or 'nobody'} → "
                f"{c.get('to_name') or c['to'] or 'nobody'} on {c['at'][:10]}"
            )
        if len(moves) > 10:
            line(f"  … and {len(moves) - 10} more (--json lists all)")
    ok = total["reconciles"] and all(b["reconciles"] for b in data["books"])
    line(
        "Movements reconcile: End − Start = New + Expand − Contract − Churn for every book "
        f"and the total: {'yes' if ok else 'NO'}."
    )


@portfolio.command()
@click.argument("account")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_env
def movements(env: Env, account: str, as_json: bool) -> None:
    """The month-by-month MRR bridge of one ACCOUNT (id, domain or name).

    \b
    Examples:
      hub portfolio movements acme.com
      hub portfolio movements 1234567 --json
    """
    from hub import clock
    from hub.portfolio import account_bridge, lifetimes
    from hub.store.portfolio import find_account

    store = env.store()
    settings = _settings(env)
    found = find_account(store, account)
    months = account_bridge(store, found["id"], until=clock.now().date())
    life = next(iter(lifetimes(store, settings, account_id=found["id"])), None)
    lifetime = None
    if life is not None:
        lifetime = {
            "started": life.start,
            "first_value_event": settings.first_value_event,
            "first_value_at": life.first_value_at,
            "ttfv_days": life.ttfv_days,
            "churned_at": life.churned_at,
            "early_churn": life.early_churn,
            "observed_value": life.observed_value / 100,
        }
    fields = ("opening", "new", "expansion", "contraction", "churn", "reactivation", "closing")
    rows = [
        {"month": m.month, **{f: getattr(m, f) / 100 for f in fields}, "reasons": m.reasons}
        for m in months
    ]
    if as_json:
        emit_json(listing(rows, account_id=found["id"], name=found.get("name"), lifetime=lifetime))
        return
    if not rows:
        line(f"{found.get('name') or found['id']}: no recurring revenue on the timeline.")
        return
    short_names = {
        "opening": "Open",
        "expansion": "Expand",
        "contraction": "Contr",
        "reactivation": "React",
        "closing": "Close",
    }
    table(
        rows,
        [
            Column("Month", "month"),
            *[
                Column(
                    short_names.get(f, f.title()),
                    lambda r, f=f: money(-r[f] if f in ("contraction", "churn") and r[f] else r[f]),
                    justify="right",
                    no_wrap=True,
                )
                for f in fields
            ],
            Column("Reason", lambda r: ", ".join(r["reasons"]).replace("_", " ")),
        ],
        env=env,
        title=f"MRR bridge: {found.get('name') or found['id']}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    if lifetime:
        ttfv = (
            f"first value ({lifetime['first_value_event']}) after {lifetime['ttfv_days']} days"
            if lifetime["ttfv_days"] is not None
            else f"no {lifetime['first_value_event']} yet"
        )
        lost = ""
        if lifetime["churned_at"]:
            lost = f"; first lost {lifetime['churned_at']}" + (
                f" (early churn: within {settings.early_churn_days} days)"
                if lifetime["early_churn"]
                else ""
            )
        line(
            f"Paying since {lifetime['started']}; {ttfv}{lost}; "
            f"paid {money(lifetime['observed_value'])} to date."
        )


@portfolio.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.option(
    "--accounts",
    "per_account",
    is_flag=True,
    help="One row per account (start, first value, TTFV, churn) as CSV (JSON with --json).",
)
@pass_env
def cohorts(env: Env, as_json: bool, as_csv: bool, per_account: bool) -> None:
    """Time to first value and early churn per start month (cohort).

    The first-value event and the early-churn window are set in [portfolio].

    \b
    Examples:
      hub portfolio cohorts
      hub portfolio cohorts --accounts --csv > ttfv.csv
      hub portfolio cohorts --json | jq '.items[] | {cohort, ttfv_median_days}'
    """
    from dataclasses import asdict

    from hub.portfolio import cohorts as compute
    from hub.portfolio import lifetimes

    settings = _settings(env)
    if per_account:
        rows = [
            {**asdict(a), "observed_value": a.observed_value / 100}
            for a in lifetimes(env.store(), settings)
        ]
        if as_json:
            emit_json(listing(rows))
        else:
            _print_csv(rows)
        return
    rows = [c.as_dict() for c in compute(env.store(), settings)]
    if as_json:
        emit_json(
            listing(
                rows,
                first_value_event=settings.first_value_event,
                early_churn_days=settings.early_churn_days,
            )
        )
        return
    if as_csv:
        _print_csv(rows)
        return
    if not rows:
        line("No paying accounts on the timeline yet. Run 'hub sync' and 'hub map' first.")
        return
    right = {"justify": "right"}
    table(
        rows,
        [
            Column("Cohort", "cohort"),
            Column("Accts", "accounts", **right),
            Column("Reached value", "reached_first_value", **right),
            Column(
                "TTFV median",
                lambda r: "—" if r["ttfv_median_days"] is None else f"{r['ttfv_median_days']:g} d",
                **right,
            ),
            Column(
                "TTFV avg",
                lambda r: "—" if r["ttfv_avg_days"] is None else f"{r['ttfv_avg_days']:g} d",
                **right,
            ),
            Column(
                "Early churn",
                lambda r: (
                    f"{r['early_churn']}"
                    + (f" ({pct(r['early_churn_pct'])})" if r["early_churn"] else "")
                ),
                **right,
            ),
            Column("Maturing", "maturing", **right),
            Column("Value to date", lambda r: money(r["observed_value_avg"]), **right),
        ],
        env=env,
        title=f"Cohorts by start month (first value: {settings.first_value_event}; "
        f"early churn: lost within {settings.early_churn_days} days)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    line("Value to date: MRR paid × months paid, averaged per account (observed, not projected).")
