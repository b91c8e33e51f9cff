"""HubSpot fake: the standard object types HubSpot has but the fake holds no records of.

Generic clients (meltano-tap-hubspot's discovery, for one) read the properties of every
standard type: products, line items, quotes, communications, postal mail, leads, goals…
HubSpot answers them for any portal (an empty portal has the type, with no records), so the
fake does too rather than "Unable to infer object type", which HubSpot says only for a type
that does not exist:

- ``GET /crm/v3/properties/{type}``: the three properties every object has (``hs_object_id``,
  ``hs_createdate``, ``hs_lastmodifieddate``) in the full property shape;
- ``GET /crm/v3|v4/objects/{type}``: ``{"results": []}``; ``POST …/search``:
  ``{"total": 0, "results": []}``; ``GET …/{id}``: 404 ``OBJECT_NOT_FOUND``.

Writes to these types stay unsupported (the routes for modelled types answer them).
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from hub.sandbox.base import json_response

# name -> (singular, objectTypeId): HubSpot's standard objects the fake does not model.
UNMODELLED: dict[str, tuple[str, str]] = {
    "products": ("product", "0-7"),
    "line_items": ("line_item", "0-8"),
    "quotes": ("quote", "0-14"),
    "communications": ("communication", "0-18"),
    "feedback_submissions": ("feedback_submission", "0-19"),
    "invoices": ("invoice", "0-53"),
    "subscriptions": ("subscription", "0-69"),
    "goal_targets": ("goal_target", "0-74"),
    "discounts": ("discount", "0-84"),
    "fees": ("fee", "0-85"),
    "taxes": ("tax", "0-86"),
    "payments": ("payment", "0-101"),
    "users": ("user", "0-115"),
    "postal_mail": ("postal_mail", "0-116"),
    "orders": ("order", "0-123"),
    "leads": ("lead", "0-136"),
    "carts": ("cart", "0-142"),
    "services": ("service", "0-162"),
    "courses": ("course", "0-410"),
    "listings": ("listing", "0-420"),
    "appointments": ("appointment", "0-421"),
}
_ALIASES = {
    **{name: name for name in UNMODELLED},
    **{singular: name for name, (singular, _) in UNMODELLED.items()},
    **{type_id: name for name, (_, type_id) in UNMODELLED.items()},
    "goals": "goal_targets",
}
_PATH = re.compile(
    r"^/crm/(?:v3/properties/(?P<ptype>[^/]+)/?"
    r"|v[34]/objects/(?P<otype>[^/]+)(?P<rest>/search|/[^/]+)?/?)$"
)
_ALWAYS = (
    ("hs_object_id", "Record ID", "number", "number"),
    ("hs_createdate", "Create Date", "datetime", "date"),
    ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date"),
)


def unmodelled_type(name: str) -> str | None:
    """The standard type ``name`` (plural, singular or type id) names, if not modelled."""
    return _ALIASES.get(name.lower())


class _Unmodelled:
    """Answers for the standard types the fake has no records of (see the module doc)."""

    def preroute(self, method: str, path: str) -> Any:
        found = _PATH.match(path)
        if not found:
            return None
        name = found["ptype"] or found["otype"]
        otype = unmodelled_type(name)
        if otype is None:
            return None
        rest = found["rest"]
        if found["ptype"] and method == "GET":
            return "unmodelled_properties", self._unmodelled_properties, {"otype": otype}
        if found["otype"] and method == "GET" and not rest:
            return "unmodelled_list", self._unmodelled_list, {"otype": otype}
        if found["otype"] and method == "POST" and rest == "/search":
            return "unmodelled_search", self._unmodelled_search, {"otype": otype}
        if found["otype"] and method == "GET" and rest:
            return "unmodelled_read", self._unmodelled_read, {"oid": rest[1:]}
        return None

    def _unmodelled_properties(self, request: httpx.Request, otype: str) -> httpx.Response:
        group = f"{UNMODELLED[otype][0]}information"
        results = [
            {
                "name": name,
                "label": label,
                "type": ptype,
                "fieldType": field,
                "description": "",
                "groupName": group,
                "options": [],
                "displayOrder": -1,
                "calculated": False,
                "externalOptions": False,
                "hasUniqueValue": False,
                "hidden": False,
                "hubspotDefined": True,
                "modificationMetadata": {
                    "archivable": False,
                    "readOnlyDefinition": True,
                    "readOnlyValue": True,
                },
                "formField": False,
                "archived": False,
            }
            for name, label, ptype, field in _ALWAYS
        ]
        return json_response(200, {"results": results})

    def _unmodelled_list(self, request: httpx.Request, otype: str) -> httpx.Response:
        return json_response(200, {"results": []})

    def _unmodelled_search(self, request: httpx.Request, otype: str) -> httpx.Response:
        return json_response(200, {"total": 0, "results": []})

    def _unmodelled_read(self, request: httpx.Request, oid: str) -> httpx.Response:
        return self.error(404, f"Object not found: {oid}.", "OBJECT_NOT_FOUND")  # type: ignore[attr-defined]
