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

from hub.errors import ConfigError, HubError, SkippableRecordError
from hub.http import HttpClient, RetryPolicy, default_classify, make_client
from hub.http.client import Failure, json_of
from hub.http.incremental import STRATEGIES, Cursor, Page, Strategy
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
class SyncContext:
    """What a stream needs while it runs: the client, the store, notes for the run record.

    ``account_domains()`` is the host's answer to "which companies do we know?": the
    normalised web domains of the accounts (free-mail excluded), from the store's read model.
    A connector that looks data up per company (rather than listing a source) asks it here
    and sets ``uses_account_domains = True`` so the host brings accounts up to date first.
    """

    client: HttpClient
    store: Store
    connection: str
    connector: Connector
    full_refresh: bool = False
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("hub.sync"))
    notes: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    skipped: list[str] = field(default_factory=list)
    skipped_count: int = 0

    @property
    def settings(self) -> Any:
        return self.connector.settings

    def note(self, text: str) -> None:
        """Add a plain-words note to this stream's run record (shown by ``hub status``)."""
        if text not in self.notes:
            self.notes.append(text)
        self.log.info(
            "%s: %s", self.connection, text, extra={"fields": {"connection": self.connection}}
        )

    def skip(self, where: str, reason: str) -> None:
        """Report a record that cannot be stored; the stream goes on without it."""
        self.skipped_count += 1
        if len(self.skipped) < 5:  # the run record names the first few, counts them all
            self.skipped.append(f"{where}: {reason}")
        self.log.warning(
            "%s: skipped a record (%s: %s)",
            self.connection,
            where,
            reason,
            extra={"fields": {"connection": self.connection}},
        )

    def account_domains(self) -> list[str]:
        """The known accounts' web domains (sorted, unique, no free-mail providers)."""
        from hub.store.domains import account_domains
        from hub.timeline.identity import FREEMAIL, normalize_domain

        found = (normalize_domain(d) for d in account_domains(self.store))
        return sorted({d for d in found if d and d not in FREEMAIL})


class Stream:
    """A declarative stream of records from one endpoint.

    ``incremental`` is a strategy from ``hub.http.incremental``/``hub.http.replay`` (or the
    names ``"full"`` and ``"cursor"``; ``"custom"`` means the stream overrides ``pages`` and
    must say why in its docstring). The strategy owns the page loop, the loop guard, the
    bookmark and resume; the hooks below describe the API.
    """

    name: ClassVar[str] = ""
    path: ClassVar[str] = ""
    method: ClassVar[str] = "GET"
    primary_key: ClassVar[str] = "id"
    cursor_field: ClassVar[str | None] = None
    records_path: ClassVar[str | None] = "data"
    paginator: ClassVar[Paginator | None] = None
    incremental: ClassVar[str | Strategy] = "full"
    bookmark_param: ClassVar[str | None] = None
    params: ClassVar[dict[str, Any]] = {}
    body: ClassVar[dict[str, Any] | None] = None
    deleted_field: ClassVar[str | None] = None

    def __init__(self, connector: Connector):
        self.connector = connector
        self.settings = connector.settings

    def __repr__(self) -> str:
        return f"<Stream {self.connector.name}.{self.name}>"

    # -- declarative hooks --------------------------------------------------------------

    def strategy(self) -> Strategy | None:
        """The incremental strategy object (``None`` for ``"custom"``)."""
        value = self.incremental
        if isinstance(value, Strategy):
            return value
        if value == "custom":
            return None
        cls = STRATEGIES.get(value)
        if cls is None:
            raise ConfigError(
                f"stream {self.connector.name}.{self.name}: unknown incremental {value!r}",
                hint="use a strategy from hub.http.incremental (or 'full' / 'cursor')",
            )
        return cls(self.bookmark_param) if cls is Cursor else cls()

    def make_paginator(self) -> Paginator | None:
        return self.paginator.fresh() if self.paginator is not None else None

    def request_params(self, bookmark: Any) -> dict[str, Any]:
        params = dict(self.params)
        strategy = self.strategy()
        param = getattr(strategy, "param", None) or self.bookmark_param
        if isinstance(strategy, Cursor) and param and bookmark is not None:
            params[param] = bookmark
        return params

    def request_body(self, bookmark: Any) -> dict[str, Any] | None:
        """The JSON body of a POST search (``body``, plus the bookmark where the API wants it)."""
        return dict(self.body) if self.body is not None else None

    def initial_bookmark(self) -> Any:
        """Where a first run starts (a start time for exports); ``None``: from the beginning."""
        return None

    def fetch(
        self,
        ctx: SyncContext,
        url: str | None = None,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> tuple[httpx.Response, Any, list[Any]]:
        """One read request: returns (response, decoded body, records).

        Reads are idempotent even when they POST (searches), so they are retried.
        """
        response = ctx.client.request(
            self.method, url or self.path, params=params or None, json=json, idempotent=True
        )
        body, records = self.parse_response(response)
        return response, body, records

    def parse_response(self, response: httpx.Response) -> tuple[Any, list[Any]]:
        """Decode a page: returns (body, records)."""
        body = json_of(response)
        records = dig(body, self.records_path)
        return body, list(records) if isinstance(records, list) else []

    def record_key(self, record: dict[str, Any]) -> str | None:
        """The record's primary key as text, or ``None`` when it has none."""
        value = dig(record, self.primary_key)
        return None if value is None or value == "" else str(value)

    def record_id(self, record: dict[str, Any]) -> str:
        key = self.record_key(record)
        if key is None:
            raise SkippableRecordError(f"the record has no {self.primary_key!r}")
        return key

    def to_raw(self, record: dict[str, Any]) -> RawRecord:
        updated = dig(record, self.cursor_field) if self.cursor_field else None
        deleted = bool(dig(record, self.deleted_field)) if self.deleted_field else False
        return RawRecord(
            id=self.record_id(record),
            data=record,
            updated_at=str(updated) if updated is not None else None,
            deleted=deleted,
        )

    def records_to_raw(
        self, ctx: SyncContext, records: list[Any], *, page: int | None = None
    ) -> list[RawRecord]:
        """Rows to store; a record that cannot be stored is skipped and reported.

        No id, nesting deeper than ``MAX_DEPTH`` or not an object at all: the record is
        counted and named by its position in the run record, the rest of the page is stored
        and the bookmark moves on, so one bad record never stops a stream on every run.
        """
        out = []
        for index, record in enumerate(records, 1):
            try:
                if not isinstance(record, dict):
                    raise SkippableRecordError(f"not an object ({type(record).__name__})")
                check_depth(record)
                out.append(self.to_raw(record))
            except SkippableRecordError as exc:
                where = f"{self.name} page {page} record {index}" if page else None
                ctx.skip(where or f"{self.name} record {index}", exc.message)
        return out

    def usable(
        self, ctx: SyncContext, records: list[Any], *, page: int | None = None
    ) -> list[dict[str, Any]]:
        """The records ``records_to_raw`` would store, as they are (for a stream that builds
        its rows itself); the others are skipped and reported the same way."""
        out = []
        for index, record in enumerate(records, 1):
            try:
                if type(record) is not dict and not isinstance(record, dict):
                    raise SkippableRecordError(f"not an object ({type(record).__name__})")
                check_depth(record)
                self.record_id(record)
                out.append(record)
            except SkippableRecordError as exc:
                where = f"{self.name} page {page} record {index}" if page else None
                ctx.skip(where or f"{self.name} record {index}", exc.message)
        return out

    def cursor_value(self, record: dict[str, Any]) -> Any:
        return dig(record, self.cursor_field) if self.cursor_field else None

    # -- hooks some strategies call (see each strategy's docstring) ---------------------

    def prepare(self, ctx: SyncContext, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Adjust a page's records before they are stored (``ListOnce``)."""
        return records

    def finished(self, ctx: SyncContext, seen: set[str] | None) -> None:
        """A complete listing ended (``ListOnce``; ``seen`` is None when it was resumed)."""

    # -- the page loop ------------------------------------------------------------------

    def pages(self, ctx: SyncContext, state: dict[str, Any] | None) -> Iterator[Page]:
        """Yield pages with the state to commit alongside each (the strategy's loop)."""
        strategy = self.strategy()
        if strategy is None:
            raise NotImplementedError(f"{self!r} declares incremental='custom' but no pages()")
        yield from strategy.pages(self, ctx, state)


MAX_DEPTH = 64
"""Deepest nesting of a record the hub stores; deeper ones are skipped and reported."""


def check_depth(record: Any, limit: int = MAX_DEPTH) -> None:
    """Raise ``SkippableRecordError`` when ``record`` nests deeper than ``limit``.

    Every stored record goes through it, so it is written for speed: exact ``dict``/``list``
    types and leaves are told apart by ``type`` (a set lookup), the walk stops at the first
    container too deep, and recursion is bounded by ``limit`` itself.
    """
    if isinstance(record, (dict, list)) and not _within(record, limit):
        raise SkippableRecordError(f"nested deeper than {limit} levels")


_LEAVES = frozenset({str, int, float, bool, type(None)})


def _within(value: dict[str, Any] | list[Any], remaining: int) -> bool:
    """Whether ``value`` and everything in it fits in ``remaining`` levels."""
    if remaining <= 0:
        return False
    for item in value.values() if isinstance(value, dict) else value:
        kind = type(item)
        if kind in _LEAVES:
            continue
        if (kind is dict or kind is list or isinstance(item, (dict, list))) and not _within(
            item, remaining - 1
        ):
            return False
    return True


class Connector:
    """Base of a source connector plugin. Subclasses set the class attributes below."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    docs_url: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    streams: ClassVar[list[type[Stream]]] = []
    uses_account_domains: ClassVar[bool] = False
    """Set when streams call ``ctx.account_domains()``: the host syncs this connector after
    the others and brings the accounts up to date before it."""

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
        """The hub's error for a response (``None`` when it is fine).

        Connectors override ``classify_error`` rather than this: it gets the failed response
        already read (status, ``where``, short ``text``, decoded ``body``) and returns an
        error, or ``None`` for the default mapping (429/5xx retriable, other 4xx fatal).
        """
        if response.status_code < 400:
            return None
        return self.classify_error(Failure.of(response)) or default_classify(response)

    def classify_error(self, failure: Failure) -> HubError | None:
        return None

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
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Any = None,
        stop: threading.Event | None = None,
        on_wait: Any = None,
        attempts: int | None = None,
        timeout: float | None = None,
    ) -> HttpClient:
        """The HTTP client for one run of this connection (one per run: connections reused).

        ``attempts``/``timeout`` override the settings (``hub check`` asks once, briefly).
        """
        from hub.http.budget import default_budget_path

        kwargs: dict[str, Any] = {}
        if sleep is not None:
            kwargs["sleep"] = sleep
        seconds = timeout if timeout is not None else self.settings.timeout
        return make_client(
            base_url=self.base_url(),
            auth=self.auth(),
            transport=transport,
            timeout=seconds,
            connect_timeout=min(seconds, 5.0) if timeout is not None else None,
            rate_limits=self.rate_limits(),
            limiter_scope=self.limiter_scope(),
            budget_path=default_budget_path(),
            classify=self.classify,
            observe=self.observe,
            retry=RetryPolicy(attempts=attempts or self.settings.max_attempts),
            headers=self.headers(),
            secrets=self.secrets(),
            require_json=True,
            label=self.title or self.name,
            on_wait=on_wait,
            stop=stop,
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
