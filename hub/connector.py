"""Connector and Stream: the declarative base every source plugin builds on.

A connector is a class with a ``name``, a pydantic ``Settings`` model (``extra="forbid"``,
secrets as ``SecretStr``), an ``auth()``, a rate-limit policy and a list of ``Stream``
classes. A stream declares its ``path``, ``primary_key``, ``cursor_field``, ``records_path``,
``paginator`` and ``incremental`` strategy; the default ``pages()`` does the rest. APIs with
unusual shapes override ``parse_response``, ``request_params`` or ``pages``.

Resumability: each ``Page`` carries the state to commit with it. While a stream is mid-run
the state holds ``resume`` (where the next page is, plus the running high-water mark); the
last page replaces it with the new ``bookmark``. A killed sync therefore restarts at the page
after the last committed one, and only a finished run moves the bookmark.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from hub.errors import ConfigError, HubError
from hub.http import HttpClient, RetryPolicy, default_classify, make_client
from hub.http.pagination import Paginator, dig
from hub.http.ratelimit import RateLimit
from hub.store import RawRecord, Store


class ConnectorSettings(BaseModel):
    """Base of every connector's settings: unknown keys are errors, secrets are SecretStr."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    """Override the API's base URL (point it at ``hub sandbox serve`` to try things)."""
    timeout: float = 30.0
    """Seconds before a request times out (and is retried)."""
    max_attempts: int = 6
    """Attempts per request before a retriable error is given up on."""


@dataclass
class Page:
    """One page of records and the state to commit with it."""

    records: list[RawRecord]
    state: dict[str, Any] | None
    done: bool = False


@dataclass
class SyncContext:
    """What a stream needs while it runs: the client, the store, notes for the run record."""

    client: HttpClient
    store: Store
    connection: str
    connector: Connector
    full_refresh: bool = False
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("hub.sync"))
    notes: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def settings(self) -> Any:
        return self.connector.settings

    def note(self, text: str) -> None:
        """Add a plain-words note to this stream's run record (shown by ``hub status``)."""
        if text not in self.notes:
            self.notes.append(text)
        self.log.info("%s: %s", self.connection, text)


class Stream:
    """A declarative stream of records from one endpoint.

    ``incremental`` is ``"full"`` (re-read everything every run), ``"cursor"`` (send the
    bookmark as ``bookmark_param`` and keep the highest ``cursor_field`` seen) or
    ``"custom"`` (the stream overrides ``pages``).
    """

    name: ClassVar[str] = ""
    path: ClassVar[str] = ""
    method: ClassVar[str] = "GET"
    primary_key: ClassVar[str] = "id"
    cursor_field: ClassVar[str | None] = None
    records_path: ClassVar[str | None] = "data"
    paginator: ClassVar[Paginator | None] = None
    incremental: ClassVar[str] = "full"
    bookmark_param: ClassVar[str | None] = None
    params: ClassVar[dict[str, Any]] = {}
    deleted_field: ClassVar[str | None] = None

    def __init__(self, connector: Connector):
        self.connector = connector
        self.settings = connector.settings

    def __repr__(self) -> str:
        return f"<Stream {self.connector.name}.{self.name}>"

    # -- declarative hooks --------------------------------------------------------------

    def make_paginator(self) -> Paginator | None:
        return self.paginator.fresh() if self.paginator is not None else None

    def request_params(self, bookmark: Any) -> dict[str, Any]:
        params = dict(self.params)
        if self.incremental == "cursor" and self.bookmark_param and bookmark is not None:
            params[self.bookmark_param] = bookmark
        return params

    def parse_response(self, response: httpx.Response) -> tuple[Any, list[dict[str, Any]]]:
        """Decode a page: returns (body, records)."""
        body = response.json()
        records = dig(body, self.records_path)
        return body, list(records or [])

    def record_id(self, record: dict[str, Any]) -> str:
        value = dig(record, self.primary_key)
        if value is None:
            raise HubError(
                f"{self.connector.name}.{self.name}: a record has no {self.primary_key!r}"
            )
        return str(value)

    def to_raw(self, record: dict[str, Any]) -> RawRecord:
        updated = dig(record, self.cursor_field) if self.cursor_field else None
        deleted = bool(dig(record, self.deleted_field)) if self.deleted_field else False
        return RawRecord(
            id=self.record_id(record),
            data=record,
            updated_at=str(updated) if updated is not None else None,
            deleted=deleted,
        )

    def cursor_value(self, record: dict[str, Any]) -> Any:
        return dig(record, self.cursor_field) if self.cursor_field else None

    # -- the default page loop ----------------------------------------------------------

    def pages(self, ctx: SyncContext, state: dict[str, Any] | None) -> Iterator[Page]:
        """Yield pages with the state to commit alongside each.

        Resumes from ``state["resume"]`` if a previous run was interrupted.
        """
        state = dict(state or {})
        bookmark = None if ctx.full_refresh else state.get("bookmark")
        resume = state.get("resume") if not ctx.full_refresh else None
        paginator = self.make_paginator()
        if resume:
            url, params = resume.get("url") or self.path, resume.get("params") or {}
            high = resume.get("high")
            bookmark = resume.get("bookmark", bookmark)
        else:
            url = self.path
            params = {
                **self.request_params(bookmark),
                **(paginator.first_params() if paginator else {}),
            }
            high = bookmark
        while True:
            response = ctx.client.request(self.method, url, params=params or None)
            body, records = self.parse_response(response)
            raws = [self.to_raw(r) for r in records]
            for record in records:
                value = self.cursor_value(record)
                if value is not None and (high is None or value > high):
                    high = value
            nxt = paginator.next_page(response, body, records) if paginator else None
            if nxt is None:
                yield Page(
                    raws,
                    {"bookmark": high}
                    if self.incremental != "full"
                    else {"bookmark": None, "complete": True},
                    done=True,
                )
                return
            if isinstance(nxt, str):
                url, params = nxt, {}
            else:
                url, params = self.path, {**self.request_params(bookmark), **nxt}
            yield Page(
                raws,
                {
                    **state,
                    "resume": {"url": url, "params": params, "high": high, "bookmark": bookmark},
                },
            )
            if ctx.stop.is_set():
                return


class Connector:
    """Base of a source connector plugin. Subclasses set the class attributes below."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    docs_url: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    streams: ClassVar[list[type[Stream]]] = []

    def __init__(
        self,
        settings: ConnectorSettings | dict[str, Any] | None = None,
        *,
        connection: str | None = None,
    ):
        if not isinstance(settings, BaseModel):
            settings = self.parse_settings(
                settings or {}, where=f"connections.{connection or self.name}.settings"
            )
        self.settings = settings
        self.connection = connection or self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} connection={self.connection!r}>"

    @classmethod
    def parse_settings(cls, raw: dict[str, Any], *, where: str = "settings") -> ConnectorSettings:
        """Validate raw settings into ``Settings``; errors name the key and never echo values."""
        from hub.config import validate_section

        return validate_section(cls.Settings, raw, where)

    # -- overridable policy -------------------------------------------------------------

    def base_url(self) -> str:
        return (self.settings.base_url or self.default_base_url).rstrip("/")

    def auth(self) -> httpx.Auth | None:
        return None

    def headers(self) -> dict[str, str]:
        return {}

    def rate_limits(self) -> list[RateLimit]:
        return []

    def classify(self, response: httpx.Response) -> HubError | None:
        return default_classify(response)

    def observe(self, response: httpx.Response, client: HttpClient) -> None:
        """Adapt pacing to the API's rate headers (called after every response)."""

    def check(self, client: HttpClient) -> str:
        """One cheap authenticated call; returns a short description of what answered."""
        stream = self.get_streams()[0]
        client.request(stream.method, stream.path, params=stream.request_params(None))
        return f"{stream.path} answered"

    # -- machinery ----------------------------------------------------------------------

    def secrets(self) -> list[str]:
        """Every secret value in the settings (for scrubbing error text)."""
        values = []
        for name in type(self.settings).model_fields:
            value = getattr(self.settings, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
        return values

    def limiter_scope(self) -> str:
        digest = hashlib.sha256("\0".join(self.secrets()).encode()).hexdigest()[:12]
        return f"{self.name}:{self.base_url()}:{digest}"

    def client(
        self, *, transport: httpx.BaseTransport | None = None, sleep: Any = None
    ) -> HttpClient:
        kwargs: dict[str, Any] = {}
        if sleep is not None:
            kwargs["sleep"] = sleep
        return make_client(
            base_url=self.base_url(),
            auth=self.auth(),
            transport=transport,
            timeout=self.settings.timeout,
            rate_limits=self.rate_limits(),
            limiter_scope=self.limiter_scope(),
            classify=self.classify,
            observe=self.observe,
            retry=RetryPolicy(attempts=self.settings.max_attempts),
            headers=self.headers(),
            secrets=self.secrets(),
            **kwargs,
        )

    def get_streams(self, only: list[str] | None = None) -> list[Stream]:
        streams = [cls(self) for cls in self.streams]
        if only:
            known = {s.name for s in streams}
            unknown = [name for name in only if name not in known]
            if unknown:
                raise ConfigError(
                    f"connector {self.name!r} has no stream {unknown[0]!r}",
                    hint=f"streams: {', '.join(sorted(known))}",
                )
            streams = [s for s in streams if s.name in only]
        return streams
