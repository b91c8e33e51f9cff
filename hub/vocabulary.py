"""The timeline's vocabulary: event types, sources and account facts, contributed by plugins.

Core (health, playbooks, timeline, CLI, web) never lists vendors or event types of its own;
it asks this module. Each mapping declares what it emits as class attributes, and the
registry adds them here when the mapping registers::

    class IntercomMapping(hub.Mapping):
        name = connector = "intercom"
        source = hub.Source("intercom", label="Intercom", letter="I", fact_rank=50)
        event_types = [
            hub.EventType("conversation_opened", "A conversation started",
                          polarity="neutral", noun=("conversation", "conversations")),
        ]
        facts = {"open_conversations": "Conversations open now"}

``polarity`` says whether an event is bad news for the account ("negative"), good news
("positive") or neither; playbooks that list "what went wrong lately" read the negative ones.
``noun`` is the phrase drivers use ("3 failed payments in the last 30 days"). A source's
``fact_rank`` decides which source wins when several entities of one account carry the same
fact (lower wins; the CRM that owns the account record ranks first).

Money is in the account currency's major unit (dollars), times are ISO 8601 UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from hub.errors import StartupError

Polarity = Literal["negative", "positive", "neutral"]


@dataclass(frozen=True)
class EventType:
    """One event type on the timeline."""

    name: str
    description: str
    polarity: Polarity = "neutral"
    noun: tuple[str, str] | None = None
    """(singular, plural) used in drivers; defaults to the name with underscores as spaces."""

    def phrase(self, count: float) -> str:
        one, many = self.noun or (self.name.replace("_", " "), self.name.replace("_", " ") + "s")
        return f"{count:g} {one if count == 1 else many}"


@dataclass(frozen=True)
class Source:
    """A source system as people see it: its name on events and entities, label, one letter."""

    name: str
    label: str = ""
    letter: str = "?"
    fact_rank: int = 100
    style: str = ""
    """A rich colour name for the CLI's timeline (empty: default colour)."""

    @property
    def title(self) -> str:
        return self.label or self.name.title()


@dataclass
class Vocabulary:
    """Every event type, source and fact that installed mappings declared."""

    event_types: dict[str, EventType] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)
    _owners: dict[str, str] = field(default_factory=dict)

    def add_event_type(self, event_type: EventType, owner: str = "") -> None:
        if not isinstance(event_type, EventType):
            raise StartupError(
                f"{owner or 'a plugin'} declared an event type that is not a hub.EventType: "
                f"{event_type!r}",
                hint="declare event types as hub.EventType(name, description, polarity=...)",
            )
        if event_type.polarity not in ("negative", "positive", "neutral"):
            raise StartupError(
                f"event type {event_type.name!r} of {owner or 'a plugin'} has polarity "
                f"{event_type.polarity!r}",
                hint="polarity is one of: negative, positive, neutral",
            )
        known = self.event_types.get(event_type.name)
        if known is not None:
            # Reusing a type by name means "same meaning": only polarity changes what health
            # and playbooks do with it, so only polarity must agree. The first declaration
            # (the built-ins load first) keeps its description and noun.
            if known.polarity != event_type.polarity:
                raise StartupError(
                    f"two plugins declare the event type {event_type.name!r} with different "
                    f"polarity ({self._owners.get(event_type.name)}: {known.polarity}, "
                    f"{owner}: {event_type.polarity})",
                    hint=f"declare it with polarity={known.polarity!r}, or give a type of "
                    "your own a name prefixed with your source",
                )
            return
        self.event_types[event_type.name] = event_type
        self._owners[event_type.name] = owner

    def add_source(self, source: Source) -> None:
        if not isinstance(source, Source):
            raise StartupError(
                f"a mapping declared a source that is not a hub.Source: {source!r}",
                hint="declare source = hub.Source('name', label=..., letter=...)",
            )
        self.sources.setdefault(source.name, source)

    def add_facts(self, facts: dict[str, str]) -> None:
        for key, text in facts.items():
            self.facts.setdefault(key, text)

    # -- lookups -------------------------------------------------------------------------

    def event_type(self, name: str) -> EventType:
        return self.event_types.get(name) or EventType(name, name.replace("_", " "))

    def negative_types(self) -> tuple[str, ...]:
        return tuple(n for n, t in self.event_types.items() if t.polarity == "negative")

    def source(self, name: str) -> Source:
        return self.sources.get(name) or Source(name, letter=(name[:1] or "?").upper())

    def fact_rank(self, source: str) -> int:
        return self.source(source).fact_rank

    def source_order(self, names: Iterable[str]) -> list[str]:
        """Sources sorted by rank, then name; unknown sources last, never an error."""
        return sorted(names, key=lambda n: (self.fact_rank(n), n))


def vocabulary() -> Vocabulary:
    """The vocabulary of the installed plugins (built from the registry, once)."""
    from hub.registry import get_registry

    return get_registry().vocabulary


def build_vocabulary(mappings: Iterable[type]) -> Vocabulary:
    """Collect the declarations of mapping classes (what the registry does on load)."""
    vocab = Vocabulary()
    for mapping in mappings:
        owner = getattr(mapping, "name", "") or repr(mapping)
        src = getattr(mapping, "source", None)
        if src is not None:
            vocab.add_source(src)
        for et in getattr(mapping, "event_types", ()) or ():
            vocab.add_event_type(et, owner)
        vocab.add_facts(getattr(mapping, "facts", {}) or {})
    return vocab


__all__ = ["EventType", "Polarity", "Source", "Vocabulary", "build_vocabulary", "vocabulary"]
