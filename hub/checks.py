"""What ``hub check`` does: validate the config, then ask each connection one cheap question.

Fast by design: each connection gets one attempt with a short timeout (no retries, no
backoff: a wrong host should say so in seconds, not after a minute of retrying), the
connections are asked in parallel, and each verdict is handed to the caller as soon as it
is known so the CLI prints a line per connection as it goes. A failure carries a hint that
names the likely cause: a host that does not resolve, a refused connection, a TLS problem,
a server that accepted but never answered, or the credential.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
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
) -> list[Verdict]:
    """Check every connection in parallel; ``on_verdict`` hears each one as it completes.

    Returns the verdicts in config order.
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
    return [verdicts[name] for name in names]


__all__ = [
    "CHECK_TIMEOUT_S",
    "Verdict",
    "check_connection",
    "check_connections",
]
