"""The seeded world: N companies consistent across Zendesk, Stripe, HubSpot and BuiltWith.

``World`` holds the ground truth (``Company`` rows, owners, a clock); each fake renders it
in its own API's shapes in ``seed()`` and adds activity in ``advance()``. Archetypes
(healthy, slipping, at risk, churned, expanding) drive the data so that health results mean
something. Everything is deterministic for a (seed, start) pair.

``build_sandbox()`` is the one entry point: it makes the world and the four fakes.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from hub.sandbox.base import (
    ARCHETYPES,
    COMPETITORS,
    FREEMAIL_DOMAINS,
    Clock,
    Company,
    FakeAPI,
    Sandbox,
    rng_for,
)
from hub.sandbox.draws import Draws, cumulative

_ADJ = [
    "Blue",
    "Bright",
    "North",
    "Swift",
    "Green",
    "Silver",
    "Quiet",
    "Bold",
    "Prime",
    "Urban",
    "Lucky",
    "Happy",
    "Red",
    "Iron",
    "Clever",
    "Solar",
    "Polar",
    "Rapid",
    "Golden",
    "Open",
]
_NOUN = [
    "Harbor",
    "Labs",
    "Works",
    "Systems",
    "Foods",
    "Logistics",
    "Media",
    "Health",
    "Cloud",
    "Studio",
    "Analytics",
    "Bikes",
    "Dental",
    "Legal",
    "Travel",
    "Energy",
    "Robotics",
    "Coffee",
    "Textiles",
    "Finance",
]
_UNICODE = [
    "Café Müller",
    "Zürich Ölwerke",
    "Ñandú Software",
    "Łódź Fabryka",
    "東京 Trading",
    "Škoda Parts",
    "Øresund Data",
]
_FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Femi",
    "Greta",
    "Hugo",
    "Ines",
    "Jun",
    "Kofi",
    "Lea",
]
_LAST = ["Silva", "Okafor", "Tanaka", "Novak", "Haddad", "Berg", "Rossi", "Kim", "Meyer", "Diaz"]
PLANS = {"starter": 2000, "growth": 4500, "enterprise": 9000}  # cents per seat per month
# Archetype mix: mostly healthy, enough trouble to make the health results interesting.
_ARCHETYPE_WEIGHTS = [0.45, 0.2, 0.15, 0.08, 0.12]
_ARCHETYPE_CUM = cumulative(_ARCHETYPE_WEIGHTS)
_PLAN_CUM = cumulative([0.5, 0.35, 0.15])
_PLAN_INDEX = {"starter": 0, "growth": 1, "enterprise": 2}
_STRIPE_LINKS, _STRIPE_CUM = ["explicit", "domain", "none"], cumulative([0.8, 0.15, 0.05])
_ZENDESK_LINKS, _ZENDESK_CUM = ["external_id", "domain", "none"], cumulative([0.6, 0.35, 0.05])
DEFAULT_START = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


@lru_cache(maxsize=8192)
def slug(name: str) -> str:
    return "-".join(_SLUG_SPLIT.split(name.lower())).strip("-") or "company"


_SLUG_SPLIT = re.compile(r"[^a-z0-9]+")


class World:
    """Ground truth shared by the fakes: companies, owners, clock, seed."""

    def __init__(self, companies: int = 200, seed: int = 0, start: dt.datetime | None = None):
        self.seed = seed
        self.size = companies
        self.clock = Clock(start or DEFAULT_START)
        self.start = self.clock.now()
        self.day_index = 0
        self.activity_until = self.start  # daily activity has been generated up to here
        rng = rng_for(seed, "world")
        # The standard library's draws without its call layers (same world, ~3x faster).
        d = Draws(rng)
        plans = list(PLANS)
        self.owners: list[dict[str, Any]] = []
        for i in range(max(3, min(40, companies // 25 + 3))):
            first, last = _FIRST[i % len(_FIRST)], _LAST[(i * 7) % len(_LAST)]
            self.owners.append(
                {
                    "id": str(70000000 + i),
                    "email": f"{first.lower()}.{last.lower()}{i}@lumen.example",
                    "firstName": first,
                    "lastName": last,
                    "userId": 9000000 + i,
                }
            )
        self.companies: list[Company] = []
        used_domains: set[str] = set()
        # Names repeat within a window of 50 companies only with a key suffix.
        recent: deque[str] = deque(maxlen=50)
        recent_names: Counter[str] = Counter()
        for key in range(companies):
            if key % 97 == 13:
                name = _UNICODE[key % len(_UNICODE)] + ("" if key < 97 else f" {key}")
            else:
                name = f"{d.choice(_ADJ)} {d.choice(_NOUN)}"
                if name in recent_names:
                    name = f"{name} {key}"
            base = slug(name)
            domain = base + ".example"
            if domain in used_domains:
                domain = f"{base}-{key}.example"
            used_domains.add(domain)
            archetype = d.weighted(ARCHETYPES, _ARCHETYPE_CUM)
            plan = d.weighted(plans, _PLAN_CUM)
            # Three draws whatever the plan (as the table of all three always drew).
            seats = (d.randint(2, 10), d.randint(8, 40), d.randint(30, 200))[_PLAN_INDEX[plan]]
            created = self.start - dt.timedelta(days=d.randint(60, 720))
            renewal = (
                created + dt.timedelta(days=365 * ((self.start - created).days // 365 + 1))
            ).date()
            stripe_link = d.weighted(_STRIPE_LINKS, _STRIPE_CUM)
            zendesk_link = d.weighted(_ZENDESK_LINKS, _ZENDESK_CUM)
            contact = d.choice(_FIRST).lower()
            billing_email = (
                f"billing@{domain}"
                if stripe_link != "none"
                else f"{contact}.{key}@{d.choice(FREEMAIL_DOMAINS)}"
            )
            traps: set[str] = set()
            if stripe_link == "none":
                traps.add("freemail")
            uses_widget = archetype != "churned" or rng.random() < 0.3
            competitor = None
            if archetype in ("at_risk", "churned") and rng.random() < 0.5:
                competitor = d.choice(COMPETITORS)
            owner = d.choice(self.owners)["id"] if rng.random() > 0.03 else None
            if len(recent) == recent.maxlen:
                recent_names[recent[0]] -= 1
                if not recent_names[recent[0]]:
                    del recent_names[recent[0]]
            recent.append(name)
            recent_names[name] += 1
            self.companies.append(
                Company(
                    key=key,
                    hubspot_id=str(5_000_000_000 + key * 7 + 1),
                    name=name,
                    domain=domain,
                    archetype=archetype,
                    owner_id=owner,
                    created_at=created,
                    plan=plan,
                    seats=seats,
                    unit_amount=PLANS[plan],
                    renewal_date=renewal,
                    stripe_link=stripe_link,
                    zendesk_link=zendesk_link,
                    billing_email=billing_email,
                    uses_widget=uses_widget,
                    competitor=competitor,
                    traps=traps,
                )
            )
        self._plant_traps(rng)

    def _plant_traps(self, rng: Any) -> None:
        """The things real data has: a duplicate domain, a merge, no payment method."""
        if len(self.companies) < 10:
            return
        # Two HubSpot companies sharing one domain: identity must report, not guess.
        a, b = self.companies[3], self.companies[4]
        b.domain = a.domain
        a.traps.add("duplicate_domain")
        b.traps.add("duplicate_domain")
        # Company 6 was merged into company 5 in HubSpot (the CRM keeps 5).
        self.companies[6].merged_into = 5
        self.companies[6].traps.add("merged")
        # A paying customer with no payment method on file.
        self.companies[7].traps.add("no_payment_method")
        # A customer whose HubSpot record was archived (deleted) in the CRM.
        self.companies[8].traps.add("archived")

    # -- time ------------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return self.clock.now()

    def company(self, key: int) -> Company:
        return self.companies[key]

    def by_hubspot_id(self, hubspot_id: str) -> Company | None:
        for company in self.companies:
            if company.hubspot_id == hubspot_id:
                return company
        return None


BUILTIN_APIS = ("hubspot", "stripe", "zendesk", "builtwith")


def build_sandbox(
    companies: int = 200,
    seed: int = 0,
    start: dt.datetime | None = None,
    *,
    enforce_limits: bool = False,
    time_scale: float = 1.0,
    extra_apis: Iterable[Callable[[Sandbox], FakeAPI]] = (),
    options: dict[str, dict[str, Any]] | None = None,
    lazy: bool = False,
) -> Sandbox:
    """Make a world of ``companies`` and the four fakes over it, seeded and ready to serve.

    ``extra_apis`` are more fakes (``FakeAPI`` subclasses, typically what plugins register
    through the host's ``register_sandbox_apis`` hook), built and seeded over the same world
    after the built-ins; a name or URL prefix already taken is a ``ValueError``.
    ``options`` sets a fake's settings before it seeds, e.g.
    ``{"stripe": {"dunning_subscription": "unpaid"}}`` (an unknown one is a ``ValueError``).
    ``lazy`` builds the world and the fakes but seeds none: each seeds on its first request
    (``Sandbox.wait_seeded``) or in the background (``Sandbox.start_seeding``). Seeding one
    fake reads the world and changes nothing in it, so the order does not change the world;
    plugin fakes seed after the built-ins.
    """
    from hub.sandbox.builtwith import BuiltWithAPI
    from hub.sandbox.hubspot import HubSpotAPI
    from hub.sandbox.stripe import StripeAPI
    from hub.sandbox.zendesk import ZendeskAPI

    # Seeding makes millions of long-lived objects: the cyclic GC would rescan them over and
    # over (a third of the time at 100k companies), so it is paused, and what was built is
    # frozen out of later collections.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        world = World(companies=companies, seed=seed, start=start)
        sandbox = Sandbox(world, enforce_limits=enforce_limits, time_scale=time_scale)
        options = options or {}
        for cls in (HubSpotAPI, StripeAPI, ZendeskAPI, BuiltWithAPI):
            _seed(_configure(sandbox.add(cls(sandbox)), options), lazy)
        for factory in extra_apis:
            api = factory(sandbox)
            taken = [
                other.name
                for other in sandbox.apis.values()
                if other.name == api.name
                or any(
                    p.startswith(q) or q.startswith(p) for p in api.prefixes for q in other.prefixes
                )
            ]
            if taken or not api.prefixes:
                raise ValueError(
                    f"sandbox fake {api.name!r} clashes with {', '.join(taken) or 'nothing'}"
                    " (name or URL prefix) or declares no prefixes"
                )
            api.seed_after = BUILTIN_APIS
            _seed(_configure(sandbox.add(api), options), lazy)
    finally:
        if was_enabled:
            if companies >= 10_000:
                gc.freeze()  # a big world lives as long as the process that serves it
            gc.enable()
    return sandbox


def _seed(api: FakeAPI, lazy: bool) -> None:
    if lazy:
        api.seeded.clear()
    else:
        api.seed()


def _configure(api: FakeAPI, options: dict[str, dict[str, Any]]) -> FakeAPI:
    for name, value in options.get(api.name, {}).items():
        if name.startswith("_") or not hasattr(api, name):
            raise ValueError(f"the {api.name} fake has no setting {name!r}")
        setattr(api, name, value)
    return api


def advance(sandbox: Sandbox, days: int = 1) -> None:
    """Move the world's clock ``days`` forward, generating each day's activity in every API."""
    world = sandbox.world
    sandbox.wait_seeded()
    for _ in range(days):
        start = max(world.clock.now(), world.activity_until)
        world.clock.advance(86400)
        _run_day(sandbox, start, start + dt.timedelta(days=1))


def catch_up(sandbox: Sandbox) -> int:
    """With a running clock (``Clock.run``): generate the activity of every whole day the
    clock has passed since the last one, without moving it. Returns the days generated."""
    world = sandbox.world
    sandbox.wait_seeded()
    done = 0
    while world.clock.now() - world.activity_until >= dt.timedelta(days=1):
        _run_day(sandbox, world.activity_until, world.activity_until + dt.timedelta(days=1))
        done += 1
    return done


def _run_day(sandbox: Sandbox, start: dt.datetime, end: dt.datetime) -> None:
    world = sandbox.world
    world.day_index += 1
    for api in sandbox.apis.values():
        # Requests are served under the same lock, so a client never sees half a day.
        with api._lock:
            api.advance(start, end, world.day_index)
    world.activity_until = end


# Credentials the fakes accept; printed by ``hub sandbox serve`` and used by ``hub demo``.
CREDENTIALS = {
    "stripe": {"api_key": "sk_test_hubsandbox"},
    "hubspot": {"access_token": "pat-sandbox-hub"},
    "zendesk": {
        "subdomain": "sandbox",
        "email": "admin@lumen.example",
        "api_token": "zd-sandbox-token",
        "oauth_token": "zd-sandbox-oauth-token",
    },
    "builtwith": {"api_key": "00000000-0000-4000-8000-000000000000"},
}
