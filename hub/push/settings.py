"""``[push]`` of hub.toml and each pusher's own ``[push.<pusher>]`` table.

``[push]`` holds what every pusher shares (which pushers run, properties and tasks on or
off, the task caps); ``[push.<pusher>]`` is validated by the pusher's ``Settings`` model
(a ``PusherSettings`` subclass, ``extra="forbid"``). ``validate_config(config)`` checks both
with the usual one-line ``ConfigError``; ``load_config`` and ``hub check --offline`` call it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.config import validate_section
from hub.errors import ConfigError, StartupError

SHARED_TABLES = ("scope",)
"""``[push.<table>]`` tables shared by every pusher rather than owned by one."""


class PusherSettings(BaseModel):
    """Base of a pusher's ``[push.<pusher>]`` model: subclass it and add the pusher's keys."""

    model_config = ConfigDict(extra="forbid")

    connection: str | None = None
    """The connection whose credentials and rate budget the pusher writes through
    (unset: the connection named like the pusher)."""


class PushSettings(BaseModel):
    """``[push]`` of hub.toml (the ``[push.<pusher>]`` tables belong to the pushers)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    pushers: list[str] | None = None
    """Installed write-back targets to run, in order (unset: those on by default)."""
    properties: bool = True
    """Write the health fields on CRM records."""
    tasks: bool = True
    """Deliver the outbox's tasks to the CRM (and read their completion back)."""
    max_tasks_per_run: int = Field(default=50, ge=0)
    """Create at most this many new tasks per push (0 = no limit); the rest wait."""
    max_tasks_per_owner: int = Field(default=5, ge=0)
    """Create at most this many new tasks per owner in 24 hours (0 = no limit)."""
    urgent_bypass_caps: bool = True
    """HIGH-priority tasks go out even when the caps are reached (they still count toward
    them), so a failed payment is never held behind routine follow-ups."""
    drivers_max_chars: int = Field(default=1000, ge=50, le=65000)
    """The drivers text is cut to this many characters."""


def push_settings(config: Any) -> PushSettings:
    """Validate ``[push]`` (its scalars); errors name the key and the fix."""
    raw = dict(getattr(config, "push", None) or {})
    origin = getattr(config, "path", None) or "hub.toml"
    scalars = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    try:
        return validate_section(PushSettings, scalars, "push", origin)
    except ConfigError as exc:
        moved = _moved_key(scalars, raw.get("pushers"))
        if moved is None:
            raise
        key, pusher = moved
        raise ConfigError(
            f"{origin}: push.{key} is an option of the {pusher} pusher",
            hint=f"move it to [push.{pusher}]",
        ) from exc


def pusher_classes(settings: PushSettings, registry: Any = None) -> list[type]:
    """The installed pusher classes ``[push] pushers`` names, in order."""
    from hub.push.pusher import Pusher

    if registry is None:
        from hub.registry import get_registry

        registry = get_registry()
    names = settings.pushers
    if names is None:
        names = sorted(n for n, c in registry.pushers.items() if getattr(c, "default", False))
    classes = []
    for name in names:
        cls = registry.pushers.get(name)
        if cls is None:
            raise ConfigError(
                f"[push] pushers names {name!r}, which no installed plugin provides",
                hint=f"installed: {', '.join(sorted(registry.pushers)) or 'none'}",
            )
        if not (isinstance(cls, type) and issubclass(cls, Pusher)):
            raise StartupError(f"register_pushers got {cls!r}, not a hub.push.Pusher subclass")
        classes.append(cls)
    task_pushers = [c.name for c in classes if c.handles_tasks]
    if settings.tasks and len(task_pushers) > 1:
        raise ConfigError(
            f"[push] pushers names {len(task_pushers)} pushers that deliver tasks "
            f"({', '.join(task_pushers)})",
            hint="keep one of them in [push] pushers, or set tasks = false",
        )
    return classes


def pusher_settings(config: Any, cls: type) -> Any:
    """Validate ``[push.<pusher>]`` with the pusher's ``Settings`` model."""
    raw = (getattr(config, "push", None) or {}).get(cls.name) or {}
    origin = getattr(config, "path", None) or "hub.toml"
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{origin}: push.{cls.name} must be a table", hint=f"write it as [push.{cls.name}]"
        )
    return validate_section(cls.Settings, raw, f"push.{cls.name}", origin)


def validate_config(config: Any, registry: Any = None) -> None:
    """Validate ``[push]`` and each configured pusher's ``[push.<pusher>]``; ConfigError."""
    settings = push_settings(config)
    classes = pusher_classes(settings, registry)
    raw = dict(getattr(config, "push", None) or {})
    names = {c.name for c in classes}
    origin = getattr(config, "path", None) or "hub.toml"
    for key, value in raw.items():
        if isinstance(value, dict) and key not in names and key not in SHARED_TABLES:
            raise ConfigError(
                f"{origin}: [push.{key}] names no pusher in [push] pushers",
                hint=f"pushers: {', '.join(sorted(names)) or 'none'}",
            )
    for cls in classes:
        pusher_settings(config, cls)
    from hub.push.scope import scope_settings

    scope_settings(config)


def _moved_key(scalars: dict[str, Any], pushers: Any) -> tuple[str, str] | None:
    """(key, pusher) when an unknown ``[push]`` key is an option of a configured pusher."""
    try:
        from hub.registry import get_registry

        registry = get_registry()
    except Exception:  # noqa: BLE001 - only a better hint is at stake
        return None
    names = pushers if isinstance(pushers, list) else list(registry.pushers)
    for key in scalars:
        if key in PushSettings.model_fields:
            continue
        for name in names:
            cls = registry.pushers.get(str(name))
            fields = getattr(getattr(cls, "Settings", None), "model_fields", {})
            if key in fields:
                return key, str(name)
    return None
