"""Timeline commands: map, accounts, timeline."""

from __future__ import annotations

import json

import click
from rich import box
from rich.table import Table

from hub.cli.util import Env, console, pass_env
from hub.errors import ConfigError
from hub.vocabulary import vocabulary


def register(cli: click.Group) -> None:
    cli.add_command(map_command)
    cli.add_command(accounts)
    cli.add_command(timeline)


def _config_or_none(env: Env):
    try:
        return env.config()
    except ConfigError:
        if env.db_path:
            return None
        raise


@click.command("map")
@click.option("--full", is_flag=True, help="Rebuild accounts and the timeline from all raw data.")
@click.option("--json", "as_json", is_flag=True, help="Print counts as JSON.")
@pass_env
def map_command(env: Env, full: bool, as_json: bool) -> None:
    """Turn synced raw records into accounts, identity links and timeline events."""
    from hub.timeline import run_mappings

    result = run_mappings(env.store(), _config_or_none(env), full=full)
    data = {k: v for k, v in result.__dict__.items()}
    if as_json:
        console.print_json(json.dumps(data, default=str))
        return
    links = ", ".join(f"{n} by {m}" for m, n in sorted(result.links.items())) or "none"
    console.print(
        f"Mapped {result.rows:,} raw rows into {result.events:,} events in {result.duration_s:.1f}s; "
        f"{result.accounts:,} accounts; links: {links}; {result.unmatched:,} unmatched; {result.conflicts} conflicts.",
        highlight=False,
    )
    for error in result.errors:
        console.print(f"[red]error:[/] {error}", highlight=False)
    if result.unmatched or result.conflicts:
        console.print(
            "See [bold]hub accounts --unmatched[/] for records that belong to no account."
        )


@click.command()
@click.option("--links", is_flag=True, help="Show how each source record is linked to its account.")
@click.option(
    "--unmatched", is_flag=True, help="Show source records that match no account, and why."
)
@click.option("--owner", help="Only accounts of this owner (name, e-mail or id).")
@click.option("--search", "search", help="Only accounts whose name or domain contains this text.")
@click.option("--limit", default=50, show_default=True, help="Rows to show (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def accounts(
    env: Env,
    links: bool,
    unmatched: bool,
    owner: str | None,
    search: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List accounts with domain, owner, MRR and the sources linked to each."""
    db = env.store().db
    lim = f" LIMIT {int(limit)}" if limit else ""
    if unmatched:
        rows = list(
            db.query(
                f"SELECT i.entity, i.issue, i.detail, e.name, e.domains FROM identity_issues i LEFT JOIN entities e ON e.key = i.entity ORDER BY i.issue, i.entity{lim}"
            )
        )
        _print_rows(
            rows,
            as_json,
            "Records not linked to an account",
            [
                ("record", lambda r: r["entity"]),
                ("issue", lambda r: r["issue"]),
                ("name", lambda r: r["name"] or ""),
                ("domains", lambda r: ", ".join(json.loads(r["domains"] or "[]"))),
                ("why", lambda r: r["detail"]),
            ],
        )
        return
    if links:
        rows = list(
            db.query(
                f"SELECT l.account_id, a.name AS account, l.entity, l.method, l.detail FROM account_links l LEFT JOIN accounts a ON a.id = l.account_id ORDER BY l.account_id, l.method{lim}"
            )
        )
        _print_rows(
            rows,
            as_json,
            "Identity links",
            [
                ("account", lambda r: r["account_id"]),
                ("name", lambda r: r["account"] or ""),
                ("record", lambda r: r["entity"]),
                ("method", lambda r: r["method"]),
                ("detail", lambda r: r["detail"] or ""),
            ],
        )
        return
    where, params = [], []
    if owner:
        where.append(
            "(owner_id = ? OR lower(owner_name) LIKE lower(?) OR lower(owner_email) = lower(?))"
        )
        params += [owner, f"%{owner}%", owner]
    if search:
        where.append("(lower(name) LIKE lower(?) OR domain LIKE lower(?))")
        params += [f"%{search}%", f"%{search}%"]
    sql = (
        "SELECT * FROM accounts"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY mrr DESC NULLS LAST, name"
        + lim
    )
    rows = list(db.query(sql, params))
    for r in rows:
        r["sources"] = json.loads(r["facts"] or "{}").get("sources", {})
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    vocab = vocabulary()
    table = Table(
        title=f"Accounts ({db['accounts'].count:,} in all)",
        caption="src: "
        + " · ".join(f"{s.letter} {s.title}" for s in vocab.sources.values())
        + " · --json for ids and all facts",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for col, opts in (
        ("name", {"no_wrap": True, "overflow": "ellipsis", "max_width": 18}),
        ("domain", {"no_wrap": True, "overflow": "ellipsis", "max_width": 18}),
        ("owner", {"no_wrap": True, "overflow": "ellipsis", "max_width": 11}),
        ("MRR", {"justify": "right", "no_wrap": True, "min_width": 7}),
        ("renewal", {"no_wrap": True, "min_width": 10}),
        ("src", {"no_wrap": True, "min_width": 3}),
    ):
        table.add_column(col, **opts)
    for r in rows:
        mrr = f"${r['mrr']:,.0f}" if r["mrr"] is not None else ""
        table.add_row(
            r["name"] or "",
            r["domain"] or "",
            r["owner_name"] or "",
            mrr,
            (r["renewal_date"] or "")[:10],
            "".join(vocab.source(s).letter for s in vocab.source_order(r["sources"])),
        )
    console.print(table)


def _print_rows(rows: list[dict], as_json: bool, title: str, columns: list) -> None:
    """Rows as JSON, or as a table of (header, value-of-row) columns."""
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=title)
    for header, _ in columns:
        table.add_column(header)
    for r in rows:
        table.add_row(*(value(r) for _, value in columns))
    console.print(table)


@click.command()
@click.argument("account")
@click.option("--since", help="Only events on or after this date (YYYY-MM-DD).")
@click.option("--type", "types", multiple=True, help="Only these event types (repeatable).")
@click.option("--limit", default=100, show_default=True, help="Events to show (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def timeline(
    env: Env, account: str, since: str | None, types: tuple[str, ...], limit: int, as_json: bool
) -> None:
    """Show one account's timeline, newest first (ACCOUNT: id, domain or name)."""
    from hub.timeline.identity import account_for

    store = env.store()
    acc = account_for(store, account)
    if acc is None:
        raise ConfigError(
            f"no account matches {account!r}", hint="use an id, domain or name from 'hub accounts'"
        )
    where, params = ["account_id = ?"], [acc["id"]]
    if since:
        where.append("ts >= ?")
        params.append(since)
    if types:
        where.append(f"type IN ({','.join('?' * len(types))})")
        params += list(types)
    lim = f" LIMIT {int(limit)}" if limit else ""
    rows = list(
        store.db.query(
            f"SELECT id, ts, source, type, summary, attrs, link FROM events WHERE {' AND '.join(where)} ORDER BY ts DESC, id DESC{lim}",
            params,
        )
    )
    if as_json:
        for r in rows:
            r["attrs"] = json.loads(r["attrs"] or "{}")
        console.print_json(json.dumps({"account": acc, "events": rows}, default=str))
        return
    console.print(
        f"[bold]{acc['name']}[/] ({acc['domain'] or 'no domain'}) · id {acc['id']} · owner {acc['owner_name'] or 'unassigned'}",
        highlight=False,
    )
    table = Table(show_header=True, box=None)
    for col in ("when (UTC)", "source", "event", "summary"):
        table.add_column(col)
    for r in rows:
        style = vocabulary().source(r["source"]).style or "white"
        table.add_row(
            r["ts"][:16].replace("T", " "), f"[{style}]{r['source']}[/]", r["type"], r["summary"]
        )
    console.print(table)
    if not rows:
        console.print("No events yet for this account.")
