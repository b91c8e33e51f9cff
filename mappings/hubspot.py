"""HubSpot mapping: companies are the account roots; contacts, deals and owners add signals.

Reads the streams of the HubSpot connector (``connectors.hubspot``), in this order:

- ``owners``: no entities. When an owner's name or e-mail changes, the companies they own
  get the new ``owner_name`` / ``owner_email`` facts.
- ``companies`` → ``hubspot:company:<id>`` **root** entities (name, ``domain`` plus
  ``hs_additional_domains``). Facts: ``owner_id``, ``owner_name``, ``owner_email``,
  ``lifecycle_stage``, ``customer_since`` (when the lifecycle stage first became
  ``customer``, else the record's create date), ``nps`` (the NPS property: the connector's
  ``nps_property``, found in the history it keeps, or ``[timeline.hubspot] nps_property``) and
  ``last_touch`` (``notes_last_contacted``). A merged-away company (the connector's row with
  ``merged_into``) becomes a root entity with ``merged_into`` so identity sends its links to
  the survivor; an archived company becomes a deleted entity and its events are retracted.
  Events come from the property history the connector keeps:
  ``lifecycle_changed`` (from, to), ``owner_changed`` (from, to and their names) for every
  change, and ``nps_changed`` (score, previous) for every score recorded.
- ``contacts`` → ``contact_unsubscribed`` for each time ``hs_email_optout`` turned true,
  on the contact's company (``associatedcompanyid``; identity follows merges and reports
  archived companies). A contact with no company becomes a ``hubspot:contact:<id>`` entity
  with its e-mail domain, so identity can still place or report it. Company facts ``contacts_total`` and
  ``contacts_unsubscribed`` are recounted from the whole contacts table when contacts change.
- ``deals`` → ``deal_won`` / ``deal_lost`` at the close date, on the deal's (first) company,
  or on a ``hubspot:deal:<id>`` entity when it has none (a reopened deal loses the event).
- ``tasks``: not mapped; ``hub.playbooks`` reads them back directly.

``finalize`` (every run, because it depends on today): each open *renewal* deal closing
within ``renewal_window_days`` (default 90) gives one ``renewal_due`` event (dated when the
window opened; ``days_left`` as of today), retracted once the deal closes. Each company's
``renewal_date`` fact is its earliest open renewal deal's close date; with none open, a year
after the last won renewal, or the lost renewal's date (lapsed).

A renewal deal is one whose ``dealtype`` is in ``renewal_dealtypes`` (default
``["existingbusiness"]``) or whose name matches ``renewal_name_pattern`` (default
``renew``). Both, and ``renewal_window_days``, are set in ``[timeline.hubspot]``.

Event ids are ``hubspot:<type>:<record id>[:<ms of the change>]``, so incremental mapping and
``hub map --full`` give the same timeline.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from typing import Any

from pydantic import Field, field_validator

import hub
from hub import clock
from hub.store import raw_table_name
from hub.timeline import Mapping, MappingContext, MappingSettings
from hub.vocabulary import EventType, Source

SOURCE = "hubspot"


# What this mapping puts on the timeline (hub.vocabulary collects it when the mapping registers).
SOURCE_INFO = Source("hubspot", label="HubSpot", letter="H", fact_rank=0, style="yellow")
EVENT_TYPES = [
    EventType(
        "lifecycle_changed",
        "The company's lifecycle stage changed (attrs: from, to)",
        polarity="neutral",
        noun=("lifecycle change", "lifecycle changes"),
    ),
    EventType(
        "contact_unsubscribed",
        "A contact unsubscribed from marketing email (attrs: contact_id)",
        polarity="negative",
        noun=("contact unsubscribed", "contacts unsubscribed"),
    ),
    EventType(
        "deal_won",
        "A deal was won (attrs: deal_id, amount, dealname)",
        polarity="positive",
        noun=("deal won", "deals won"),
    ),
    EventType(
        "deal_lost",
        "A deal was lost (attrs: deal_id, amount, dealname)",
        polarity="negative",
        noun=("deal lost", "deals lost"),
    ),
    EventType(
        "renewal_due",
        "A renewal is coming up (attrs: deal_id, renewal_date, days_left, amount)",
        polarity="neutral",
        noun=("renewal due", "renewals due"),
    ),
    EventType(
        "owner_changed",
        "The company owner (CSM) changed (attrs: from, to)",
        polarity="neutral",
        noun=("owner change", "owner changes"),
    ),
    EventType(
        "nps_changed",
        "The NPS/survey property changed (attrs: score, previous)",
        polarity="neutral",
        noun=("NPS change", "NPS changes"),
    ),
]
FACTS = {
    "owner_id": "HubSpot owner id of the company (the CSM)",
    "owner_name": "Owner's name",
    "owner_email": "Owner's e-mail",
    "lifecycle_stage": "HubSpot lifecycle stage",
    "renewal_date": "Next renewal date (ISO date) from the renewal deal or subscription period end",
    "customer_since": "When the customer started (ISO)",
    "nps": "Latest NPS score (0-10) from the configured property",
    "contacts_total": "Contacts associated with the company",
    "contacts_unsubscribed": "Of those, how many opted out of marketing email",
    "last_touch": "Last time the CSM contacted the company (notes_last_contacted)",
}
COMPANY_EVENTS = ("lifecycle_changed", "owner_changed", "nps_changed")
DEAL_EVENTS = ("deal_won", "deal_lost", "renewal_due")
TRACKED = ("lifecyclestage", "hubspot_owner_id")  # company properties read with history
DEFAULT_WINDOW_DAYS = 90
DEFAULT_RENEWAL_TYPES = ("existingbusiness",)
DEFAULT_RENEWAL_PATTERN = "renew"
LINK = "https://app.hubspot.com/contacts/_/record/{type}/{id}"


def _override(props: dict[str, Any]) -> dict[str, Any] | str:
    """The CSM's override from the hub-owned properties ("" clears a previous one)."""
    value = _number(props.get("hub_health_override"))
    if value is None:
        return ""
    return {
        "value": int(value),
        "reason": props.get("hub_health_override_reason") or "",
        "until": (props.get("hub_health_override_until") or "")[:10] or None,
    }


def _company_key(company_id: Any) -> str:
    return MappingContext.entity_key(SOURCE, "company", company_id)


def _history(data: dict[str, Any], name: str) -> list[tuple[str, str | None]]:
    """A property's history oldest first as (timestamp, value or None)."""
    entries = ((data.get("propertiesWithHistory") or {}).get(name)) or []
    out = []
    for entry in entries:
        when = entry.get("timestamp") if isinstance(entry, dict) else None
        if when:
            value = entry.get("value")
            out.append((str(when), None if value in (None, "") else str(value)))
    out.sort(key=lambda e: clock.parse(e[0]) or dt.datetime.min.replace(tzinfo=dt.timezone.utc))
    return out


def _version(ts: str) -> int:
    moment = clock.parse(ts)
    return int(moment.timestamp() * 1000) if moment else 0


def _number(value: Any) -> float | int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else number


def _money(value: Any) -> str:
    number = _number(value)
    return f"${number:,.0f}" if number is not None else "no amount"


def _email_domain(email: Any) -> str | None:
    text = str(email or "")
    return text.rsplit("@", 1)[1] if "@" in text else None


class HubSpotSettings(MappingSettings):
    """``[timeline.hubspot]``: what counts as a renewal, and where NPS lives."""

    renewal_window_days: float = Field(DEFAULT_WINDOW_DAYS, ge=0)
    renewal_dealtypes: list[str] = list(DEFAULT_RENEWAL_TYPES)
    renewal_name_pattern: str = DEFAULT_RENEWAL_PATTERN
    # Unset: the connector's nps_property (found in the history it keeps); "" disables NPS.
    nps_property: str | None = None

    @field_validator("renewal_name_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        return value


class HubSpotMapping(Mapping):
    """Accounts (HubSpot companies) and the CRM's signals on their timelines."""

    name = "hubspot"
    connector = "hubspot"
    streams = ["owners", "companies", "contacts", "deals"]
    Settings = HubSpotSettings
    source = SOURCE_INFO
    event_types = EVENT_TYPES
    facts = FACTS
    order = 10  # the account roots come first

    def map_rows(self, ctx: MappingContext, stream: str, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if stream == "owners":
            self._owners(ctx, rows)
        elif stream == "companies":
            owners = self._owner_lookup(ctx)
            for row in rows:
                self._company(ctx, row, owners, self._nps_property(ctx, row.get("data") or {}))
        elif stream == "contacts":
            for row in rows:
                self._contact(ctx, row)
            self._count_contacts(ctx, self._live_companies(ctx))
        elif stream == "deals":
            for row in rows:
                self._deal(ctx, row)

    @staticmethod
    def _nps_property(ctx: MappingContext, data: dict[str, Any]) -> str | None:
        """``[timeline.hubspot] nps_property``, else the one the connector keeps history for.

        The connector reads history for ``lifecyclestage``, ``hubspot_owner_id`` and its own
        ``nps_property``, so the third name in a record's history is the NPS property.
        """
        if "nps_property" in ctx.settings.model_fields_set:
            return ctx.settings.nps_property or None
        others = [k for k in data.get("propertiesWithHistory") or {} if k not in TRACKED]
        return others[0] if len(others) == 1 else None

    # -- owners ---------------------------------------------------------------------------------

    @staticmethod
    def _owner_lookup(ctx: MappingContext) -> dict[str, dict[str, Any]]:
        return {str(r["id"]): r["data"] for r in ctx.rows("owners")}

    @staticmethod
    def _owner_name(owner: dict[str, Any] | None) -> str | None:
        if not owner:
            return None
        name = " ".join(p for p in (owner.get("firstName"), owner.get("lastName")) if p).strip()
        return name or owner.get("email")

    def _owners(self, ctx: MappingContext, rows: list[dict[str, Any]]) -> None:
        changed = {str(r["id"]): r["data"] for r in rows if not r.get("deleted")}
        if not changed:
            return
        marks = ",".join("?" * len(changed))
        owned = ctx.store.db.execute(
            "SELECT key, json_extract(facts, '$.owner_id') FROM entities "
            f"WHERE source = 'hubspot' AND kind = 'company' AND json_extract(facts, '$.owner_id') IN ({marks})",
            list(changed),
        ).fetchall()
        for key, owner_id in owned:
            owner = changed[str(owner_id)]
            ctx.facts(key, owner_name=self._owner_name(owner), owner_email=owner.get("email"))

    # -- companies ------------------------------------------------------------------------------

    def _company(
        self,
        ctx: MappingContext,
        row: dict[str, Any],
        owners: dict[str, Any],
        nps_property: str | None,
    ) -> None:
        data = row.get("data") or {}
        company_id = str(row["id"])
        if data.get("merged_into"):
            key = ctx.entity(
                SOURCE, "company", company_id, is_root=True, merged_into=str(data["merged_into"])
            )
            self._clear_facts(ctx, key)
            return
        props = data.get("properties") or {}
        domains = [props.get("domain"), *str(props.get("hs_additional_domains") or "").split(";")]
        # Archived (the connector's archived list, or a record that says so) is not an
        # account from this map on; its events go with it.
        if row.get("deleted") or data.get("archived") or data.get("archivedAt"):
            key = ctx.entity(
                SOURCE,
                "company",
                company_id,
                name=props.get("name"),
                domains=domains,
                is_root=True,
                deleted=True,
            )
            self._clear_facts(ctx, key)
            for kind in COMPANY_EVENTS:
                ctx.retract_prefix(f"{SOURCE}:{kind}:{company_id}:")
            return
        owner_id = props.get("hubspot_owner_id") or None
        owner = owners.get(str(owner_id)) if owner_id else None
        lifecycle = _history(data, "lifecyclestage")
        became_customer = next((ts for ts, value in lifecycle if value == "customer"), None)
        # "" rather than None clears a fact (None leaves the previous value in place).
        facts = {
            "owner_id": owner_id or "",
            "owner_name": self._owner_name(owner) or "",
            "owner_email": (owner or {}).get("email") or "",
            "lifecycle_stage": props.get("lifecyclestage") or "",
            "customer_since": became_customer or props.get("createdate") or data.get("createdAt"),
            "nps": _number(props.get(nps_property)) if nps_property else None,
            "last_touch": props.get("notes_last_contacted"),
            "health_override": _override(props),
        }
        entity = ctx.entity(
            SOURCE,
            "company",
            company_id,
            name=props.get("name"),
            domains=domains,
            is_root=True,
            facts=facts,
        )
        link = LINK.format(type="0-2", id=company_id)
        for (_, before), (when, after) in zip(lifecycle, lifecycle[1:]):
            if before != after:
                ctx.event(
                    entity,
                    "lifecycle_changed",
                    when,
                    source_id=company_id,
                    version=_version(when),
                    summary=f"Lifecycle stage changed from {before or 'none'} to {after or 'none'}",
                    attrs={"from": before, "to": after},
                    link=link,
                )
        owner_history = _history(data, "hubspot_owner_id")
        for (_, before), (when, after) in zip(owner_history, owner_history[1:]):
            if before != after:
                names = [
                    self._owner_name(owners.get(str(x))) if x else None for x in (before, after)
                ]
                ctx.event(
                    entity,
                    "owner_changed",
                    when,
                    source_id=company_id,
                    version=_version(when),
                    summary=f"Owner changed from {names[0] or before or 'nobody'} to {names[1] or after or 'nobody'}",
                    attrs={"from": before, "to": after, "from_name": names[0], "to_name": names[1]},
                    link=link,
                )
        previous = None
        for when, value in _history(data, nps_property) if nps_property else []:
            score = _number(value)
            if score is None:
                continue
            was = f" (was {previous})" if previous is not None else ""
            ctx.event(
                entity,
                "nps_changed",
                when,
                source_id=company_id,
                version=_version(when),
                summary=f"NPS {score}{was}",
                attrs={"score": score, "previous": previous},
                link=link,
            )
            previous = score

    @staticmethod
    def _live_companies(ctx: MappingContext) -> set[str]:
        """Ids of companies that are accounts (facts go on exactly one entity per account)."""
        return {
            row[0]
            for row in ctx.store.db.execute(
                "SELECT source_id FROM entities WHERE source = 'hubspot' AND kind = 'company' "
                "AND is_root = 1 AND deleted = 0 AND merged_into IS NULL"
            )
        }

    @staticmethod
    def _clear_facts(ctx: MappingContext, key: str) -> None:
        """A company that stopped being an account keeps no facts: they would compete with the
        survivor's, and a rebuild from scratch would not have them."""
        ctx.flush()
        ctx.store.db.execute("UPDATE entities SET facts = '{}' WHERE key = ?", [key])

    # -- contacts -------------------------------------------------------------------------------

    def _contact(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        contact_id = str(row["id"])
        prefix = f"{SOURCE}:contact_unsubscribed:{contact_id}:"
        data = row.get("data") or {}
        if row.get("deleted"):
            ctx.retract_prefix(prefix)
            return
        props = data.get("properties") or {}
        company = str(props.get("associatedcompanyid") or "").split(".")[0] or None
        if company:
            # On the company's entity whatever state it is in (identity follows merges and
            # reports archived companies): the result never depends on what was mapped first.
            entity = _company_key(company)
        else:
            entity = ctx.entity(
                SOURCE,
                "contact",
                contact_id,
                name=props.get("email"),
                domains=[_email_domain(props.get("email"))],
            )
        who = (
            " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
            or props.get("email")
            or contact_id
        )
        history = _history(data, "hs_email_optout")
        if str(props.get("hs_email_optout") or "").lower() == "true" and not history:
            history = [(data.get("updatedAt"), "true")]  # no history: date it at the last change
        before = None
        for when, value in history:
            now_out = str(value or "").lower() == "true"
            if now_out and before is not True and when:
                ctx.event(
                    entity,
                    "contact_unsubscribed",
                    when,
                    source_id=contact_id,
                    version=_version(when),
                    summary=f"{who} unsubscribed from marketing email",
                    attrs={"contact_id": contact_id},
                    link=LINK.format(type="0-1", id=contact_id),
                )
            before = now_out

    def _count_contacts(self, ctx: MappingContext, live: set[str]) -> None:
        """Recount contacts per company from the whole table (cheap in SQL, always right)."""
        table = raw_table_name(ctx.connection, "contacts")
        if not ctx.store.db[table].exists():
            return
        counts = {
            str(cid): (total, unsub or 0)
            for cid, total, unsub in ctx.store.db.execute(
                "SELECT CAST(json_extract(data, '$.properties.associatedcompanyid') AS TEXT), COUNT(*), "
                "SUM(lower(COALESCE(json_extract(data, '$.properties.hs_email_optout'), '')) = 'true') "
                f"FROM [{table}] WHERE deleted = 0 GROUP BY 1"
            )
        }
        current = {
            sid: (total, unsub)
            for sid, total, unsub in ctx.store.db.execute(
                "SELECT source_id, json_extract(facts, '$.contacts_total'), json_extract(facts, '$.contacts_unsubscribed') "
                "FROM entities WHERE source = 'hubspot' AND kind = 'company'"
            )
        }
        for company in live:
            wanted = counts.get(company, (0, 0))
            if current.get(company) != wanted:
                ctx.facts(
                    _company_key(company), contacts_total=wanted[0], contacts_unsubscribed=wanted[1]
                )

    # -- deals ----------------------------------------------------------------------------------

    def _deal_entity(self, ctx: MappingContext, deal_id: str, data: dict[str, Any]) -> str:
        """The deal's (first) company, or a deal entity that identity reports as unmatched."""
        companies = [str(c) for c in ((data.get("associations") or {}).get("companies") or [])]
        if companies:
            return _company_key(companies[0])
        props = data.get("properties") or {}
        return ctx.entity(SOURCE, "deal", deal_id, name=props.get("dealname"))

    def _deal(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        deal_id = str(row["id"])
        data = row.get("data") or {}
        props = data.get("properties") or {}
        stage = str(props.get("dealstage") or "")
        if row.get("deleted") or stage not in ("closedwon", "closedlost"):
            ctx.retract(f"{SOURCE}:deal_won:{deal_id}")
            ctx.retract(f"{SOURCE}:deal_lost:{deal_id}")
            if row.get("deleted"):
                ctx.retract(f"{SOURCE}:renewal_due:{deal_id}")
            return
        ctx.retract(f"{SOURCE}:renewal_due:{deal_id}")  # a closed renewal is no longer due
        won = stage == "closedwon"
        kind = "deal_won" if won else "deal_lost"
        ctx.retract(f"{SOURCE}:{'deal_lost' if won else 'deal_won'}:{deal_id}")
        amount = _number(props.get("amount"))
        name = props.get("dealname") or f"Deal {deal_id}"
        ctx.event(
            self._deal_entity(ctx, deal_id, data),
            kind,
            props.get("closedate") or data.get("updatedAt"),
            source_id=deal_id,
            summary=f"Deal {'won' if won else 'lost'}: {name} ({_money(amount)})",
            attrs={"deal_id": deal_id, "amount": amount, "dealname": props.get("dealname")},
            link=LINK.format(type="0-3", id=deal_id),
        )

    # -- time-dependent: renewals ---------------------------------------------------------------

    def finalize(self, ctx: MappingContext) -> None:
        table = raw_table_name(ctx.connection, "deals")
        if not ctx.store.db[table].exists():
            return
        window = ctx.settings.renewal_window_days
        types = {t.lower() for t in ctx.settings.renewal_dealtypes}
        pattern = re.compile(ctx.settings.renewal_name_pattern, re.I)
        live = self._live_companies(ctx)
        today = ctx.now.date()
        by_company: dict[str, list[tuple[dt.date, str]]] = {}
        due = []
        for deal_id, data_text in ctx.store.db.execute(
            f"SELECT id, data FROM [{table}] WHERE deleted = 0"
        ):
            data = json.loads(data_text)
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
                ctx.facts(_company_key(company), renewal_date=wanted)
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
            amount = _number(props.get("amount"))
            left = (
                f"in {days_left} days"
                if days_left > 0
                else ("today" if days_left == 0 else f"{-days_left} days ago, still open")
            )
            ctx.event(
                self._deal_entity(ctx, deal_id, data),
                "renewal_due",
                when,
                source_id=deal_id,
                summary=f"Renewal due {left} ({close.date().isoformat()}, {_money(amount)})",
                attrs={
                    "deal_id": deal_id,
                    "renewal_date": close.date().isoformat(),
                    "days_left": days_left,
                    "amount": amount,
                },
                link=LINK.format(type="0-3", id=deal_id),
            )


@hub.hookimpl
def register_mappings(register):
    register(HubSpotMapping)


__all__ = ["HubSpotMapping"]
