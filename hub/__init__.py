"""hub: a customer-success integration hub, and the public API for its plugins.

Pulls signals from support, billing, CRM and web-technology sources into one SQLite database,
builds a timeline per customer, scores health and writes the result back to the CRM.
Everything a source does is a pluggy plugin; see ``PLUGINS.md``.

Plugin authors import from here only (and ``hub.testing`` in their tests)::

    import hub

    class AcmeConnector(hub.Connector): ...

    @hub.hookimpl
    def register_connectors(register):
        register(AcmeConnector)

The names below are loaded on first use (a module ``__getattr__``), so ``import hub`` stays
cheap and importing the plugin API never creates an import cycle with the modules that
implement it.
"""

from __future__ import annotations

import importlib
from typing import Any

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("hub")
"""Marker for plugin hook implementations: ``@hub.hookimpl``."""

# Public name -> module that defines it. Keep sorted by name; ``tests/test_plugin_api.py``
# checks that every name imports and is documented in PLUGINS.md.
_EXPORTS: dict[str, str] = {
    "APIError": "hub.errors",
    "Account": "hub.health",
    "Aggregates": "hub.health",
    "AmbiguousWriteError": "hub.errors",
    "BasicAuth": "hub.http.auth",
    "BatchedLookup": "hub.http",
    "BearerAuth": "hub.http.auth",
    "ConfigError": "hub.errors",
    "Connector": "hub.connector",
    "ConnectorSettings": "hub.connector",
    "Contribution": "hub.health",
    "Cursor": "hub.http",
    "CursorExpiredError": "hub.errors",
    "CursorExport": "hub.http",
    "CursorPaginator": "hub.http.pagination",
    "EventReplay": "hub.http",
    "EventType": "hub.vocabulary",
    "Failure": "hub.http",
    "FakeAPI": "hub.sandbox.base",
    "FatalAPIError": "hub.errors",
    "FullTable": "hub.http",
    "HealthModel": "hub.health",
    "HttpClient": "hub.http",
    "HubError": "hub.errors",
    "KeysetSearch": "hub.http",
    "LastIdPaginator": "hub.http.pagination",
    "ListOnce": "hub.http",
    "LockedError": "hub.errors",
    "LookupResult": "hub.http",
    "Mapping": "hub.timeline",
    "MappingContext": "hub.timeline",
    "MappingError": "hub.errors",
    "Measure": "hub.health",
    "MeasureParams": "hub.health",
    "MeasureResult": "hub.health",
    "ModelContext": "hub.health",
    "ModelSettings": "hub.health",
    "NextLinkPaginator": "hub.http.pagination",
    "OffsetPaginator": "hub.http.pagination",
    "Outcome": "hub.health",
    "Page": "hub.connector",
    "Paginator": "hub.http.pagination",
    "Playbook": "hub.playbooks",
    "PlaybookContext": "hub.playbooks",
    "PropertyChange": "hub.push",
    "PushContext": "hub.push",
    "PushError": "hub.errors",
    "Pusher": "hub.push",
    "PusherSettings": "hub.push",
    "QueryKeyAuth": "hub.http.auth",
    "RateLimit": "hub.http.ratelimit",
    "RawRecord": "hub.store",
    "RetriableAPIError": "hub.errors",
    "STANDARD_BODY_TAIL": "hub.playbooks",
    "SkippableRecordError": "hub.errors",
    "Source": "hub.vocabulary",
    "StartupError": "hub.errors",
    "Strategy": "hub.http",
    "Stream": "hub.connector",
    "SyncContext": "hub.connector",
    "TaskAction": "hub.push",
    "TimeExport": "hub.http",
    "Trigger": "hub.playbooks",
    "Window": "hub.health",
    "default_classify": "hub.http",
    "dig": "hub.http.pagination",
    "error_text": "hub.http",
    "json_response": "hub.sandbox.base",
    "parse_retry_after": "hub.http",
    "route": "hub.sandbox.base",
}

__all__ = sorted([*_EXPORTS, "__version__", "hookimpl"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hub' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
