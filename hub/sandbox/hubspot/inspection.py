"""HubSpot fake: inspection helpers for tests."""

from __future__ import annotations

import copy
from typing import Any

from hub.sandbox.hubspot.common import _Reject
from hub.sandbox.hubspot.schema import (
    ALIASES,
    TYPES,
)


class _Inspection:
    """Read the portal's state directly (tests and benchmarks)."""

    # -- inspection helpers for tests ---------------------------------------------------------

    def objects(self, t: str, *, archived: bool = False) -> list[dict[str, Any]]:
        """Every live (or archived) record of a type, rendered with all its properties."""
        t = ALIASES[t]
        with self._lock:
            self._materialize_all()
            ids = self._archived[t] if archived else self._active[t]
            return [
                self._render(t, self._store[t][i], self._all_names(t, self._store[t][i]))
                for i in ids
            ]

    def get(self, t: str, oid: Any) -> dict[str, Any] | None:
        """One live record (following merges) with all its properties, or None."""
        t = ALIASES[t]
        with self._lock:
            self._materialize_all()
            obj = self._live(t, oid)
            return None if obj is None else self._render(t, obj, self._all_names(t, obj))

    def associations(self, frm: str, oid: Any, to: str) -> list[tuple[str, list[int]]]:
        """[(to id, association type ids)] for one record."""
        frm, to = ALIASES[frm], ALIASES[to]
        with self._lock:
            self._materialize_all()
            obj = self._live(frm, oid)
            return (
                []
                if obj is None
                else [(str(i), list(types)) for i, types in self._links(frm, obj.id, to)]
            )

    def properties(self, t: str) -> dict[str, dict[str, Any]]:
        """The property registry of a type (copies)."""
        return copy.deepcopy(self._props[ALIASES[t]])

    def set_properties(self, t: str, oid: Any, values: dict[str, Any]) -> dict[str, Any]:
        """A CRM user edits a record in the UI (validated, bumps the modification time)."""
        t = ALIASES[t]
        with self._lock:
            self._materialize_all()
            obj = self._live(t, oid)
            if obj is None:
                raise KeyError(f"{t} {oid} not found")
            try:
                self._apply(t, obj, self._normalize(t, values), self._now_ms(), "CRM_UI")
            except _Reject as reject:
                raise ValueError(reject.response.json()["message"]) from None
            return self._render(t, obj, self._all_names(t, obj))

    def complete_task(self, task_id: Any) -> dict[str, Any]:
        """A CSM ticks a task off in HubSpot."""
        return self.set_properties("tasks", task_id, {"hs_task_status": "COMPLETED"})

    def merge(self, primary: Any, merged: Any, t: str = "companies") -> dict[str, Any]:
        """Merge ``merged`` into ``primary`` as a CRM user would; returns the survivor."""
        t = ALIASES[t]
        with self._lock:
            self._materialize_all()
            survivor = self._merge(t, primary, merged, self._now_ms())
            return self._render(t, survivor, self._all_names(t, survivor))

    def archive(self, t: str, oid: Any) -> None:
        """A CRM user deletes a record (it moves to the archived list)."""
        t = ALIASES[t]
        with self._lock:
            self._materialize_all()
            obj = self._live(t, oid)
            if obj is not None:
                self._archive(t, obj, self._now_ms())

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of every record, property, group and association, for before/after diffs."""
        with self._lock:
            self._materialize_all()
            objects: dict[str, dict[str, Any]] = {}
            for t in TYPES:
                rendered = {}
                for oid, obj in self._store[t].items():
                    if obj.merged_into is not None:
                        continue
                    item = self._render(t, obj, self._all_names(t, obj))
                    rendered[str(oid)] = item
                objects[t] = rendered
            return {
                "objects": objects,
                "merged": {
                    t: {
                        str(o.id): str(o.merged_into)
                        for o in self._store[t].values()
                        if o.merged_into is not None
                    }
                    for t in TYPES
                },
                "properties": copy.deepcopy(self._props),
                "groups": copy.deepcopy(self._groups),
                "associations": {
                    f"{frm}->{to}": {
                        str(a): {str(b): list(ts) for b, ts in links.items()}
                        for a, links in table.items()
                        if links
                    }
                    for (frm, to), table in self._assoc.items()
                },
            }
