"""Helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

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
