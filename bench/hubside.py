"""The hub's side of the benchmarks: connectors pointed at a sandbox URL, limits off or scaled.

``connector_for(name, url, ...)`` builds a registered connector with the sandbox credentials
and ``base_url`` = the sandbox. Two variants change only the proactive rate limiter:

- ``limits="off"`` (ingest): a subclass whose ``rate_limits()`` is empty, so the figure is the
  hub's own speed, not its pacing (the sandbox enforces nothing either);
- ``limits="scaled"`` (budget): a subclass whose ``rate_limits()`` are the connector's own
  budgets with every window multiplied by the sandbox's ``time_scale``, exactly as the sandbox
  scales its windows. Scaling through the settings (``burst_limit`` …) cannot do this: they
  are counts per fixed window (and bounded, e.g. ``burst_limit`` ≤ 250), so a count scaled
  up would allow a burst the scaled sandbox refuses.
"""

from __future__ import annotations

from typing import Any

from hub.connector import Connector
from hub.http.ratelimit import RateLimit, reset_shared_limiters
from hub.registry import get_registry

CONNECTORS = ("stripe", "hubspot", "zendesk", "builtwith")


def credentials(name: str) -> dict[str, Any]:
    from hub.sandbox.world import CREDENTIALS

    creds = dict(CREDENTIALS[name])
    if name == "zendesk":
        creds.pop("oauth_token", None)  # one way to sign in: email + api_token
    return creds


def connector_class(name: str) -> type[Connector] | None:
    """The registered connector class, or None while it is not written yet."""
    try:
        return get_registry().connector(name)
    except Exception:  # noqa: BLE001 - "not installed" is a ConfigError; anything else too
        return None


def missing_connectors(names: tuple[str, ...] = CONNECTORS) -> list[str]:
    return [n for n in names if connector_class(n) is None]


def connector_for(
    name: str,
    url: str | None,
    *,
    limits: str = "off",
    time_scale: float = 1.0,
    extra: dict[str, Any] | None = None,
    connection: str | None = None,
) -> Connector:
    """A connector for the sandbox at ``url``; ``limits`` is ``off``, ``scaled`` or ``real``.

    ``url=None`` keeps the API's own base URL (for an in-process ``sandbox.transport()``).
    """
    cls = connector_class(name)
    if cls is None:
        raise RuntimeError(f"connector {name!r} is not installed")
    reset_shared_limiters()  # each run starts with a fresh budget
    if limits == "off":
        cls = type(f"Unlimited{cls.__name__}", (cls,), {"rate_limits": lambda self: []})
    elif limits == "scaled":
        base = cls

        def scaled(self: Connector) -> list[RateLimit]:
            return [
                RateLimit(r.name, r.limit, r.per_seconds * time_scale, r.match)
                for r in base.rate_limits(self)
            ]

        cls = type(f"Scaled{cls.__name__}", (cls,), {"rate_limits": scaled})
    settings = {**credentials(name), **({"base_url": url} if url else {}), **(extra or {})}
    return cls(settings, connection=connection or name)


def budget_table(name: str, time_scale: float) -> list[dict[str, Any]]:
    """The connector's budgets as declared and as scaled (for the output)."""
    cls = connector_class(name)
    if cls is None:
        return []
    connector = cls({**credentials(name), "base_url": "http://127.0.0.1"}, connection=name)
    return [
        {
            "budget": r.name,
            "declared": f"{r.limit}/{r.per_seconds:g}s",
            "scaled": f"{r.limit}/{r.per_seconds * time_scale:g}s",
            "match": r.match,
        }
        for r in connector.rate_limits()
    ]
