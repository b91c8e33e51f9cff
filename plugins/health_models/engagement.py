"""Engagement, technographics and relationship measures: marketing unsubscribes, what is
on the customer's site, and how recently the CSM touched the account."""

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
    fmt_pct,
    plural,
    scale,
)
from plugins.health_models._common import SEP, OrderedParams, _days, _num


class EngagementParams(OrderedParams):
    ordered = (("share_good", "share_bad"),)

    window_days: int = Field(90, ge=1, le=3650)
    share_good: float = Field(0.05, ge=0, le=1)
    share_bad: float = Field(0.5, ge=0, le=1)
    recent_penalty: float = Field(5, ge=0, le=100)
    recent_penalty_max: float = Field(25, ge=0, le=100)


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


class RelationshipParams(OrderedParams):
    ordered = (("good_days", "bad_days"),)

    good_days: int = Field(30, ge=0)
    bad_days: int = Field(120, ge=1)
    no_owner_penalty: float = Field(30, ge=0, le=100)


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
