"""The HubSpot pusher's undo hooks: what ``hub push revert`` and ``hub uninstall hubspot``
read and write (the push core decides what to restore, skip or archive).

* values: batch read and batch update of company properties, 100 per request, only ever
  the properties the hub owns (the allow-list check of every batch holds here too);
* tasks: batch read of their status, batch archive (HubSpot keeps archived tasks
  restorable for 90 days), and the open tasks carrying the hub's marker, found by a search
  on the marker's prefix plus the tasks the outbox knows it delivered (the search index
  lags behind recent creates);
* schema: the hub's own properties (its group, its type) and the group; uninstall archives
  the properties in one batch, then the group. A property the hub did not create is never
  listed, so it is never archived.
"""

from __future__ import annotations

from typing import Any

from hub.errors import FatalAPIError, PushError, RetriableAPIError
from hub.push import SchemaItem
from plugins.hubspot_pusher.client import marker_in, parse_batch
from plugins.hubspot_pusher.mapping import FieldMapping
from plugins.hubspot_pusher.properties import OBJECT_TYPE, foreign, same

PROPS_PATH = f"/crm/v3/properties/{OBJECT_TYPE}"
SEARCH_CAP = 10_000  # HubSpot's search returns at most 10,000 results per query


class Undo(FieldMapping):
    """The undo and uninstall hooks of the HubSpot pusher."""

    # -- values -----------------------------------------------------------------------------

    def read_values(
        self, object_type: str, ids: list[str], properties: list[str]
    ) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for record in self.batch_read(object_type, ids, properties):
            if "_error" in record:
                continue
            props = record.get("properties") or {}
            out[str(record.get("id"))] = {
                p: "" if props.get(p) is None else str(props[p]) for p in properties
            }
        return out

    def write_values(self, object_type: str, values: dict[str, dict[str, str]]) -> dict[str, str]:
        stray = {p for props in values.values() for p in props} - self.writable_properties()
        if object_type != OBJECT_TYPE or stray:
            raise PushError(
                f"refusing to write properties the hub does not own: {sorted(stray)}"
                if stray
                else f"the HubSpot pusher writes companies, not {object_type}"
            )
        failures: dict[str, str] = {}
        ids = sorted(values)
        size = self.settings.batch_size
        for start in range(0, len(ids), size):
            chunk = {cid: values[cid] for cid in ids[start : start + size]}
            body = {"inputs": [{"id": cid, "properties": p} for cid, p in chunk.items()]}
            path = f"/crm/v3/objects/{OBJECT_TYPE}/batch/update"
            response, failed = self._send("POST", path, body, list(chunk))
            failures.update(failed)
            if response is not None:
                _, retry, refused = parse_batch(response, chunk)
                failures.update(retry)
                failures.update(refused)
        return failures

    def same_value(self, prop: str, a: str, b: str) -> bool:
        return same(prop, a, b, self.property_type(prop))

    def writable_properties(self) -> set[str]:
        """The company properties the hub may write: its own and the mapped ones."""
        return set(self.writable())

    # -- tasks --------------------------------------------------------------------------------

    def task_states(self, remote_ids: list[str]) -> dict[str, str]:
        states = {rid: "gone" for rid in remote_ids}
        for record in self.batch_read("tasks", list(dict.fromkeys(remote_ids)), ["hs_task_status"]):
            if "_error" in record:
                continue
            rid = str(record.get("id"))
            status = str((record.get("properties") or {}).get("hs_task_status") or "").upper()
            states[rid] = "completed" if status == "COMPLETED" else "open"
        return states

    def archive_tasks(self, remote_ids: list[str]) -> dict[str, str]:
        failures: dict[str, str] = {}
        for start in range(0, len(remote_ids), 100):
            chunk = remote_ids[start : start + 100]
            # Archiving twice changes nothing: safe to resend after a lost answer.
            body = {"inputs": [{"id": rid} for rid in chunk]}
            failures.update(
                self._send("POST", "/crm/v3/objects/tasks/batch/archive", body, chunk)[1]
            )
        return failures

    def marked_tasks(self) -> list[dict[str, str]]:
        found: dict[str, dict[str, Any]] = {}
        after: str | None = None
        while len(found) < SEARCH_CAP:
            body: dict[str, Any] = {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "hs_task_body",
                                "operator": "CONTAINS_TOKEN",
                                "value": "hubtask*",
                            },
                            {
                                "propertyName": "hs_task_status",
                                "operator": "NEQ",
                                "value": "COMPLETED",
                            },
                        ]
                    }
                ],
                "properties": ["hs_task_body", "hs_task_subject", "hs_task_status"],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "limit": 100,
            }
            if after:
                body["after"] = after
            page = self.read("POST", "/crm/v3/objects/tasks/search", json=body).json()
            for record in page.get("results") or []:
                found[str(record["id"])] = record
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
        # The outbox's delivered tasks: found even before the search index has them.
        known = [
            str(t["remote_id"])
            for t in self.ctx.outbox.tasks(["pushed"])
            if t.get("remote_id") and t.get("target") in (None, "", self.name)
        ]
        missing = [rid for rid in known if rid not in found]
        for record in self.batch_read(
            "tasks", missing, ["hs_task_body", "hs_task_subject", "hs_task_status"]
        ):
            if "_error" not in record:
                found[str(record["id"])] = record
        out = []
        for rid, record in found.items():
            props = record.get("properties") or {}
            marker = marker_in(record)
            if marker is None or str(props.get("hs_task_status") or "").upper() == "COMPLETED":
                continue
            out.append(
                {
                    "remote_id": rid,
                    "task_id": marker[len("hubtask") :],
                    "subject": str(props.get("hs_task_subject") or ""),
                }
            )
        return out

    # -- schema -------------------------------------------------------------------------------

    def installed(self) -> list[SchemaItem]:
        existing = {p["name"]: p for p in self.read("GET", PROPS_PATH).json().get("results", [])}
        # Only the hub's own (a mapped property is the portal's: never archived).
        items = [
            SchemaItem("field", name, existing[name].get("label") or "", OBJECT_TYPE)
            for name, definition in self.definitions().items()
            if name in existing and foreign(existing[name], definition) is None
        ]
        groups = {
            g["name"]: g for g in self.read("GET", f"{PROPS_PATH}/groups").json().get("results", [])
        }
        group = self.settings.group_name
        if group in groups:
            items.append(SchemaItem("group", group, groups[group].get("label") or "", OBJECT_TYPE))
        return items

    def remove_installed(self, items: list[SchemaItem]) -> dict[str, str]:
        failures: dict[str, str] = {}
        fields = [i.name for i in items if i.kind == "field"]
        if fields:
            # Archived properties keep their values and can be restored (re-install).
            body = {"inputs": [{"name": n} for n in fields]}
            failures.update(self._send("POST", f"{PROPS_PATH}/batch/archive", body, fields)[1])
        for item in items:
            if item.kind != "group":
                continue
            if failures:
                failures[item.name] = "left in place: some of its properties were not archived"
                continue
            path = f"{PROPS_PATH}/groups/{item.name}"
            _, failed = self._send("DELETE", path, None, [item.name])
            if failed:
                failures[item.name] = (
                    f"left in place: {failed[item.name]} (it holds properties the hub did not "
                    "create)"
                )
        return failures

    def _send(
        self, method: str, path: str, body: Any, keys: list[str]
    ) -> tuple[Any, dict[str, str]]:
        """One write whose repetition changes nothing: (response, {}) or (None, key → error).

        A refused token or scope stops the whole step (every later write would fail too).
        """
        try:
            return self.write(method, path, json=body, repeatable=True), {}
        except (FatalAPIError, RetriableAPIError) as exc:
            if isinstance(exc, FatalAPIError) and exc.status in (401, 403):
                raise PushError(exc.message, hint=exc.hint) from None
            return None, {key: str(exc) for key in keys}
