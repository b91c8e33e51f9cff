"""The built-in HubSpot pusher: health fields on companies and CSM tasks, written safely.

What it writes, and the rules it keeps (API facts in ``shared/specs/hubspot/NOTES.md``):

* **Its own properties only.** On the first push it creates the property group ``hub_health``
  and the company properties in ``PROPERTIES`` (409 "already exists" is fine). Each push reads
  the property list once, so a property an admin deleted is created again (and refilled). A
  property of that name that lives in another group or has another type was not made by the
  hub: it is reported and never written. Every batch is checked against the fixed allow-list
  right before it is sent, so no code path can write anything else.
* **Only changed values.** ``_hub_push_log`` holds what was last written successfully per
  company and property; a value equal to it is not sent. ``hub_health_updated_at`` travels
  with real changes only (a re-computed but identical score does not rewrite every company).
  Companies the log has never seen are first read from HubSpot (batch read, 100 per request)
  when the properties already existed, so a rebuilt database does not rewrite the CRM.
* **Batches of ≤ 100** (``batch/update``). A 207 is handled per record: successes are logged,
  records that failed with a retriable error (rate limits, internal errors) are retried alone
  up to ``record_retries`` times, the rest are reported. 429s and 5xx on the whole request are
  retried by the HTTP client (Retry-After honoured) and the connection's rate budget applies.
* **Tasks, exactly once.** For each outbox row: mark it ``pushing`` (committed), create the
  task (subject, body, due ``hs_timestamp``, priority, ``NOT_STARTED``, owner, association to
  the company, type 192) with the marker ``hubtask<id>`` at the end of its body, remember the
  HubSpot id, verify the association with a v4 read (re-adding it once if missing), then mark
  it ``pushed``. A row found ``pushing`` at the start (a push was killed mid-way) is
  reconciled first: the company's tasks and a search on the marker are checked, and only if
  neither finds it is the task created. So a task is never created twice.
* **Completions read back**: pushed tasks are read in batches; ``COMPLETED`` (or deleted)
  tasks complete the outbox row and start its snooze.
* **Dry run**: the same reads, no writes; the result lists every property change
  (old → new), the setup it would do and the tasks it would create.

Credentials and rate budget come from the connection named by ``[push] connection``: its
connector class (``connectors.hubspot``) when installed, else a small Bearer-token client
with HubSpot's documented budgets.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

import httpx

import hub
from hub import clock
from hub.errors import APIError, ConfigError, FatalAPIError, HubError, PushError, RetriableAPIError
from hub.http import HttpClient, make_client
from hub.http.auth import BearerAuth
from hub.http.ratelimit import RateLimit
from hub.push import PropertyChange, Pusher, TaskAction, ms_iso

DEFAULT_BASE_URL = "https://api.hubapi.com"
OBJECT_TYPE = "companies"
GROUP = {"name": "hub_health", "label": "Customer health (hub)", "displayOrder": -1}
BANDS = ("green", "yellow", "red", "churned")  # churned: the lifecycle state outside the bands
TASK_TO_COMPANY = 192  # HubSpot-defined association type: task → company

_DESC = "Written by the hub (customer-success integration hub); do not edit by hand."


def _prop(name: str, label: str, ptype: str, field: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": ptype,
        "fieldType": field,
        "groupName": GROUP["name"],
        "description": _DESC,
        **extra,
    }


PROPERTIES: dict[str, dict[str, Any]] = {
    p["name"]: p
    for p in (
        _prop("hub_health_score", "Health score", "number", "number"),
        _prop(
            "hub_health_band",
            "Health band",
            "enumeration",
            "select",
            options=[
                {"label": band.title(), "value": band, "displayOrder": i}
                for i, band in enumerate(BANDS)
            ],
        ),
        _prop("hub_health_trend_7d", "Health trend (7 days)", "number", "number"),
        _prop("hub_health_trend_30d", "Health trend (30 days)", "number", "number"),
        _prop("hub_health_drivers", "Health drivers", "string", "textarea"),
        _prop("hub_health_updated_at", "Health updated at", "datetime", "date"),
        _prop("hub_health_model", "Health model", "string", "text"),
        _prop("hub_health_segment", "Health segment", "string", "text"),
        _prop("hub_health_override", "Health override (CSM)", "number", "number"),
        _prop("hub_health_override_reason", "Health override reason", "string", "textarea"),
        # A date (inclusive), like the health engine's overrides; HubSpot stores midnight UTC.
        _prop("hub_health_override_until", "Health override until", "date", "date"),
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
    "override": "hub_health_override",
    "override_reason": "hub_health_override_reason",
    "override_until": "hub_health_override_until",
}
UPDATED_AT = FIELD_PROPERTY["updated_at"]

# Per-record error categories in a 207 that are worth sending again.
RETRIABLE_CATEGORIES = {
    "RATE_LIMITS",
    "RATE_LIMIT",
    "INTERNAL_ERROR",
    "SERVICE_UNAVAILABLE",
    "TEMPORARILY_UNAVAILABLE",
    "TIMEOUT",
    "LOCKED",
}
READ_CHUNK = 100
_MARKER_RE = re.compile(r"hubtask[0-9a-f]{20}")


def marker_for(task_id: str) -> str:
    """The token that identifies a hub task in HubSpot (one search token, letters and digits)."""
    return f"hubtask{task_id}"


class HubSpotPusher(Pusher):
    """Writes health properties and outbox tasks to HubSpot (see the module docstring)."""

    name = "hubspot"
    # Which company property carries each health field: the health engine reads the push log
    # through it to recognise its own override read back from HubSpot.
    field_properties = FIELD_PROPERTY
    title = "HubSpot companies and tasks"

    def run(self) -> None:
        settings = self.ctx.settings
        self.client = self._make_client()
        try:
            if settings.tasks:
                self.read_completions()
            if settings.properties:
                self.push_properties()
            if settings.tasks:
                self.push_tasks()
        finally:
            stats = self.client.stats
            self.ctx.result.requests += stats.requests
            self.ctx.result.retries += stats.retries
            self.client.close()

    # -- HTTP -----------------------------------------------------------------------------

    def _make_client(self) -> HttpClient:
        config, settings = self.ctx.config, self.ctx.settings
        name = settings.connection
        conn = config.connection(name)
        from hub.registry import get_registry

        if conn.connector != "hubspot":
            raise ConfigError(
                f"[push] connection {name!r} uses connector {conn.connector!r}, not hubspot",
                hint="point [push] connection at your HubSpot connection",
            )
        if conn.connector in get_registry().connectors:
            from hub.sync import build_connector

            return build_connector(config, name).client(transport=self.ctx.transport)
        # The HubSpot connector is not installed: a minimal client with the same budgets.
        raw = config.resolved_settings(name)
        token = raw.get("access_token")
        if not token:
            raise ConfigError(
                f"connections.{name}.settings.access_token is required to push to HubSpot",
                hint='access_token = "env:HUBSPOT_ACCESS_TOKEN"',
            )
        token = str(token)
        base = str(raw.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        burst = int(raw.get("burst_limit") or 100)
        digest = hashlib.sha256(token.encode()).hexdigest()[:12]
        return make_client(
            base_url=base,
            auth=BearerAuth(token),
            transport=self.ctx.transport,
            rate_limits=[
                RateLimit("hubspot-burst", burst, 10.0, match=r"^(?!.*/search/?$)"),
                RateLimit(
                    "hubspot-search", int(raw.get("search_per_second") or 5), 1.0, r"/search/?$"
                ),
            ],
            limiter_scope=f"hubspot:{base}:{digest}",
            secrets=[token],
        )

    def _read(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, **kwargs)

    def _write(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.ctx.write_guard(f"{method} {path}")
        self.ctx.result.writes += 1
        return self.client.request(method, path, **kwargs)

    # -- schema -----------------------------------------------------------------------------

    def ensure_schema(self) -> tuple[set[str], bool]:
        """Make sure the group and properties exist; returns (writable properties, created now).

        One read per push (the property list) even when all is in place: a property a CRM
        admin deleted is noticed and created again, and its values are then written again
        on every company (its push log rows are dropped).
        """
        ctx, result = self.ctx, self.ctx.result
        existing = {
            p["name"]: p
            for p in self._read("GET", f"/crm/v3/properties/{OBJECT_TYPE}")
            .json()
            .get("results", [])
        }
        owned: set[str] = set()
        missing = []
        for name, definition in PROPERTIES.items():
            if name not in existing:
                missing.append(name)
                continue
            problem = _foreign(existing[name], definition)
            if problem:
                result.error(f"property {name} exists but {problem}: the hub will not write it")
            else:
                owned.add(name)
        if not missing:
            return owned, False
        groups = {
            g["name"]
            for g in self._read("GET", f"/crm/v3/properties/{OBJECT_TYPE}/groups")
            .json()
            .get("results", [])
        }
        if GROUP["name"] not in groups:
            result.setup.append(f"create property group {GROUP['name']}")
            if not ctx.dry_run:
                self._create(f"/crm/v3/properties/{OBJECT_TYPE}/groups", GROUP)
        for name in missing:
            definition = PROPERTIES[name]
            result.setup.append(f"create property {name} ({definition['type']})")
            if ctx.dry_run:
                owned.add(name)
                continue
            if not self._create(f"/crm/v3/properties/{OBJECT_TYPE}", definition):
                # 409: someone made it between our read and our create; check it is ours.
                current = self._read("GET", f"/crm/v3/properties/{OBJECT_TYPE}/{name}").json()
                problem = _foreign(current, definition)
                if problem:
                    result.error(f"property {name} exists but {problem}: the hub will not write it")
                    continue
            owned.add(name)
            # A new (or re-created) property is empty on every company.
            ctx.forget(self.target, OBJECT_TYPE, prop=name)
        return owned, True

    def _create(self, path: str, body: dict[str, Any]) -> bool:
        """POST a definition; False when it already existed (409)."""
        try:
            self._write("POST", path, json=body)
        except FatalAPIError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    # -- properties -------------------------------------------------------------------------

    def push_properties(self) -> None:
        ctx, result = self.ctx, self.ctx.result
        owned, created = self.ensure_schema()
        health = ctx.health_values()
        if not health:
            return
        logged = ctx.logged(self.target, OBJECT_TYPE)
        by_company: dict[str, dict[str, Any]] = {}
        for account_id, item in health.items():
            by_company[item["crm_id"]] = {"account_id": account_id, **item}
        unseen = [cid for cid in by_company if cid not in logged]
        baseline: dict[str, dict[str, str]] = {}
        if unseen and not created:
            baseline = self._read_current(unseen, owned)
        plan: dict[str, dict[str, tuple[str, str]]] = {}  # company → property → (old, new)
        adopt: dict[str, dict[str, str]] = {}  # CRM already holds our value: log it
        for cid, item in by_company.items():
            before = logged.get(cid)
            if before is None:
                before = baseline.get(cid, {})
                if before:
                    adopt[cid] = {
                        p: v
                        for f, v in item["values"].items()
                        if (p := FIELD_PROPERTY[f]) in owned and _same(p, before.get(p, ""), v)
                    }
            changes: dict[str, tuple[str, str]] = {}
            for fld, value in item["values"].items():
                prop = FIELD_PROPERTY[fld]
                if prop not in owned or prop == UPDATED_AT:
                    continue
                if prop == "hub_health_band" and value not in BANDS and value != "":
                    result.error(
                        f"company {cid}: band {value!r} is not one of {', '.join(BANDS)}; not pushed"
                    )
                    continue
                old = before.get(prop, "")
                if not _same(prop, old, value):
                    changes[prop] = (old, value)
            if changes and UPDATED_AT in owned:
                new = item["values"]["updated_at"]
                old = before.get(UPDATED_AT, "")
                if new and not _same(UPDATED_AT, old, new):
                    changes[UPDATED_AT] = (old, new)
            if changes:
                plan[cid] = changes
        if adopt and not ctx.dry_run:
            ctx.record(self.target, OBJECT_TYPE, {k: v for k, v in adopt.items() if v})
        rows: dict[tuple[str, str], PropertyChange] = {}
        for cid, changes in plan.items():
            item = by_company[cid]
            for prop, (old, new) in changes.items():
                change = PropertyChange(
                    OBJECT_TYPE, cid, item["account_id"], item["name"], prop, old, new
                )
                rows[(cid, prop)] = change
                result.changes.append(change)
        if ctx.dry_run or not plan:
            return
        size = ctx.settings.batch_size
        companies = sorted(plan)
        for start in range(0, len(companies), size):
            chunk = companies[start : start + size]
            inputs = {cid: {p: new for p, (_, new) in plan[cid].items()} for cid in chunk}
            self._send_batch(inputs, rows, owned)

    def _read_current(self, company_ids: list[str], owned: set[str]) -> dict[str, dict[str, str]]:
        """Current values of our properties on companies the push log has never seen."""
        out: dict[str, dict[str, str]] = {}
        names = sorted(owned)
        for start in range(0, len(company_ids), READ_CHUNK):
            chunk = company_ids[start : start + READ_CHUNK]
            response = self._read(
                "POST",
                f"/crm/v3/objects/{OBJECT_TYPE}/batch/read",
                json={"inputs": [{"id": c} for c in chunk], "properties": names},
            )
            for record in response.json().get("results", []):
                props = record.get("properties") or {}
                out[str(record.get("id"))] = {
                    n: ("" if props.get(n) is None else str(props.get(n))) for n in names
                }
        return out

    def _send_batch(
        self,
        inputs: dict[str, dict[str, str]],
        rows: dict[tuple[str, str], PropertyChange],
        owned: set[str],
    ) -> None:
        """One batch/update with per-record handling of 207s; logs only what succeeded."""
        settings = self.ctx.settings
        pending = dict(inputs)
        attempt = 0
        schema_refreshed = False
        while pending:
            for props in pending.values():
                stray = set(props) - (owned & ALLOWED_PROPERTIES)
                if stray:  # never reached in practice: the plan only holds owned properties
                    raise PushError(
                        f"refusing to write properties the hub did not create: {sorted(stray)}"
                    )
            body = {"inputs": [{"id": cid, "properties": p} for cid, p in pending.items()]}
            try:
                response = self._write(
                    "POST", f"/crm/v3/objects/{OBJECT_TYPE}/batch/update", json=body
                )
            except RetriableAPIError as exc:
                self._fail(pending, rows, str(exc))
                return
            except FatalAPIError as exc:
                if exc.status in (401, 403):
                    raise PushError(str(exc), hint=exc.hint) from None
                text = exc.message.lower()
                lost = "property_doesnt_exist" in text or (
                    "property" in text and "not exist" in text
                )
                if lost and not schema_refreshed:
                    # Someone deleted one of our properties: set the schema up again, retry once.
                    schema_refreshed = True
                    owned &= self.ensure_schema()[0]
                    dropped = {
                        cid: {p: v for p, v in props.items() if p not in owned}
                        for cid, props in pending.items()
                    }
                    dropped = {cid: props for cid, props in dropped.items() if props}
                    if dropped:
                        self._fail(dropped, rows, "the property is no longer the hub's")
                    pending = {
                        cid: kept
                        for cid, props in pending.items()
                        if (kept := {p: v for p, v in props.items() if p in owned})
                    }
                    continue
                self._fail(pending, rows, str(exc))
                return
            succeeded, retry, failed = _parse_batch(response, pending)
            if succeeded:
                self.ctx.record(self.target, OBJECT_TYPE, {cid: pending[cid] for cid in succeeded})
                for cid in succeeded:
                    for prop in pending[cid]:
                        rows[(cid, prop)].status = "written"
            for message, cids in _by_message(failed).items():
                self._fail({cid: pending[cid] for cid in cids}, rows, message)
            if retry and attempt < settings.record_retries:
                attempt += 1
                if settings.record_retry_delay:
                    time.sleep(settings.record_retry_delay * attempt)
                pending = {cid: pending[cid] for cid in retry}
                continue
            for message, cids in _by_message(retry).items():
                self._fail(
                    {cid: pending[cid] for cid in cids},
                    rows,
                    f"{message} (still failing after {attempt} retries)",
                )
            return

    def _fail(
        self,
        companies: dict[str, dict[str, str]],
        rows: dict[tuple[str, str], PropertyChange],
        message: str,
    ) -> None:
        for cid, props in companies.items():
            for prop in props:
                change = rows[(cid, prop)]
                change.status, change.error = "failed", message
        ids = ", ".join(sorted(companies)[:5]) + (" …" if len(companies) > 5 else "")
        self.ctx.result.error(f"{len(companies)} companies not updated ({ids}): {message}")

    # -- tasks ------------------------------------------------------------------------------

    def read_completions(self) -> None:
        """Pushed tasks that are completed or gone in HubSpot complete their outbox rows."""
        ctx = self.ctx
        pushed = [t for t in ctx.outbox.tasks(["pushed"]) if t["hubspot_task_id"]]
        by_remote = {str(t["hubspot_task_id"]): t for t in pushed}
        ids = list(by_remote)
        for start in range(0, len(ids), READ_CHUNK):
            chunk = ids[start : start + READ_CHUNK]
            response = self._read(
                "POST",
                "/crm/v3/objects/tasks/batch/read",
                json={
                    "inputs": [{"id": i} for i in chunk],
                    "properties": ["hs_task_status", "hs_task_completion_date"],
                },
            )
            body = response.json()
            done: dict[str, Any] = {}
            for record in body.get("results", []):
                props = record.get("properties") or {}
                if str(props.get("hs_task_status") or "").upper() == "COMPLETED":
                    done[str(record.get("id"))] = clock.parse(props.get("hs_task_completion_date"))
            for error in body.get("errors") or []:
                if error.get("category") == "OBJECT_NOT_FOUND":
                    for rid in (error.get("context") or {}).get("ids") or []:
                        done.setdefault(str(rid), None)  # deleted in HubSpot: dismissed
            for rid, when in done.items():
                task = by_remote.get(rid)
                if task is None:
                    continue
                ctx.result.completed.append(task["id"])
                if not ctx.dry_run:
                    ctx.outbox.complete(
                        task["id"], when or ctx.now, ctx.snooze_days(task["playbook"])
                    )

    def push_tasks(self) -> None:
        """Reconcile rows a killed push left ``pushing``, then create the open ones in batches."""
        ctx = self.ctx
        accounts = ctx.accounts()
        for task in ctx.outbox.tasks(["pushing"]):
            action = self._action(task, accounts.get(task["account_id"]), "reconcile")
            ctx.result.tasks.append(action)
            self._guarded(action, lambda task=task, action=action: self._reconcile(task, action))
        budget = ctx.settings.max_tasks_per_run or None
        fresh: list[tuple[dict[str, Any], TaskAction]] = []
        for task in ctx.outbox.tasks(["open"]):
            action = self._action(task, accounts.get(task["account_id"]), "create")
            if action.company_id is None:
                action.action = "cancelled"
                action.error = "the account has no HubSpot company any more"
                if not ctx.dry_run:
                    ctx.outbox.cancel(task["id"], ctx.now)
                ctx.result.tasks.append(action)
                continue
            if budget is not None:
                if budget <= 0:
                    continue  # the rest wait for the next push
                budget -= 1
            ctx.result.tasks.append(action)
            fresh.append((task, action))
        if ctx.dry_run:
            return
        size = ctx.settings.batch_size
        for start in range(0, len(fresh), size):
            self._create_batch(fresh[start : start + size])

    def _action(
        self, task: dict[str, Any], account: dict[str, Any] | None, what: str
    ) -> TaskAction:
        company = str((account or {}).get("hubspot_company_id") or "") or None
        return TaskAction(
            task_id=task["id"],
            account_id=task["account_id"],
            company_id=company,
            playbook=task["playbook"],
            subject=task["subject"],
            owner_id=self.ctx.owner_for(task, account),
            due_at=task["due_at"],
            priority=task["priority"],
            action=what,
            remote_id=task["hubspot_task_id"],
        )

    def _guarded(self, action: TaskAction, step: Any) -> None:
        """Run one task's step; a HubError fails that task only (auth errors stop the push)."""
        try:
            step()
        except HubError as exc:
            action.action, action.error = "failed", str(exc)
            self.ctx.result.error(f"task {action.task_id} ({action.playbook}): {exc}")
            if isinstance(exc, APIError) and exc.status in (401, 403):
                raise PushError(str(exc), hint=exc.hint) from None

    def _reconcile(self, task: dict[str, Any], action: TaskAction) -> None:
        """A row left ``pushing``: find what it created before creating anything."""
        ctx, company = self.ctx, action.company_id
        remote = self._find_existing(task, company)
        if ctx.dry_run:
            action.remote_id = remote
            action.action = "found" if remote else "create"
            return
        if remote is None and company is None:
            ctx.outbox.cancel(task["id"], ctx.now)
            action.action = "cancelled"
            action.error = "the account has no HubSpot company any more"
            return
        if remote is None:
            remote = self._create_one(task, action)
            action.action = "created"
        else:
            action.action = "found"
        self._finish_one(task, remote, action)

    def _create_batch(self, items: list[tuple[dict[str, Any], TaskAction]]) -> None:
        """Create up to 100 tasks in one request; claim before, record ids and verify after."""
        ctx = self.ctx
        ctx.outbox.claim_many([task["id"] for task, _ in items])
        inputs = [
            self._task_input(task, action.company_id, action.owner_id) for task, action in items
        ]
        try:
            response = self._write(
                "POST", "/crm/v3/objects/tasks/batch/create", json={"inputs": inputs}
            )
        except RetriableAPIError as exc:
            # The outcome is unknown: the rows stay "pushing" and the next push reconciles them.
            for _, action in items:
                action.action = "failed"
                action.error = f"{exc} (checked again on the next push)"
            ctx.result.error(f"{len(items)} tasks not confirmed: {exc}")
            return
        except FatalAPIError as exc:
            if exc.status in (401, 403):
                raise PushError(str(exc), hint=exc.hint) from None
            # HubSpot refused the whole batch, so nothing was created: one by one instead,
            # where a refused owner can fall back.
            for task, action in items:
                self._guarded(
                    action, lambda t=task, a=action: self._finish_one(t, self._create_one(t, a), a)
                )
            return
        body = response.json()
        created: dict[str, str] = {}
        for record in body.get("results") or []:
            found = _MARKER_RE.search(
                str((record.get("properties") or {}).get("hs_task_body") or "")
            )
            if found:
                created[found.group(0)] = str(record["id"])
        refused: set[int] = set()
        for error in body.get("errors") or []:
            for index in (error.get("context") or {}).get("index") or []:
                refused.add(int(index))
        remote_ids = {
            task["id"]: created[marker_for(task["id"])]
            for task, _ in items
            if marker_for(task["id"]) in created
        }
        ctx.outbox.record_remote_many(remote_ids)
        done: list[tuple[dict[str, Any], TaskAction]] = []
        for i, (task, action) in enumerate(items):
            if task["id"] in remote_ids:
                action.action, action.remote_id = "created", remote_ids[task["id"]]
                done.append((task, action))
            elif i in refused:
                # Refused inside a 207: not created; try it alone (owner fallback, retries).
                self._guarded(
                    action, lambda t=task, a=action: self._finish_one(t, self._create_one(t, a), a)
                )
            else:
                action.action = "failed"
                action.error = "HubSpot did not confirm this task; the next push checks for it"
                ctx.result.error(f"task {task['id']}: {action.error}")
        verified = self._verified([(a.remote_id, a.company_id) for _, a in done])
        pushed = {}
        for task, action in done:
            if action.remote_id in verified:
                pushed[task["id"]] = action.remote_id
            else:
                self._guarded(
                    action,
                    lambda t=task, a=action: self._finish_one(t, a.remote_id, a),
                )
        ctx.outbox.mark_pushed_many(pushed, ctx.now)

    def _finish_one(self, task: dict[str, Any], remote: str, action: TaskAction) -> None:
        """Record the HubSpot id, verify the association, mark the row pushed."""
        ctx = self.ctx
        action.remote_id = remote
        ctx.outbox.record_remote(task["id"], remote)
        if ctx.settings.verify_associations and action.company_id is not None:
            self._verify_association(remote, action.company_id)
        ctx.outbox.mark_pushed(task["id"], remote, ctx.now)
        if action.action not in ("created", "found"):
            action.action = "created"

    def _task_input(
        self, task: dict[str, Any], company: str | None, owner: str | None
    ) -> dict[str, Any]:
        props = {
            "hs_timestamp": ms_iso(task["due_at"]) or ms_iso(clock.iso(self.ctx.now)),
            "hs_task_subject": task["subject"],
            "hs_task_body": f"{task['body']}\n\n— hub ref {marker_for(task['id'])}",
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": task["priority"] or "MEDIUM",
            "hs_task_type": self.ctx.settings.task_type,
        }
        if owner:
            props["hubspot_owner_id"] = owner
        body: dict[str, Any] = {"properties": props}
        if company is not None:
            body["associations"] = [
                {
                    "to": {"id": company},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": TASK_TO_COMPANY,
                        }
                    ],
                }
            ]
        return body

    def _create_one(self, task: dict[str, Any], action: TaskAction) -> str:
        """Create one task (its row already ``pushing``); a refused owner falls back."""
        owners = list(dict.fromkeys([action.owner_id, self.ctx.settings.fallback_owner_id, None]))
        for i, owner in enumerate(owners):
            body = self._task_input(task, action.company_id, owner)
            try:
                response = self._write("POST", "/crm/v3/objects/tasks", json=body)
            except FatalAPIError as exc:
                # HubSpot said no: nothing was created, so the row can go back to open.
                owner_problem = exc.status == 400 and "owner" in exc.message.lower()
                if owner_problem and i + 1 < len(owners):
                    self.ctx.result.error(
                        f"task {task['id']}: owner {owner} was refused; assigned to "
                        f"{owners[i + 1] or 'nobody'} instead"
                    )
                    action.owner_id = owners[i + 1]
                    continue
                if exc.status not in (401, 403):
                    self.ctx.outbox.release(task["id"])
                raise
            # A RetriableAPIError (after the client's retries) propagates with the row still
            # "pushing": the create may have happened, so the next push reconciles first.
            return str(response.json()["id"])
        raise PushError(f"task {task['id']}: HubSpot refused every owner")  # pragma: no cover

    def _find_existing(self, task: dict[str, Any], company: str | None) -> str | None:
        """The HubSpot id of a task this outbox row already created, if any (reads only)."""
        marker = marker_for(task["id"])
        if task.get("hubspot_task_id"):
            try:
                self._read("GET", f"/crm/v3/objects/tasks/{task['hubspot_task_id']}")
                return str(task["hubspot_task_id"])
            except FatalAPIError as exc:
                if exc.status != 404:
                    raise
        # 1. The company's tasks: a consistent read (search indexes lag behind creates).
        if company is not None:
            try:
                ids = self._associated_ids("companies", company, "tasks")
            except FatalAPIError as exc:
                if exc.status != 404:
                    raise
                ids = []
            for start in range(0, len(ids), READ_CHUNK):
                response = self._read(
                    "POST",
                    "/crm/v3/objects/tasks/batch/read",
                    json={
                        "inputs": [{"id": i} for i in ids[start : start + READ_CHUNK]],
                        "properties": ["hs_task_body"],
                    },
                )
                for record in response.json().get("results", []):
                    if marker in str((record.get("properties") or {}).get("hs_task_body") or ""):
                        return str(record["id"])
        # 2. Search on the marker: finds a task whose association did not stick.
        response = self._read(
            "POST",
            "/crm/v3/objects/tasks/search",
            json={
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "hs_task_body",
                                "operator": "CONTAINS_TOKEN",
                                "value": marker,
                            }
                        ]
                    }
                ],
                "properties": ["hs_task_body"],
                "limit": 10,
            },
        )
        for record in response.json().get("results", []):
            if marker in str((record.get("properties") or {}).get("hs_task_body") or ""):
                return str(record["id"])
        return None

    def _associated_ids(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        ids: list[str] = []
        params: dict[str, Any] = {"limit": 500}
        for _ in range(1000):
            response = self._read(
                "GET",
                f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}",
                params=params,
            )
            body = response.json()
            ids.extend(str(r["toObjectId"]) for r in body.get("results", []))
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
            params = {"limit": 500, "after": after}
        return ids

    def _verified(self, pairs: list[tuple[str | None, str | None]]) -> set[str]:
        """Which (task, company) pairs HubSpot shows associated (v4 batch read, reads only)."""
        if not self.ctx.settings.verify_associations:
            return {task for task, _ in pairs if task}
        wanted = {str(t): str(c) for t, c in pairs if t and c}
        ok: set[str] = set()
        ids = list(wanted)
        for start in range(0, len(ids), READ_CHUNK):
            response = self._read(
                "POST",
                "/crm/v4/associations/tasks/companies/batch/read",
                json={"inputs": [{"id": i} for i in ids[start : start + READ_CHUNK]]},
            )
            for result in response.json().get("results") or []:
                task = str((result.get("from") or {}).get("id"))
                targets = {str(t.get("toObjectId")) for t in result.get("to") or []}
                if task in wanted and wanted[task] in targets:
                    ok.add(task)
        return ok

    def _verify_association(self, task_remote: str, company: str) -> None:
        """Read the task's company associations (v4); add the default one once if missing."""
        if company in self._associated_ids("tasks", task_remote, "companies"):
            return
        self._write(
            "PUT", f"/crm/v4/objects/tasks/{task_remote}/associations/default/companies/{company}"
        )
        if company not in self._associated_ids("tasks", task_remote, "companies"):
            raise PushError(
                f"HubSpot task {task_remote} is not associated with company {company} "
                "after re-adding it",
                hint="check the private app's scopes (crm.objects.companies.write)",
            )


# -- helpers ------------------------------------------------------------------------------------


def _foreign(existing: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """Why an existing property is not the hub's (None when it is)."""
    if existing.get("groupName") != wanted["groupName"]:
        return f"belongs to group {existing.get('groupName')!r}, not {wanted['groupName']!r}"
    if existing.get("type") != wanted["type"]:
        return f"has type {existing.get('type')!r}, not {wanted['type']!r}"
    if wanted["type"] == "enumeration":
        values = {str(o.get("value")) for o in existing.get("options") or []}
        missing = [o["value"] for o in wanted["options"] if o["value"] not in values]
        if missing:
            return f"lacks the options {missing}"
    return None


def _same(prop: str, old: str, new: str) -> bool:
    """Equal as HubSpot stores them (numbers as numbers, datetimes as instants)."""
    if old == new:
        return True
    if old in ("", None) or new in ("", None):
        return False
    ptype = PROPERTIES.get(prop, {}).get("type")
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


def _by_message(failures: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for cid, message in failures.items():
        grouped.setdefault(message, []).append(cid)
    return grouped


def _parse_batch(
    response: httpx.Response, pending: dict[str, dict[str, str]]
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """(succeeded ids, retriable failures id → message, other failures id → message)."""
    if response.status_code != 207:
        return list(pending), {}, {}
    body = response.json()
    retry: dict[str, str] = {}
    failed: dict[str, str] = {}
    unattributed: list[dict[str, Any]] = []
    for error in body.get("errors") or []:
        ids = [str(i) for i in (error.get("context") or {}).get("ids") or []]
        category = str(error.get("category") or "")
        message = f"{category}: {error.get('message') or 'failed'}"
        if not ids:
            unattributed.append(error)
            continue
        for cid in ids:
            if cid not in pending:
                continue
            (retry if category in RETRIABLE_CATEGORIES else failed)[cid] = message
    succeeded = [cid for cid in pending if cid not in retry and cid not in failed]
    if unattributed:
        # An error that names no record: trust only the records the results list.
        listed = {str(r.get("id")) for r in body.get("results") or []}
        category = str(unattributed[0].get("category") or "")
        message = f"{category}: {unattributed[0].get('message') or 'failed'}"
        for cid in [c for c in succeeded if c not in listed]:
            (retry if category in RETRIABLE_CATEGORIES else failed)[cid] = message
        succeeded = [c for c in succeeded if c in listed]
    return succeeded, retry, failed


@hub.hookimpl
def register_pushers(register: Any) -> None:
    register(HubSpotPusher)
