"""The built-in HubSpot pusher: health fields on companies and CSM tasks, written safely.

One class, ``HubSpotPusher``, made of one part per job (API facts in the HubSpot docs; the
sandbox fake follows them):

* ``properties``: the property group and company properties the hub owns, with their
  descriptions (``OVERRIDE_PROPERTIES`` is the one spelling of the CSM override fields);
* ``client``: shared reads (associations, batch reads, the marker search, 207 parsing);
* ``companies``: the schema set-up and batch updates of only the values that changed;
* ``tasks``: tasks created exactly once (claim, marker, reconcile on a lost answer, verify);
* ``completions``: reading completed or deleted tasks back for the host to record;
* ``undo``: the revert and uninstall hooks (values, tasks, the hub's own schema);
* ``access``: the scopes the configured push needs, checked before anything is written.

Configured in ``[push.hubspot]`` (``Settings``); it writes through the connection named
there (default ``hubspot``), with that connection's token and rate budget.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

import hub
from hub.push import PusherSettings
from plugins.hubspot_pusher.access import Access
from plugins.hubspot_pusher.client import RETRIABLE_CATEGORIES, marker_for, parse_batch
from plugins.hubspot_pusher.companies import CompanyProperties
from plugins.hubspot_pusher.completions import TaskCompletions
from plugins.hubspot_pusher.mapping import mapping_errors
from plugins.hubspot_pusher.properties import (
    ALLOWED_PROPERTIES,
    BANDS,
    FIELD_PROPERTY,
    GROUP,
    OBJECT_TYPE,
    OVERRIDE_PROPERTIES,
    PROPERTIES,
)
from plugins.hubspot_pusher.tasks import TASK_TO_COMPANY, TaskDelivery, body_html
from plugins.hubspot_pusher.undo import Undo


class HubSpotSettings(PusherSettings):
    """``[push.hubspot]``."""

    batch_size: int = Field(default=100, ge=1, le=100)
    """Companies (and tasks) per batch request; HubSpot allows at most 100."""
    record_retries: int = Field(default=2, ge=0, le=5)
    """How often a record that failed with a retriable error inside a 207 is retried."""
    record_retry_delay: float = Field(default=1.0, ge=0, le=60)
    verify_associations: bool = True
    """Read every created task's company association back (and re-add it once if missing)."""
    task_type: Literal["TODO", "CALL", "EMAIL"] = "TODO"
    fallback_owner_id: str | None = None
    """Owner for tasks of companies without an owner; unset = the task stays unassigned."""
    properties: dict[str, str] = Field(default_factory=dict)
    """Health field → an existing portal property to write it to instead of the hub's own
    (``score = "health_score"``); checked against the portal before anything is written."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Health field → label of the hub's own property."""
    descriptions: dict[str, str] = Field(default_factory=dict)
    """Health field → description of the hub's own property."""
    group_name: str = Field(default=GROUP["name"], pattern=r"^[a-z][a-z0-9_]*$")
    """Internal name of the hub's property group."""
    group_label: str = Field(default=GROUP["label"], min_length=1)
    """Label of the hub's property group."""

    @model_validator(mode="after")
    def _mapping(self) -> HubSpotSettings:
        errors = mapping_errors(self)
        if errors:
            raise ValueError("; ".join(errors))
        return self

    @field_validator("fallback_owner_id", mode="before")
    @classmethod
    def _owner_text(cls, value: Any) -> Any:
        # TOML users write owner ids as numbers as often as text.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value or None


class HubSpotPusher(CompanyProperties, TaskDelivery, TaskCompletions, Undo, Access):
    """Writes health properties and outbox tasks to HubSpot (see the module docstring)."""

    name = "hubspot"
    title = "HubSpot companies and tasks"
    # Which company property carries each health field: the health engine reads the push log
    # through it to recognise its own override read back from HubSpot.
    field_properties = FIELD_PROPERTY
    connector = "hubspot"
    record_type = OBJECT_TYPE
    Settings = HubSpotSettings
    handles_tasks = True
    default = True
    settings: HubSpotSettings


@hub.hookimpl
def register_pushers(register: Any) -> None:
    register(HubSpotPusher)


__all__ = [
    "ALLOWED_PROPERTIES",
    "BANDS",
    "FIELD_PROPERTY",
    "GROUP",
    "OBJECT_TYPE",
    "OVERRIDE_PROPERTIES",
    "PROPERTIES",
    "RETRIABLE_CATEGORIES",
    "TASK_TO_COMPANY",
    "HubSpotPusher",
    "HubSpotSettings",
    "body_html",
    "marker_for",
    "parse_batch",
    "register_pushers",
]
