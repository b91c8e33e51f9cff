"""BuiltWith fake: technology profiles and their shapes."""

from __future__ import annotations

from typing import Any

from hub.sandbox.base import (
    COMPETITORS,
    OUR_TECHNOLOGY,
    Company,
    rng_for,
)
from hub.sandbox.builtwith.catalogue import _CATALOGUE, DAY_MS
from hub.sandbox.builtwith.fastpath import Draws, render_json
from hub.sandbox.builtwith.records import (
    _COMMON,
    _FREEMAIL_TECH,
    Profile,
    Tech,
    _attributes,
    _day,
    _meta,
    _spend_history,
)
from hub.sandbox.memory import FREEZE_FROM, gc_paused


class _Profiles:
    """Generate each domain's technology profile from the world, and render it."""

    # -- profiles -----------------------------------------------------------------------

    def _profile(self, domain: str) -> Profile | None:
        profile = self._profiles.get(domain)
        if profile is None:
            key = self._domains.get(domain)
            if key is None:
                return None
            # A first pass keeps 100k profiles: without the pause the cyclic GC rescans them
            # (and every other fake's records) over and over, a fifth of the pass's CPU.
            with gc_paused(freeze=getattr(self.world, "size", 0) >= FREEZE_FROM):
                profile = self._generate(domain, None if key < 0 else self.world.companies[key])
                self._profiles[domain] = profile
        return profile

    def _generate(self, domain: str, company: Company | None) -> Profile:
        # ``Draws`` makes the standard library's draws without its call layers: the same
        # profile for the seed, several times cheaper (a first pass generates every one).
        rng = Draws(rng_for(self.world.seed, "builtwith", domain))
        start_day = _day(self.world.start)
        period = rng.randint(1, 3)
        profile = Profile(
            domain=domain, company=company, period=period, phase=rng.randrange(period)
        )
        techs = profile.techs
        if company is None:
            # Free-mail providers: a big generic profile on several hosts; never a customer.
            for sub in ("", "mail", "accounts"):
                for name in rng.sample(_FREEMAIL_TECH, 12 if sub == "" else 6):
                    techs.append(Tech(name, sub, start_day - rng.randint(400, 4000)))
            profile.meta = _meta(rng, domain, None)
            profile.attributes = _attributes(rng, 50_000)
            profile.spend_history = _spend_history(rng, start_day, 5000)
            return profile
        uses_widget, competitor, archetype = self._seed_facts.get(
            company.key, (company.uses_widget, company.competitor, company.archetype)
        )
        created = _day(company.created_at)
        for name in rng.sample(_COMMON, rng.randint(4, 8)):
            techs.append(Tech(name, "", start_day - rng.randint(30, 1500)))
        names = {t.name for t in techs}
        for tech in list(techs):
            parent = _CATALOGUE[tech.name][6]
            if parent and parent not in names:  # a version implies its library
                techs.append(Tech(parent, "", tech.first))
                names.add(parent)
        if rng.random() < 0.3:
            # An old library version replaced years ago: history a client must not read as news.
            first = start_day - rng.randint(1200, 2000)
            techs.append(Tech("jQuery 1.12.4", "", first, first + rng.randint(200, 800)))
        if uses_widget:
            techs.append(Tech(OUR_TECHNOLOGY, "", created + rng.randint(1, 30)))
        elif archetype == "churned":
            # They had it as customers and took it off a few weeks ago.
            first = created + rng.randint(1, 20)
            techs.append(
                Tech(OUR_TECHNOLOGY, "", first, max(first + 2, start_day - rng.randint(14, 45)))
            )
        if competitor:
            techs.append(Tech(competitor, "", start_day - rng.randint(5, 60)))
        elif archetype in ("healthy", "expanding") and rng.random() < 0.1:
            # Switched from a competitor when they became our customer.
            techs.append(
                Tech(
                    rng.choice(COMPETITORS),
                    "",
                    created - rng.randint(100, 700),
                    created + rng.randint(5, 40),
                )
            )
        profile.meta = _meta(rng, domain, company)
        profile.attributes = _attributes(rng, company.seats * rng.randint(3, 10))
        profile.spend_history = _spend_history(rng, start_day, 1000)
        profile.sales_revenue = rng.choice(
            [0, 0, company.seats * company.unit_amount * 12 // 100 * 20]
        )
        return profile

    def _last_detected(self, profile: Profile, tech: Tech, today: int) -> int:
        seen_until = today if tech.current(today) else tech.gone - 1  # type: ignore[operator]
        return max(tech.first, profile.last_index(seen_until))

    def _render_bytes(
        self,
        profile: Profile,
        today: int,
        options: dict[str, bool],
        fd_range: tuple[int, int] | None,
        ld_range: tuple[int, int] | None,
    ) -> bytes:
        """A profile's result as JSON, cached until the profile or the day changes (paging
        clients ask for the same domains again and again). Written by ``render_json``, the
        same bytes ``json.dumps(self._render(...))`` would give."""
        key = (
            profile.domain,
            today,
            tuple(options.values()),
            fd_range,
            ld_range,
            len(profile.techs),
            tuple(t.gone for t in profile.techs),
        )
        cache = self._rendered
        found = cache.get(key)
        if found is None:
            if len(cache) > 20_000:  # a first pass never hits: bound the memory (~2 KB each)
                cache.clear()
            text = render_json(profile, today, options, fd_range, ld_range)
            found = cache[key] = text.encode()
        return found

    def _render(
        self,
        profile: Profile,
        today: int,
        options: dict[str, bool],
        fd_range: tuple[int, int] | None,
        ld_range: tuple[int, int] | None,
    ) -> dict[str, Any]:
        last_indexed = profile.last_index(today) * DAY_MS
        paths: dict[str, list[dict[str, Any]]] = {}
        firsts: dict[str, int] = {}
        spend = 0
        for tech in profile.techs:
            if tech.first > today:
                continue
            live = tech.current(today)
            if options["LIVEONLY"] and not live:
                continue
            first_ms = tech.first * DAY_MS
            last_ms = self._last_detected(profile, tech, today) * DAY_MS
            if fd_range and not fd_range[0] <= first_ms <= fd_range[1]:
                continue
            if ld_range and not ld_range[0] <= last_ms <= ld_range[1]:
                continue
            description, link, tag, categories, premium, cost, parent = _CATALOGUE[tech.name]
            if live and premium:
                spend += cost
            item: dict[str, Any] = {}
            if parent:
                item["Parent"] = parent
            hide_text = options["HIDETEXT"]
            hide_dl = hide_text or options["HIDEDL"]
            item.update(
                {
                    "Name": tech.name,
                    "Description": None if hide_dl else description,
                    "Link": None if hide_dl else link,
                    "Tag": None if hide_text else tag,
                    "Categories": None if hide_text else (list(categories) if categories else None),
                    "FirstDetected": first_ms,
                    "LastDetected": last_ms,
                    "IsPremium": "yes" if premium else "no",
                }
            )
            paths.setdefault(tech.subdomain, []).append(item)
            firsts[tech.subdomain] = min(firsts.get(tech.subdomain, first_ms), first_ms)
        rendered_paths = [
            {
                "Technologies": technologies,
                "FirstIndexed": firsts[sub],
                "LastIndexed": last_indexed,
                "Domain": profile.domain,
                "Url": "",
                "SubDomain": sub,
            }
            for sub, technologies in sorted(paths.items())
        ]
        first_indexed = min(firsts.values(), default=last_indexed)
        meta: dict[str, Any] | None = None
        if not options["NOMETA"]:
            meta = dict(profile.meta)
            if options["NOPII"]:
                meta.update({"Telephones": None, "Emails": None, "Names": None})
        return {
            "Result": {
                "SpendHistory": [dict(point) for point in profile.spend_history],
                "IsDB": "True",
                "Spend": spend,
                "Paths": rendered_paths,
            },
            "Meta": meta,
            "Attributes": None if options["NOATTR"] else dict(profile.attributes),
            "FirstIndexed": first_indexed,
            "LastIndexed": last_indexed,
            "Lookup": profile.domain,
            "SalesRevenue": profile.sales_revenue,
        }

    # -- shapes -------------------------------------------------------------------------

    @staticmethod
    def _envelope(results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Results": results, "Errors": errors, "Trust": None}

    @staticmethod
    def _error_item(lookup: str | None, message: str, code: int | None) -> dict[str, Any]:
        return {"Lookup": lookup, "Message": message, "Code": code}
