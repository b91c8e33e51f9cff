"""HubSpot fake: owners and v4 associations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from hub.sandbox.base import (
    base_url,
    json_response,
)
from hub.sandbox.hubspot.common import _int_param, _not_read, endpoint
from hub.sandbox.hubspot.schema import (
    ASSOC_TYPES,
    BATCH_MAX,
    PRIMARY_TYPES,
    SINGULAR,
    TYPE_IDS,
    TYPE_PAIR,
    iso_ms,
    to_ms,
)


class _Associations:
    """Owners and the v4 associations API."""

    # -- owners -----------------------------------------------------------------------------

    def _render_owner(self, owner: dict[str, Any]) -> dict[str, Any]:
        at = iso_ms(to_ms(self.world.start) - 400 * 86_400_000)
        return {
            "id": owner["id"],
            "email": owner["email"],
            "type": "PERSON",
            "firstName": owner["firstName"],
            "lastName": owner["lastName"],
            "userId": owner["userId"],
            "userIdIncludingInactive": owner["userId"],
            "createdAt": at,
            "updatedAt": at,
            "archived": False,
            "teams": [],
        }

    @endpoint("GET", r"/crm/v3/owners/?")
    def list_owners(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        limit = max(1, min(_int_param(params.get("limit"), 100, self), 500))
        owners = self.world.owners
        email = params.get("email")
        if email:
            owners = [o for o in owners if o["email"].lower() == email.lower()]
        start = _int_param(params.get("after"), 0, self)
        body: dict[str, Any] = {
            "results": [self._render_owner(o) for o in owners[start : start + limit]]
        }
        if start + limit < len(owners):
            nxt = str(start + limit)
            link = request.url.copy_set_param("after", nxt)
            body["paging"] = {
                "next": {"after": nxt, "link": base_url(request) + link.raw_path.decode()}
            }
        return json_response(200, body)

    @endpoint("GET", r"/crm/v3/owners/(?P<owner_id>[^/]+)")
    def read_owner(self, request: httpx.Request, owner_id: str) -> httpx.Response:
        for owner in self.world.owners:
            if owner["id"] == owner_id:
                return json_response(200, self._render_owner(owner))
        raise self._reject(404, f"Owner {owner_id} not found", category="OBJECT_NOT_FOUND")

    # -- associations v4 ----------------------------------------------------------------------

    def _v4_types(self, frm: str, to: str, type_ids: Iterable[int]) -> list[dict[str, Any]]:
        return [
            {
                "category": "HUBSPOT_DEFINED",
                "typeId": tid,
                "label": "Primary" if tid in PRIMARY_TYPES else None,
            }
            for tid in type_ids
        ]

    @endpoint(
        "GET", r"/crm/v4/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)/associations/(?P<to>[^/]+)/?"
    )
    def v4_list(self, request: httpx.Request, otype: str, oid: str, to: str) -> httpx.Response:
        t, to_t = self._type(otype), self._type(to)
        obj = self._find(t, oid)
        links = self._links(t, obj.id, to_t)
        params = request.url.params
        limit = max(1, min(_int_param(params.get("limit"), 500, self), 500))
        start = _int_param(params.get("after"), 0, self)
        page = links[start : start + limit]
        body: dict[str, Any] = {
            "results": [
                {"toObjectId": tid, "associationTypes": self._v4_types(t, to_t, types)}
                for tid, types in page
            ]
        }
        if start + limit < len(links):
            nxt = str(start + limit)
            link = request.url.copy_set_param("after", nxt)
            body["paging"] = {
                "next": {"after": nxt, "link": base_url(request) + link.raw_path.decode()}
            }
        return json_response(200, body)

    @endpoint(
        "PUT",
        r"/crm/v4/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)/associations/default/(?P<to>[^/]+)/(?P<to_id>[^/]+)",
        write=True,
    )
    def v4_default(
        self, request: httpx.Request, otype: str, oid: str, to: str, to_id: str
    ) -> httpx.Response:
        t, to_t = self._type(otype), self._type(to)
        result = self._default_associate(t, oid, to_t, to_id)
        started = iso_ms(self._now_ms())
        return json_response(
            200,
            {
                "status": "COMPLETE",
                "results": [result],
                "startedAt": started,
                "completedAt": started,
            },
        )

    def _default_associate(self, t: str, oid: Any, to_t: str, to_id: Any) -> dict[str, Any]:
        if (t, to_t) not in ASSOC_TYPES:
            raise self._reject(
                400, f"{SINGULAR[t]} to {SINGULAR[to_t]} associations are not supported"
            )
        a, b = self._find(t, str(oid)), self._find(to_t, str(to_id))
        default = ASSOC_TYPES[(t, to_t)][0]
        self._associate(t, a.id, to_t, b.id, (default,))
        return {
            "from": {"id": str(a.id)},
            "to": {"id": str(b.id)},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": default,
            },
        }

    @endpoint(
        "PUT",
        r"/crm/v4/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)/associations/(?P<to>(?!default$)[^/]+)/(?P<to_id>[^/]+)",
        write=True,
    )
    def v4_create(
        self, request: httpx.Request, otype: str, oid: str, to: str, to_id: str
    ) -> httpx.Response:
        t, to_t = self._type(otype), self._type(to)
        a, b = self._find(t, oid), self._find(to_t, to_id)
        specs = self._body(request)
        if not isinstance(specs, list) or not specs:
            raise self._reject(
                400, "Body must be a list of {associationCategory, associationTypeId}"
            )
        type_ids = []
        for spec in specs:
            tid = int((spec or {}).get("associationTypeId", 0))
            if TYPE_PAIR.get(tid) != (t, to_t):
                raise self._reject(
                    400,
                    f"association type id {tid} is not valid from {SINGULAR[t]} to {SINGULAR[to_t]}",
                )
            type_ids.append(tid)
        self._associate(t, a.id, to_t, b.id, type_ids)
        links = dict(self._links(t, a.id, to_t))
        body = {
            "fromObjectTypeId": TYPE_IDS[t],
            "fromObjectId": a.id,
            "toObjectTypeId": TYPE_IDS[to_t],
            "toObjectId": b.id,
            "labels": ["Primary" for x in links.get(b.id, ()) if x in PRIMARY_TYPES],
        }
        return json_response(201, body)

    @endpoint(
        "DELETE",
        r"/crm/v4/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)/associations/(?P<to>(?!default$)[^/]+)/(?P<to_id>[^/]+)",
        write=True,
    )
    def v4_delete(
        self, request: httpx.Request, otype: str, oid: str, to: str, to_id: str
    ) -> httpx.Response:
        t, to_t = self._type(otype), self._type(to)
        a, b = self._live(t, oid), self._live(to_t, to_id)
        if a is not None and b is not None and (t, to_t) in ASSOC_TYPES:
            self._unassociate(t, a.id, to_t, b.id)
        return httpx.Response(204)

    @endpoint("POST", r"/crm/v3/associations/(?P<otype>[^/]+)/(?P<to>[^/]+)/batch/read")
    def v3_batch_read(self, request: httpx.Request, otype: str, to: str) -> httpx.Response:
        """The v3 read (older clients): ``to`` is ``[{"id", "type": "company_to_contact"}]``."""
        t, to_t = self._type(otype), self._type(to)
        inputs = self._body(request).get("inputs")
        if not isinstance(inputs, list):
            raise self._reject(400, "Invalid input: 'inputs' must be a list")
        started = iso_ms(self._now_ms())
        kind = f"{SINGULAR[t]}_to_{SINGULAR[to_t]}"
        results, errors = [], []
        for item in inputs:
            oid = (item or {}).get("id")
            obj = self._live(t, None if oid is None else str(oid))
            links = self._links(t, obj.id, to_t) if obj is not None else []
            if links:
                to_ids = [{"id": str(tid), "type": kind} for tid, _ in links]
                results.append({"from": {"id": str(obj.id)}, "to": to_ids})
            else:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": f"No {SINGULAR[to_t]} is associated with {SINGULAR[t]} {oid}.",
                        "context": {"fromObjectId": [str(oid)]},
                    }
                )
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started}
        body["completedAt"] = iso_ms(self._now_ms())
        if errors:
            body["numErrors"], body["errors"] = len(errors), errors
        return json_response(207 if errors else 200, body)

    @endpoint(
        "POST",
        r"/crm/v4/associations/(?P<otype>[^/]+)/(?P<to>[^/]+)/batch/(?P<op>read|create|archive|associate/default)",
        write=_not_read,
    )
    def v4_batch(self, request: httpx.Request, otype: str, to: str, op: str) -> httpx.Response:
        t, to_t = self._type(otype), self._type(to)
        inputs = self._body(request).get("inputs")
        if not isinstance(inputs, list):
            raise self._reject(400, "Invalid input: 'inputs' must be a list")
        if len(inputs) > 1000 if op == "read" else len(inputs) > BATCH_MAX:
            raise self._reject(400, f"Too many inputs: {len(inputs)}")
        started = iso_ms(self._now_ms())
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            item = item or {}
            if op == "read":
                obj = self._live(t, item.get("id"))
                links = self._links(t, obj.id, to_t) if obj is not None else []
                if not links:
                    errors.append(
                        {
                            "status": "error",
                            "category": "OBJECT_NOT_FOUND",
                            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                            "message": f"No {SINGULAR[to_t]} is associated with {SINGULAR[t]} {item.get('id')}.",
                            "context": {"fromObjectId": [str(item.get("id"))]},
                        }
                    )
                    continue
                results.append(
                    {
                        "from": {"id": str(obj.id)},
                        "to": [
                            {"toObjectId": tid, "associationTypes": self._v4_types(t, to_t, types)}
                            for tid, types in links
                        ],
                    }
                )
                continue
            from_id = (item.get("from") or {}).get("id")
            to_id = (item.get("to") or {}).get("id")
            if op == "associate/default":
                results.append(self._default_associate(t, from_id, to_t, to_id))
            elif op == "archive":
                a = self._live(t, from_id)
                for target in item.get("to") or []:
                    b = self._live(to_t, (target or {}).get("id"))
                    if a is not None and b is not None:
                        self._unassociate(t, a.id, to_t, b.id)
            else:  # create with explicit types
                a, b = self._find(t, str(from_id)), self._find(to_t, str(to_id))
                type_ids = [
                    int((x or {}).get("associationTypeId", 0)) for x in item.get("types") or []
                ]
                if not type_ids or any(TYPE_PAIR.get(x) != (t, to_t) for x in type_ids):
                    raise self._reject(
                        400,
                        f"Invalid association types {type_ids} from {SINGULAR[t]} to {SINGULAR[to_t]}",
                    )
                self._associate(t, a.id, to_t, b.id, type_ids)
                results.append(
                    {
                        "fromObjectTypeId": TYPE_IDS[t],
                        "fromObjectId": a.id,
                        "toObjectTypeId": TYPE_IDS[to_t],
                        "toObjectId": b.id,
                        "labels": [],
                    }
                )
        if op == "archive":
            return httpx.Response(204)
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_ms(self._now_ms()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return json_response(207, body)
        return json_response(201 if op == "create" else 200, body)
