"""Engagement, technographics and relationship measures: marketing unsubscribes, what is
on the customer's site, and how recently and how often the CSM and the customer talked."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

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
                "|| ts || '|' || COALESCE(subject_id, '')",
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
    by_segment = ("target_days", "touches_per_30d")

    target_days: int | dict[str, int] = 30
    """A two-way touch is due within this many days (or a table by segment)."""
    touches_per_30d: float | dict[str, float] = 2.0
    """Customer-facing touches expected per 30 days (or a table by segment; 0: not scored)."""
    stale_multiple: float = Field(4.0, gt=1, le=20)
    cadence_weight: float = Field(0.3, ge=0, le=1)
    lookback_days: int = Field(365, ge=30, le=3650)
    no_owner_penalty: float = Field(30, ge=0, le=100)

    @field_validator("target_days", "touches_per_30d")
    @classmethod
    def _by_segment(cls, value: Any, info: ValidationInfo) -> Any:
        floor = 1 if info.field_name == "target_days" else 0
        values = value.values() if isinstance(value, dict) else [value]
        for v in values:
            if v < floor or v > 3650:
                raise ValueError(f"must be between {floor} and 3650")
        if isinstance(value, dict) and "default" not in value:
            # Segments not named use the built-in default.
            default = cls.model_fields[str(info.field_name)].default
            value = {"default": default, **value}
        return value


class RelationshipMeasure(Measure):
    """The CSM relationship, from the touches logged in the CRM (``csm_touch`` events).

    Recency: days since the last **two-way** touch (the customer took part) against
    ``target_days``: 100 within it, 0 at ``stale_multiple`` × ``target_days`` (and with no
    two-way touch in ``lookback_days``). Cadence: customer-facing touches (notes are internal
    and do not count) in the last 30 days, 100 at ``touches_per_30d`` or more, proportionally
    below. The score is recency × (1 − ``cadence_weight``) + cadence × ``cadence_weight``;
    ``target_days`` and ``touches_per_30d`` may differ by segment
    (``{ default = 30, enterprise = 14 }``). Without any touch event the CRM's last-contacted
    date (fact ``last_touch``) scores recency alone. ``no_owner_penalty`` comes off when
    nobody owns the account. No touch, no last-contacted date and an owner: no data (the
    measure is left out, never counted as 0).
    """

    name = "relationship"
    label = "Relationship"
    Params = RelationshipParams
    default_weight = 5
    inputs = {
        "days_since_touch": "days since the last two-way touch (lookback_days when none in it)",
        "days_since_any_touch": "days since the last touch of any kind",
        "touches_30d": "customer-facing touches in the last 30 days",
        "target_days": "the account's target for days between two-way touches",
        "touches_target": "the account's target for touches per 30 days",
        "owner_assigned": "an owner (CSM) is assigned",
    }
    # One entry per touch: <time>|<1 if two-way>|<1 if customer-facing> (notes are
    # internal). One column, not three: every column costs SQLite work on every event row.
    TOUCH = (
        "ts || CASE WHEN json_extract(attrs, '$.two_way') THEN '|1' ELSE '|0' END || "
        "CASE WHEN json_extract(attrs, '$.direction') = 'internal' THEN '|0' ELSE '|1' END"
    )

    def aggregate(self, p: RelationshipParams, agg: Aggregates) -> tuple[Any, ...]:
        return (agg.concat(["csm_touch"], p.lookback_days, self.TOUCH),)

    @staticmethod
    def _touches(entries: str | None, window: Window) -> tuple[str | None, str | None, int]:
        """(latest two-way touch, latest touch, customer-facing touches in the last 30 days)."""
        if not entries:
            return None, None, 0
        since = window.since(30)
        two_way = last = ""
        touches = 0
        for entry in entries.split(SEP):
            ts, flags = entry[:-4], entry[-4:]
            if ts > last:
                last = ts
            if flags[1] == "1" and ts > two_way:
                two_way = ts
            if flags[3] == "1" and ts >= since:
                touches += 1
        return two_way or None, last or None, touches

    def score(
        self, p: RelationshipParams, account: Account, row: Any, window: Window
    ) -> MeasureResult:
        target = int(p.for_segment("target_days", account.segment))
        per_30 = float(p.for_segment("touches_per_30d", account.segment))
        last_two_way, last_any, touches = self._touches(row[0] if row else None, window)
        owner = bool(account.owner_id)
        inputs: dict[str, Any] = {
            "days_since_touch": None,
            "days_since_any_touch": days_since(last_any, window.as_of),
            "touches_30d": touches,
            "target_days": target,
            "touches_target": per_30,
            "owner_assigned": owner,
        }
        recency: float | None = None
        cadence: float | None = None
        recency_text = None
        if last_any is not None:
            days = days_since(last_two_way, window.as_of)
            if days is None:
                inputs["days_since_touch"] = p.lookback_days
                recency = 0.0
                recency_text = (
                    f"no two-way touch in the last {p.lookback_days} days (target {target})"
                )
            else:
                inputs["days_since_touch"] = days
                recency = scale(days, target, target * p.stale_multiple)
                recency_text = f"last two-way touch {plural(days, 'day')} ago (target {target})"
            if per_30 > 0:
                cadence = min(100.0, 100.0 * touches / per_30)
        else:
            contacted = account.facts.get("last_touch")
            days = days_since(str(contacted), window.as_of) if contacted else None
            if days is not None:
                # No activity data (no scope, or none synced): the CRM's last-contacted date.
                inputs["days_since_touch"] = inputs["days_since_any_touch"] = days
                recency = scale(days, target, target * p.stale_multiple)
                recency_text = f"last contacted {plural(days, 'day')} ago (target {target})"
        if recency is None and owner:
            return MeasureResult(
                None,
                inputs,
                [f"no CSM touch logged in the last {p.lookback_days} days"],
                {},
            )
        w = p.cadence_weight if cadence is not None else 0.0
        value = 100.0 if recency is None else recency * (1 - w) + (cadence or 0.0) * w
        if not owner:
            value = max(0.0, value - p.no_owner_penalty)
        losses = {
            "days_since_touch": (1 - w) * (100 - recency) if recency is not None else -1.0,
            "touches_30d": w * (100 - cadence) if cadence is not None else -1.0,
            "owner_assigned": p.no_owner_penalty if not owner else -1.0,
        }

        def words() -> tuple[list[str], dict[str, str]]:
            texts: dict[str, str] = {}
            if recency_text is not None:
                texts["days_since_touch"] = recency_text
            if cadence is not None:
                texts["touches_30d"] = (
                    f"{plural(touches, 'touch', 'touches')} in the last 30 days (target {_number(per_30)})"
                )
            if not owner:
                texts["owner_assigned"] = "no owner assigned"
            # The biggest loss first; ties keep recency before cadence before the owner.
            order = sorted(texts, key=lambda k: -losses[k])
            return [texts[k] for k in order], texts

        return MeasureResult(value, inputs, words=words)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
