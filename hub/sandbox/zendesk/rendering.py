"""Zendesk fake: rendering records in Zendesk's shapes."""

from __future__ import annotations

from typing import Any

import httpx

from hub.sandbox.base import (
    base_url,
)
from hub.sandbox.zendesk.records import (
    BRAND_ID,
    GROUP_ID,
    METRIC_BASE,
    _iso,
    _Org,
    _Rating,
    _Ticket,
    _User,
)


class _Rendering:
    """Render records in Zendesk's JSON shapes."""

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
            "organization_fields": self.org_field_values(o.id),
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
