"""HubSpot fake: storage primitives and association tables."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from hub.sandbox.hubspot.common import _KEY, _Obj
from hub.sandbox.hubspot.schema import (
    ALWAYS_PROPS,
    CREATED_PROP,
    DEFAULT_PROPS,
    MODIFIED_PROP,
    REVERSE_TYPE,
    iso_ms,
    v3_type_name,
)


class _Storage:
    """Storage primitives (create, update, archive, indexes, render) and association tables."""

    # -- storage primitives -----------------------------------------------------------------

    def _new_id(self, t: str) -> int:
        oid = self._next_id[t]
        self._next_id[t] = oid + 1
        return oid

    def _insert(
        self, t: str, props: dict[str, str], created: int, updated: int, oid: int | None = None
    ) -> _Obj:
        oid = self._new_id(t) if oid is None else oid
        obj = _Obj(oid, props, created, updated)
        self._store[t][oid] = obj
        active = self._active[t]
        if not active or active[-1] < oid:
            active.append(oid)
        else:
            bisect.insort(active, oid)
        if self._lm_ready:
            bisect.insort(self._lm[t], updated * _KEY + oid)
        return obj

    def _touch(self, t: str, obj: _Obj, at: int) -> None:
        """Record a change: the modification time moves and the search index follows."""
        at = max(at, obj.updated)  # never backwards (seeded traps are dated in the past)
        if self._lm_ready and obj.archived_at is None and obj.merged_into is None:
            index = self._lm[t]
            old = obj.updated * _KEY + obj.id
            i = bisect.bisect_left(index, old)
            if i < len(index) and index[i] == old:
                del index[i]
            bisect.insort(index, at * _KEY + obj.id)
        obj.updated = at

    def _deactivate(self, t: str, obj: _Obj) -> None:
        active = self._active[t]
        i = bisect.bisect_left(active, obj.id)
        if i < len(active) and active[i] == obj.id:
            del active[i]
        if not self._lm_ready:
            return
        index = self._lm[t]
        key = obj.updated * _KEY + obj.id
        i = bisect.bisect_left(index, key)
        if i < len(index) and index[i] == key:
            del index[i]

    def _live(self, t: str, oid: Any) -> _Obj | None:
        """The active record for ``oid``, following merges; None when missing or archived."""
        try:
            key = int(oid)
        except (TypeError, ValueError):
            return None
        obj = self._store[t].get(key)
        if obj is None and self._left:
            obj = self._lazy_get(t, key)
        seen = 0
        while obj is not None and obj.merged_into is not None and seen < 50:
            obj = self._store[t].get(obj.merged_into)
            seen += 1
        if obj is None or obj.archived_at is not None:
            return None
        return obj

    def _by_property(self, t: str, prop: str, value: Any) -> _Obj | None:
        """Find an active record by a unique property (``idProperty``); O(n), used rarely."""
        if prop in ("hs_object_id", "id"):
            return self._live(t, value)
        self._materialize_all()
        want = str(value).lower()
        for oid in self._active[t]:
            obj = self._store[t][oid]
            got = obj.props.get(prop)
            if got is not None and got.lower() == want:
                return obj
        return None

    def _value(self, t: str, obj: _Obj, name: str) -> str | None:
        if name == "hs_object_id":
            return str(obj.id)
        if name == CREATED_PROP[t]:
            return iso_ms(obj.created)
        if name == MODIFIED_PROP[t]:
            return iso_ms(obj.updated)
        return obj.props.get(name)

    def _names(self, t: str, requested: Iterable[str] | None) -> list[str]:
        """Properties to render: the default set, or the requested known ones plus the always-set."""
        registry = self._props[t]
        wanted = [p for p in (requested or []) if p in registry]
        base = ALWAYS_PROPS[t] if wanted else DEFAULT_PROPS[t]
        return list(dict.fromkeys([*base, *wanted]))

    def _render(
        self,
        t: str,
        obj: _Obj,
        names: list[str],
        assoc_to: list[str] | None = None,
        history: list[str] | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(obj.id),
            "properties": {n: self._value(t, obj, n) for n in names},
            "createdAt": iso_ms(obj.created),
            "updatedAt": iso_ms(obj.updated),
            "archived": obj.archived_at is not None,
        }
        if obj.archived_at is not None:
            out["archivedAt"] = iso_ms(obj.archived_at)
        if history:
            out["propertiesWithHistory"] = {n: self._history(t, obj, n) for n in history}
        if assoc_to:
            assocs: dict[str, Any] = {}
            for to in assoc_to:
                links = self._links(t, obj.id, to)
                if links:
                    results = []
                    for to_id, types in links:
                        for tid in types:
                            results.append({"id": str(to_id), "type": v3_type_name(t, to, tid)})
                    assocs[to] = {"results": results}
            if assocs:
                out["associations"] = assocs
        return out

    def _history(self, t: str, obj: _Obj, name: str) -> list[dict[str, Any]]:
        """A property's history, newest first, in HubSpot's ``ValueWithTimestamp`` shape."""
        entries = (obj.history or {}).get(name)
        if entries is None:
            value = self._value(t, obj, name)
            if value is None:
                return []
            stamp = obj.updated if name == MODIFIED_PROP[t] else obj.created
            entries = [(value, stamp, "CRM_UI")]
        return [
            {"value": value, "timestamp": iso_ms(at), "sourceType": source}
            for value, at, source in reversed(entries)
        ]

    def _history_names(self, t: str, requested: Iterable[str] | None) -> list[str]:
        return [p for p in dict.fromkeys(requested or []) if p in self._props[t]]

    def _all_names(self, t: str, obj: _Obj) -> list[str]:
        return list(dict.fromkeys([*ALWAYS_PROPS[t], *sorted(obj.props)]))

    # -- associations -----------------------------------------------------------------------

    def _associate(self, frm: str, fid: int, to: str, tid: int, type_ids: Iterable[int]) -> None:
        type_ids = tuple(type_ids)
        table = self._assoc[(frm, to)].setdefault(fid, {})
        table[tid] = tuple(sorted(set(table.get(tid, ())) | set(type_ids)))
        back = self._assoc[(to, frm)].setdefault(tid, {})
        rev = {REVERSE_TYPE[x] for x in type_ids}
        back[fid] = tuple(sorted(set(back.get(fid, ())) | rev))

    def _unassociate(self, frm: str, fid: int, to: str, tid: int) -> bool:
        removed = self._assoc[(frm, to)].get(fid, {}).pop(tid, None) is not None
        self._assoc[(to, frm)].get(tid, {}).pop(fid, None)
        return removed

    def _links(self, frm: str, fid: int, to: str) -> list[tuple[int, tuple[int, ...]]]:
        """Associations to live records, in id order."""
        pair = (frm, to)
        if pair not in self._assoc:
            return []
        table = self._assoc[pair].get(fid) or {}
        store = self._store[to]
        out = []
        for tid in sorted(table):
            target = store.get(tid)
            if target is not None and target.archived_at is None and target.merged_into is None:
                out.append((tid, table[tid]))
        return out

    def _set_primary_company(self, contact: _Obj, company_id: int | None) -> None:
        """``associatedcompanyid`` and the primary contact→company association move together."""
        for cid, types in list(
            (self._assoc[("contacts", "companies")].get(contact.id) or {}).items()
        ):
            if 1 in types:
                rest = tuple(x for x in types if x != 1)
                self._unassociate("contacts", contact.id, "companies", cid)
                if rest:
                    self._associate("contacts", contact.id, "companies", cid, rest)
        if company_id is not None:
            self._associate("contacts", contact.id, "companies", company_id, (1, 279))
