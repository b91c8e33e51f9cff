"""The built-in Zendesk pusher: health fields on Zendesk organizations, so support agents see
each customer's health beside its tickets.

One class, ``ZendeskPusher``, made of one part per job (API facts in Zendesk's Support API
reference; the sandbox fake follows them):

* ``fields``: the organization fields the hub owns (key prefix + description marker), their
  types, and the checks for fields an admin maps instead;
* ``organizations``: field set-up, only changed values, ``update_many`` bulk writes (100 per
  request) and their job statuses read per record;
* ``admin``: ``hub check``'s access check, revert of a run, uninstall.

Configured in ``[push.zendesk]`` (``Settings``); it writes through the Zendesk connection
named there (default ``zendesk``) with that connection's credentials and rate budget. The
account → organization link is the identity link the Zendesk mapping made (``external_id``
or domain), never a name match. It delivers no tasks (HubSpot does).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

import hub
from hub.push import PusherSettings
from plugins.zendesk_pusher.admin import ZendeskAdmin
from plugins.zendesk_pusher.fields import BANDS, HUB_FIELDS, MARKER, definition
from plugins.zendesk_pusher.organizations import BULK_MAX, OBJECT_TYPE

HubField = Literal["score", "band", "trend_7d", "trend_30d", "top_driver"]
_PREFIX = re.compile(r"^[a-z][a-z0-9_]*_$")


class ZendeskPushSettings(PusherSettings):
    """``[push.zendesk]``."""

    write: list[HubField] = Field(default_factory=lambda: list(HUB_FIELDS))
    """Which health fields to write (score, band, trend_7d, trend_30d, top_driver)."""
    fields: dict[HubField, str] = Field(default_factory=dict)
    """``[push.zendesk.fields]``: hub field → key of an existing organization field to write
    it to instead of a field the hub creates (its type is checked first)."""
    titles: dict[HubField, str] = Field(default_factory=dict)
    """``[push.zendesk.titles]``: titles of the fields the hub creates (defaults in English)."""
    key_prefix: str = "hub_health_"
    """Key prefix of the organization fields the hub creates (and, on uninstall, deletes)."""
    batch_size: int = Field(default=BULK_MAX, ge=1, le=BULK_MAX)
    """Organizations per ``update_many`` request; Zendesk allows at most 100."""
    job_poll_interval: float = Field(default=1.0, ge=0, le=60)
    """Seconds before polling the bulk jobs again (doubles up to 10 s while they run)."""
    job_timeout: float = Field(default=300.0, ge=1, le=3600)
    """Seconds to wait for the bulk jobs; values of a job still running are sent again next push."""

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(
                "key_prefix must be lower-case letters, digits and _ , start with a letter "
                "and end with _ (e.g. hub_health_)"
            )
        return value

    @field_validator("fields")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for hub_field, key in value.items():
            if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", key):
                raise ValueError(f"{hub_field} = {key!r} is not an organization field key")
        return value


class ZendeskPusher(ZendeskAdmin):
    """Writes health fields to Zendesk organizations (see the module docstring)."""

    name = "zendesk"
    title = "Zendesk organizations"
    record_type = "organizations"
    connector = "zendesk"
    Settings = ZendeskPushSettings
    handles_tasks = False
    default = False
    removal = "delete"  # Zendesk has no archive for organization fields
    settings: ZendeskPushSettings
    link_source = "zendesk"
    """The identity links' source whose ``organization`` records this pusher writes."""

    def object_id(self, account: dict[str, Any]) -> str | None:
        """The account's first Zendesk organization (its health goes to every one linked)."""
        orgs = self.organization_ids().get(str(account.get("id"))) or []
        return orgs[0] if orgs else None


@hub.hookimpl
def register_pushers(register: Any) -> None:
    register(ZendeskPusher)


__all__ = [
    "BANDS",
    "BULK_MAX",
    "HUB_FIELDS",
    "MARKER",
    "OBJECT_TYPE",
    "ZendeskPushSettings",
    "ZendeskPusher",
    "definition",
    "register_pushers",
]
