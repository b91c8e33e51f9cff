"""Playbooks on the health score itself: band turned red, score dropped, renewal at risk,
expansion signal. Band and score rules are ``state`` rules: quiet on an account's first
scoring (its baseline) and reading the computed score, so an override never looks like a
drop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hub.playbooks import STANDARD_BODY_TAIL, Playbook, PlaybookContext, Trigger
from plugins.playbooks.common import BAND_RANK, money, newest_first, state_evidence


class BandRed(Playbook):
    """The health band changed to red (within ``within_days``)."""

    name = "band_red"
    title = "Health turned red"
    kind = "state"
    options = {"within_days": 7, "include_new": False}
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
            previous, changed_on = None, None
            for row in reversed(ctx.history(account_id)):  # newest day first
                if row["band"] != "red":
                    previous = row
                    break
                changed_on = row["day"]
            if previous is None:
                # Red since its first scoring: a baseline, not a change.
                if not self.opt("include_new"):
                    continue
                previous_band = "not scored"
            else:
                previous_band = previous["band"]
            changed_on = str(changed_on or ctx.today.isoformat())[:10]
            age = -(ctx.days_until(changed_on) or 0)
            if age > within:
                continue
            yield Trigger(
                account_id,
                reason="red",
                detail=f"health turned red on {changed_on} (was {previous_band})",
                values={"previous_band": previous_band, "changed_on": changed_on},
                **state_evidence(ctx, account_id, age + 7),
            )


class ScoreDrop(Playbook):
    """The computed score fell by ``points`` or more within ``days``, or its band worsened.

    The baseline is the computed score of a day ``days`` to ``days + max(3, days // 4)`` ago
    (7–10 days for 7, 30–37 for 30, like the health trends; none: no task); the evidence
    names the measures that moved and the trouble since.
    """

    name = "score_drop"
    title = "Health score dropped"
    kind = "state"
    options = {"points": 15, "days": 7}
    subject = "Health score dropped {drop} points: {account_name}"
    body = (
        "{account_name}'s health score fell from {previous_score} to {score} "
        "in {days} days{band_change}." + STANDARD_BODY_TAIL
    )
    placeholders = ("drop", "previous_score", "band_change")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        days, points = self.opt("days"), self.opt("points")
        for account_id, health in ctx.health.items():
            score = health.get("computed_score")
            score = health.get("score") if score is None else score
            if score is None:
                continue
            # The trend's bounded baseline: the state on a day 7–10 days ago for 7, 30–37 for 30.
            then = ctx.baseline(account_id, days)
            if then is None or then["computed"] is None:
                continue
            previous = then["computed"]
            drop = previous - score
            before_band, band = str(then.get("band") or ""), str(health.get("band") or "")
            worse = (
                before_band in BAND_RANK
                and band in BAND_RANK
                and BAND_RANK[band] < BAND_RANK[before_band]
            )
            if drop <= 0 or (drop < points and not worse):
                continue
            band_change = f" and its band went from {before_band} to {band}" if worse else ""
            yield Trigger(
                account_id,
                reason="score_drop",
                detail=f"health score fell {drop} points in {days} days ({previous} → {score})"
                + (f"; {before_band} → {band}" if worse else ""),
                values={"drop": drop, "previous_score": previous, "band_change": band_change},
                **state_evidence(ctx, account_id, days),
            )


class RenewalAtRisk(Playbook):
    """The renewal is within ``within_days`` while the health band is not green."""

    name = "renewal_at_risk"
    title = "Renewal at risk"
    kind = "state"
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
                values={"days_left": days_left},
                **state_evidence(ctx, account_id, 30),
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
            seats = _pairs(events, "seats")
            mrr = _pairs(events, "mrr")
            growth = []
            if seats and seats[-1][1] - seats[0][0] >= self.opt("min_seat_increase"):
                growth.append(f"seats {seats[0][0]} → {seats[-1][1]}")
            if mrr and float(mrr[-1][1]) - float(mrr[0][0]) >= self.opt("min_mrr_increase"):
                growth.append(f"MRR {money(mrr[0][0])} → {money(mrr[-1][1])}")
            if not growth:
                continue
            yield Trigger(
                account_id,
                reason="expansion",
                detail="; ".join(growth),
                evidence=newest_first(events),
                values={"growth": "; ".join(growth)},
            )


def _pairs(events: list[dict[str, Any]], what: str) -> list[tuple[Any, Any]]:
    return [
        (e["attrs"].get(f"{what}_before"), e["attrs"].get(f"{what}_after"))
        for e in events
        if e["attrs"].get(f"{what}_before") is not None
        and e["attrs"].get(f"{what}_after") is not None
    ]
