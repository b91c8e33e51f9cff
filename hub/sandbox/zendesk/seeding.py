"""Zendesk fake: seeding the account from the world."""

from __future__ import annotations

import bisect
import gc
from typing import Any

from hub.sandbox.base import (
    rng_for,
)
from hub.sandbox.zendesk.records import (
    _COMMENTS_BAD,
    _COMMENTS_GOOD,
    _FIRST,
    _LAST,
    _PRIORITIES,
    _SUBJECTS,
    _TOPIC_TAGS,
    CLOSE_AFTER,
    DAY,
    ORG_BASE,
    PROFILES,
    WINDOW_SECONDS,
    _Org,
    _Rand,
    _Rating,
    _Ticket,
    _User,
)


class _Seeding:
    """Build the account from the world: organizations, users, tickets, metrics, ratings."""

    # ------------------------------------------------------------------ seeding

    def seed(self) -> None:
        # Millions of small objects: the cyclic GC would rescan them over and over while
        # nothing here makes cycles, so it is paused for the seeding.
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._seed()
        finally:
            if enabled:
                gc.enable()

    def _seed(self) -> None:
        from hub.sandbox.world import CREDENTIALS

        world = self.world
        rng = _Rand(rng_for(world.seed, "zendesk", "seed"))
        now = world.clock.ts()
        creds = CREDENTIALS["zendesk"]
        start_ts = now - 400 * DAY
        admin = self._add_user(None, "Sandbox Admin", creds["email"], "admin", start_ts, start_ts)
        self.admin_id = admin.id
        for i in range(6):
            first, last = _FIRST[i], _LAST[i]
            agent = self._add_user(
                None,
                f"{first.title()} {last.title()}",
                f"{first}.{last}@support.lumen.example",
                "agent",
                start_ts,
                start_ts + i,
            )
            self.agents.append(agent.id)

        pending: list[_Ticket] = []
        for company in world.companies:
            created = int(company.created_at.timestamp())
            org_id = ORG_BASE + company.key + 1
            if company.zendesk_link == "external_id":
                name, ext, domains = company.name, company.hubspot_id, [company.domain]
            elif company.zendesk_link == "domain":
                name, ext, domains = company.name, None, [company.domain]
            else:  # nothing links: no external id, no domain, and a name that differs
                variant = rng.choice([" Inc.", " GmbH", " (Support)", " Ltd"])
                name, ext, domains = company.name + variant, None, []
            org = _Org(
                org_id,
                company.key,
                name,
                ext,
                domains,
                [company.plan],
                created,
                rng.randint(created, now - 3600),
            )
            self.orgs[org_id] = org
            self._org_by_company[company.key] = org_id
            users = []
            for j in range(rng.randint(1, 4)):
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                u_created = created + rng.randint(0, 30 * DAY)
                u_created = min(u_created, now - 7200)
                user = self._add_user(
                    org_id,
                    f"{first.title()} {last.title()}",
                    f"{first}.{last}.{company.key}{j}@{company.domain}",
                    "end-user",
                    u_created,
                    rng.randint(u_created, now - 3600),
                )
                users.append(user.id)
            profile = PROFILES[company.archetype]
            lo, hi = profile["n"]
            for _ in range(rng.randint(lo, hi)):
                if company.archetype == "churned":
                    opened = now - rng.randint(30 * DAY, 90 * DAY)
                else:
                    opened = now - rng.randint(3600, 90 * DAY)
                opened = max(opened, created)
                pending.append(
                    self._seed_ticket(
                        rng, company.key, org_id, company.archetype, users, opened, now
                    )
                )

        # Ticket ids grow with creation time, as in a real account.
        pending.sort(key=lambda t: t.created)
        for number, ticket in enumerate(pending, start=1):
            ticket.id = number
            self.tickets[number] = ticket
            self._tickets_by_company.setdefault(ticket.company_key, []).append(number)
        ratings: list[tuple[int, _Ticket, str]] = []
        for ticket in pending:
            if ticket.rating_score in ("good", "bad"):
                ratings.append((ticket.rating_id or 0, ticket, ticket.rating_score))
        ratings.sort(key=lambda r: (r[0], r[1].id))
        for rated_at, ticket, score in ratings:  # rating_id held the rating time until now
            self._add_rating(rng, ticket, score, rated_at, index=False)
        self._plant_same_second(rng, now)
        self._reindex()

    def _seed_ticket(
        self,
        rng: Any,
        key: int,
        org_id: int,
        archetype: str,
        users: list[int],
        opened: int,
        now: int,
    ) -> _Ticket:
        p = PROFILES[archetype]
        t = _Ticket()
        t.company_key = key
        t.org_id = org_id
        t.requester_id = rng.choice(users)
        t.assignee_id = rng.choice(self.agents)
        t.type, t.subject = rng.choice(_SUBJECTS)
        t.priority = rng.weighted(_PRIORITIES, p["prio_cum"])
        tags = [rng.choice(_TOPIC_TAGS)]
        if rng.random() < p["esc"]:
            tags.append("escalated")
        t.tags = tags
        t.channel = rng.choice(["email", "web", "web", "api"])
        t.created = opened
        last = opened
        reply = opened + 60 * rng.randint(*p["reply"])
        if reply < now - WINDOW_SECONDS:
            t.replied = reply
            t.replies = rng.randint(1, 4)
            last = reply
        solved = reply + 60 * rng.randint(*p["res"])
        if t.replied and solved < now - WINDOW_SECONDS and rng.random() >= p["open"]:
            if rng.random() < p["reopen"]:
                t.reopens = rng.randint(1, 2)
                t.first_solved = reply + (solved - reply) // 3
                t.replies += t.reopens
            else:
                t.first_solved = solved
            t.solved = solved
            t.status = "solved"
            last = solved
            if rng.random() < 0.45:
                rated = solved + rng.randint(600, 2 * DAY)
                if rated < now - WINDOW_SECONDS:
                    t.rating_score = "good" if rng.random() < p["good"] else "bad"
                    t.rating_id = rated  # temporarily the rating time (see seed)
                    last = rated
            if solved + CLOSE_AFTER < now - WINDOW_SECONDS:
                t.status = "closed"
                last = max(last, solved + CLOSE_AFTER)
        elif t.replied:
            t.status = rng.choice(["open", "open", "pending"])
        else:
            t.status = "new"
        t.status_updated = last if t.status in ("solved", "closed") else (t.replied or opened)
        t.updated = last
        return t

    def _plant_same_second(self, rng: Any, now: int) -> None:
        """Trap: several tickets updated in the very same second (cursor clients must not
        lose or loop on them; naive ``updated_at > bookmark`` clients do)."""
        moment = now - 2 * DAY
        candidates = [t for t in self.tickets.values() if t.updated < moment]
        for ticket in rng.sample(candidates, min(7, len(candidates))):
            ticket.updated = moment
            if ticket.status in ("new", "open", "pending"):
                ticket.status_updated = moment

    def _add_user(
        self, org_id: int | None, name: str, email: str, role: str, created: int, updated: int
    ) -> _User:
        user = _User(self._next_user, org_id, name, email, role, created, updated)
        self._next_user += 1
        self.users[user.id] = user
        if org_id is not None:
            self._users_by_org.setdefault(org_id, []).append(user.id)
        return user

    def _add_rating(
        self, rng: Any, ticket: _Ticket, score: str, at: int, *, index: bool = True
    ) -> _Rating:
        comments = _COMMENTS_GOOD if score == "good" else _COMMENTS_BAD
        rating = _Rating(self._next_rating, ticket, score, rng.choice(comments), at)
        self._next_rating += 1
        self.ratings[rating.id] = rating
        ticket.rating_id = rating.id
        ticket.rating_score = score
        key = (at, rating.id)
        if index:
            bisect.insort(self._rating_keys, key)
            bisect.insort(self._rating_keys_by_score[score], key)
        else:  # seed: appended in order
            self._rating_keys.append(key)
            self._rating_keys_by_score[score].append(key)
        return rating

    def _reindex(self) -> None:
        self._org_ids = sorted(self.orgs)
        self._org_keys = sorted((o.updated, o.id) for o in self.orgs.values())
        self._user_keys = sorted((u.updated, u.id) for u in self.users.values())
        self._ticket_keys = sorted((t.updated, t.id) for t in self.tickets.values())
        self._open = {t.id for t in self.tickets.values() if t.status in ("new", "open", "pending")}
        self._solved = {t.id for t in self.tickets.values() if t.status == "solved"}
