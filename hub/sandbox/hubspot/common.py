"""HubSpot fake: limits, fixed tables, the record type, the endpoint decorator and small helpers."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from hub.sandbox.base import (
    SlidingWindow,
    route,
)

BATCH_HISTORY_MAX = 50  # inputs per batch read that asks for property history
_KEY = 10**10  # lastmod index key = updated_ms * _KEY + id (ids stay below 10**10)
# Seeded ids: type -> (base, stride); company k's records are base + k * stride + i.
BLOCKS = {
    "contacts": (100_001, 8),  # 2–6 contacts
    "deals": (20_000_001, 2),  # the won deal and the renewal
    "tasks": (30_000_001, 1),  # one CSM task in ten
    "tickets": (2_000_000_001, 2),  # at most two
}
# The CSM's touches share one block (ids unique across the four kinds, as engagements are).
TOUCH_KINDS = ("calls", "emails", "meetings", "notes")
TOUCH_BLOCK = (40_000_001, 32)  # at most one touch per 4.5 days over 90 days
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

if TYPE_CHECKING:
    from hub.sandbox.hubspot.api import HubSpotAPI


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


# Endpoints that make only the companies they read (``_Seeding._materialize``); every other
# one makes the whole portal first. Batch reads (``op == "read"``) are on demand too.
_ON_DEMAND = frozenset(
    {
        "list_objects", "read_object", "v4_list", "v3_batch_read", "list_owners", "read_owner",
        "list_schemas", "read_schema", "list_pipelines", "read_pipeline", "list_properties",
        "read_property", "list_groups", "read_group", "access_token_info", "legacy_properties",
        "legacy_deal_pipelines", "legacy_crm_pipelines", "legacy_company_properties",
        "legacy_owners",
    }
)  # fmt: skip


def endpoint(
    method: str, pattern: str, *, write: bool | Callable[[dict[str, str]], bool] = False
) -> Callable:
    """``@route`` plus: record write requests in ``writes`` and answer ``_Reject`` errors.

    ``write`` may be a predicate on the route's arguments (batch ``read`` is not a write).
    """

    def mark(func: Callable) -> Callable:
        on_demand = func.__name__ in _ON_DEMAND

        @functools.wraps(func)
        def wrapper(self: HubSpotAPI, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            # Also once every company was made by list walks: the search index is built
            # by ``_materialize_all`` only (a search found nothing after a whole list).
            if (self._left or not self._lm_ready) and not (on_demand or kwargs.get("op") == "read"):
                self._materialize_all()  # search, writes, legacy reads: the whole portal
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
