"""CSM tasks in HubSpot, each created exactly once, with owner, due date and association.

For each outbox row the pusher claims it (``pushing``, committed, conditional on ``open``),
creates the task (subject, body as HubSpot rich text, due ``hs_timestamp``, priority,
``NOT_STARTED``, owner, association to the company and to the deal or billing contact its
evidence names: ``links``) carrying the marker ``hubtask<id>`` at
the end of its body, records the HubSpot id, verifies the association (re-adding it once if
missing), then marks the row ``pushed``.

A create is never resent blindly. When its answer is lost after sending (timeout, reset, a
5xx from a proxy: ``AmbiguousWriteError``), the pusher looks for the marker, first among the
company's tasks (a consistent read) and then with a search, and creates again only when
neither finds it; a batch create is settled that way per record. Rows a killed push left
``pushing`` go through the same reconcile at the start of the next push.
"""

from __future__ import annotations

import html
import re
from typing import Any

from hub import clock
from hub.errors import (
    AmbiguousWriteError,
    APIError,
    FatalAPIError,
    HubError,
    PushError,
    RetriableAPIError,
)
from hub.push import TaskAction, ms_iso
from plugins.hubspot_pusher.client import marker_for, marker_in
from plugins.hubspot_pusher.links import EvidenceLinks

TASK_TO_COMPANY = 192  # HubSpot-defined association type: task → company
CREATE_ATTEMPTS = 3
_LINK = re.compile(r"\((https?://[^\s)]+)\)")


def body_html(text: str, marker: str) -> str:
    """The outbox's plain-text body as the rich text HubSpot renders.

    Paragraphs become ``<p>``, runs of ``- `` lines a ``<ul>``, ``Heading:`` lines bold,
    links in parentheses anchors; everything else is escaped. The marker ends the body.
    """
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    out: list[str] = []
    for block in blocks:
        items: list[str] = []
        lines: list[str] = []
        for line in block.splitlines():
            if line.startswith("- "):
                items.append(f"<li>{_inline(line[2:])}</li>")
                continue
            if items:
                lines.append("<ul>" + "".join(items) + "</ul>")
                items = []
            if line.endswith(":") and len(line) < 80:
                lines.append(f"<strong>{_inline(line)}</strong>")
            else:
                lines.append(_inline(line))
        rendered = "<br>".join(lines)
        if items:
            rendered += "<ul>" + "".join(items) + "</ul>"
        out.append(rendered if rendered.endswith("</ul>") and not lines else f"<p>{rendered}</p>")
    out.append(f"<p>— hub ref {marker}</p>")
    return "".join(out)


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    return _LINK.sub(lambda m: f'(<a href="{html.escape(m.group(1))}">link</a>)', escaped)


class TaskDelivery(EvidenceLinks):
    """The ``push_tasks`` step of the HubSpot pusher."""

    def push_tasks(self, reconcile: list[dict[str, Any]], create: list[dict[str, Any]]) -> None:
        """Reconcile rows left ``pushing``, then create the open ones in batches."""
        ctx = self.ctx
        accounts = ctx.accounts()
        self.prefetch_contacts([*reconcile, *create])
        for task in reconcile:
            action = self._action(task, accounts.get(task["account_id"]), "reconcile")
            ctx.result.tasks.append(action)
            self._guarded(action, lambda task=task, action=action: self._reconcile(task, action))
        fresh: list[tuple[dict[str, Any], TaskAction]] = []
        for task in create:
            action = self._action(task, accounts.get(task["account_id"]), "create")
            ctx.result.tasks.append(action)
            if action.object_id is None:
                action.action = "cancelled"
                action.error = "the account has no HubSpot company any more"
                if not ctx.dry_run:
                    ctx.outbox.cancel(task["id"], ctx.now)
                continue
            fresh.append((task, action))
        if ctx.dry_run:
            return
        size = self.settings.batch_size
        for start in range(0, len(fresh), size):
            self._create_batch(fresh[start : start + size])

    def _action(
        self, task: dict[str, Any], account: dict[str, Any] | None, what: str
    ) -> TaskAction:
        action = TaskAction(
            task_id=task["id"],
            account_id=task["account_id"],
            object_id=self.object_id(account or {}),
            playbook=task["playbook"],
            subject=task["subject"],
            owner_id=self.ctx.owner_for(task, account, self.settings.fallback_owner_id),
            due_at=task["due_at"],
            priority=task["priority"],
            action=what,
            remote_id=task.get("remote_id"),
        )
        action.links = [f"{kind[:-1]} {rid}" for kind, rid in self._links_of(task)]
        return action

    def _guarded(self, action: TaskAction, step: Any) -> None:
        """Run one task's step; a HubError fails that task only (auth errors stop the push)."""
        try:
            step()
        except HubError as exc:
            if isinstance(exc, APIError) and exc.status in (401, 403):
                # The push stops here and says why (with the fix) once, in its own error.
                action.action = "failed"
                action.error = f"the push stopped: HubSpot refused it ({exc.status})"
                raise PushError(exc.message, hint=exc.hint) from None
            action.action, action.error = "failed", str(exc)
            self.ctx.result.error(f"task {action.task_id} ({action.playbook}): {exc}")

    def _reconcile(self, task: dict[str, Any], action: TaskAction) -> None:
        """A row left ``pushing``: find what it created before creating anything."""
        ctx, company = self.ctx, action.object_id
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
        claimed = set(ctx.outbox.claim_many([task["id"] for task, _ in items]))
        for task, action in items:
            if task["id"] not in claimed:
                action.action = "skipped"
                action.error = "another push claimed it first"
        items = [(t, a) for t, a in items if t["id"] in claimed]
        if not items:
            return
        inputs = [
            self._task_input(task, action.object_id, action.owner_id) for task, action in items
        ]
        try:
            response = self.write(
                "POST", "/crm/v3/objects/tasks/batch/create", json={"inputs": inputs}
            )
        except AmbiguousWriteError as exc:
            # Some, all or none were created: settle each task by its marker.
            ctx.result.retries += 1
            ctx.result.note(
                f"{len(items)} tasks: the batch create's answer was lost ({exc.message}); "
                "each was looked up before any was created again"
            )
            self._settle_lost_batch(items)
            return
        except RetriableAPIError as exc:
            # Certainly not executed (rate limited, connection refused): back to open.
            for task, action in items:
                ctx.outbox.release(task["id"])
                action.action, action.error = "failed", f"{exc} (tried again on the next push)"
            ctx.result.error(f"{len(items)} tasks not created: {exc}")
            return
        except FatalAPIError as exc:
            if exc.status in (401, 403):
                # Refused before anything was created: the tasks wait, open, for the next push.
                for task, action in items:
                    ctx.outbox.release(task["id"])
                    action.action = "failed"
                    action.error = f"the push stopped: HubSpot refused it ({exc.status})"
                raise PushError(exc.message, hint=exc.hint) from None
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
            marker = marker_in(record)
            if marker:
                created[marker] = str(record["id"])
        refused: set[int] = set()
        for error in body.get("errors") or []:
            for index in (error.get("context") or {}).get("index") or []:
                refused.add(int(index))
        remote_ids = {
            task["id"]: created[marker_for(task["id"])]
            for task, _ in items
            if marker_for(task["id"]) in created
        }
        ctx.outbox.record_remote_many(remote_ids, self.name)
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
                # Neither confirmed nor refused: look for it before anything else.
                action.action = "reconcile"
                self._guarded(action, lambda t=task, a=action: self._reconcile(t, a))
        self._mark_verified(done)

    def _settle_lost_batch(self, items: list[tuple[dict[str, Any], TaskAction]]) -> None:
        """After a lost batch-create answer: find the tasks HubSpot made among their
        companies' tasks (one association read per company, then batch reads), verify those
        in one batch, and reconcile the rest one by one (search, then create)."""
        ctx = self.ctx
        wanted = {marker_for(task["id"]): (task, action) for task, action in items}
        companies = sorted({a.object_id for _, a in items if a.object_id is not None})
        ids: list[str] = []
        for company in companies:
            try:
                ids.extend(self.associated_ids("companies", company, "tasks"))
            except FatalAPIError as exc:
                if exc.status != 404:
                    raise
        found: dict[str, str] = {}
        for record in self.batch_read("tasks", list(dict.fromkeys(ids)), ["hs_task_body"]):
            marker = None if "_error" in record else marker_in(record)
            if marker in wanted:
                found[wanted[marker][0]["id"]] = str(record["id"])
        ctx.outbox.record_remote_many(found, self.name)
        done = []
        for task, action in items:
            if task["id"] in found:
                action.action, action.remote_id = "found", found[task["id"]]
                done.append((task, action))
            else:
                action.action = "reconcile"
                self._guarded(action, lambda t=task, a=action: self._reconcile(t, a))
        self._mark_verified(done)

    def _mark_verified(self, done: list[tuple[dict[str, Any], TaskAction]]) -> None:
        """Mark created or found tasks pushed, in one batch where their company link is
        confirmed; the others are finished one by one (link repaired, then marked)."""
        ctx = self.ctx
        verified = self._verified([(a.remote_id, a.object_id) for _, a in done])
        pushed = {}
        for task, action in done:
            if action.remote_id in verified:
                pushed[task["id"]] = action.remote_id
            else:
                self._guarded(action, lambda t=task, a=action: self._finish_one(t, a.remote_id, a))
        ctx.outbox.mark_pushed_many(pushed, ctx.now, self.name)

    def _finish_one(self, task: dict[str, Any], remote: str, action: TaskAction) -> None:
        """Record the HubSpot id, verify the association, mark the row pushed."""
        ctx = self.ctx
        action.remote_id = remote
        ctx.outbox.record_remote(task["id"], remote, self.name)
        if self.settings.verify_associations and action.object_id is not None:
            self._verify_association(remote, action.object_id)
        ctx.outbox.mark_pushed(task["id"], remote, ctx.now, self.name)
        if action.action not in ("created", "found"):
            action.action = "created"

    def _task_input(
        self, task: dict[str, Any], company: str | None, owner: str | None
    ) -> dict[str, Any]:
        props = {
            "hs_timestamp": ms_iso(task["due_at"]) or ms_iso(clock.iso(self.ctx.now)),
            "hs_task_subject": task["subject"],
            "hs_task_body": body_html(task["body"] or "", marker_for(task["id"])),
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": task["priority"] or "MEDIUM",
            "hs_task_type": self.settings.task_type,
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
        links = self._links_of(task)
        if links:
            body.setdefault("associations", []).extend(self.link_inputs(links))
        return body

    def _links_of(self, task: dict[str, Any]) -> list[tuple[str, str]]:
        """The deals and contacts the task's evidence names (worked out once per push)."""
        cache: dict[str, list[tuple[str, str]]] = self.__dict__.setdefault("_task_links", {})
        if task["id"] not in cache:
            cache[task["id"]] = self.evidence_links(task)
        return cache[task["id"]]

    def _create_one(self, task: dict[str, Any], action: TaskAction) -> str:
        """Create one task (its row already ``pushing``); a refused owner falls back.

        An answer lost after sending is settled by looking for the marker: found means the
        create happened and it is not sent again.
        """
        owners = list(dict.fromkeys([action.owner_id, self.settings.fallback_owner_id, None]))
        i, attempts = 0, 0
        while True:
            owner = owners[i]
            body = self._task_input(task, action.object_id, owner)
            try:
                response = self.write("POST", "/crm/v3/objects/tasks", json=body)
            except AmbiguousWriteError as exc:
                attempts += 1
                self.ctx.result.retries += 1
                remote = self._find_existing(task, action.object_id)
                if remote is not None:
                    self.ctx.result.note(
                        f"task {task['id']}: the create's answer was lost ({exc.message}); "
                        "found it in HubSpot, not created again"
                    )
                    return remote
                if attempts >= CREATE_ATTEMPTS:
                    raise PushError(
                        f"task {task['id']}: HubSpot did not answer {attempts} creates and "
                        "none of them is there; checked again on the next push"
                    ) from None
                continue
            except FatalAPIError as exc:
                # HubSpot said no: nothing was created, so the row can go back to open.
                owner_problem = exc.status == 400 and "owner" in exc.message.lower()
                if owner_problem and i + 1 < len(owners):
                    self.ctx.result.error(
                        f"task {task['id']}: owner {owner} was refused; assigned to "
                        f"{owners[i + 1] or 'nobody'} instead"
                    )
                    i += 1
                    action.owner_id = owners[i]
                    continue
                if exc.status not in (401, 403):
                    self.ctx.outbox.release(task["id"])
                raise
            except RetriableAPIError:
                # Certainly not executed (rate limited, refused connection): back to open.
                self.ctx.outbox.release(task["id"])
                raise
            return str(response.json()["id"])

    def _find_existing(self, task: dict[str, Any], company: str | None) -> str | None:
        """The HubSpot id of a task this outbox row already created, if any (reads only)."""
        marker = marker_for(task["id"])
        if task.get("remote_id"):
            try:
                self.read("GET", f"/crm/v3/objects/tasks/{task['remote_id']}")
                return str(task["remote_id"])
            except FatalAPIError as exc:
                if exc.status != 404:
                    raise
        # 1. The company's tasks: a consistent read (search indexes lag behind creates).
        if company is not None:
            try:
                ids = self.associated_ids("companies", company, "tasks")
            except FatalAPIError as exc:
                if exc.status != 404:
                    raise
                ids = []
            for record in self.batch_read("tasks", ids, ["hs_task_body"]):
                if "_error" not in record and marker_in(record) == marker:
                    return str(record["id"])
        # 2. Search on the marker: finds a task whose association did not stick.
        return self.search_marker(marker)

    def _verified(self, pairs: list[tuple[str | None, str | None]]) -> set[str]:
        """Which (task, company) pairs HubSpot shows associated (v4 batch read, reads only)."""
        if not self.settings.verify_associations:
            return {task for task, _ in pairs if task}
        wanted = {str(t): str(c) for t, c in pairs if t and c}
        ok: set[str] = set()
        ids = list(wanted)
        for start in range(0, len(ids), 100):
            response = self.read(
                "POST",
                "/crm/v4/associations/tasks/companies/batch/read",
                json={"inputs": [{"id": i} for i in ids[start : start + 100]]},
            )
            for result in response.json().get("results") or []:
                task = str((result.get("from") or {}).get("id"))
                targets = {str(t.get("toObjectId")) for t in result.get("to") or []}
                if task in wanted and wanted[task] in targets:
                    ok.add(task)
        return ok

    def _verify_association(self, task_remote: str, company: str) -> None:
        """Read the task's company associations (v4); add the default one once if missing."""
        if company in self.associated_ids("tasks", task_remote, "companies"):
            return
        self.write(
            "PUT",
            f"/crm/v4/objects/tasks/{task_remote}/associations/default/companies/{company}",
            repeatable=True,
        )
        if company not in self.associated_ids("tasks", task_remote, "companies"):
            raise PushError(
                f"HubSpot task {task_remote} is not associated with company {company} "
                "after re-adding it",
                hint="check the token's scopes (crm.objects.companies.write)",
            )
