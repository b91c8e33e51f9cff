"""Zendesk fake: daily activity."""

from __future__ import annotations

import bisect
import datetime as dt
from typing import Any

from hub.sandbox.base import (
    rng_for,
)
from hub.sandbox.zendesk.records import (
    _FIRST,
    _LAST,
    _PRIORITIES,
    _SUBJECTS,
    _TOPIC_TAGS,
    CLOSE_AFTER,
    PROFILES,
    _Rand,
    _Ticket,
    _User,
)
from hub.sandbox.zendesk.webhooks import ticket_events


class _Simulation:
    """Daily activity: new tickets, replies, solves, closes and ratings."""

    # ------------------------------------------------------------------ simulation

    def advance(self, start: dt.datetime, end: dt.datetime, day_index: int) -> None:
        """One simulated day: new tickets by archetype, progress and solve, reopen, close,
        CSAT on solved tickets, the odd organization update. Events land before
        ``end - 120 s`` so a sync right after sees the whole day (the API hides the last minute)."""
        rng = _Rand(rng_for(self.world.seed, "zendesk", "day", day_index))
        s, e = int(start.timestamp()), int(end.timestamp()) - 120
        companies = self.world.companies
        touched: dict[int, tuple[int, int]] = {}  # ticket id -> its key before today
        touched_users: dict[int, tuple[int, int]] = {}
        touched_orgs: dict[int, tuple[int, int]] = {}

        def at(after: int) -> int:
            return max(rng.randint(s, e), after + 1)

        def touch(t: _Ticket, when: int) -> None:
            if t.id not in touched and t.id in self.tickets:
                touched[t.id] = (t.updated, t.id)
            t.updated = max(t.updated, when)

        # Work on open tickets: solve some, answer others.
        for tid in sorted(self._open):
            t = self.tickets[tid]
            p = self._profile(t)
            if rng.random() < p["solve"]:
                when = at(t.updated)
                if t.replied is None:
                    t.replied = max(t.created + 60, when - 600)
                t.replies += 1
                t.solved = when
                t.first_solved = t.first_solved or when
                t.status = "solved"
                t.status_updated = when
                touch(t, when)
                self._open.discard(tid)
                self._solved.add(tid)
                if rng.random() < 0.45:
                    rated = min(max(when + rng.randint(300, 6 * 3600), when + 1), max(e, when + 1))
                    score = "good" if rng.random() < p["good"] else "bad"
                    self._add_rating(rng, t, score, rated)
                    touch(t, rated)
            elif rng.random() < 0.5:
                when = at(t.updated)
                if t.replied is None:
                    t.replied = when
                t.replies += 1
                new_status = "pending" if t.status == "open" else "open"
                t.status = new_status
                t.status_updated = when
                touch(t, when)
        # Close solved tickets after four days; reopen some of the others.
        for tid in sorted(self._solved):
            t = self.tickets[tid]
            if tid in touched:
                continue
            p = self._profile(t)
            if t.solved is not None and t.solved + CLOSE_AFTER <= e:
                when = max(t.solved + CLOSE_AFTER, t.updated + 1)
                t.status = "closed"
                t.status_updated = when
                touch(t, when)
                self._solved.discard(tid)
            elif rng.random() < p["reopen"] * 0.5:
                when = at(t.updated)
                t.status = "open"
                t.status_updated = when
                t.reopens += 1
                t.solved = None
                touch(t, when)
                self._solved.discard(tid)
                self._open.add(tid)
        # New tickets.
        for company in companies:
            p = PROFILES[company.archetype]
            if rng.random() >= p["rate"]:
                continue
            org_id = self._org_by_company[company.key]
            opened = rng.randint(s, e)
            users = self._users_by_org.setdefault(org_id, [])
            if not users or rng.random() < 0.05:
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                user = self._add_user(
                    org_id,
                    f"{first.title()} {last.title()}",
                    f"{first}.{last}.{company.key}{len(users)}@{company.domain}",
                    "end-user",
                    opened - 30,
                    opened - 30,
                )
                touched_users[user.id] = (user.updated, user.id)
            t = self._new_ticket(rng, company.key, org_id, company.archetype, opened)
            self._open.add(t.id)
            touched[t.id] = (-1, -1)  # not in the key list yet
        # The odd organization update (notes, tags).
        if self.orgs:
            count = int(len(self.orgs) * 0.003 + rng.random())
            for org_id in rng.sample(self._org_ids, min(count, len(self._org_ids))):
                org = self.orgs[org_id]
                touched_orgs[org_id] = (org.updated, org_id)
                org.updated = max(rng.randint(s, e), org.updated + 1)
                org.notes = f"Reviewed on day {day_index}"
        # End users edit their profiles now and then (name, phone): updated_at moves.
        edits = int(len(self.users) * 0.004 + rng.random())
        for user in self._sample_end_users(rng, edits):
            if user.id in touched_users:
                continue
            touched_users[user.id] = (user.updated, user.id)
            user.updated = max(rng.randint(s, e), user.updated + 1)
        self._rekey(self._ticket_keys, touched, lambda i: (self.tickets[i].updated, i))
        if self.sandbox.webhooks is not None:
            ticket_events(self, touched, s)
        self._rekey(self._user_keys, touched_users, lambda i: (self.users[i].updated, i))
        self._rekey(self._org_keys, touched_orgs, lambda i: (self.orgs[i].updated, i))

    def _sample_end_users(self, rng: _Rand, count: int) -> list[_User]:
        if count <= 0 or not self._user_keys:
            return []
        picks = rng.sample(range(len(self._user_keys)), min(count, len(self._user_keys)))
        users = [self.users[self._user_keys[i][1]] for i in sorted(picks)]
        return [u for u in users if u.role == "end-user"]

    def _profile(self, t: _Ticket) -> dict[str, Any]:
        companies = self.world.companies
        if 0 <= t.company_key < len(companies):
            return PROFILES[companies[t.company_key].archetype]
        return PROFILES["healthy"]  # created through the API for no known company

    def _new_ticket(self, rng: Any, key: int, org_id: int, archetype: str, opened: int) -> _Ticket:
        p = PROFILES[archetype]
        t = _Ticket()
        t.id = len(self.tickets) + 1
        t.company_key = key
        t.org_id = org_id
        t.requester_id = rng.choice(self._users_by_org[org_id])
        t.assignee_id = rng.choice(self.agents)
        t.type, t.subject = rng.choice(_SUBJECTS)
        t.priority = rng.weighted(_PRIORITIES, p["prio_cum"])
        t.tags = [rng.choice(_TOPIC_TAGS)] + (["escalated"] if rng.random() < p["esc"] else [])
        t.channel = rng.choice(["email", "web", "web", "api"])
        t.created = t.updated = t.status_updated = opened
        t.status = "new"
        self.tickets[t.id] = t
        self._tickets_by_company.setdefault(key, []).append(t.id)
        return t

    @staticmethod
    def _rekey(
        keys: list[tuple[int, int]], touched: dict[int, tuple[int, int]], key_of: Any
    ) -> None:
        """Move changed records to their new place in a sorted key list in one pass."""
        if not touched:
            return
        old = set(touched.values())
        kept = [k for k in keys if k not in old] if len(touched) > 50 else None
        if kept is None:
            for k in old:
                i = bisect.bisect_left(keys, k)
                if i < len(keys) and keys[i] == k:
                    del keys[i]
            for rid in touched:
                bisect.insort(keys, key_of(rid))
            return
        kept.extend(sorted(key_of(rid) for rid in touched))
        kept.sort()  # two sorted runs: timsort merges them in linear time
        keys[:] = kept
