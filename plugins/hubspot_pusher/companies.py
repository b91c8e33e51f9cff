"""Health fields on HubSpot companies: the hub's own property group and properties, and
batch updates of only the values that changed.

* **Its own properties only.** On the first push it creates the group ``hub_health`` and the
  properties in ``PROPERTIES`` (409 "already exists" is fine); after ``hub uninstall`` it
  restores the ones it archived (a create of an archived name is a 409 in HubSpot). Each push reads the property
  list once, so a property an admin deleted is created again (and refilled). A property of
  that name in another group or of another type was not made by the hub: it is reported
  and never written. Every batch is checked against the allow-list right before it is
  sent, so no code path can write anything else.
* **Only changed values.** ``_hub_push_log`` holds what was last written per company and
  property; a value equal to it is not sent. ``hub_health_updated_at`` travels with real
  changes only. Companies the log has never seen are first read from HubSpot (batch read),
  so a rebuilt database does not rewrite the CRM.
* **Batches of ≤ 100** (``batch/update``), 207s handled per record: successes are logged,
  records that failed with a retriable error are retried alone up to ``record_retries``
  times, the rest are reported. Setting a value twice changes nothing, so an update whose
  answer was lost is simply sent again; a property or group create whose answer was lost is
  looked up before it is created again.
"""

from __future__ import annotations

import time
from typing import Any

from hub.errors import AmbiguousWriteError, FatalAPIError, PushError, RetriableAPIError
from hub.push import PropertyChange
from plugins.hubspot_pusher.client import by_message, parse_batch
from plugins.hubspot_pusher.mapping import FieldMapping
from plugins.hubspot_pusher.properties import (
    ALLOWED_PROPERTIES,
    BANDS,
    OBJECT_TYPE,
    foreign,
    missing_options,
    same,
)

PROPS_PATH = f"/crm/v3/properties/{OBJECT_TYPE}"
RESTORE_PATH = f"/crm/schemas/2027-03-beta/objects/{OBJECT_TYPE}/properties/batch/restore"


class CompanyProperties(FieldMapping):
    """The ``push_properties`` step of the HubSpot pusher."""

    def object_id(self, account: dict[str, Any]) -> str | None:
        return str(account.get("hubspot_company_id") or "") or None

    # -- schema -----------------------------------------------------------------------------

    def ensure_schema(self) -> tuple[set[str], bool]:
        """Make sure the group and properties exist; returns (writable properties, created now).

        One read per push (the property list) even when all is in place: a property a CRM
        admin deleted is noticed and created again, and its values are then written again
        on every company (its push log rows are dropped).
        """
        ctx, result = self.ctx, self.ctx.result
        existing = {p["name"]: p for p in self.read("GET", PROPS_PATH).json().get("results", [])}
        self._portal_types = {n: str(p.get("type")) for n, p in existing.items()}
        problems = self.mapping_problems(existing)
        if problems:
            # Before anything is written: a mapping that cannot hold its field stops the push.
            raise PushError("; ".join(problems))
        definitions = self.definitions()
        group = self.group()
        owned: set[str] = set(self.mapped())
        missing = []
        for name, definition in definitions.items():
            if name not in existing:
                missing.append(name)
                continue
            problem = foreign(existing[name], definition)
            if problem:
                result.error(f"property {name} exists but {problem}: the hub will not write it")
                continue
            owned.add(name)
            lacking = missing_options(existing[name], definition)
            if lacking:
                self._add_options(name, existing[name], lacking)
            self._relabel(name, existing[name], definition)
        if not missing:
            return owned, False
        groups = {
            g["name"] for g in self.read("GET", f"{PROPS_PATH}/groups").json().get("results", [])
        }
        if group["name"] not in groups:
            result.setup.append(f"create property group {group['name']}")
            if not ctx.dry_run:
                self._create(f"{PROPS_PATH}/groups", group, f"{PROPS_PATH}/groups/{group['name']}")
        restored = self._restore_archived(missing)
        for name in restored:
            owned.add(name)
            # Restored with the values it held when archived: write every value again.
            if not ctx.dry_run:
                ctx.forget(self.target, OBJECT_TYPE, prop=name)
        for name in [n for n in missing if n not in restored]:
            definition = definitions[name]
            result.setup.append(f"create property {name} ({definition['type']})")
            if ctx.dry_run:
                owned.add(name)
                continue
            if not self._create(PROPS_PATH, definition, f"{PROPS_PATH}/{name}"):
                # It existed already (409, or our own create whose answer was lost): ours?
                current = self.read("GET", f"{PROPS_PATH}/{name}").json()
                problem = foreign(current, definition)
                if problem:
                    result.error(f"property {name} exists but {problem}: the hub will not write it")
                    continue
            owned.add(name)
            # A new (or re-created) property is empty on every company.
            ctx.forget(self.target, OBJECT_TYPE, prop=name)
        return owned, True

    def _restore_archived(self, missing: list[str]) -> list[str]:
        """Restore the hub's own properties an uninstall archived (HubSpot answers 409 to a
        create of an archived name); returns the names restored (or, dry, to restore)."""
        archived = {
            p["name"]: p
            for p in self.read("GET", PROPS_PATH, params={"archived": "true"})
            .json()
            .get("results", [])
        }
        definitions = self.definitions()
        names = [
            n for n in missing if n in archived and foreign(archived[n], definitions[n]) is None
        ]
        if not names:
            return []
        self.ctx.result.setup.append(f"restore archived properties {', '.join(names)}")
        if self.ctx.dry_run:
            return names
        response = self.write(
            "POST",
            RESTORE_PATH,
            json={"inputs": [{"name": n} for n in names]},
            repeatable=True,
        )
        body = response.json()
        done = {str(p.get("name")) for p in body.get("results") or []}
        for error in body.get("errors") or []:
            self.ctx.result.error(f"could not restore a property: {error.get('message')}")
        return [n for n in names if n in done]

    def _add_options(self, name: str, existing: dict[str, Any], lacking: list[dict]) -> None:
        """A property made by an older hub lacks a band: add it (a PATCH is safe to repeat)."""
        self.ctx.result.setup.append(
            f"add {', '.join(o['value'] for o in lacking)} to the options of {name}"
        )
        if self.ctx.dry_run:
            return
        options = [*(existing.get("options") or []), *lacking]
        self.write("PATCH", f"{PROPS_PATH}/{name}", json={"options": options}, repeatable=True)

    def _relabel(self, name: str, existing: dict[str, Any], definition: dict[str, Any]) -> None:
        """The config's label or description changed since the hub made the property: follow
        it (only then; a PATCH of the same text is safe to repeat)."""
        changed = {
            key: definition[key]
            for key in ("label", "description")
            if str(existing.get(key) or "") != str(definition.get(key) or "")
        }
        if not changed:
            return
        self.ctx.result.setup.append(f"update the {' and '.join(changed)} of {name}")
        if not self.ctx.dry_run:
            self.write("PATCH", f"{PROPS_PATH}/{name}", json=changed, repeatable=True)

    def _create(self, path: str, body: dict[str, Any], read_path: str) -> bool:
        """POST a definition exactly once; False when it already existed.

        An answer lost after sending (``AmbiguousWriteError``) is settled by reading the
        definition back: found means our create happened, so it is not sent again.
        """
        for _ in range(3):
            try:
                self.write("POST", path, json=body)
                return True
            except FatalAPIError as exc:
                if exc.status == 409:
                    return False
                raise
            except AmbiguousWriteError as exc:
                self.ctx.result.retries += 1
                if self._exists(read_path):
                    self.ctx.result.note(
                        f"{body['name']}: the create's answer was lost ({exc.message}); "
                        "found it in HubSpot, not created again"
                    )
                    return False
        raise PushError(f"could not create {body['name']} in HubSpot after 3 attempts")

    def _exists(self, read_path: str) -> bool:
        try:
            self.read("GET", read_path)
        except FatalAPIError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- properties -------------------------------------------------------------------------

    def push_properties(self, items: dict[str, dict[str, Any]]) -> None:
        ctx, result = self.ctx, self.ctx.result
        owned, created = self.ensure_schema()
        by_company: dict[str, dict[str, Any]] = {}
        for account_id, item in items.items():
            company = self.object_id(item["account"])
            if company is not None:
                by_company[company] = {"account_id": account_id, **item}
        if not by_company:
            return
        logged = ctx.logged(self.target, OBJECT_TYPE)
        unseen = [cid for cid in by_company if cid not in logged]
        baseline: dict[str, dict[str, str]] = {}
        if unseen and not created:
            baseline = self._read_current(unseen, owned)
        plan: dict[str, dict[str, tuple[str, str]]] = {}  # company → property → (old, new)
        # The CRM already holds our value (a rebuilt database, a push killed after its write):
        # log it, as the write would have. An unset value was never written, so never logged.
        adopt: dict[str, dict[str, str]] = {}
        fields = self.field_map()
        band_prop, updated_prop = fields["band"], fields["updated_at"]

        def same_as(prop: str, old: str, new: str) -> bool:
            return same(prop, old, new, self.property_type(prop))

        for cid, item in by_company.items():
            values = {f: v for f, v in item["values"].items() if f in fields}
            before = logged.get(cid)
            if before is None:
                before = baseline.get(cid, {})
                if before:
                    adopt[cid] = {
                        p: v
                        for f, v in values.items()
                        if (p := fields[f]) in owned
                        and v != ""
                        and same_as(p, before.get(p, ""), v)
                    }
            changes: dict[str, tuple[str, str]] = {}
            for fld, value in values.items():
                prop = fields[fld]
                if prop not in owned or prop == updated_prop:
                    continue
                if prop == band_prop and value not in BANDS and value != "":
                    result.error(
                        f"company {cid}: band {value!r} is not one of {', '.join(BANDS)}; not pushed"
                    )
                    continue
                old = before.get(prop, "")
                if not same_as(prop, old, value):
                    changes[prop] = (old, value)
            if changes and updated_prop in owned:
                new = values.get("updated_at", "")
                old = before.get(updated_prop, "")
                if new and not same_as(updated_prop, old, new):
                    changes[updated_prop] = (old, new)
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
        size = self.settings.batch_size
        companies = sorted(plan)
        for start in range(0, len(companies), size):
            chunk = companies[start : start + size]
            inputs = {cid: {p: new for p, (_, new) in plan[cid].items()} for cid in chunk}
            self._send_batch(inputs, rows, owned)

    def _read_current(self, company_ids: list[str], owned: set[str]) -> dict[str, dict[str, str]]:
        """Current values of our properties on companies the push log has never seen."""
        names = sorted(owned)
        out: dict[str, dict[str, str]] = {}
        for record in self.batch_read(OBJECT_TYPE, company_ids, names):
            if "_error" in record:
                continue
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
        settings = self.settings
        pending = dict(inputs)
        attempt = 0
        schema_refreshed = False
        while pending:
            for props in pending.values():
                stray = set(props) - (owned & (ALLOWED_PROPERTIES | self.writable()))
                if stray:  # never reached in practice: the plan only holds owned properties
                    raise PushError(
                        f"refusing to write properties the hub did not create: {sorted(stray)}"
                    )
            body = {"inputs": [{"id": cid, "properties": p} for cid, p in pending.items()]}
            try:
                response = self.write(
                    "POST",
                    f"/crm/v3/objects/{OBJECT_TYPE}/batch/update",
                    json=body,
                    repeatable=True,
                )
            except RetriableAPIError as exc:
                self._fail(pending, rows, str(exc))
                return
            except FatalAPIError as exc:
                if exc.status in (401, 403):
                    raise PushError(exc.message, hint=exc.hint) from None
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
            succeeded, retry, failed = parse_batch(response, pending)
            if succeeded:
                self.ctx.record(self.target, OBJECT_TYPE, {cid: pending[cid] for cid in succeeded})
                for cid in succeeded:
                    for prop in pending[cid]:
                        rows[(cid, prop)].status = "written"
            for message, cids in by_message(failed).items():
                self._fail({cid: pending[cid] for cid in cids}, rows, message)
            if retry and attempt < settings.record_retries:
                attempt += 1
                if settings.record_retry_delay:
                    time.sleep(settings.record_retry_delay * attempt)
                pending = {cid: pending[cid] for cid in retry}
                continue
            for message, cids in by_message(retry).items():
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
