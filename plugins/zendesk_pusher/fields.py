"""The Zendesk organization fields the hub writes: definitions, ownership and value shapes.

The hub writes five health fields (``HUB_FIELDS``) to organizations. By default it creates
its own organization field for each (key ``<key_prefix><field>``, a description ending in
``MARKER``), and it only ever writes, and on uninstall only ever deletes, fields that carry
both its key prefix and its marker: a field of that key that someone else made is reported
and left alone. An admin may instead map a hub field onto an organization field that
already exists (``[push.zendesk.fields]``); that field's type is checked before anything is
written (``mapping_problem``) and uninstall never deletes it.

Values travel as the hub's text (``""`` = unset) in the push log and are converted to the
field's JSON shape only on the way out (``to_zendesk``) and back (``from_zendesk``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HUB_FIELDS = ("score", "band", "trend_7d", "trend_30d", "top_driver")
"""The health fields (``hub.push.HEALTH_FIELDS`` names) written to Zendesk organizations."""

BANDS = ("green", "yellow", "red", "churned")
MARKER = "[hub-managed field]"
"""Ends the description of every organization field the hub created: how it knows its own."""

_BY_HUB = f" Written by the hub; edits here are overwritten on the next push. {MARKER}"

# hub field → (type, title, description); dropdown options come from BANDS.
DEFINITIONS: dict[str, tuple[str, str, str]] = {
    "score": (
        "integer",
        "Health score",
        "Customer health, 0 (at risk) to 100 (healthy), as computed by the hub.",
    ),
    "band": (
        "dropdown",
        "Health band",
        "Green, yellow or red by the hub's band thresholds; churned when every "
        "subscription has ended (outside the bands).",
    ),
    "trend_7d": (
        "integer",
        "Health trend (7 days)",
        "Points the score moved over the last 7 days (negative = worse); empty without a "
        "score 7–10 days old.",
    ),
    "trend_30d": (
        "integer",
        "Health trend (30 days)",
        "Points the score moved over the last 30 days (negative = worse); empty without a "
        "score 30–37 days old.",
    ),
    "top_driver": (
        "text",
        "Health: top driver",
        "What moves the score most, in plain words.",
    ),
}

# Which existing field types can carry a hub field when an admin maps it.
COMPATIBLE: dict[str, tuple[str, ...]] = {
    "score": ("integer", "decimal", "text"),
    "band": ("dropdown", "text"),
    "trend_7d": ("integer", "decimal", "text"),
    "trend_30d": ("integer", "decimal", "text"),
    "top_driver": ("text", "textarea"),
}


@dataclass
class Target:
    """Where one hub field goes: the organization field's key, type and band options."""

    hub_field: str
    key: str
    type: str
    owned: bool
    """True for a field the hub created (uninstall deletes it); False for a mapped one."""
    field_id: int | None = None
    options: dict[str, str] = field(default_factory=dict)
    """Dropdown only: band → option value (the tag Zendesk stores)."""

    def to_zendesk(self, value: str) -> Any:
        """The JSON value to send for the hub's text ``value`` (None clears the field)."""
        if value == "":
            return None
        if self.type == "integer":
            return int(round(float(value)))
        if self.type == "decimal":
            return float(value)
        if self.type == "dropdown":
            return self.options[value]
        # Sent whole (already cut to [push] drivers_max_chars), so reading it back compares.
        return value

    def from_zendesk(self, value: Any) -> str:
        """The hub's text for a value read from an organization ("" when unset or foreign)."""
        if value is None or value == "":
            return ""
        if self.type == "dropdown":
            for band, option in self.options.items():
                if option == value:
                    return band
            return str(value)
        if self.type in ("integer", "decimal"):
            try:
                return str(int(round(float(value))))
            except (TypeError, ValueError):
                return str(value)
        return str(value)


def own_key(prefix: str, hub_field: str) -> str:
    return f"{prefix}{hub_field}"


def band_option(prefix: str, band: str) -> str:
    """The option value (a Zendesk tag) of a band in the hub's own dropdown."""
    return f"{prefix}{band}"


def definition(prefix: str, hub_field: str, title: str | None = None) -> dict[str, Any]:
    """The ``organization_field`` body that creates the hub's field for ``hub_field``."""
    ftype, default_title, description = DEFINITIONS[hub_field]
    body: dict[str, Any] = {
        "type": ftype,
        "key": own_key(prefix, hub_field),
        "title": title or default_title,
        "description": description + _BY_HUB,
        "active": True,
    }
    if ftype == "dropdown":
        body["custom_field_options"] = [
            {"name": band.title(), "value": band_option(prefix, band)} for band in BANDS
        ]
    return body


def is_ours(existing: dict[str, Any], prefix: str) -> bool:
    """Whether an organization field was created by the hub (key prefix and marker)."""
    return str(existing.get("key") or "").startswith(prefix) and MARKER in str(
        existing.get("description") or existing.get("raw_description") or ""
    )


def options_of(existing: dict[str, Any]) -> dict[str, str]:
    """A dropdown's band → option value, matching each band by option value or name."""
    out: dict[str, str] = {}
    for option in existing.get("custom_field_options") or []:
        value, name = str(option.get("value") or ""), str(option.get("name") or "")
        for band in BANDS:
            if band in out:
                continue
            by_value = value.lower() == band or value.lower().endswith(f"_{band}")
            if by_value or name.strip().lower() == band:
                out[band] = value
    return out


def mapping_problem(hub_field: str, existing: dict[str, Any] | None, key: str) -> str | None:
    """Why organization field ``key`` cannot carry ``hub_field`` (None when it can)."""
    if existing is None:
        return f"no organization field has the key {key!r}"
    ftype = str(existing.get("type") or "")
    allowed = COMPATIBLE[hub_field]
    if ftype not in allowed:
        return f"{key!r} is a {ftype} field; {hub_field} needs {' or '.join(allowed)}"
    if not existing.get("active", True):
        return f"{key!r} is inactive in Zendesk"
    if ftype == "dropdown":
        missing = [b for b in BANDS[:3] if b not in options_of(existing)]
        if missing:
            return f"dropdown {key!r} has no option for {', '.join(missing)}"
    return None
