"""HubSpot fake: seeding the portal and daily activity."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub.sandbox.base import (
    rng_for,
)
from hub.sandbox.hubspot.common import (
    _FIRST,
    _KEY,
    _LAST,
    _NPS,
    _OPTOUT_DAILY,
    _OPTOUT_SEED,
    _TITLES,
    _Obj,
)
from hub.sandbox.hubspot.schema import (
    EPOCH,
    TYPES,
    iso_ms,
    parse_ms,
    std_property,
    to_ms,
)


class _Seeding:
    """Seed the portal from the world and advance it day by day."""

    # -- world: seed and advance --------------------------------------------------------------

    def seed(self) -> None:
        """Companies, contacts, deals, a few CSM tasks, the custom NPS property, and the traps."""
        world = self.world
        rng = rng_for(world.seed, "hubspot", "seed")
        # Raw ``random()`` and indexing: ``choice``/``randint`` cost several times more at 100k.
        rand, randint = rng.random, rng.randint
        n_first, n_last, n_titles = len(_FIRST), len(_LAST), len(_TITLES)
        start = to_ms(world.start)
        day = 86_400_000
        self._groups["companies"]["customer_feedback"] = {
            "name": "customer_feedback",
            "label": "Customer feedback",
            "displayOrder": 5,
            "archived": False,
        }
        nps = std_property("nps_score", "NPS score", "number", "number", "customer_feedback")
        nps.update(
            hubspotDefined=False,
            modificationMetadata={
                "archivable": True,
                "readOnlyDefinition": False,
                "readOnlyValue": False,
            },
        )
        self._props["companies"]["nps_score"] = nps
        stores = self._store
        companies, contacts, deals = stores["companies"], stores["contacts"], stores["deals"]
        active = self._active
        lm_keys: dict[str, list[int]] = {t: [] for t in TYPES}
        c2co = self._assoc[("contacts", "companies")]
        co2c = self._assoc[("companies", "contacts")]
        d2co = self._assoc[("deals", "companies")]
        co2d = self._assoc[("companies", "deals")]
        contact_types, company_contact_types = (1, 279), (2, 280)
        deal_types, company_deal_types = (5, 341), (6, 342)
        next_contact, next_deal = self._next_id["contacts"], self._next_id["deals"]
        firsts = [(f, f.lower()) for f in _FIRST]
        lasts = [(x, x.lower()) for x in _LAST]
        contact_ids, contact_keys = active["contacts"].append, lm_keys["contacts"].append
        for company in world.companies:
            cid = int(company.hubspot_id)
            self._company_ids.append(cid)
            arch = company.archetype
            created = to_ms(company.created_at)
            span = max(1, start - created)
            annual = str(company.mrr_cents * 12 // 100)
            props = {
                "name": company.name,
                "domain": company.domain,
                "lifecyclestage": "other" if arch == "churned" and rand() < 0.6 else "customer",
                "annualrevenue": annual,
            }
            if company.owner_id:
                props["hubspot_owner_id"] = company.owner_id
            if rand() < (0.5 if arch == "churned" else 0.65):
                low, high = _NPS[arch]
                props["nps_score"] = str(randint(low, high))
            updated = created + int(rand() * span)
            companies[cid] = _Obj(cid, props, created, updated)
            if props["lifecyclestage"] == "other":  # was a customer until they churned
                companies[cid].history = {
                    "lifecyclestage": [
                        ("customer", created, "CRM_UI"),
                        ("other", updated, "CRM_UI"),
                    ]
                }
            active["companies"].append(cid)
            lm_keys["companies"].append(updated * _KEY + cid)
            sid = str(cid)
            domain = company.domain
            optout = _OPTOUT_SEED[arch]
            links: dict[int, tuple[int, ...]] = {}
            for _ in range(2 + int(rand() * 5)):
                first, first_low = firsts[int(rand() * n_first)]
                last, last_low = lasts[int(rand() * n_last)]
                c_created = created + int(rand() * span)
                c_updated = c_created + int(rand() * (start - c_created))
                oid = next_contact
                next_contact += 1
                opted_out = rand() < optout
                contact = contacts[oid] = _Obj(
                    oid,
                    {
                        "email": f"{first_low}.{last_low}{oid}@{domain}",
                        "firstname": first,
                        "lastname": last,
                        "jobtitle": _TITLES[int(rand() * n_titles)],
                        "hs_email_optout": "true" if opted_out else "false",
                        "associatedcompanyid": sid,
                    },
                    c_created,
                    c_updated,
                )
                if opted_out:  # they unsubscribed at their last modification
                    contact.history = {
                        "hs_email_optout": [
                            ("false", c_created, "CRM_UI"),
                            ("true", c_updated, "EMAIL"),
                        ]
                    }
                contact_ids(oid)
                contact_keys(c_updated * _KEY + oid)
                c2co[oid] = {cid: contact_types}
                links[oid] = company_contact_types
            co2c[cid] = links
            # The deal that made them a customer, and the renewal coming up.
            won_id, renewal_id = next_deal, next_deal + 1
            next_deal += 2
            renewal_ms = to_ms(
                dt.datetime.combine(company.renewal_date, dt.time(), dt.timezone.utc)
            )
            owner = {"hubspot_owner_id": company.owner_id} if company.owner_id else {}
            won_updated = created + int(rand() * min(span, 30 * day))
            deals[won_id] = _Obj(
                won_id,
                {"dealname": f"{company.name} – {company.plan}", "amount": annual, "dealstage": "closedwon",
                 "pipeline": "default", "closedate": iso_ms(created), "dealtype": "newbusiness", **owner},
                created - 30 * day,
                won_updated,
            )  # fmt: skip
            r_created = max(created, renewal_ms - 90 * day)
            r_created = min(r_created, start - day)
            r_updated = r_created + int(rand() * max(1, start - r_created))
            deals[renewal_id] = _Obj(
                renewal_id,
                {"dealname": f"{company.name} renewal {company.renewal_date.year}", "amount": annual,
                 "dealstage": "contractsent" if renewal_ms - start < 30 * day else "qualifiedtobuy",
                 "pipeline": "default", "closedate": iso_ms(renewal_ms), "dealtype": "existingbusiness", **owner},
                r_created,
                r_updated,
            )  # fmt: skip
            self._renewal_deal[company.key] = renewal_id
            for did, d_updated in ((won_id, won_updated), (renewal_id, r_updated)):
                active["deals"].append(did)
                lm_keys["deals"].append(d_updated * _KEY + did)
                d2co[did] = {cid: deal_types}
            co2d[cid] = {won_id: company_deal_types, renewal_id: company_deal_types}
            if rand() < 0.1:
                t_created = start - randint(1, 60) * day
                # Only tasks old enough to have been done by now (nothing is stamped in the future).
                done = t_created + 10 * day < start and rand() < 0.6
                task_props = {
                    "hs_task_subject": "Quarterly business review",
                    "hs_task_body": f"Prepare the QBR deck for {company.name}.",
                    "hs_task_status": "COMPLETED" if done else "NOT_STARTED",
                    "hs_task_priority": "MEDIUM",
                    "hs_task_type": "TODO",
                    "hs_timestamp": iso_ms(t_created + 14 * day),
                    **owner,
                }
                if done:
                    task_props["hs_task_completion_date"] = iso_ms(t_created + 10 * day)
                tid = self._new_id("tasks")
                self._store["tasks"][tid] = _Obj(
                    tid, task_props, t_created, t_created + (10 * day if done else 0)
                )
                active["tasks"].append(tid)
                lm_keys["tasks"].append(self._store["tasks"][tid].updated * _KEY + tid)
                self._associate("tasks", tid, "companies", cid, (192,))
        self._next_id["contacts"], self._next_id["deals"] = next_contact, next_deal
        self._next_id["companies"] = max(
            self._next_id["companies"], (self._company_ids[-1] + 1) if self._company_ids else 0
        )
        for t, keys in lm_keys.items():
            keys.sort()
            self._lm[t] = keys
        # Traps, applied through the same code paths the API uses.
        for company in world.companies:
            if company.merged_into is not None:
                survivor = world.companies[company.merged_into]
                self._merge("companies", survivor.hubspot_id, company.hubspot_id, start - 20 * day)
            if "archived" in company.traps:
                obj = self._live("companies", company.hubspot_id)
                if obj is not None:
                    self._archive("companies", obj, start - 10 * day)
        self._seed_owner_history()
        self._seed_touches()
        self._seed_tickets()

    def advance(self, start: dt.datetime, end: dt.datetime, day_index: int) -> None:
        """A day in the CRM: unsubscribes, lifecycle moves, renewal stages, owner and NPS changes."""
        rng = rng_for(self.world.seed, "hubspot", "advance", day_index)
        rand = rng.random
        t0 = to_ms(start)
        width = max(1, to_ms(end) - t0)
        end_date = end.date()
        owners = [o["id"] for o in self.world.owners]
        self._advance_touches(t0, width, day_index)

        def when() -> int:
            return t0 + int(rand() * width)

        for company in self.world.companies:
            obj = self._live("companies", self._company_ids[company.key])
            if obj is None or obj.id != self._company_ids[company.key]:
                continue  # archived or merged away
            arch = company.archetype
            changes: dict[str, str | None] = {}
            if rand() < _OPTOUT_DAILY[arch]:
                subscribed = [
                    c for c, _ in self._links("companies", obj.id, "contacts")
                    if self._store["contacts"][c].props.get("hs_email_optout") != "true"
                ]  # fmt: skip
                if subscribed:
                    contact = self._store["contacts"][rng.choice(subscribed)]
                    self._apply("contacts", contact, {"hs_email_optout": "true"}, when(), "EMAIL")
            stage = obj.props.get("lifecyclestage")
            if arch == "churned" and stage == "customer" and rand() < 0.15:
                changes["lifecyclestage"] = "other"
            elif arch == "expanding" and stage == "customer" and rand() < 0.01:
                changes["lifecyclestage"] = "evangelist"
            if rand() < 0.002 and len(owners) > 1:
                changes["hubspot_owner_id"] = rng.choice(
                    [o for o in owners if o != obj.props.get("hubspot_owner_id")]
                )
            if "nps_score" in obj.props and rand() < 0.01:
                low, high = _NPS[arch]
                changes["nps_score"] = str(rng.randint(low, high))
            if changes:
                source = "INTEGRATION" if set(changes) == {"nps_score"} else "CRM_UI"
                self._apply("companies", obj, changes, when(), source)
            deal_id = self._renewal_deal.get(company.key)
            deal = self._live("deals", deal_id) if deal_id else None
            if deal is None or deal.props.get("dealstage") in ("closedwon", "closedlost"):
                continue
            close = parse_ms(deal.props.get("closedate")) or 0
            close_date = (EPOCH + dt.timedelta(milliseconds=close)).date()
            days_left = (close_date - end_date).days
            if days_left <= 0:
                if arch == "churned" or (arch == "at_risk" and rand() < 0.5):
                    won = False
                else:
                    won = arch != "slipping" or rand() < 0.8
                stage = "closedwon" if won else "closedlost"
                at = when()
                self._apply("deals", deal, {"dealstage": stage}, at, "CRM_UI")
                if won:  # the CSM opens next year's renewal right away
                    self._next_renewal(company, obj, deal, close, at)
            elif (
                days_left <= 30
                and deal.props.get("dealstage") == "qualifiedtobuy"
                and arch != "churned"
            ):
                self._apply("deals", deal, {"dealstage": "contractsent"}, when(), "CRM_UI")

    def _next_renewal(self, company: Any, account: _Obj, won: _Obj, close: int, at: int) -> None:
        """Open the following year's renewal deal (expanding customers renew for more)."""
        amount = float(won.props.get("amount") or 0)
        if company.archetype == "expanding":
            amount *= 1.2
        next_close = close + 365 * 86_400_000
        year = (EPOCH + dt.timedelta(milliseconds=next_close)).year
        props = {
            "dealname": f"{company.name} renewal {year}",
            "amount": str(int(round(amount))),
            "dealstage": "qualifiedtobuy",
            "pipeline": "default",
            "closedate": iso_ms(next_close),
            "dealtype": "existingbusiness",
        }
        if won.props.get("hubspot_owner_id"):
            props["hubspot_owner_id"] = won.props["hubspot_owner_id"]
        deal = self._create("deals", props, None, at)
        self._associate("deals", deal.id, "companies", account.id, (5, 341))
        self._renewal_deal[company.key] = deal.id
