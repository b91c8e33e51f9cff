"""``httpx.Auth`` classes for the ways SaaS APIs take credentials.

Each keeps its secret in a ``SecretStr`` and never shows it in ``repr()``.
"""

from __future__ import annotations

import base64
from collections.abc import Generator

import httpx
from pydantic import SecretStr


def _secret(value: str | SecretStr) -> SecretStr:
    return value if isinstance(value, SecretStr) else SecretStr(value)


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` (HubSpot private apps, Zendesk OAuth, Stripe)."""

    def __init__(self, token: str | SecretStr):
        self._token = _secret(token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token='**********')"


class BasicAuth(httpx.Auth):
    """HTTP Basic (Zendesk ``email/token:api_token``; Stripe secret key as the username)."""

    def __init__(self, username: str | SecretStr, password: str | SecretStr = ""):
        self._username = _secret(username)
        self._password = _secret(password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raw = f"{self._username.get_secret_value()}:{self._password.get_secret_value()}"
        request.headers["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode()
        yield request

    def __repr__(self) -> str:
        return "BasicAuth(username='**********', password='**********')"


class QueryKeyAuth(httpx.Auth):
    """An API key sent as a query parameter (BuiltWith's ``KEY``).

    The key ends up in the URL, so the HTTP layer scrubs query strings from everything it
    logs or raises.
    """

    def __init__(self, key: str | SecretStr, param: str = "KEY"):
        self._key = _secret(key)
        self.param = param

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params({self.param: self._key.get_secret_value()})
        yield request

    def __repr__(self) -> str:
        return f"QueryKeyAuth(param={self.param!r}, key='**********')"
