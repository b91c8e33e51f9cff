"""HubSpot fake: CRM search and record merge."""

from __future__ import annotations

import bisect
import fnmatch
import re
from collections.abc import Callable
from typing import Any

import httpx

from hub.sandbox.base import (
    json_response,
)
from hub.sandbox.hubspot.common import _KEY, _Obj, endpoint
from hub.sandbox.hubspot.schema import (
    CREATED_PROP,
    MODIFIED_PROP,
    QUERY_PROPS,
    SEARCH_MAX_LIMIT,
    SINGULAR,
    converter,
    parse_ms,
    sort_spec,
)


class _Search:
    """The search endpoint (filters, sorts, the 10k cap) and merges."""

    # -- search -----------------------------------------------------------------------------

    @endpoint("POST", r"/crm/v3/objects/(?P<otype>[^/]+)/search")
    def search(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        body = self._body(request)
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or limit < 0 or limit > SEARCH_MAX_LIMIT:
            raise self._reject(
                400, f"limit must be between 0 and {SEARCH_MAX_LIMIT}; got {limit!r}"
            )
        try:
            offset = int(body.get("after") or 0)
        except (TypeError, ValueError):
            raise self._reject(400, f"Invalid 'after' value: {body.get('after')!r}") from None
        if offset >= self.search_cap:
            raise self._reject(
                400,
                f"Search results are limited to {self.search_cap} records per query: 'after' {offset} "
                f"is past the limit. Narrow the query (e.g. re-window on hs_lastmodifieddate).",
                category="VALIDATION_ERROR",
            )
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list) or len(groups) > 6:
            raise self._reject(400, "Too many filterGroups: at most 6 are allowed")
        total_filters = 0
        for group in groups:
            filters = (group or {}).get("filters") or []
            if len(filters) > 6:
                raise self._reject(400, "Too many filters in a filterGroup: at most 6 are allowed")
            total_filters += len(filters)
        if total_filters > 18:
            raise self._reject(
                400, "Too many filters: at most 18 are allowed in all filterGroups together"
            )
        sorts = [sort_spec(s) for s in body.get("sorts") or []]
        for prop, _ in sorts:
            if prop not in self._props[t] and prop != "id":
                raise self._reject(400, f'Cannot sort by unknown property "{prop}"')
        ids, total = self._search_ids(t, groups, sorts, body.get("query"), offset, limit)
        names = self._names(t, body.get("properties"))
        store = self._store[t]
        result: dict[str, Any] = {
            "total": total,
            "results": [self._render(t, store[i], names) for i in ids],
        }
        if offset + limit < total:
            result["paging"] = {"next": {"after": str(offset + limit)}}
        return json_response(200, result)

    def _search_ids(self, t: str, groups: list[Any], sorts: list[tuple[str, bool]], query: Any,
                    offset: int, limit: int) -> tuple[list[int], int]:  # fmt: skip
        """Ids on the requested page and the total count; uses the (lastmod, id) index when it can."""
        modified = MODIFIED_PROP[t]
        end = offset + limit  # a page below the cap is whole; only 'after' past it is refused
        fast = (
            len(groups) == 1
            and not query
            and len(sorts) <= 1
            and all(
                f.get("propertyName") in (modified, "hs_object_id")
                for f in groups[0].get("filters") or []
            )
        )
        if fast:
            bounds = self._index_bounds(t, groups[0].get("filters") or [])
            sort_prop, descending = sorts[0] if sorts else (modified, False)
            if bounds is not None and (
                sort_prop == modified or (sort_prop in ("hs_object_id", "id") and bounds[2])
            ):
                lo, hi, _ = bounds
                index = self._lm[t]
                i, j = bisect.bisect_left(index, lo), bisect.bisect_right(index, hi)
                total = max(0, j - i)
                if descending:
                    keys = index[max(i, j - end) : max(i, j - offset)][::-1]
                else:
                    keys = index[i + offset : min(j, i + end)]
                return [k % _KEY for k in keys], total
        # General path: evaluate every filter on every live record.
        checks = [[self._compile(t, f) for f in (g or {}).get("filters") or []] for g in groups]
        store = self._store[t]
        text = str(query).lower() if query else None
        matched = []
        for oid in self._active[t]:
            obj = store[oid]
            if checks and not any(all(c(obj) for c in group) for group in checks):
                continue
            if text and not any(text in (obj.props.get(p) or "").lower() for p in QUERY_PROPS[t]):
                continue
            matched.append(obj)
        for prop, descending in reversed(sorts or [("hs_object_id", False)]):
            getter = self._getter(t, "hs_object_id" if prop == "id" else prop)
            present = [o for o in matched if getter(o) is not None]
            absent = [o for o in matched if getter(o) is None]
            present.sort(key=getter, reverse=descending)
            matched = present + absent
        return [o.id for o in matched[offset:end]], len(matched)

    def _index_bounds(self, t: str, filters: list[dict[str, Any]]) -> tuple[int, int, bool] | None:
        """Index key range for filters on the modification time (and, at one instant, the id)."""
        lo_t, hi_t = 0, 10**15
        lo_id, hi_id = 0, _KEY - 1
        id_filters = []
        for f in filters:
            op = str(f.get("operator", "")).upper()
            if f.get("propertyName") == "hs_object_id":
                id_filters.append(f)
                continue
            a = parse_ms(f.get("value"))
            if op == "BETWEEN":
                b = parse_ms(f.get("highValue"))
                if a is None or b is None:
                    raise self._reject(400, "BETWEEN needs a date 'value' and 'highValue'")
                lo_t, hi_t = max(lo_t, a), min(hi_t, b)
                continue
            if op not in ("EQ", "GT", "GTE", "LT", "LTE"):
                return None
            if a is None:
                raise self._reject(
                    400, f"{f.get('value')!r} is not a valid date for {f.get('propertyName')}"
                )
            if op in ("EQ", "GTE"):
                lo_t = max(lo_t, a)
            if op in ("EQ", "LTE"):
                hi_t = min(hi_t, a)
            if op == "GT":
                lo_t = max(lo_t, a + 1)
            if op == "LT":
                hi_t = min(hi_t, a - 1)
        pinned = lo_t == hi_t
        if id_filters and not pinned:
            return None
        for f in id_filters:
            op = str(f.get("operator", "")).upper()
            try:
                v = int(str(f.get("value")))
            except ValueError:
                raise self._reject(
                    400, f"{f.get('value')!r} is not a valid number for hs_object_id"
                ) from None
            if op == "EQ":
                lo_id, hi_id = max(lo_id, v), min(hi_id, v)
            elif op == "GT":
                lo_id = max(lo_id, v + 1)
            elif op == "GTE":
                lo_id = max(lo_id, v)
            elif op == "LT":
                hi_id = min(hi_id, v - 1)
            elif op == "LTE":
                hi_id = min(hi_id, v)
            else:
                return None
        if lo_t > hi_t or lo_id > hi_id:
            return (1, 0, pinned)
        if pinned:
            return (lo_t * _KEY + lo_id, lo_t * _KEY + hi_id, True)
        return (lo_t * _KEY, hi_t * _KEY + _KEY - 1, False)

    def _getter(self, t: str, name: str) -> Callable[[_Obj], Any]:
        """A function giving the comparable value of property ``name`` (None when unset)."""
        if name not in self._props[t]:
            raise self._reject(
                400, f'Property "{name}" does not exist on {t}', category="VALIDATION_ERROR"
            )
        if name == "hs_object_id":
            return lambda o: o.id
        if name == CREATED_PROP[t]:
            return lambda o: o.created
        if name == MODIFIED_PROP[t]:
            return lambda o: o.updated
        conv = converter(self._props[t][name]["type"])

        def get(o: _Obj) -> Any:
            raw = o.props.get(name)
            return None if raw is None or raw == "" else conv(raw)

        return get

    def _compile(self, t: str, f: Any) -> Callable[[_Obj], bool]:
        if not isinstance(f, dict):
            raise self._reject(400, "Invalid filter: expected an object")
        name = f.get("propertyName")
        op = str(f.get("operator", "")).upper()
        get = self._getter(t, name)
        ptype = self._props[t][name]["type"]
        conv = converter(ptype)

        def val(x: Any) -> Any:
            try:
                v = conv(x)
            except (TypeError, ValueError):
                v = None
            if v is None:
                raise self._reject(400, f"{x!r} is not a valid value for {name} ({ptype})")
            return v

        if op == "HAS_PROPERTY":
            return lambda o: get(o) is not None
        if op == "NOT_HAS_PROPERTY":
            return lambda o: get(o) is None
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            pattern = str(f.get("value", "")).lower()
            negate = op == "NOT_CONTAINS_TOKEN"

            def contains(o: _Obj) -> bool:
                raw = self._value(t, o, name)
                if raw is None:
                    return negate
                text = raw.lower()
                # Whitespace-separated words (an e-mail stays whole for "*@domain"), and
                # runs of letters and digits (a marker inside punctuation is still a token).
                tokens = {
                    text,
                    *text.split(),
                    *re.split(r"[^\w]+", text),
                    *re.split(r"[\s;,]+", text),
                }
                tokens.discard("")
                hit = any(fnmatch.fnmatchcase(tok, pattern) for tok in tokens)
                return hit != negate

            return contains
        if op in ("IN", "NOT_IN"):
            values = {val(x) for x in f.get("values") or []}
            if op == "IN":
                return lambda o: get(o) in values
            return lambda o: get(o) not in values
        if op == "BETWEEN":
            a, b = val(f.get("value")), val(f.get("highValue"))
            return lambda o: (v := get(o)) is not None and a <= v <= b
        if op not in ("EQ", "NEQ", "LT", "LTE", "GT", "GTE"):
            raise self._reject(400, f"Unknown filter operator {op!r}")
        x = val(f.get("value"))
        if op == "EQ":
            return lambda o: get(o) == x
        if op == "NEQ":
            return lambda o: get(o) != x
        cmp = {
            "LT": lambda v: v < x,
            "LTE": lambda v: v <= x,
            "GT": lambda v: v > x,
            "GTE": lambda v: v >= x,
        }[op]
        return lambda o: (v := get(o)) is not None and cmp(v)

    # -- merge ----------------------------------------------------------------------------------

    @endpoint("POST", r"/crm/v3/objects/(?P<otype>[^/]+)/merge", write=True)
    def merge_objects(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        body = self._body(request)
        primary, merged = body.get("primaryObjectId"), body.get("objectIdToMerge")
        if primary is None or merged is None:
            raise self._reject(400, "primaryObjectId and objectIdToMerge are required")
        survivor = self._merge(t, primary, merged, self._now_ms())
        return json_response(200, self._render(t, survivor, self._all_names(t, survivor)))

    def _merge(self, t: str, primary: Any, merged: Any, at: int) -> _Obj:
        keep, gone = self._live(t, primary), self._live(t, merged)
        if keep is None or gone is None:
            missing = primary if keep is None else merged
            raise self._reject(
                404,
                f"{SINGULAR[t]} {missing} not found",
                category="OBJECT_NOT_FOUND",
                context={"id": [str(missing)]},
            )
        if keep.id == gone.id:
            raise self._reject(400, "Cannot merge an object with itself")
        ids = [x for x in (keep.props.get("hs_merged_object_ids") or "").split(";") if x]
        ids += [str(gone.id)] + [
            x for x in (gone.props.get("hs_merged_object_ids") or "").split(";") if x
        ]
        for name, value in gone.props.items():
            keep.props.setdefault(name, value)  # blanks on the survivor take the merged values
        keep.props["hs_merged_object_ids"] = ";".join(dict.fromkeys(ids))
        if t == "companies":  # HubSpot keeps the merged company's domain on the survivor
            extra = [d for d in (keep.props.get("hs_additional_domains") or "").split(";") if d]
            for domain in (
                gone.props.get("domain"),
                *(gone.props.get("hs_additional_domains") or "").split(";"),
            ):
                if domain and domain != keep.props.get("domain") and domain not in extra:
                    extra.append(domain)
            if extra:
                keep.props["hs_additional_domains"] = ";".join(extra)
        for (frm, to), table in self._assoc.items():
            if frm != t:
                continue
            for to_id, types in list((table.get(gone.id) or {}).items()):
                self._unassociate(t, gone.id, to, to_id)
                self._associate(t, keep.id, to, to_id, types)
                # The moved record changes too (its association counts, and for a contact
                # ``associatedcompanyid``), so it shows up in a modification-time search.
                other = self._store[to].get(to_id)
                if other is None:
                    continue
                if to == "contacts" and other.props.get("associatedcompanyid") == str(gone.id):
                    other.props["associatedcompanyid"] = str(keep.id)
                self._touch(to, other, at)
        self._deactivate(t, gone)
        gone.merged_into = keep.id
        self._touch(t, keep, at)
        return keep
