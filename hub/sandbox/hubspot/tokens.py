"""HubSpot fake: bearer tokens (service keys, private-app tokens), their scopes, and the
token-information endpoint.

Each token the portal knows carries its granted scopes. A request needing a scope its token
lacks is a 403 in HubSpot's shape (``category: MISSING_SCOPES``, ``errors[].context.
requiredGranularScopes``). Tasks and the other engagements are governed by the contact
scopes, as in HubSpot. ``POST /oauth/v2/private-apps/get/access-token-info`` with
``{"tokenKey": ...}`` answers ``{"userId", "hubId", "appId", "scopes"}``; it needs no
Authorization header (the token is the body).

The ``missing_scope`` fault (``scope=a,b``) withholds scopes from every token while it is
queued: token information omits them and only requests needing one answer the 403 above, as
a real token created without that scope would.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from hub.sandbox.base import json_response
from hub.sandbox.hubspot.common import endpoint
from hub.sandbox.hubspot.schema import ALIASES

HUB_ID = 24_681_357
SCOPE_DOCS = "https://developers.hubspot.com/scopes"
# Objects whose access HubSpot grants through the contact scopes (engagements).
_CONTACT_GOVERNED = {"tasks", "calls", "meetings", "notes", "emails"}
# Activity types with granular scopes of their own (unless the portal predates them).
ACTIVITY_TYPES = ("calls", "emails", "meetings", "notes")
_OBJECT_PATH = re.compile(r"^/crm/v[34]/objects/(?P<t>[^/]+)(?P<rest>/.*)?$")
_ASSOC_PATH = re.compile(r"^/crm/v4/associations/(?P<t>[^/]+)/")
_PROPS_PATH = re.compile(r"^/crm/v3/properties/(?P<t>[^/]+)(?P<rest>/.*)?$")
_READ_POSTS = re.compile(r"/(search|batch/read)/?$")


def object_scope(t: str, write: bool, granular: bool = True) -> str:
    """The granular scope HubSpot requires to read or write objects of type ``t``
    (``granular=False``: a portal without the activity scopes, where the contact scopes
    govern calls, e-mails, meetings and notes)."""
    if t in _CONTACT_GOVERNED and not (granular and t in ACTIVITY_TYPES):
        t = "contacts"
    if t == "tickets":
        return "tickets"
    return f"crm.objects.{t}.{'write' if write else 'read'}"


def schema_scope(t: str, write: bool, granular: bool = True) -> str:
    """The scope for reading or changing the property definitions of type ``t``."""
    if t in ("companies", "contacts", "deals"):
        return f"crm.schemas.{t}.{'write' if write else 'read'}"
    return object_scope(t, write, granular)


ALL_SCOPES: tuple[str, ...] = tuple(
    sorted(
        {
            "oauth",
            "tickets",
            "crm.objects.owners.read",
            *(
                object_scope(t, w)
                for t in ("companies", "contacts", "deals", *ACTIVITY_TYPES)
                for w in (0, 1)
            ),
            *(schema_scope(t, w) for t in ("companies", "contacts", "deals") for w in (0, 1)),
        }
    )
)


@dataclass
class Token:
    """One bearer token of the portal and what it may do."""

    kind: str = "private_app"  # private_app | service_key | oauth (unknown to token info)
    scopes: set[str] = field(default_factory=lambda: set(ALL_SCOPES))
    app_id: int = 3_141_592
    user_id: int = 9_000_000


def required_scope(request: httpx.Request, granular: bool = True) -> str | None:
    """The scope a request needs (None when the fake does not gate it); ``granular`` as in
    ``object_scope``."""
    path, method = request.url.path, request.method
    writes = method in ("POST", "PATCH", "PUT", "DELETE") and not _READ_POSTS.search(path)
    if path.startswith("/crm/v3/owners"):
        return "crm.objects.owners.read"
    found = _OBJECT_PATH.match(path) or _ASSOC_PATH.match(path)
    if found:
        t = ALIASES.get(found.group("t").lower())
        return object_scope(t, writes, granular) if t else None
    found = _PROPS_PATH.match(path)
    if found:
        t = ALIASES.get(found.group("t").lower())
        return schema_scope(t, writes, granular) if t else None
    return None


def fault_scopes(params: dict[str, Any]) -> list[str]:
    """The scopes a fault names (``scope`` or ``scopes``: a list, or one comma-separated
    string)."""
    out: list[str] = []
    for key in ("scope", "scopes"):
        value = params.get(key)
        items: Iterable[Any] = value.split(",") if isinstance(value, str) else (value or ())
        out.extend(str(item).strip() for item in items if str(item).strip())
    return list(dict.fromkeys(out))


class _Tokens:
    """Tokens, scopes and the token-information endpoint."""

    def check_fault(self, kind: str, params: dict[str, Any]) -> None:
        """Refuse a ``missing_scope`` fault that names no scope or one the portal never
        grants (``ValueError``: a typo would otherwise withhold nothing)."""
        if kind != "missing_scope":
            return
        scopes = fault_scopes(params)
        if not scopes:
            raise ValueError("missing_scope needs scope=SCOPE[,SCOPE...]")
        unknown = [s for s in scopes if s not in ALL_SCOPES]
        if unknown:
            raise ValueError(
                f"missing_scope: unknown scope {', '.join(unknown)} (known: {', '.join(ALL_SCOPES)})"
            )

    def withheld_scopes(self) -> set[str]:
        """Scopes the queued ``missing_scope`` faults take from every token."""
        return {
            scope
            for fault in self.faults.pending()
            if fault.kind == "missing_scope"
            for scope in fault_scopes(fault.params)
        }

    def _served(self, token: Token | None) -> Token | None:
        if token is None:
            return None
        withheld = self.withheld_scopes()
        if not withheld:
            return token
        return dataclasses.replace(token, scopes=token.scopes - withheld)

    def issue_token(
        self, token: str, *, scopes: Any = None, kind: str = "private_app", without: Any = ()
    ) -> Token:
        """Make ``token`` valid for this portal (tests): ``scopes`` granted (all by default)
        minus ``without``; ``kind`` is ``private_app``, ``service_key`` or ``oauth`` (an app's
        OAuth access token: it works as a bearer token, but the private-app token-information
        endpoint does not know it)."""
        granted = set(ALL_SCOPES if scopes is None else scopes) - set(without)
        info = Token(kind=kind, scopes=granted, app_id=3_141_592 + len(self.tokens))
        self.tokens[token] = info
        return info

    def revoke_token(self, token: str) -> None:
        self.tokens.pop(token, None)

    def _token_of(self, request: httpx.Request) -> Token | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        value = header[7:]
        if value == self.token and value not in self.tokens:
            return self._served(Token())
        return self._served(self.tokens.get(value))

    def missing_scope(self, required: str) -> httpx.Response:
        return self.error(
            403,
            "This app hasn't been granted all required scopes to make this call. "
            f"Read more about required scopes here: {SCOPE_DOCS}.",
            category="MISSING_SCOPES",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": [required]},
                }
            ],
            links={"scopes": SCOPE_DOCS},
        )

    @endpoint("POST", r"/oauth/v2/private-apps/get/access-token-info")
    def access_token_info(self, request: httpx.Request) -> httpx.Response:
        body = self._body(request)
        key = body.get("tokenKey") if isinstance(body, dict) else None
        if not key:
            raise self._reject(400, "tokenKey is required", category="VALIDATION_ERROR")
        info = self.tokens.get(str(key))
        if info is None and key == self.token:
            info = Token()
        info = self._served(info)
        if info is None or info.kind == "oauth":
            raise self._reject(
                401,
                "The token provided is not a valid private app or service key token",
                category="INVALID_AUTHENTICATION",
            )
        return json_response(
            200,
            {
                "userId": info.user_id,
                "hubId": HUB_ID,
                "appId": info.app_id,
                "scopes": sorted(info.scopes),
            },
        )
