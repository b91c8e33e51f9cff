"""Helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

from hub.config import Config, parse_config
from hub.store import Store
from hub.timeline import Mapping, MappingContext
from hub.timeline.identity import resolve


def seed_hubspot_roots(store: Store, world: Any, mapping: Mapping) -> None:
    """Stand in for the HubSpot mapping: one root entity per live world company (merges as
    the world says), then run identity resolution, so a single source's links can be
    checked without syncing HubSpot."""
    ctx = MappingContext(store=store, connection="hubspot", mapping=mapping)
    for c in world.companies:
        if "archived" in c.traps:
            continue
        merged = world.companies[c.merged_into].hubspot_id if c.merged_into is not None else None
        ctx.entity(
            "hubspot",
            "company",
            c.hubspot_id,
            name=c.name,
            domains=[c.domain],
            is_root=True,
            merged_into=merged,
        )
    ctx.flush()
    resolve(store)


def sandbox_config() -> Config:
    """A config for the four built-in connectors against the sandbox, with budgets high
    enough that tests never wait on a rate limiter."""
    from hub.sandbox.base import COMPETITORS, OUR_TECHNOLOGY
    from hub.sandbox.world import CREDENTIALS

    zd = CREDENTIALS["zendesk"]
    return parse_config(
        {
            "connections": {
                "hubspot": {
                    "connector": "hubspot",
                    "settings": {
                        "access_token": CREDENTIALS["hubspot"]["access_token"],
                        "burst_limit": 250,
                        "search_per_second": 10,
                    },
                },
                "stripe": {
                    "connector": "stripe",
                    "settings": {
                        "api_key": CREDENTIALS["stripe"]["api_key"],
                        "requests_per_second": 100,
                    },
                },
                "zendesk": {
                    "connector": "zendesk",
                    "settings": {
                        "subdomain": zd["subdomain"],
                        "email": zd["email"],
                        "api_token": zd["api_token"],
                        "incremental_per_minute": 100000,
                        "requests_per_minute": 100000,
                    },
                },
                "builtwith": {
                    "connector": "builtwith",
                    "settings": {
                        "api_key": CREDENTIALS["builtwith"]["api_key"],
                        "requests_per_second": 1000,
                    },
                },
            },
            "timeline": {
                "builtwith": {"our_technologies": [OUR_TECHNOLOGY], "competitors": COMPETITORS}
            },
        }
    )


def two_syncs(
    folder: Any, *, companies: int, seed: int, days: int, map_between: bool = False
) -> tuple[Any, Any, Any]:
    """Sync a fresh sandbox world into ``folder/first.db``; copy it to ``second.db``, (map it,
    if asked), let the world move on ``days`` days and sync again. Returns (first, second,
    the world's time after the second sync)."""
    import shutil

    from hub import clock
    from hub.sandbox.world import advance, build_sandbox
    from hub.sync import sync_all
    from hub.timeline import run_mappings

    sandbox = build_sandbox(companies=companies, seed=seed)
    clock.set_source(sandbox.world.now)
    config = sandbox_config()
    first, second = folder / "first.db", folder / "second.db"
    store = Store(first)
    sync_all(store, config, transport=sandbox.transport())
    store.close()
    shutil.copy(first, second)
    store = Store(second)
    if map_between:
        run_mappings(store)
    advance(sandbox, days)
    sync_all(store, config, transport=sandbox.transport())
    store.close()
    now = sandbox.world.now()
    clock.set_source(None)
    return first, second, now
