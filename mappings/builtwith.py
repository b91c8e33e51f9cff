"""BuiltWith mapping: domain technology profiles → entities, widget and competitor events.

Reads the ``domains`` stream of the BuiltWith connector (one raw row per domain, see
``connectors.builtwith.streams``). Each domain becomes a ``builtwith:domain:<domain>`` entity,
linked to its account by domain (identity resolution does that). For every technology that
is ours or a competitor's, the timeline gets:

- ``widget_detected`` / ``competitor_detected`` at BuiltWith's ``FirstDetected``;
- ``widget_removed`` / ``competitor_removed`` at its ``LastDetected`` once it has not been
  seen for ``current_days`` (default 7) before the lookup. BuiltWith re-indexes a site every
  few days to a month, so a technology last seen a day ago is still there; the window keeps
  a slow crawl from reading as a removal. If it is seen again, the removal is retracted.

"Current" is judged against the row's ``looked_up_at``, not the time of mapping, so
re-mapping the same rows always gives the same timeline. Account facts: ``widget_present``
(any of our technologies current) and ``competitors`` (current competitor names).

Which technologies count is configured once, in ``[timeline.builtwith]`` (``Settings``):
``our_technologies`` (required whenever BuiltWith is configured: there is no sensible
default for "our product"), ``competitors`` (matched on name or parent name, any case) and
``current_days``. The connector only fetches and stores every technology as reported; a
change to the lists applies to old rows on the next ``hub map --full``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from pydantic import Field, field_validator

import hub
from hub import clock
from hub.errors import ConfigError
from hub.timeline import Mapping, MappingContext, MappingSettings
from hub.vocabulary import EventType, Source

SOURCE = "builtwith"


# What this mapping puts on the timeline (hub.vocabulary collects it when the mapping registers).
SOURCE_INFO = Source("builtwith", label="BuiltWith", letter="B", fact_rank=30, style="green")
EVENT_TYPES = [
    EventType(
        "widget_detected",
        "Our widget was detected on the customer's site (attrs: technology, domain)",
        polarity="positive",
        noun=("widget detection", "widget detections"),
    ),
    EventType(
        "widget_removed",
        "Our widget disappeared from the customer's site (attrs: technology, domain)",
        polarity="negative",
        noun=("widget removal", "widget removals"),
    ),
    EventType(
        "competitor_detected",
        "A competitor's technology appeared (attrs: technology, domain)",
        polarity="negative",
        noun=("competitor detected", "competitors detected"),
    ),
    EventType(
        "competitor_removed",
        "A competitor's technology disappeared (attrs: technology, domain)",
        polarity="positive",
        noun=("competitor removed", "competitors removed"),
    ),
]
FACTS = {
    "widget_present": "Our widget is currently detected on the site",
    "competitors": "Competitor technologies currently detected",
}
TYPES = ("widget_detected", "widget_removed", "competitor_detected", "competitor_removed")
DEFAULT_CURRENT_DAYS = 7.0


class BuiltWithSettings(MappingSettings):
    """``[timeline.builtwith]``: which technologies are ours and which are competitors'.

    Validated when the config loads whenever a BuiltWith connection is configured, so a
    missing ``our_technologies`` is reported at once (``hub check --offline``).
    """

    our_technologies: list[str] | None = Field(default=None, min_length=1)
    """Technology names (or parent names) that are our product on a customer's site;
    required whenever a BuiltWith connection is configured."""
    competitors: list[str] = Field(default_factory=list)
    """Technology names (or parent names) of competitors to watch for."""
    current_days: float = Field(default=DEFAULT_CURRENT_DAYS, gt=0)
    """A technology not seen for this many days before the lookup counts as removed."""

    @field_validator("our_technologies", "competitors", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def missing_our_technologies(origin: Any) -> ConfigError:
    prefix = f"{origin}: " if origin else ""
    return ConfigError(
        f"{prefix}timeline.builtwith.our_technologies is required when BuiltWith is configured "
        "(the technology names that are your product)",
        hint='add [timeline.builtwith] our_technologies = ["<your product as BuiltWith names it>"]',
    )


def _names(values: list[str]) -> set[str]:
    return {str(v).strip().casefold() for v in values if str(v).strip()}


def _matches(tech: dict[str, Any], names: set[str]) -> bool:
    return any(
        isinstance(tech.get(key), str) and tech[key].strip().casefold() in names
        for key in ("name", "parent")
    )


def _day(ms: Any) -> str:
    moment = clock.parse(ms)
    return moment.strftime("%Y-%m-%d") if moment else "?"


class BuiltWithMapping(Mapping):
    """Our widget and competitors on each customer's site, from BuiltWith lookups."""

    name = "builtwith"
    connector = "builtwith"
    streams = ["domains"]
    source = SOURCE_INFO
    event_types = EVENT_TYPES
    facts = FACTS
    Settings = BuiltWithSettings

    @classmethod
    def parse_settings(cls, raw: Any, *, where: str | None = None, origin: Any = None) -> Any:
        """As every mapping's, and ``our_technologies`` is required in a given section.

        ``raw`` is None only when a host maps without a config (no section to check); the
        rows are then reported as unmappable rather than guessed at.
        """
        settings = super().parse_settings(raw, where=where, origin=origin)
        if raw is not None and not settings.our_technologies:
            raise missing_our_technologies(origin)
        return settings

    def map_rows(self, ctx: MappingContext, stream: str, rows: Iterable[dict[str, Any]]) -> None:
        settings = ctx.settings
        if not settings.our_technologies:
            raise missing_our_technologies(None)
        ours_names = _names(settings.our_technologies)
        rival_names = _names(settings.competitors)
        window = dt.timedelta(days=settings.current_days)
        for row in rows:
            data = row.get("data") or {}
            domain = data.get("domain") or row["id"]
            if row.get("deleted"):
                ctx.entity(SOURCE, "domain", domain, name=domain, domains=[domain], deleted=True)
                for kind in TYPES:
                    ctx.retract_prefix(f"{SOURCE}:{kind}:{domain}/")
                continue
            entity = ctx.entity(SOURCE, "domain", domain, name=domain, domains=[domain])
            looked_up = clock.parse(data.get("looked_up_at")) or ctx.now
            widget_present = False
            competitors: set[str] = set()
            for tech in data.get("technologies") or []:
                if not isinstance(tech, dict):
                    continue
                ours = _matches(tech, ours_names)
                rival = not ours and _matches(tech, rival_names)
                if not (ours or rival):
                    continue
                kind = "widget" if ours else "competitor"
                current = self._current(tech, looked_up, window)
                if current:
                    if ours:
                        widget_present = True
                    else:
                        competitors.add(str(tech.get("name")))
                self._events(ctx, entity, domain, tech, kind, current)
            ctx.facts(entity, widget_present=widget_present, competitors=sorted(competitors))

    @staticmethod
    def _current(tech: dict[str, Any], looked_up: dt.datetime, window: dt.timedelta) -> bool:
        last = clock.parse(tech.get("last_detected"))
        return last is not None and looked_up - last <= window

    @staticmethod
    def _events(
        ctx: MappingContext,
        entity: str,
        domain: str,
        tech: dict[str, Any],
        kind: str,
        current: bool,
    ) -> None:
        name = str(tech.get("name"))
        sub = tech.get("subdomain") or ""
        host = f"{sub}.{domain}" if sub else domain
        source_id = f"{domain}/{sub}/{name}"
        attrs = {"technology": name, "domain": host, "subdomain": sub}
        link = f"https://builtwith.com/{host}"
        label = "Our widget" if kind == "widget" else "Competitor"
        if tech.get("first_detected"):
            ctx.event(
                entity,
                f"{kind}_detected",
                tech["first_detected"],
                source=SOURCE,
                source_id=source_id,
                summary=f"{label} {name} detected on {host}",
                attrs={**attrs, "first_detected": _day(tech["first_detected"])},
                link=link,
            )
        removed_id = f"{SOURCE}:{kind}_removed:{source_id}"
        if current or not tech.get("last_detected"):
            ctx.retract(removed_id)  # seen again (or never dated): no removal stands
            return
        last = _day(tech["last_detected"])
        ctx.event(
            entity,
            f"{kind}_removed",
            tech["last_detected"],
            source=SOURCE,
            source_id=source_id,
            summary=f"{label} {name} no longer detected on {host} (last seen {last})",
            attrs={**attrs, "last_detected": last},
            link=link,
        )


@hub.hookimpl
def register_mappings(register):
    register(BuiltWithMapping)


__all__ = ["BuiltWithMapping"]
