"""Playbooks on product signals: a competitor on the site, our widget removed, no first
value yet, a burst of marketing unsubscribes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from hub import clock
from hub.playbooks import STANDARD_BODY_TAIL, Playbook, PlaybookContext, Trigger
from plugins.playbooks.common import day, fact_evidence, newest_first


class CompetitorDetected(Playbook):
    """A competitor's technology is on the customer's site now.

    It fires for a detection within ``lookback_days``, and, on an account's first scoring,
    for every competitor present then whatever its detection date (one task each).
    """

    name = "competitor_detected"
    title = "Competitor detected"
    kind = "presence"
    options = {"lookback_days": 30, "competitors": []}
    subject = "{technology} detected on {account_name}'s site"
    body = (
        "{technology} is on {domain} since {detected_on}. "
        "Find out whether they are evaluating a switch." + STANDARD_BODY_TAIL
    )
    placeholders = ("technology", "detected_on")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        watch = {c.lower() for c in self.opt("competitors")}
        recent = ctx.since(self.opt("lookback_days"))
        detected = ctx.events(["competitor_detected"])
        removed = ctx.events(["competitor_removed"])
        for account_id in ctx.accounts:
            latest: dict[str, dict[str, Any]] = {}
            for event in detected.get(account_id, []):
                latest[str(event["attrs"].get("technology") or "unknown")] = event
            present = ctx.fact(account_id, "competitors")
            if isinstance(present, list):
                names = {str(n) for n in present}
                latest = {t: e for t, e in latest.items() if t in names}
                for name in names - set(latest):
                    latest[name] = {}
            baseline = ctx.is_baseline(account_id)
            for tech, event in sorted(latest.items()):
                if watch and tech.lower() not in watch:
                    continue
                since = str(event.get("ts") or "")
                if any(
                    str(r["attrs"].get("technology")) == tech and r["ts"] >= since
                    for r in removed.get(account_id, [])
                ):
                    continue
                if not baseline and (not since or since < recent):
                    continue  # present for a while: it opened its task when it appeared
                evidence = [event] if event else [fact_evidence(f"{tech} is on the site now")]
                yield Trigger(
                    account_id,
                    reason=f"competitor {tech.lower()}",
                    detail=f"{tech} on the site"
                    + (f" since {day(since)}" if since else " (detection date unknown)"),
                    evidence=evidence,
                    values={"technology": tech, "detected_on": day(since) or "an unknown date"},
                )


class WidgetRemoved(Playbook):
    """Our widget disappeared from the customer's site (and did not come back)."""

    name = "widget_removed"
    title = "Our widget removed"
    options = {"lookback_days": 30}
    defaults = {"priority": "HIGH"}
    subject = "Our widget was removed from {domain}"
    body = (
        "{technology} is no longer on {domain} (since {removed_on}). "
        "Check whether {account_name} still uses the product." + STANDARD_BODY_TAIL
    )
    placeholders = ("technology", "removed_on")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        days = self.opt("lookback_days")
        removed = ctx.events(["widget_removed"], days=days)
        detected = ctx.events(["widget_detected"], days=days)
        for account_id, events in removed.items():
            last = events[-1]
            if any(d["ts"] >= last["ts"] for d in detected.get(account_id, [])):
                continue
            if ctx.fact(account_id, "widget_present") is True:
                continue
            yield Trigger(
                account_id,
                reason="widget_removed",
                detail=f"our widget disappeared from the site on {day(last['ts'])}",
                evidence=[last],
                values={
                    "technology": last["attrs"].get("technology") or "our widget",
                    "removed_on": day(last["ts"]),
                },
            )


class NoFirstValue(Playbook):
    """``after_days`` after a subscription started, the first-value event has not happened.

    First value is, by default, our widget detected on the customer's site after the start
    (``first_value_event = "widget_detected"``); any event type can be configured.
    """

    name = "no_first_value"
    title = "No first value yet"
    options = {"after_days": 14, "max_age_days": 90, "first_value_event": "widget_detected"}
    subject = "No first value after {days_since_start} days: {account_name}"
    body = (
        "{account_name} started on {started_on} ({days_since_start} days ago) and there is "
        "no {first_value_event} yet. Help them get set up." + STANDARD_BODY_TAIL
    )
    placeholders = ("days_since_start", "started_on")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        max_age = max(self.opt("max_age_days"), self.opt("after_days"))
        latest_start = clock.iso(ctx.now - dt.timedelta(days=self.opt("after_days")))
        starts = ctx.events(["subscription_started"], days=max_age)
        value = ctx.events([self.opt("first_value_event")], days=max_age)
        cancels = ctx.events(["subscription_cancelled"], days=max_age)
        for account_id, events in starts.items():
            ripe = [e for e in events if e["ts"] <= latest_start]
            if not ripe:
                continue
            start = ripe[-1]
            if any(v["ts"] >= start["ts"] for v in value.get(account_id, [])):
                continue
            if any(c["ts"] >= start["ts"] for c in cancels.get(account_id, [])):
                continue  # they left: churn_followup covers it
            age = (ctx.now - clock.parse(start["ts"])).days
            sub = start["attrs"].get("subscription_id") or day(start["ts"])
            first_value = self.opt("first_value_event").replace("_", " ")
            yield Trigger(
                account_id,
                reason=f"first value {sub}",
                detail=f"no {first_value} {age} days after the start",
                evidence=[start],
                values={"days_since_start": age, "started_on": day(start["ts"])},
            )


class UnsubscribeBurst(Playbook):
    """At least ``count`` contacts unsubscribed from marketing email within ``days``."""

    name = "unsubscribe_burst"
    title = "Burst of unsubscribes"
    options = {"count": 3, "days": 14}
    subject = "{unsubscribed} contacts unsubscribed in {days} days: {account_name}"
    body = (
        "{unsubscribed} contacts at {account_name} unsubscribed from our email in the last "
        "{days} days. Check what they were sent and whether something is wrong."
        + STANDARD_BODY_TAIL
    )
    placeholders = ("unsubscribed",)

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        days = self.opt("days")
        for account_id, events in ctx.events(["contact_unsubscribed"], days=days).items():
            if len(events) < self.opt("count"):
                continue
            yield Trigger(
                account_id,
                reason="unsubscribe_burst",
                detail=f"{len(events)} contacts unsubscribed in {days} days",
                evidence=newest_first(events),
                values={"unsubscribed": len(events)},
            )
