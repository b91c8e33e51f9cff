"""Zendesk fake: organization fields, organization updates (single and bulk) and job statuses.

Facts followed (Zendesk Support API):

- ``/api/v2/organization_fields[.json]``: list (``organization_fields``, ``count``,
  ``next_page``), create (``{"organization_field": {...}}`` → 201), show, update (``type`` and
  ``key`` cannot change), delete (204; the key disappears from every organization). Types:
  checkbox, date, decimal, dropdown, integer, multiselect, regexp, text, textarea. A key is
  unique, starts with a letter and holds letters, digits and ``_``; errors are 422
  ``RecordInvalid`` with ``details`` per attribute.
- Every organization renders ``organization_fields`` with every active key (``null`` unset).
- ``PUT /api/v2/organizations/{id}.json`` updates one organization at once.
- ``PUT /api/v2/organizations/update_many.json`` with ``organizations: [...]`` (each with its
  ``id``) or ``?ids=`` plus one ``organization``: at most 100 per request, answered with a
  ``job_status`` (``queued``). ``GET /api/v2/job_statuses/{id}.json`` moves the job on at
  each poll: ``working`` (progress counted), then ``completed`` with per-item ``results``
  (``{"id", "action": "update", "success": true, "status": "Updated"}`` or ``{"id", "index",
  "success": false, "error", "details"}``). Changes are applied when the job runs, so a read
  before completion still shows the old values (as in Zendesk). ``GET
  /api/v2/job_statuses/show_many.json?ids=a,b`` polls several jobs at once (each moves on).
- ``GET /api/v2/organizations/show_many.json?ids=1,2`` (at most 100 ids) reads organizations
  with their ``organization_fields``.
- Only admins create, change or delete organization fields and set organization field values
  (agents may change only notes): with ``token_role = "agent"`` (tests) ``/users/me`` says so
  and those requests answer 403 ``Forbidden``.
- Fault ``job_item_failure`` (``ids=[...]``, optional ``error``/``details``) fails the named
  organizations inside the next matching ``update_many`` job, as Zendesk reports a record the
  job could not update.
- At most ``JOB_QUEUE_MAX`` (30) jobs may be queued or running per account; one more
  answers 429 ``TooManyJobs`` with ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from hub.sandbox.base import base_url, json_response, request_json, route
from hub.sandbox.zendesk.records import _iso

FIELD_TYPES = {
    "checkbox",
    "date",
    "decimal",
    "dropdown",
    "integer",
    "multiselect",
    "regexp",
    "text",
    "textarea",
}
BULK_MAX = 100
JOB_QUEUE_MAX = 30
"""Jobs an account may have queued or running at once (Zendesk's "job limit")."""
FIELD_BASE = 360_010_000_000
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class OrgField:
    id: int
    key: str
    type: str
    title: str
    description: str
    position: int
    active: bool
    created: int
    updated: int
    options: list[dict[str, Any]] = field(default_factory=list)
    regexp: str | None = None


@dataclass
class Job:
    id: str
    total: int
    items: list[dict[str, Any]]  # each: {"id": int, **changes}
    state: str = "queued"
    results: list[dict[str, Any]] | None = None
    failing: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Organizations this job fails (fault ``job_item_failure``): id → (error, details)."""


def _invalid(details: dict[str, list[dict[str, str]]]) -> tuple[int, dict[str, Any]]:
    return 422, {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": details,
    }


FORBIDDEN = {
    "error": "Forbidden",
    "description": "You do not have access to this page. Please contact the account owner "
    "of this help desk for further help.",
}


class _OrgFields:
    """Organization fields, organization updates and bulk jobs."""

    token_role: str = "admin"
    """The role of the user behind the token (tests set ``"agent"`` to remove admin rights)."""

    def _forbidden_unless_admin(self) -> httpx.Response | None:
        if self.token_role == "admin":
            return None
        return json_response(403, dict(FORBIDDEN))

    def _org_fields_state(self) -> tuple[dict[int, OrgField], dict[int, dict[str, Any]]]:
        return self._org_fields, self._org_values

    def org_field_values(self, org_id: int) -> dict[str, Any]:
        """``organization_fields`` of one organization: every active key, null when unset."""
        fields, values = self._org_fields_state()
        if not fields:
            return {}
        mine = values.get(org_id, {})
        return {f.key: mine.get(f.key) for f in fields.values() if f.active}

    def render_org_field(self, f: OrgField, request: httpx.Request | None) -> dict[str, Any]:
        base = base_url(request) if request is not None else "https://sandbox.zendesk.com"
        body: dict[str, Any] = {
            "url": f"{base}/api/v2/organization_fields/{f.id}.json",
            "id": f.id,
            "type": f.type,
            "key": f.key,
            "title": f.title,
            "description": f.description,
            "raw_title": f.title,
            "raw_description": f.description,
            "position": f.position,
            "active": f.active,
            "system": False,
            "regexp_for_validation": f.regexp,
            "created_at": _iso(f.created),
            "updated_at": _iso(f.updated),
        }
        if f.type in ("dropdown", "multiselect"):
            body["custom_field_options"] = [dict(o) for o in f.options]
        if f.type == "checkbox":
            body["tag"] = None
        return body

    # -- organization fields -------------------------------------------------------------

    @route("GET", r"/api/v2/organization_fields(?:\.json)?", name="list_organization_fields")
    def list_organization_fields(self, request: httpx.Request) -> httpx.Response:
        fields, _ = self._org_fields_state()
        rendered = [
            self.render_org_field(f, request)
            for f in sorted(fields.values(), key=lambda f: (f.position, f.id))
        ]
        return json_response(
            200,
            {
                "organization_fields": rendered,
                "next_page": None,
                "previous_page": None,
                "count": len(rendered),
            },
        )

    @route("GET", r"/api/v2/organization_fields/(?P<field_id>\d+)(?:\.json)?")
    def show_organization_field(self, request: httpx.Request, field_id: str) -> httpx.Response:
        fields, _ = self._org_fields_state()
        f = fields.get(int(field_id))
        if f is None:
            return self._record_not_found()
        return json_response(200, {"organization_field": self.render_org_field(f, request)})

    @route("POST", r"/api/v2/organization_fields(?:\.json)?")
    def create_organization_field(self, request: httpx.Request) -> httpx.Response:
        fields, _ = self._org_fields_state()
        if (refused := self._forbidden_unless_admin()) is not None:
            return refused
        data = self._payload(request, "organization_field")
        if isinstance(data, httpx.Response):
            return data
        details: dict[str, list[dict[str, str]]] = {}
        key, ftype, title = data.get("key"), data.get("type"), data.get("title")
        if not title:
            details["title"] = [{"description": "Title: cannot be blank", "error": "BlankValue"}]
        if ftype not in FIELD_TYPES:
            details["type"] = [
                {
                    "description": f"Type: {ftype!r} is not a valid field type",
                    "error": "InvalidValue",
                }
            ]
        if not key:
            details["key"] = [{"description": "Key: cannot be blank", "error": "BlankValue"}]
        elif not _KEY.match(str(key)):
            details["key"] = [{"description": "Key: is invalid", "error": "InvalidValue"}]
        elif any(f.key == key for f in fields.values()):
            details["key"] = [
                {"description": "Key: has already been taken", "error": "DuplicateValue"}
            ]
        options = self._field_options(data, ftype, details, next_id=FIELD_BASE + 500_000)
        if details:
            status, body = _invalid(details)
            return json_response(status, body)
        now = self.world.clock.ts()
        f = OrgField(
            id=FIELD_BASE + len(fields) + 1,
            key=str(key),
            type=str(ftype),
            title=str(title),
            description=str(data.get("description") or ""),
            position=int(data.get("position") or len(fields)),
            active=bool(data.get("active", True)),
            created=now,
            updated=now,
            options=options,
            regexp=data.get("regexp_for_validation"),
        )
        fields[f.id] = f
        return json_response(201, {"organization_field": self.render_org_field(f, request)})

    def _field_options(
        self, data: dict[str, Any], ftype: Any, details: dict[str, Any], next_id: int
    ) -> list[dict[str, Any]]:
        if ftype not in ("dropdown", "multiselect"):
            return []
        raw = data.get("custom_field_options") or []
        out = []
        for n, opt in enumerate(raw if isinstance(raw, list) else []):
            if not isinstance(opt, dict) or not opt.get("name") or not opt.get("value"):
                details["custom_field_options"] = [
                    {
                        "description": "Field options: name and value are required",
                        "error": "InvalidValue",
                    }
                ]
                return []
            out.append(
                {
                    "id": opt.get("id") or next_id + n,
                    "name": str(opt["name"]),
                    "raw_name": str(opt["name"]),
                    "value": str(opt["value"]),
                    "default": False,
                }
            )
        if not out:
            details["custom_field_options"] = [
                {
                    "description": "Field options: at least one option is required",
                    "error": "BlankValue",
                }
            ]
        return out

    @route("PUT", r"/api/v2/organization_fields/(?P<field_id>\d+)(?:\.json)?")
    def update_organization_field(self, request: httpx.Request, field_id: str) -> httpx.Response:
        fields, _ = self._org_fields_state()
        if (refused := self._forbidden_unless_admin()) is not None:
            return refused
        f = fields.get(int(field_id))
        if f is None:
            return self._record_not_found()
        data = self._payload(request, "organization_field")
        if isinstance(data, httpx.Response):
            return data
        details: dict[str, list[dict[str, str]]] = {}
        if "type" in data and data["type"] != f.type:
            details["type"] = [{"description": "Type: cannot be changed", "error": "InvalidValue"}]
        if "key" in data and data["key"] != f.key:
            details["key"] = [{"description": "Key: cannot be changed", "error": "InvalidValue"}]
        if "title" in data and not data["title"]:
            details["title"] = [{"description": "Title: cannot be blank", "error": "BlankValue"}]
        options = (
            self._field_options(data, f.type, details, next_id=f.id * 10)
            if "custom_field_options" in data
            else f.options
        )
        if details:
            status, body = _invalid(details)
            return json_response(status, body)
        for name in ("title", "description", "position", "active"):
            if name in data:
                setattr(f, name, data[name])
        f.options = options
        f.updated = self.world.clock.ts()
        return json_response(200, {"organization_field": self.render_org_field(f, request)})

    @route("DELETE", r"/api/v2/organization_fields/(?P<field_id>\d+)(?:\.json)?")
    def delete_organization_field(self, request: httpx.Request, field_id: str) -> httpx.Response:
        fields, values = self._org_fields_state()
        if (refused := self._forbidden_unless_admin()) is not None:
            return refused
        f = fields.pop(int(field_id), None)
        if f is None:
            return self._record_not_found()
        for mine in values.values():
            mine.pop(f.key, None)
        return httpx.Response(204)

    # -- organization updates ------------------------------------------------------------

    def _payload(self, request: httpx.Request, root: str) -> Any:
        try:
            payload = request_json(request) or {}
        except ValueError:
            return self.error(400, "InvalidJSON", "The request body is not valid JSON")
        data = payload.get(root) if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            status, body = _invalid(
                {root: [{"description": f"{root}: is required", "error": "BlankValue"}]}
            )
            return json_response(status, body)
        return data

    def _check_org_changes(self, changes: dict[str, Any]) -> str | None:
        """Why a change set is invalid (None when it is fine)."""
        fields, _ = self._org_fields_state()
        by_key = {f.key: f for f in fields.values() if f.active}
        values = changes.get("organization_fields") or {}
        if not isinstance(values, dict):
            return "organization_fields must be an object"
        for key, value in values.items():
            f = by_key.get(key)
            if f is None or value is None:
                continue  # Zendesk ignores unknown keys
            ok = {
                "integer": isinstance(value, int)
                and not isinstance(value, bool)
                or isinstance(value, str)
                and value.lstrip("-").isdigit(),
                "decimal": isinstance(value, (int, float))
                and not isinstance(value, bool)
                or isinstance(value, str)
                and _is_number(value),
                "checkbox": isinstance(value, bool),
                "date": isinstance(value, str) and bool(_DATE.match(value)) and _is_date(value),
                "dropdown": value in {o["value"] for o in f.options},
                "multiselect": isinstance(value, list)
                and all(v in {o["value"] for o in f.options} for v in value),
                "regexp": isinstance(value, str)
                and (f.regexp is None or re.fullmatch(f.regexp, value) is not None),
            }.get(f.type, isinstance(value, (str, int, float)))
            if not ok:
                return f"{f.title}: {value!r} is not a valid {f.type} value"
        return None

    def _apply_org_changes(self, org_id: int, changes: dict[str, Any], at: int) -> None:
        fields, values = self._org_fields_state()
        active = {f.key for f in fields.values() if f.active}
        plain = {k: v for k, v in changes.items() if k in ("name", "notes", "tags", "external_id")}
        mine = values.setdefault(org_id, {})
        for key, value in (changes.get("organization_fields") or {}).items():
            if key in active:
                mine[key] = value
        self.update_organization(org_id, at=at, **plain)

    @route("PUT", r"/api/v2/organizations/(?P<org_id>\d+)(?:\.json)?")
    def update_one_organization(self, request: httpx.Request, org_id: str) -> httpx.Response:
        org = self.orgs.get(int(org_id))
        if org is None:
            return self._record_not_found()
        data = self._payload(request, "organization")
        if isinstance(data, httpx.Response):
            return data
        if data.get("organization_fields") and (refused := self._forbidden_unless_admin()):
            return refused
        problem = self._check_org_changes(data)
        if problem:
            status, body = _invalid(
                {"organization_fields": [{"description": problem, "error": "InvalidValue"}]}
            )
            return json_response(status, body)
        self._apply_org_changes(org.id, data, self.world.clock.ts())
        return json_response(200, {"organization": self.render_org(org, request)})

    @route("PUT", r"/api/v2/organizations/update_many(?:\.json)?")
    def update_many_organizations(self, request: httpx.Request) -> httpx.Response:
        self._org_fields_state()
        try:
            payload = request_json(request) or {}
        except ValueError:
            return self.error(400, "InvalidJSON", "The request body is not valid JSON")
        ids_param = request.url.params.get("ids")
        if ids_param:
            one = payload.get("organization") if isinstance(payload, dict) else None
            try:
                ids = [int(x) for x in ids_param.split(",") if x.strip()]
            except ValueError:
                return self.error(400, "InvalidValue", "ids must be a comma-separated list of ids")
            items = [{"id": i, **(one or {})} for i in ids]
        else:
            items = payload.get("organizations") if isinstance(payload, dict) else None
            if not isinstance(items, list) or not items:
                status, body = _invalid(
                    {
                        "organizations": [
                            {"description": "organizations: is required", "error": "BlankValue"}
                        ]
                    }
                )
                return json_response(status, body)
        if len(items) > BULK_MAX:
            return self.error(
                400,
                "TooManyValues",
                f"You can pass in up to {BULK_MAX} records at a time (got {len(items)})",
            )
        if any(isinstance(i, dict) and i.get("organization_fields") for i in items) and (
            refused := self._forbidden_unless_admin()
        ):
            return refused
        if sum(1 for j in self._jobs.values() if j.state != "completed") >= JOB_QUEUE_MAX:
            body = {
                "error": "TooManyJobs",
                "description": f"Number of allowed concurrent job requests exceeded ({JOB_QUEUE_MAX})",
            }
            return json_response(429, body, {"retry-after": "1"})
        digest = hashlib.md5(f"{len(self._jobs)}:{self.world.seed}".encode()).hexdigest()
        job = Job(
            id=digest, total=len(items), items=[dict(i) for i in items if isinstance(i, dict)]
        )
        fault = self.faults.take(request, {"job_item_failure"})
        if fault is not None:
            job.failing = {
                int(i): (
                    str(fault.params.get("error") or "RecordInvalid"),
                    str(fault.params.get("details") or "Record could not be saved"),
                )
                for i in fault.params.get("ids") or []
            }
        self._jobs[job.id] = job
        return json_response(200, {"job_status": self._render_job(job, request)})

    def _render_job(self, job: Job, request: httpx.Request | None) -> dict[str, Any]:
        base = base_url(request) if request is not None else "https://sandbox.zendesk.com"
        done = {"queued": None, "working": job.total // 2, "completed": job.total}[job.state]
        return {
            "id": job.id,
            "url": f"{base}/api/v2/job_statuses/{job.id}.json",
            "total": job.total,
            "progress": done,
            "status": job.state,
            "message": "Completed at " + _iso(self.world.clock.ts())
            if job.state == "completed"
            else None,
            "results": job.results,
        }

    def run_jobs(self) -> None:
        """Finish every queued job now (tests)."""
        self._org_fields_state()
        for job in self._jobs.values():
            if job.state != "completed":
                self._finish(job)

    def _finish(self, job: Job) -> None:
        now = self.world.clock.ts()
        results: list[dict[str, Any]] = []
        for index, item in enumerate(job.items):
            org_id = item.get("id")
            org = self.orgs.get(org_id) if isinstance(org_id, int) else None
            if org is None:
                results.append(
                    {
                        "id": org_id,
                        "index": index,
                        "success": False,
                        "error": "RecordNotFound",
                        "details": "Organization not found",
                    }  # fmt: skip
                )
                continue
            if org.id in job.failing:
                error, details = job.failing[org.id]
                results.append(
                    {
                        "id": org.id,
                        "index": index,
                        "success": False,
                        "error": error,
                        "details": details,
                    }
                )
                continue
            problem = self._check_org_changes(item)
            if problem:
                results.append(
                    {
                        "id": org_id,
                        "index": index,
                        "success": False,
                        "error": "RecordInvalid",
                        "details": problem,
                    }  # fmt: skip
                )
                continue
            self._apply_org_changes(org.id, item, now)
            results.append({"id": org.id, "action": "update", "success": True, "status": "Updated"})
        job.results = results
        job.state = "completed"

    def _poll(self, job: Job) -> None:
        """A poll moves the job on: queued → working → completed (real jobs take a while)."""
        if job.state == "queued":
            job.state = "working"
        elif job.state == "working":
            self._finish(job)

    @route("GET", r"/api/v2/job_statuses/show_many(?:\.json)?")
    def show_many_job_statuses(self, request: httpx.Request) -> httpx.Response:
        self._org_fields_state()
        ids = [i for i in (request.url.params.get("ids") or "").split(",") if i.strip()]
        if not ids:
            return self.error(400, "InvalidValue", "ids is required")
        if len(ids) > BULK_MAX:
            return self.error(
                400, "TooManyValues", f"You can pass in up to {BULK_MAX} ids at a time"
            )
        found = [self._jobs[i.strip()] for i in ids if i.strip() in self._jobs]
        for job in found:
            self._poll(job)
        return json_response(
            200, {"job_statuses": [self._render_job(job, request) for job in found]}
        )

    @route("GET", r"/api/v2/job_statuses/(?P<job_id>[0-9a-f]+)(?:\.json)?")
    def show_job_status(self, request: httpx.Request, job_id: str) -> httpx.Response:
        self._org_fields_state()
        job = self._jobs.get(job_id)
        if job is None:
            return self._record_not_found()
        self._poll(job)
        return json_response(200, {"job_status": self._render_job(job, request)})

    @route("GET", r"/api/v2/organizations/show_many(?:\.json)?")
    def show_many_organizations(self, request: httpx.Request) -> httpx.Response:
        raw = [i for i in (request.url.params.get("ids") or "").split(",") if i.strip()]
        try:
            ids = [int(i) for i in raw]
        except ValueError:
            return self.error(400, "InvalidValue", "ids must be a comma-separated list of ids")
        if not ids:
            return self.error(400, "InvalidValue", "ids is required")
        if len(ids) > BULK_MAX:
            return self.error(
                400, "TooManyValues", f"You can pass in up to {BULK_MAX} ids at a time"
            )
        orgs = [self.render_org(self.orgs[i], request) for i in ids if i in self.orgs]
        return json_response(
            200,
            {"organizations": orgs, "next_page": None, "previous_page": None, "count": len(orgs)},
        )


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True
