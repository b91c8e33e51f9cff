"""The ``billing`` measure: dunning-aware payment trouble, late and past-due invoices, card
expiry, missing payment method."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

from pydantic import Field, field_validator

from hub.health import (
    Account,
    Aggregates,
    Measure,
    MeasureParams,
    MeasureResult,
    Window,
    plural,
)
from plugins.health_models._common import _days

BILLING_PENALTIES = {
    "payment_failed": 25.0,
    "invoice_past_due": 25.0,
    "invoice_paid_late": 10.0,
    "card_expiring": 15.0,
    "billing_details_missing": 30.0,
}


class BillingParams(MeasureParams):
    window_days: int = Field(60, ge=1, le=3650)
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


class BillingMeasure(Measure):
    """Payment trouble in the window: 100 minus a penalty per failed payment, invoice past
    due and invoice paid late; once for a card expiring within ``card_expiry_days`` (from the
    ``card_expires`` fact, else the latest ``card_expiring`` event) and once for a paying
    account with no payment method (``has_payment_method`` fact, else the event)."""

    name = "billing"
    label = "Billing"
    Params = BillingParams
    default_weight = 20
    # An invoice left unpaid past its due date (retries exhausted) is red whatever else.
    default_caps = [{"input": "billing.invoice_past_due", "at_least": 1, "max": 39}]
    inputs = {
        "payment_failed": "failed payment attempts in the window",
        "invoice_past_due": "invoices past due in the window",
        "invoice_paid_late": "invoices paid late in the window",
        "invoices_paid": "invoices paid on time in the window",
        "card_expiring": "1 if the card expires within card_expiry_days (or has expired)",
        "card_days_left": "days until the card expires",
        "billing_details_missing": "1 if a paying account has no payment method",
        "window_days": "window",
    }
    TYPES = (
        "payment_failed",
        "invoice_past_due",
        "invoice_paid_late",
        "card_expiring",
        "billing_details_missing",
        "invoice_paid",
    )

    def aggregate(self, p: BillingParams, agg: Aggregates) -> tuple[Any, ...]:
        handles: list[Any] = [agg.count([t], p.window_days) for t in self.TYPES]
        handles.append(
            agg.latest(
                ["card_expiring"],
                p.window_days,
                "ts || '|' || COALESCE(json_extract(attrs, '$.exp_year'), '') || '-' || "
                "COALESCE(json_extract(attrs, '$.exp_month'), '')",
            )
        )
        return tuple(handles)

    def score(self, p: BillingParams, account: Account, row: Any, window: Window) -> MeasureResult:
        failed, past_due, late, expiring_events, missing_events, paid, latest_card = (
            row if row else (0, 0, 0, 0, 0, 0, None)
        )
        facts = account.facts
        has_method = facts.get("has_payment_method")
        card = facts.get("card_expires")
        events = failed or past_due or late or expiring_events or missing_events or paid
        if not events and has_method is None and not card:
            return MeasureResult(None, {"window_days": p.window_days})
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
            "payment_failed": pen["payment_failed"] * failed,
            "invoice_past_due": pen["invoice_past_due"] * past_due,
            "invoice_paid_late": pen["invoice_paid_late"] * late,
            "card_expiring": pen["card_expiring"] * card_expiring,
            "billing_details_missing": pen["billing_details_missing"] * missing,
        }
        value = max(0.0, 100.0 - sum(lost.values()))
        inputs = {
            "payment_failed": failed,
            "invoice_past_due": past_due,
            "invoice_paid_late": late,
            "invoices_paid": paid,
            "card_expiring": card_expiring,
            "card_days_left": days_left,
            "billing_details_missing": missing,
            "window_days": p.window_days,
        }

        def words() -> tuple[list[str], dict[str, str]]:
            within = _days(p.window_days)
            texts = {
                "payment_failed": f"{plural(failed, 'failed payment')} {within}",
                "invoice_past_due": f"{plural(past_due, 'invoice')} past due {within}",
                "invoice_paid_late": f"{plural(late, 'invoice')} paid late {within}",
                "billing_details_missing": "no payment method on file",
            }
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
