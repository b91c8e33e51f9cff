"""Built-in health measures and models, registered like any third-party plugin.

Measures (each 0–100 or no data; every parameter is set in ``[health.measures.<name>]`` or per
model in ``[health.models.<model>.measures.<name>]``):

- ``support``         median resolution hours of tickets solved in the window vs a target
- ``support_load``    urgent/escalated tickets still open, share of solved tickets reopened
- ``csat``            good / (good + bad) satisfaction ratings in the window
- ``nps``             the account's NPS fact (0–10), promoters high, detractors low
- ``billing``         failed payments, late and past-due invoices, card expiring, no payment method
- ``engagement``      share of the account's contacts unsubscribed, recent unsubscribes
- ``technographics``  our widget present on the site, competitors detected
- ``relationship``    days since the CSM last touched the account, owner assigned
- ``growth``          MRR trend and seats over the window, downgrades, cancellation
- ``lifecycle``       renewal coming up (or lapsed)

Models: ``weighted`` (Σ weight·measure / Σ weight of measures with data, optional caps) and
``points`` (base ± rule points, clamped, bands on the points, scaled to 0–100). See
``hub/health.py`` for the engine and the rounding rule.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

import hub
from hub.health import (
    Account,
    Aggregates,
    Cap,
    Contribution,
    HealthModel,
    Lookup,
    Measure,
    MeasureParams,
    MeasureResult,
    ModelContext,
    ModelSettings,
    Outcome,
    PointsRule,
    Window,
    band_for,
    check_bands,
    days_since,
    fmt_hours,
    fmt_money,
    fmt_pct,
    hundredths,
    parse_date,
    plural,
    scale,
)

SEP = Aggregates.SEP


def _floats(text: Any) -> list[float]:
    """``concat`` output → numbers (unreadable entries are skipped)."""
    if text is None or text == "":
        return []
    out = []
    for part in str(text).split(SEP):
        try:
            out.append(float(part))
        except ValueError:
            continue
    return out


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _num(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _days(days: int) -> str:
    return f"in the last {days} days"


# ----------------------------------------------------------------------------------------
# Support
# ----------------------------------------------------------------------------------------


class SupportParams(MeasureParams):
    window_days: int = Field(90, ge=1, le=3650)
    target_hours: float = Field(24, gt=0)
    zero_at_factor: float = Field(3.0, gt=1)
    min_tickets: int = Field(1, ge=1)
    breach_field: str = "resolution_hours"
    breach_target_hours: float | None = Field(None, gt=0)

    @field_validator("breach_field")
    @classmethod
    def _field(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("breach_field must be an attribute name of ticket_solved events")
        return value


class SupportMeasure(Measure):
    """Median resolution time of tickets solved in the window against a target.

    100 at or under ``target_hours``, 0 at ``target_hours × zero_at_factor`` or slower, linear
    between: fast resolution scores high, slow resolution is a churn risk. ``breach_rate`` is
    the share of solved tickets whose ``breach_field`` attribute (resolution hours by default;
    any numeric attribute of ``ticket_solved``, e.g. a first-reply time if the mapping
    provides one) exceeds ``breach_target_hours`` (default: the target).
    """

    name = "support"
    label = "Support resolution"
    Params = SupportParams
    default_weight = 15
    inputs = {
        "tickets_solved": "tickets solved in the window",
        "median_resolution_hours": "median hours from open to solved",
        "target_hours": "the target",
        "breached": "solved tickets over the breach target",
        "breach_rate": "breached / tickets with the breach field (0-1)",
        "window_days": "window",
    }

    def aggregate(self, p: SupportParams, agg: Aggregates) -> tuple[Any, ...]:
        solved = ["ticket_solved"]
        cols = [agg.concat(solved, p.window_days, "json_extract(attrs, '$.resolution_hours')")]
        if p.breach_field != "resolution_hours":
            cols.append(
                agg.concat(solved, p.window_days, "json_extract(attrs, ?)", [f"$.{p.breach_field}"])
            )
        return tuple(cols)

    def score(self, p: SupportParams, account: Account, row: Any, window: Window) -> MeasureResult:
        hours = _floats(row[0]) if row else []
        if len(hours) < p.min_tickets:
            return MeasureResult(None, {"tickets_solved": len(hours), "window_days": p.window_days})
        median = _median(hours)
        target = p.target_hours
        value = scale(median, target, target * p.zero_at_factor)
        breach_values = _floats(row[1]) if p.breach_field != "resolution_hours" else hours
        breach_target = p.breach_target_hours or target
        breached = sum(1 for h in breach_values if h > breach_target)
        rate = breached / len(breach_values) if breach_values else None
        inputs = {
            "tickets_solved": len(hours),
            "median_resolution_hours": round(median, 1),
            "target_hours": target,
            "breached": breached,
            "breach_rate": round(rate, 4) if rate is not None else None,
            "window_days": p.window_days,
        }

        def words() -> tuple[list[str], dict[str, str]]:
            main = (
                f"median resolution {fmt_hours(median)} vs {fmt_hours(target)} target "
                f"({plural(len(hours), 'ticket')} solved {_days(p.window_days)})"
            )
            texts = {"median_resolution_hours": main}
            if rate is not None:
                what = p.breach_field.removesuffix("_hours").replace("_", " ")
                texts["breach_rate"] = texts["breached"] = (
                    f"{breached} of {plural(len(breach_values), 'ticket')} ({fmt_pct(rate)}) "
                    f"over the {fmt_hours(breach_target)} {what} target {_days(p.window_days)}"
                )
            return [main], texts

        return MeasureResult(value, inputs, words=words)


class SupportLoadParams(MeasureParams):
    window_days: int = Field(90, ge=1, le=3650)
    urgent_penalty: float = Field(25, ge=0, le=100)
    reopen_good: float = Field(0.05, ge=0, le=1)
    reopen_bad: float = Field(0.30, ge=0, le=1)

    @model_validator(mode="after")
    def _order(self) -> SupportLoadParams:
        if self.reopen_bad <= self.reopen_good:
            raise ValueError("reopen_bad must be above reopen_good")
        return self


class SupportLoadMeasure(Measure):
    """Urgent or escalated tickets still open, and the share of solved tickets reopened.

    The mean of two parts: 100 − ``urgent_penalty`` per urgent/escalated ticket not solved
    since it became urgent (or was last reopened), and the reopen rate (reopened / solved
    tickets in the window) scored 100 at ``reopen_good`` down to 0 at ``reopen_bad``.
    """

    name = "support_load"
    label = "Support load"
    Params = SupportLoadParams
    default_weight = 10
    inputs = {
        "tickets": "tickets urgent, solved or reopened in the window",
        "opened": "tickets opened in the window",
        "open_urgent": "urgent or escalated tickets not solved since",
        "solved": "tickets solved in the window",
        "reopened": "of those, tickets reopened",
        "reopen_rate": "reopened / solved (0-1)",
        "window_days": "window",
    }
    TYPES = ("ticket_urgent", "ticket_solved", "ticket_reopened")
    _SLOT = {"u": 0, "s": 1, "r": 2}

    def aggregate(self, p: SupportLoadParams, agg: Aggregates) -> tuple[Any, ...]:
        # One entry per event: kind letter (u/s/r), ticket id, time; resolved per ticket below.
        return (
            agg.concat(
                self.TYPES,
                p.window_days,
                "substr(type, 8, 1) || COALESCE(json_extract(attrs, '$.ticket_id'), '') || '@' || ts",
            ),
            agg.count(["ticket_opened"], p.window_days),
        )

    def score(
        self, p: SupportLoadParams, account: Account, row: Any, window: Window
    ) -> MeasureResult:
        entries = row[0] if row else None
        opened = row[1] if row else 0
        if not entries and not opened:
            return MeasureResult(None, {"tickets": 0, "window_days": p.window_days})
        tickets: dict[str, list[str]] = {}  # id -> [latest urgent, latest solved, latest reopened]
        slot = self._SLOT
        for entry in entries.split(SEP) if entries else ():
            kind = slot.get(entry[:1])
            if kind is None:
                continue
            ticket, _, ts = entry[1:].partition("@")
            state = tickets.get(ticket)
            if state is None:
                state = tickets[ticket] = ["", "", ""]
            if ts > state[kind]:
                state[kind] = ts
        open_urgent = solved = reopened = 0
        for urgent_ts, solved_ts, reopened_ts in tickets.values():
            if urgent_ts and (not solved_ts or solved_ts < max(urgent_ts, reopened_ts)):
                open_urgent += 1
            if solved_ts:
                solved += 1
                if reopened_ts:
                    reopened += 1
        rate = reopened / solved if solved else None
        urgent_part = max(0.0, 100.0 - p.urgent_penalty * open_urgent)
        reopen_part = scale(rate, p.reopen_good, p.reopen_bad) if rate is not None else None
        value = urgent_part if reopen_part is None else (urgent_part + reopen_part) / 2
        inputs = {
            "tickets": len(tickets),
            "opened": opened,
            "open_urgent": open_urgent,
            "solved": solved,
            "reopened": reopened,
            "reopen_rate": round(rate, 4) if rate is not None else None,
            "window_days": p.window_days,
        }

        def words() -> tuple[list[str], dict[str, str]]:
            urgent_text = (
                f"{plural(open_urgent, 'urgent or escalated ticket')} still open"
                if open_urgent
                else "no urgent or escalated ticket open"
            )
            texts = {"open_urgent": urgent_text}
            ranked = [(urgent_part, urgent_text)]
            if rate is not None:
                texts["reopen_rate"] = texts["reopened"] = (
                    f"{reopened} of {plural(solved, 'solved ticket')} reopened ({fmt_pct(rate)}) "
                    f"{_days(p.window_days)}"
                )
                ranked.append((reopen_part, texts["reopen_rate"]))
            ranked.sort(key=lambda d: d[0])
            return [t for _, t in ranked], texts

        return MeasureResult(value, inputs, words=words)


class CsatParams(MeasureParams):
    window_days: int = Field(90, ge=1, le=3650)
    min_responses: int = Field(1, ge=1)


class CsatMeasure(Measure):
    """Share of good satisfaction ratings: 100 × good / (good + bad) in the window."""

    name = "csat"
    label = "CSAT"
    Params = CsatParams
    default_weight = 10
    inputs = {
        "good": "good ratings",
        "bad": "bad ratings",
        "responses": "good + bad",
        "ratio": "good / responses (0-1)",
        "window_days": "window",
    }

    def aggregate(self, p: CsatParams, agg: Aggregates) -> tuple[Any, ...]:
        return (agg.count(["csat_good"], p.window_days), agg.count(["csat_bad"], p.window_days))

    def score(self, p: CsatParams, account: Account, row: Any, window: Window) -> MeasureResult:
        good, bad = row if row else (0, 0)
        responses = good + bad
        if responses < p.min_responses:
            return MeasureResult(None, {"responses": responses, "window_days": p.window_days})
        ratio = good / responses
        inputs = {
            "good": good,
            "bad": bad,
            "responses": responses,
            "ratio": round(ratio, 4),
            "window_days": p.window_days,
        }

        def words() -> tuple[list[str], dict[str, str]]:
            text = f"CSAT {fmt_pct(ratio)} good ({good} good, {bad} bad {_days(p.window_days)})"
            return [text], {"ratio": text, "bad": text, "good": text}

        return MeasureResult(100.0 * ratio, inputs, words=words)


class NpsParams(MeasureParams):
    fact: str = "nps"
    promoter_at: float = Field(9, ge=0, le=10)
    passive_at: float = Field(7, ge=0, le=10)
    passive_score: float = Field(70, ge=0, le=100)
    detractor_max_score: float = Field(40, ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> NpsParams:
        if not 0 < self.passive_at <= self.promoter_at:
            raise ValueError("need 0 < passive_at ≤ promoter_at")
        return self


class NpsMeasure(Measure):
    """The account's latest NPS answer (0–10, the fact the HubSpot mapping fills from the
    configured property; ``fact`` names another fact to read): promoters 100, passives
    ``passive_score``, detractors from 0 (at 0) up to ``detractor_max_score`` (just below
    ``passive_at``)."""

    name = "nps"
    label = "NPS"
    Params = NpsParams
    default_weight = 10
    inputs = {"nps": "latest NPS answer 0-10", "category": "promoter, passive or detractor"}

    def score(self, p: NpsParams, account: Account, row: Any, window: Window) -> MeasureResult:
        nps = _num(account.get(p.fact))
        if nps is None or not 0 <= nps <= 10:
            return MeasureResult(None, {"nps": None})
        if nps >= p.promoter_at:
            category, value = "promoter", 100.0
        elif nps >= p.passive_at:
            category, value = "passive", p.passive_score
        else:
            category = "detractor"
            value = p.detractor_max_score * nps / max(p.passive_at - 1, 1)
        shown = int(nps) if nps.is_integer() else nps
        text = f"NPS {shown} ({category})"
        return MeasureResult(
            min(value, 100.0), {"nps": shown, "category": category}, [text], {"nps": text}
        )


# ----------------------------------------------------------------------------------------
# Billing
# ----------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------
# Engagement, technographics, relationship
# ----------------------------------------------------------------------------------------


class EngagementParams(MeasureParams):
    window_days: int = Field(90, ge=1, le=3650)
    share_good: float = Field(0.05, ge=0, le=1)
    share_bad: float = Field(0.5, ge=0, le=1)
    recent_penalty: float = Field(5, ge=0, le=100)
    recent_penalty_max: float = Field(25, ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> EngagementParams:
        if self.share_bad <= self.share_good:
            raise ValueError("share_bad must be above share_good")
        return self


class EngagementMeasure(Measure):
    """Marketing engagement: the share of the account's contacts who unsubscribed (100 at
    ``share_good``, 0 at ``share_bad``), minus ``recent_penalty`` per unsubscribe in the
    window (at most ``recent_penalty_max``)."""

    name = "engagement"
    label = "Marketing engagement"
    Params = EngagementParams
    default_weight = 5
    inputs = {
        "contacts_total": "contacts of the company",
        "contacts_unsubscribed": "of those, unsubscribed from marketing email",
        "unsubscribed_share": "unsubscribed / total (0-1)",
        "recent_unsubscribes": "contact_unsubscribed events in the window",
        "window_days": "window",
    }

    def aggregate(self, p: EngagementParams, agg: Aggregates) -> tuple[Any, ...]:
        return (agg.count(["contact_unsubscribed"], p.window_days),)

    def score(
        self, p: EngagementParams, account: Account, row: Any, window: Window
    ) -> MeasureResult:
        total = _num(account.facts.get("contacts_total"))
        unsub = _num(account.facts.get("contacts_unsubscribed")) or 0.0
        recent = row[0] if row else 0
        if not total and not recent:
            return MeasureResult(None, {"contacts_total": total, "window_days": p.window_days})
        share = min(1.0, unsub / total) if total else None
        value = scale(share, p.share_good, p.share_bad) if share is not None else 100.0
        if recent:
            value = max(0.0, value - min(p.recent_penalty_max, p.recent_penalty * recent))
        inputs = {
            "contacts_total": int(total) if total else total,
            "contacts_unsubscribed": int(unsub),
            "unsubscribed_share": round(share, 4) if share is not None else None,
            "recent_unsubscribes": recent,
            "window_days": p.window_days,
        }

        def words() -> tuple[list[str], dict[str, str]]:
            texts: dict[str, str] = {}
            drivers = []
            if share is not None:
                texts["unsubscribed_share"] = texts["contacts_unsubscribed"] = (
                    f"{int(unsub)} of {plural(total, 'contact')} unsubscribed from marketing "
                    f"email ({fmt_pct(share)})"
                )
                drivers.append(texts["unsubscribed_share"])
            if recent:
                texts["recent_unsubscribes"] = (
                    f"{plural(recent, 'contact')} unsubscribed {_days(p.window_days)}"
                )
                # The recent ones are the news unless the overall share is the bigger worry.
                if share is None or share <= p.share_good:
                    drivers.insert(0, texts["recent_unsubscribes"])
                else:
                    drivers.append(texts["recent_unsubscribes"])
            return drivers, texts

        return MeasureResult(value, inputs, words=words)


class TechnographicsParams(MeasureParams):
    lookback_days: int = Field(365, ge=1, le=3650)
    widget_missing_penalty: float = Field(50, ge=0, le=100)
    competitor_penalty: float = Field(40, ge=0, le=100)
    extra_competitor_penalty: float = Field(10, ge=0, le=100)


class TechnographicsMeasure(Measure):
    """What is on the customer's site: 100, minus ``widget_missing_penalty`` when our widget
    is not there, minus ``competitor_penalty`` for a competitor (and
    ``extra_competitor_penalty`` for each further one). Current state comes from the facts
    ``widget_present`` / ``competitors``, else from the latest detected/removed events within
    ``lookback_days`` (which also date them: "competitor Intercom detected 12 days ago")."""

    name = "technographics"
    label = "Technographics"
    Params = TechnographicsParams
    default_weight = 10
    inputs = {
        "widget_present": "our widget is on the site",
        "widget_removed_days_ago": "days since our widget was last seen, if removed",
        "competitors": "competitor technologies on the site",
        "competitor_count": "how many",
        "competitor_days_ago": "days since the most recent competitor was detected",
    }
    TYPES = ("widget_detected", "widget_removed", "competitor_detected", "competitor_removed")

    def aggregate(self, p: TechnographicsParams, agg: Aggregates) -> tuple[Any, ...]:
        # One entry per event: w/c (widget/competitor), d/r (detected/removed), time, name.
        return (
            agg.concat(
                self.TYPES,
                p.lookback_days,
                "substr(type, 1, 1) || CASE WHEN type LIKE '%detected' THEN 'd' ELSE 'r' END "
                "|| ts || '|' || COALESCE(json_extract(attrs, '$.technology'), '')",
            ),
        )

    def score(
        self, p: TechnographicsParams, account: Account, row: Any, window: Window
    ) -> MeasureResult:
        facts = account.facts
        widget = facts.get("widget_present")
        competitors = facts.get("competitors")
        if widget is True and competitors == []:
            # The common case, settled by the facts alone: no event needs reading.
            inputs = {
                "widget_present": True,
                "widget_removed_days_ago": None,
                "competitors": [],
                "competitor_count": 0,
                "competitor_days_ago": None,
            }
            return MeasureResult(
                100.0,
                inputs,
                ["our widget on the site, no competitor detected"],
                {},
            )
        seen: dict[tuple[str, str], list[str]] = {}  # (w/c, name) -> [last detected, last removed]
        entries = row[0] if row else None
        for entry in entries.split(SEP) if entries else ():
            ts, _, tech = entry[2:].partition("|")
            slot = seen.setdefault((entry[:1], tech), ["", ""])
            index = 0 if entry[1:2] == "d" else 1
            if ts > slot[index]:
                slot[index] = ts
        widget_removed_ts = max((r for (k, _), (d, r) in seen.items() if k == "w"), default="")
        if widget is None:
            widget_states = [d > r for (k, _), (d, r) in seen.items() if k == "w"]
            if widget_states:
                widget = any(widget_states)
        if competitors is None:
            found = sorted(t for (k, t), (d, r) in seen.items() if k == "c" and d > r)
            if found or any(k == "c" for k, _ in seen):
                competitors = found
        if isinstance(competitors, str):
            competitors = [competitors]
        if widget is None and competitors is None:
            return MeasureResult(None, {"widget_present": None, "competitors": None})
        competitors = list(competitors or [])
        value = 100.0
        if widget is False:
            value -= p.widget_missing_penalty
        if competitors:
            value -= p.competitor_penalty + p.extra_competitor_penalty * (len(competitors) - 1)
        removed_days = (
            days_since(widget_removed_ts, window.as_of)
            if widget is False and widget_removed_ts
            else None
        )
        detected_days = {
            t: days_since(seen[("c", t)][0], window.as_of) if seen.get(("c", t), [""])[0] else None
            for t in competitors
        }
        ages = [d for d in detected_days.values() if d is not None]
        inputs = {
            "widget_present": widget,
            "widget_removed_days_ago": removed_days,
            "competitors": competitors,
            "competitor_count": len(competitors),
            "competitor_days_ago": min(ages) if ages else None,
        }

        def words() -> tuple[list[str], dict[str, str]]:
            texts: dict[str, str] = {}
            drivers = []
            if widget is False:
                texts["widget_present"] = texts["widget_removed_days_ago"] = (
                    f"our widget removed from the site {plural(removed_days, 'day')} ago"
                    if removed_days is not None
                    else "our widget not detected on the site"
                )
                drivers.append(texts["widget_present"])
            for tech in sorted(
                competitors, key=lambda t: (detected_days[t] is None, detected_days[t] or 0)
            ):
                when = detected_days[tech]
                drivers.append(
                    f"competitor {tech} detected {plural(when, 'day')} ago"
                    if when is not None
                    else f"competitor {tech} on the site"
                )
            if competitors:
                first = drivers[1 if widget is False else 0]
                texts["competitors"] = texts["competitor_count"] = first
                texts["competitor_days_ago"] = first
            if not drivers:
                drivers.append(
                    "our widget on the site, no competitor detected"
                    if widget
                    else "no competitor detected"
                )
            return drivers, texts

        return MeasureResult(max(0.0, value), inputs, words=words)


class RelationshipParams(MeasureParams):
    good_days: int = Field(30, ge=0)
    bad_days: int = Field(120, ge=1)
    no_owner_penalty: float = Field(30, ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> RelationshipParams:
        if self.bad_days <= self.good_days:
            raise ValueError("bad_days must be above good_days")
        return self


class RelationshipMeasure(Measure):
    """The CSM relationship: days since the last touch (fact ``last_touch``), 100 within
    ``good_days``, 0 at ``bad_days``; minus ``no_owner_penalty`` when nobody owns the
    account. No last touch and an owner: no data."""

    name = "relationship"
    label = "Relationship"
    Params = RelationshipParams
    default_weight = 5
    inputs = {
        "days_since_touch": "days since the CSM last contacted the company",
        "owner_assigned": "an owner (CSM) is assigned",
    }

    def score(
        self, p: RelationshipParams, account: Account, row: Any, window: Window
    ) -> MeasureResult:
        last = account.facts.get("last_touch")
        days = days_since(str(last), window.as_of) if last else None
        owner = bool(account.owner_id)
        inputs = {"days_since_touch": days, "owner_assigned": owner}
        if days is None and owner:
            return MeasureResult(None, inputs)
        value = 100.0 if days is None else scale(days, p.good_days, p.bad_days)
        if not owner:
            value = max(0.0, value - p.no_owner_penalty)

        def words() -> tuple[list[str], dict[str, str]]:
            texts: dict[str, str] = {}
            drivers = []
            if days is not None:
                texts["days_since_touch"] = f"last CSM touch {plural(days, 'day')} ago"
                drivers.append(texts["days_since_touch"])
            if not owner:
                texts["owner_assigned"] = "no owner assigned"
                drivers.insert(0 if days is None or days <= p.good_days else 1, "no owner assigned")
            return drivers, texts

        return MeasureResult(value, inputs, words=words)


# ----------------------------------------------------------------------------------------
# Growth and lifecycle
# ----------------------------------------------------------------------------------------


class GrowthParams(MeasureParams):
    window_days: int = Field(90, ge=1, le=3650)
    neutral: float = Field(75, ge=0, le=100)
    growth_full_pct: float = Field(0.2, gt=0)
    decline_full_pct: float = Field(0.3, gt=0)
    change_points: float = Field(10, ge=0, le=100)


class GrowthMeasure(Measure):
    """Revenue trend over the window: ``neutral`` when MRR is flat, up to 100 at
    ``growth_full_pct`` growth, down to 0 at ``decline_full_pct`` decline (MRR change from
    ``mrr_changed`` events, else upgrade/downgrade amounts, against the MRR at the start of
    the window). Without an MRR base, ± ``change_points`` per upgrade/downgrade. A cancelled
    subscription (event in the window, or ``subscription_status`` canceled) scores 0."""

    name = "growth"
    label = "Growth"
    Params = GrowthParams
    default_weight = 10
    default_caps = [{"input": "growth.cancelled", "at_least": 1, "max": 20}]
    inputs = {
        "mrr": "MRR now",
        "mrr_change": "MRR change over the window",
        "mrr_change_pct": "change / MRR at the start of the window",
        "upgrades": "upgrades in the window",
        "downgrades": "downgrades in the window",
        "seats": "seats now",
        "seats_change": "seats change over the window",
        "cancelled": "1 if the subscription was cancelled",
        "cancel_reason": "reason given",
    }
    TYPES = (
        "mrr_changed",
        "subscription_upgraded",
        "subscription_downgraded",
        "subscription_cancelled",
    )
    _CODE = {"m": 0, "u": 1, "d": 2, "c": 3}

    def aggregate(self, p: GrowthParams, agg: Aggregates) -> tuple[Any, ...]:
        # One entry per event: m/u/d/c, MRR delta, seats delta, time, cancellation reason.
        return (
            agg.concat(
                self.TYPES,
                p.window_days,
                "CASE type WHEN 'mrr_changed' THEN 'm' WHEN 'subscription_upgraded' THEN 'u' "
                "WHEN 'subscription_downgraded' THEN 'd' ELSE 'c' END || "
                "COALESCE(json_extract(attrs, '$.delta'), json_extract(attrs, '$.mrr_after') - "
                "json_extract(attrs, '$.mrr_before'), '') || '|' || "
                "COALESCE(json_extract(attrs, '$.seats_after') - json_extract(attrs, '$.seats_before'), '') "
                "|| '|' || ts || '|' || COALESCE(json_extract(attrs, '$.reason'), '')",
            ),
        )

    def score(self, p: GrowthParams, account: Account, row: Any, window: Window) -> MeasureResult:
        mrr = _num(account.mrr)
        status = str(account.facts.get("subscription_status") or "").lower()
        entries = row[0] if row else None
        if mrr is None and not status and not entries:
            return MeasureResult(None, {"mrr": None})
        mrr_delta = updown_delta = 0.0
        mrr_events = ups = downs = seat_delta = 0
        cancel_ts, reason = "", ""
        for entry in entries.split(SEP) if entries else ():
            code = entry[:1]
            delta, seats, ts, why = (entry[1:].split("|", 3) + ["", "", "", ""])[:4]
            if code == "c":
                if ts > cancel_ts:
                    cancel_ts, reason = ts, why
                continue
            amount = _num(delta) or 0.0
            if code == "m":
                mrr_events += 1
                mrr_delta += amount
            else:
                updown_delta += amount
                seat_delta += int(_num(seats) or 0)
                if code == "u":
                    ups += 1
                else:
                    downs += 1
        delta = mrr_delta if mrr_events else updown_delta
        cancelled = bool(cancel_ts) or status in ("canceled", "cancelled")
        pct = delta / (mrr - delta) if mrr is not None and mrr - delta > 0 else None
        if cancelled:
            value = 0.0
        elif pct is not None:
            if pct >= 0:
                value = p.neutral + (100 - p.neutral) * min(1.0, pct / p.growth_full_pct)
            else:
                value = p.neutral * (1 - min(1.0, -pct / p.decline_full_pct))
        else:
            value = max(0.0, min(100.0, p.neutral + p.change_points * (ups - downs)))
        seats = account.seats
        inputs = {
            "mrr": mrr,
            "mrr_change": round(delta, 2),
            "mrr_change_pct": round(pct, 4) if pct is not None else None,
            "upgrades": ups,
            "downgrades": downs,
            "seats": seats,
            "seats_change": seat_delta,
            "cancelled": 1 if cancelled else 0,
            "cancel_reason": reason or None,
        }

        def words() -> tuple[list[str], dict[str, str]]:
            within = _days(p.window_days)
            texts: dict[str, str] = {}
            drivers = []
            if cancelled:
                when = days_since(cancel_ts, window.as_of) if cancel_ts else None
                text = "subscription cancelled"
                if when is not None:
                    text += f" {plural(when, 'day')} ago"
                if reason:
                    text += f" (reason: {reason})"
                texts["cancelled"] = texts["cancel_reason"] = text
                drivers.append(text)
            if pct is not None and delta:
                text = (
                    f"MRR {'up' if delta > 0 else 'down'} {fmt_pct(abs(pct))} "
                    f"({fmt_money(round(mrr - delta, 2))} → {fmt_money(round(mrr, 2))}) {within}"
                )
            elif mrr:
                text = f"MRR steady at {fmt_money(round(mrr, 2))} {within}"
            elif mrr is not None:
                text = "no recurring revenue (MRR $0)"
            else:
                text = f"{plural(ups, 'upgrade')} and {plural(downs, 'downgrade')} {within}"
            texts["mrr_change_pct"] = texts["mrr_change"] = text
            if not cancelled:  # after a cancellation the MRR line only repeats it
                drivers.append(text)
            if seat_delta and seats is not None:
                texts["seats_change"] = (
                    f"seats {seats - seat_delta} → {seats} ({seat_delta:+d}) {within}"
                )
                drivers.append(texts["seats_change"])
            if downs:
                texts["downgrades"] = f"{plural(downs, 'downgrade')} {within}"
                if delta >= 0 and not cancelled:
                    drivers.append(texts["downgrades"])
            if ups:
                texts["upgrades"] = f"{plural(ups, 'upgrade')} {within}"
            return drivers, texts

        return MeasureResult(value, inputs, words=words)


class LifecycleParams(MeasureParams):
    soon_days: int = Field(90, ge=1, le=3650)
    due_score: float = Field(60, ge=0, le=100)
    lapsed_score: float = Field(30, ge=0, le=100)


class LifecycleMeasure(Measure):
    """Renewal exposure: 100 when the renewal is more than ``soon_days`` away, falling to
    ``due_score`` on the renewal day; ``lapsed_score`` once the renewal date has passed."""

    name = "lifecycle"
    label = "Lifecycle"
    Params = LifecycleParams
    default_weight = 5
    inputs = {
        "renewal_date": "next renewal date",
        "days_to_renewal": "days until it (negative: passed)",
        "lifecycle_stage": "HubSpot lifecycle stage",
    }

    def score(
        self, p: LifecycleParams, account: Account, row: Any, window: Window
    ) -> MeasureResult:
        renewal = parse_date(account.renewal_date or account.facts.get("renewal_date"))
        stage = account.lifecycle_stage
        if renewal is None:
            return MeasureResult(None, {"renewal_date": None, "lifecycle_stage": stage})
        days = (renewal - window.today).days
        if days < 0:
            value = p.lapsed_score
        elif days > p.soon_days:
            value = 100.0
        else:
            value = p.due_score + (100 - p.due_score) * days / p.soon_days
        inputs = {
            "renewal_date": renewal.isoformat(),
            "days_to_renewal": days,
            "lifecycle_stage": stage,
        }

        def words() -> tuple[list[str], dict[str, str]]:
            if days < 0:
                text = f"renewal date {renewal.isoformat()} passed {plural(-days, 'day')} ago"
            else:
                text = f"renewal in {plural(days, 'day')} ({renewal.isoformat()})"
            return [text], {"days_to_renewal": text, "renewal_date": text}

        return MeasureResult(value, inputs, words=words)


# ----------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------


def _weight_units(weights: dict[str, float]) -> tuple[dict[str, int], int]:
    """Weights as integers (scaled by a power of ten) so sums are exact."""
    places = 0
    for w in weights.values():
        exponent = Decimal(repr(float(w))).normalize().as_tuple().exponent
        places = max(places, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
    places = min(places, 6)
    factor = 10**places
    return {n: int(Decimal(repr(float(w))) * factor) for n, w in weights.items()}, factor


class WeightedSettings(ModelSettings):
    type: Literal["weighted"] = "weighted"
    weights: dict[str, float]
    caps: list[Cap] = Field(default_factory=list)


class WeightedModel(HealthModel):
    """score = Σ(weight · measure) / Σ(weight of measures with data); bands on the score.

    Measures without data are left out and the other weights renormalise (never counted as
    0). ``caps``: when a cap's condition holds, the score is at most its ``max`` (shown as a
    separate line of the calculation, so the lines still add up).
    """

    name = "weighted"
    Settings = WeightedSettings

    def __init__(self, model_name: str, settings: WeightedSettings, ctx: ModelContext):
        super().__init__(model_name, settings, ctx)
        where = f"health.models.{model_name}"
        if not settings.weights:
            raise ctx.fail(
                f"{where}.weights", "needs at least one measure", hint="e.g. billing = 20"
            )
        for name, weight in settings.weights.items():
            if name not in ctx.measures:
                raise ctx.fail(
                    f"{where}.weights.{name}",
                    f"unknown measure {name!r}",
                    hint=f"known: {', '.join(sorted(ctx.measures))}",
                )
            if weight < 0:
                raise ctx.fail(
                    f"{where}.weights.{name}",
                    f"weight {weight:g} is negative",
                    hint="use 0 or more",
                )
        if not any(w > 0 for w in settings.weights.values()):
            raise ctx.fail(
                f"{where}.weights",
                "every weight is 0",
                hint="give at least one measure a weight above 0",
            )
        try:
            check_bands(settings.bands, 0, 100, "(scores are 0-100)")
        except ValueError as exc:
            raise ctx.fail(f"{where}.bands", str(exc)) from None
        for i, cap in enumerate(settings.caps):
            ctx.check_condition(cap, f"{where}.caps.{i}")
        self.bands = dict(settings.bands) if settings.bands else dict(ctx.bands)
        self.weights = {n: float(w) for n, w in settings.weights.items() if w > 0}
        self.units, self.factor = _weight_units(self.weights)

    @property
    def score_bands(self) -> dict[str, float]:
        return self.bands

    def measures_needed(self) -> list[str]:
        names = list(self.weights)
        for cap in self.settings.caps:
            head = (cap.input or "").partition(".")[0]
            if cap.input and head != "account" and head not in names:
                names.append(head)
        return names

    def conditions(self) -> list[Cap]:
        return list(self.settings.caps)

    def combine(
        self, results: dict[str, MeasureResult], lookup: Lookup, *, detail: bool = False
    ) -> Outcome:
        numerator = denominator = 0
        present: list[tuple[str, int, int]] = []
        for name, units in self.units.items():
            value_h = results[name].value_h
            if value_h is None:
                continue
            numerator += units * value_h
            denominator += units
            present.append((name, units, value_h))
        weights = self.weights
        details: dict[str, Any] = {"bands": self.bands}
        if not denominator:
            details["excluded"] = list(self.units)
            return Outcome(None, None, None, details=details, weights=weights)
        # Exact value cut after the 2nd decimal: rounding it half up gives the same integer as
        # rounding the exact value (every .5 boundary is a multiple of 0.01).
        exact = numerator // denominator
        # Drivers: points each measure costs against a perfect 100, worst first.
        drivers: list[tuple[float, Any]] = [
            ((value_h - 10000) * units / denominator / 100, results[name])
            for name, units, value_h in present
        ]
        contributions: list[Contribution] = []
        if detail:
            parts = []
            for name, units, value_h in present:
                q, r = divmod(units * value_h, denominator)
                parts.append([name, units, value_h, q, r])
            short = exact - sum(part[3] for part in parts)
            # Largest remainders get the missing hundredths: the stated lines add up exactly.
            for part in sorted(parts, key=lambda part: -part[4])[:short]:
                part[3] += 1
            total_w = denominator / self.factor
            contributions = [
                Contribution(
                    name,
                    self.ctx.measures[name].label or name,
                    amount,
                    weight=weights[name],
                    measure_h=value_h,
                    detail=f"{weights[name]:g} / {total_w:g} × {value_h / 100:.2f}",
                )
                for name, units, value_h, amount, _ in parts
            ]
            details["weight_total"] = total_w
            details["excluded"] = [n for n in self.units if results[n].value_h is None]
        covered: set[str] = set()
        for cap in self.settings.caps:
            value = lookup.value(cap)
            cap_h = hundredths(cap.max)
            if exact > cap_h and cap.holds(value):
                reason = lookup.describe(cap, value)
                if detail:
                    contributions.append(
                        Contribution("cap", f"capped at {cap.max:g}: {reason}", cap_h - exact)
                    )
                    details["capped_by"] = cap.source_text()
                drivers.append((-1000.0, f"{reason}: score capped at {cap.max:g}"))
                covered.add(reason)
                exact = cap_h
        score = (exact + 50) // 100
        return Outcome(
            exact,
            score,
            band_for(score, self.bands),
            contributions,
            drivers,
            details,
            weights,
            covered,
        )


class PointsSettings(ModelSettings):
    type: Literal["points"]
    base: float = 5
    min: float = 0
    max: float = 10
    rules: list[PointsRule] = Field(default_factory=list)


class PointsModel(HealthModel):
    """Points: start at ``base``, each rule that holds adds its (signed) points, clamp to
    ``min``..``max``. Bands (``bands``, in points) apply to the clamped points; without them
    the global bands apply to the 0–100 score = (points − min) / (max − min) × 100."""

    name = "points"
    Settings = PointsSettings

    def __init__(self, model_name: str, settings: PointsSettings, ctx: ModelContext):
        super().__init__(model_name, settings, ctx)
        where = f"health.models.{model_name}"
        if settings.max <= settings.min:
            raise ctx.fail(
                f"{where}.max", f"max {settings.max:g} must be above min {settings.min:g}"
            )
        if not settings.min <= settings.base <= settings.max:
            raise ctx.fail(
                f"{where}.base",
                f"base {settings.base:g} is outside {settings.min:g}..{settings.max:g}",
            )
        try:
            check_bands(settings.bands, settings.min, settings.max, "points")
        except ValueError as exc:
            raise ctx.fail(f"{where}.bands", str(exc)) from None
        for i, rule in enumerate(settings.rules):
            ctx.check_condition(rule, f"{where}.rules.{i}")
        self.base_h = hundredths(settings.base)
        self.min_h = hundredths(settings.min)
        self.max_h = hundredths(settings.max)

    def measures_needed(self) -> list[str]:
        names: list[str] = []
        for rule in self.settings.rules:
            head = (rule.input or "").partition(".")[0]
            if rule.input and head != "account" and head not in names:
                names.append(head)
        return names

    def conditions(self) -> list[PointsRule]:
        return list(self.settings.rules)

    def combine(
        self, results: dict[str, MeasureResult], lookup: Lookup, *, detail: bool = False
    ) -> Outcome:
        s = self.settings
        contributions = [Contribution("base", "base points", self.base_h)]
        drivers: list[tuple[float, str]] = []
        rules = []
        total = self.base_h
        span = (self.max_h - self.min_h) / 100
        for i, rule in enumerate(s.rules):
            value = lookup.value(rule)
            hit = rule.points_for(value)
            rules.append(
                {
                    "rule": i + 1,
                    "on": rule.source_text(),
                    "value": value,
                    "points": hit[0] if hit else 0,
                    "held": hit[1] if hit else None,
                }
            )
            if hit is None or not hit[0]:
                continue
            points, held = hit
            points_h = hundredths(points)
            total += points_h
            text = lookup.describe(rule, value)
            contributions.append(
                Contribution(f"rule {i + 1}", text, points_h, detail=f"{rule.source_text()} {held}")
            )
            drivers.append((points * 100 / span, f"{text} ({points:+g} points)"))
        clamped = min(max(total, self.min_h), self.max_h)
        if clamped != total:
            contributions.append(
                Contribution("clamp", f"clamped to {s.min:g}..{s.max:g}", clamped - total)
            )
        exact = (clamped - self.min_h) * 10000 // (self.max_h - self.min_h)
        score = (exact + 50) // 100
        points = clamped / 100
        band = band_for(points, s.bands) if s.bands else band_for(score, self.ctx.bands)
        details = {
            "base": s.base,
            "min": s.min,
            "max": s.max,
            "points_raw": total / 100,
            "points": points,
            "rules": rules,
            "bands": dict(s.bands) if s.bands else self.ctx.bands,
            "bands_on": "points" if s.bands else "score",
            "scaling": f"score = (points - {s.min:g}) / ({s.max:g} - {s.min:g}) × 100",
        }
        if not drivers:
            drivers.append((0.0, f"no rule applies: {points:g} points (base {s.base:g})"))
        return Outcome(exact, score, band, contributions, drivers, details)


MEASURES = (
    SupportMeasure,
    SupportLoadMeasure,
    CsatMeasure,
    NpsMeasure,
    BillingMeasure,
    EngagementMeasure,
    TechnographicsMeasure,
    RelationshipMeasure,
    GrowthMeasure,
    LifecycleMeasure,
)
MODELS = (WeightedModel, PointsModel)


@hub.hookimpl
def register_health_models(register):
    for cls in (*MEASURES, *MODELS):
        register(cls)


__all__ = [
    "MEASURES",
    "MODELS",
    "PointsModel",
    "WeightedModel",
    *(cls.__name__ for cls in MEASURES),
]
