"""Zendesk fake: id ranges, limits, client-error table, word lists, the seeded random helper and the slotted records."""

from __future__ import annotations

import base64
import bisect
import random
import time
from typing import Any

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
