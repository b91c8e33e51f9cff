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
  ``contacts_unsubscribed`` are recounted, for the companies whose contacts changed, from the
  mapping's index of contacts by company (``ctx.index``).
- ``deals`` → ``deal_won`` / ``deal_lost`` at the close date, on the deal's (first) company,
  or on a ``hubspot:deal:<id>`` entity when it has none (a reopened deal loses the event).
- ``calls``, ``emails``, ``meetings``, ``notes`` → ``csm_touch`` (``mappings.hubspot.touches``).
- ``tasks``: not mapped; the HubSpot pusher reads them back.

``finalize`` (``mappings.hubspot.renewals``; the due events every run, because they depend on
today, from the open deals indexed by close date): each open *renewal* deal closing
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

import re
from collections.abc import Iterable
from typing import Any

from pydantic import Field, field_validator

import hub
from hub.timeline import Mapping, MappingContext, MappingSettings
from hub.timeline.mapping import mark_accounts_dirty
from mappings.hubspot.records import (
    COMPANY_EVENTS,
    DEFAULT_RENEWAL_PATTERN,
    DEFAULT_RENEWAL_TYPES,
    DEFAULT_WINDOW_DAYS,
    LINK,
    TRACKED,
    company_key,
    email_domain,
    history,
    history_entries,
    money,
    number,
    override_fact,
    version_ms,
)
from mappings.hubspot.renewals import (
    DEALS,
    current_facts,
    index_deal,
    renewal_facts,
    renewals_due,
    settings_changed,
)
from mappings.hubspot.touches import TOUCH_STREAMS, map_touch
from mappings.hubspot.vocabulary import EVENT_TYPES, FACTS, SOURCE, SOURCE_INFO


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
    # The activity streams may be absent (older connectors, missing scopes): nothing to map.
    streams = ["owners", "companies", "contacts", "deals", *TOUCH_STREAMS]
    Settings = HubSpotSettings
    source = SOURCE_INFO
    event_types = EVENT_TYPES
    facts = FACTS
    order = 10  # the account roots come first
    root_streams = ["companies"]
    version = 2  # 2: contacts and deals indexed by company for finalize

    def map_rows(self, ctx: MappingContext, stream: str, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if stream == "owners":
            self._owners(ctx, rows)
        elif stream == "companies":
            owners = self._owner_lookup(ctx)
            for row in rows:
                self._company(ctx, row, owners, self._nps_property(ctx, row.get("data") or {}))
        elif stream == "contacts":
            # Counts are redone in finalize for the companies whose contacts changed (the
            # ones a contact left and the ones it joined), from the mapping's index.
            before = ctx.index_refs(CONTACTS, [r["id"] for r in rows])
            for row in rows:
                for company in before.get(str(row["id"]), []):
                    ctx.mark_affected(COMPANY + company)
                self._contact(ctx, row)
        elif stream == "deals":
            before = ctx.index_refs(DEALS, [r["id"] for r in rows])
            for row in rows:
                for company in before.get(str(row["id"]), []):
                    ctx.mark_affected(COMPANY + company)
                for company in index_deal(ctx, str(row["id"]), row):
                    ctx.mark_affected(COMPANY + company)
                self._deal(ctx, row)
        elif stream in TOUCH_STREAMS:
            for row in rows:
                map_touch(ctx, stream, row, self._owner_name)

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
        # Whether it is an account may have changed: its counts and renewal date are redone.
        ctx.mark_affected(COMPANY + company_id)
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
        lifecycle = history(data, "lifecyclestage")
        # A prior value the hub saw (history from the API off) is no date of becoming one.
        became_customer = next(
            (
                ts
                for ts, value in history(data, "lifecyclestage", dated_only=True)
                if value == "customer"
            ),
            None,
        )
        # "" rather than None clears a fact (None leaves the previous value in place).
        facts = {
            "owner_id": owner_id or "",
            "owner_name": self._owner_name(owner) or "",
            "owner_email": (owner or {}).get("email") or "",
            "lifecycle_stage": props.get("lifecyclestage") or "",
            "customer_since": became_customer or props.get("createdate") or data.get("createdAt"),
            "nps": number(props.get(nps_property)) if nps_property else None,
            "last_touch": props.get("notes_last_contacted"),
            "health_override": override_fact(props),
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
                    version=version_ms(when),
                    summary=f"Lifecycle stage changed from {before or 'none'} to {after or 'none'}",
                    attrs={"from": before, "to": after},
                    link=link,
                )
        owner_history = history(data, "hubspot_owner_id")
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
                    version=version_ms(when),
                    summary=f"Owner changed from {names[0] or before or 'nobody'} to {names[1] or after or 'nobody'}",
                    attrs={"from": before, "to": after, "from_name": names[0], "to_name": names[1]},
                    link=link,
                )
        previous = None
        for when, value, prior in history_entries(data, nps_property) if nps_property else []:
            score = number(value)
            if score is None:
                continue
            if prior:  # the score before the first change seen: its "was", not an event
                previous = score
                continue
            was = f" (was {previous})" if previous is not None else ""
            ctx.event(
                entity,
                "nps_changed",
                when,
                source_id=company_id,
                version=version_ms(when),
                summary=f"NPS {score}{was}",
                attrs={"score": score, "previous": previous},
                link=link,
            )
            previous = score

    @staticmethod
    def _live(ctx: MappingContext, companies: set[str]) -> set[str]:
        """Those of ``companies`` that are accounts (facts go on exactly one entity each)."""
        return {
            row[0]
            for row in ctx.select_in(
                "SELECT source_id FROM entities WHERE key IN ({keys}) AND is_root = 1 "
                "AND deleted = 0 AND merged_into IS NULL",
                (company_key(c) for c in companies),
            )
        }

    @staticmethod
    def _all_live(ctx: MappingContext) -> set[str]:
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
        with ctx.store.db.atomic():
            ctx.store.db.execute("UPDATE entities SET facts = '{}' WHERE key = ?", [key])
            mark_accounts_dirty(ctx.store, [key])

    # -- contacts -------------------------------------------------------------------------------

    def _contact(self, ctx: MappingContext, row: dict[str, Any]) -> None:
        contact_id = str(row["id"])
        prefix = f"{SOURCE}:contact_unsubscribed:{contact_id}:"
        data = row.get("data") or {}
        if row.get("deleted"):
            ctx.unindex(CONTACTS, contact_id)
            ctx.retract_prefix(prefix)
            return
        props = data.get("properties") or {}
        company = str(props.get("associatedcompanyid") or "").split(".")[0] or None
        opted_out = str(props.get("hs_email_optout") or "").lower() == "true"
        ctx.index(CONTACTS, contact_id, [company] if company else [], "1" if opted_out else "0")
        if company:
            ctx.mark_affected(COMPANY + company)
        if company:
            # On the company's entity whatever state it is in (identity follows merges and
            # reports archived companies): the result never depends on what was mapped first.
            entity = company_key(company)
        else:
            entity = ctx.entity(
                SOURCE,
                "contact",
                contact_id,
                name=props.get("email"),
                domains=[email_domain(props.get("email"))],
            )
        who = (
            " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
            or props.get("email")
            or contact_id
        )
        optouts = history(data, "hs_email_optout")
        if str(props.get("hs_email_optout") or "").lower() == "true" and not optouts:
            optouts = [(data.get("updatedAt"), "true")]  # no history: date it at the last change
        before = None
        for when, value in optouts:
            now_out = str(value or "").lower() == "true"
            if now_out and before is not True and when:
                ctx.event(
                    entity,
                    "contact_unsubscribed",
                    when,
                    source_id=contact_id,
                    version=version_ms(when),
                    summary=f"{who} unsubscribed from marketing email",
                    attrs={"contact_id": contact_id},
                    link=LINK.format(type="0-1", id=contact_id),
                )
            before = now_out

    def _count_contacts(self, ctx: MappingContext, companies: set[str]) -> None:
        """Recount the contacts of these companies from the mapping's index."""
        counts: dict[str, tuple[int, int]] = {c: (0, 0) for c in companies}
        for _, company, opted_out in ctx.indexed(CONTACTS, refs=companies):
            total, unsub = counts[company]
            counts[company] = (total + 1, unsub + (opted_out == "1"))
        current = current_facts(ctx, companies, "contacts_total", "contacts_unsubscribed")
        for company in sorted(companies):
            wanted = counts[company]
            if current.get(company) != wanted:
                ctx.facts(
                    company_key(company), contacts_total=wanted[0], contacts_unsubscribed=wanted[1]
                )

    # -- deals ----------------------------------------------------------------------------------

    def _deal_entity(self, ctx: MappingContext, deal_id: str, data: dict[str, Any]) -> str:
        """The deal's (first) company, or a deal entity that identity reports as unmatched."""
        companies = [str(c) for c in ((data.get("associations") or {}).get("companies") or [])]
        if companies:
            return company_key(companies[0])
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
        amount = number(props.get("amount"))
        name = props.get("dealname") or f"Deal {deal_id}"
        ctx.event(
            self._deal_entity(ctx, deal_id, data),
            kind,
            props.get("closedate") or data.get("updatedAt"),
            source_id=deal_id,
            summary=f"Deal {'won' if won else 'lost'}: {name} ({money(amount)})",
            attrs={"deal_id": deal_id, "amount": amount, "dealname": props.get("dealname")},
            link=LINK.format(type="0-3", id=deal_id),
        )

    # -- time-dependent: renewals ---------------------------------------------------------------

    def finalize(self, ctx: MappingContext) -> None:
        marked = {k[len(COMPANY) :] for k in ctx.affected() if k.startswith(COMPANY)}
        if settings_changed(ctx):
            marked |= self._all_live(ctx)  # what counts as a renewal changed: everyone
        # Companies a few thousand at a time (a first map marks them all).
        ordered = sorted(marked)
        for start in range(0, len(ordered), FINALIZE_COMPANIES):
            live = self._live(ctx, set(ordered[start : start + FINALIZE_COMPANIES]))
            self._count_contacts(ctx, live)
            renewal_facts(ctx, live)
        renewals_due(ctx, self._deal_entity)


COMPANY = "company:"
"""Pending-key prefix: a company whose contact counts and renewal date ``finalize`` redoes."""
CONTACTS = "contact"
"""Index kind: every contact, under its company (value: "1" when opted out of e-mail)."""
FINALIZE_COMPANIES = 2000


@hub.hookimpl
def register_mappings(register):
    register(HubSpotMapping)


__all__ = ["HubSpotMapping"]
