"""The Zendesk pusher's admin hooks: the access check and the undo hooks the push core calls
for ``hub push revert RUN`` and ``hub uninstall zendesk`` (``hub.push.undo`` decides what
to restore or remove; these only read and write Zendesk).

* ``check_access()``: what ``hub check`` and ``hub push --dry-run`` ask before a push: the
  token's user must be an admin (only admins create organization fields and set their
  values), the field list must be readable (a harmless read of
  ``/api/v2/organization_fields``) and every mapped field must fit its hub field.
* ``read_values``/``write_values``: organization field values by organization, read with
  ``organizations/show_many`` and written with the same bulk requests and per-record job
  results as a push (only fields the hub owns or was mapped onto).
* ``installed``/``remove_installed``: the organization fields the hub created (key prefix
  and marker; a mapped field is never listed) and deleting them. Zendesk has no archive for
  fields: a deleted field's values are gone, and the next push creates the field again and
  fills it.
"""

from __future__ import annotations

from hub.errors import FatalAPIError, HubError, PushError, RetriableAPIError
from hub.push import SchemaItem
from plugins.zendesk_pusher.fields import Target, is_ours
from plugins.zendesk_pusher.organizations import (
    ADMIN_HINT,
    OBJECT_TYPE,
    OrganizationFields,
    _target,
)


class ZendeskAdmin(OrganizationFields):
    """Access check and undo hooks (see the module docstring)."""

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

    # -- values -------------------------------------------------------------------------------

    def current_targets(self) -> dict[str, Target]:
        """Field key → target for the fields the hub may write now (its own, and the mapped
        ones that fit); reads only, creates nothing. Read once per pusher (one undo run)."""
        cached: dict[str, Target] | None = getattr(self, "_current_targets", None)
        if cached is not None:
            return cached
        prefix = self.settings.key_prefix
        mapped = {key: hub_field for hub_field, key in self.settings.fields.items()}
        out: dict[str, Target] = {}
        for f in self.list_fields():
            key = str(f.get("key"))
            if key in mapped:
                out[key] = _target(mapped[key], f, owned=False)
            elif is_ours(f, prefix):
                out[key] = _target(key.removeprefix(prefix), f, owned=True)
        self._current_targets = out
        return out

    def read_values(
        self, object_type: str, ids: list[str], properties: list[str]
    ) -> dict[str, dict[str, str]]:
        self._object_type(object_type)
        current = self.read_current(ids, self.current_targets())
        return {
            org: {key: values.get(key, "") for key in properties} for org, values in current.items()
        }

    def write_values(self, object_type: str, values: dict[str, dict[str, str]]) -> dict[str, str]:
        self._object_type(object_type)
        targets = self.current_targets()
        stray = {k for props in values.values() for k in props} - set(targets)
        if stray:
            raise PushError(
                f"refusing to write organization fields the hub does not own: {sorted(stray)}",
                hint="a field deleted since the push cannot be restored; push again to recreate it",
            )
        return self.send(values, targets)

    def same_value(self, prop: str, a: str, b: str) -> bool:
        if a == b:
            return True
        try:
            return float(a) == float(b)
        except ValueError:
            return False

    def _object_type(self, object_type: str) -> None:
        if object_type != OBJECT_TYPE:
            raise PushError(f"the Zendesk pusher writes {OBJECT_TYPE}, not {object_type}")

    # -- schema -------------------------------------------------------------------------------

    def installed(self) -> list[SchemaItem]:
        prefix = self.settings.key_prefix
        return [
            SchemaItem("field", str(f["key"]), str(f.get("title") or ""), OBJECT_TYPE)
            for f in self.list_fields()
            if is_ours(f, prefix)
        ]

    def remove_installed(self, items: list[SchemaItem]) -> dict[str, str]:
        by_key = {str(f["key"]): f for f in self.list_fields()}
        failures: dict[str, str] = {}
        for item in items:
            f = by_key.get(item.name)
            if f is None:
                continue  # already gone: what uninstall wants
            if not is_ours(f, self.settings.key_prefix):  # never reached: installed() lists ours
                failures[item.name] = "not made by the hub; left in place"
                continue
            try:
                # Deleting twice leaves it deleted: safe to resend after a lost answer.
                self.write("DELETE", f"/api/v2/organization_fields/{f['id']}.json", repeatable=True)
            except (FatalAPIError, RetriableAPIError) as exc:
                if isinstance(exc, FatalAPIError) and exc.status == 404:
                    continue
                if isinstance(exc, FatalAPIError) and exc.status in (401, 403):
                    raise PushError(
                        f"Zendesk refused to delete organization field {item.name} ({exc.status})",
                        hint=ADMIN_HINT,
                    ) from None
                failures[item.name] = str(exc)
        return failures
