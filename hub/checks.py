"""What ``hub check`` does: validate the config, then ask each connection one cheap question.

Fast by design: each connection gets one attempt with a short timeout (no retries, no
backoff: a wrong host should say so in seconds, not after a minute of retrying), the
connections are asked in parallel, and each verdict is handed to the caller as soon as it
is known so the CLI prints a line per connection as it goes. A failure carries a hint that
names the likely cause: a host that does not resolve, a refused connection, a TLS problem,
a server that accepted but never answered, or the credential.

Then, for each configured pusher whose connection answered, the push itself is checked
before it ever writes (``hub.push.access``): the connection must have every permission the
configured push needs (a missing scope is named, and ``hub check`` exits 1), and companies
whose tasks would go unassigned are listed. These verdicts have ``connector`` ``push:<pusher>``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from hub.errors import HubError

CHECK_TIMEOUT_S = 5.0
"""Seconds a check waits for a connection and for its answer."""


@dataclass
class Verdict:
    """One connection's answer to ``hub check``."""

    connection: str
    connector: str
    ok: bool
    detail: str
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_connection(
    config: Any,
    name: str,
    *,
    offline: bool = False,
    timeout: float = CHECK_TIMEOUT_S,
    transport: httpx.BaseTransport | None = None,
) -> Verdict:
    """Build one connection and (unless ``offline``) make its cheap authenticated call once."""
    from hub.sync import build_connector

    conn = config.connection(name)
    started = time.perf_counter()
    try:
        connector = build_connector(config, name)
        if offline:
            detail = "config valid (offline)"
        else:
            with connector.client(transport=transport, attempts=1, timeout=timeout) as client:
                detail = connector.check(client)
        ok = True
    except HubError as exc:
        ok, detail = False, str(exc)
    return Verdict(name, conn.connector, ok, detail, round(time.perf_counter() - started, 3))


def check_connections(
    config: Any,
    *,
    offline: bool = False,
    timeout: float = CHECK_TIMEOUT_S,
    transport: httpx.BaseTransport | None = None,
    on_verdict: Callable[[Verdict], None] | None = None,
    database: str | None = None,
) -> list[Verdict]:
    """Check every connection in parallel, then (online) each configured push's access;
    ``on_verdict`` hears each verdict as it completes.

    Returns the connections' verdicts in config order, then the pushers'.
    """
    from hub.config import validate_config

    # ``load_config`` validated already; a config built in code (``parse_config``) is
    # validated here, so no connection is checked against a config with a typo.
    validate_config(config)
    names = list(config.connections)
    if not names:
        return []
    verdicts: dict[str, Verdict] = {}
    with ThreadPoolExecutor(max_workers=min(8, len(names)), thread_name_prefix="hub-check") as pool:
        futures = {
            pool.submit(
                check_connection,
                config,
                name,
                offline=offline,
                timeout=timeout,
                transport=transport,
            ): name
            for name in names
        }
        for future in as_completed(futures):
            verdict = future.result()
            verdicts[verdict.connection] = verdict
            if on_verdict is not None:
                on_verdict(verdict)
    ordered = [verdicts[name] for name in names]
    if offline:
        return ordered
    failed = {v.connection for v in ordered if not v.ok}
    for verdict in push_verdicts(config, database=database, transport=transport, skip=failed):
        ordered.append(verdict)
        if on_verdict is not None:
            on_verdict(verdict)
    return ordered


def push_verdicts(
    config: Any,
    *,
    database: str | None = None,
    transport: httpx.BaseTransport | None = None,
    skip: set[str] | None = None,
) -> list[Verdict]:
    """One verdict per configured pusher: its access (missing scopes) and owner warnings."""
    from hub.push.access import check_push

    out = []
    try:
        checks = check_push(config, database=database, transport=transport, skip_connections=skip)
    except HubError as exc:
        return [Verdict("push", "push", False, str(exc))]
    for check in checks:
        if check.problems:
            detail = "; ".join(check.problems)
        else:
            detail = "write access: everything the configured push does is allowed"
        detail += "".join(f"; warning: {w}" for w in check.warnings)
        out.append(
            Verdict(
                check.connection,
                f"push:{check.pusher}",
                not check.problems,
                detail,
                check.seconds,
                list(check.warnings),
            )
        )
    return out


# Values of the `hub init` template (``hub.plugins.STARTER_CONFIG``) that stand for the
# admin's own: left as they are, a check would fail later in a way that does not say why.
TEMPLATE_PLACEHOLDERS = ("yourcompany", "your product widget")


def placeholder_warnings(config: Any) -> list[str]:
    """One warning per config value still holding a `hub init` placeholder."""
    found: list[str] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}" if where else str(key))
        elif isinstance(value, (list, tuple)):
            if any(isinstance(v, str) and _placeholder(v) for v in value):
                found.append(
                    f"{where} = {list(value)!r} is the `hub init` placeholder: replace it with yours"
                )
        elif isinstance(value, str) and _placeholder(value):
            found.append(
                f"{where} = {value!r} is the `hub init` placeholder: replace it with yours"
            )

    walk(config.model_dump(mode="json"), "")
    return found


def _placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(p in lowered for p in TEMPLATE_PLACEHOLDERS)


__all__ = [
    "CHECK_TIMEOUT_S",
    "TEMPLATE_PLACEHOLDERS",
    "placeholder_warnings",
    "Verdict",
    "check_connection",
    "check_connections",
    "push_verdicts",
]
