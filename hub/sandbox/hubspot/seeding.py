"""HubSpot fake: seeding the portal (per company, on demand) and daily activity."""

from __future__ import annotations

import bisect
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
    BLOCKS,
    TOUCH_BLOCK,
    TOUCH_KINDS,
    _Obj,
)
from hub.sandbox.hubspot.schema import (
    EPOCH,
    REVERSE_TYPE,
    TYPES,
    iso_ms,
    parse_ms,
    std_property,
    to_ms,
)

_COMPANY_BASE = 5_000_000_001  # World: hubspot_id = 5e9 + key * 7 + 1
_SCATTERED_MAX = 5_000  # companies made by reads by id before the rest are made at once


class _Seeding:
    """Seed the portal from the world, one company at a time on demand, and advance it."""

    # -- world: seed and advance --------------------------------------------------------------

    def seed(self) -> None:
        """The custom NPS property, the id plan and the traps; each company's records
        (contacts, deals, a CSM task, touches, tickets) are made on first use (``_materialize``).

        Every seeded record's id is in its company's block (``BLOCKS``: base + key × stride
        + index), drawn from a generator of its own (``rng_for(seed, "hubspot", key)``), so a
        company reads the same whether it was made by a list walk, a read by id or all at once,
        and lists (ordered by id) come in the world's company order. Records created later
        through the API get ids above every block."""
        world = self.world
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
        n = len(world.companies)
        self._company_ids = [int(c.hubspot_id) for c in world.companies]
        self._pending = bytearray(b"\x01") * n
        self._left = n
        self._lm_ready = n == 0
        for t, (base, stride) in BLOCKS.items():
            self._next_id[t] = max(self._next_id[t], base + n * stride)
        for i, kind in enumerate(TOUCH_KINDS):  # created activities: one range per kind
            self._next_id[kind] = TOUCH_BLOCK[0] + n * TOUCH_BLOCK[1] + i * 10_000_000
        self._next_id["companies"] = max(
            self._next_id["companies"], (self._company_ids[-1] + 1) if self._company_ids else 0
        )
        # Traps, applied through the same code paths the API uses (their companies first).
        start = to_ms(world.start)
        day = 86_400_000
        for company in world.companies[:10]:
            if company.traps or company.merged_into is not None:
                self._materialize(company.key)
                if company.merged_into is not None:
                    self._materialize(company.merged_into)
        for company in world.companies[:10]:
            if company.merged_into is not None:
                survivor = world.companies[company.merged_into]
                self._merge("companies", survivor.hubspot_id, company.hubspot_id, start - 20 * day)
            if "archived" in company.traps:
                obj = self._live("companies", company.hubspot_id)
                if obj is not None:
                    self._archive("companies", obj, start - 10 * day)

    # -- on demand ------------------------------------------------------------------------------

    def _owner_key(self, t: str, oid: int) -> int | None:
        """The world key of the company whose block holds ``oid`` (None: not a seeded id)."""
        n = len(self._pending)
        if t == "companies":
            k, r = divmod(oid - _COMPANY_BASE, 7)
            return k if r == 0 and 0 <= k < n else None
        block = BLOCKS.get(t) or (TOUCH_BLOCK if t in TOUCH_KINDS else None)
        if block is None:
            return None
        k = (oid - block[0]) // block[1]
        return k if 0 <= k < n and oid >= block[0] else None

    def _lazy_get(self, t: str, oid: int) -> _Obj | None:
        """``_store[t].get(oid)``, making the owning company's records first if needed."""
        k = self._owner_key(t, oid)
        if k is not None and self._pending[k]:
            # Reads out of list order insert into the middle of the sorted id lists; past a
            # few thousand, making the rest at once (and sorting once) is cheaper.
            self._scattered += 1
            if self._scattered > _SCATTERED_MAX:
                self._materialize_all()
            else:
                self._materialize(k)
        return self._store[t].get(oid)

    def _ensure_listed(self, t: str, after: int, limit: int) -> None:
        """Make companies in key order from the one owning ``after`` until ``limit + 1`` ids
        at or past ``after`` are certain (a list page and the id that follows it)."""
        if not self._left:
            return
        n = len(self._pending)
        if t == "companies":
            k = max(0, min(n, -(-(after - _COMPANY_BASE) // 7))) if after else 0
        else:
            block = BLOCKS.get(t) or (TOUCH_BLOCK if t in TOUCH_KINDS else None)
            if block is None:
                return
            k = max(0, min(n, (after - block[0]) // block[1])) if after else 0
        ids, pending = self._active[t], self._pending
        while k < n:
            if pending[k]:
                self._materialize(k)
            end = self._company_ids[k] + 1 if t == "companies" else block[0] + (k + 1) * block[1]
            if bisect.bisect_left(ids, end) - bisect.bisect_left(ids, after) > limit:
                return
            k += 1

    def _materialize_all(self) -> None:
        """Make every company's records not made yet (searches, writes and ``advance`` need
        the whole portal), then build the modification-time index once."""
        if not self._left and self._lm_ready:
            return
        if self._left:
            added: dict[str, list[int]] = {t: [] for t in TYPES}
            pending = self._pending
            for k in range(len(pending)):
                if pending[k]:
                    self._materialize(k, added)
            for t, ids in added.items():
                if ids:
                    self._active[t].extend(ids)
                    self._active[t].sort()
        for t in TYPES:
            store = self._store[t]
            self._lm[t] = sorted(store[i].updated * _KEY + i for i in self._active[t])
        self._lm_ready = True

    def _materialize(self, key: int, added: dict[str, list[int]] | None = None) -> None:
        """One company's seeded records: the company, 2–6 contacts, the won and the renewal
        deal, one CSM task in ten, its owner's history, then its touches and tickets.

        ``added`` collects new ids per type (``_materialize_all`` sorts them in once);
        without it each id goes into its sorted list at once."""
        if not self._pending[key]:
            return
        self._pending[key] = 0
        self._left -= 1
        company = self.world.companies[key]
        rng = rng_for(self.world.seed, "hubspot", key)
        rand = rng.random
        start = to_ms(self.world.start)
        day = 86_400_000
        store, assoc = self._store, self._assoc
        new: dict[str, list[int]] = {}

        def put(t: str, obj: _Obj) -> None:
            store[t][obj.id] = obj
            new.setdefault(t, []).append(obj.id)

        cid = self._company_ids[key]
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
            props["nps_score"] = str(low + int(rand() * (high - low + 1)))
        updated = created + int(rand() * span)
        account = _Obj(cid, props, created, updated)
        if props["lifecyclestage"] == "other":  # was a customer until they churned
            account.history = {
                "lifecyclestage": [("customer", created, "CRM_UI"), ("other", updated, "CRM_UI")]
            }
        put("companies", account)
        sid, domain = str(cid), company.domain
        optout = _OPTOUT_SEED[arch]
        links: dict[int, tuple[int, ...]] = {}
        c2co = assoc[("contacts", "companies")]
        contact_base = BLOCKS["contacts"][0] + key * BLOCKS["contacts"][1]
        for j in range(2 + int(rand() * 5)):
            first = _FIRST[int(rand() * len(_FIRST))]
            last = _LAST[int(rand() * len(_LAST))]
            c_created = created + int(rand() * span)
            c_updated = c_created + int(rand() * (start - c_created))
            oid = contact_base + j
            opted_out = rand() < optout
            contact = _Obj(
                oid,
                {
                    "email": f"{first.lower()}.{last.lower()}{oid}@{domain}",
                    "firstname": first,
                    "lastname": last,
                    "jobtitle": _TITLES[int(rand() * len(_TITLES))],
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
            put("contacts", contact)
            c2co[oid] = {cid: (1, 279)}
            links[oid] = (2, 280)
        assoc[("companies", "contacts")][cid] = links
        # The deal that made them a customer, and the renewal coming up.
        won_id = BLOCKS["deals"][0] + key * BLOCKS["deals"][1]
        renewal_id = won_id + 1
        renewal_ms = to_ms(dt.datetime.combine(company.renewal_date, dt.time(), dt.timezone.utc))
        owner = {"hubspot_owner_id": company.owner_id} if company.owner_id else {}
        won_updated = created + int(rand() * min(span, 30 * day))
        put("deals", _Obj(
            won_id,
            {"dealname": f"{company.name} – {company.plan}", "amount": annual, "dealstage": "closedwon",
             "pipeline": "default", "closedate": iso_ms(created), "dealtype": "newbusiness", **owner},
            created - 30 * day,
            won_updated,
        ))  # fmt: skip
        r_created = min(max(created, renewal_ms - 90 * day), start - day)
        r_updated = r_created + int(rand() * max(1, start - r_created))
        put("deals", _Obj(
            renewal_id,
            {"dealname": f"{company.name} renewal {company.renewal_date.year}", "amount": annual,
             "dealstage": "contractsent" if renewal_ms - start < 30 * day else "qualifiedtobuy",
             "pipeline": "default", "closedate": iso_ms(renewal_ms), "dealtype": "existingbusiness", **owner},
            r_created,
            r_updated,
        ))  # fmt: skip
        self._renewal_deal[key] = renewal_id
        d2co = assoc[("deals", "companies")]
        d2co[won_id] = {cid: (5, 341)}
        d2co[renewal_id] = {cid: (5, 341)}
        assoc[("companies", "deals")][cid] = {won_id: (6, 342), renewal_id: (6, 342)}
        if rand() < 0.1:
            t_created = start - (1 + int(rand() * 60)) * day
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
            tid = BLOCKS["tasks"][0] + key * BLOCKS["tasks"][1]
            put("tasks", _Obj(tid, task_props, t_created, t_created + (10 * day if done else 0)))
            assoc[("tasks", "companies")][tid] = {cid: (192,)}
            assoc[("companies", "tasks")].setdefault(cid, {})[tid] = (REVERSE_TYPE[192],)
        # The live companies with an owner: owner history, the CSM's touches, tickets.
        if company.owner_id and company.merged_into is None and "archived" not in company.traps:
            self._seed_owner_history(company, account)
            self._company_touches(rng, company, account, contact_base, put)
            self._company_tickets(rng, company, cid, put)
        for t, ids in new.items():
            if added is not None:
                added[t].extend(ids)
            else:
                active = self._active[t]
                for oid in ids:
                    if not active or active[-1] < oid:
                        active.append(oid)
                    else:
                        bisect.insort(active, oid)

    def advance(self, start: dt.datetime, end: dt.datetime, day_index: int) -> None:
        """A day in the CRM: unsubscribes, lifecycle moves, renewal stages, owner and NPS changes."""
        self._materialize_all()
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
