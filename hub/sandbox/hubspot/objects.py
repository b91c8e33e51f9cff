"""HubSpot fake: object endpoints (single and batch)."""

from __future__ import annotations

import bisect
from typing import Any

import httpx

from hub.sandbox.base import (
    base_url,
    json_response,
)
from hub.sandbox.hubspot.common import (
    BATCH_HISTORY_MAX,
    _input_error,
    _int_param,
    _not_read,
    _Obj,
    _retriable_error,
    endpoint,
)
from hub.sandbox.hubspot.schema import (
    ALIASES,
    ALWAYS_PROPS,
    BATCH_MAX,
    DEFAULT_PROPS,
    SINGULAR,
    iso_ms,
)


class _Objects:
    """Object endpoints: list, read, create, update, archive and their batch forms."""

    # -- objects: list, read, create, update, archive ---------------------------------------

    def _listed(self, request: httpx.Request, name: str) -> list[str]:
        out: list[str] = []
        for value in request.url.params.get_list(name):
            out.extend(p.strip() for p in value.split(",") if p.strip())
        return out

    @endpoint("GET", r"/crm/v[34]/objects/(?P<otype>[^/]+)/?")  # v4: same list
    def list_objects(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        params = request.url.params
        history = self._history_names(t, self._listed(request, "propertiesWithHistory"))
        limit = _int_param(params.get("limit"), 10, self)
        # Asking for history lowers the page ceiling (HubSpot: 50).
        limit = max(1, min(limit, 50 if history else 100))
        archived = (params.get("archived") or "false").lower() == "true"
        ids = self._archived[t] if archived else self._active[t]
        after = params.get("after")
        start = 0
        try:
            after_id = int(after) if after else 0
        except ValueError:
            raise self._reject(400, f"Invalid 'after' value: {after}") from None
        if not archived:
            self._ensure_listed(t, after_id, limit)
        if after:
            start = bisect.bisect_left(ids, after_id)
        page = ids[start : start + limit]
        names = self._names(t, self._listed(request, "properties"))
        assoc_to = [
            self._type(x) for x in self._listed(request, "associations") if x.lower() in ALIASES
        ]
        store = self._store[t]
        body: dict[str, Any] = {
            "results": [self._render(t, store[i], names, assoc_to, history) for i in page]
        }
        if start + limit < len(ids):
            nxt = str(ids[start + limit])
            link = request.url.copy_set_param("after", nxt)
            body["paging"] = {
                "next": {"after": nxt, "link": base_url(request) + link.raw_path.decode()}
            }
        return json_response(200, body)

    @endpoint("GET", r"/crm/v3/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)")
    def read_object(self, request: httpx.Request, otype: str, oid: str) -> httpx.Response:
        t = self._type(otype)
        params = request.url.params
        obj = self._find(
            t,
            oid,
            params.get("idProperty"),
            archived=(params.get("archived") or "").lower() == "true",
        )
        names = self._names(t, self._listed(request, "properties"))
        assoc_to = [
            self._type(x) for x in self._listed(request, "associations") if x.lower() in ALIASES
        ]
        history = self._history_names(t, self._listed(request, "propertiesWithHistory"))
        return json_response(200, self._render(t, obj, names, assoc_to, history))

    def _find(
        self, t: str, oid: str, id_property: str | None = None, archived: bool = False
    ) -> _Obj:
        if id_property and id_property != "hs_object_id":
            if id_property not in self._props[t]:
                raise self._reject(
                    400, f'Property "{id_property}" does not exist', category="VALIDATION_ERROR"
                )
            obj = self._by_property(t, id_property, oid)
        elif archived:
            obj = self._lazy_get(t, int(oid)) if oid.isdigit() else None
            obj = obj if obj is not None and obj.archived_at is not None else None
        else:
            obj = self._live(t, oid)
        if obj is None:
            raise self._reject(
                404,
                "Object not found.  objectId are usually numeric.",
                category="OBJECT_NOT_FOUND",
                context={"id": [oid]},
            )
        return obj

    @endpoint("POST", r"/crm/v3/objects/(?P<otype>[^/]+)/?", write=True)
    def create_object(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        body = self._body(request)
        values = self._normalize(t, body.get("properties"), creating=True)
        conflict = self._unique_conflict(t, values, None)
        if conflict:
            raise self._reject(409, conflict, category="CONFLICT")
        obj = self._create(t, values, body.get("associations"), self._now_ms())
        names = list(dict.fromkeys([*DEFAULT_PROPS[t], *obj.props]))
        return json_response(201, self._render(t, obj, names))

    @endpoint("PATCH", r"/crm/v3/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)", write=True)
    def update_object(self, request: httpx.Request, otype: str, oid: str) -> httpx.Response:
        t = self._type(otype)
        obj = self._find(t, oid, request.url.params.get("idProperty"))
        body = self._body(request)
        values = self._normalize(t, body.get("properties"))
        conflict = self._unique_conflict(t, values, obj.id)
        if conflict:
            raise self._reject(409, conflict, category="CONFLICT")
        self._apply(t, obj, values, self._now_ms())
        names = list(dict.fromkeys([*ALWAYS_PROPS[t], *values]))
        return json_response(200, self._render(t, obj, names))

    @endpoint("DELETE", r"/crm/v3/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)", write=True)
    def archive_object(self, request: httpx.Request, otype: str, oid: str) -> httpx.Response:
        t = self._type(otype)
        obj = self._live(t, oid)
        if obj is not None:
            self._archive(t, obj, self._now_ms())
        return httpx.Response(204)

    def _archive(self, t: str, obj: _Obj, at: int) -> None:
        self._deactivate(t, obj)
        obj.archived_at = at
        bisect.insort(self._archived[t], obj.id)

    # -- batch --------------------------------------------------------------------------------

    @endpoint(
        "POST",
        r"/crm/v3/objects/(?P<otype>[^/]+)/batch/(?P<op>read|create|update|upsert|archive)",
        write=_not_read,
    )
    def batch(self, request: httpx.Request, otype: str, op: str) -> httpx.Response:
        t = self._type(otype)
        body = self._body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise self._reject(400, "Invalid input: 'inputs' must be a list")
        if len(inputs) > BATCH_MAX:
            raise self._reject(
                400,
                f"Too many inputs: {len(inputs)} > {BATCH_MAX}. Batch operations are limited to {BATCH_MAX} records at a time.",
                category="VALIDATION_ERROR",
                context={"inputs": [str(len(inputs))]},
            )
        history = self._history_names(t, body.get("propertiesWithHistory")) if op == "read" else []
        if history and len(inputs) > BATCH_HISTORY_MAX:
            raise self._reject(
                400,
                f"Too many inputs: {len(inputs)} > {BATCH_HISTORY_MAX}. A batch read with propertiesWithHistory is limited to {BATCH_HISTORY_MAX} records.",
                category="VALIDATION_ERROR",
            )
        started = iso_ms(self._now_ms())
        if op == "archive":
            for item in inputs:
                obj = self._live(t, (item or {}).get("id"))
                if obj is not None:
                    self._archive(t, obj, self._now_ms())
            return httpx.Response(204)
        # Validate every input before writing any: a bad property fails the whole batch.
        normalized: list[dict[str, str | None]] = []
        if op in ("create", "update", "upsert"):
            for item in inputs:
                if not isinstance(item, dict):
                    raise self._reject(400, "Invalid input: each input must be an object")
                normalized.append(
                    self._normalize(t, item.get("properties"), creating=op == "create")
                )
            if op == "update":
                ids = [str(item.get("id")) for item in inputs]
                dupes = sorted({i for i in ids if ids.count(i) > 1})
                if dupes:
                    raise self._reject(
                        400,
                        f"Duplicate IDs found in batch input: {dupes}. IDs must be unique",
                        context={"ids": dupes},
                    )
        # ``partial_207`` breaks batch writes only (as documented): a read neither fails nor
        # uses the fault up.
        failing = self._partial_failures(request, inputs) if op != "read" else set()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        missing: list[str] = []
        now = self._now_ms()
        wanted = body.get("properties")
        for i, item in enumerate(inputs):
            if i in failing:
                errors.append(_retriable_error(item, i))
                continue
            if op == "read":
                obj = self._find_input(t, item, body.get("idProperty"))
                if obj is None:
                    missing.append(str(item.get("id")))
                    continue
                results.append(self._render(t, obj, self._names(t, wanted), None, history))
            elif op == "create":
                conflict = self._unique_conflict(t, normalized[i], None)
                if conflict:
                    errors.append(_input_error(item, i, "CONFLICT", conflict))
                    continue
                obj = self._create(t, normalized[i], item.get("associations"), now)
                names = list(dict.fromkeys([*DEFAULT_PROPS[t], *obj.props]))
                results.append(self._render(t, obj, names))
            elif op == "update":
                obj = self._find_input(t, item, item.get("idProperty"))
                if obj is None:
                    missing.append(str(item.get("id")))
                    continue
                conflict = self._unique_conflict(t, normalized[i], obj.id)
                if conflict:
                    errors.append(_input_error(item, i, "CONFLICT", conflict))
                    continue
                self._apply(t, obj, normalized[i], now)
                results.append(
                    self._render(t, obj, list(dict.fromkeys([*ALWAYS_PROPS[t], *normalized[i]])))
                )
            else:  # upsert
                id_prop = item.get("idProperty") or "hs_object_id"
                if id_prop not in self._props[t] or (
                    id_prop != "hs_object_id" and not self._props[t][id_prop].get("hasUniqueValue")
                ):
                    raise self._reject(
                        400, f"idProperty {id_prop!r} is not a unique property of {t}"
                    )
                obj = self._by_property(t, id_prop, item.get("id"))
                values = dict(normalized[i])
                new = obj is None
                if new:
                    if id_prop != "hs_object_id":
                        values.setdefault(id_prop, str(item.get("id")))
                    obj = self._create(t, values, None, now)
                else:
                    self._apply(t, obj, values, now)
                rendered = self._render(t, obj, list(dict.fromkeys([*ALWAYS_PROPS[t], *values])))
                rendered["new"] = new
                results.append(rendered)
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {SINGULAR[t].upper()} objects, they may be deleted or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            )
        body_out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_ms(self._now_ms()),
        }
        if errors:
            body_out["numErrors"] = sum(
                len(e.get("context", {}).get("ids", [])) or 1 for e in errors
            )
            body_out["errors"] = errors
            return json_response(207, body_out)
        return json_response(201 if op == "create" else 200, body_out)

    def _find_input(self, t: str, item: Any, id_property: str | None) -> _Obj | None:
        if not isinstance(item, dict) or item.get("id") is None:
            return None
        if id_property and id_property != "hs_object_id":
            return self._by_property(t, id_property, item["id"])
        return self._live(t, item["id"])

    def _partial_failures(self, request: httpx.Request, inputs: list[Any]) -> set[int]:
        fault = self.faults.take(request, {"partial_207"})
        if fault is None:
            return set()
        params = fault.params
        if "indexes" in params:
            return {int(i) for i in params["indexes"]}
        if "ids" in params:
            wanted = {str(i) for i in params["ids"]}
            return {
                i
                for i, item in enumerate(inputs)
                if isinstance(item, dict) and str(item.get("id")) in wanted
            }
        return set(range(min(int(params.get("fail", 1)), len(inputs))))
