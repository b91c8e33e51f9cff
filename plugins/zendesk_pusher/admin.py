"""The Zendesk pusher's admin steps: access check, revert of a push run, uninstall.

* ``check_access()``: what ``hub check`` asks before a push: the token's user must be an
  admin (only admins create organization fields and set their values) and the field list
  must be readable (a harmless read of ``/api/v2/organization_fields``).
* ``restore(rows)``: puts back the values a push run replaced (its history rows), with the
  same bulk requests and per-record job results as a push.
* ``uninstall()``: deletes the organization fields the hub created (key prefix and marker;
  mapped fields are never deleted) and forgets their push log, so a later push installs
  them again from scratch.
"""

from __future__ import annotations

from typing import Any

from hub.errors import FatalAPIError, HubError
from hub.push import PropertyChange
from plugins.zendesk_pusher.fields import is_ours
from plugins.zendesk_pusher.organizations import ADMIN_HINT, OBJECT_TYPE, OrganizationFields


class ZendeskAdmin(OrganizationFields):
    """Access check, revert and uninstall (see the module docstring)."""

    def check_access(self) -> list[str]:
        """What the push needs and the token lacks, one line each ([] = all there)."""
        problems: list[str] = []
        try:
            user = self.read("GET", "/api/v2/users/me.json").json().get("user") or {}
        except HubError as exc:
            return [f"Zendesk /users/me failed: {exc}"]
        role = str(user.get("role") or "unknown")
        if role != "admin":
            problems.append(
                f"the token acts as {user.get('email') or 'its user'} ({role}); creating "
                f"organization fields and writing their values needs an admin: {ADMIN_HINT}"
            )
        try:
            existing = self.list_fields()
        except HubError as exc:
            problems.append(f"cannot read /api/v2/organization_fields: {exc}")
            return problems
        problems.extend(self.mapping_errors(existing))
        return problems

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Write back the ``old`` values of a run's history rows (org → key → old)."""
        ctx, result = self.ctx, self.ctx.result
        targets, _ = self.ensure_fields()
        by_key = {t.key: t for t in targets.values()}
        logged = ctx.logged(self.target, OBJECT_TYPE)
        values: dict[str, dict[str, str]] = {}
        changes: dict[tuple[str, str], PropertyChange] = {}
        for row in rows:
            if row.get("object_type") != OBJECT_TYPE or not row.get("property"):
                continue
            org, key = str(row["object_id"]), str(row["property"])
            if key not in by_key:
                result.error(f"organization {org}: field {key} is gone; not restored")
                continue
            old = "" if row.get("old") is None else str(row["old"])
            current = logged.get(org, {}).get(key, "")
            if current == old:
                continue
            values.setdefault(org, {})[key] = old
            change = PropertyChange(
                OBJECT_TYPE, org, str(row.get("account_id") or ""), "", key, current, old
            )
            changes[(org, key)] = change
            result.changes.append(change)
        if not values or ctx.dry_run:
            return
        failures = self.send(values, by_key)
        ctx.record(self.target, OBJECT_TYPE, {o: v for o, v in values.items() if o not in failures})
        for (org, _key), change in changes.items():
            if org in failures:
                change.status, change.error = "failed", failures[org]
            else:
                change.status = "written"

    def uninstall(self) -> list[str]:
        """Delete the hub's own organization fields; what was (or would be) removed."""
        ctx, prefix = self.ctx, self.settings.key_prefix
        removed = []
        for f in self.list_fields():
            if not is_ours(f, prefix):
                continue
            removed.append(f"delete organization field {f['key']} ({f.get('type')})")
            if ctx.dry_run:
                continue
            try:
                self.write("DELETE", f"/api/v2/organization_fields/{f['id']}.json", repeatable=True)
            except FatalAPIError as exc:
                if exc.status != 404:  # already gone is what we wanted
                    raise
            ctx.forget(self.target, OBJECT_TYPE, prop=str(f["key"]))
        ctx.result.setup.extend(removed)
        return removed
