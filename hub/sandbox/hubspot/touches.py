"""HubSpot fake: the CSM's logged touches (calls, e-mails, meetings, notes) per archetype.

The world's relationship signal. Each live company with an owner gets about 90 days of
activities logged by its owner, associated with the company and its first contact; how often
and how two-way they are follows the archetype, so neglected accounts drift:

==========  ==================  =========  ===================================
archetype   mean gap (days)     two-way    last two-way touch at seed
==========  ==================  =========  ===================================
expanding   9                   70%        recent
healthy     14                  60%        recent
slipping    30                  40%        pushed back to 20–45 days ago
at_risk     45                  25%        pushed back to 45–90 days ago
churned     none in 60 days     20%        60+ days ago
==========  ==================  =========  ===================================

Two-way means the customer took part: an inbound or connected call, an incoming e-mail, a
completed meeting. Outbound e-mails, unanswered calls, no-shows and notes are one-way.
``notes_last_contacted`` on the company is its latest call, e-mail or meeting, as HubSpot
computes it. ``advance`` keeps logging at the same rates.
"""

from __future__ import annotations

from typing import Any

from hub.sandbox.base import rng_for
from hub.sandbox.hubspot.activities import CALL_CONNECTED, CALL_DISPOSITIONS
from hub.sandbox.hubspot.common import BLOCKS, TOUCH_BLOCK, _Obj, _remember
from hub.sandbox.hubspot.schema import ASSOC_TYPES, REVERSE_TYPE, iso_ms, to_ms

DAY_MS = 86_400_000
HISTORY_DAYS = 90
# archetype -> (mean days between touches, share two-way, last two-way at least N days ago)
PACE: dict[str, tuple[float, float, int]] = {
    "expanding": (9.0, 0.7, 0),
    "healthy": (14.0, 0.6, 0),
    "slipping": (30.0, 0.4, 20),
    "at_risk": (45.0, 0.25, 45),
    "churned": (60.0, 0.2, 60),
}
_SUBJECTS = {
    "calls": ["Check-in call", "Renewal call", "Onboarding follow-up", "Usage review"],
    "emails": [
        "Quick check-in",
        "Your quarterly review",
        "New features this month",
        "Re: question",
    ],
    "meetings": ["Quarterly business review", "Roadmap session", "Training", "Kick-off"],
    "notes": ["Account notes", "Internal: risk review", "Champion update"],
}
_KINDS = ("emails", "emails", "calls", "calls", "meetings", "notes")
_TICKETS = [
    "Cannot log in",
    "Widget not loading",
    "Invoice question",
    "Export fails",
    "Slow dashboard",
]


class _Touches:
    """Seed and advance the CSM's logged activities."""

    def _touch_props(
        self, rng: Any, kind: str, at: int, two_way: bool, owner: str, name: str
    ) -> dict[str, str]:
        subject = _SUBJECTS[kind][int(rng.random() * len(_SUBJECTS[kind]))]
        props = {"hs_timestamp": iso_ms(at), "hubspot_owner_id": owner}
        if kind == "calls":
            props.update(
                hs_call_title=f"{subject} with {name}",
                hs_call_body=f"{subject}.",
                hs_call_direction="INBOUND" if two_way and rng.random() < 0.3 else "OUTBOUND",
                hs_call_disposition=CALL_CONNECTED
                if two_way
                else CALL_DISPOSITIONS[3 + int(rng.random() * 2)],
                hs_call_status="COMPLETED",
                hs_call_duration=str(int(60_000 + rng.random() * 1_800_000) if two_way else 0),
            )
        elif kind == "emails":
            props.update(
                hs_email_subject=subject,
                hs_email_text=f"{subject} — {name}",
                hs_email_direction="INCOMING_EMAIL" if two_way else "EMAIL",
                hs_email_status="SENT",
            )
        elif kind == "meetings":
            props.update(
                hs_meeting_title=f"{subject}: {name}",
                hs_meeting_body=f"{subject}.",
                hs_meeting_start_time=iso_ms(at),
                hs_meeting_end_time=iso_ms(at + 45 * 60_000),
                hs_meeting_outcome="COMPLETED" if two_way else rng.choice(["NO_SHOW", "CANCELED"]),
            )
        else:
            props["hs_note_body"] = f"{subject}: {name}."
        return props

    def _log_touch(
        self, kind: str, props: dict[str, str], at: int, company_id: int, contact_id: int | None
    ) -> None:
        """Store one activity logged after seeding (``advance``), as the API would."""
        obj = self._insert(kind, props, at, at)
        for to, to_id in (("companies", company_id), ("contacts", contact_id)):
            if to_id is not None:
                self._associate(kind, obj.id, to, to_id, (ASSOC_TYPES[(kind, to)][0],))
        if kind != "notes":
            company = self._store["companies"][company_id]
            last = company.props.get("notes_last_contacted")
            stamp = props["hs_timestamp"]
            if last is None or last < stamp:  # same-format ISO text sorts by time
                self._apply("companies", company, {"notes_last_contacted": stamp}, at, "CALCULATED")

    def _touch_targets(self) -> list[tuple[Any, int, int | None]]:
        out = []
        for company in self.world.companies:
            cid = self._company_ids[company.key]
            obj = self._live("companies", cid)
            if obj is None or obj.id != cid or not company.owner_id:
                continue
            contacts = self._links("companies", cid, "contacts")
            out.append((company, cid, contacts[0][0] if contacts else None))
        return out

    def _company_touches(
        self, rng: Any, company: Any, account: _Obj, contact: int, put: Any
    ) -> None:
        """About 90 days of a company's touches, logged by its owner on the company and its
        first contact, at the archetype's pace (``PACE``); ids in time order in its block."""
        rand = rng.random
        start = to_ms(self.world.start)
        gap, share, quiet = PACE[company.archetype]
        churned = company.archetype == "churned"
        events: list[tuple[int, str, bool]] = []
        at = start - int(rand() * gap * DAY_MS * 0.5)
        floor = start - HISTORY_DAYS * DAY_MS
        while at > floor:
            kind = _KINDS[int(rand() * len(_KINDS))]
            two_way = kind != "notes" and rand() < share
            age_days = (start - at) / DAY_MS
            if two_way and age_days < quiet:
                two_way = False  # the drift: the customer stopped answering (churned: gone)
            if not churned or age_days >= quiet:
                events.append((at, kind, two_way))
            at -= int((0.5 + rand()) * gap * DAY_MS)
        base = TOUCH_BLOCK[0] + company.key * TOUCH_BLOCK[1]
        assoc = self._assoc
        last_contacted = None
        for j, (at, kind, two_way) in enumerate(sorted(events)[: TOUCH_BLOCK[1]]):
            props = self._touch_props(rng, kind, at, two_way, company.owner_id, company.name)
            oid = base + j
            put(kind, _Obj(oid, props, at, at))
            for to, to_id in (("companies", account.id), ("contacts", contact)):
                type_id = ASSOC_TYPES[(kind, to)][0]
                assoc[(kind, to)].setdefault(oid, {})[to_id] = (type_id,)
                assoc[(to, kind)].setdefault(to_id, {})[oid] = (REVERSE_TYPE[type_id],)
            if kind != "notes":
                last_contacted = props["hs_timestamp"]  # events are in time order
        if last_contacted is not None:
            account.props["notes_last_contacted"] = last_contacted

    def _seed_owner_history(self, company: Any, account: _Obj) -> None:
        """Books change hands: one company in eleven had another owner until 20–150 days ago
        (``propertiesWithHistory`` shows the change; the world's ``owner_id`` is the current)."""
        owners = [o["id"] for o in self.world.owners]
        if company.key % 11 != 5 or not company.owner_id or len(owners) < 2:
            return
        before = owners[(owners.index(company.owner_id) + 1 + company.key) % len(owners)]
        if before == company.owner_id:
            return
        start = to_ms(self.world.start)
        at = max(account.created + DAY_MS, start - (20 + company.key % 131) * DAY_MS)
        _remember(account, "hubspot_owner_id", before, company.owner_id, at, "CRM_UI")

    def _company_tickets(self, rng: Any, company: Any, cid: int, put: Any) -> None:
        """A few HubSpot tickets (support the CSM sees in the CRM): troubled accounts have open
        ones, the others mostly closed; each with its primary company."""
        rand = rng.random
        start = to_ms(self.world.start)
        ids = ASSOC_TYPES[("tickets", "companies")]
        troubled = company.archetype in ("at_risk", "slipping")
        count = (2 if company.archetype == "at_risk" else 1) if troubled else int(rand() < 0.3)
        base = BLOCKS["tickets"][0] + company.key * BLOCKS["tickets"][1]
        for j in range(count):
            at = start - int((1 + rand() * 59) * DAY_MS)
            open_ = troubled and rand() < 0.7
            props = {
                "subject": _TICKETS[int(rand() * len(_TICKETS))],
                "content": f"Reported by {company.name}.",
                "hs_pipeline": "0",
                "hs_pipeline_stage": ("1" if rand() < 0.5 else "3") if open_ else "4",
                "hs_ticket_priority": "HIGH" if open_ else "MEDIUM",
                "hubspot_owner_id": company.owner_id,
            }
            if not open_:
                props["closed_date"] = iso_ms(min(start, at + int(rand() * 5 + 1) * DAY_MS))
            oid = base + j
            put("tickets", _Obj(oid, props, at, at))
            self._assoc[("tickets", "companies")][oid] = {cid: (ids[0], ids[1])}
            back = self._assoc[("companies", "tickets")].setdefault(cid, {})
            back[oid] = (REVERSE_TYPE[ids[0]], REVERSE_TYPE[ids[1]])

    def _advance_touches(self, t0: int, width: int, day_index: int) -> None:
        rng = rng_for(self.world.seed, "hubspot", "touches", day_index)
        rand = rng.random
        for company, cid, contact in self._touch_targets():
            gap, share, _ = PACE[company.archetype]
            if company.archetype == "churned" or rand() >= 1 / gap:
                continue
            kind = _KINDS[int(rand() * len(_KINDS))]
            two_way = kind != "notes" and rand() < share
            at = t0 + int(rand() * width)
            props = self._touch_props(rng, kind, at, two_way, company.owner_id, company.name)
            self._log_touch(kind, props, at, cid, contact)
