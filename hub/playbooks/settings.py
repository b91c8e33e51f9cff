"""``[playbooks]`` of hub.toml: the global section, each playbook's table, validated once.

``validate_config(config)`` is what ``load_config`` and ``hub check --offline`` call: it
raises the usual one-line ``ConfigError`` for a typo anywhere under ``[playbooks]``.
``load_playbooks(config)`` validates the same way and builds every registered playbook.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.config import validate_section
from hub.errors import ConfigError, StartupError
from hub.playbooks.rules import Playbook


class PlaybooksSection(BaseModel):
    """``[playbooks]`` scalars (the ``[playbooks.<name>]`` tables are per playbook)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Switch every playbook off at once."""
    snooze_days: int = Field(default=30, ge=0)
    """After a task is completed, the same task does not reappear for this many days."""
    evidence_limit: int = Field(default=5, ge=0, le=50)
    """How many evidence events (with links) a task body lists."""
    one_task_per_account: bool = True
    """Several playbooks firing for one account in one run make one task listing every reason."""
    baseline_days: int = Field(default=7, ge=0, le=90)
    """On an account's first scoring (its baseline), event rules look back only this far."""
    due_hour: int = Field(default=9, ge=0, le=23)
    """Tasks fall due at this hour of the day, local time (``timezone``)."""
    timezone: str = "UTC"
    """IANA time zone of ``due_hour``, e.g. "Europe/Berlin"."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
            ) from None
        return value


@dataclass
class PlaybookSetup:
    """Validated ``[playbooks]``: the global section and every registered playbook, built."""

    section: PlaybooksSection
    playbooks: dict[str, Playbook]

    def snooze_days(self, playbook: str) -> int:
        """How long a completed task of ``playbook`` stays snoozed (its own or the default)."""
        pb = self.playbooks.get(playbook)
        value = pb.settings.get("snooze_days") if pb is not None else None
        return int(value if value is not None else self.section.snooze_days)

    def enabled(self) -> list[Playbook]:
        if not self.section.enabled:
            return []
        return [pb for pb in self.playbooks.values() if pb.enabled]


def load_playbooks(config: Any, registry: Any = None) -> PlaybookSetup:
    """Build every registered playbook from ``config.playbooks`` (validating it)."""
    if registry is None:
        from hub.registry import get_registry

        registry = get_registry()
    raw = dict(getattr(config, "playbooks", None) or {})
    origin = getattr(config, "path", None) or "hub.toml"
    tables = {k: v for k, v in raw.items() if isinstance(v, dict)}
    scalars = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    section = validate_section(PlaybooksSection, scalars, "playbooks", origin)
    classes = dict(registry.playbooks)
    unknown = sorted(set(tables) - set(classes))
    if unknown:
        raise ConfigError(
            f"{origin}: [playbooks.{unknown[0]}] names no installed playbook",
            hint=f"installed: {', '.join(sorted(classes)) or 'none'}",
        )
    built: dict[str, Playbook] = {}
    for name, cls in sorted(classes.items()):
        if not (isinstance(cls, type) and issubclass(cls, Playbook)):
            raise StartupError(f"register_playbooks got {cls!r}, not a hub.playbooks.Playbook")
        built[name] = cls(tables.get(name, {}), where=f"{origin}: [playbooks.{name}]")
    return PlaybookSetup(section, built)


def snooze_days_for(config: Any, playbook: str) -> int:
    """Snooze days of one playbook's completed tasks (for the host that records completions)."""
    return load_playbooks(config).snooze_days(playbook)


def validate_config(config: Any) -> None:
    """Validate ``[playbooks]`` and every ``[playbooks.<name>]``; raises ``ConfigError``."""
    load_playbooks(config)
