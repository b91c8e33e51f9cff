"""The HubSpot company properties the hub owns: names, types, labels and descriptions.

This is the one place HubSpot property names are spelled, but for the CSM override fields,
which the HubSpot mapping reads back on the sync side: those live with the mapping
(``mappings.hubspot.vocabulary.OVERRIDE_PROPERTIES``) and are imported here, so the names
written and read can never drift apart (a mapping never imports a plugin).
"""

from __future__ import annotations

from typing import Any

from hub import clock
from mappings.hubspot.vocabulary import OVERRIDE_PROPERTIES

OBJECT_TYPE = "companies"
GROUP = {"name": "hub_health", "label": "Customer health (hub)", "displayOrder": -1}
BANDS = ("green", "yellow", "red", "churned")


_BY_HUB = " Written by the hub; edits here are overwritten on the next push."
_SCALE = "0 (at risk) to 100 (healthy)"


def _prop(
    name: str, label: str, ptype: str, field: str, description: str, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": ptype,
        "fieldType": field,
        "groupName": GROUP["name"],
        "description": description,
        **extra,
    }


PROPERTIES: dict[str, dict[str, Any]] = {
    p["name"]: p
    for p in (
        _prop(
            "hub_health_score",
            "Health score",
            "number",
            "number",
            f"Customer health, {_SCALE}. A CSM override (Health override) replaces it "
            "until its date." + _BY_HUB,
        ),
        _prop(
            "hub_health_band",
            "Health band",
            "enumeration",
            "select",
            "Green (80 and above by default), yellow (40–79) or red (below 40); churned "
            "when every subscription has ended (outside the bands)." + _BY_HUB,
            options=[
                {"label": band.title(), "value": band, "displayOrder": i}
                for i, band in enumerate(BANDS)
            ],
        ),
        _prop(
            "hub_health_trend_7d",
            "Health trend (7 days)",
            "number",
            "number",
            "Points the computed score moved over the last 7 days (negative = worse); "
            "empty without a score 7–10 days old." + _BY_HUB,
        ),
        _prop(
            "hub_health_trend_30d",
            "Health trend (30 days)",
            "number",
            "number",
            "Points the computed score moved over the last 30 days (negative = worse); "
            "empty without a score 30–37 days old." + _BY_HUB,
        ),
        _prop(
            "hub_health_drivers",
            "Health drivers",
            "string",
            "textarea",
            "What moves the score most, in plain words, worst first." + _BY_HUB,
        ),
        _prop(
            "hub_health_updated_at",
            "Health updated at",
            "datetime",
            "date",
            "When the hub last computed a score that changed what is shown here." + _BY_HUB,
        ),
        _prop(
            "hub_health_model",
            "Health model",
            "string",
            "text",
            "The scoring model used for this company (chosen by segment)." + _BY_HUB,
        ),
        _prop(
            "hub_health_segment",
            "Health segment",
            "string",
            "text",
            "The segment that chose the model (plan, MRR or lifecycle rules)." + _BY_HUB,
        ),
        _prop(
            "hub_health_coverage",
            "Health coverage (%)",
            "number",
            "number",
            "How much of the scoring model had data for this company, 0–100 %. Below the "
            "configured minimum (50 % by default) the score rests on too little to trust "
            "on its own." + _BY_HUB,
        ),
        _prop(
            OVERRIDE_PROPERTIES["value"],
            "Health override (CSM)",
            "number",
            "number",
            f"Set this ({_SCALE}) to replace the computed score with your own judgement; "
            "fill in the reason and the date it holds until. Clear it to return to the "
            "computed score.",
        ),
        _prop(
            OVERRIDE_PROPERTIES["reason"],
            "Health override reason",
            "string",
            "textarea",
            "Why the override is set (shown with the score). Set by a CSM with Health override.",
        ),
        # A date (inclusive), like the health engine's overrides; HubSpot stores midnight UTC.
        _prop(
            OVERRIDE_PROPERTIES["until"],
            "Health override until",
            "date",
            "date",
            "The last day the override holds (inclusive); after it the computed score "
            "returns. Empty: it holds until Health override is cleared.",
        ),
    )
}
ALLOWED_PROPERTIES = frozenset(PROPERTIES)
"""The only company properties the hub ever writes."""

FIELD_PROPERTY = {
    "score": "hub_health_score",
    "band": "hub_health_band",
    "trend_7d": "hub_health_trend_7d",
    "trend_30d": "hub_health_trend_30d",
    "drivers": "hub_health_drivers",
    "updated_at": "hub_health_updated_at",
    "model": "hub_health_model",
    "segment": "hub_health_segment",
    "override": OVERRIDE_PROPERTIES["value"],
    "override_reason": OVERRIDE_PROPERTIES["reason"],
    "override_until": OVERRIDE_PROPERTIES["until"],
    "coverage": "hub_health_coverage",
}
"""Health field (``hub.push.HEALTH_FIELDS``) → the HubSpot property it is written to."""
UPDATED_AT = FIELD_PROPERTY["updated_at"]
BAND = FIELD_PROPERTY["band"]


def foreign(existing: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """Why an existing property is not the hub's (None when it is)."""
    if existing.get("groupName") != wanted["groupName"]:
        return f"belongs to group {existing.get('groupName')!r}, not {wanted['groupName']!r}"
    if existing.get("type") != wanted["type"]:
        return f"has type {existing.get('type')!r}, not {wanted['type']!r}"
    return None


def missing_options(existing: dict[str, Any], wanted: dict[str, Any]) -> list[dict[str, Any]]:
    """Options of an enumeration the hub needs that the existing property lacks."""
    if wanted["type"] != "enumeration":
        return []
    values = {str(o.get("value")) for o in existing.get("options") or []}
    return [o for o in wanted["options"] if o["value"] not in values]


def same(prop: str, old: str, new: str, ptype: str | None = None) -> bool:
    """Equal as HubSpot stores them (numbers as numbers, datetimes as instants); ``ptype``
    for a property that is not the hub's own (a mapped one: the portal's type)."""
    if old == new:
        return True
    if old in ("", None) or new in ("", None):
        return False
    ptype = ptype or PROPERTIES.get(prop, {}).get("type")
    try:
        if ptype == "number":
            return float(old) == float(new)
        if ptype == "datetime":
            return clock.parse(old) == clock.parse(new)
        if ptype == "date":
            return str(old)[:10] == str(new)[:10]
    except (TypeError, ValueError):
        return False
    return False
