"""Mappings and the unified timeline: raw rows → entities, account links, events, accounts.

The package, one job per module:

- ``hub.timeline.mapping``  the plugin API: ``Mapping`` (with typed ``Settings``),
  ``MappingContext`` (what a mapping writes through), event ids;
- ``hub.timeline.driver``   the map step: ``run_mappings`` (incremental, crash-safe),
  ``validate_config`` for ``[timeline.<mapping>]``;
- ``hub.timeline.identity`` which account every entity belongs to;
- ``hub.timeline.accounts`` the ``accounts`` table built from linked entities' facts.

The mapping contract (for plugin authors; PLUGINS.md has the full text)::

    class AcmeMapping(Mapping):
        name = "acme"            # unique mapping name, also its [timeline.acme] section
        connector = "acme"       # the connector whose raw tables it reads
        streams = ["accounts", "tickets"]   # processed in this order

        class Settings(MappingSettings):    # [timeline.acme]; unknown keys are refused
            urgent_priority: str = "high"

        def map_rows(self, ctx, stream, rows):
            for row in rows:              # row: {"id", "updated_at", "deleted", "data", ...}
                if row["deleted"]:
                    continue              # a tombstone: the events the row owned go away
                data = row["data"]
                if stream == "accounts":
                    ctx.entity("acme", "account", row["id"], name=data["name"],
                               domains=[data["website"]], explicit_account=data.get("crm_id"))
                else:
                    ctx.event(ctx.entity_key("acme", "account", data["account_id"]),
                              "ticket_opened", data["created_at"], source="acme",
                              source_id=row["id"], summary=f"Ticket #{row['id']} opened",
                              attrs={"priority": data["priority"]}, link=data["url"])

        def finalize(self, ctx):          # optional: time-dependent events ("renewal due")
            ...

Incremental: each mapping sees only raw rows whose ``seq`` is above what it processed last
time (``_hub_map_state``); ``run_mappings(full=True)`` rebuilds everything from scratch and
gives the same result.
"""

from __future__ import annotations

from hub.timeline.accounts import ACCOUNT_COLUMNS, SUMMED_FACTS, build_accounts
from hub.timeline.driver import KILL_ENV, MapResult, run_mappings, validate_config
from hub.timeline.identity import Resolution, account_for, normalize_domain, resolve
from hub.timeline.mapping import (
    Mapping,
    MappingContext,
    MappingSettings,
    event_id,
    to_iso,
)

__all__ = [
    "ACCOUNT_COLUMNS",
    "KILL_ENV",
    "SUMMED_FACTS",
    "MapResult",
    "Mapping",
    "MappingContext",
    "MappingSettings",
    "Resolution",
    "account_for",
    "build_accounts",
    "event_id",
    "normalize_domain",
    "resolve",
    "run_mappings",
    "to_iso",
    "validate_config",
]
