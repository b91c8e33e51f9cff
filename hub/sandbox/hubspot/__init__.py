"""Fake HubSpot CRM API (v3 objects, search, properties, owners, v4 associations, merge).

Faithful to the shapes in ``shared/specs/hubspot/NOTES.md`` and the official
``hubspot-api-client`` SDK models, so the SDK pointed at ``sandbox.serve()`` deserializes every
answer. What it models, and why:

* Objects ``companies``, ``contacts``, ``deals``, ``tasks`` (also addressed as ``0-2``, ``0-1``,
  ``0-3``, ``0-27``). Property values are strings or null; ``createdate`` /
  ``hs_lastmodifieddate`` (contacts: ``lastmodifieddate``) and ``hs_object_id`` are derived
  from the record, read-only, and every write bumps the modification time to the world clock
  (millisecond ISO ``Z`` text).
* A property registry (standard properties plus ones created through the properties API):
  writing an unknown property is a 400 ``PROPERTY_DOESNT_EXIST``, a bad option value a 400
  ``INVALID_OPTION``, a read-only one a 400 ``READ_ONLY_VALUE``. ``""`` (or null) clears.
* Lists page by id with ``paging.next.after`` and an absolute ``paging.next.link``; ``paging`` is
  absent on the last page. ``limit`` defaults to 10 and is clamped to 100.
* Search (``POST …/search``): up to 6 filter groups (OR) of up to 6 filters (AND), 18 in all;
  ``limit`` ≤ 200; ``after`` is an offset; **paging at or past ``search_cap`` (10,000) → 400**.
  Date properties compare numerically (ms epoch or ISO). Records are indexed by (modification
  time, id), so the incremental query ``hs_lastmodifieddate GTE t`` sorted ascending costs
  O(page) however large the store.
* Batch read/create/update/upsert/archive with ≤ 100 inputs; 200/201 or 207 with per-input
  ``errors`` (missing ids → ``OBJECT_NOT_FOUND``; the ``partial_207`` fault fails chosen inputs
  with a retriable-looking ``RATE_LIMITS`` error, params ``ids=[…]`` / ``indexes=[…]`` /
  ``fail=N`` (first N, default 1)).
* Merge: the merged-away record leaves lists and search, its id reads (and writes) as the
  survivor, the survivor's ``hs_merged_object_ids`` lists it (``a;b``), its domain joins the
  survivor's ``hs_additional_domains``, and its associations move over (the moved records
  count as modified).
* Property history (``propertiesWithHistory`` on list, read and batch read; a list page drops
  to 50 and a batch read to 50 inputs when asked): every change after creation is kept with
  its ``sourceType`` (``API`` for requests, ``CRM_UI``/``EMAIL``/``INTEGRATION`` for the world).
* Tasks default to ``NOT_STARTED``/``TODO``; ``hs_timestamp`` is required; completing one sets
  ``hs_task_completion_date``. Every answer carries a ``Date`` header from the world clock.
* Faults: the generic ones from ``hub.sandbox.base``; ``"400"``, ``"401"``, ``"403"``
  (``scopes=[…]`` → a ``MISSING_SCOPES`` body naming them), ``"404"``, ``"409"`` in HubSpot's
  error shape; ``partial_207`` as above.
* Rate limits (only when ``sandbox.enforce_limits``): ``burst_limit`` (100, settable to 190)
  per 10 s and ``daily_limit`` per world day; search has its own ``search_per_second`` (5) and
  sends no rate headers. Windows are scaled by ``sandbox.time_scale`` and the reported
  ``X-HubSpot-RateLimit-Interval-Milliseconds`` is scaled the same way. When limits are not
  enforced the headers report a fresh budget, so clients that pace on them stay fast.

The world: ``seed()`` renders ``World`` companies (owner, lifecycle ``customer``/``other`` for
churned, annual revenue, an ``nps_score`` for most: high when healthy, low when at risk),
2–6 contacts each (opt-outs more common when slipping or at risk), the won deal and the
renewal deal closing on ``Company.renewal_date``, a few CSM tasks; then the traps through the
API's own code paths (company 6 merged into 5, company 8 archived; 3 and 4 share a domain).
``advance()`` unsubscribes contacts, moves churned companies' lifecycle, closes renewals near
their date (won, with next year's renewal opened, or lost when churned) and changes the odd
owner and NPS score.

Inspection for tests: ``writes`` (method, path, JSON body of every write request that reached a
handler, reads such as search and batch read excluded), ``snapshot()``, ``objects(type)``,
``get(type, id)``, ``associations(...)``, ``properties(type)``, ``complete_task(id)``,
``set_properties(...)`` (a CRM user edits a record), ``merge(a, b)``, ``archive(type, id)``;
``search_cap``, ``burst_limit``, ``daily_limit``, ``search_per_second`` are settable.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import email.utils
import fnmatch
import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from hub.sandbox.base import (
    FakeAPI,
    SlidingWindow,
    base_url,
    json_response,
    rng_for,
    route,
)
from hub.sandbox.hubspot.schema import (
    ALIASES,
    ALWAYS_PROPS,
    ASSOC_TYPES,
    BATCH_MAX,
    CREATED_PROP,
    DEFAULT_PROPS,
    EPOCH,
    FIELD_FITS,
    FIELD_TYPES,
    MODIFIED_PROP,
    NAME_RE,
    PRIMARY_TYPES,
    PROPERTY_TYPES,
    QUERY_PROPS,
    REVERSE_TYPE,
    SEARCH_MAX_LIMIT,
    SINGULAR,
    STANDARD_GROUPS,
    TYPE_IDS,
    TYPE_PAIR,
    TYPES,
    converter,
    iso_ms,
    parse_ms,
    problem,
    sort_spec,
    standard_properties,
    std_property,
    to_ms,
    v3_type_name,
)

BATCH_HISTORY_MAX = 50  # inputs per batch read that asks for property history
_KEY = 10**10  # lastmod index key = updated_ms * _KEY + id (ids stay below 10**10)
_SEARCH_PATH = re.compile(r"/search/?$")
_CATEGORY = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
             404: "OBJECT_NOT_FOUND", 405: "VALIDATION_ERROR", 409: "CONFLICT", 415: "VALIDATION_ERROR"}  # fmt: skip
# Injectable client errors: fault kind -> (category, message).
_CLIENT_FAULTS = {
    "400": ("VALIDATION_ERROR", "Injected bad request"),
    "401": ("INVALID_AUTHENTICATION", "Injected: the access token is no longer valid"),
    "403": (
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call.",
    ),
    "404": ("OBJECT_NOT_FOUND", "Injected: resource not found"),
    "409": ("CONFLICT", "Injected conflict"),
}
_AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)

_FIRST = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Greta", "Hugo", "Ines", "Jun", "Kofi",
          "Lea", "Mina", "Noor", "Omar", "Pia"]  # fmt: skip
_LAST = ["Silva", "Okafor", "Tanaka", "Novak", "Haddad", "Berg", "Rossi", "Kim", "Meyer", "Diaz",
         "Lund", "Ito"]  # fmt: skip
_TITLES = [
    "CEO",
    "CTO",
    "Head of Support",
    "Ops Manager",
    "Finance Lead",
    "Engineer",
    "Marketing Lead",
]
# Chance a seeded contact has opted out of email, and a daily chance one more does.
_OPTOUT_SEED = {
    "healthy": 0.03,
    "expanding": 0.03,
    "slipping": 0.2,
    "at_risk": 0.3,
    "churned": 0.25,
}
_OPTOUT_DAILY = {
    "healthy": 0.002,
    "expanding": 0.002,
    "slipping": 0.02,
    "at_risk": 0.035,
    "churned": 0.02,
}
_NPS = {
    "healthy": (8, 10),
    "expanding": (8, 10),
    "slipping": (5, 8),
    "at_risk": (0, 5),
    "churned": (0, 4),
}


class _Obj:
    """One stored CRM record; derived properties are rendered from the slots."""

    __slots__ = ("id", "props", "created", "updated", "archived_at", "merged_into", "history")

    def __init__(self, oid: int, props: dict[str, str], created: int, updated: int):
        self.id = oid
        self.props = props
        self.created = created
        self.updated = updated
        self.archived_at: int | None = None
        self.merged_into: int | None = None
        # Property history, oldest first, kept only for properties that changed after the
        # record was made: name -> [(value, ms, sourceType)]. Others read as one entry.
        self.history: dict[str, list[tuple[str, int, str]]] | None = None


class _Reject(Exception):
    """Raised inside a handler to answer with ``response`` at once."""

    def __init__(self, response: httpx.Response):
        super().__init__("rejected")
        self.response = response


class _Window(SlidingWindow):
    """A sliding window that can also report what is left without counting a request."""

    def remaining(self) -> int:
        now = time.monotonic()
        with self._lock:
            while self._hits and now - self._hits[0] >= self.window:
                self._hits.popleft()
            return max(0, self.limit - len(self._hits))


def endpoint(
    method: str, pattern: str, *, write: bool | Callable[[dict[str, str]], bool] = False
) -> Callable:
    """``@route`` plus: record write requests in ``writes`` and answer ``_Reject`` errors.

    ``write`` may be a predicate on the route's arguments (batch ``read`` is not a write).
    """

    def mark(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(self: HubSpotAPI, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            if write is True or (callable(write) and write(kwargs)):
                self._record_write(request)
            try:
                return func(self, request, **kwargs)
            except _Reject as reject:
                return reject.response

        return route(method, pattern, func.__name__)(wrapper)

    return mark


def _not_read(kwargs: dict[str, str]) -> bool:
    return kwargs.get("op") != "read"


class HubSpotAPI(FakeAPI):
    """The fake HubSpot CRM; see the module docstring for what it models."""

    name = "hubspot"
    prefixes = ("/crm/",)

    def __init__(self, sandbox: Any):
        super().__init__(sandbox)
        from hub.sandbox.world import CREDENTIALS

        self.token = CREDENTIALS["hubspot"]["access_token"]
        self.search_cap = 10_000  # results reachable per search query; lower it in tests
        self.daily_limit = 250_000
        self.search_per_second = 5
        self._burst = _Window(100, 10.0 * sandbox.time_scale)
        self._search = _Window(self.search_per_second, 1.0 * sandbox.time_scale)
        self._daily: tuple[dt.date | None, int] = (None, 0)
        self._tl = threading.local()
        self._corr = rng_for(self.world.seed, "hubspot", "correlation")
        self.writes: list[tuple[str, str, Any]] = []
        self._store: dict[str, dict[int, _Obj]] = {t: {} for t in TYPES}
        self._active: dict[str, list[int]] = {t: [] for t in TYPES}
        self._archived: dict[str, list[int]] = {t: [] for t in TYPES}
        self._lm: dict[str, list[int]] = {t: [] for t in TYPES}
        self._next_id = {
            "companies": 9_000_000_001,
            "contacts": 100_001,
            "deals": 20_000_001,
            "tasks": 30_000_001,
        }
        self._assoc: dict[tuple[str, str], dict[int, dict[int, tuple[int, ...]]]] = {
            pair: {} for pair in ASSOC_TYPES
        }
        self._props = standard_properties()
        self._groups: dict[str, dict[str, dict[str, Any]]] = {
            t: {
                n: {"name": n, "label": lbl, "displayOrder": -1, "archived": False}
                for n, lbl in groups
            }
            for t, groups in STANDARD_GROUPS.items()
        }
        self._company_ids: list[int] = []  # world company key -> HubSpot id
        self._renewal_deal: dict[int, int] = {}  # company key -> open renewal deal id

    # -- rate budgets ---------------------------------------------------------------------

    @property
    def burst_limit(self) -> int:
        """Requests allowed per 10 s (100 for Free/Starter apps, 190 for Pro/Enterprise)."""
        return self._burst.limit

    @burst_limit.setter
    def burst_limit(self, value: int) -> None:
        self._burst = _Window(int(value), 10.0 * self.sandbox.time_scale)

    def _interval_ms(self) -> int:
        return int(10_000 * self.sandbox.time_scale)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self._tl.remaining = None
        searching = bool(_SEARCH_PATH.search(request.url.path))
        if not searching:
            self._count_daily()
        response = super().handle(request)
        # Like HubSpot's edge, every answer says when it was made (the world clock); clients
        # use it as the server's "now" (the connector bounds a full read's bookmark with it).
        response.headers["Date"] = email.utils.format_datetime(self.world.clock.now(), usegmt=True)
        if not searching:
            # Every non-search answer carries the budget headers, 429s included.
            _, used = self._daily
            remaining = self._tl.remaining
            if remaining is None:
                remaining = (
                    self._burst.remaining() if self.sandbox.enforce_limits else self.burst_limit - 1
                )
            response.headers.update(
                {
                    "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
                    "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - used)),
                    "X-HubSpot-RateLimit-Interval-Milliseconds": str(self._interval_ms()),
                    "X-HubSpot-RateLimit-Max": str(self.burst_limit),
                    "X-HubSpot-RateLimit-Remaining": str(remaining),
                }
            )
        return response

    def _count_daily(self) -> None:
        today = self.world.clock.now().date()
        with self._lock:
            day, used = self._daily
            self._daily = (today, (used if day == today else 0) + 1)

    def rate_limit(self, request: httpx.Request, route_name: str) -> httpx.Response | None:
        if _SEARCH_PATH.search(request.url.path):
            if self._search.limit != self.search_per_second:
                self._search = _Window(self.search_per_second, 1.0 * self.sandbox.time_scale)
            allowed, _, _ = self._search.hit()
            if not allowed:
                return self._rate_body("You have reached your secondly limit.", "SECONDLY")
            return None
        if self._daily[1] > self.daily_limit:
            self._tl.remaining = self._burst.remaining()
            return self._rate_body("You have reached your daily limit.", "DAILY")
        allowed, remaining, _ = self._burst.hit()
        self._tl.remaining = remaining
        if not allowed:
            return self._rate_body(
                "You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING"
            )
        return None

    def _rate_body(self, message: str, policy: str) -> httpx.Response:
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": self._correlation_id(),
            "policyName": policy,
        }
        return json_response(429, body)

    def too_many(
        self, request: httpx.Request, retry_after: float | None = None, text: bool = False
    ) -> httpx.Response:
        if _SEARCH_PATH.search(request.url.path):
            response = self._rate_body("You have reached your secondly limit.", "SECONDLY")
        else:
            response = self._rate_body(
                "You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING"
            )
        if retry_after is not None:
            response.headers["retry-after"] = str(retry_after)
        return response

    # -- auth and errors --------------------------------------------------------------------

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("authorization", "") != f"Bearer {self.token}":
            return self.error(401, _AUTH_MESSAGE, category="INVALID_AUTHENTICATION")
        # Injected client errors (kinds "400", "401", "403", "404", "409") answer here, after
        # the generic faults and before the handler, in HubSpot's shape.
        fault = self.faults.take(request, set(_CLIENT_FAULTS))
        if fault is None:
            return None
        category, message = _CLIENT_FAULTS[fault.kind]
        extra: dict[str, Any] = {}
        if fault.kind == "403":
            scopes = list(fault.params.get("scopes") or ["crm.objects.companies.read"])
            extra["errors"] = [
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": scopes},
                }
            ]
        return self.error(
            int(fault.kind), fault.params.get("message") or message, category=category, **extra
        )

    def _correlation_id(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._corr.getrandbits(128), version=4))

    def error(
        self, status: int, message: str, category: str | None = None, **extra: Any
    ) -> httpx.Response:
        """An error in HubSpot's shape: status, message, correlationId, category, errors?, context?"""
        body: dict[str, Any] = {
            "status": "error",
            "message": message,
            "correlationId": self._correlation_id(),
            "category": category or _CATEGORY.get(status, "INTERNAL_ERROR"),
        }
        body.update({k: v for k, v in extra.items() if v is not None})
        return json_response(status, body)

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.error(
            404,
            f"No endpoint matches {request.method} {request.url.path}",
            category="OBJECT_NOT_FOUND",
        )

    def _reject(
        self, status: int, message: str, category: str | None = None, **extra: Any
    ) -> _Reject:
        return _Reject(self.error(status, message, category, **extra))

    def _record_write(self, request: httpx.Request) -> None:
        try:
            body = json.loads(request.content) if request.content else None
        except ValueError:
            body = request.content.decode("utf-8", "replace")
        self.writes.append((request.method, request.url.path, body))

    def _body(self, request: httpx.Request) -> Any:
        if not request.content:
            return {}
        try:
            return json.loads(request.content)
        except ValueError as exc:
            raise self._reject(
                400, f"Invalid input JSON on line 1, column {getattr(exc, 'colno', 1)}: {exc}"
            ) from None

    def _type(self, name: str) -> str:
        t = ALIASES.get(name.lower())
        if t is None:
            raise self._reject(
                400, f"Unable to infer object type from: {name}", category="VALIDATION_ERROR"
            )
        return t

    def _now_ms(self) -> int:
        return to_ms(self.world.clock.now())

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
        bisect.insort(self._lm[t], updated * _KEY + oid)
        return obj

    def _touch(self, t: str, obj: _Obj, at: int) -> None:
        """Record a change: the modification time moves and the search index follows."""
        at = max(at, obj.updated)  # never backwards (seeded traps are dated in the past)
        if obj.archived_at is None and obj.merged_into is None:
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

    # -- property validation ----------------------------------------------------------------

    def _normalize(self, t: str, props: Any, *, creating: bool = False) -> dict[str, str | None]:
        """Validate property values for a write; ``None`` in the result means clear."""
        if props is None:
            props = {}
        if not isinstance(props, dict):
            raise self._reject(
                400, "Invalid input: 'properties' must be an object of name to value"
            )
        registry = self._props[t]
        problems: list[dict[str, Any]] = []
        out: dict[str, str | None] = {}
        for name, raw in props.items():
            pdef = registry.get(name)
            if pdef is None:
                problems.append(
                    problem(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST")
                )
                continue
            if pdef["modificationMetadata"]["readOnlyValue"]:
                problems.append(
                    problem(
                        name,
                        f'"{name}" is a read only property; its value cannot be set.',
                        "READ_ONLY_VALUE",
                    )
                )
                continue
            if raw is None or raw == "":
                out[name] = None
                continue
            value, issue = self._coerce(pdef, raw)
            if issue:
                problems.append(issue)
            else:
                out[name] = value
        if creating and t == "tasks" and not out.get("hs_timestamp"):
            problems.append(
                problem(
                    "hs_timestamp", "hs_timestamp is required to create a task", "REQUIRED_PROPERTY"
                )
            )
        if problems:
            raise _Reject(self._invalid(problems))
        return out

    def _invalid(self, problems: list[dict[str, Any]]) -> httpx.Response:
        message = "Property values were not valid: " + json.dumps(problems, separators=(",", ":"))
        errors = [
            {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
            for p in problems
        ]
        return self.error(400, message, category="VALIDATION_ERROR", errors=errors)

    def _coerce(self, pdef: dict[str, Any], raw: Any) -> tuple[str | None, dict[str, Any] | None]:
        name, ptype = pdef["name"], pdef["type"]
        text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
        if ptype == "number":
            try:
                float(text)
            except ValueError:
                return None, problem(name, f"{text!r} is not a valid number", "INVALID_DECIMAL")
            return text.strip(), None
        if ptype in ("date", "datetime"):
            ms = parse_ms(raw)
            if ms is None:
                return None, problem(
                    name, f"{text!r} is not a valid date (use ms epoch or ISO 8601)", "INVALID_DATE"
                )
            if ptype == "date":
                if ms % 86_400_000:
                    return None, problem(name, f"{text!r} is not midnight UTC", "INVALID_DATE")
                return iso_ms(ms)[:10], None
            return iso_ms(ms), None
        if ptype == "bool":
            low = text.lower()
            if low not in ("true", "false"):
                return None, problem(name, f"{text!r} is not a valid boolean", "INVALID_BOOLEAN")
            return low, None
        if ptype == "enumeration":
            if name == "hubspot_owner_id":
                if text not in {o["id"] for o in self.world.owners}:
                    return None, problem(
                        name, f"{text!r} is not a valid owner id", "INVALID_OWNER_ID"
                    )
                return text, None
            allowed = [o["value"] for o in pdef["options"]]
            values = text.split(";") if pdef["fieldType"] == "checkbox" else [text]
            for v in values:
                if v not in allowed:
                    return None, problem(
                        name, f"{v} was not one of the allowed options: {allowed}", "INVALID_OPTION"
                    )
            return text, None
        return text, None

    def _unique_conflict(
        self, t: str, values: dict[str, str | None], exclude: int | None
    ) -> str | None:
        """Message for a value that a unique property (email, hasUniqueValue) already holds."""
        for name, value in values.items():
            if value is None or not self._props[t][name].get("hasUniqueValue"):
                continue
            other = self._by_property(t, name, value)
            if other is not None and other.id != exclude:
                return (
                    f"A {SINGULAR[t]} with {name}={value} already exists. Existing ID: {other.id}"
                )
        return None

    def _apply(
        self, t: str, obj: _Obj, values: dict[str, str | None], at: int, source: str = "API"
    ) -> None:
        """Write validated values (recording their history) and bump the modification time."""
        at = max(at, obj.updated)
        for name, value in values.items():
            old = obj.props.get(name)
            if old != value:
                _remember(obj, name, old, value, at, source)
            if value is None:
                obj.props.pop(name, None)
            else:
                obj.props[name] = value
        if t == "contacts" and "associatedcompanyid" in values:
            company = values["associatedcompanyid"]
            self._set_primary_company(obj, int(float(company)) if company else None)
        if t == "tasks" and "hs_task_status" in values:
            if values["hs_task_status"] == "COMPLETED":
                obj.props["hs_task_completion_date"] = iso_ms(at)
            else:
                obj.props.pop("hs_task_completion_date", None)
        self._touch(t, obj, at)

    def _create(self, t: str, values: dict[str, str | None], associations: Any, at: int) -> _Obj:
        specs = self._association_specs(t, associations)
        props = {k: v for k, v in values.items() if v is not None}
        if t == "tasks":  # HubSpot's defaults for a task created without them
            props.setdefault("hs_task_status", "NOT_STARTED")
            props.setdefault("hs_task_type", "TODO")
        obj = self._insert(t, dict(props), at, at)
        self._apply(t, obj, props, at)
        for to, to_id, type_ids in specs:
            self._associate(t, obj.id, to, to_id, type_ids)
        return obj

    def _association_specs(self, t: str, associations: Any) -> list[tuple[str, int, list[int]]]:
        """Validate the ``associations`` of a create input: [(to type, to id, type ids)]."""
        specs = []
        for item in associations or []:
            try:
                to_id = int(item["to"]["id"])
                types = item["types"]
                type_ids = [int(x["associationTypeId"]) for x in types]
            except (KeyError, TypeError, ValueError):
                raise self._reject(
                    400,
                    "Invalid association: expected {'to': {'id'}, 'types': [{'associationCategory', 'associationTypeId'}]}",
                ) from None
            to = None
            for tid in type_ids:
                pair = TYPE_PAIR.get(tid)
                if pair is None or pair[0] != t:
                    raise self._reject(
                        400,
                        f"association type id {tid} is not valid for {SINGULAR[t]} associations",
                        category="VALIDATION_ERROR",
                    )
                to = pair[1]
            if to is None or self._live(to, to_id) is None:
                raise self._reject(
                    400,
                    f"One or more associations are invalid: {SINGULAR.get(to or '', 'object')} {to_id} does not exist",
                    category="VALIDATION_ERROR",
                )
            specs.append((to, to_id, type_ids))
        return specs

    # -- objects: list, read, create, update, archive ---------------------------------------

    def _listed(self, request: httpx.Request, name: str) -> list[str]:
        out: list[str] = []
        for value in request.url.params.get_list(name):
            out.extend(p.strip() for p in value.split(",") if p.strip())
        return out

    @endpoint("GET", r"/crm/v3/objects/(?P<otype>[^/]+)/?")
    def list_objects(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        params = request.url.params
        history = self._history_names(t, self._listed(request, "propertiesWithHistory"))
        limit = _int_param(params.get("limit"), 10, self)
        # Asking for history lowers the page ceiling (HubSpot: 50).
        limit = max(1, min(limit, 50 if history else 100))
        archived = (params.get("archived") or "false").lower() == "true"
        ids = self._archived[t] if archived else self._active[t]
        after = params.get("after")
        start = 0
        if after:
            try:
                start = bisect.bisect_left(ids, int(after))
            except ValueError:
                raise self._reject(400, f"Invalid 'after' value: {after}") from None
        page = ids[start : start + limit]
        names = self._names(t, self._listed(request, "properties"))
        assoc_to = [
            self._type(x) for x in self._listed(request, "associations") if x.lower() in ALIASES
        ]
        store = self._store[t]
        body: dict[str, Any] = {
            "results": [self._render(t, store[i], names, assoc_to, history) for i in page]
        }
        if start + limit < len(ids):
            nxt = str(ids[start + limit])
            link = request.url.copy_set_param("after", nxt)
            body["paging"] = {
                "next": {"after": nxt, "link": base_url(request) + link.raw_path.decode()}
            }
        return json_response(200, body)

    @endpoint("GET", r"/crm/v3/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)")
    def read_object(self, request: httpx.Request, otype: str, oid: str) -> httpx.Response:
        t = self._type(otype)
        params = request.url.params
        obj = self._find(
            t,
            oid,
            params.get("idProperty"),
            archived=(params.get("archived") or "").lower() == "true",
        )
        names = self._names(t, self._listed(request, "properties"))
        assoc_to = [
            self._type(x) for x in self._listed(request, "associations") if x.lower() in ALIASES
        ]
        history = self._history_names(t, self._listed(request, "propertiesWithHistory"))
        return json_response(200, self._render(t, obj, names, assoc_to, history))

    def _find(
        self, t: str, oid: str, id_property: str | None = None, archived: bool = False
    ) -> _Obj:
        if id_property and id_property != "hs_object_id":
            if id_property not in self._props[t]:
                raise self._reject(
                    400, f'Property "{id_property}" does not exist', category="VALIDATION_ERROR"
                )
            obj = self._by_property(t, id_property, oid)
        elif archived:
            obj = self._store[t].get(int(oid)) if oid.isdigit() else None
            obj = obj if obj is not None and obj.archived_at is not None else None
        else:
            obj = self._live(t, oid)
        if obj is None:
            raise self._reject(
                404,
                "Object not found.  objectId are usually numeric.",
                category="OBJECT_NOT_FOUND",
                context={"id": [oid]},
            )
        return obj

    @endpoint("POST", r"/crm/v3/objects/(?P<otype>[^/]+)/?", write=True)
    def create_object(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        body = self._body(request)
        values = self._normalize(t, body.get("properties"), creating=True)
        conflict = self._unique_conflict(t, values, None)
        if conflict:
            raise self._reject(409, conflict, category="CONFLICT")
        obj = self._create(t, values, body.get("associations"), self._now_ms())
        names = list(dict.fromkeys([*DEFAULT_PROPS[t], *obj.props]))
        return json_response(201, self._render(t, obj, names))

    @endpoint("PATCH", r"/crm/v3/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)", write=True)
    def update_object(self, request: httpx.Request, otype: str, oid: str) -> httpx.Response:
        t = self._type(otype)
        obj = self._find(t, oid, request.url.params.get("idProperty"))
        body = self._body(request)
        values = self._normalize(t, body.get("properties"))
        conflict = self._unique_conflict(t, values, obj.id)
        if conflict:
            raise self._reject(409, conflict, category="CONFLICT")
        self._apply(t, obj, values, self._now_ms())
        names = list(dict.fromkeys([*ALWAYS_PROPS[t], *values]))
        return json_response(200, self._render(t, obj, names))

    @endpoint("DELETE", r"/crm/v3/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)", write=True)
    def archive_object(self, request: httpx.Request, otype: str, oid: str) -> httpx.Response:
        t = self._type(otype)
        obj = self._live(t, oid)
        if obj is not None:
            self._archive(t, obj, self._now_ms())
        return httpx.Response(204)

    def _archive(self, t: str, obj: _Obj, at: int) -> None:
        self._deactivate(t, obj)
        obj.archived_at = at
        bisect.insort(self._archived[t], obj.id)

    # -- batch --------------------------------------------------------------------------------

    @endpoint(
        "POST",
        r"/crm/v3/objects/(?P<otype>[^/]+)/batch/(?P<op>read|create|update|upsert|archive)",
        write=_not_read,
    )
    def batch(self, request: httpx.Request, otype: str, op: str) -> httpx.Response:
        t = self._type(otype)
        body = self._body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise self._reject(400, "Invalid input: 'inputs' must be a list")
        if len(inputs) > BATCH_MAX:
            raise self._reject(
                400,
                f"Too many inputs: {len(inputs)} > {BATCH_MAX}. Batch operations are limited to {BATCH_MAX} records at a time.",
                category="VALIDATION_ERROR",
                context={"inputs": [str(len(inputs))]},
            )
        history = self._history_names(t, body.get("propertiesWithHistory")) if op == "read" else []
        if history and len(inputs) > BATCH_HISTORY_MAX:
            raise self._reject(
                400,
                f"Too many inputs: {len(inputs)} > {BATCH_HISTORY_MAX}. A batch read with propertiesWithHistory is limited to {BATCH_HISTORY_MAX} records.",
                category="VALIDATION_ERROR",
            )
        started = iso_ms(self._now_ms())
        if op == "archive":
            for item in inputs:
                obj = self._live(t, (item or {}).get("id"))
                if obj is not None:
                    self._archive(t, obj, self._now_ms())
            return httpx.Response(204)
        # Validate every input before writing any: a bad property fails the whole batch.
        normalized: list[dict[str, str | None]] = []
        if op in ("create", "update", "upsert"):
            for item in inputs:
                if not isinstance(item, dict):
                    raise self._reject(400, "Invalid input: each input must be an object")
                normalized.append(
                    self._normalize(t, item.get("properties"), creating=op == "create")
                )
            if op == "update":
                ids = [str(item.get("id")) for item in inputs]
                dupes = sorted({i for i in ids if ids.count(i) > 1})
                if dupes:
                    raise self._reject(
                        400,
                        f"Duplicate IDs found in batch input: {dupes}. IDs must be unique",
                        context={"ids": dupes},
                    )
        failing = self._partial_failures(request, inputs)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        missing: list[str] = []
        now = self._now_ms()
        wanted = body.get("properties")
        for i, item in enumerate(inputs):
            if i in failing:
                errors.append(_retriable_error(item, i))
                continue
            if op == "read":
                obj = self._find_input(t, item, body.get("idProperty"))
                if obj is None:
                    missing.append(str(item.get("id")))
                    continue
                results.append(self._render(t, obj, self._names(t, wanted), None, history))
            elif op == "create":
                conflict = self._unique_conflict(t, normalized[i], None)
                if conflict:
                    errors.append(_input_error(item, i, "CONFLICT", conflict))
                    continue
                obj = self._create(t, normalized[i], item.get("associations"), now)
                names = list(dict.fromkeys([*DEFAULT_PROPS[t], *obj.props]))
                results.append(self._render(t, obj, names))
            elif op == "update":
                obj = self._find_input(t, item, item.get("idProperty"))
                if obj is None:
                    missing.append(str(item.get("id")))
                    continue
                conflict = self._unique_conflict(t, normalized[i], obj.id)
                if conflict:
                    errors.append(_input_error(item, i, "CONFLICT", conflict))
                    continue
                self._apply(t, obj, normalized[i], now)
                results.append(
                    self._render(t, obj, list(dict.fromkeys([*ALWAYS_PROPS[t], *normalized[i]])))
                )
            else:  # upsert
                id_prop = item.get("idProperty") or "hs_object_id"
                if id_prop not in self._props[t] or (
                    id_prop != "hs_object_id" and not self._props[t][id_prop].get("hasUniqueValue")
                ):
                    raise self._reject(
                        400, f"idProperty {id_prop!r} is not a unique property of {t}"
                    )
                obj = self._by_property(t, id_prop, item.get("id"))
                values = dict(normalized[i])
                new = obj is None
                if new:
                    if id_prop != "hs_object_id":
                        values.setdefault(id_prop, str(item.get("id")))
                    obj = self._create(t, values, None, now)
                else:
                    self._apply(t, obj, values, now)
                rendered = self._render(t, obj, list(dict.fromkeys([*ALWAYS_PROPS[t], *values])))
                rendered["new"] = new
                results.append(rendered)
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {SINGULAR[t].upper()} objects, they may be deleted or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            )
        body_out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_ms(self._now_ms()),
        }
        if errors:
            body_out["numErrors"] = sum(
                len(e.get("context", {}).get("ids", [])) or 1 for e in errors
            )
            body_out["errors"] = errors
            return json_response(207, body_out)
        return json_response(201 if op == "create" else 200, body_out)

    def _find_input(self, t: str, item: Any, id_property: str | None) -> _Obj | None:
        if not isinstance(item, dict) or item.get("id") is None:
            return None
        if id_property and id_property != "hs_object_id":
            return self._by_property(t, id_property, item["id"])
        return self._live(t, item["id"])

    def _partial_failures(self, request: httpx.Request, inputs: list[Any]) -> set[int]:
        fault = self.faults.take(request, {"partial_207"})
        if fault is None:
            return set()
        params = fault.params
        if "indexes" in params:
            return {int(i) for i in params["indexes"]}
        if "ids" in params:
            wanted = {str(i) for i in params["ids"]}
            return {
                i
                for i, item in enumerate(inputs)
                if isinstance(item, dict) and str(item.get("id")) in wanted
            }
        return set(range(min(int(params.get("fail", 1)), len(inputs))))

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

    # -- properties and groups --------------------------------------------------------------

    def _render_property(self, pdef: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(pdef)
        if pdef["name"] == "hubspot_owner_id":
            out["options"] = [
                {
                    "label": f"{o['firstName']} {o['lastName']}",
                    "value": o["id"],
                    "displayOrder": i,
                    "hidden": False,
                }
                for i, o in enumerate(self.world.owners)
            ]
        return out

    @endpoint("GET", r"/crm/v3/properties/(?P<otype>[^/]+)/?")
    def list_properties(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        return json_response(
            200, {"results": [self._render_property(p) for p in self._props[t].values()]}
        )

    @endpoint("GET", r"/crm/v3/properties/(?P<otype>[^/]+)/(?P<pname>(?!groups$|batch$)[^/]+)")
    def read_property(self, request: httpx.Request, otype: str, pname: str) -> httpx.Response:
        t = self._type(otype)
        pdef = self._props[t].get(pname)
        if pdef is None:
            raise self._reject(404, f"Property {pname} does not exist", category="OBJECT_NOT_FOUND")
        return json_response(200, self._render_property(pdef))

    @endpoint("POST", r"/crm/v3/properties/(?P<otype>[^/]+)/?", write=True)
    def create_property(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        pdef = self._new_property(t, self._body(request))
        return json_response(201, self._render_property(pdef))

    def _new_property(self, t: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise self._reject(400, "Invalid input: a property definition object is required")
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise self._reject(
                400,
                f"Missing required field(s): {', '.join(missing)}",
                context={"missing": missing},
            )
        name = str(body["name"])
        if name in self._props[t]:
            raise self._reject(409, f"Property named '{name}' already exists.", category="CONFLICT")
        if not NAME_RE.match(name) or name.startswith("hs_"):
            raise self._reject(
                400,
                f"Invalid property name {name!r}: use lower-case letters, digits and _ and start with a letter (not hs_)",
            )
        now = iso_ms(self._now_ms())
        pdef = {
            "name": name,
            "label": str(body["label"]),
            "type": body["type"],
            "fieldType": body["fieldType"],
            "description": str(body.get("description") or ""),
            "groupName": body["groupName"],
            "options": [],
            "displayOrder": int(body.get("displayOrder", -1)),
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": bool(body.get("hasUniqueValue", False)),
            "hidden": bool(body.get("hidden", False)),
            "hubspotDefined": False,
            "modificationMetadata": {
                "archivable": True,
                "readOnlyDefinition": False,
                "readOnlyValue": False,
            },
            "formField": bool(body.get("formField", False)),
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
        }
        self._check_definition(t, pdef, body.get("options"))
        self._props[t][name] = pdef
        return pdef

    def _check_definition(self, t: str, pdef: dict[str, Any], options: Any) -> None:
        ptype, field = pdef["type"], pdef["fieldType"]
        if ptype not in PROPERTY_TYPES:
            raise self._reject(400, f"Invalid type {ptype!r}: use one of {sorted(PROPERTY_TYPES)}")
        if field not in FIELD_TYPES:
            raise self._reject(
                400, f"Invalid fieldType {field!r}: use one of {sorted(FIELD_TYPES)}"
            )
        if field not in FIELD_FITS[ptype]:
            raise self._reject(
                400,
                f"fieldType {field!r} does not fit type {ptype!r}: use one of {sorted(FIELD_FITS[ptype])}",
            )
        if pdef["groupName"] not in self._groups[t]:
            raise self._reject(
                400, f"Property group {pdef['groupName']!r} does not exist for {t}; create it first"
            )
        if options is not None or ptype == "enumeration":
            if ptype not in ("enumeration", "bool"):
                if options:
                    raise self._reject(
                        400, f"options are only allowed for enumeration properties, not {ptype!r}"
                    )
                return
            if not isinstance(options, list) or (ptype == "enumeration" and not options):
                raise self._reject(
                    400,
                    "An enumeration property needs a non-empty 'options' list of {label, value}",
                )
            seen: set[str] = set()
            clean = []
            for i, opt in enumerate(options):
                if (
                    not isinstance(opt, dict)
                    or not opt.get("label")
                    or opt.get("value") in (None, "")
                ):
                    raise self._reject(400, f"Option {i} needs a 'label' and a 'value'")
                value = str(opt["value"])
                if value in seen:
                    raise self._reject(400, f"Duplicate option value {value!r}")
                seen.add(value)
                clean.append(
                    {
                        "label": str(opt["label"]),
                        "value": value,
                        "displayOrder": int(opt.get("displayOrder", i)),
                        "hidden": bool(opt.get("hidden", False)),
                        **({"description": opt["description"]} if opt.get("description") else {}),
                    }
                )
            pdef["options"] = clean

    @endpoint(
        "PATCH",
        r"/crm/v3/properties/(?P<otype>[^/]+)/(?P<pname>(?!groups$|batch$)[^/]+)",
        write=True,
    )
    def update_property(self, request: httpx.Request, otype: str, pname: str) -> httpx.Response:
        t = self._type(otype)
        pdef = self._props[t].get(pname)
        if pdef is None:
            raise self._reject(404, f"Property {pname} does not exist", category="OBJECT_NOT_FOUND")
        if pdef["hubspotDefined"]:
            raise self._reject(
                400,
                f"Property {pname} is defined by HubSpot and cannot be changed",
                category="VALIDATION_ERROR",
            )
        body = self._body(request)
        candidate = copy.deepcopy(pdef)
        for key in (
            "label",
            "description",
            "groupName",
            "type",
            "fieldType",
            "displayOrder",
            "hidden",
            "formField",
        ):
            if key in body:
                candidate[key] = body[key]
        self._check_definition(
            t,
            candidate,
            body.get(
                "options", candidate["options"] if candidate["type"] == "enumeration" else None
            ),
        )
        candidate["updatedAt"] = iso_ms(self._now_ms())
        self._props[t][pname] = candidate
        return json_response(200, self._render_property(candidate))

    @endpoint(
        "DELETE",
        r"/crm/v3/properties/(?P<otype>[^/]+)/(?P<pname>(?!groups$|batch$)[^/]+)",
        write=True,
    )
    def delete_property(self, request: httpx.Request, otype: str, pname: str) -> httpx.Response:
        t = self._type(otype)
        pdef = self._props[t].get(pname)
        if pdef is None:
            raise self._reject(404, f"Property {pname} does not exist", category="OBJECT_NOT_FOUND")
        if pdef["hubspotDefined"]:
            raise self._reject(400, f"Property {pname} is defined by HubSpot and cannot be deleted")
        del self._props[t][pname]
        return httpx.Response(204)

    @endpoint(
        "POST",
        r"/crm/v3/properties/(?P<otype>[^/]+)/batch/(?P<op>read|create|archive)",
        write=_not_read,
    )
    def batch_properties(self, request: httpx.Request, otype: str, op: str) -> httpx.Response:
        t = self._type(otype)
        inputs = self._body(request).get("inputs") or []
        started = iso_ms(self._now_ms())
        results = []
        if op == "archive":
            for item in inputs:
                pdef = self._props[t].get(str((item or {}).get("name")))
                if pdef is not None and not pdef["hubspotDefined"]:
                    del self._props[t][pdef["name"]]
            return httpx.Response(204)
        for item in inputs:
            if op == "read":
                pdef = self._props[t].get(str((item or {}).get("name")))
                if pdef is not None:
                    results.append(self._render_property(pdef))
            else:
                results.append(self._render_property(self._new_property(t, item)))
        body = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_ms(self._now_ms()),
        }
        return json_response(201 if op == "create" else 200, body)

    @endpoint("GET", r"/crm/v3/properties/(?P<otype>[^/]+)/groups/?")
    def list_groups(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        return json_response(200, {"results": [dict(g) for g in self._groups[t].values()]})

    @endpoint("GET", r"/crm/v3/properties/(?P<otype>[^/]+)/groups/(?P<gname>[^/]+)")
    def read_group(self, request: httpx.Request, otype: str, gname: str) -> httpx.Response:
        t = self._type(otype)
        group = self._groups[t].get(gname)
        if group is None:
            raise self._reject(
                404, f"Property group {gname} does not exist", category="OBJECT_NOT_FOUND"
            )
        return json_response(200, dict(group))

    @endpoint("POST", r"/crm/v3/properties/(?P<otype>[^/]+)/groups/?", write=True)
    def create_group(self, request: httpx.Request, otype: str) -> httpx.Response:
        t = self._type(otype)
        body = self._body(request)
        name, label = body.get("name"), body.get("label")
        if not name or not label:
            raise self._reject(400, "A property group needs 'name' and 'label'")
        if name in self._groups[t]:
            raise self._reject(
                409, f"Property group named '{name}' already exists.", category="CONFLICT"
            )
        if not NAME_RE.match(str(name)):
            raise self._reject(
                400, f"Invalid group name {name!r}: use lower-case letters, digits and _"
            )
        group = {
            "name": str(name),
            "label": str(label),
            "displayOrder": int(body.get("displayOrder", -1)),
            "archived": False,
        }
        self._groups[t][group["name"]] = group
        return json_response(201, dict(group))

    @endpoint("PATCH", r"/crm/v3/properties/(?P<otype>[^/]+)/groups/(?P<gname>[^/]+)", write=True)
    def update_group(self, request: httpx.Request, otype: str, gname: str) -> httpx.Response:
        t = self._type(otype)
        group = self._groups[t].get(gname)
        if group is None:
            raise self._reject(
                404, f"Property group {gname} does not exist", category="OBJECT_NOT_FOUND"
            )
        body = self._body(request)
        for key in ("label", "displayOrder"):
            if key in body:
                group[key] = body[key]
        return json_response(200, dict(group))

    @endpoint("DELETE", r"/crm/v3/properties/(?P<otype>[^/]+)/groups/(?P<gname>[^/]+)", write=True)
    def delete_group(self, request: httpx.Request, otype: str, gname: str) -> httpx.Response:
        t = self._type(otype)
        if gname in self._groups[t]:
            if any(p["groupName"] == gname for p in self._props[t].values()):
                raise self._reject(
                    400, f"Property group {gname} still has properties; move or delete them first"
                )
            del self._groups[t][gname]
        return httpx.Response(204)

    # -- owners -----------------------------------------------------------------------------

    def _render_owner(self, owner: dict[str, Any]) -> dict[str, Any]:
        at = iso_ms(to_ms(self.world.start) - 400 * 86_400_000)
        return {
            "id": owner["id"],
            "email": owner["email"],
            "type": "PERSON",
            "firstName": owner["firstName"],
            "lastName": owner["lastName"],
            "userId": owner["userId"],
            "userIdIncludingInactive": owner["userId"],
            "createdAt": at,
            "updatedAt": at,
            "archived": False,
            "teams": [],
        }

    @endpoint("GET", r"/crm/v3/owners/?")
    def list_owners(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        limit = max(1, min(_int_param(params.get("limit"), 100, self), 500))
        owners = self.world.owners
        email = params.get("email")
        if email:
            owners = [o for o in owners if o["email"].lower() == email.lower()]
        start = _int_param(params.get("after"), 0, self)
        body: dict[str, Any] = {
            "results": [self._render_owner(o) for o in owners[start : start + limit]]
        }
        if start + limit < len(owners):
            nxt = str(start + limit)
            link = request.url.copy_set_param("after", nxt)
            body["paging"] = {
                "next": {"after": nxt, "link": base_url(request) + link.raw_path.decode()}
            }
        return json_response(200, body)

    @endpoint("GET", r"/crm/v3/owners/(?P<owner_id>[^/]+)")
    def read_owner(self, request: httpx.Request, owner_id: str) -> httpx.Response:
        for owner in self.world.owners:
            if owner["id"] == owner_id:
                return json_response(200, self._render_owner(owner))
        raise self._reject(404, f"Owner {owner_id} not found", category="OBJECT_NOT_FOUND")

    # -- associations v4 ----------------------------------------------------------------------

    def _v4_types(self, frm: str, to: str, type_ids: Iterable[int]) -> list[dict[str, Any]]:
        return [
            {
                "category": "HUBSPOT_DEFINED",
                "typeId": tid,
                "label": "Primary" if tid in PRIMARY_TYPES else None,
            }
            for tid in type_ids
        ]

    @endpoint(
        "GET", r"/crm/v4/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)/associations/(?P<to>[^/]+)/?"
    )
    def v4_list(self, request: httpx.Request, otype: str, oid: str, to: str) -> httpx.Response:
        t, to_t = self._type(otype), self._type(to)
        obj = self._find(t, oid)
        links = self._links(t, obj.id, to_t)
        params = request.url.params
        limit = max(1, min(_int_param(params.get("limit"), 500, self), 500))
        start = _int_param(params.get("after"), 0, self)
        page = links[start : start + limit]
        body: dict[str, Any] = {
            "results": [
                {"toObjectId": tid, "associationTypes": self._v4_types(t, to_t, types)}
                for tid, types in page
            ]
        }
        if start + limit < len(links):
            nxt = str(start + limit)
            link = request.url.copy_set_param("after", nxt)
            body["paging"] = {
                "next": {"after": nxt, "link": base_url(request) + link.raw_path.decode()}
            }
        return json_response(200, body)

    @endpoint(
        "PUT",
        r"/crm/v4/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)/associations/default/(?P<to>[^/]+)/(?P<to_id>[^/]+)",
        write=True,
    )
    def v4_default(
        self, request: httpx.Request, otype: str, oid: str, to: str, to_id: str
    ) -> httpx.Response:
        t, to_t = self._type(otype), self._type(to)
        result = self._default_associate(t, oid, to_t, to_id)
        started = iso_ms(self._now_ms())
        return json_response(
            200,
            {
                "status": "COMPLETE",
                "results": [result],
                "startedAt": started,
                "completedAt": started,
            },
        )

    def _default_associate(self, t: str, oid: Any, to_t: str, to_id: Any) -> dict[str, Any]:
        if (t, to_t) not in ASSOC_TYPES:
            raise self._reject(
                400, f"{SINGULAR[t]} to {SINGULAR[to_t]} associations are not supported"
            )
        a, b = self._find(t, str(oid)), self._find(to_t, str(to_id))
        default = ASSOC_TYPES[(t, to_t)][0]
        self._associate(t, a.id, to_t, b.id, (default,))
        return {
            "from": {"id": str(a.id)},
            "to": {"id": str(b.id)},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": default,
            },
        }

    @endpoint(
        "PUT",
        r"/crm/v4/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)/associations/(?P<to>(?!default$)[^/]+)/(?P<to_id>[^/]+)",
        write=True,
    )
    def v4_create(
        self, request: httpx.Request, otype: str, oid: str, to: str, to_id: str
    ) -> httpx.Response:
        t, to_t = self._type(otype), self._type(to)
        a, b = self._find(t, oid), self._find(to_t, to_id)
        specs = self._body(request)
        if not isinstance(specs, list) or not specs:
            raise self._reject(
                400, "Body must be a list of {associationCategory, associationTypeId}"
            )
        type_ids = []
        for spec in specs:
            tid = int((spec or {}).get("associationTypeId", 0))
            if TYPE_PAIR.get(tid) != (t, to_t):
                raise self._reject(
                    400,
                    f"association type id {tid} is not valid from {SINGULAR[t]} to {SINGULAR[to_t]}",
                )
            type_ids.append(tid)
        self._associate(t, a.id, to_t, b.id, type_ids)
        links = dict(self._links(t, a.id, to_t))
        body = {
            "fromObjectTypeId": TYPE_IDS[t],
            "fromObjectId": a.id,
            "toObjectTypeId": TYPE_IDS[to_t],
            "toObjectId": b.id,
            "labels": ["Primary" for x in links.get(b.id, ()) if x in PRIMARY_TYPES],
        }
        return json_response(201, body)

    @endpoint(
        "DELETE",
        r"/crm/v4/objects/(?P<otype>[^/]+)/(?P<oid>[^/]+)/associations/(?P<to>(?!default$)[^/]+)/(?P<to_id>[^/]+)",
        write=True,
    )
    def v4_delete(
        self, request: httpx.Request, otype: str, oid: str, to: str, to_id: str
    ) -> httpx.Response:
        t, to_t = self._type(otype), self._type(to)
        a, b = self._live(t, oid), self._live(to_t, to_id)
        if a is not None and b is not None and (t, to_t) in ASSOC_TYPES:
            self._unassociate(t, a.id, to_t, b.id)
        return httpx.Response(204)

    @endpoint(
        "POST",
        r"/crm/v4/associations/(?P<otype>[^/]+)/(?P<to>[^/]+)/batch/(?P<op>read|create|archive|associate/default)",
        write=_not_read,
    )
    def v4_batch(self, request: httpx.Request, otype: str, to: str, op: str) -> httpx.Response:
        t, to_t = self._type(otype), self._type(to)
        inputs = self._body(request).get("inputs")
        if not isinstance(inputs, list):
            raise self._reject(400, "Invalid input: 'inputs' must be a list")
        if len(inputs) > 1000 if op == "read" else len(inputs) > BATCH_MAX:
            raise self._reject(400, f"Too many inputs: {len(inputs)}")
        started = iso_ms(self._now_ms())
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            item = item or {}
            if op == "read":
                obj = self._live(t, item.get("id"))
                links = self._links(t, obj.id, to_t) if obj is not None else []
                if not links:
                    errors.append(
                        {
                            "status": "error",
                            "category": "OBJECT_NOT_FOUND",
                            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                            "message": f"No {SINGULAR[to_t]} is associated with {SINGULAR[t]} {item.get('id')}.",
                            "context": {"fromObjectId": [str(item.get("id"))]},
                        }
                    )
                    continue
                results.append(
                    {
                        "from": {"id": str(obj.id)},
                        "to": [
                            {"toObjectId": tid, "associationTypes": self._v4_types(t, to_t, types)}
                            for tid, types in links
                        ],
                    }
                )
                continue
            from_id = (item.get("from") or {}).get("id")
            to_id = (item.get("to") or {}).get("id")
            if op == "associate/default":
                results.append(self._default_associate(t, from_id, to_t, to_id))
            elif op == "archive":
                a = self._live(t, from_id)
                for target in item.get("to") or []:
                    b = self._live(to_t, (target or {}).get("id"))
                    if a is not None and b is not None:
                        self._unassociate(t, a.id, to_t, b.id)
            else:  # create with explicit types
                a, b = self._find(t, str(from_id)), self._find(to_t, str(to_id))
                type_ids = [
                    int((x or {}).get("associationTypeId", 0)) for x in item.get("types") or []
                ]
                if not type_ids or any(TYPE_PAIR.get(x) != (t, to_t) for x in type_ids):
                    raise self._reject(
                        400,
                        f"Invalid association types {type_ids} from {SINGULAR[t]} to {SINGULAR[to_t]}",
                    )
                self._associate(t, a.id, to_t, b.id, type_ids)
                results.append(
                    {
                        "fromObjectTypeId": TYPE_IDS[t],
                        "fromObjectId": a.id,
                        "toObjectTypeId": TYPE_IDS[to_t],
                        "toObjectId": b.id,
                        "labels": [],
                    }
                )
        if op == "archive":
            return httpx.Response(204)
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_ms(self._now_ms()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return json_response(207, body)
        return json_response(201 if op == "create" else 200, body)

    # -- world: seed and advance --------------------------------------------------------------

    def seed(self) -> None:
        """Companies, contacts, deals, a few CSM tasks, the custom NPS property, and the traps."""
        world = self.world
        rng = rng_for(world.seed, "hubspot", "seed")
        # Raw ``random()`` and indexing: ``choice``/``randint`` cost several times more at 100k.
        rand, randint = rng.random, rng.randint
        n_first, n_last, n_titles = len(_FIRST), len(_LAST), len(_TITLES)
        start = to_ms(world.start)
        day = 86_400_000
        self._groups["companies"]["customer_feedback"] = {
            "name": "customer_feedback",
            "label": "Customer feedback",
            "displayOrder": 5,
            "archived": False,
        }
        nps = std_property("nps_score", "NPS score", "number", "number", "customer_feedback")
        nps.update(
            hubspotDefined=False,
            modificationMetadata={
                "archivable": True,
                "readOnlyDefinition": False,
                "readOnlyValue": False,
            },
        )
        self._props["companies"]["nps_score"] = nps
        stores = self._store
        companies, contacts, deals = stores["companies"], stores["contacts"], stores["deals"]
        active = self._active
        lm_keys: dict[str, list[int]] = {t: [] for t in TYPES}
        c2co = self._assoc[("contacts", "companies")]
        co2c = self._assoc[("companies", "contacts")]
        d2co = self._assoc[("deals", "companies")]
        co2d = self._assoc[("companies", "deals")]
        contact_types, company_contact_types = (1, 279), (2, 280)
        deal_types, company_deal_types = (5, 341), (6, 342)
        next_contact, next_deal = self._next_id["contacts"], self._next_id["deals"]
        firsts = [(f, f.lower()) for f in _FIRST]
        lasts = [(x, x.lower()) for x in _LAST]
        contact_ids, contact_keys = active["contacts"].append, lm_keys["contacts"].append
        for company in world.companies:
            cid = int(company.hubspot_id)
            self._company_ids.append(cid)
            arch = company.archetype
            created = to_ms(company.created_at)
            span = max(1, start - created)
            annual = str(company.mrr_cents * 12 // 100)
            props = {
                "name": company.name,
                "domain": company.domain,
                "lifecyclestage": "other" if arch == "churned" and rand() < 0.6 else "customer",
                "annualrevenue": annual,
            }
            if company.owner_id:
                props["hubspot_owner_id"] = company.owner_id
            if rand() < (0.5 if arch == "churned" else 0.65):
                low, high = _NPS[arch]
                props["nps_score"] = str(randint(low, high))
            updated = created + int(rand() * span)
            companies[cid] = _Obj(cid, props, created, updated)
            if props["lifecyclestage"] == "other":  # was a customer until they churned
                companies[cid].history = {
                    "lifecyclestage": [
                        ("customer", created, "CRM_UI"),
                        ("other", updated, "CRM_UI"),
                    ]
                }
            active["companies"].append(cid)
            lm_keys["companies"].append(updated * _KEY + cid)
            sid = str(cid)
            domain = company.domain
            optout = _OPTOUT_SEED[arch]
            links: dict[int, tuple[int, ...]] = {}
            for _ in range(2 + int(rand() * 5)):
                first, first_low = firsts[int(rand() * n_first)]
                last, last_low = lasts[int(rand() * n_last)]
                c_created = created + int(rand() * span)
                c_updated = c_created + int(rand() * (start - c_created))
                oid = next_contact
                next_contact += 1
                opted_out = rand() < optout
                contact = contacts[oid] = _Obj(
                    oid,
                    {
                        "email": f"{first_low}.{last_low}{oid}@{domain}",
                        "firstname": first,
                        "lastname": last,
                        "jobtitle": _TITLES[int(rand() * n_titles)],
                        "hs_email_optout": "true" if opted_out else "false",
                        "associatedcompanyid": sid,
                    },
                    c_created,
                    c_updated,
                )
                if opted_out:  # they unsubscribed at their last modification
                    contact.history = {
                        "hs_email_optout": [
                            ("false", c_created, "CRM_UI"),
                            ("true", c_updated, "EMAIL"),
                        ]
                    }
                contact_ids(oid)
                contact_keys(c_updated * _KEY + oid)
                c2co[oid] = {cid: contact_types}
                links[oid] = company_contact_types
            co2c[cid] = links
            # The deal that made them a customer, and the renewal coming up.
            won_id, renewal_id = next_deal, next_deal + 1
            next_deal += 2
            renewal_ms = to_ms(
                dt.datetime.combine(company.renewal_date, dt.time(), dt.timezone.utc)
            )
            owner = {"hubspot_owner_id": company.owner_id} if company.owner_id else {}
            won_updated = created + int(rand() * min(span, 30 * day))
            deals[won_id] = _Obj(
                won_id,
                {"dealname": f"{company.name} – {company.plan}", "amount": annual, "dealstage": "closedwon",
                 "pipeline": "default", "closedate": iso_ms(created), "dealtype": "newbusiness", **owner},
                created - 30 * day,
                won_updated,
            )  # fmt: skip
            r_created = max(created, renewal_ms - 90 * day)
            r_created = min(r_created, start - day)
            r_updated = r_created + int(rand() * max(1, start - r_created))
            deals[renewal_id] = _Obj(
                renewal_id,
                {"dealname": f"{company.name} renewal {company.renewal_date.year}", "amount": annual,
                 "dealstage": "contractsent" if renewal_ms - start < 30 * day else "qualifiedtobuy",
                 "pipeline": "default", "closedate": iso_ms(renewal_ms), "dealtype": "existingbusiness", **owner},
                r_created,
                r_updated,
            )  # fmt: skip
            self._renewal_deal[company.key] = renewal_id
            for did, d_updated in ((won_id, won_updated), (renewal_id, r_updated)):
                active["deals"].append(did)
                lm_keys["deals"].append(d_updated * _KEY + did)
                d2co[did] = {cid: deal_types}
            co2d[cid] = {won_id: company_deal_types, renewal_id: company_deal_types}
            if rand() < 0.1:
                t_created = start - randint(1, 60) * day
                # Only tasks old enough to have been done by now (nothing is stamped in the future).
                done = t_created + 10 * day < start and rand() < 0.6
                task_props = {
                    "hs_task_subject": "Quarterly business review",
                    "hs_task_body": f"Prepare the QBR deck for {company.name}.",
                    "hs_task_status": "COMPLETED" if done else "NOT_STARTED",
                    "hs_task_priority": "MEDIUM",
                    "hs_task_type": "TODO",
                    "hs_timestamp": iso_ms(t_created + 14 * day),
                    **owner,
                }
                if done:
                    task_props["hs_task_completion_date"] = iso_ms(t_created + 10 * day)
                tid = self._new_id("tasks")
                self._store["tasks"][tid] = _Obj(
                    tid, task_props, t_created, t_created + (10 * day if done else 0)
                )
                active["tasks"].append(tid)
                lm_keys["tasks"].append(self._store["tasks"][tid].updated * _KEY + tid)
                self._associate("tasks", tid, "companies", cid, (192,))
        self._next_id["contacts"], self._next_id["deals"] = next_contact, next_deal
        self._next_id["companies"] = max(
            self._next_id["companies"], (self._company_ids[-1] + 1) if self._company_ids else 0
        )
        for t, keys in lm_keys.items():
            keys.sort()
            self._lm[t] = keys
        # Traps, applied through the same code paths the API uses.
        for company in world.companies:
            if company.merged_into is not None:
                survivor = world.companies[company.merged_into]
                self._merge("companies", survivor.hubspot_id, company.hubspot_id, start - 20 * day)
            if "archived" in company.traps:
                obj = self._live("companies", company.hubspot_id)
                if obj is not None:
                    self._archive("companies", obj, start - 10 * day)

    def advance(self, start: dt.datetime, end: dt.datetime, day_index: int) -> None:
        """A day in the CRM: unsubscribes, lifecycle moves, renewal stages, owner and NPS changes."""
        rng = rng_for(self.world.seed, "hubspot", "advance", day_index)
        rand = rng.random
        t0 = to_ms(start)
        width = max(1, to_ms(end) - t0)
        end_date = end.date()
        owners = [o["id"] for o in self.world.owners]

        def when() -> int:
            return t0 + int(rand() * width)

        for company in self.world.companies:
            obj = self._live("companies", self._company_ids[company.key])
            if obj is None or obj.id != self._company_ids[company.key]:
                continue  # archived or merged away
            arch = company.archetype
            changes: dict[str, str | None] = {}
            if rand() < _OPTOUT_DAILY[arch]:
                subscribed = [
                    c for c, _ in self._links("companies", obj.id, "contacts")
                    if self._store["contacts"][c].props.get("hs_email_optout") != "true"
                ]  # fmt: skip
                if subscribed:
                    contact = self._store["contacts"][rng.choice(subscribed)]
                    self._apply("contacts", contact, {"hs_email_optout": "true"}, when(), "EMAIL")
            stage = obj.props.get("lifecyclestage")
            if arch == "churned" and stage == "customer" and rand() < 0.15:
                changes["lifecyclestage"] = "other"
            elif arch == "expanding" and stage == "customer" and rand() < 0.01:
                changes["lifecyclestage"] = "evangelist"
            if rand() < 0.002 and len(owners) > 1:
                changes["hubspot_owner_id"] = rng.choice(
                    [o for o in owners if o != obj.props.get("hubspot_owner_id")]
                )
            if "nps_score" in obj.props and rand() < 0.01:
                low, high = _NPS[arch]
                changes["nps_score"] = str(rng.randint(low, high))
            if changes:
                source = "INTEGRATION" if set(changes) == {"nps_score"} else "CRM_UI"
                self._apply("companies", obj, changes, when(), source)
            deal_id = self._renewal_deal.get(company.key)
            deal = self._live("deals", deal_id) if deal_id else None
            if deal is None or deal.props.get("dealstage") in ("closedwon", "closedlost"):
                continue
            close = parse_ms(deal.props.get("closedate")) or 0
            close_date = (EPOCH + dt.timedelta(milliseconds=close)).date()
            days_left = (close_date - end_date).days
            if days_left <= 0:
                if arch == "churned" or (arch == "at_risk" and rand() < 0.5):
                    won = False
                else:
                    won = arch != "slipping" or rand() < 0.8
                stage = "closedwon" if won else "closedlost"
                at = when()
                self._apply("deals", deal, {"dealstage": stage}, at, "CRM_UI")
                if won:  # the CSM opens next year's renewal right away
                    self._next_renewal(company, obj, deal, close, at)
            elif (
                days_left <= 30
                and deal.props.get("dealstage") == "qualifiedtobuy"
                and arch != "churned"
            ):
                self._apply("deals", deal, {"dealstage": "contractsent"}, when(), "CRM_UI")

    def _next_renewal(self, company: Any, account: _Obj, won: _Obj, close: int, at: int) -> None:
        """Open the following year's renewal deal (expanding customers renew for more)."""
        amount = float(won.props.get("amount") or 0)
        if company.archetype == "expanding":
            amount *= 1.2
        next_close = close + 365 * 86_400_000
        year = (EPOCH + dt.timedelta(milliseconds=next_close)).year
        props = {
            "dealname": f"{company.name} renewal {year}",
            "amount": str(int(round(amount))),
            "dealstage": "qualifiedtobuy",
            "pipeline": "default",
            "closedate": iso_ms(next_close),
            "dealtype": "existingbusiness",
        }
        if won.props.get("hubspot_owner_id"):
            props["hubspot_owner_id"] = won.props["hubspot_owner_id"]
        deal = self._create("deals", props, None, at)
        self._associate("deals", deal.id, "companies", account.id, (5, 341))
        self._renewal_deal[company.key] = deal.id

    # -- inspection helpers for tests ---------------------------------------------------------

    def objects(self, t: str, *, archived: bool = False) -> list[dict[str, Any]]:
        """Every live (or archived) record of a type, rendered with all its properties."""
        t = ALIASES[t]
        with self._lock:
            ids = self._archived[t] if archived else self._active[t]
            return [
                self._render(t, self._store[t][i], self._all_names(t, self._store[t][i]))
                for i in ids
            ]

    def get(self, t: str, oid: Any) -> dict[str, Any] | None:
        """One live record (following merges) with all its properties, or None."""
        t = ALIASES[t]
        with self._lock:
            obj = self._live(t, oid)
            return None if obj is None else self._render(t, obj, self._all_names(t, obj))

    def associations(self, frm: str, oid: Any, to: str) -> list[tuple[str, list[int]]]:
        """[(to id, association type ids)] for one record."""
        frm, to = ALIASES[frm], ALIASES[to]
        with self._lock:
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
            survivor = self._merge(t, primary, merged, self._now_ms())
            return self._render(t, survivor, self._all_names(t, survivor))

    def archive(self, t: str, oid: Any) -> None:
        """A CRM user deletes a record (it moves to the archived list)."""
        t = ALIASES[t]
        with self._lock:
            obj = self._live(t, oid)
            if obj is not None:
                self._archive(t, obj, self._now_ms())

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of every record, property, group and association, for before/after diffs."""
        with self._lock:
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


# -- small helpers ------------------------------------------------------------------------------


def _remember(obj: _Obj, name: str, old: str | None, new: str | None, at: int, source: str) -> None:
    """Append a change to a property's history (seeding it with the value it replaces)."""
    if obj.history is None:
        obj.history = {}
    entries = obj.history.get(name)
    if entries is None:
        entries = obj.history[name] = [] if old is None else [(old, obj.created, "CRM_UI")]
    entries.append(("" if new is None else new, at, source))


def _input_context(item: Any, index: int) -> dict[str, list[str]]:
    if isinstance(item, dict) and item.get("id") is not None:
        return {"ids": [str(item["id"])]}
    return {"index": [str(index)]}


def _input_error(item: Any, index: int, category: str, message: str) -> dict[str, Any]:
    error = {
        "status": "error",
        "category": category,
        "message": message,
        "context": _input_context(item, index),
    }
    if isinstance(item, dict) and item.get("objectWriteTraceId"):
        error["objectWriteTraceId"] = str(item["objectWriteTraceId"])
    return error


def _retriable_error(item: Any, index: int) -> dict[str, Any]:
    return _input_error(
        item,
        index,
        "RATE_LIMITS",
        "Temporary failure writing this record; retry the request for it.",
    )


def _int_param(value: str | None, default: int, api: HubSpotAPI) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise api._reject(400, f"Expected an integer, got {value!r}") from None


__all__ = ["HubSpotAPI", "iso_ms", "parse_ms", "to_ms"]
