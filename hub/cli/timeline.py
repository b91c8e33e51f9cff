"""Timeline commands: map, accounts, timeline."""

from __future__ import annotations

import dataclasses

import click
from rich import box

from hub.cli.render import Column, emit_json, line, listing, money, styled, table, text
from hub.cli.util import Env, limit_option, pass_env
from hub.errors import ConfigError
from hub.store import queries
from hub.text import plural
from hub.vocabulary import vocabulary


def register(cli: click.Group) -> None:
    cli.add_command(map_command)
    cli.add_command(accounts)
    cli.add_command(timeline)


@click.command("map")
@click.option("--full", is_flag=True, help="Rebuild accounts and the timeline from all raw data.")
@click.option("--json", "as_json", is_flag=True, help="Print counts as JSON.")
@pass_env
def map_command(env: Env, full: bool, as_json: bool) -> None:
    """Turn synced raw records into accounts, identity links and timeline events.

    \b
    Examples:
      hub map
      hub map --full
      hub map --json | jq .accounts
    """
    from hub.lock import database_lock
    from hub.timeline import run_mappings

    store = env.store()
    config = env.config_or_none()
    with database_lock(store, "hub map"):
        result = run_mappings(store, config, full=full)
    if as_json:
        emit_json(dataclasses.asdict(result) if dataclasses.is_dataclass(result) else vars(result))
        return
    line(map_summary(result))
    for error in result.errors:
        line(text("error: ", "red"), error)
    if result.unmatched or result.conflicts:
        line(
            "See ",
            styled("[bold]hub accounts --unmatched[/]"),
            " for records that belong to no account.",
        )


def map_summary(result) -> str:
    links = ", ".join(f"{n} by {m}" for m, n in sorted(result.links.items())) or "none"
    # Mappings re-derive some events on every run: with no new rows, "0 rows into 147
    # events" reads as if something happened.
    what = (
        f"{result.rows:,} new raw rows into {result.events:,} events"
        if result.rows
        else "nothing new to map"
    )
    return (
        f"map: {what} in {result.duration_s:.1f}s; "
        f"{result.accounts:,} accounts; links: {links}; {result.unmatched:,} unmatched; "
        f"{result.conflicts} conflicts"
    )


@click.command()
@click.option("--links", is_flag=True, help="Show how each source record is linked to its account.")
@click.option(
    "--unmatched", is_flag=True, help="Show source records that match no account, and why."
)
@click.option("--owner", help="Only accounts of this owner (name, e-mail or id).")
@click.option("--search", "search", help="Only accounts whose name or domain contains this text.")
@limit_option("Rows", 50)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def accounts(
    env: Env,
    links: bool,
    unmatched: bool,
    owner: str | None,
    search: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List accounts with domain, owner, MRR and the sources linked to each.

    \b
    Examples:
      hub accounts --search acme
      hub accounts --owner jane@example.com --limit 0
      hub accounts --unmatched
      hub accounts --json | jq '.items[] | {name, mrr}'
    """
    store = env.store()
    if limit is None:
        limit = 0 if as_json else 50
    if unmatched:
        rows, total = queries.unmatched(store, limit=limit)
        if as_json:
            emit_json(listing(rows, total))
            return
        table(
            rows,
            [
                Column("record", "entity"),
                Column("issue", "issue"),
                Column("name", lambda r: r["name"] or ""),
                Column("domains", lambda r: ", ".join(r["domains"])),
                Column("why", "detail"),
            ],
            env=env,
            title="Records not linked to an account",
        )
        _more(len(rows), total)
        return
    if links:
        rows, total = queries.identity_links(store, limit=limit)
        if as_json:
            emit_json(listing(rows, total))
            return
        table(
            rows,
            [
                Column("account", "account_id"),
                Column("name", lambda r: r["account"] or ""),
                Column("record", "entity"),
                Column("method", "method"),
                Column("detail", lambda r: r["detail"] or ""),
            ],
            env=env,
            title="Identity links",
        )
        _more(len(rows), total)
        return
    rows, total = queries.accounts(store, owner=owner, search=search, limit=limit)
    if owner and not total and not queries.accounts(store, owner=owner, limit=1)[1]:
        raise ConfigError(
            f"no account has the owner {owner!r}",
            hint="give an owner id, name or e-mail as 'hub accounts' shows them",
        )
    if as_json:
        emit_json(listing(rows, total))
        return
    filters = " ".join(
        f"{flag} {value!r}" for flag, value in (("--owner", owner), ("--search", search)) if value
    )
    everyone = queries.account_count(store)
    if filters and not total:
        line(f"No account matches {filters} ({plural(everyone, 'account')} in all).")
        return
    title = text(f"Accounts ({everyone:,} in all)")
    if filters:
        # The filters are the user's text: shown as typed, never read as rich markup.
        title = text(f"Accounts matching {filters} ({total:,} of {everyone:,})")
    vocab = vocabulary()
    table(
        rows,
        [
            Column(
                "name", lambda r: r["name"] or "", no_wrap=True, overflow="ellipsis", max_width=18
            ),
            Column(
                "domain",
                lambda r: r["domain"] or "",
                no_wrap=True,
                overflow="ellipsis",
                max_width=18,
            ),
            Column(
                "owner",
                lambda r: r["owner_name"] or "",
                no_wrap=True,
                overflow="ellipsis",
                max_width=11,
            ),
            Column("MRR", lambda r: money(r["mrr"]), justify="right", no_wrap=True, min_width=7),
            Column("renewal", lambda r: (r["renewal_date"] or "")[:10], no_wrap=True, min_width=10),
            Column(
                "src",
                lambda r: "".join(vocab.source(s).letter for s in vocab.source_order(r["sources"])),
                no_wrap=True,
                min_width=3,
            ),
        ],
        env=env,
        title=title,
        caption="src: "
        + " · ".join(f"{s.letter} {s.title}" for s in vocab.sources.values())
        + " · --json for ids and all facts",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    _more(len(rows), total)


def _more(shown: int, total: int) -> None:
    if total > shown:
        line(f"… {total - shown:,} more (--limit 0 shows all, --json lists everything)", err=True)


@click.command()
@click.argument("account")
@click.option("--since", help="Only events on or after this date (YYYY-MM-DD).")
@click.option("--type", "types", multiple=True, help="Only these event types (repeatable).")
@limit_option("Events", 100)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_env
def timeline(
    env: Env,
    account: str,
    since: str | None,
    types: tuple[str, ...],
    limit: int | None,
    as_json: bool,
) -> None:
    """Show one account's timeline, newest first (ACCOUNT: id, domain or name).

    \b
    Examples:
      hub timeline acme.com
      hub timeline "Acme Inc" --since 2026-01-01 --type payment_failed
      hub timeline 1234567 --json | jq '.items[0]'
    """
    import datetime as dt

    from hub.timeline.identity import account_for

    if since is not None:
        try:
            dt.date.fromisoformat(since)
        except ValueError:
            raise ConfigError(
                f"--since {since!r} is not a date", hint="write it as YYYY-MM-DD, e.g. 2026-01-31"
            ) from None
    known = vocabulary().event_types
    unknown = [t for t in types if t not in known]
    if unknown:
        raise ConfigError(
            f"unknown event type {unknown[0]!r}",
            hint="event types: " + ", ".join(sorted(known)),
        )
    store = env.store()
    acc = account_for(store, account)
    if acc is None:
        raise ConfigError(
            f"no account matches {account!r}", hint="use an id, domain or name from 'hub accounts'"
        )
    if limit is None:
        limit = 0 if as_json else 100
    rows, total = queries.account_events(
        store, acc["id"], since=since, types=list(types) or None, limit=limit
    )
    if as_json:
        acc = {**acc, "facts": queries.decode_json(acc.get("facts"), {})}
        emit_json(listing(rows, total, account=acc))
        return
    line(
        styled("[bold]{name}[/]", name=acc["name"] or acc["id"]),
        f" ({acc['domain'] or 'no domain'}) · id {acc['id']} · owner {acc['owner_name'] or 'unassigned'}",
    )
    vocab = vocabulary()
    table(
        rows,
        [
            Column("when (UTC)", lambda r: r["ts"][:16].replace("T", " ")),
            Column("source", lambda r: text(r["source"], vocab.source(r["source"]).style or None)),
            Column("event", "type"),
            Column("summary", lambda r: r["summary"] or ""),
        ],
        env=env,
        show_header=True,
        box=None,
    )
    if not rows:
        line("No events yet for this account.")
    _more(len(rows), total)
