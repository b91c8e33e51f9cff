"""Playbooks on billing: a failed payment (per invoice, dunning-aware), a card expiring,
no payment method, and the churn follow-up (the only playbook a churned account gets)."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator
from typing import Any

from hub.playbooks import STANDARD_BODY_TAIL, Playbook, PlaybookContext, Trigger, humanize
from plugins.playbooks.common import day, fact_evidence, money, newest_first


class PaymentFailed(Playbook):
    """A payment failed and its invoice was not paid since: one task per invoice.

    Every failed attempt of one invoice, and its "past due" once retries are exhausted, are
    one problem: one task, deduplicated, snoozed and skipped-if-paid per invoice. The body
    says whether the billing system still retries (and when) or gave up.
    """

    name = "payment_failed"
    title = "Payment failed"
    options = {"lookback_days": 14, "skip_if_paid": True}
    defaults = {"priority": "HIGH", "due_in_days": 2}
    subject = "Payment failed: {account_name}"
    body = (
        "A payment of {amount} for {invoice} failed ({failure_code}, {attempts}). "
        "{retry} Check the card with the customer." + STANDARD_BODY_TAIL
    )
    placeholders = ("amount", "invoice_id", "invoice", "failure_code", "attempts", "retry")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        days = self.opt("lookback_days")
        failures = ctx.events(["payment_failed", "invoice_past_due"], days=days)
        settled = ctx.events(
            ["invoice_paid", "invoice_paid_late", "invoice_written_off"], days=days
        )
        for account_id, events in failures.items():
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
                    for p in settled.get(account_id, [])
                ):
                    continue
                attempts = [e for e in tries if e["type"] == "payment_failed"]
                past_due = [e for e in tries if e["type"] == "invoice_past_due"]
                last = (attempts or tries)[-1]
                attrs = last["attrs"]
                count = int(attrs.get("attempt_count") or len(attempts) or 1)
                retry = _retry_text(attrs, past_due[-1]["attrs"] if past_due else None)
                amount = money(attrs.get("amount"))
                if attempts:
                    detail = f"payment of {amount} failed on {day(attempts[0]['ts'])}"
                else:
                    detail = f"{amount} past due since {day(last['ts'])}"
                yield Trigger(
                    account_id,
                    reason=f"invoice {invoice}" if invoice else "payments failing",
                    detail=detail + (" (retries exhausted)" if past_due and attempts else ""),
                    evidence=newest_first(tries),
                    values={
                        "amount": amount,
                        "invoice_id": invoice,
                        "invoice": f"invoice {invoice}" if invoice else "an invoice",
                        "failure_code": humanize(attrs.get("failure_code")) or "no reason given",
                        "attempts": f"{count} attempt" + ("" if count == 1 else "s"),
                        "retry": retry,
                    },
                )


PAST_DUE_WORDS = {
    "retries_exhausted": "The billing system has stopped retrying: the invoice is past due.",
    "subscription_past_due": "The subscription is past due.",
    "unpaid": "The subscription is unpaid.",
    "due_date_passed": "The invoice is past its due date.",
}


def _retry_text(attrs: dict[str, Any], past_due: dict[str, Any] | None) -> str:
    """Where dunning stands, in one sentence ("" when nothing is known)."""
    if past_due is not None:
        return PAST_DUE_WORDS.get(
            str(past_due.get("reason") or ""), "The invoice is past due: retries are over."
        )
    if attrs.get("retrying") and attrs.get("next_attempt_at"):
        return f"The billing system retries on {day(attrs['next_attempt_at'])}."
    if attrs.get("retrying"):
        return "The billing system will retry."
    return ""


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
                evidence=newest_first(evidence)
                or [fact_evidence(f"the card on file expires {card}")],
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
                evidence=newest_first(evidence) or [fact_evidence("no payment method on file")],
            )


class ChurnFollowup(Playbook):
    """The customer left (a cancellation that ended the account): record the real reason.

    A cancellation that leaves another subscription running is a contraction, not churn
    (``ends_account`` false on the event): no task. This is the one playbook that still
    runs for churned accounts.
    """

    name = "churn_followup"
    title = "Record the churn reason"
    churn = True
    options = {"lookback_days": 30}
    defaults = {"priority": "HIGH", "due_in_days": 5}
    subject = "Record the churn reason: {account_name}"
    body = (
        "{account_name} cancelled on {cancelled_on}. {stated} Talk to them and record the "
        "real reason on the company." + STANDARD_BODY_TAIL
    )
    placeholders = ("cancelled_on", "churn_reason", "feedback", "comment", "stated")

    def evaluate(self, ctx: PlaybookContext) -> Iterator[Trigger]:
        for account_id, events in ctx.events(
            ["subscription_cancelled"], days=self.opt("lookback_days")
        ).items():
            for event in events:
                attrs = event["attrs"]
                if attrs.get("ends_account") is False:
                    continue  # one of several subscriptions: a contraction
                sub = attrs.get("subscription_id") or event["id"]
                reason = humanize(attrs.get("reason"))
                feedback = humanize(attrs.get("feedback"))
                comment = str(attrs.get("comment") or "").strip()
                yield Trigger(
                    account_id,
                    reason=f"cancelled {sub}",
                    detail=f"cancelled on {day(event['ts'])}"
                    + (f" ({feedback or reason})" if feedback or reason else ""),
                    evidence=[event],
                    values={
                        "cancelled_on": day(event["ts"]),
                        "churn_reason": reason or "not given",
                        "feedback": feedback or "none",
                        "comment": comment or "none",
                        "stated": _stated(reason, feedback, comment),
                    },
                )


def _stated(reason: str, feedback: str, comment: str) -> str:
    """What the customer told the billing system, in one sentence (no empty parts)."""
    parts = []
    if feedback:
        parts.append(f"their feedback: {feedback}")
    if comment:
        parts.append(f"their comment: “{comment}”")
    if reason and not parts:
        parts.append(f"the cancellation reason: {reason}")
    if not parts:
        return "They gave no reason."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
