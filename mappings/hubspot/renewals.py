"""Renewals, recomputed from the stored deals on every run (they depend on today).

Each open *renewal* deal closing within ``renewal_window_days`` gives one ``renewal_due`` event
(dated when the window opened; ``days_left`` as of today), retracted once the deal closes,
moves out of the window or stops being a renewal. Each company's ``renewal_date`` fact is
its earliest open renewal deal's close date; with none open, a year after the last won
renewal, or the lost renewal's date (lapsed); with no renewal deal, none.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from hub import clock
from hub.store import raw_table_name
from hub.timeline import MappingContext
from mappings.hubspot.records import LINK, company_key, money, number
from mappings.hubspot.vocabulary import SOURCE


def renewals(ctx: MappingContext, live: set[str], deal_entity: Any) -> None:
    """Renewal facts and ``renewal_due`` events as of ``ctx.now`` (every run: they depend on
    today). ``live`` are the companies that are accounts; ``deal_entity(ctx, id, data)`` the
    entity a deal's events go on."""
    table = raw_table_name(ctx.connection, "deals")
    if not ctx.store.db[table].exists():
        return
    window = ctx.settings.renewal_window_days
    types = {t.lower() for t in ctx.settings.renewal_dealtypes}
    pattern = re.compile(ctx.settings.renewal_name_pattern, re.I)
    today = ctx.now.date()
    by_company: dict[str, list[tuple[dt.date, str]]] = {}
    due = []
    for deal_id, data_text in ctx.store.db.execute(
        f"SELECT id, data FROM [{table}] WHERE deleted = 0"
    ):
        data = ctx.store.decode_raw(data_text)
        props = data.get("properties") or {}
        if str(props.get("dealtype") or "").lower() not in types and not pattern.search(
            str(props.get("dealname") or "")
        ):
            continue
        close = clock.parse(props.get("closedate"))
        if close is None:
            continue
        stage = str(props.get("dealstage") or "")
        state = "won" if stage == "closedwon" else "lost" if stage == "closedlost" else "open"
        for company in (data.get("associations") or {}).get("companies") or []:
            if str(company) in live:
                by_company.setdefault(str(company), []).append((close.date(), state))
        if state == "open" and (close.date() - today).days <= window:
            due.append((str(deal_id), data, props, close))
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
    current = dict(
        ctx.store.db.execute(
            "SELECT source_id, COALESCE(json_extract(facts, '$.renewal_date'), '') FROM entities "
            "WHERE source = 'hubspot' AND kind = 'company' AND is_root = 1 AND deleted = 0 "
            "AND merged_into IS NULL"
        ).fetchall()
    )
    for company in live:
        wanted = renewals.get(company, "")
        if current.get(company, "") != wanted:
            ctx.facts(company_key(company), renewal_date=wanted)
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
