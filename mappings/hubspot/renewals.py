"""Renewals: each company's ``renewal_date`` fact and the ``renewal_due`` events.

Each open *renewal* deal closing within ``renewal_window_days`` gives one ``renewal_due`` event
(dated when the window opened; ``days_left`` as of today), retracted once the deal closes,
moves out of the window or stops being a renewal. Each company's ``renewal_date`` fact is
its earliest open renewal deal's close date; with none open, a year after the last won
renewal, or the lost renewal's date (lapsed); with no renewal deal, none.

Nothing here reads the whole deals table: the mapping indexes each deal under its companies
(``DEALS``) and each open deal under its close date (``OPEN_DEALS``) as rows are mapped, so
the facts are recomputed for the companies whose deals changed, and the due events (which
depend on today) from the open deals closing before the window's end.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from typing import Any

from hub import clock
from hub.timeline import MappingContext
from mappings.hubspot.records import LINK, company_key, money, number
from mappings.hubspot.vocabulary import SOURCE

DEALS = "deal"
"""Index kind: every deal, under its companies (value: close date|state)."""
OPEN_DEALS = "open_deal"
"""Index kind: open deals with a close date (value: the close date)."""
SETTINGS = "renewal_settings"
"""Index kind: the renewal settings the facts were computed with (one row)."""


def deal_state(props: dict[str, Any]) -> str:
    stage = str(props.get("dealstage") or "")
    return "won" if stage == "closedwon" else "lost" if stage == "closedlost" else "open"


def index_deal(ctx: MappingContext, deal_id: str, row: dict[str, Any]) -> set[str]:
    """Index a deal row; returns the companies whose renewal facts it may change (those it
    belonged to before and those it belongs to now)."""
    data = row.get("data") or {}
    companies = [str(c) for c in ((data.get("associations") or {}).get("companies") or [])]
    props = data.get("properties") or {}
    close = clock.parse(props.get("closedate"))
    if row.get("deleted"):
        ctx.unindex(DEALS, deal_id)
        ctx.unindex(OPEN_DEALS, deal_id)
        return set()
    state = deal_state(props)
    ctx.index(DEALS, deal_id, companies, f"{close.date().isoformat() if close else ''}|{state}")
    if state == "open" and close is not None:
        ctx.index(OPEN_DEALS, deal_id, (), close.date().isoformat())
    else:
        ctx.unindex(OPEN_DEALS, deal_id)
    return set(companies)


class _Renewal:
    def __init__(self, ctx: MappingContext):
        self.types = {t.lower() for t in ctx.settings.renewal_dealtypes}
        self.pattern = re.compile(ctx.settings.renewal_name_pattern, re.I)

    def __call__(self, props: dict[str, Any]) -> bool:
        return str(props.get("dealtype") or "").lower() in self.types or bool(
            self.pattern.search(str(props.get("dealname") or ""))
        )


def settings_changed(ctx: MappingContext) -> bool:
    """True (once) when what makes a deal a renewal changed since the facts were computed."""
    wanted = json.dumps(
        [
            sorted(t.lower() for t in ctx.settings.renewal_dealtypes),
            ctx.settings.renewal_name_pattern,
        ]
    )
    stored = [value for _, _, value in ctx.indexed(SETTINGS)]
    if stored == [wanted]:
        return False
    ctx.index(SETTINGS, "renewal", (), wanted)
    return bool(stored)


def renewal_facts(ctx: MappingContext, companies: Iterable[str]) -> None:
    """Recompute the ``renewal_date`` fact of these (live) companies from their deals."""
    companies = set(companies)
    if not companies:
        return
    is_renewal = _Renewal(ctx)
    deal_ids = {key for key, _, _ in ctx.indexed(DEALS, refs=companies)}
    by_company: dict[str, list[tuple[dt.date, str]]] = {}
    for data in ctx.raw_many("deals", deal_ids).values():
        props = data.get("properties") or {}
        close = clock.parse(props.get("closedate"))
        if close is None or not is_renewal(props):
            continue
        state = deal_state(props)
        for company in (data.get("associations") or {}).get("companies") or []:
            if str(company) in companies:
                by_company.setdefault(str(company), []).append((close.date(), state))
    renewals: dict[str, str] = {}
    for company, deals in by_company.items():
        open_dates = sorted(d for d, state in deals if state == "open")
        if open_dates:
            renewal = open_dates[0]
        else:
            last, state = max(deals)
            # Won and nothing opened yet: annual contracts renew a year on; lost: lapsed.
            renewal = last + dt.timedelta(days=365) if state == "won" else last
        renewals[company] = renewal.isoformat()
    # Only changed dates are written; a company whose renewal deals are gone loses its
    # date ("" clears it), as a rebuild from scratch would.
    current = current_facts(ctx, companies, "renewal_date")
    for company in sorted(companies):
        wanted = renewals.get(company, "")
        if (current.get(company) or "") != wanted:
            ctx.facts(company_key(company), renewal_date=wanted)


def current_facts(ctx: MappingContext, companies: Iterable[str], *names: str) -> dict[str, Any]:
    """The stored values of facts ``names`` of these companies (a tuple for several)."""
    keys = sorted(company_key(c) for c in companies)
    ctx.flush()
    out: dict[str, Any] = {}
    paths = ", ".join(f"json_extract(facts, '$.{n}')" for n in names)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for row in ctx.store.db.execute(
            f"SELECT source_id, {paths} FROM entities WHERE key IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            out[row[0]] = row[1] if len(names) == 1 else tuple(row[1:])
    return out


def renewals_due(ctx: MappingContext, deal_entity: Any) -> None:
    """``renewal_due`` events as of ``ctx.now`` (every run: they depend on today), from the
    open deals closing before the window ends; ``deal_entity(ctx, id, data)`` the entity a
    deal's events go on."""
    window = ctx.settings.renewal_window_days
    today = ctx.now.date()
    horizon = today + dt.timedelta(days=window)
    is_renewal = _Renewal(ctx)
    candidates = {key for key, _, _ in ctx.indexed(OPEN_DEALS, upto=horizon.isoformat())}
    due = []
    for deal_id, data in sorted(ctx.raw_many("deals", candidates).items()):
        props = data.get("properties") or {}
        close = clock.parse(props.get("closedate"))
        if close is None or deal_state(props) != "open" or not is_renewal(props):
            continue
        if (close.date() - today).days <= window:
            due.append((deal_id, data, props, close))
    existing = ctx.existing_events(f"{SOURCE}:renewal_due:")
    for deal_id, _, _, _ in due:
        existing.discard(f"{SOURCE}:renewal_due:{deal_id}")
    for event_id in existing:  # moved out of the window, or no longer a renewal
        ctx.retract(event_id)
    for deal_id, data, props, close in due:
        days_left = (close.date() - today).days
        opened = close - dt.timedelta(days=window)
        created = clock.parse(data.get("createdAt"))
        when = max(opened, created) if created else opened
        amount = number(props.get("amount"))
        left = (
            f"in {days_left} days"
            if days_left > 0
            else ("today" if days_left == 0 else f"{-days_left} days ago, still open")
        )
        ctx.event(
            deal_entity(ctx, deal_id, data),
            "renewal_due",
            when,
            source_id=deal_id,
            summary=f"Renewal due {left} ({close.date().isoformat()}, {money(amount)})",
            attrs={
                "deal_id": deal_id,
                "renewal_date": close.date().isoformat(),
                "days_left": days_left,
                "amount": amount,
            },
            link=LINK.format(type="0-3", id=deal_id),
        )
