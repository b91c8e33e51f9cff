"""The ``billing`` measure: payment trouble that follows dunning.

Every invoice counts once, however many attempts it takes, by its worst state in the window:

- **written off** (``invoice_written_off``): bad debt;
- **past due** (``invoice_past_due``, the current state: retries exhausted, a past-due or
  unpaid subscription, or a ``send_invoice`` due date passed);
- **payment failed** (``payment_failed``; "retrying" when a retry is scheduled): a penalty,
  never the past-due cap — Stripe's retry calendar advancing does not cost again;
- **paid late** (``invoice_paid_late``, including an invoice whose retry then succeeded).

Plus, once each: a card expiring within ``card_expiry_days``, and a paying account with no
payment method. Timeline events from older mappings (one ``payment_failed`` per attempt, a
"past due" invoice whose retry is still scheduled) are read by the same rules: attempts on
one invoice collapse, and a retry still scheduled means "failing, retrying".
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from hub.health import (
    Account,
    Aggregates,
    Measure,
    MeasureParams,
    MeasureResult,
    Window,
    fmt_money,
    plural,
)
from plugins.health_models._common import SEP, _days, _num

BILLING_PENALTIES = {
    "payment_failed": 25.0,
    "invoice_past_due": 35.0,
    "invoice_written_off": 40.0,
    "invoice_paid_late": 10.0,
    "card_expiring": 15.0,
    "billing_details_missing": 30.0,
}


class BillingParams(MeasureParams):
    window_days: int = Field(60, ge=1, le=3650)
    open_days: int = Field(365, ge=1, le=3650)
    card_expiry_days: int = Field(30, ge=0, le=365)
    penalties: dict[str, float] = Field(default_factory=lambda: dict(BILLING_PENALTIES))

    @field_validator("penalties")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(BILLING_PENALTIES))
        if unknown:
            raise ValueError(
                f"unknown penalty {unknown[0]!r} (known: {', '.join(BILLING_PENALTIES)})"
            )
        if any(v < 0 for v in value.values()):
            raise ValueError("penalties are points taken off, give them as positive numbers")
        return {**BILLING_PENALTIES, **value}


def _card_days_left(card: Any, today: dt.date) -> int | None:
    """``"2026-11"`` → days from today to the card's last valid day (negative = expired)."""
    if not card:
        return None
    return _card_days(str(card), today)


@functools.lru_cache(maxsize=4096)
def _card_days(card: str, today: dt.date) -> int | None:
    match = re.fullmatch(r"\s*(\d{4})-(\d{1,2})\s*", card)
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None
    first_next = dt.date(year + (month == 12), 1 if month == 12 else month + 1, 1)
    return (first_next - dt.timedelta(days=1) - today).days


@dataclass
class _Invoice:
    """One invoice's trouble in the window: its worst state and what is known of it."""

    state: str = ""  # written_off | past_due | failed | late (worst wins, in that order)
    amount: float | None = None
    retrying: bool = False
    next_attempt: str = ""
    days_overdue: int | None = None
    reason: str = ""


_RANK = {"written_off": 4, "past_due": 3, "failed": 2, "late": 1, "": 0}


def _worse(invoice: _Invoice, state: str) -> bool:
    return _RANK[state] > _RANK[invoice.state]


class BillingMeasure(Measure):
    """Payment trouble, one count per invoice by its worst state (see the module): 100 minus
    ``penalties`` per invoice written off, past due, failing (retrying or not) or paid late,
    once for a card expiring within ``card_expiry_days`` (``card_expires`` fact, else the
    latest ``card_expiring`` event) and once for a paying account with no payment method
    (``has_payment_method`` fact, else the event). Past-due and written-off invoices are
    current states, read over ``open_days``; the rest over ``window_days``."""

    name = "billing"
    label = "Billing"
    Params = BillingParams
    default_weight = 20
    # An invoice left unpaid past its due date (retries exhausted), or written off, is red
    # whatever else; a failed attempt with a retry scheduled never is.
    default_caps = [
        {"input": "billing.invoice_past_due", "at_least": 1, "max": 39},
        {"input": "billing.invoice_written_off", "at_least": 1, "max": 39},
    ]
    inputs = {
        "payment_failed": "invoices with a failed payment in the window, not (yet) past due",
        "payment_retrying": "of those, invoices with a retry scheduled",
        "invoice_past_due": "invoices past due now (unpaid)",
        "invoice_written_off": "invoices written off (bad debt)",
        "invoice_paid_late": "invoices paid late in the window (a retry that worked included)",
        "invoices_paid": "invoices paid on time in the window",
        "amount_past_due": "amount of the invoices past due",
        "days_overdue": "days the oldest past-due invoice is overdue",
        "card_expiring": "1 if the card expires within card_expiry_days (or has expired)",
        "card_days_left": "days until the card expires",
        "billing_details_missing": "1 if a paying account has no payment method",
        "window_days": "window",
    }

    def aggregate(self, p: BillingParams, agg: Aggregates) -> tuple[Any, ...]:
        # Events without an invoice id (older mappings) count one each. ``subject_id`` is the
        # invoice id and ``metric`` the amount (typed columns of ``events``: no JSON parsed).
        invoice = "COALESCE(subject_id, id)"
        # One concatenation, an entry per event (kind letter first):
        # f<invoice>|retrying|next attempt|amount (payment failed),
        # p|w<invoice>|amount|days overdue|reason|status|next payment attempt (past due,
        # written off; status and next attempt from older mappings), l|o<invoice> (paid late,
        # paid on time), c<time>|<year>-<month> (card expiring: the latest one counts). One
        # column, not one per kind: every column costs SQLite work on every event row.
        return (
            agg.concat_each(
                [
                    (
                        ["payment_failed"],
                        p.window_days,
                        f"'f' || {invoice} || '|' || COALESCE(json_extract(attrs, '$.retrying'), "
                        "'') || '|' || COALESCE(json_extract(attrs, '$.next_attempt_at'), '') "
                        "|| '|' || COALESCE(metric, '')",
                    ),
                    (
                        ["invoice_past_due", "invoice_written_off"],
                        p.open_days,
                        f"substr(type, 9, 1) || {invoice} || '|' || COALESCE(metric, '') || '|' || "
                        "COALESCE(json_extract(attrs, "
                        "'$.days_overdue'), '') || '|' || COALESCE(json_extract(attrs, "
                        "'$.reason'), '') || '|' || COALESCE(json_extract(attrs, '$.status'), "
                        "'') || '|' || COALESCE(json_extract(attrs, '$.next_payment_attempt'), '')",
                    ),
                    (
                        ["invoice_paid", "invoice_paid_late"],
                        p.window_days,
                        f"CASE type WHEN 'invoice_paid_late' THEN 'l' ELSE 'o' END || {invoice}",
                    ),
                    (
                        ["card_expiring"],
                        p.window_days,
                        "'c' || ts || '|' || COALESCE(json_extract(attrs, '$.exp_year'), '') || "
                        "'-' || COALESCE(json_extract(attrs, '$.exp_month'), '')",
                    ),
                ]
            ),
            agg.count(["card_expiring"], p.window_days),
            agg.count(["billing_details_missing"], p.window_days),
        )

    @staticmethod
    def _invoices(entries: str | None) -> tuple[dict[str, _Invoice], int, str | None]:
        """Each troubled invoice by its worst state, the invoices paid on time, and the
        latest expiring card's ``<year>-<month>``."""
        failures: list[str] = []
        opens: list[str] = []
        invoices: dict[str, _Invoice] = {}
        paid: dict[str, str] = {}
        card = ""
        for entry in entries.split(SEP) if entries else ():
            kind = entry[:1]
            if kind == "f":
                failures.append(entry)
            elif kind in ("p", "w"):
                opens.append(entry)
            elif kind == "c":
                card = max(card, entry[1:])
            elif paid.get(entry[1:]) != "l":  # a late payment outranks an on-time one
                paid[entry[1:]] = kind
        for entry in opens:
            key, amount, days, reason, status, next_attempt = (entry[1:].split("|") + [""] * 6)[:6]
            inv = invoices.setdefault(key, _Invoice())
            state = "written_off" if entry[:1] == "w" or status == "uncollectible" else "past_due"
            if state == "past_due" and next_attempt and not reason:
                # An older mapping's "past due" while a retry is still scheduled.
                if _worse(inv, "failed"):
                    inv.state, inv.retrying = "failed", True
                inv.amount = _num(amount) if inv.amount is None else inv.amount
                continue
            if _worse(inv, state):
                inv.state = state
                inv.amount = _num(amount)
                inv.days_overdue = int(_num(days) or 0) if days else None
                inv.reason = reason
        for entry in failures:
            key, retrying, next_attempt, amount = (entry[1:].split("|") + [""] * 4)[:4]
            if paid.get(key):
                continue  # recovered: the invoice counts as paid (late or not)
            inv = invoices.setdefault(key, _Invoice())
            if inv.state == "failed":
                # Attempts on one invoice collapse; the latest says whether it retries.
                inv.retrying = inv.retrying or retrying in ("1", "true")
                inv.next_attempt = max(inv.next_attempt, next_attempt)
            elif _worse(inv, "failed"):
                inv.state = "failed"
                inv.retrying = retrying in ("1", "true") or bool(next_attempt)
                inv.next_attempt = next_attempt
                inv.amount = _num(amount)
        on_time = 0
        for key, how in paid.items():
            inv = invoices.get(key)
            if how == "l":
                if inv is None:
                    invoices[key] = _Invoice("late")
                elif _worse(inv, "late"):
                    inv.state = "late"
            elif inv is None:
                on_time += 1
        return invoices, on_time, card or None

    def score(self, p: BillingParams, account: Account, row: Any, window: Window) -> MeasureResult:
        facts = account.facts
        has_method = facts.get("has_payment_method")
        card = facts.get("card_expires")
        if row is None:
            row = (None, 0, 0)
        entries, expiring_events, missing_events = row
        if not (entries or expiring_events or missing_events) and has_method is None and not card:
            return MeasureResult(None, {"window_days": p.window_days})
        invoices, paid, latest_card = self._invoices(entries)
        by_state: dict[str, list[_Invoice]] = {s: [] for s in _RANK if s}
        for inv in invoices.values():
            if inv.state:
                by_state[inv.state].append(inv)
        failed = by_state["failed"]
        retrying = [inv for inv in failed if inv.retrying]
        past_due = by_state["past_due"]
        written_off = by_state["written_off"]
        late = len(by_state["late"])
        if not card and latest_card:
            card = latest_card.split("|", 1)[1]
        days_left = _card_days_left(card, window.today)
        if days_left is not None:
            card_expiring = 1 if days_left <= p.card_expiry_days else 0
        else:
            card_expiring = 1 if expiring_events else 0
        if has_method is not None:
            missing = 1 if (has_method is False and (account.mrr or 0) > 0) else 0
        else:
            missing = 1 if missing_events else 0
        pen = p.penalties
        lost = {
            "invoice_written_off": pen["invoice_written_off"] * len(written_off),
            "invoice_past_due": pen["invoice_past_due"] * len(past_due),
            "payment_failed": pen["payment_failed"] * len(failed),
            "invoice_paid_late": pen["invoice_paid_late"] * late,
            "card_expiring": pen["card_expiring"] * card_expiring,
            "billing_details_missing": pen["billing_details_missing"] * missing,
        }
        value = max(0.0, 100.0 - sum(lost.values()))
        overdue = [inv.days_overdue for inv in past_due if inv.days_overdue is not None]
        inputs = {
            "payment_failed": len(failed),
            "payment_retrying": len(retrying),
            "invoice_past_due": len(past_due),
            "invoice_written_off": len(written_off),
            "invoice_paid_late": late,
            "invoices_paid": paid,
            "amount_past_due": _total(past_due),
            "days_overdue": max(overdue) if overdue else None,
            "card_expiring": card_expiring,
            "card_days_left": days_left,
            "billing_details_missing": missing,
            "window_days": p.window_days,
        }

        def words() -> tuple[list[str], dict[str, str]]:
            within = _days(p.window_days)
            texts = {
                "invoice_written_off": (
                    f"{plural(len(written_off), 'invoice')} written off"
                    f"{_amount(written_off)} (bad debt)"
                ),
                "invoice_past_due": (
                    f"{plural(len(past_due), 'invoice')} past due{_amount(past_due)}"
                    + (f", {plural(max(overdue), 'day')} overdue" if overdue else "")
                ),
                "payment_failed": _failed_text(failed, retrying, within),
                "invoice_paid_late": f"{plural(late, 'invoice')} paid late {within}",
                "billing_details_missing": "no payment method on file",
            }
            texts["payment_retrying"] = texts["payment_failed"]
            texts["amount_past_due"] = texts["days_overdue"] = texts["invoice_past_due"]
            if days_left is None:
                texts["card_expiring"] = "card expiring soon"
            elif days_left < 0:
                texts["card_expiring"] = f"card expired {plural(-days_left, 'day')} ago ({card})"
            else:
                texts["card_expiring"] = f"card expires in {plural(days_left, 'day')} ({card})"
            texts["card_days_left"] = texts["card_expiring"]
            drivers = [texts[k] for k, v in sorted(lost.items(), key=lambda kv: -kv[1]) if v > 0]
            if not drivers:
                drivers = [
                    f"{plural(paid, 'invoice')} paid on time {within}, no payment trouble"
                    if paid
                    else f"no payment trouble {within}"
                ]
            return drivers, texts

        return MeasureResult(value, inputs, words=words)


def _total(invoices: list[_Invoice]) -> float | None:
    amounts = [inv.amount for inv in invoices if inv.amount is not None]
    return round(sum(amounts), 2) if amounts else None


def _amount(invoices: list[_Invoice]) -> str:
    total = _total(invoices)
    return f" ({fmt_money(total)})" if total else ""


def _failed_text(failed: list[_Invoice], retrying: list[_Invoice], within: str) -> str:
    """``"payment failed on 1 invoice ($450) in the last 60 days, retry scheduled 2026-01-20"``."""
    text = f"payment failed on {plural(len(failed), 'invoice')}{_amount(failed)} {within}"
    if retrying and len(retrying) == len(failed):
        nexts = sorted(inv.next_attempt[:10] for inv in retrying if inv.next_attempt)
        return text + (f", retry scheduled {nexts[0]}" if nexts else ", retrying")
    if retrying:
        return text + f", {len(retrying)} retrying"
    return text
