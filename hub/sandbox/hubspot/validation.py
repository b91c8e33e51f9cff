"""HubSpot fake: property value validation."""

from __future__ import annotations

import json
from typing import Any

import httpx

from hub.sandbox.hubspot.common import _Obj, _Reject, _remember
from hub.sandbox.hubspot.schema import (
    SINGULAR,
    TYPE_PAIR,
    iso_ms,
    parse_ms,
    problem,
)
from hub.sandbox.hubspot.webhooks import property_events

_TIMESTAMPED = {"tasks", "calls", "emails", "meetings", "notes"}
_CONTACTING = {"calls", "emails", "meetings"}  # what moves a company's "last contacted"


class _Validation:
    """Property value validation and conversion, as HubSpot answers it."""

    # -- property validation ----------------------------------------------------------------

    def _normalize(self, t: str, props: Any, *, creating: bool = False) -> dict[str, str | None]:
        """Validate property values for a write; ``None`` in the result means clear."""
        if props is None:
            props = {}
        if not isinstance(props, dict):
            raise self._reject(
                400, "Invalid input: 'properties' must be an object of name to value"
            )
        registry = self._props[t]
        problems: list[dict[str, Any]] = []
        out: dict[str, str | None] = {}
        for name, raw in props.items():
            pdef = registry.get(name)
            if pdef is None:
                problems.append(
                    problem(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST")
                )
                continue
            if pdef["modificationMetadata"]["readOnlyValue"]:
                problems.append(
                    problem(
                        name,
                        f'"{name}" is a read only property; its value cannot be set.',
                        "READ_ONLY_VALUE",
                    )
                )
                continue
            if raw is None or raw == "":
                out[name] = None
                continue
            value, issue = self._coerce(pdef, raw)
            if issue:
                problems.append(issue)
            else:
                out[name] = value
        if creating and t in _TIMESTAMPED and not out.get("hs_timestamp"):
            problems.append(
                problem(
                    "hs_timestamp",
                    f"hs_timestamp is required to create a {SINGULAR[t]}",
                    "REQUIRED_PROPERTY",
                )
            )
        if creating and t == "tickets" and not out.get("hs_pipeline_stage"):
            problems.append(
                problem(
                    "hs_pipeline_stage",
                    "hs_pipeline_stage is required to create a ticket",
                    "REQUIRED_PROPERTY",
                )
            )
        if problems:
            raise _Reject(self._invalid(problems))
        return out

    def _invalid(self, problems: list[dict[str, Any]]) -> httpx.Response:
        message = "Property values were not valid: " + json.dumps(problems, separators=(",", ":"))
        errors = [
            {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
            for p in problems
        ]
        return self.error(400, message, category="VALIDATION_ERROR", errors=errors)

    def _coerce(self, pdef: dict[str, Any], raw: Any) -> tuple[str | None, dict[str, Any] | None]:
        name, ptype = pdef["name"], pdef["type"]
        text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
        if ptype == "number":
            try:
                float(text)
            except ValueError:
                return None, problem(name, f"{text!r} is not a valid number", "INVALID_DECIMAL")
            return text.strip(), None
        if ptype in ("date", "datetime"):
            ms = parse_ms(raw)
            if ms is None:
                return None, problem(
                    name, f"{text!r} is not a valid date (use ms epoch or ISO 8601)", "INVALID_DATE"
                )
            if ptype == "date":
                if ms % 86_400_000:
                    return None, problem(name, f"{text!r} is not midnight UTC", "INVALID_DATE")
                return iso_ms(ms)[:10], None
            return iso_ms(ms), None
        if ptype == "bool":
            low = text.lower()
            if low not in ("true", "false"):
                return None, problem(name, f"{text!r} is not a valid boolean", "INVALID_BOOLEAN")
            return low, None
        if ptype == "enumeration":
            if name == "hubspot_owner_id":
                if text not in {o["id"] for o in self.world.owners}:
                    return None, problem(
                        name, f"{text!r} is not a valid owner id", "INVALID_OWNER_ID"
                    )
                return text, None
            allowed = [o["value"] for o in pdef["options"]]
            values = text.split(";") if pdef["fieldType"] == "checkbox" else [text]
            for v in values:
                if v not in allowed:
                    return None, problem(
                        name, f"{v} was not one of the allowed options: {allowed}", "INVALID_OPTION"
                    )
            return text, None
        return text, None

    def _unique_conflict(
        self, t: str, values: dict[str, str | None], exclude: int | None
    ) -> str | None:
        """Message for a value that a unique property (email, hasUniqueValue) already holds."""
        for name, value in values.items():
            if value is None or not self._props[t][name].get("hasUniqueValue"):
                continue
            other = self._by_property(t, name, value)
            if other is not None and other.id != exclude:
                return (
                    f"A {SINGULAR[t]} with {name}={value} already exists. Existing ID: {other.id}"
                )
        return None

    def _apply(
        self, t: str, obj: _Obj, values: dict[str, str | None], at: int, source: str = "API"
    ) -> None:
        """Write validated values (recording their history) and bump the modification time."""
        if self.sandbox.webhooks is not None:
            property_events(self, t, obj, values, at, source)
        at = max(at, obj.updated)
        for name, value in values.items():
            old = obj.props.get(name)
            if old != value:
                _remember(obj, name, old, value, at, source)
            if value is None:
                obj.props.pop(name, None)
            else:
                obj.props[name] = value
        if t == "contacts" and "associatedcompanyid" in values:
            company = values["associatedcompanyid"]
            self._set_primary_company(obj, int(float(company)) if company else None)
        if t == "tasks" and "hs_task_status" in values:
            if values["hs_task_status"] == "COMPLETED":
                obj.props["hs_task_completion_date"] = iso_ms(at)
            else:
                obj.props.pop("hs_task_completion_date", None)
        self._touch(t, obj, at)

    def _create(self, t: str, values: dict[str, str | None], associations: Any, at: int) -> _Obj:
        specs = self._association_specs(t, associations)
        props = {k: v for k, v in values.items() if v is not None}
        if t == "tasks":  # HubSpot's defaults for a task created without them
            props.setdefault("hs_task_status", "NOT_STARTED")
            props.setdefault("hs_task_type", "TODO")
        if t == "tickets":
            props.setdefault("hs_pipeline", "0")
        obj = self._insert(t, dict(props), at, at)
        self._apply(t, obj, props, at)
        for to, to_id, type_ids in specs:
            self._associate(t, obj.id, to, to_id, type_ids)
            if to == "companies" and t in _CONTACTING:
                self._contacted(to_id, props.get("hs_timestamp"), at)
        return obj

    def _contacted(self, company_id: int, when: str | None, at: int) -> None:
        """HubSpot keeps a company's "last contacted" at its latest logged call, e-mail or meeting."""
        company = self._live("companies", company_id)
        if company is None or not when:
            return
        old = company.props.get("notes_last_contacted")
        if old is None or parse_ms(old) < parse_ms(when):
            self._apply("companies", company, {"notes_last_contacted": when}, at, "CALCULATED")

    def _association_specs(self, t: str, associations: Any) -> list[tuple[str, int, list[int]]]:
        """Validate the ``associations`` of a create input: [(to type, to id, type ids)]."""
        specs = []
        for item in associations or []:
            try:
                to_id = int(item["to"]["id"])
                types = item["types"]
                type_ids = [int(x["associationTypeId"]) for x in types]
            except (KeyError, TypeError, ValueError):
                raise self._reject(
                    400,
                    "Invalid association: expected {'to': {'id'}, 'types': [{'associationCategory', 'associationTypeId'}]}",
                ) from None
            to = None
            for tid in type_ids:
                pair = TYPE_PAIR.get(tid)
                if pair is None or pair[0] != t:
                    raise self._reject(
                        400,
                        f"association type id {tid} is not valid for {SINGULAR[t]} associations",
                        category="VALIDATION_ERROR",
                    )
                to = pair[1]
            if to is None or self._live(to, to_id) is None:
                raise self._reject(
                    400,
                    f"One or more associations are invalid: {SINGULAR.get(to or '', 'object')} {to_id} does not exist",
                    category="VALIDATION_ERROR",
                )
            specs.append((to, to_id, type_ids))
        return specs
