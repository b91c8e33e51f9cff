"""HubSpot fake: properties and property groups."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from hub.sandbox.base import (
    json_response,
)
from hub.sandbox.hubspot.common import _not_read, endpoint
from hub.sandbox.hubspot.schema import (
    FIELD_FITS,
    FIELD_TYPES,
    NAME_RE,
    PROPERTY_TYPES,
    iso_ms,
)


class _Properties:
    """The properties and property-groups API."""

    # -- properties and groups --------------------------------------------------------------

    def _render_property(self, pdef: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(pdef)
        if pdef["name"] == "hubspot_owner_id":
            out["options"] = [
                {
                    "label": f"{o['firstName']} {o['lastName']}",
                    "value": o["id"],
                    "displayOrder": i,
                    "hidden": False,
                }
                for i, o in enumerate(self.world.owners)
            ]
        return out

    @endpoint("GET", r"/crm/v3/properties/(?P<otype>[^/]+)/?")
    def list_properties(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        archived = request.url.params.get("archived", "false").lower() == "true"
        table = self._archived_props[t] if archived else self._props[t]
        return json_response(200, {"results": [self._render_property(p) for p in table.values()]})

    @endpoint("GET", r"/crm/v3/properties/(?P<otype>[^/]+)/(?P<pname>(?!groups$|batch$)[^/]+)")
    def read_property(self, request: httpx.Request, otype: str, pname: str) -> httpx.Response:
        t = self._type(otype)
        archived = request.url.params.get("archived", "false").lower() == "true"
        pdef = (self._archived_props[t] if archived else self._props[t]).get(pname)
        if pdef is None:
            raise self._reject(404, f"Property {pname} does not exist", category="OBJECT_NOT_FOUND")
        return json_response(200, self._render_property(pdef))

    @endpoint("POST", r"/crm/v3/properties/(?P<otype>[^/]+)/?", write=True)
    def create_property(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        pdef = self._new_property(t, self._body(request))
        return json_response(201, self._render_property(pdef))

    def _new_property(self, t: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise self._reject(400, "Invalid input: a property definition object is required")
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise self._reject(
                400,
                f"Missing required field(s): {', '.join(missing)}",
                context={"missing": missing},
            )
        name = str(body["name"])
        if name in self._props[t]:
            raise self._reject(409, f"Property named '{name}' already exists.", category="CONFLICT")
        if name in self._archived_props[t]:
            # HubSpot keeps an archived name taken: restore it, or pick another name.
            raise self._reject(
                409,
                f"Property named '{name}' already exists as an archived property. "
                "Restore it or use a different name.",
                category="CONFLICT",
            )
        if not NAME_RE.match(name) or name.startswith("hs_"):
            raise self._reject(
                400,
                f"Invalid property name {name!r}: use lower-case letters, digits and _ and start with a letter (not hs_)",
            )
        now = iso_ms(self._now_ms())
        pdef = {
            "name": name,
            "label": str(body["label"]),
            "type": body["type"],
            "fieldType": body["fieldType"],
            "description": str(body.get("description") or ""),
            "groupName": body["groupName"],
            "options": [],
            "displayOrder": int(body.get("displayOrder", -1)),
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": bool(body.get("hasUniqueValue", False)),
            "hidden": bool(body.get("hidden", False)),
            "hubspotDefined": False,
            "modificationMetadata": {
                "archivable": True,
                "readOnlyDefinition": False,
                "readOnlyValue": False,
            },
            "formField": bool(body.get("formField", False)),
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
        }
        self._check_definition(t, pdef, body.get("options"))
        self._props[t][name] = pdef
        return pdef

    def _check_definition(self, t: str, pdef: dict[str, Any], options: Any) -> None:
        ptype, field = pdef["type"], pdef["fieldType"]
        if ptype not in PROPERTY_TYPES:
            raise self._reject(400, f"Invalid type {ptype!r}: use one of {sorted(PROPERTY_TYPES)}")
        if field not in FIELD_TYPES:
            raise self._reject(
                400, f"Invalid fieldType {field!r}: use one of {sorted(FIELD_TYPES)}"
            )
        if field not in FIELD_FITS[ptype]:
            raise self._reject(
                400,
                f"fieldType {field!r} does not fit type {ptype!r}: use one of {sorted(FIELD_FITS[ptype])}",
            )
        if pdef["groupName"] not in self._groups[t]:
            raise self._reject(
                400, f"Property group {pdef['groupName']!r} does not exist for {t}; create it first"
            )
        if options is not None or ptype == "enumeration":
            if ptype not in ("enumeration", "bool"):
                if options:
                    raise self._reject(
                        400, f"options are only allowed for enumeration properties, not {ptype!r}"
                    )
                return
            if not isinstance(options, list) or (ptype == "enumeration" and not options):
                raise self._reject(
                    400,
                    "An enumeration property needs a non-empty 'options' list of {label, value}",
                )
            seen: set[str] = set()
            clean = []
            for i, opt in enumerate(options):
                if (
                    not isinstance(opt, dict)
                    or not opt.get("label")
                    or opt.get("value") in (None, "")
                ):
                    raise self._reject(400, f"Option {i} needs a 'label' and a 'value'")
                value = str(opt["value"])
                if value in seen:
                    raise self._reject(400, f"Duplicate option value {value!r}")
                seen.add(value)
                clean.append(
                    {
                        "label": str(opt["label"]),
                        "value": value,
                        "displayOrder": int(opt.get("displayOrder", i)),
                        "hidden": bool(opt.get("hidden", False)),
                        **({"description": opt["description"]} if opt.get("description") else {}),
                    }
                )
            pdef["options"] = clean

    @endpoint(
        "PATCH",
        r"/crm/v3/properties/(?P<otype>[^/]+)/(?P<pname>(?!groups$|batch$)[^/]+)",
        write=True,
    )
    def update_property(self, request: httpx.Request, otype: str, pname: str) -> httpx.Response:
        t = self._type(otype)
        pdef = self._props[t].get(pname)
        if pdef is None:
            raise self._reject(404, f"Property {pname} does not exist", category="OBJECT_NOT_FOUND")
        if pdef["hubspotDefined"]:
            raise self._reject(
                400,
                f"Property {pname} is defined by HubSpot and cannot be changed",
                category="VALIDATION_ERROR",
            )
        body = self._body(request)
        candidate = copy.deepcopy(pdef)
        for key in (
            "label",
            "description",
            "groupName",
            "type",
            "fieldType",
            "displayOrder",
            "hidden",
            "formField",
        ):
            if key in body:
                candidate[key] = body[key]
        self._check_definition(
            t,
            candidate,
            body.get(
                "options", candidate["options"] if candidate["type"] == "enumeration" else None
            ),
        )
        candidate["updatedAt"] = iso_ms(self._now_ms())
        self._props[t][pname] = candidate
        return json_response(200, self._render_property(candidate))

    @endpoint(
        "DELETE",
        r"/crm/v3/properties/(?P<otype>[^/]+)/(?P<pname>(?!groups$|batch$)[^/]+)",
        write=True,
    )
    def delete_property(self, request: httpx.Request, otype: str, pname: str) -> httpx.Response:
        t = self._type(otype)
        pdef = self._props[t].get(pname)
        if pdef is None:
            raise self._reject(404, f"Property {pname} does not exist", category="OBJECT_NOT_FOUND")
        if pdef["hubspotDefined"]:
            raise self._reject(400, f"Property {pname} is defined by HubSpot and cannot be deleted")
        self._archive_property(t, pname)
        return httpx.Response(204)

    def _archive_property(self, t: str, pname: str) -> None:
        """Move a property to the recycling bin: hidden from reads, values kept, restorable."""
        pdef = self._props[t].pop(pname)
        now = iso_ms(self._now_ms())
        pdef.update({"archived": True, "archivedAt": now, "updatedAt": now})
        self._archived_props[t][pname] = pdef

    @endpoint(
        "POST",
        r"/crm/schemas/2027-03-beta/objects/(?P<otype>[^/]+)/properties/batch/restore",
        write=True,
    )
    def restore_properties(self, request: httpx.Request, otype: str) -> httpx.Response:
        """Restore archived properties (HubSpot's batch restore; values come back with them)."""
        t = self._type(otype)
        inputs = self._body(request).get("inputs") or []
        started = iso_ms(self._now_ms())
        results, errors = [], []
        for item in inputs:
            name = str((item or {}).get("name"))
            pdef = self._archived_props[t].pop(name, None)
            if pdef is None:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": f"Archived property {name} does not exist",
                        "context": {"names": [name]},
                    }
                )
                continue
            pdef.pop("archivedAt", None)
            pdef.update({"archived": False, "updatedAt": iso_ms(self._now_ms())})
            self._props[t][name] = pdef
            results.append(self._render_property(pdef))
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_ms(self._now_ms()),
        }
        if errors:
            body.update({"numErrors": len(errors), "errors": errors})
        return json_response(207 if errors else 200, body)

    @endpoint(
        "POST",
        r"/crm/v3/properties/(?P<otype>[^/]+)/batch/(?P<op>read|create|archive)",
        write=_not_read,
    )
    def batch_properties(self, request: httpx.Request, otype: str, op: str) -> httpx.Response:
        t = self._type(otype)
        inputs = self._body(request).get("inputs") or []
        started = iso_ms(self._now_ms())
        results = []
        if op == "archive":
            for item in inputs:
                pdef = self._props[t].get(str((item or {}).get("name")))
                if pdef is not None and not pdef["hubspotDefined"]:
                    self._archive_property(t, pdef["name"])
            return httpx.Response(204)
        for item in inputs:
            if op == "read":
                pdef = self._props[t].get(str((item or {}).get("name")))
                if pdef is not None:
                    results.append(self._render_property(pdef))
            else:
                results.append(self._render_property(self._new_property(t, item)))
        body = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_ms(self._now_ms()),
        }
        return json_response(201 if op == "create" else 200, body)

    @endpoint("GET", r"/crm/v3/properties/(?P<otype>[^/]+)/groups/?")
    def list_groups(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        return json_response(200, {"results": [dict(g) for g in self._groups[t].values()]})

    @endpoint("GET", r"/crm/v3/properties/(?P<otype>[^/]+)/groups/(?P<gname>[^/]+)")
    def read_group(self, request: httpx.Request, otype: str, gname: str) -> httpx.Response:
        t = self._type(otype)
        group = self._groups[t].get(gname)
        if group is None:
            raise self._reject(
                404, f"Property group {gname} does not exist", category="OBJECT_NOT_FOUND"
            )
        return json_response(200, dict(group))

    @endpoint("POST", r"/crm/v3/properties/(?P<otype>[^/]+)/groups/?", write=True)
    def create_group(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        body = self._body(request)
        name, label = body.get("name"), body.get("label")
        if not name or not label:
            raise self._reject(400, "A property group needs 'name' and 'label'")
        if name in self._groups[t]:
            raise self._reject(
                409, f"Property group named '{name}' already exists.", category="CONFLICT"
            )
        self._archived_groups[t].pop(str(name), None)  # re-creating an archived group revives it
        if not NAME_RE.match(str(name)):
            raise self._reject(
                400, f"Invalid group name {name!r}: use lower-case letters, digits and _"
            )
        group = {
            "name": str(name),
            "label": str(label),
            "displayOrder": int(body.get("displayOrder", -1)),
            "archived": False,
        }
        self._groups[t][group["name"]] = group
        return json_response(201, dict(group))

    @endpoint("PATCH", r"/crm/v3/properties/(?P<otype>[^/]+)/groups/(?P<gname>[^/]+)", write=True)
    def update_group(self, request: httpx.Request, otype: str, gname: str) -> httpx.Response:
        t = self._type(otype)
        group = self._groups[t].get(gname)
        if group is None:
            raise self._reject(
                404, f"Property group {gname} does not exist", category="OBJECT_NOT_FOUND"
            )
        body = self._body(request)
        for key in ("label", "displayOrder"):
            if key in body:
                group[key] = body[key]
        return json_response(200, dict(group))

    @endpoint("DELETE", r"/crm/v3/properties/(?P<otype>[^/]+)/groups/(?P<gname>[^/]+)", write=True)
    def delete_group(self, request: httpx.Request, otype: str, gname: str) -> httpx.Response:
        t = self._type(otype)
        if gname in self._groups[t]:
            if any(p["groupName"] == gname for p in self._props[t].values()):
                raise self._reject(
                    400, f"Property group {gname} still has properties; move or delete them first"
                )
            group = self._groups[t].pop(gname)
            group["archived"] = True
            self._archived_groups[t][gname] = group
        return httpx.Response(204)
