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

_CHANNELS = ["email", "web", "web", "api"]
_REPLIED = ["open", "open", "pending"]


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
        # ``_Rand``'s draws written out (same numbers): millions of calls at 100k companies.
        rand = rng.random
        variants = [" Inc.", " GmbH", " (Support)", " Ltd"]
        firsts, lasts = [f.title() for f in _FIRST], [x.title() for x in _LAST]
        n_first, n_last = len(_FIRST), len(_LAST)
        users_by_org = self._users_by_org
        all_users = self.users
        next_user = self._next_user
        month = 30 * DAY
        for company in world.companies:
            created = int(company.created_at.timestamp())
            org_id = ORG_BASE + company.key + 1
            if company.zendesk_link == "external_id":
                name, ext, domains = company.name, company.hubspot_id, [company.domain]
            elif company.zendesk_link == "domain":
                name, ext, domains = company.name, None, [company.domain]
            else:  # nothing links: no external id, no domain, and a name that differs
                variant = variants[int(rand() * 4)]
                name, ext, domains = company.name + variant, None, []
            org_updated = created + int(rand() * (now - 3600 - created + 1))
            org = _Org(
                org_id, company.key, name, ext, domains, [company.plan], created, org_updated
            )
            self.orgs[org_id] = org
            self._org_by_company[company.key] = org_id
            users = []
            domain, key = company.domain, company.key
            for j in range(1 + int(rand() * 4)):
                fi, li = int(rand() * n_first), int(rand() * n_last)
                u_created = min(created + int(rand() * (month + 1)), now - 7200)
                u_updated = u_created + int(rand() * (now - 3600 - u_created + 1))
                user = _User(
                    next_user,
                    org_id,
                    f"{firsts[fi]} {lasts[li]}",
                    f"{_FIRST[fi]}.{_LAST[li]}.{key}{j}@{domain}",
                    "end-user",
                    u_created,
                    u_updated,
                )
                all_users[next_user] = user
                users.append(next_user)
                next_user += 1
            users_by_org[org_id] = list(users)
            arch = company.archetype
            lo, hi = PROFILES[arch]["n"]
            for _ in range(lo + int(rand() * (hi - lo + 1))):
                if arch == "churned":
                    opened = now - (month + int(rand() * (90 * DAY - month + 1)))
                else:
                    opened = now - (3600 + int(rand() * (90 * DAY - 3600 + 1)))
                opened = max(opened, created)
                pending.append(self._seed_ticket(rng, key, org_id, arch, users, opened, now))
        self._next_user = next_user

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
        rand = rng.random
        t = _Ticket()
        t.company_key = key
        t.org_id = org_id
        t.requester_id = users[int(rand() * len(users))]
        t.assignee_id = self.agents[int(rand() * len(self.agents))]
        t.type, t.subject = _SUBJECTS[int(rand() * len(_SUBJECTS))]
        cum = p["prio_cum"]
        t.priority = _PRIORITIES[min(bisect.bisect_right(cum, rand() * cum[-1]), 3)]
        tags = [_TOPIC_TAGS[int(rand() * len(_TOPIC_TAGS))]]
        if rand() < p["esc"]:
            tags.append("escalated")
        t.tags = tags
        t.channel = _CHANNELS[int(rand() * 4)]
        t.created = opened
        last = opened
        lo, hi = p["reply"]
        reply = opened + 60 * (lo + int(rand() * (hi - lo + 1)))
        if reply < now - WINDOW_SECONDS:
            t.replied = reply
            t.replies = 1 + int(rand() * 4)
            last = reply
        lo, hi = p["res"]
        solved = reply + 60 * (lo + int(rand() * (hi - lo + 1)))
        if t.replied and solved < now - WINDOW_SECONDS and rand() >= p["open"]:
            if rand() < p["reopen"]:
                t.reopens = 1 + int(rand() * 2)
                t.first_solved = reply + (solved - reply) // 3
                t.replies += t.reopens
            else:
                t.first_solved = solved
            t.solved = solved
            t.status = "solved"
            last = solved
            if rand() < 0.45:
                rated = solved + 600 + int(rand() * (2 * DAY - 600 + 1))
                if rated < now - WINDOW_SECONDS:
                    t.rating_score = "good" if rand() < p["good"] else "bad"
                    t.rating_id = rated  # temporarily the rating time (see seed)
                    last = rated
            if solved + CLOSE_AFTER < now - WINDOW_SECONDS:
                t.status = "closed"
                last = max(last, solved + CLOSE_AFTER)
        elif t.replied:
            t.status = _REPLIED[int(rand() * 3)]
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
