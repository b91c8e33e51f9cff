"""Words for CSMs: a trigger becomes a task row (subject, body, due date, evidence).

Bodies are plain text in a small, fixed shape that every CRM pusher can render as its own
rich text: paragraphs separated by a blank line, ``Heading:`` lines, ``- `` bullet lines,
and links in parentheses. Sections with nothing in them are left out (a task never says
"Evidence: (no events)"), counts agree with their nouns ("1 task", "2 tasks") and machine
codes become words ("missing_features" → "missing features").
"""

from __future__ import annotations

import datetime as dt
import re
import string
import zoneinfo
from typing import Any

from hub import clock
from hub.playbooks.outbox import task_id_for
from hub.playbooks.rules import PRIORITIES, Playbook, PlaybookContext, Trigger
from hub.playbooks.settings import PlaybooksSection
from hub.text import humanize, money, plural


def due_at(now: dt.datetime, days: int, section: PlaybooksSection) -> dt.datetime:
    """``days`` after today, at ``due_hour`` local time (``timezone``), as aware UTC."""
    zone = zoneinfo.ZoneInfo(section.timezone)
    local = now.astimezone(zone).date() + dt.timedelta(days=days)
    when = dt.datetime(local.year, local.month, local.day, section.due_hour, tzinfo=zone)
    return when.astimezone(dt.timezone.utc)


def evidence_section(evidence: list[dict[str, Any]], moved: list[dict[str, Any]]) -> str:
    """ "Evidence:" with one line per event and per measure that moved; "" when none."""
    lines = [_event_line(e) for e in evidence]
    lines += [_moved_line(m) for m in moved]
    return "Evidence:\n" + "\n".join(lines) if lines else ""


def health_section(health: dict[str, Any]) -> str:
    """Score, band, trend and drivers in one section; "" when the account is not scored."""
    if health.get("score") is None and not health.get("band"):
        return ""
    head = f"Health: {_blank(health.get('score'))} ({health.get('band') or 'not scored'})"
    trend = health.get("trend_7d")
    if trend is not None:
        head += f", {_signed(trend)} in 7 days"
    drivers = [str(d) for d in health.get("drivers") or [] if d]
    if not drivers:
        return head + "."
    return head + ". What drives it:\n" + "\n".join(f"- {d}" for d in drivers)


def render_task(
    playbook: Playbook,
    trigger: Trigger,
    ctx: PlaybookContext,
    section: PlaybooksSection,
) -> dict[str, Any]:
    """Turn a trigger into a ``tasks`` row: templates filled, owner, due date, evidence."""
    account = ctx.accounts[trigger.account_id]
    health = ctx.health.get(trigger.account_id) or {}
    events = [
        {k: e.get(k) for k in ("id", "type", "ts", "summary", "link")}
        for e in trigger.evidence[: section.evidence_limit]
    ]
    moved = [dict(m) for m in trigger.moved]
    values: dict[str, Any] = {
        "account_name": account.get("name") or trigger.account_id,
        "account_id": trigger.account_id,
        "domain": account.get("domain") or "",
        "owner_name": account.get("owner_name") or "",
        "score": _blank(health.get("score")),
        "band": health.get("band") or "not scored",
        "trend_7d": _signed(health.get("trend_7d")),
        "trend_30d": _signed(health.get("trend_30d")),
        "mrr": money(account.get("mrr"), missing=""),
        "seats": _blank(account.get("seats")),
        "renewal_date": (account.get("renewal_date") or "")[:10],
        "drivers": health_section(health),
        "evidence": evidence_section(events, moved),
        "detail": trigger.detail,
        "reason": humanize(trigger.reason),
        "playbook": playbook.name,
        **{k: playbook.settings[k] for k in playbook.options},
        **trigger.values,
    }
    subject = _fill(playbook.settings["subject"], values).strip()[:250]
    body = tidy(_fill(playbook.settings["body"], values))
    created = clock.iso(ctx.now)
    return {
        "id": task_id_for(trigger.account_id, playbook.name, trigger.reason, created),
        "account_id": trigger.account_id,
        "playbook": playbook.name,
        "reason": trigger.reason,
        "status": "open",
        "subject": subject,
        "body": body,
        "priority": playbook.settings["priority"],
        "due_at": clock.iso(due_at(ctx.now, int(playbook.settings["due_in_days"]), section)),
        "owner_id": account.get("owner_id"),
        "evidence": [*events, *({"type": "measure", **m} for m in moved)],
        "reasons": [
            {
                "playbook": playbook.name,
                "reason": trigger.reason,
                "title": playbook.title or humanize(playbook.name),
                "detail": trigger.detail,
            }
        ],
        "remote_id": None,
        "target": None,
        "created_at": created,
        "pushed_at": None,
        "completed_at": None,
        "snoozed_until": None,
        "_health": health_section(health),
        "_own_body": tidy(_fill(playbook.settings["body"], {**values, "drivers": ""})),
    }


def merge_rows(rows: list[dict[str, Any]], account_name: str) -> dict[str, Any]:
    """Several findings for one account in one run → one task listing every reason.

    The most urgent finding leads (priority, then the earliest due date): its playbook and
    reason are the row's own, its priority and due date the task's; every finding keeps its
    own paragraph and evidence; the health section appears once, at the end.
    """
    if len(rows) == 1:
        return _public(rows[0])
    ordered = sorted(
        rows, key=lambda r: (-PRIORITIES.index(r["priority"]), r["due_at"], r["playbook"])
    )
    lead = dict(ordered[0])
    titles = [r["reasons"][0]["title"] for r in ordered]
    # One sentence: the titles after the first lose their capital ("Payment failed and no
    # recent two-way touch"), acronyms ("MRR dropped") keep theirs.
    titles = titles[:1] + [_mid_sentence(t) for t in titles[1:]]
    lead["subject"] = f"{account_name}: {_join(titles)}"[:250]
    summary = [f"{plural(len(rows), 'reason')} to follow up with {account_name}:"]
    summary += [f"- {r['reasons'][0]['title']}: {r['reasons'][0]['detail']}" for r in ordered]
    parts = ["\n".join(summary)]
    for r in ordered:
        parts.append(f"{r['reasons'][0]['title']}:\n{r['_own_body']}")
    if lead["_health"]:
        parts.append(lead["_health"])
    lead["body"] = tidy("\n\n".join(parts))
    lead["reasons"] = [r["reasons"][0] for r in ordered]
    lead["evidence"] = [e for r in ordered for e in r["evidence"]]
    lead["due_at"] = min(r["due_at"] for r in ordered)
    return _public(lead)


def tidy(text: str) -> str:
    """Collapse the blank lines an empty section leaves behind; strip the ends."""
    # An empty placeholder inside a sentence leaves two spaces: one is enough.
    lines = [
        re.sub(r"(?<=\S) {2,}(?=\S)", " ", line.rstrip()) for line in text.strip().splitlines()
    ]
    out: list[str] = []
    for line in lines:
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    return "\n".join(out).strip()


# -- helpers ------------------------------------------------------------------------------------


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _mid_sentence(title: str) -> str:
    if len(title) > 1 and title[0].isupper() and not title[1].isupper():
        return title[0].lower() + title[1:]
    return title


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


class _Placeholders(dict):
    def __missing__(self, key: str) -> str:  # pragma: no cover - validated at load time
        return "{" + key + "}"


def _fill(template: str, values: dict[str, Any]) -> str:
    return string.Formatter().vformat(template, (), _Placeholders(values))


def _blank(value: Any) -> str:
    return "" if value is None else str(value)


def _signed(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{int(value):+d}"


def _event_line(event: dict[str, Any]) -> str:
    day = str(event.get("ts") or "")[:10]
    text = event.get("summary") or humanize(event.get("type"))
    link = event.get("link")
    return f"- {day} {text}".replace("-  ", "- ") + (f" ({link})" if link else "")


def _moved_line(moved: dict[str, Any]) -> str:
    label = moved.get("label") or humanize(moved.get("name")).capitalize()
    return f"- {label}: {_num(moved.get('before'))} → {_num(moved.get('after'))}"


def _num(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "no data"
    return str(int(number)) if number == int(number) else f"{number:.1f}"
