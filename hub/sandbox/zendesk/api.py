"""Zendesk fake: the ``ZendeskAPI`` class (state and test helpers) assembled from its parts."""

from __future__ import annotations

import bisect
import threading
from typing import Any

from hub.sandbox.base import (
    FakeAPI,
    SlidingWindow,
)
from hub.sandbox.zendesk.exports import _Exports
from hub.sandbox.zendesk.guard import _Guard
from hub.sandbox.zendesk.orgfields import Job, OrgField, _OrgFields
from hub.sandbox.zendesk.records import (
    CLIENT_ERRORS,
    RATING_BASE,
    USER_BASE,
    WINDOW_SECONDS,
    _Org,
    _Rating,
    _Ticket,
    _User,
)
from hub.sandbox.zendesk.rendering import _Rendering
from hub.sandbox.zendesk.routes import _Routes
from hub.sandbox.zendesk.seeding import _Seeding
from hub.sandbox.zendesk.simulation import _Simulation


class ZendeskAPI(_OrgFields, _Routes, _Exports, _Guard, _Rendering, _Simulation, _Seeding, FakeAPI):
    """Fake Zendesk Support API over the world's companies (organizations, users, tickets,
    ticket metrics, satisfaction ratings)."""

    name = "zendesk"
    seed_rank = 1
    prefixes = ("/api/v2/",)
    fault_kinds = frozenset({*CLIENT_ERRORS, "cursor_expired"})

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
        self._org_fields: dict[int, OrgField] = {}
        self._org_values: dict[int, dict[str, Any]] = {}  # org id -> field key -> value
        self._jobs: dict[str, Job] = {}  # bulk-update jobs by id

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
