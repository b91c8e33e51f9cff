"""Which HubSpot property each health field goes to: the hub's own, or one the admin mapped.

``[push.hubspot.properties]`` maps a health field onto a property the portal already has
(``score = "health_score"``). A mapped property is *not the hub's*: it is never created,
changed or archived, only written (and restored by a revert), and it is checked against
the portal's definition before anything is written (``mapping_problems``): its type must
fit the field, a mapped band needs the band options. ``labels``, ``descriptions``,
``group_name`` and ``group_label`` shape the properties the hub does own.

``FieldMapping`` gives the rest of the pusher one view of this: ``definitions()`` (the
hub's own properties as configured), ``field_map()`` (field → property), ``mapped()``
(property → field) and ``writable()`` (what a batch may ever contain).
"""

from __future__ import annotations

import copy
from typing import Any

from plugins.hubspot_pusher.client import HubSpotApi
from plugins.hubspot_pusher.properties import (
    BANDS,
    FIELD_PROPERTY,
    GROUP,
    OVERRIDE_PROPERTIES,
    PROPERTIES,
)

# Fields an admin may not map: the CSM override is read back by the sync under its own names.
UNMAPPABLE = frozenset({"override", "override_reason", "override_until"})

# field → the property types that can hold it (first = what the hub creates).
FITS: dict[str, tuple[str, ...]] = {
    "score": ("number", "string"),
    "band": ("enumeration", "string"),
    "trend_7d": ("number", "string"),
    "trend_30d": ("number", "string"),
    "drivers": ("string",),
    "updated_at": ("datetime", "date", "string"),
    "model": ("string", "enumeration"),
    "segment": ("string", "enumeration"),
    "coverage": ("number", "string"),
}
_NEEDS = {
    "number": "a number",
    "string": "a text",
    "enumeration": "a dropdown",
    "datetime": "a date-time",
    "date": "a date",
}


def mapping_errors(settings: Any) -> list[str]:
    """Config problems of ``[push.hubspot]``'s mapping and labels (no HubSpot needed)."""
    errors = []
    own_names = set(PROPERTIES)
    targets: dict[str, str] = {}
    for fld, prop in (settings.properties or {}).items():
        if fld not in FIELD_PROPERTY:
            errors.append(
                f"push.hubspot.properties.{fld}: no such health field "
                f"(fields: {', '.join(sorted(FITS))})"
            )
        elif fld in UNMAPPABLE:
            errors.append(
                f"push.hubspot.properties.{fld}: the override fields keep their own properties "
                f"({', '.join(OVERRIDE_PROPERTIES.values())}): the sync reads them back"
            )
        elif prop in own_names:
            errors.append(f"push.hubspot.properties.{fld}: {prop} is one of the hub's own names")
        elif prop in targets:
            errors.append(f"push.hubspot.properties: {targets[prop]} and {fld} both map to {prop}")
        targets[prop] = fld
    for table in ("labels", "descriptions"):
        for fld in getattr(settings, table) or {}:
            if fld not in FIELD_PROPERTY:
                errors.append(f"push.hubspot.{table}.{fld}: no such health field")
    return errors


class FieldMapping(HubSpotApi):
    """One view of the configured properties for the pusher's parts."""

    def group(self) -> dict[str, Any]:
        """The hub's property group as configured."""
        return {
            "name": self.settings.group_name,
            "label": self.settings.group_label,
            "displayOrder": GROUP["displayOrder"],
        }

    def mapped(self) -> dict[str, str]:
        """property → field, for the fields mapped onto the portal's own properties."""
        return {prop: fld for fld, prop in (self.settings.properties or {}).items()}

    def field_map(self) -> dict[str, str]:
        """field → the property it is written to (mapped, else the hub's own)."""
        mapped = self.settings.properties or {}
        return {fld: mapped.get(fld, prop) for fld, prop in FIELD_PROPERTY.items()}

    def definitions(self) -> dict[str, dict[str, Any]]:
        """The hub's own properties as configured (mapped fields have none)."""
        mapped = self.settings.properties or {}
        labels = self.settings.labels or {}
        descriptions = self.settings.descriptions or {}
        out = {}
        for fld, name in FIELD_PROPERTY.items():
            if fld in mapped:
                continue
            definition = copy.deepcopy(PROPERTIES[name])
            definition["groupName"] = self.settings.group_name
            if fld in labels:
                definition["label"] = labels[fld]
            if fld in descriptions:
                definition["description"] = descriptions[fld]
            out[name] = definition
        return out

    def writable(self) -> frozenset[str]:
        """Every property a batch may contain: the hub's own and the mapped ones."""
        return frozenset(self.definitions()) | frozenset(self.mapped())

    def mapping_problems(self, existing: dict[str, dict[str, Any]]) -> list[str]:
        """Why a mapped property cannot take its field (one line each, naming the fix)."""
        problems = []
        for prop, fld in self.mapped().items():
            fits = FITS[fld]
            have = existing.get(prop)
            where = f"[push.hubspot.properties] {fld} = {prop!r}"
            if have is None:
                problems.append(
                    f"{where}: HubSpot has no company property {prop}; create it as "
                    f"{_NEEDS[fits[0]]} property or remove the mapping"
                )
                continue
            ptype = str(have.get("type"))
            if ptype not in fits:
                needs = " or ".join(_NEEDS[f] for f in fits)
                problems.append(
                    f"{where}: {prop} is a {ptype} property ({have.get('fieldType')}); "
                    f"{fld} needs {needs} property"
                )
                continue
            if ptype == "enumeration" and fld == "band":
                values = {str(o.get("value")) for o in have.get("options") or []}
                lacking = [b for b in BANDS if b not in values]
                if lacking:
                    problems.append(
                        f"{where}: {prop} lacks the option(s) {', '.join(lacking)}; add them "
                        "in HubSpot (internal values as written)"
                    )
            if (have.get("modificationMetadata") or {}).get("readOnlyValue"):
                problems.append(f"{where}: {prop} is read-only in HubSpot; map a writable one")
        return problems

    def property_type(self, prop: str) -> str | None:
        """The type a property has (the hub's definition, or the portal's for mapped ones)."""
        own = PROPERTIES.get(prop)
        if own is not None:
            return str(own["type"])
        return getattr(self, "_portal_types", {}).get(prop)
