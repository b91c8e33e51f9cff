"""HubSpot CRM vocabulary shared by the fake: object types, association type ids, the standard
property registry, value coercion and HubSpot's timestamp text.

Kept apart from ``hub.sandbox.hubspot`` (the fake's handlers and world) so that the facts about
HubSpot live in one short, readable place.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from typing import Any

from hub.sandbox.hubspot.activities import ACTIVITY_TYPES

# -- object types and associations ------------------------------------------------------------

ACTIVITIES = tuple(ACTIVITY_TYPES)  # calls, emails, meetings, notes, tickets
TYPES = ("companies", "contacts", "deals", "tasks", *ACTIVITIES)
TYPE_IDS = {
    "companies": "0-2",
    "contacts": "0-1",
    "deals": "0-3",
    "tasks": "0-27",
    **{t: a.type_id for t, a in ACTIVITY_TYPES.items()},
}
SINGULAR = {
    "companies": "company",
    "contacts": "contact",
    "deals": "deal",
    "tasks": "task",
    **{t: a.singular for t, a in ACTIVITY_TYPES.items()},
}
ALIASES = {
    **{t: t for t in TYPES},
    **{v: k for k, v in TYPE_IDS.items()},
    **{v: k for k, v in SINGULAR.items()},
}
CREATED_PROP = {
    "companies": "createdate",
    "contacts": "createdate",
    "deals": "createdate",
    "tasks": "hs_createdate",
    **{t: a.created_prop for t, a in ACTIVITY_TYPES.items()},
}
MODIFIED_PROP = {
    "companies": "hs_lastmodifieddate",
    "contacts": "lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    "tasks": "hs_lastmodifieddate",
    **{t: "hs_lastmodifieddate" for t in ACTIVITIES},
}
# What a list/read returns when no ``properties`` are asked for (HubSpot's default sets).
DEFAULT_PROPS = {
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
    "contacts": [
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ],
    "deals": [
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ],
    "tasks": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
    **{t: list(a.defaults) for t, a in ACTIVITY_TYPES.items()},
}
# Always present, even when ``properties`` narrows the set.
ALWAYS_PROPS = {t: ["hs_object_id", CREATED_PROP[t], MODIFIED_PROP[t]] for t in TYPES}
# Searched by the free-text ``query`` of a search request.
QUERY_PROPS = {
    "companies": ["name", "domain"],
    "contacts": ["email", "firstname", "lastname"],
    "deals": ["dealname"],
    "tasks": ["hs_task_subject"],
    **{t: list(a.query) for t, a in ACTIVITY_TYPES.items()},
}

# HubSpot-defined association type ids: (from, to) -> (default/unlabeled id, primary id).
ASSOC_TYPES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1),
    ("companies", "contacts"): (280, 2),
    ("deals", "companies"): (341, 5),
    ("companies", "deals"): (342, 6),
    ("deals", "contacts"): (3, None),
    ("contacts", "deals"): (4, None),
    ("tasks", "companies"): (192, None),
    ("companies", "tasks"): (191, None),
    ("tasks", "contacts"): (204, None),
    ("contacts", "tasks"): (203, None),
    ("tasks", "deals"): (216, None),
    ("deals", "tasks"): (215, None),
    **{(t, to): (ids[0], ids[2]) for t, a in ACTIVITY_TYPES.items() for to, ids in a.assoc.items()},
    **{(to, t): (ids[1], ids[3]) for t, a in ACTIVITY_TYPES.items() for to, ids in a.assoc.items()},
}
REVERSE_TYPE = {1: 2, 2: 1, 279: 280, 280: 279, 5: 6, 6: 5, 341: 342, 342: 341, 3: 4, 4: 3,
                192: 191, 191: 192, 204: 203, 203: 204, 216: 215, 215: 216}  # fmt: skip
for _a in ACTIVITY_TYPES.values():
    for _ids in _a.assoc.values():
        REVERSE_TYPE[_ids[0]], REVERSE_TYPE[_ids[1]] = _ids[1], _ids[0]
        if _ids[2] is not None and _ids[3] is not None:
            REVERSE_TYPE[_ids[2]], REVERSE_TYPE[_ids[3]] = _ids[3], _ids[2]
TYPE_PAIR = {tid: pair for pair, ids in ASSOC_TYPES.items() for tid in ids if tid is not None}
PRIMARY_TYPES = {ids[1] for ids in ASSOC_TYPES.values() if ids[1] is not None}

PIPELINE_STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
                   "decisionmakerboughtin", "contractsent", "closedwon", "closedlost"]  # fmt: skip
LIFECYCLE_STAGES = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
                    "opportunity", "customer", "evangelist", "other"]  # fmt: skip
TASK_STATUSES = ["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"]

PROPERTY_TYPES = {"string", "number", "date", "datetime", "enumeration", "bool"}
FIELD_TYPES = {"textarea", "text", "date", "file", "number", "select", "radio", "checkbox",
               "booleancheckbox", "calculation_equation", "phonenumber", "html"}  # fmt: skip
# Which field types fit which data type (HubSpot rejects other pairs).
FIELD_FITS = {
    "string": {"text", "textarea", "file", "phonenumber", "html", "select", "radio"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "bool": {"booleancheckbox", "select", "radio"},
}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
BATCH_MAX = 100
SEARCH_MAX_LIMIT = 200

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
EPOCH_NAIVE = dt.datetime(1970, 1, 1)


def to_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch."""
    return math.floor(value.timestamp()) * 1000 + value.microsecond // 1000


def iso_ms(ms: int) -> str:
    """HubSpot's timestamp text: ISO 8601 UTC with milliseconds and ``Z``."""
    return (EPOCH_NAIVE + dt.timedelta(milliseconds=ms)).isoformat(timespec="milliseconds") + "Z"


def parse_ms(value: Any) -> int | None:
    """A date value as HubSpot accepts it (ms epoch number/text, ISO datetime or date) → ms."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        if len(text) == 10:
            parsed = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
        else:
            parsed = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    return to_ms(parsed)


def std_property(name: str, label: str, ptype: str, field: str, group: str, *, options: list[str] | None = None,
         read_only: bool = False, unique: bool = False) -> dict[str, Any]:  # fmt: skip
    """A HubSpot-defined property definition in the API's shape."""
    return {
        "name": name,
        "label": label,
        "type": ptype,
        "fieldType": field,
        "description": "",
        "groupName": group,
        "options": [
            {"label": o.replace("_", " ").title(), "value": o, "displayOrder": i, "hidden": False}
            for i, o in enumerate(options or [])
        ],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": name == "hubspot_owner_id",
        "hasUniqueValue": unique,
        "hidden": False,
        "hubspotDefined": True,
        "modificationMetadata": {
            "archivable": False,
            "readOnlyDefinition": True,
            "readOnlyValue": read_only,
        },
        "formField": not read_only,
        "archived": False,
    }


def standard_properties() -> dict[str, dict[str, dict[str, Any]]]:
    owner = ("hubspot_owner_id", "Owner", "enumeration", "select")
    reg: dict[str, list[dict[str, Any]]] = {
        "companies": [
            std_property("name", "Company name", "string", "text", "companyinformation"),
            std_property("domain", "Company domain name", "string", "text", "companyinformation"),
            std_property(*owner, "companyinformation"),
            std_property(
                "lifecyclestage",
                "Lifecycle stage",
                "enumeration",
                "radio",
                "companyinformation",
                options=LIFECYCLE_STAGES,
            ),
            std_property(
                "annualrevenue", "Annual revenue", "number", "number", "companyinformation"
            ),
            std_property("industry", "Industry", "string", "text", "companyinformation"),
            std_property("city", "City", "string", "text", "companyinformation"),
            std_property("phone", "Phone number", "string", "phonenumber", "companyinformation"),
            std_property("description", "Description", "string", "textarea", "companyinformation"),
            std_property(
                "numberofemployees", "Number of employees", "number", "number", "companyinformation"
            ),
            std_property(
                "notes_last_contacted", "Last contacted", "datetime", "date", "companyinformation"
            ),
            std_property(
                "createdate",
                "Create date",
                "datetime",
                "date",
                "companyinformation",
                read_only=True,
            ),
            std_property(
                "hs_lastmodifieddate",
                "Last modified date",
                "datetime",
                "date",
                "companyinformation",
                read_only=True,
            ),
            std_property(
                "hs_object_id",
                "Record ID",
                "number",
                "number",
                "companyinformation",
                read_only=True,
            ),
            std_property(
                "hs_merged_object_ids",
                "Merged company IDs",
                "enumeration",
                "checkbox",
                "companyinformation",
                read_only=True,
            ),
            std_property(
                "hs_additional_domains",
                "Additional domains",
                "string",
                "textarea",
                "companyinformation",
            ),
        ],
        "contacts": [
            std_property("email", "Email", "string", "text", "contactinformation", unique=True),
            std_property("firstname", "First name", "string", "text", "contactinformation"),
            std_property("lastname", "Last name", "string", "text", "contactinformation"),
            std_property("jobtitle", "Job title", "string", "text", "contactinformation"),
            std_property("phone", "Phone number", "string", "phonenumber", "contactinformation"),
            std_property(
                "hs_email_optout",
                "Unsubscribed from all email",
                "bool",
                "booleancheckbox",
                "contactinformation",
            ),
            std_property(
                "associatedcompanyid",
                "Primary associated company ID",
                "number",
                "number",
                "contactinformation",
            ),
            std_property(
                "lifecyclestage",
                "Lifecycle stage",
                "enumeration",
                "radio",
                "contactinformation",
                options=LIFECYCLE_STAGES,
            ),
            std_property(*owner, "contactinformation"),
            std_property(
                "createdate",
                "Create date",
                "datetime",
                "date",
                "contactinformation",
                read_only=True,
            ),
            std_property(
                "lastmodifieddate",
                "Last modified date",
                "datetime",
                "date",
                "contactinformation",
                read_only=True,
            ),
            std_property(
                "hs_object_id",
                "Record ID",
                "number",
                "number",
                "contactinformation",
                read_only=True,
            ),
            std_property(
                "hs_merged_object_ids",
                "Merged contact IDs",
                "enumeration",
                "checkbox",
                "contactinformation",
                read_only=True,
            ),
        ],
        "deals": [
            std_property("dealname", "Deal name", "string", "text", "dealinformation"),
            std_property("amount", "Amount", "number", "number", "dealinformation"),
            std_property(
                "dealstage",
                "Deal stage",
                "enumeration",
                "radio",
                "dealinformation",
                options=PIPELINE_STAGES,
            ),
            std_property(
                "pipeline",
                "Pipeline",
                "enumeration",
                "select",
                "dealinformation",
                options=["default"],
            ),
            std_property("closedate", "Close date", "datetime", "date", "dealinformation"),
            std_property(
                "dealtype",
                "Deal type",
                "enumeration",
                "radio",
                "dealinformation",
                options=["newbusiness", "existingbusiness"],
            ),
            std_property(*owner, "dealinformation"),
            std_property(
                "createdate", "Create date", "datetime", "date", "dealinformation", read_only=True
            ),
            std_property(
                "hs_lastmodifieddate",
                "Last modified date",
                "datetime",
                "date",
                "dealinformation",
                read_only=True,
            ),
            std_property(
                "hs_object_id", "Record ID", "number", "number", "dealinformation", read_only=True
            ),
        ],
        "tasks": [
            std_property("hs_timestamp", "Due date", "datetime", "date", "task"),
            std_property("hs_task_subject", "Task title", "string", "text", "task"),
            std_property("hs_task_body", "Task notes", "string", "textarea", "task"),
            std_property(
                "hs_task_status",
                "Task status",
                "enumeration",
                "select",
                "task",
                options=TASK_STATUSES,
            ),
            std_property(
                "hs_task_priority",
                "Priority",
                "enumeration",
                "select",
                "task",
                options=["NONE", "LOW", "MEDIUM", "HIGH"],
            ),
            std_property(
                "hs_task_type",
                "Task type",
                "enumeration",
                "select",
                "task",
                options=["TODO", "CALL", "EMAIL"],
            ),
            std_property(*owner, "task"),
            std_property(
                "hs_task_completion_date",
                "Completed at",
                "datetime",
                "date",
                "task",
                read_only=True,
            ),
            std_property(
                "hs_createdate", "Create date", "datetime", "date", "task", read_only=True
            ),
            std_property(
                "hs_lastmodifieddate",
                "Last modified date",
                "datetime",
                "date",
                "task",
                read_only=True,
            ),
            std_property("hs_object_id", "Record ID", "number", "number", "task", read_only=True),
        ],
    }
    for t, a in ACTIVITY_TYPES.items():
        reg[t] = [
            std_property(name, label, ptype, fld, a.group[0], options=opts, read_only=ro)
            for name, label, ptype, fld, opts, ro in a.props
        ]
    return {t: {p["name"]: p for p in props} for t, props in reg.items()}


STANDARD_GROUPS = {
    "companies": [("companyinformation", "Company information")],
    "contacts": [("contactinformation", "Contact information")],
    "deals": [("dealinformation", "Deal information")],
    "tasks": [("task", "Task information")],
    **{t: [a.group] for t, a in ACTIVITY_TYPES.items()},
}


def v3_type_name(frm: str, to: str, tid: int) -> str:
    name = f"{SINGULAR[frm]}_to_{SINGULAR[to]}"
    return (
        name if tid in PRIMARY_TYPES or ASSOC_TYPES[(frm, to)][1] is None else name + "_unlabeled"
    )


def problem(name: str, message: str, code: str) -> dict[str, Any]:
    return {
        "isValid": False,
        "message": message,
        "error": code,
        "name": name,
        "localizedErrorMessage": message,
    }


def converter(ptype: str) -> Callable[[Any], Any]:
    if ptype == "number":
        return lambda x: float(x)
    if ptype in ("date", "datetime"):
        return parse_ms
    return lambda x: str(x).lower()


def sort_spec(spec: Any) -> tuple[str, bool]:
    """A sort as (property, descending): dicts, ``"name"``, ``"-name"`` or JSON text."""
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            try:
                spec = json.loads(text)
            except ValueError:
                return text, False
        else:
            return (text[1:], True) if text.startswith("-") else (text, False)
    if isinstance(spec, dict):
        return str(spec.get("propertyName", "")), str(
            spec.get("direction", "ASCENDING")
        ).upper().startswith("DESC")
    return str(spec), False
