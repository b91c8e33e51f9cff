"""CSM touches: the calls, e-mails, meetings and notes logged on a company → ``csm_touch``.

Reads the HubSpot activity streams (``calls``, ``emails``, ``meetings``, ``notes``: CRM
objects with their company associations). Each activity on a company is one ``csm_touch``
event at its ``hs_timestamp`` (a meeting at its start), on the first associated company (an
activity linked to contacts only: the first contact's company, ``associatedcompanyid``), with
attrs ``type`` (call | email | meeting | note), ``direction`` (outbound | inbound | two_way |
internal), ``two_way`` (the customer took part: a connected or inbound call, a held
meeting, an e-mail from the customer), ``owner`` (the HubSpot owner id) and ``owner_name``.

What is not a touch: an e-mail that bounced or failed, a meeting cancelled or missed
(``NO_SHOW``), an activity on no company (directly or through a contact). An outbound call
that did not connect is a one-way touch. Ids are ``hubspot:csm_touch:<activity id>:<type>``
(HubSpot numbers each object type on its own); an activity changed or deleted is re-read and
its event follows (a contact that later moves company does not move its activities until
``hub map --full``).
"""

from __future__ import annotations

from typing import Any

from hub import clock
from hub.timeline import MappingContext
from mappings.hubspot.records import LINK, company_key

TOUCH_STREAMS = {"calls": "call", "emails": "email", "meetings": "meeting", "notes": "note"}
# HubSpot's default call outcome "Connected" (outcomes are GUIDs; the others are attempts).
CALL_CONNECTED = "f240bbac-87c9-4f6e-bf70-924b57d47db7"
_OBJECT_TYPE = {"call": "0-48", "email": "0-49", "meeting": "0-47", "note": "0-46"}


def _clip(text: Any, limit: int = 80) -> str:
    value = " ".join(str(text or "").split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def classify(kind: str, props: dict[str, Any]) -> tuple[str, bool, str] | None:
    """(direction, two_way, what happened) of one activity, or None when it is no touch."""
    if kind == "call":
        direction = (
            "inbound" if str(props.get("hs_call_direction")).upper() == "INBOUND" else "outbound"
        )
        status = str(props.get("hs_call_status") or "").upper()
        if status in ("CANCELED", "QUEUED"):
            return None
        outcome = props.get("hs_call_disposition")
        duration = float(props.get("hs_call_duration") or 0)
        connected = outcome == CALL_CONNECTED or (
            not outcome and status == "COMPLETED" and duration > 0
        )
        minutes = f", {round(duration / 60000)} min" if connected and duration >= 60000 else ""
        # The customer took part: the call connected, or the customer was the one calling.
        return (
            direction,
            connected or direction == "inbound",
            f"{direction} call, " + ("connected" if connected else "not connected") + minutes,
        )
    if kind == "email":
        if str(props.get("hs_email_status") or "").upper() in ("BOUNCED", "FAILED"):
            return None
        way = str(props.get("hs_email_direction") or "EMAIL").upper()
        if way == "INCOMING_EMAIL":
            return "inbound", True, "e-mail from the customer"
        if way == "FORWARDED_EMAIL":
            return "internal", False, "e-mail forwarded"
        return "outbound", False, "e-mail to the customer"
    if kind == "meeting":
        outcome = str(props.get("hs_meeting_outcome") or "SCHEDULED").upper()
        if outcome in ("CANCELED", "NO_SHOW"):
            return None
        held = outcome == "COMPLETED"
        return (
            ("two_way" if held else "outbound"),
            held,
            ("meeting held" if held else f"meeting {outcome.lower()}"),
        )
    return "internal", False, "note"


def _contact_companies(ctx: MappingContext, contacts: list[Any]) -> list[str]:
    """The company of the first linked contact that has one (``associatedcompanyid``): an
    activity logged on a person, not on the company, still belongs to the account."""
    for contact in contacts:
        record = ctx.raw("contacts", contact) or {}
        company = (record.get("properties") or {}).get("associatedcompanyid")
        if company:
            return [str(company)]
    return []


def map_touch(ctx: MappingContext, stream: str, row: dict[str, Any], owner_name: Any) -> None:
    """One activity row → its ``csm_touch`` event (the row owns it: a change or a tombstone
    replaces or retracts it)."""
    if row.get("deleted"):
        return
    kind = TOUCH_STREAMS[stream]
    data = row.get("data") or {}
    props = data.get("properties") or {}
    links = data.get("associations") or {}
    companies = [str(c) for c in links.get("companies") or []]
    if not companies:
        companies = _contact_companies(ctx, links.get("contacts") or [])
    verdict = classify(kind, props)
    when = (
        (props.get("hs_meeting_start_time") if kind == "meeting" else None)
        or props.get("hs_timestamp")
        or props.get("hs_createdate")
        or data.get("createdAt")
    )
    if not companies or verdict is None or clock.parse(when) is None:
        return
    direction, two_way, what = verdict
    owner = str(props.get("hubspot_owner_id") or "") or None
    name = owner_name(ctx.raw("owners", owner)) if owner else None
    title = _clip(
        props.get("hs_call_title")
        or props.get("hs_email_subject")
        or props.get("hs_meeting_title")
        or props.get("hs_note_body")
    )
    summary = (
        what[0].upper()
        + what[1:]
        + (f" by {name}" if name else "")
        + (f": {title}" if title else "")
    )
    ctx.event(
        company_key(companies[0]),
        "csm_touch",
        when,
        source_id=row["id"],
        version=kind,
        summary=summary,
        attrs={
            "type": kind,
            "direction": direction,
            "two_way": two_way,
            "owner": owner,
            "owner_name": name,
            "activity_id": str(row["id"]),
        },
        link=LINK.format(type=_OBJECT_TYPE[kind], id=row["id"]),
    )
