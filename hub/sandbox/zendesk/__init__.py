"""Stateful fake of the Zendesk Support API (the parts the hub reads).

What it serves, with the real API's paths (with or without ``.json``), envelopes, errors and
limits (facts: ``shared/specs/README.md`` Zendesk rows and Zendesk's OAS):

- ``GET /api/v2/incremental/tickets/cursor.json`` (and ``users/cursor``): cursor-based export
  ordered by ``(updated_at, id)``; ``start_time`` first, then ``cursor``; ``per_page`` ≤ 1000;
  ``include=metric_sets`` (also ``users``, ``organizations``) sideloads. The cursor encodes
  the position, so a ticket updated later reappears later. ``start_time`` must be at least
  one minute in the past and the most recent minute is never returned.
- ``GET /api/v2/incremental/{organizations,users,tickets}.json``: time-based exports
  (``count``, ``end_time``, ``next_page``, ``end_of_stream``). Like the real API they repeat
  items: the next page starts *at* ``end_time`` (the last item's ``updated_at``), so items of
  that second come again.
- ``GET /api/v2/ticket_metrics``, ``/satisfaction_ratings``, ``/organizations``: cursor
  pagination (``page[size]`` ≤ 100, ``page[after]``/``page[before]``, ``meta``, ``links``) or
  classic offset pagination (``page``/``per_page``, ``next_page``, 400 past 10,000 records).
- ``GET /api/v2/users/me``, ``/tickets/{id}``, ``/organizations/{id}``, ``/ticket_metrics/{id}``,
  ``/tickets/{id}/metrics``, ``/satisfaction_ratings/{id}``; ``POST /api/v2/tickets``
  (validation errors are 422 ``RecordInvalid`` with ``details``).

Auth is ``Basic base64("{email}/token:{api_token}")`` or ``Bearer {oauth_token}`` (values in
``CREDENTIALS["zendesk"]``). With ``sandbox.enforce_limits`` the incremental exports allow
``incremental_per_minute`` (10) requests and everything ``requests_per_minute`` (400), windows
scaled by ``sandbox.time_scale``; a 429 carries ``Retry-After`` and its body alternates between
JSON and ``text/plain`` as the real API's does. Retry-After is whole seconds at
``time_scale >= 1`` and fractional when scaled down (zenpy parses it with ``int``).

Fault kinds taken here: ``cursor_expired`` (422 ``InvalidCursor`` on the next export cursor
request, 400 on a list's ``page[after]``) and client errors ``400``/``401``/``403``/``404``/
``422`` in Zendesk's classic error shape (the base applies 429, 5xx, timeouts and drops).

Records are kept as slotted objects with integer timestamps and rendered to JSON per request,
so seeding 100k companies stays fast and every request costs O(page size) (sorted key lists
plus bisect).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
import gc
import math
import random
import threading
import time
from typing import Any
from urllib.parse import urlencode

import httpx

from hub.sandbox.base import (
    FakeAPI,
    Fault,
    SlidingWindow,
    base_url,
    json_response,
    request_json,
    rng_for,
    route,
    text_response,
)

# Id ranges look like real Zendesk ids; tickets are numbered 1, 2, 3… per account as in Zendesk.
ORG_BASE = 360_000_000_000
USER_BASE = 370_000_000_000
METRIC_BASE = 380_000_000_000
RATING_BASE = 390_000_000_000
GROUP_ID = 360_001_000_001
BRAND_ID = 360_002_000_001

WINDOW_SECONDS = 60  # "Data isn't provided for the most recent minute."
EXPORT_MAX_PER_PAGE = 1000
LIST_MAX_PER_PAGE = 100
OFFSET_RECORD_LIMIT = 10_000  # offset pagination stops after 100 pages of 100
CLOSE_AFTER = 4 * 86400  # solved tickets close after four days (Zendesk's default automation)
DAY = 86400
# Injectable client errors (fault kind -> Zendesk's classic error body).
CLIENT_ERRORS = {
    "400": ("InvalidValue", "Injected bad request"),
    "401": ("Couldn't authenticate you", None),
    "403": (
        "Forbidden",
        "You do not have access to this page. Please contact the account owner of this help desk for further help.",
    ),
    "404": ("RecordNotFound", "Not found"),
    "422": ("RecordInvalid", "Record validation errors"),
}

# Per archetype: tickets in the seeded 90 days (lo, hi), new tickets per day, first-reply
# minutes, resolution minutes, share left unresolved, daily solve chance, reopen chance,
# CSAT "good" share, priority weights (low, normal, high, urgent), escalation share.
PROFILES: dict[str, dict[str, Any]] = {
    "healthy": dict(
        n=(1, 3),
        rate=0.025,
        reply=(5, 60),
        res=(60, 480),
        open=0.05,
        solve=0.9,
        reopen=0.02,
        good=0.95,
        prio=(0.3, 0.6, 0.1, 0.0),
        esc=0.0,
    ),
    "expanding": dict(
        n=(1, 4),
        rate=0.035,
        reply=(5, 90),
        res=(60, 600),
        open=0.08,
        solve=0.85,
        reopen=0.03,
        good=0.92,
        prio=(0.25, 0.6, 0.15, 0.0),
        esc=0.0,
    ),
    "slipping": dict(
        n=(3, 6),
        rate=0.06,
        reply=(60, 480),
        res=(720, 2400),
        open=0.15,
        solve=0.45,
        reopen=0.12,
        good=0.65,
        prio=(0.15, 0.55, 0.25, 0.05),
        esc=0.05,
    ),
    "at_risk": dict(
        n=(5, 10),
        rate=0.12,
        reply=(180, 1440),
        res=(2900, 9600),
        open=0.3,
        solve=0.2,
        reopen=0.3,
        good=0.3,
        prio=(0.05, 0.35, 0.35, 0.25),
        esc=0.3,
    ),
    "churned": dict(
        n=(0, 2),
        rate=0.004,
        reply=(60, 600),
        res=(600, 3600),
        open=0.05,
        solve=0.5,
        reopen=0.05,
        good=0.5,
        prio=(0.2, 0.6, 0.15, 0.05),
        esc=0.0,
    ),
}
_PRIORITIES = ["low", "normal", "high", "urgent"]
_SUBJECTS = [
    ("question", "How do I add seats?"),
    ("question", "Where can I download invoices?"),
    ("incident", "Widget not loading on our site"),
    ("incident", "Error 500 on the dashboard"),
    ("incident", "Data sync delayed"),
    ("problem", "Login fails with SSO"),
    ("task", "Please update our billing address"),
    ("question", "Feature request: CSV export"),
    ("incident", "Emails not being delivered"),
    ("question", "Can we change our plan?"),
]
_TOPIC_TAGS = ["billing", "bug", "how-to", "integration", "login", "performance"]
_FIRST = [
    "ana",
    "ben",
    "chloe",
    "dev",
    "elif",
    "femi",
    "greta",
    "hugo",
    "ines",
    "jun",
    "kofi",
    "lea",
]
_LAST = ["silva", "okafor", "tanaka", "novak", "haddad", "berg", "rossi", "kim", "meyer", "diaz"]
_COMMENTS_GOOD = ["Great support!", "Quick and helpful.", ""]
_COMMENTS_BAD = ["Took far too long.", "Still not fixed.", "Nobody answered.", ""]


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(token: str) -> str:
    padded = token + "=" * (-len(token) % 4)
    return base64.urlsafe_b64decode(padded.encode()).decode()


class _Rand:
    """``random.Random`` with cheaper ``randint``/``choice`` (seeding 100k companies draws
    millions of numbers; the stdlib versions cost several times more per call)."""

    def __init__(self, rng: random.Random):
        self._rng = rng
        self.random = rng.random

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq: Any) -> Any:
        return seq[int(self.random() * len(seq))]

    def weighted(self, seq: list[str], cumulative: list[float]) -> str:
        return seq[
            min(bisect.bisect_right(cumulative, self.random() * cumulative[-1]), len(seq) - 1)
        ]

    def sample(self, population: Any, k: int) -> list[Any]:
        return self._rng.sample(population, k)


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


for _profile in PROFILES.values():
    _profile["prio_cum"] = _cumulative(_profile["prio"])


class _BadParam(Exception):
    """A query parameter the real API would reject (turned into a 400)."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class _Org:
    __slots__ = (
        "id",
        "company_key",
        "name",
        "external_id",
        "domain_names",
        "tags",
        "created",
        "updated",
        "notes",
    )

    def __init__(
        self,
        id: int,
        company_key: int,
        name: str,
        external_id: str | None,
        domain_names: list[str],
        tags: list[str],
        created: int,
        updated: int,
    ):
        self.id = id
        self.company_key = company_key
        self.name = name
        self.external_id = external_id
        self.domain_names = domain_names
        self.tags = tags
        self.created = created
        self.updated = updated
        self.notes = ""


class _User:
    __slots__ = ("id", "org_id", "name", "email", "role", "created", "updated")

    def __init__(
        self,
        id: int,
        org_id: int | None,
        name: str,
        email: str,
        role: str,
        created: int,
        updated: int,
    ):
        self.id = id
        self.org_id = org_id
        self.name = name
        self.email = email
        self.role = role
        self.created = created
        self.updated = updated


class _Ticket:
    __slots__ = (
        "id",
        "company_key",
        "org_id",
        "requester_id",
        "assignee_id",
        "subject",
        "type",
        "priority",
        "status",
        "tags",
        "channel",
        "created",
        "updated",
        "replied",
        "replies",
        "reopens",
        "solved",
        "first_solved",
        "status_updated",
        "rating_id",
        "rating_score",
    )

    def __init__(self) -> None:
        self.id = 0
        self.replied: int | None = None  # first agent reply (unix)
        self.replies = 0
        self.reopens = 0
        self.solved: int | None = None
        self.first_solved: int | None = None
        self.rating_id: int | None = None
        self.rating_score = "unoffered"


class _Rating:
    __slots__ = (
        "id",
        "ticket_id",
        "org_id",
        "requester_id",
        "assignee_id",
        "score",
        "comment",
        "created",
    )

    def __init__(self, id: int, ticket: _Ticket, score: str, comment: str, created: int):
        self.id = id
        self.ticket_id = ticket.id
        self.org_id = ticket.org_id
        self.requester_id = ticket.requester_id
        self.assignee_id = ticket.assignee_id
        self.score = score
        self.comment = comment
        self.created = created


class ZendeskAPI(FakeAPI):
    """Fake Zendesk Support API over the world's companies (organizations, users, tickets,
    ticket metrics, satisfaction ratings)."""

    name = "zendesk"
    prefixes = ("/api/v2/",)

    def __init__(self, sandbox: Any):
        super().__init__(sandbox)
        # Budgets (per minute, scaled by sandbox.time_scale); tests may change them.
        self.requests_per_minute = 400  # plan budget (Growth/Professional)
        self.incremental_per_minute = 10  # 30 with the High Volume API add-on
        self._windows: dict[str, SlidingWindow] = {}
        self._local = threading.local()
        self._limited = 0  # 429s sent by the budget; alternates JSON / text bodies
        self.orgs: dict[int, _Org] = {}
        self.users: dict[int, _User] = {}
        self.tickets: dict[int, _Ticket] = {}
        self.ratings: dict[int, _Rating] = {}
        self._org_by_company: dict[int, int] = {}
        self._users_by_org: dict[int, list[int]] = {}
        self._tickets_by_company: dict[int, list[int]] = {}
        self._org_ids: list[int] = []  # ascending
        self._org_keys: list[tuple[int, int]] = []  # (updated, id) ascending
        self._user_keys: list[tuple[int, int]] = []
        self._ticket_keys: list[tuple[int, int]] = []
        self._rating_keys: list[tuple[int, int]] = []  # (created, id) ascending
        self._rating_keys_by_score: dict[str, list[tuple[int, int]]] = {"good": [], "bad": []}
        self._open: set[int] = set()  # new/open/pending tickets
        self._solved: set[int] = set()  # solved, not yet closed
        self.agents: list[int] = []
        self.admin_id = 0
        self._next_user = USER_BASE + 1
        self._next_rating = RATING_BASE + 1

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

    # ------------------------------------------------------------------ test helpers

    def update_ticket(
        self, ticket_id: int, *, at: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Change a ticket now (or at unix ``at``) and move it in the export order."""
        t = self.tickets[ticket_id]
        when = self.world.clock.ts() if at is None else at
        old = (t.updated, t.id)
        for name, value in fields.items():
            setattr(t, name, value)
        if "status" in fields:
            t.status_updated = when
            self._open.discard(t.id)
            self._solved.discard(t.id)
            if t.status in ("new", "open", "pending"):
                self._open.add(t.id)
            elif t.status == "solved":
                t.solved = when
                t.first_solved = t.first_solved or when
                self._solved.add(t.id)
        t.updated = when
        self._rekey(self._ticket_keys, {t.id: old}, lambda i: (self.tickets[i].updated, i))
        return self.render_ticket(t)

    def update_organization(
        self, org_id: int, *, at: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        org = self.orgs[org_id]
        old = (org.updated, org.id)
        for name, value in fields.items():
            setattr(org, name, value)
        org.updated = self.world.clock.ts() if at is None else at
        self._rekey(self._org_keys, {org.id: old}, lambda i: (self.orgs[i].updated, i))
        return self.render_org(org)

    def tickets_for(self, company_key: int) -> list[dict[str, Any]]:
        """The company's tickets as the API renders them, by id."""
        return [
            self.render_ticket(self.tickets[i])
            for i in self._tickets_by_company.get(company_key, [])
        ]

    def organization_for(self, company_key: int) -> dict[str, Any]:
        return self.render_org(self.orgs[self._org_by_company[company_key]])

    def counts(self) -> dict[str, int]:
        return {
            "organizations": len(self.orgs),
            "users": len(self.users),
            "tickets": len(self.tickets),
            "ticket_metrics": len(self.tickets),
            "satisfaction_ratings": len(self.ratings),
        }

    def visible_count(self, what: str = "tickets", since: int = 0) -> int:
        """How many records an export from ``since`` returns now (the last minute excluded)."""
        keys = {
            "tickets": self._ticket_keys,
            "users": self._user_keys,
            "organizations": self._org_keys,
        }[what]
        end = self.world.clock.ts() - WINDOW_SECONDS
        return bisect.bisect_left(keys, (end,)) - bisect.bisect_left(keys, (since,))

    # ------------------------------------------------------------------ rendering

    def _api_url(self, request: httpx.Request, path: str) -> str:
        return f"{base_url(request)}/api/v2/{path}"

    def render_org(self, o: _Org, request: httpx.Request | None = None) -> dict[str, Any]:
        base = base_url(request) if request is not None else "https://sandbox.zendesk.com"
        return {
            "url": f"{base}/api/v2/organizations/{o.id}.json",
            "id": o.id,
            "name": o.name,
            "shared_tickets": False,
            "shared_comments": False,
            "external_id": o.external_id,
            "created_at": _iso(o.created),
            "updated_at": _iso(o.updated),
            "domain_names": list(o.domain_names),
            "details": "",
            "notes": o.notes,
            "group_id": None,
            "tags": list(o.tags),
            "organization_fields": {},
        }

    def render_user(self, u: _User, request: httpx.Request | None = None) -> dict[str, Any]:
        base = base_url(request) if request is not None else "https://sandbox.zendesk.com"
        return {
            "id": u.id,
            "url": f"{base}/api/v2/users/{u.id}.json",
            "name": u.name,
            "email": u.email,
            "created_at": _iso(u.created),
            "updated_at": _iso(u.updated),
            "time_zone": "UTC",
            "iana_time_zone": "Etc/UTC",
            "phone": None,
            "shared_phone_number": None,
            "photo": None,
            "locale_id": 1,
            "locale": "en-US",
            "organization_id": u.org_id,
            "role": u.role,
            "verified": True,
            "external_id": None,
            "tags": [],
            "alias": "",
            "active": True,
            "shared": False,
            "shared_agent": False,
            "last_login_at": _iso(u.updated) if u.role != "end-user" else None,
            "two_factor_auth_enabled": False,
            "signature": None,
            "details": "",
            "notes": "",
            "role_type": None,
            "custom_role_id": None,
            "moderator": u.role != "end-user",
            "ticket_restriction": "requested" if u.role == "end-user" else None,
            "only_private_comments": False,
            "restricted_agent": u.role == "end-user",
            "suspended": False,
            "default_group_id": GROUP_ID if u.role != "end-user" else None,
            "report_csv": False,
            "user_fields": {},
        }

    def render_ticket(self, t: _Ticket, request: httpx.Request | None = None) -> dict[str, Any]:
        base = base_url(request) if request is not None else "https://sandbox.zendesk.com"
        if t.rating_id and t.rating_score in ("good", "bad"):
            rating = self.ratings.get(t.rating_id)
            satisfaction = {
                "score": t.rating_score,
                "id": t.rating_id,
                "comment": rating.comment if rating else "",
            }
        elif t.status in ("solved", "closed"):
            satisfaction = {"score": "offered"}
        else:
            satisfaction = {"score": "unoffered"}
        return {
            "url": f"{base}/api/v2/tickets/{t.id}.json",
            "id": t.id,
            "external_id": None,
            "via": {"channel": t.channel, "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": _iso(t.created),
            "updated_at": _iso(t.updated),
            "generated_timestamp": t.updated,
            "type": t.type,
            "subject": t.subject,
            "raw_subject": t.subject,
            "description": f"{t.subject}. Please help.",
            "priority": t.priority,
            "status": t.status,
            "recipient": "support@sandbox.zendesk.com",
            "requester_id": t.requester_id,
            "submitter_id": t.requester_id,
            "assignee_id": t.assignee_id,
            "organization_id": t.org_id,
            "group_id": GROUP_ID,
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "forum_topic_id": None,
            "problem_id": None,
            "has_incidents": False,
            "is_public": True,
            "due_at": None,
            "tags": list(t.tags),
            "custom_fields": [],
            "satisfaction_rating": satisfaction,
            "sharing_agreement_ids": [],
            "custom_status_id": None,
            "fields": [],
            "followup_ids": [],
            "ticket_form_id": None,
            "brand_id": BRAND_ID,
            "allow_channelback": False,
            "allow_attachments": True,
            "from_messaging_channel": False,
        }

    def render_metric(self, t: _Ticket, request: httpx.Request | None = None) -> dict[str, Any]:
        base = base_url(request) if request is not None else "https://sandbox.zendesk.com"

        def minutes(start: int | None, end: int | None) -> dict[str, int | None]:
            if start is None or end is None:
                return {"calendar": None, "business": None}
            cal = max(0, (end - start) // 60)
            return {"calendar": cal, "business": int(cal * 0.42)}

        solved = t.solved if t.status in ("solved", "closed") else None
        return {
            "url": f"{base}/api/v2/ticket_metrics/{METRIC_BASE + t.id}.json",
            "id": METRIC_BASE + t.id,
            "ticket_id": t.id,
            "created_at": _iso(t.created),
            "updated_at": _iso(t.updated),
            "group_stations": 1,
            "assignee_stations": 1,
            "reopens": t.reopens,
            "replies": t.replies,
            "assignee_updated_at": _iso(t.replied),
            "requester_updated_at": _iso(t.created),
            "status_updated_at": _iso(t.status_updated),
            "initially_assigned_at": _iso(t.created + 60),
            "assigned_at": _iso(t.created + 60),
            "solved_at": _iso(solved),
            "latest_comment_added_at": _iso(max(filter(None, [t.created, t.replied, solved]))),
            "custom_status_updated_at": _iso(t.status_updated),
            "reply_time_in_minutes": minutes(t.created, t.replied),
            "first_resolution_time_in_minutes": minutes(t.created, t.first_solved),
            "full_resolution_time_in_minutes": minutes(t.created, solved),
            "agent_wait_time_in_minutes": minutes(t.created, t.replied),
            "requester_wait_time_in_minutes": minutes(t.created, solved or t.replied),
            "on_hold_time_in_minutes": {"calendar": 0, "business": 0},
        }

    def render_rating(self, r: _Rating, request: httpx.Request | None = None) -> dict[str, Any]:
        base = base_url(request) if request is not None else "https://sandbox.zendesk.com"
        return {
            "url": f"{base}/api/v2/satisfaction_ratings/{r.id}.json",
            "id": r.id,
            "assignee_id": r.assignee_id,
            "group_id": GROUP_ID,
            "requester_id": r.requester_id,
            "ticket_id": r.ticket_id,
            "organization_id": r.org_id,
            "score": r.score,
            "comment": r.comment,
            "reason": None if r.score == "good" else "No reason provided",
            "reason_id": None if r.score == "good" else 0,
            "created_at": _iso(r.created),
            "updated_at": _iso(r.created),
        }

    # ------------------------------------------------------------------ errors, auth, limits

    def error(
        self, status: int, message: str, description: str | None = None, **extra: Any
    ) -> httpx.Response:
        body: dict[str, Any] = {"error": message}
        if description is not None:
            body["description"] = description
        body.update(extra)
        return json_response(status, body)

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.error(404, "InvalidEndpoint", "Not found")

    def _record_not_found(self) -> httpx.Response:
        return self.error(404, "RecordNotFound", "Not found")

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        from hub.sandbox.world import CREDENTIALS

        creds = CREDENTIALS["zendesk"]
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip()).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if decoded == f"{creds['email']}/token:{creds['api_token']}":
                return self._client_error_fault(request)
        elif (
            scheme.lower() == "bearer"
            and value.strip()
            and value.strip() == creds.get("oauth_token")
        ):
            return self._client_error_fault(request)
        return self.error(401, "Couldn't authenticate you")

    def _client_error_fault(self, request: httpx.Request) -> httpx.Response | None:
        """Injected 4xx faults (the base applies only 429/5xx/timeouts), in Zendesk's shapes."""
        fault = self.faults.take(request, set(CLIENT_ERRORS))
        if fault is None:
            return None
        error, description = CLIENT_ERRORS[fault.kind]
        return self.error(int(fault.kind), error, description)

    def _window(self, name: str, limit: int) -> SlidingWindow:
        span = 60.0 * self.sandbox.time_scale
        window = self._windows.get(name)
        if window is None or window.limit != limit or window.window != span:
            window = self._windows[name] = SlidingWindow(limit, span)
        return window

    def _retry_after(self, wait: float) -> str:
        if self.sandbox.time_scale >= 1:
            return str(max(1, math.ceil(wait)))
        return f"{max(wait, 0.001):.3f}"

    def rate_limit(self, request: httpx.Request, route_name: str) -> httpx.Response | None:
        with self._lock:
            account = self._window("account", self.requests_per_minute)
            if route_name.startswith("incremental"):
                ok, _, wait = self._window("incremental", self.incremental_per_minute).hit()
                if not ok:
                    return self._limited_response(request, wait, self.incremental_per_minute)
            ok, remaining, wait = account.hit()
            if not ok:
                return self._limited_response(request, wait, self.requests_per_minute)
            headers = {
                "x-rate-limit": str(self.requests_per_minute),
                "x-rate-limit-remaining": str(remaining),
            }
            if route_name in (
                "list_ticket_metrics",
                "list_satisfaction_ratings",
                "list_organizations",
            ):
                reset = max(1, math.ceil(account.window))
                headers.update(
                    {
                        "ratelimit-limit": str(self.requests_per_minute),
                        "ratelimit-remaining": str(remaining),
                        "ratelimit-reset": str(reset),
                    }
                )
            self._local.headers = headers
        return None

    def _limited_response(self, request: httpx.Request, wait: float, limit: int) -> httpx.Response:
        self._limited += 1
        # The real API is not consistent about 429 bodies; alternate so clients cope with both.
        response = self.too_many(request, retry_after=None, text=self._limited % 2 == 0)
        response.headers["retry-after"] = self._retry_after(wait)
        response.headers["x-rate-limit"] = str(limit)
        return response

    def too_many(
        self, request: httpx.Request, retry_after: float | None = None, text: bool = False
    ) -> httpx.Response:
        headers = {"x-rate-limit": str(self.requests_per_minute), "x-rate-limit-remaining": "0"}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        if text:
            return text_response(429, "Too Many Requests", headers)
        body = {
            "error": "APIRateLimitExceeded",
            "description": "Number of allowed API requests per minute exceeded",
        }
        return json_response(429, body, headers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self._local.headers = None
        response = super().handle(request)
        extra = getattr(self._local, "headers", None)
        if extra and response.status_code < 400:
            response.headers.update(extra)
        self._local.headers = None
        return response

    # ------------------------------------------------------------------ parameters

    @staticmethod
    def _int_param(request: httpx.Request, name: str, default: int | None = None) -> int | None:
        raw = request.url.params.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise _BadParam(400, "InvalidValue", f"{name} must be an integer") from None

    def _cursor_fault(self, request: httpx.Request) -> httpx.Response | None:
        fault: Fault | None = self.faults.take(request, {"cursor_expired"})
        if fault is None:
            return None
        return self._invalid_cursor()

    def _invalid_cursor(self) -> httpx.Response:
        return self.error(
            422,
            "InvalidCursor",
            "The cursor is invalid or has expired. Restart the export with start_time.",
        )

    def _start_time(self, request: httpx.Request, now: int) -> int:
        start = self._int_param(request, "start_time")
        if start is None:
            raise _BadParam(400, "InvalidValue", "start_time is required (unix seconds)")
        if start > now - WINDOW_SECONDS:
            raise _BadParam(
                400,
                "InvalidValue",
                "Invalid start_time: start_time is too recent. Use a time at least one minute in the past.",
            )
        return max(start, 0)

    # ------------------------------------------------------------------ incremental exports

    def _cursor_export(
        self, request: httpx.Request, keys: list[tuple[int, int]], plural: str, render: Any
    ) -> httpx.Response:
        try:
            fault = self._cursor_fault(request) if "cursor" in request.url.params else None
            if fault is not None:
                return fault
            now = self.world.clock.ts()
            per_page = (
                self._int_param(request, "per_page", EXPORT_MAX_PER_PAGE) or EXPORT_MAX_PER_PAGE
            )
            if per_page < 1:
                raise _BadParam(400, "InvalidValue", "per_page must be positive")
            per_page = min(per_page, EXPORT_MAX_PER_PAGE)
            hi = bisect.bisect_left(keys, (now - WINDOW_SECONDS,))
            cursor = request.url.params.get("cursor")
            backwards = False
            if cursor:
                try:
                    ts_part, direction, id_part, _ = _unb64(cursor).split("|")
                    pos = (int(float(ts_part)), int(id_part))
                except (ValueError, binascii.Error, UnicodeDecodeError):
                    return self._invalid_cursor()
                backwards = direction == "b"
            else:
                pos = (self._start_time(request, now), 0)
        except _BadParam as exc:
            return self.error(exc.status, exc.error, exc.description)
        if backwards:
            stop = min(bisect.bisect_left(keys, pos), hi)
            first = max(0, stop - per_page)
            page = keys[first:stop]
            end_of_stream = first == 0
        else:
            first = min(bisect.bisect_right(keys, pos), hi)
            stop = min(first + per_page, hi)
            page = keys[first:stop]
            end_of_stream = stop >= hi
        after = _b64(f"{page[-1][0]}.0||{page[-1][1]}|") if page else _b64(f"{pos[0]}.0||{pos[1]}|")
        before = _b64(f"{page[0][0]}.0|b|{page[0][1]}|") if page and first > 0 else None
        extra = {k: v for k, v in request.url.params.items() if k in ("per_page", "include")}
        path = request.url.path

        def link(token: str | None) -> str | None:
            if token is None:
                return None
            return f"{base_url(request)}{path}?{urlencode({'cursor': token, **extra})}"

        store = self.tickets if plural == "tickets" else self.users
        objects = [store[rid] for _, rid in page]
        body: dict[str, Any] = {plural: [render(o, request) for o in objects]}
        body.update(self._sideloads(request, objects if plural == "tickets" else []))
        body.update(
            {
                "after_url": link(after),
                "after_cursor": after,
                "before_url": link(before),
                "before_cursor": before,
                "end_of_stream": end_of_stream,
            }
        )
        return json_response(200, body)

    def _sideloads(self, request: httpx.Request, tickets: list[_Ticket]) -> dict[str, Any]:
        include = {
            p.strip() for p in (request.url.params.get("include") or "").split(",") if p.strip()
        }
        out: dict[str, Any] = {}
        if "metric_sets" in include:
            out["metric_sets"] = [self.render_metric(t, request) for t in tickets]
        if "users" in include:
            ids = sorted({t.requester_id for t in tickets} | {t.assignee_id for t in tickets})
            out["users"] = [
                self.render_user(self.users[i], request) for i in ids if i in self.users
            ]
        if "organizations" in include:
            ids = sorted({t.org_id for t in tickets})
            out["organizations"] = [
                self.render_org(self.orgs[i], request) for i in ids if i in self.orgs
            ]
        return out

    def _time_export(
        self,
        request: httpx.Request,
        keys: list[tuple[int, int]],
        plural: str,
        store: dict[int, Any],
        render: Any,
    ) -> httpx.Response:
        try:
            now = self.world.clock.ts()
            start = self._start_time(request, now)
            per_page = (
                self._int_param(request, "per_page", EXPORT_MAX_PER_PAGE) or EXPORT_MAX_PER_PAGE
            )
            if per_page < 1:
                raise _BadParam(400, "InvalidValue", "per_page must be positive")
            per_page = min(per_page, EXPORT_MAX_PER_PAGE)
        except _BadParam as exc:
            return self.error(exc.status, exc.error, exc.description)
        hi = bisect.bisect_left(keys, (now - WINDOW_SECONDS,))
        first = min(bisect.bisect_left(keys, (start,)), hi)
        stop = min(first + per_page, hi)
        page = keys[first:stop]
        end_time = page[-1][0] if page else start
        if len(page) == per_page and page[0][0] == page[-1][0]:
            # A whole page within one second: starting the next page at that second again
            # would loop forever, so take the rest of that second and move past it.
            stop = min(bisect.bisect_left(keys, (end_time + 1,)), hi)
            page = keys[first:stop]
            end_time += 1
        end_of_stream = len(page) < per_page
        params = {"start_time": end_time}
        if "per_page" in request.url.params:
            params["per_page"] = per_page
        next_page = f"{base_url(request)}{request.url.path}?{urlencode(params)}"
        body = {
            plural: [render(store[rid], request) for _, rid in page],
            "count": len(page),
            "end_time": end_time,
            "next_page": next_page,
            "end_of_stream": end_of_stream,
        }
        return json_response(200, body)

    @route("GET", r"/api/v2/incremental/tickets/cursor(?:\.json)?")
    def incremental_tickets_cursor(self, request: httpx.Request) -> httpx.Response:
        return self._cursor_export(request, self._ticket_keys, "tickets", self.render_ticket)

    @route("GET", r"/api/v2/incremental/users/cursor(?:\.json)?")
    def incremental_users_cursor(self, request: httpx.Request) -> httpx.Response:
        return self._cursor_export(request, self._user_keys, "users", self.render_user)

    @route("GET", r"/api/v2/incremental/tickets(?:\.json)?")
    def incremental_tickets(self, request: httpx.Request) -> httpx.Response:
        return self._time_export(
            request, self._ticket_keys, "tickets", self.tickets, self.render_ticket
        )

    @route("GET", r"/api/v2/incremental/organizations(?:\.json)?")
    def incremental_organizations(self, request: httpx.Request) -> httpx.Response:
        return self._time_export(
            request, self._org_keys, "organizations", self.orgs, self.render_org
        )

    @route("GET", r"/api/v2/incremental/users(?:\.json)?")
    def incremental_users(self, request: httpx.Request) -> httpx.Response:
        return self._time_export(request, self._user_keys, "users", self.users, self.render_user)

    # ------------------------------------------------------------------ paginated lists

    def _list(
        self,
        request: httpx.Request,
        keys: list[Any],
        lo: int,
        hi: int,
        *,
        descending: bool,
        plural: str,
        render: Any,
    ) -> httpx.Response:
        """Cursor (``page[size]``/``page[after]``/``page[before]``) or offset (``page``/
        ``per_page``) pagination over ``keys[lo:hi]`` in ascending or descending order."""
        params = request.url.params
        cbp = any(k in params for k in ("page[size]", "page[after]", "page[before]"))
        try:
            if cbp:
                return self._cursor_page(request, keys, lo, hi, descending, plural, render)
            return self._offset_page(request, keys, lo, hi, descending, plural, render)
        except _BadParam as exc:
            return self.error(exc.status, exc.error, exc.description)

    @staticmethod
    def _encode_key(key: Any) -> str:
        if isinstance(key, tuple):
            return _b64("k:" + ":".join(str(p) for p in key))
        return _b64(f"k:{key}")

    @staticmethod
    def _decode_key(token: str, sample: Any) -> Any:
        try:
            text = _unb64(token)
            if not text.startswith("k:"):
                raise ValueError(text)
            parts = [int(p) for p in text[2:].split(":")]
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _BadParam(
                400, "InvalidPaginationParameter", "page[after]/page[before] is not a valid cursor"
            ) from None
        return tuple(parts) if isinstance(sample, tuple) else parts[0]

    def _cursor_page(
        self,
        request: httpx.Request,
        keys: list[Any],
        lo: int,
        hi: int,
        descending: bool,
        plural: str,
        render: Any,
    ) -> httpx.Response:
        params = request.url.params
        if self.faults.take(request, {"cursor_expired"}) is not None:
            raise _BadParam(
                400,
                "InvalidPaginationParameter",
                "The cursor has expired. Start again without page[after].",
            )
        size = self._int_param(request, "page[size]", LIST_MAX_PER_PAGE) or LIST_MAX_PER_PAGE
        if size < 1 or size > LIST_MAX_PER_PAGE:
            raise _BadParam(
                400,
                "InvalidPaginationParameter",
                f"page[size] must be between 1 and {LIST_MAX_PER_PAGE}",
            )
        sample = keys[0] if keys else 0
        after, before = params.get("page[after]"), params.get("page[before]")
        # Work in "forward" terms: forward = ascending, or descending when ``descending``.
        if after:
            k = self._decode_key(after, sample)
            if descending:
                stop = max(lo, min(bisect.bisect_left(keys, k), hi))
                start = max(lo, stop - size)
                more = start > lo
            else:
                start = min(hi, max(bisect.bisect_right(keys, k), lo))
                stop = min(hi, start + size)
                more = stop < hi
        elif before:
            k = self._decode_key(before, sample)
            if descending:
                start = min(hi, max(bisect.bisect_right(keys, k), lo))
                stop = min(hi, start + size)
                more = stop < hi
            else:
                stop = max(lo, min(bisect.bisect_left(keys, k), hi))
                start = max(lo, stop - size)
                more = start > lo
        else:
            if descending:
                stop, start = hi, max(lo, hi - size)
                more = start > lo
            else:
                start, stop = lo, min(hi, lo + size)
                more = stop < hi
        page = keys[start:stop]
        if descending:
            page = page[::-1]
        after_cursor = self._encode_key(page[-1]) if page else None
        before_cursor = self._encode_key(page[0]) if page else None
        keep = {k: v for k, v in params.items() if k not in ("page[after]", "page[before]")}
        keep.setdefault("page[size]", str(size))

        def link(name: str, token: str | None) -> str | None:
            if token is None:
                return None
            return f"{base_url(request)}{request.url.path}?{urlencode({**keep, name: token})}"

        body = {
            plural: [render(k) for k in page],
            "meta": {
                "has_more": more,
                "after_cursor": after_cursor,
                "before_cursor": before_cursor,
            },
            "links": {
                "next": link("page[after]", after_cursor),
                "prev": link("page[before]", before_cursor),
            },
        }
        return json_response(200, body)

    def _offset_page(
        self,
        request: httpx.Request,
        keys: list[Any],
        lo: int,
        hi: int,
        descending: bool,
        plural: str,
        render: Any,
    ) -> httpx.Response:
        page_no = self._int_param(request, "page", 1) or 1
        per_page = self._int_param(request, "per_page", LIST_MAX_PER_PAGE) or LIST_MAX_PER_PAGE
        if page_no < 1 or per_page < 1:
            raise _BadParam(400, "InvalidPaginationParameter", "page and per_page must be positive")
        per_page = min(per_page, LIST_MAX_PER_PAGE)
        offset = (page_no - 1) * per_page
        if offset >= OFFSET_RECORD_LIMIT:
            raise _BadParam(
                400,
                "InvalidPaginationParameter",
                "Offset pagination is limited to the first 10000 records (100 pages); use cursor pagination (page[size]) instead.",
            )
        total = hi - lo
        if descending:
            stop = max(lo, hi - offset)
            start = max(lo, stop - per_page)
            page = keys[start:stop][::-1]
        else:
            start = min(hi, lo + offset)
            page = keys[start : min(hi, start + per_page)]
        keep = {k: v for k, v in request.url.params.items() if k != "page"}

        def link(number: int) -> str:
            return f"{base_url(request)}{request.url.path}?{urlencode({**keep, 'page': number})}"

        has_next = offset + per_page < total
        body = {
            plural: [render(k) for k in page],
            "next_page": link(page_no + 1) if has_next else None,
            "previous_page": link(page_no - 1) if page_no > 1 else None,
            "count": total,
        }
        return json_response(200, body)

    @route("GET", r"/api/v2/ticket_metrics(?:\.json)?", name="list_ticket_metrics")
    def list_ticket_metrics(self, request: httpx.Request) -> httpx.Response:
        # Ticket ids are 1..N in creation order, so "newest first" is descending ids.
        ids = range(1, len(self.tickets) + 1)
        return self._list(
            request,
            ids,
            0,
            len(ids),
            descending=True,
            plural="ticket_metrics",  # type: ignore[arg-type]
            render=lambda i: self.render_metric(self.tickets[i], request),
        )

    @route("GET", r"/api/v2/satisfaction_ratings(?:\.json)?", name="list_satisfaction_ratings")
    def list_satisfaction_ratings(self, request: httpx.Request) -> httpx.Response:
        try:
            start = self._int_param(request, "start_time")
            end = self._int_param(request, "end_time")
        except _BadParam as exc:
            return self.error(exc.status, exc.error, exc.description)
        score = (request.url.params.get("score") or "").strip()
        keys = self._rating_keys
        if score:
            base_score = score.split("_with")[0]
            if base_score in ("good", "bad"):
                keys = self._rating_keys_by_score[base_score]
            elif base_score != "received":
                keys = []  # offered/unoffered: the fake stores received ratings only
            if score.endswith("_with_comment"):
                keys = [k for k in keys if self.ratings[k[1]].comment]
            elif score.endswith("_without_comment"):
                keys = [k for k in keys if not self.ratings[k[1]].comment]
        lo = bisect.bisect_left(keys, (start,)) if start is not None else 0
        hi = bisect.bisect_left(keys, (end + 1,)) if end is not None else len(keys)
        return self._list(
            request,
            keys,
            lo,
            max(lo, hi),
            descending=False,
            plural="satisfaction_ratings",
            render=lambda k: self.render_rating(self.ratings[k[1]], request),
        )

    @route("GET", r"/api/v2/organizations(?:\.json)?", name="list_organizations")
    def list_organizations(self, request: httpx.Request) -> httpx.Response:
        ids = self._org_ids
        return self._list(
            request,
            ids,
            0,
            len(ids),
            descending=False,
            plural="organizations",
            render=lambda i: self.render_org(self.orgs[i], request),
        )

    # ------------------------------------------------------------------ single records

    @route("GET", r"/api/v2/users/me(?:\.json)?")
    def users_me(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"user": self.render_user(self.users[self.admin_id], request)})

    @route("GET", r"/api/v2/tickets/(?P<ticket_id>\d+)(?:\.json)?")
    def show_ticket(self, request: httpx.Request, ticket_id: str) -> httpx.Response:
        ticket = self.tickets.get(int(ticket_id))
        if ticket is None:
            return self._record_not_found()
        return json_response(200, {"ticket": self.render_ticket(ticket, request)})

    @route("GET", r"/api/v2/tickets/(?P<ticket_id>\d+)/metrics(?:\.json)?")
    def show_ticket_metrics(self, request: httpx.Request, ticket_id: str) -> httpx.Response:
        ticket = self.tickets.get(int(ticket_id))
        if ticket is None:
            return self._record_not_found()
        return json_response(200, {"ticket_metric": self.render_metric(ticket, request)})

    @route("GET", r"/api/v2/ticket_metrics/(?P<metric_id>\d+)(?:\.json)?")
    def show_metric(self, request: httpx.Request, metric_id: str) -> httpx.Response:
        ticket = self.tickets.get(int(metric_id) - METRIC_BASE)
        if ticket is None:
            return self._record_not_found()
        return json_response(200, {"ticket_metric": self.render_metric(ticket, request)})

    @route("GET", r"/api/v2/satisfaction_ratings/(?P<rating_id>\d+)(?:\.json)?")
    def show_rating(self, request: httpx.Request, rating_id: str) -> httpx.Response:
        rating = self.ratings.get(int(rating_id))
        if rating is None:
            return self._record_not_found()
        return json_response(200, {"satisfaction_rating": self.render_rating(rating, request)})

    @route("GET", r"/api/v2/organizations/(?P<org_id>\d+)(?:\.json)?")
    def show_organization(self, request: httpx.Request, org_id: str) -> httpx.Response:
        org = self.orgs.get(int(org_id))
        if org is None:
            return self._record_not_found()
        return json_response(200, {"organization": self.render_org(org, request)})

    @route("POST", r"/api/v2/tickets(?:\.json)?")
    def create_ticket(self, request: httpx.Request) -> httpx.Response:
        try:
            payload = request_json(request) or {}
        except ValueError:
            return self.error(400, "InvalidJSON", "The request body is not valid JSON")
        data = payload.get("ticket") if isinstance(payload, dict) else None
        details: dict[str, list[dict[str, str]]] = {}
        if not isinstance(data, dict):
            data = {}
            details["ticket"] = [{"description": "Ticket: is required", "error": "BlankValue"}]
        comment = data.get("comment") or {}
        body = comment.get("body") if isinstance(comment, dict) else comment
        if not (body or data.get("description")):
            details["description"] = [
                {"description": "Description: cannot be blank", "error": "BlankValue"}
            ]
        requester = data.get("requester_id") or self.admin_id
        if requester not in self.users:
            details["requester"] = [
                {"description": "Requester: is invalid", "error": "InvalidValue"}
            ]
        priority = data.get("priority") or "normal"
        if priority not in _PRIORITIES:
            details["priority"] = [
                {"description": f"Priority: {priority} is not valid", "error": "InvalidValue"}
            ]
        if details:
            return self.error(422, "RecordInvalid", "Record validation errors", details=details)
        user = self.users[requester]
        org_id = data.get("organization_id") or user.org_id
        org = self.orgs.get(org_id) if org_id else None
        now = self.world.clock.ts()
        t = _Ticket()
        t.id = len(self.tickets) + 1
        t.company_key = org.company_key if org else -1
        t.org_id = org_id
        t.requester_id = requester
        t.assignee_id = data.get("assignee_id")
        t.type = data.get("type") or "question"
        t.subject = data.get("subject") or str(body)[:60]
        t.priority = priority
        t.status = data.get("status") or "new"
        t.tags = list(data.get("tags") or [])
        t.channel = "api"
        t.created = t.updated = t.status_updated = now
        self.tickets[t.id] = t
        if org:
            self._tickets_by_company.setdefault(org.company_key, []).append(t.id)
        if t.status in ("new", "open", "pending"):
            self._open.add(t.id)
        bisect.insort(self._ticket_keys, (t.updated, t.id))
        return json_response(201, {"ticket": self.render_ticket(t, request)})
