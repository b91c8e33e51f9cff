"""Growth and lifecycle measures: revenue trend, cancellations, renewal exposure."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hub.health import (
    Account,
    Aggregates,
    Measure,
    MeasureParams,
    MeasureResult,
    Window,
    days_since,
    fmt_money,
    fmt_pct,
    parse_date,
    plural,
)
from hub.text import humanize
from plugins.health_models._common import SEP, _days, _num


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
    the window). Without an MRR base, ± ``change_points`` per upgrade/downgrade. A
    cancellation that ends the account (the event's ``ends_account``, else no active
    subscription left per the ``active_subscriptions`` fact; or ``subscription_status``
    canceled with none left) scores 0 and caps the default model. Cancelling one of several
    subscriptions is a contraction: it counts like a downgrade (its MRR drop shows in the
    trend), never as churn."""

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
        "cancelled": "1 if a cancellation ends the account (its last active subscription)",
        "cancel_reason": "reason given",
        "contractions": "subscriptions cancelled while others stay active",
    }
    TYPES = (
        "mrr_changed",
        "subscription_upgraded",
        "subscription_downgraded",
        "subscription_cancelled",
    )
    _CODE = {"m": 0, "u": 1, "d": 2, "c": 3}

    def aggregate(self, p: GrowthParams, agg: Aggregates) -> tuple[Any, ...]:
        # One entry per event: m/u/d/c, MRR delta, seats delta, time, whether a cancellation
        # ends the account, cancellation reason.
        return (
            agg.concat(
                self.TYPES,
                p.window_days,
                "CASE type WHEN 'mrr_changed' THEN 'm' WHEN 'subscription_upgraded' THEN 'u' "
                "WHEN 'subscription_downgraded' THEN 'd' ELSE 'c' END || "
                "COALESCE(json_extract(attrs, '$.delta'), json_extract(attrs, '$.mrr_after') - "
                "json_extract(attrs, '$.mrr_before'), '') || '|' || "
                "COALESCE(json_extract(attrs, '$.seats_after') - json_extract(attrs, '$.seats_before'), '') "
                "|| '|' || ts || '|' || COALESCE(json_extract(attrs, '$.ends_account'), '') || '|' "
                "|| COALESCE(json_extract(attrs, '$.reason'), '')",
            ),
        )

    def score(self, p: GrowthParams, account: Account, row: Any, window: Window) -> MeasureResult:
        mrr = _num(account.mrr)
        status = str(account.facts.get("subscription_status") or "").lower()
        entries = row[0] if row else None
        if mrr is None and not status and not entries:
            return MeasureResult(None, {"mrr": None})
        mrr_delta = updown_delta = 0.0
        mrr_events = ups = downs = seat_delta = contractions = 0
        cancel_ts, reason = "", ""
        active = _num(account.facts.get("active_subscriptions"))
        none_left = active is None or active <= 0
        for entry in entries.split(SEP) if entries else ():
            code = entry[:1]
            delta, seats, ts, ends, why = (entry[1:].split("|", 4) + [""] * 5)[:5]
            if code == "c":
                if ends in ("1", "true") or (ends == "" and none_left):
                    if ts > cancel_ts:
                        cancel_ts, reason = ts, why
                else:
                    contractions += 1
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
        cancelled = bool(cancel_ts) or (status in ("canceled", "cancelled") and none_left)
        pct = delta / (mrr - delta) if mrr is not None and mrr - delta > 0 else None
        if cancelled:
            value = 0.0
        elif pct is not None:
            if pct >= 0:
                value = p.neutral + (100 - p.neutral) * min(1.0, pct / p.growth_full_pct)
            else:
                value = p.neutral * (1 - min(1.0, -pct / p.decline_full_pct))
        else:
            value = max(0.0, min(100.0, p.neutral + p.change_points * (ups - downs - contractions)))
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
            "contractions": contractions,
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
                    text += f" (reason: {humanize(reason)})"
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
            if contractions:
                left = f", {plural(active, 'subscription')} still active" if active else ""
                texts["contractions"] = (
                    f"{plural(contractions, 'subscription')} cancelled {within} (contraction{left})"
                )
                drivers.append(texts["contractions"])
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
