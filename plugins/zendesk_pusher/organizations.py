"""Health fields on Zendesk organizations: the hub's fields set up once, then only the values
that changed, sent in bulk and confirmed record by record through the job status.

* **Fields.** One read of ``/api/v2/organization_fields`` per push. A hub field without its
  organization field gets one created (``POST``; a 422 "has already been taken" or an answer
  lost in transit is settled by reading the list again). A field of the hub's key that lacks
  the hub's marker is someone else's: reported, never written. Mapped fields
  (``[push.zendesk.fields]``) are type-checked first; a mismatch stops the push before any
  write with one line naming the field and the fix.
* **Only changed values.** ``_hub_push_log`` holds what was last written per organization
  and field key; equal values are not sent. Organizations the log has never seen are read
  first (``organizations/show_many``, 100 per request) so a rebuilt database does not
  rewrite Zendesk; a field created in this push is empty everywhere, so nothing is read.
* **Bulk writes.** ``PUT /api/v2/organizations/update_many`` with at most 100 organizations
  each, answered by a job; the jobs are polled together (``job_statuses/show_many``) until
  they finish. Each job's ``results`` say per organization whether it was updated: only
  those are logged (and recorded in the push history); a failed one is reported with
  Zendesk's error and, not being logged, sent again by the next push. Setting a value twice
  changes nothing, so a bulk request whose answer was lost is simply sent again.
"""

from __future__ import annotations

import time
from typing import Any

from hub.errors import AmbiguousWriteError, FatalAPIError, PushError, RetriableAPIError
from hub.push import PropertyChange, Pusher
from plugins.zendesk_pusher.fields import (
    HUB_FIELDS,
    Target,
    definition,
    is_ours,
    mapping_problem,
    options_of,
    own_key,
)

OBJECT_TYPE = "organizations"
FIELDS_PATH = "/api/v2/organization_fields.json"
BULK_MAX = 100
"""Zendesk's limit per ``update_many`` and ``show_many`` request."""
ADMIN_HINT = (
    "the hub's Zendesk token must belong to an admin (agents may change only organization notes)"
)
JOBS_IN_FLIGHT = 10
"""Jobs queued at once (Zendesk limits how many jobs an account may have queued or running)."""


# The fix every field-mapping problem names (hub check, the dry run and the push alike).
MAPPING_FIX = (
    "map it to a field of a fitting type, or remove the line to let the hub create its own"
)


class OrganizationFields(Pusher):
    """The ``push_properties`` step of the Zendesk pusher (see the module docstring)."""

    # -- fields -----------------------------------------------------------------------------

    def list_fields(self) -> list[dict[str, Any]]:
        """Every organization field (all pages)."""
        out: list[dict[str, Any]] = []
        path: str | None = FIELDS_PATH
        for _ in range(100):
            if path is None:
                break
            body = self.read("GET", path).json()
            out.extend(body.get("organization_fields") or [])
            path = body.get("next_page") or (body.get("links") or {}).get("next")
            if (body.get("meta") or {}).get("has_more") is False:
                path = None
        return out

    def wanted_fields(self) -> list[str]:
        return [f for f in HUB_FIELDS if f in self.settings.write]

    def mapping_errors(self, existing: list[dict[str, Any]]) -> list[str]:
        """One line per mapped field that cannot carry its hub field."""
        by_key = {str(f.get("key")): f for f in existing}
        out = []
        for hub_field, key in sorted(self.settings.fields.items()):
            problem = mapping_problem(hub_field, by_key.get(key), key)
            if problem:
                out.append(f"[push.{self.name}.fields] {hub_field}: {problem} ({MAPPING_FIX})")
        return out

    def ensure_fields(self) -> tuple[dict[str, Target], bool]:
        """The targets of the hub fields (creating the hub's own fields); (targets, created)."""
        ctx, result, prefix = self.ctx, self.ctx.result, self.settings.key_prefix
        existing = self.list_fields()
        problems = self.mapping_errors(existing)
        if problems:
            raise PushError(problems[0])
        by_key = {str(f.get("key")): f for f in existing}
        targets: dict[str, Target] = {}
        created = False
        for hub_field in self.wanted_fields():
            mapped = self.settings.fields.get(hub_field)
            if mapped:
                f = by_key[mapped]
                targets[hub_field] = _target(hub_field, f, owned=False)
                continue
            key = own_key(prefix, hub_field)
            current = by_key.get(key)
            if current is not None:
                if not is_ours(current, prefix):
                    result.error(
                        f"organization field {key} exists but was not made by the hub "
                        "(no hub marker in its description): the hub will not write it"
                    )
                    continue
                target = _target(hub_field, current, owned=True)
                if target.type == "dropdown" and len(target.options) < 4:
                    self._add_options(current, target)
                targets[hub_field] = target
                continue
            body = definition(prefix, hub_field, self.settings.titles.get(hub_field))
            result.setup.append(f"create organization field {key} ({body['type']})")
            if ctx.dry_run:
                targets[hub_field] = _target(hub_field, body, owned=True)
                continue
            made = self._create_field(body)
            if made is None or not is_ours(made, prefix):
                result.error(
                    f"organization field {key} exists but was not made by the hub: "
                    "the hub will not write it"
                )
                continue
            targets[hub_field] = _target(hub_field, made, owned=True)
            created = True
            # A new (or re-created) field is empty on every organization.
            ctx.forget(self.target, OBJECT_TYPE, prop=key)
        return targets, created

    def _create_field(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create one field exactly once; the field as Zendesk holds it afterwards."""
        invalid: FatalAPIError | None = None
        try:
            response = self.write("POST", FIELDS_PATH, json={"organization_field": body})
            return response.json().get("organization_field")
        except AmbiguousWriteError:
            self.ctx.result.retries += 1
            self.ctx.result.note(
                f"{body['key']}: the create's answer was lost; looked it up before creating again"
            )
        except FatalAPIError as exc:
            if exc.status == 403:
                raise PushError(
                    f"Zendesk refused to create organization field {body['key']} (403)",
                    hint=ADMIN_HINT,
                ) from None
            if exc.status != 422:
                raise
            invalid = exc
        # A 422 "Key: has already been taken" (a concurrent push) or our own create whose
        # answer was lost: the field list says whether it exists now.
        for f in self.list_fields():
            if f.get("key") == body["key"]:
                return f
        if invalid is not None:
            raise invalid
        return None

    def _add_options(self, existing: dict[str, Any], target: Target) -> None:
        """A dropdown made by an older hub lacks a band: add it (all options are sent)."""
        prefix = self.settings.key_prefix
        wanted = definition(prefix, target.hub_field)["custom_field_options"]
        lacking = [o for o in wanted if o["value"] not in target.options.values()]
        if not lacking:
            return
        self.ctx.result.setup.append(
            f"add {', '.join(o['value'] for o in lacking)} to the options of {target.key}"
        )
        if self.ctx.dry_run:
            return
        options = [
            {"id": o.get("id"), "name": o.get("name"), "value": o.get("value")}
            for o in existing.get("custom_field_options") or []
        ] + [{"id": None, **o} for o in lacking]
        response = self.write(
            "PUT",
            f"/api/v2/organization_fields/{existing['id']}.json",
            json={"organization_field": {"custom_field_options": options}},
            repeatable=True,
        )
        target.options = options_of(response.json().get("organization_field") or {})

    # -- values -----------------------------------------------------------------------------

    def organization_ids(self) -> dict[str, list[str]]:
        """account id → its Zendesk organization ids, from the identity links (never by name)."""
        return self.ctx.linked_ids(self.link_source, "organization")

    def push_properties(self, items: dict[str, dict[str, Any]]) -> None:
        ctx, result = self.ctx, self.ctx.result
        targets, created = self.ensure_fields()
        if not targets:
            return
        org_of = self.organization_ids()
        by_org: dict[str, dict[str, Any]] = {}
        for account_id, item in items.items():
            for org in org_of.get(account_id, []):
                by_org[org] = {"account_id": account_id, **item}
        if not by_org:
            return
        logged = ctx.logged(self.target, OBJECT_TYPE)
        unseen = [o for o in by_org if o not in logged]
        baseline = self.read_current(unseen, targets) if unseen and not created else {}
        adopt: dict[str, dict[str, str]] = {}
        plan: dict[str, dict[str, tuple[str, str]]] = {}
        for org, item in by_org.items():
            before = logged.get(org)
            if before is None:
                before = baseline.get(org, {})
                # Zendesk already holds our value (a rebuilt database): log it as written.
                adopt[org] = {
                    t.key: v
                    for f, t in targets.items()
                    if (v := item["values"].get(f, "")) != "" and before.get(t.key) == v
                }
            changes: dict[str, tuple[str, str]] = {}
            for hub_field, target in targets.items():
                value = item["values"].get(hub_field, "")
                if target.type == "dropdown" and value and value not in target.options:
                    result.error(
                        f"organization {org}: band {value!r} has no option in {target.key}; "
                        "not pushed"
                    )
                    continue
                old = before.get(target.key, "")
                if old != value:
                    changes[target.key] = (old, value)
            if changes:
                plan[org] = changes
        if not ctx.dry_run and any(adopt.values()):
            ctx.record(self.target, OBJECT_TYPE, {o: v for o, v in adopt.items() if v})
        rows: dict[tuple[str, str], PropertyChange] = {}
        for org in sorted(plan, key=_id_order):
            item = by_org[org]
            for key, (old, new) in plan[org].items():
                change = PropertyChange(
                    OBJECT_TYPE, org, item["account_id"], item["name"], key, old, new
                )
                rows[(org, key)] = change
                result.changes.append(change)
        if ctx.dry_run or not plan:
            return
        values = {org: {k: new for k, (_, new) in plan[org].items()} for org in plan}
        failures = self.send(values, {t.key: t for t in targets.values()})
        succeeded = {org: v for org, v in values.items() if org not in failures}
        if succeeded:
            ctx.record(self.target, OBJECT_TYPE, succeeded)
            for org, props in succeeded.items():
                for key in props:
                    rows[(org, key)].status = "written"
        grouped: dict[str, list[str]] = {}
        for org, message in failures.items():
            grouped.setdefault(message, []).append(org)
            for key in values[org]:
                rows[(org, key)].status, rows[(org, key)].error = "failed", message
        for message, orgs in grouped.items():
            shown = ", ".join(sorted(orgs, key=_id_order)[:5]) + (" …" if len(orgs) > 5 else "")
            noun = "organization" if len(orgs) == 1 else "organizations"
            result.error(f"{len(orgs)} {noun} not updated ({shown}): {message}")

    def read_current(
        self, org_ids: list[str], targets: dict[str, Target]
    ) -> dict[str, dict[str, str]]:
        """The hub's text of the target fields on organizations, 100 per request."""
        out: dict[str, dict[str, str]] = {}
        ordered = sorted(org_ids, key=_id_order)
        for start in range(0, len(ordered), BULK_MAX):
            chunk = ordered[start : start + BULK_MAX]
            body = self.read(
                "GET", "/api/v2/organizations/show_many.json", params={"ids": ",".join(chunk)}
            ).json()
            for org in body.get("organizations") or []:
                values = org.get("organization_fields") or {}
                out[str(org.get("id"))] = {
                    t.key: t.from_zendesk(values.get(t.key)) for t in targets.values()
                }
        return out

    # -- bulk updates and jobs ----------------------------------------------------------------

    def send(self, values: dict[str, dict[str, str]], targets: dict[str, Target]) -> dict[str, str]:
        """Write ``values`` (org → field key → hub text) in bulk; org → error for the
        organizations Zendesk did not update (the caller logs the others)."""
        size = self.settings.batch_size
        orgs = sorted(values, key=_id_order)
        failures: dict[str, str] = {}
        waiting: dict[str, list[str]] = {}  # job id → its organizations
        for start in range(0, len(orgs), size):
            batch = orgs[start : start + size]
            if len(waiting) >= JOBS_IN_FLIGHT:
                self._settle(waiting, failures, until=JOBS_IN_FLIGHT - 1)
            job = self._submit(batch, values, targets, failures)
            if job is not None:
                waiting[job] = batch
        self._settle(waiting, failures, until=0)
        return failures

    def _submit(
        self,
        batch: list[str],
        values: dict[str, dict[str, str]],
        targets: dict[str, Target],
        failures: dict[str, str],
    ) -> str | None:
        """One ``update_many`` request; the job id (None when the request failed)."""
        body = []
        for org in batch:
            stray = set(values[org]) - set(targets)
            if stray:  # never reached from a push: the plan holds only the targets' keys
                raise PushError(f"refusing to write fields the hub does not own: {sorted(stray)}")
            body.append(
                {
                    "id": int(org),
                    "organization_fields": {
                        k: targets[k].to_zendesk(v) for k, v in values[org].items()
                    },
                }
            )
        try:
            response = self.write(
                "PUT",
                "/api/v2/organizations/update_many.json",
                json={"organizations": body},
                repeatable=True,
            )
        except (RetriableAPIError, FatalAPIError) as exc:
            if isinstance(exc, FatalAPIError) and exc.status in (401, 403):
                raise PushError(
                    f"Zendesk refused the bulk update ({exc.status})", hint=ADMIN_HINT
                ) from None
            failures.update({org: str(exc) for org in batch})
            return None
        job = (response.json().get("job_status") or {}).get("id")
        if not job:
            failures.update({org: "Zendesk answered without a job" for org in batch})
            return None
        return str(job)

    def _settle(
        self, waiting: dict[str, list[str]], failures: dict[str, str], *, until: int
    ) -> None:
        """Poll the waiting jobs together until at most ``until`` are left unfinished."""
        settings = self.settings
        deadline = time.monotonic() + settings.job_timeout
        delay = settings.job_poll_interval
        while len(waiting) > until:
            ids = sorted(waiting)[:BULK_MAX]
            statuses = self.read(
                "GET", "/api/v2/job_statuses/show_many.json", params={"ids": ",".join(ids)}
            ).json()
            for status in statuses.get("job_statuses") or []:
                job = str(status.get("id"))
                if job in waiting and status.get("status") in ("completed", "failed"):
                    failures.update(job_failures(status, waiting.pop(job)))
            if len(waiting) <= until:
                return
            if time.monotonic() > deadline:
                for job, batch in list(waiting.items()):
                    message = (
                        f"job {job} still running after {settings.job_timeout:g} s "
                        "(sent again next push)"
                    )
                    failures.update({org: message for org in batch})
                    del waiting[job]
                return
            if delay:
                time.sleep(delay)
                delay = min(delay * 2, 10.0)


def job_failures(status: dict[str, Any], batch: list[str]) -> dict[str, str]:
    """org → error for the organizations of a finished job that it did not update.

    A ``completed`` job lists a result per organization (by ``id``, or by ``index`` in the
    request); one it does not mention is not trusted as updated. A ``failed`` job updated
    none of them.
    """
    if status.get("status") == "failed":
        message = f"Zendesk job failed: {status.get('message') or 'no message'}"
        return {org: message for org in batch}
    results = status.get("results")
    if isinstance(results, dict):  # some jobs answer one {"success": bool} for the whole job
        ok = bool(results.get("success"))
        return {} if ok else {org: "the job reports failure" for org in batch}
    failures: dict[str, str] = {}
    seen: set[str] = set()
    for item in results if isinstance(results, list) else []:
        org = str(item.get("id")) if item.get("id") is not None else None
        position = item.get("index")
        if org not in batch and isinstance(position, int) and 0 <= position < len(batch):
            org = batch[position]
        if org is None or org not in batch:
            continue
        seen.add(org)
        if not item.get("success", False):
            details = item.get("details")
            failures[org] = f"{item.get('error') or 'failed'}" + (f": {details}" if details else "")
    for org in batch:
        if org not in seen:
            failures.setdefault(org, "the job's results do not mention it (sent again next push)")
    return failures


def _target(hub_field: str, f: dict[str, Any], *, owned: bool) -> Target:
    return Target(
        hub_field=hub_field,
        key=str(f.get("key")),
        type=str(f.get("type") or "text"),
        owned=owned,
        field_id=f.get("id"),
        options=options_of(f) if f.get("type") == "dropdown" else {},
    )


def _id_order(org: str) -> tuple[int, str]:
    return (int(org), org) if org.isdigit() else (0, org)
