"""BuiltWith fake: the ``BuiltWithAPI`` class (state, world, test helpers) assembled from its parts."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from hub.sandbox.base import (
    COMPETITORS,
    FREEMAIL_DOMAINS,
    OUR_TECHNOLOGY,
    FakeAPI,
    SlidingWindow,
    rng_for,
)
from hub.sandbox.builtwith.catalogue import DAY_MS, DEFAULT_CREDITS
from hub.sandbox.builtwith.profiles import _Profiles
from hub.sandbox.builtwith.records import (
    _EXPANSION_SUBDOMAINS,
    Profile,
    Tech,
    _day,
    _pick,
    normalise_domain,
)
from hub.sandbox.builtwith.routes import _Routes
from hub.sandbox.world import CREDENTIALS


class BuiltWithAPI(_Routes, _Profiles, FakeAPI):
    """The BuiltWith Domain, WhoAmI and Usage APIs over the seeded world."""

    name = "builtwith"
    seed_rank = 0  # profiles are generated on first lookup: nothing to wait for
    fault_kinds = frozenset({"400", "403", "404"})
    prefixes = ("/whoamiv1/", "/usagev2/")
    _LOOKUP_PATH = re.compile(r"^/v(\d+)/api\.(json|xml|csv)$")

    def __init__(self, sandbox: Any):
        super().__init__(sandbox)
        self.api_key: str = CREDENTIALS["builtwith"]["api_key"]
        # Credits: tests set ``credits_remaining`` to drive the -3 path.
        self.credits_remaining: int = DEFAULT_CREDITS
        self.credits_used: int = 0
        self._domains: dict[str, int] = {}  # domain -> key of the first company with it
        self._seed_facts: dict[int, tuple[bool, str | None, str]] = {}
        self._profiles: dict[str, Profile] = {}
        self._churn_candidates: list[int] = []  # at_risk + churned company keys
        self._expanding: list[int] = []
        self._window: SlidingWindow | None = None
        self._window_scale: float | None = None
        self._rendered: dict[tuple[Any, ...], bytes] = {}  # encoded lookup results

    # -- world --------------------------------------------------------------------------

    def seed(self) -> None:
        """Index the world's domains; profiles are generated on first use."""
        domains = self._domains
        facts = self._seed_facts
        for company in self.world.companies:
            domains.setdefault(company.domain, company.key)
            # Snapshot the facts profiles derive from, so a lazily built profile is the same
            # whenever it is built, even if someone edits the ground truth later.
            facts[company.key] = (company.uses_widget, company.competitor, company.archetype)
            if company.archetype in ("at_risk", "churned"):
                self._churn_candidates.append(company.key)
            elif company.archetype == "expanding":
                self._expanding.append(company.key)
        for domain in FREEMAIL_DOMAINS:
            domains.setdefault(domain, -1)

    def advance(self, start: dt.datetime, end: dt.datetime, day_index: int) -> None:
        """One day of re-indexing: widgets removed, competitors added, widget on a subdomain."""
        rng = rng_for(self.world.seed, "builtwith", "advance", day_index)
        today = _day(end)
        self._rendered.clear()
        for key in _pick(rng, self._churn_candidates, 0.01):
            profile = self._profile(self.world.companies[key].domain)
            if profile is None or profile.company is None or profile.company.key != key:
                continue
            widget = [t for t in profile.techs if t.name == OUR_TECHNOLOGY and t.current(today)]
            rival = [t for t in profile.techs if t.name in COMPETITORS and t.current(today)]
            # A competitor already there leaves only "lose the widget"; otherwise a coin flip.
            if widget and (rival or rng.random() < 0.5):
                for tech in widget:
                    tech.gone = today
            elif not rival:
                profile.techs.append(Tech(rng.choice(COMPETITORS), "", today))
        for key in _pick(rng, self._expanding, 0.005):
            profile = self._profile(self.world.companies[key].domain)
            if profile is None or profile.company is None or profile.company.key != key:
                continue
            taken = {t.subdomain for t in profile.techs if t.name == OUR_TECHNOLOGY}
            free = [s for s in _EXPANSION_SUBDOMAINS if s not in taken]
            if free:
                profile.techs.append(Tech(OUR_TECHNOLOGY, rng.choice(free), today))

    # -- inspection helpers for tests -----------------------------------------------------

    def technologies(self, domain: str) -> list[dict[str, Any]]:
        """Ground truth for ``domain`` now: name, subdomain, first/last detected (ms), current."""
        profile = self._profile(normalise_domain(domain))
        if profile is None:
            return []
        today = _day(self.world.clock.now())
        return [
            {
                "name": t.name,
                "subdomain": t.subdomain,
                "first_detected": t.first * DAY_MS,
                "last_detected": self._last_detected(profile, t, today) * DAY_MS,
                "current": t.current(today),
            }
            for t in profile.techs
            if t.first <= today
        ]

    def current_technologies(self, domain: str) -> set[str]:
        return {t["name"] for t in self.technologies(domain) if t["current"]}
