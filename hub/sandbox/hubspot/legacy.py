"""HubSpot fake: the legacy v1/v2 endpoints older clients (singer-io tap-hubspot) still call.

Served over the same records as v3, in the legacy shapes:

- ``GET /properties/v1|v2/{companies|contacts|deals}/properties``: a JSON array of definitions.
- ``GET /companies/v2/companies/paged`` (``limit`` ≤ 250, ``offset``, ``properties`` repeated)
  → ``{"companies", "has-more", "offset"}``; ``/companies/v2/companies/recent/modified``
  (``count``, ``offset``) → ``{"results", "hasMore", "offset", "total"}``; ``/companies/v2/
  companies/{id}``. Each property is ``{"value", "timestamp", "source", "sourceId",
  "versions"}``.
- ``GET /deals/v1/deal/paged`` (``includeAssociations``) → ``{"deals", "hasMore", "offset"}``.
- ``GET /contacts/v1/lists/all/contacts/all`` (``count``, ``vidOffset``) → ``{"contacts",
  "has-more", "vid-offset"}``.
- ``GET /owners/v2/owners`` → an array; ``GET /engagements/v1/engagements/paged`` →
  ``{"results": [{"engagement", "associations", "metadata"}], "hasMore", "offset"}``;
  ``/engagements/v1/engagements/modified/after?after=`` → ``{"results", "hasMore", "after"}``.
- ``GET /companies/v2/properties`` (the companies API's alias of the v1 property list).
- ``GET /deals/v1/pipelines`` (an array) and ``/crm-pipelines/v1/pipelines/{deals|tickets}``
  (``{"results"}``): the v3 pipelines with ``pipelineId``/``stageId`` keys.

Anything else under these prefixes answers at once with HubSpot's 404 body (no slow timeouts).
"""

from __future__ import annotations

import bisect
from typing import Any

import httpx

from hub.sandbox.base import json_response
from hub.sandbox.hubspot.common import _int_param, _Obj, endpoint
from hub.sandbox.hubspot.meta import _pipelines
from hub.sandbox.hubspot.schema import parse_ms
from hub.sandbox.hubspot.tokens import HUB_ID

LEGACY_PREFIXES = ("/properties/", "/companies/", "/deals/", "/contacts/", "/owners/", "/engagements/", "/crm-pipelines/")  # fmt: skip
_ENGAGEMENT = {"calls": "CALL", "emails": "EMAIL", "meetings": "MEETING", "notes": "NOTE", "tasks": "TASK"}  # fmt: skip


class _Legacy:
    """Legacy v1/v2 reads over the v3 records."""

    def _legacy_props(self, t: str, obj: _Obj, names: list[str] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        wanted = names if names else self._all_names(t, obj)
        for name in wanted:
            if name not in self._props[t]:
                continue
            value = self._value(t, obj, name)
            if value is None:
                continue
            history = (obj.history or {}).get(name)
            stamp = history[-1][1] if history else obj.updated
            source = history[-1][2] if history else "API"
            out[name] = {
                "value": value,
                "timestamp": stamp,
                "source": source,
                "sourceId": None,
                "versions": [
                    {
                        "name": name,
                        "value": value,
                        "timestamp": stamp,
                        "source": source,
                        "sourceVid": [],
                    }  # fmt: skip
                ],
            }
        return out

    def _page(self, t: str, offset: int, limit: int) -> tuple[list[_Obj], bool, int]:
        ids = self._active[t]
        start = bisect.bisect_right(ids, offset) if offset else 0
        chosen = ids[start : start + limit]
        objs = [self._store[t][i] for i in chosen]
        more = start + limit < len(ids)
        return objs, more, (chosen[-1] if chosen else offset)

    def _names_param(self, request: httpx.Request) -> list[str]:
        return [n for n in request.url.params.get_list("properties") if n]

    def _legacy_company(self, obj: _Obj, names: list[str] | None) -> dict[str, Any]:
        return {
            "portalId": HUB_ID,
            "companyId": obj.id,
            "isDeleted": False,
            "properties": self._legacy_props("companies", obj, names),
            "additionalDomains": [],
            "stateChanges": [],
            "mergeAudits": [],
        }

    @endpoint("GET", r"/properties/v[12]/(?P<otype>companies|contacts|deals)/properties/?")
    def legacy_properties(self, request: httpx.Request, otype: str) -> httpx.Response:
        out = []
        for p in self._props[otype].values():
            meta = p.get("modificationMetadata") or {}
            out.append(
                {
                    "name": p["name"],
                    "label": p["label"],
                    "description": p.get("description", ""),
                    "groupName": p["groupName"],
                    "type": p["type"],
                    "fieldType": p["fieldType"],
                    "options": [
                        {**o, "description": o.get("description")} for o in p.get("options", [])
                    ],
                    "deleted": False,
                    "formField": p.get("formField", False),
                    "displayOrder": p.get("displayOrder", -1),
                    "readOnlyValue": meta.get("readOnlyValue", False),
                    "readOnlyDefinition": meta.get("readOnlyDefinition", False),
                    "hidden": p.get("hidden", False),
                    "mutableDefinitionNotDeletable": p.get("hubspotDefined", False),
                    "calculated": p.get("calculated", False),
                    "externalOptions": p.get("externalOptions", False),
                    "displayMode": "current_value",
                    "hubspotDefined": p.get("hubspotDefined", False),
                }
            )
        return json_response(200, out)

    def _v1_pipelines(self, otype: str) -> list[dict[str, Any]]:
        out = []
        for p in _pipelines(otype) or []:
            stages = []
            for st in p["stages"]:
                meta = st["metadata"]
                stage = {"stageId": st["id"], "label": st["label"], "active": True}
                stage["displayOrder"] = st["displayOrder"]
                if otype == "deals":
                    stage["probability"] = float(meta["probability"])
                    stage["closedWon"] = st["id"] == "closedwon"
                else:
                    stage["metadata"] = meta
                stages.append(stage)
            row = {"pipelineId": p["id"], "label": p["label"], "displayOrder": 0, "active": True}
            row.update({"objectType": otype.upper().rstrip("S"), "stages": stages})
            out.append(row)
        return out

    @endpoint("GET", r"/deals/v1/pipelines/?")
    def legacy_deal_pipelines(self, request: httpx.Request) -> httpx.Response:
        """The deal pipelines as a JSON array (v1)."""
        return json_response(200, self._v1_pipelines("deals"))

    @endpoint("GET", r"/crm-pipelines/v1/pipelines/(?P<otype>deals|tickets)/?")
    def legacy_crm_pipelines(self, request: httpx.Request, otype: str) -> httpx.Response:
        """``{"results": [pipeline]}`` (the v1 CRM pipelines API)."""
        return json_response(200, {"results": self._v1_pipelines(otype)})

    @endpoint("GET", r"/companies/v2/properties/?")
    def legacy_company_properties(self, request: httpx.Request) -> httpx.Response:
        """The companies API's own alias of ``/properties/v1/companies/properties``."""
        return self.legacy_properties(request, otype="companies")

    @endpoint("GET", r"/companies/v2/companies/paged/?")
    def legacy_companies_paged(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        limit = max(1, min(_int_param(params.get("limit"), 100, self), 250))
        objs, more, offset = self._page(
            "companies", _int_param(params.get("offset"), 0, self), limit
        )
        names = self._names_param(request)
        companies = [self._legacy_company(o, names) for o in objs]
        return json_response(200, {"companies": companies, "has-more": more, "offset": offset})

    @endpoint("GET", r"/companies/v2/companies/recent/modified/?")
    def legacy_companies_recent(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        count = max(1, min(_int_param(params.get("count"), 100, self), 200))
        offset = _int_param(params.get("offset"), 0, self)
        ordered = sorted(
            (self._store["companies"][i] for i in self._active["companies"]),
            key=lambda o: (-o.updated, o.id),
        )
        chosen = ordered[offset : offset + count]
        results = [self._legacy_company(o, None) for o in chosen]
        return json_response(
            200,
            {
                "results": results,
                "hasMore": offset + count < len(ordered),
                "offset": offset + len(chosen),
                "total": len(ordered),
            },
        )

    @endpoint("GET", r"/companies/v2/companies/(?P<oid>\d+)")
    def legacy_company(self, request: httpx.Request, oid: str) -> httpx.Response:
        obj = self._live("companies", oid)
        if obj is None:
            raise self._reject(
                404, f"resource not found: company {oid}", category="OBJECT_NOT_FOUND"
            )
        return json_response(200, self._legacy_company(obj, None))

    @endpoint("GET", r"/deals/v1/deal/paged/?")
    def legacy_deals_paged(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        limit = max(1, min(_int_param(params.get("limit"), 100, self), 250))
        objs, more, offset = self._page("deals", _int_param(params.get("offset"), 0, self), limit)
        names = self._names_param(request)
        with_links = params.get("includeAssociations", "false").lower() == "true"
        deals = []
        for o in objs:
            deal: dict[str, Any] = {
                "portalId": HUB_ID,
                "dealId": o.id,
                "isDeleted": False,
                "properties": self._legacy_props("deals", o, names),
                "imports": [],
                "stateChanges": [],
            }
            if with_links:
                deal["associations"] = {
                    "associatedCompanyIds": [i for i, _ in self._links("deals", o.id, "companies")],
                    "associatedVids": [i for i, _ in self._links("deals", o.id, "contacts")],
                    "associatedDealIds": [],
                    "associatedTicketIds": [],
                }
            deals.append(deal)
        return json_response(200, {"deals": deals, "hasMore": more, "offset": offset})

    @endpoint("GET", r"/contacts/v1/lists/all/contacts/all/?")
    def legacy_contacts_all(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        count = max(1, min(_int_param(params.get("count"), 20, self), 100))
        objs, more, offset = self._page(
            "contacts", _int_param(params.get("vidOffset"), 0, self), count
        )
        names = self._names_param(request)
        contacts = []
        for o in objs:
            props = self._legacy_props("contacts", o, names)
            flat = {k: {"value": v["value"]} for k, v in props.items()}
            email = o.props.get("email")
            contacts.append(
                {
                    "addedAt": o.created,
                    "vid": o.id,
                    "canonical-vid": o.id,
                    "merged-vids": [],
                    "portal-id": HUB_ID,
                    "is-contact": True,
                    "properties": flat,
                    "form-submissions": [],
                    "identity-profiles": [
                        {
                            "vid": o.id,
                            "saved-at-timestamp": o.created,
                            "deleted-changed-timestamp": 0,
                            "identities": [
                                {"type": "EMAIL", "value": email, "timestamp": o.created}
                            ]
                            if email
                            else [],
                        }
                    ],
                    "merge-audits": [],
                }
            )
        return json_response(200, {"contacts": contacts, "has-more": more, "vid-offset": offset})

    @endpoint("GET", r"/owners/v2/owners/?")
    def legacy_owners(self, request: httpx.Request) -> httpx.Response:
        start = parse_ms("2020-01-01T00:00:00Z")
        return json_response(
            200,
            [
                {
                    "portalId": HUB_ID,
                    "ownerId": int(o["id"]),
                    "type": "PERSON",
                    "firstName": o["firstName"],
                    "lastName": o["lastName"],
                    "email": o["email"],
                    "createdAt": start,
                    "updatedAt": start,
                    "remoteList": [],
                    "hasContactsAccess": True,
                    "activeUserId": o["userId"],
                    "userIdIncludingInactive": o["userId"],
                    "activeSalesforceId": None,
                    "isActive": True,
                }
                for o in self.world.owners
            ],
        )

    def _legacy_engagement(self, t: str, o: _Obj) -> dict[str, Any]:
        stamp = parse_ms(o.props.get("hs_timestamp")) or o.created
        owner = o.props.get("hubspot_owner_id")
        return {
            "engagement": {
                "id": o.id,
                "portalId": HUB_ID,
                "active": True,
                "createdAt": o.created,
                "lastUpdated": o.updated,
                "ownerId": int(owner) if owner else None,
                "type": _ENGAGEMENT[t],
                "timestamp": stamp,
            },
            "associations": {
                "contactIds": [c for c, _ in self._links(t, o.id, "contacts")],
                "companyIds": [c for c, _ in self._links(t, o.id, "companies")],
                "dealIds": [c for c, _ in self._links(t, o.id, "deals")],
                "ownerIds": [],
                "workflowIds": [],
                "ticketIds": [],
            },
            "metadata": {k: v for k, v in o.props.items() if not k.startswith("hs_object")},
        }

    @endpoint("GET", r"/engagements/v1/engagements/modified/after/?")
    def legacy_engagements_modified_after(self, request: httpx.Request) -> httpx.Response:
        """Engagements modified after ``after`` (ms, or the cursor a page returned), oldest
        first → ``{"results", "hasMore", "after"}``."""
        params = request.url.params
        limit = max(1, min(_int_param(params.get("limit"), 100, self), 250))
        raw = params.get("after") or "0"
        stamp, _, last_id = raw.partition("-")
        try:
            key = (int(stamp), int(last_id) if last_id else -1)
        except ValueError:
            raise self._reject(400, f"Invalid after cursor: {raw}") from None
        rows = sorted(
            (o.updated, o.id, t)
            for t in _ENGAGEMENT
            for i in self._active[t]
            if ((o := self._store[t][i]).updated, o.id) > key
        )
        chosen = rows[:limit]
        results = [self._legacy_engagement(t, self._store[t][i]) for _, i, t in chosen]
        body: dict[str, Any] = {"results": results, "hasMore": len(rows) > limit}
        if chosen:
            body["after"] = f"{chosen[-1][0]}-{chosen[-1][1]}"
        return json_response(200, body)

    @endpoint("GET", r"/engagements/v1/engagements/paged/?")
    def legacy_engagements(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        limit = max(1, min(_int_param(params.get("limit"), 100, self), 250))
        offset = _int_param(params.get("offset"), 0, self)
        # One id space across the activity types (their id ranges do not overlap).
        rows = sorted(((t, i) for t in _ENGAGEMENT for i in self._active[t]), key=lambda r: r[1])
        start = bisect.bisect_right([i for _, i in rows], offset) if offset else 0
        chosen = rows[start : start + limit]
        results = [self._legacy_engagement(t, self._store[t][i]) for t, i in chosen]
        last = chosen[-1][1] if chosen else offset
        return json_response(
            200, {"results": results, "hasMore": start + limit < len(rows), "offset": last}
        )
