"""The built-in playbooks: the follow-ups a CSM should get from the hub's signals.

Each class is one rule over health scores (``health_scores``, ``health_history``), account
facts and timeline events (names from ``hub.vocabulary``). Every one is configured in hub.toml
``[playbooks.<name>]`` (``enabled``, ``due_in_days``, ``priority``, ``snooze_days``,
``subject``, ``body`` and the thresholds listed in its ``options``) and can be switched off.

Reasons (the dedupe key within account + playbook) are stable for conditions that persist
("red", "score_drop") so a condition opens one task however long it lasts, and specific for
distinct problems ("invoice in_123", "card 2026-12", "competitor intercom") so a new problem
gets its own task even while an older one is snoozed.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator
from typing import Any

import hub
from hub import clock
from hub.playbooks import STANDARD_BODY_TAIL, Playbook, PlaybookContext, Trigger


def _money(value: Any) -> str:
    try:
        return f"${float(value):,.2f}"
    except (TypeError, ValueError):
        return "an unknown amount"


def _day(ts: str | None) -> str:
    return str(ts or "")[:10]


def _newest_first(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: (e["ts"], e["id"]), reverse=True)


class BandRed(Playbook):
    """The health band changed to red (within ``within_days``)."""

    name = "band_red"
    title = "Health band turned red"
    options = {"within_days": 7, "include_new": True}
    defaults = {"priority": "HIGH", "due_in_days": 2}
    subject = "Health turned red: {account_name}"
    body = (
        "{account_name}'s health score is {score} (red) since {changed_on}; "
        "it was {previous_band} before." + STANDARD_BODY_TAIL
    )
    placeholders = ("previous_band", "changed_on")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        within = self.opt("within_days")
        for account_id, health in ctx.health.items():
            if health.get("band") != "red":
                continue
            history = ctx.history(account_id)
            previous, changed_on = None, None
            for row in reversed(history):  # newest day first
                if row["band"] != "red":
                    previous = row
                    break
                changed_on = row["day"]
            if previous is None:
                # Red for as long as the hub has known it: only a new account counts.
                if not self.opt("include_new"):
                    continue
                changed_on = changed_on or ctx.today.isoformat()
                previous_band = "not scored"
            else:
                changed_on = changed_on or ctx.today.isoformat()
                previous_band = previous["band"]
            age = -(ctx.days_until(changed_on) or 0)
            if age > within:
                continue
            yield Trigger(
                account_id,
                reason="red",
                detail=f"health turned red on {changed_on[:10]} (was {previous_band})",
                evidence=ctx.recent_trouble(account_id),
                values={"previous_band": previous_band, "changed_on": changed_on[:10]},
            )


class ScoreDrop(Playbook):
    """The score dropped by at least ``points`` within ``days`` (negative dynamics)."""

    name = "score_drop"
    title = "Health score dropped"
    options = {"points": 15, "days": 7}
    subject = "Health score dropped {drop} points: {account_name}"
    body = (
        "{account_name}'s health score fell from {previous_score} to {score} "
        "in {days} days." + STANDARD_BODY_TAIL
    )
    placeholders = ("drop", "previous_score")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        days, points = self.opt("days"), self.opt("points")
        cutoff = (ctx.today - dt.timedelta(days=days)).isoformat()
        for account_id, health in ctx.health.items():
            score = health.get("score")
            if score is None:
                continue
            previous = None
            # Prefer the health engine's own trend (what HubSpot shows) when it matches.
            trend = {7: health.get("trend_7d"), 30: health.get("trend_30d")}.get(days)
            if trend is not None:
                previous = score - trend
            else:
                older = [r for r in ctx.history(account_id) if r["day"][:10] <= cutoff]
                if older and older[-1]["score"] is not None:
                    previous = older[-1]["score"]
            if previous is None or previous - score < points:
                continue
            drop = previous - score
            yield Trigger(
                account_id,
                reason="score_drop",
                detail=f"health score fell {drop} points in {days} days ({previous} → {score})",
                evidence=ctx.recent_trouble(account_id, days=days),
                values={"drop": drop, "previous_score": previous},
            )


class PaymentFailed(Playbook):
    """A payment failed (and the invoice was not paid since)."""

    name = "payment_failed"
    title = "Payment failed"
    options = {"lookback_days": 14, "skip_if_paid": True}
    defaults = {"priority": "HIGH", "due_in_days": 2}
    subject = "Payment failed: {account_name}"
    body = (
        "A payment of {amount} for invoice {invoice_id} failed ({failure_code}, "
        "{attempts} attempt(s)). Check the card with the customer." + STANDARD_BODY_TAIL
    )
    placeholders = ("amount", "invoice_id", "failure_code", "attempts")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        days = self.opt("lookback_days")
        failures = ctx.events(["payment_failed"], days=days)
        paid = ctx.events(["invoice_paid", "invoice_paid_late"], days=days)
        for account_id, events in failures.items():
            # Retries of one invoice are one problem, so one task. Current Stripe charges do
            # not name their invoice; those failures are grouped per account instead of
            # opening a task per charge attempt.
            by_invoice: dict[str, list[dict[str, Any]]] = {}
            for event in events:
                invoice = str(event["attrs"].get("invoice_id") or "")
                by_invoice.setdefault(invoice, []).append(event)
            for invoice, tries in by_invoice.items():
                first, last_ts = tries[0]["ts"], tries[-1]["ts"]
                if self.opt("skip_if_paid") and any(
                    (str(p["attrs"].get("invoice_id")) == invoice and p["ts"] >= first)
                    if invoice
                    else p["ts"] >= last_ts
                    for p in paid.get(account_id, [])
                ):
                    continue
                last = tries[-1]
                attrs = last["attrs"]
                attempts = attrs.get("attempt_count") or len(tries)
                yield Trigger(
                    account_id,
                    reason=f"invoice {invoice}" if invoice else "payments failing",
                    detail=f"payment of {_money(attrs.get('amount'))} failed on {_day(last['ts'])}",
                    evidence=_newest_first(tries),
                    values={
                        "amount": _money(attrs.get("amount")),
                        "invoice_id": invoice or "(not named by Stripe)",
                        "failure_code": attrs.get("failure_code") or "no reason given",
                        "attempts": attempts,
                    },
                )


class CardExpiring(Playbook):
    """The default card expires within ``within_days`` (and was not replaced)."""

    name = "card_expiring"
    title = "Card expiring"
    options = {"within_days": 30, "lookback_days": 60}
    subject = "Card expiring in {days_left} days: {account_name}"
    body = (
        "The card on file for {account_name} expires at the end of {card_expires}. "
        "Ask billing to update it before the next invoice." + STANDARD_BODY_TAIL
    )
    placeholders = ("days_left", "card_expires")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        events = ctx.events(["card_expiring"], days=self.opt("lookback_days"))
        for account_id in ctx.accounts:
            fact = ctx.fact(account_id, "card_expires")
            evidence = events.get(account_id, [])
            card = None
            if evidence:
                attrs = evidence[-1]["attrs"]
                if attrs.get("exp_year") and attrs.get("exp_month"):
                    card = f"{int(attrs['exp_year']):04d}-{int(attrs['exp_month']):02d}"
            if card is None:
                card = str(fact)[:7] if fact else None
            elif fact and str(fact)[:7] != card:
                continue  # the customer put in a new card since the event
            if card is None:
                continue
            try:
                year, month = int(card[:4]), int(card[5:7])
            except ValueError:
                continue
            expires = dt.date(year, month, calendar.monthrange(year, month)[1])
            days_left = (expires - ctx.today).days
            if days_left > self.opt("within_days") or days_left < -31:
                continue
            yield Trigger(
                account_id,
                reason=f"card {card}",
                detail=f"the card on file expires {card} ({days_left} days left)",
                evidence=_newest_first(evidence),
                values={"days_left": days_left, "card_expires": card},
            )


class BillingMissing(Playbook):
    """A paying customer has no payment method on file."""

    name = "billing_missing"
    title = "Missing billing details"
    options = {"lookback_days": 30, "min_mrr": 0.0}
    subject = "No payment method on file: {account_name}"
    body = (
        "{account_name} pays {mrr} a month but has no payment method on file. "
        "Ask billing to add one." + STANDARD_BODY_TAIL
    )

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        events = ctx.events(["billing_details_missing"], days=self.opt("lookback_days"))
        for account_id in ctx.accounts:
            has_method = ctx.fact(account_id, "has_payment_method")
            mrr = float(ctx.fact(account_id, "mrr") or 0)
            evidence = events.get(account_id, [])
            if has_method is True or has_method in (1, "true"):
                continue  # fixed since the event
            if not evidence and has_method not in (False, 0, "false"):
                continue
            if mrr <= self.opt("min_mrr") and not evidence:
                continue
            yield Trigger(
                account_id,
                reason="billing_missing",
                detail="no payment method on file",
                evidence=_newest_first(evidence),
            )


class CompetitorDetected(Playbook):
    """A competitor's technology appeared on the customer's site (and is still there)."""

    name = "competitor_detected"
    title = "Competitor detected"
    options = {"lookback_days": 30, "competitors": []}
    subject = "{technology} detected on {account_name}'s site"
    body = (
        "BuiltWith sees {technology} on {domain} since {detected_on}. "
        "Find out whether they are evaluating a switch." + STANDARD_BODY_TAIL
    )
    placeholders = ("technology", "detected_on")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        days = self.opt("lookback_days")
        watch = {c.lower() for c in self.opt("competitors")}
        detected = ctx.events(["competitor_detected"], days=days)
        removed = ctx.events(["competitor_removed"], days=days)
        for account_id, events in detected.items():
            latest: dict[str, dict[str, Any]] = {}
            for event in events:
                tech = str(event["attrs"].get("technology") or "unknown")
                latest[tech] = event
            for tech, event in latest.items():
                if watch and tech.lower() not in watch:
                    continue
                if any(
                    str(r["attrs"].get("technology")) == tech and r["ts"] >= event["ts"]
                    for r in removed.get(account_id, [])
                ):
                    continue
                yield Trigger(
                    account_id,
                    reason=f"competitor {tech.lower()}",
                    detail=f"{tech} detected on {_day(event['ts'])}",
                    evidence=[event],
                    values={"technology": tech, "detected_on": _day(event["ts"])},
                )


class WidgetRemoved(Playbook):
    """Our widget disappeared from the customer's site (and did not come back)."""

    name = "widget_removed"
    title = "Our widget removed"
    options = {"lookback_days": 30}
    defaults = {"priority": "HIGH"}
    subject = "Our widget was removed from {domain}"
    body = (
        "BuiltWith no longer sees {technology} on {domain} (since {removed_on}). "
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
                detail=f"our widget disappeared from the site on {_day(last['ts'])}",
                evidence=[last],
                values={
                    "technology": last["attrs"].get("technology") or "our widget",
                    "removed_on": _day(last["ts"]),
                },
            )


class RenewalAtRisk(Playbook):
    """The renewal is within ``within_days`` while the health band is not green."""

    name = "renewal_at_risk"
    title = "Renewal at risk"
    options = {"within_days": 60, "bands": ["yellow", "red"]}
    defaults = {"priority": "HIGH", "due_in_days": 5}
    subject = "Renewal in {days_left} days and health is {band}: {account_name}"
    body = (
        "{account_name} renews on {renewal_date} ({days_left} days) and its health is "
        "{band} ({score}). Plan the renewal conversation." + STANDARD_BODY_TAIL
    )
    placeholders = ("days_left",)

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        bands = set(self.opt("bands"))
        for account_id, account in ctx.accounts.items():
            renewal = account.get("renewal_date")
            days_left = ctx.days_until(renewal)
            if days_left is None or days_left < 0 or days_left > self.opt("within_days"):
                continue
            band = (ctx.health.get(account_id) or {}).get("band")
            if band not in bands:
                continue
            status = str(ctx.fact(account_id, "subscription_status") or "").lower()
            if status in ("canceled", "cancelled"):
                continue  # nothing to renew: churn_followup covers it
            yield Trigger(
                account_id,
                reason=f"renewal {str(renewal)[:10]}",
                detail=f"renewal on {str(renewal)[:10]} in {days_left} days while {band}",
                evidence=ctx.recent_trouble(account_id),
                values={"days_left": days_left},
            )


class ChurnFollowup(Playbook):
    """A subscription was cancelled: follow up and record the real churn reason."""

    name = "churn_followup"
    title = "Record the churn reason"
    options = {"lookback_days": 30}
    defaults = {"priority": "HIGH", "due_in_days": 5}
    subject = "Record the churn reason: {account_name}"
    body = (
        "{account_name} cancelled on {cancelled_on}. Stripe says: reason {churn_reason}; "
        "feedback {feedback}; comment {comment}. Talk to them and record the real reason "
        "on the company." + STANDARD_BODY_TAIL
    )
    placeholders = ("cancelled_on", "churn_reason", "feedback", "comment")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        for account_id, events in ctx.events(
            ["subscription_cancelled"], days=self.opt("lookback_days")
        ).items():
            for event in events:
                attrs = event["attrs"]
                sub = attrs.get("subscription_id") or event["id"]
                yield Trigger(
                    account_id,
                    reason=f"cancelled {sub}",
                    detail=f"subscription cancelled on {_day(event['ts'])}",
                    evidence=[event],
                    values={
                        "cancelled_on": _day(event["ts"]),
                        "churn_reason": attrs.get("reason") or "not given",
                        "feedback": attrs.get("feedback") or "none",
                        "comment": attrs.get("comment") or "none",
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
            sub = start["attrs"].get("subscription_id") or _day(start["ts"])
            yield Trigger(
                account_id,
                reason=f"first value {sub}",
                detail=f"no {self.opt('first_value_event')} {age} days after the start",
                evidence=[start],
                values={"days_since_start": age, "started_on": _day(start["ts"])},
            )


class Expansion(Playbook):
    """Seats or MRR went up, the account is green and the renewal is far: an upsell talk."""

    name = "expansion"
    title = "Expansion signal"
    options = {
        "lookback_days": 30,
        "min_renewal_days": 90,
        "bands": ["green"],
        "min_seat_increase": 1,
        "min_mrr_increase": 0.01,
    }
    defaults = {"priority": "LOW", "due_in_days": 7}
    subject = "Expansion signal: {account_name}"
    body = (
        "{account_name} grew in the last {lookback_days} days ({growth}) and is healthy. "
        "Talk about a larger plan." + STANDARD_BODY_TAIL
    )
    placeholders = ("growth",)

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        bands = set(self.opt("bands"))
        signals = ctx.events(
            ["subscription_upgraded", "mrr_changed"], days=self.opt("lookback_days")
        )
        for account_id, events in signals.items():
            if (ctx.health.get(account_id) or {}).get("band") not in bands:
                continue
            days_left = ctx.days_until(ctx.accounts[account_id].get("renewal_date"))
            if days_left is not None and days_left < self.opt("min_renewal_days"):
                continue
            seats = [
                (e["attrs"].get("seats_before"), e["attrs"].get("seats_after"))
                for e in events
                if e["attrs"].get("seats_before") is not None
                and e["attrs"].get("seats_after") is not None
            ]
            mrr = [
                (e["attrs"].get("mrr_before"), e["attrs"].get("mrr_after"))
                for e in events
                if e["attrs"].get("mrr_before") is not None
                and e["attrs"].get("mrr_after") is not None
            ]
            growth = []
            if seats and seats[-1][1] - seats[0][0] >= self.opt("min_seat_increase"):
                growth.append(f"seats {seats[0][0]} → {seats[-1][1]}")
            if mrr and float(mrr[-1][1]) - float(mrr[0][0]) >= self.opt("min_mrr_increase"):
                growth.append(f"MRR {_money(mrr[0][0])} → {_money(mrr[-1][1])}")
            if not growth:
                continue
            yield Trigger(
                account_id,
                reason="expansion",
                detail="; ".join(growth),
                evidence=_newest_first(events),
                values={"growth": "; ".join(growth)},
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
                evidence=_newest_first(events),
                values={"unsubscribed": len(events)},
            )


BUILTIN_PLAYBOOKS = [
    BandRed,
    ScoreDrop,
    PaymentFailed,
    CardExpiring,
    BillingMissing,
    CompetitorDetected,
    WidgetRemoved,
    RenewalAtRisk,
    ChurnFollowup,
    NoFirstValue,
    Expansion,
    UnsubscribeBurst,
]


@hub.hookimpl
def register_playbooks(register: Any) -> None:
    for cls in BUILTIN_PLAYBOOKS:
        register(cls)
