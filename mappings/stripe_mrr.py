"""Stripe subscriptions → ``subscription_mrr`` events: each subscription's MRR history.

The portfolio (``hub.portfolio``) reads MRR history through one vendor-neutral contract: an
event ``subscription_mrr`` per change of one subscription's monthly recurring revenue, whose
``mrr`` attribute is the subscription's MRR *from that moment on* (0 when it ended). Any
billing mapping can emit it; this module is Stripe's. It follows the conventions of
subscription-analytics tools (ChartMogul, Baremetrics):

- MRR is normalised to a month: yearly ÷ 12 (weekly × 52/12, daily × 365/12, and
  ``interval_count`` divides), quantity × unit amount summed over the items;
- discounts are applied while they run (``percent_off``, or ``amount_off`` spread over the
  billing interval); one-off (``duration: once``) coupons do not change MRR;
- a trial counts from its end, not its start; ``incomplete`` subscriptions never had MRR;
- a subscription ends at ``ended_at`` (a pending cancellation is not churn until it takes
  effect), and the end carries the cancellation reason (``feedback``, else ``reason``).

History comes from the subscription object (start, trial, end, current items) and from the
``customer.subscription.updated`` entries of Stripe's event log (``previous_attributes``
gives the MRR before each change). Stripe keeps its log 30 days, so a change older than the
first sync is seen only as the subscription's MRR since its start: the history is exact from
the first sync on, and the total is always right (the last point is the current MRR).

Ids are ``stripe:subscription_mrr:<subscription id>:<unix time>``; a subscription's points are
recomputed whole whenever its object or one of its log entries arrives, and points that no
longer hold are retracted, so incremental mapping and a full rebuild give the same events.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import hub
from hub.store import raw_table_name
from hub.timeline import Mapping, MappingContext
from hub.vocabulary import EventType
from mappings.stripe import SOURCE, SOURCE_INFO
from mappings.stripe.objects import as_dict as _dict
from mappings.stripe.objects import before_update as _before
from mappings.stripe.objects import (
    dashboard,
    discounted,
    discounts,
    mrr_and_seats,
    plan_name,
)
from mappings.stripe.objects import num as _num
from mappings.stripe.objects import ref as _id

EVENT = "subscription_mrr"
EVENT_TYPES = [
    EventType(
        EVENT,
        "One subscription's MRR from this moment on, normalised to a month (attrs: "
        "subscription_id, mrr, mrr_before, plan, seats, reason when it ended)",
        polarity="neutral",
        noun=("subscription MRR change", "subscription MRR changes"),
    )
]
NO_MRR = {"incomplete", "incomplete_expired"}
CHUNK = 2000  # subscriptions recomputed together in finalize


def subscription_points(
    sub: dict[str, Any], changes: Iterable[tuple[int, float, float]], now: int
) -> list[tuple[int, float]]:
    """(unix time, MRR in cents from then on) for one subscription, oldest first.

    ``changes`` are the log's (time, MRR before, MRR after) of the subscription's updates,
    before discounts. Consecutive equal values are merged; nothing after ``now`` is kept.
    """
    if sub.get("status") in NO_MRR:
        return []
    start = int(_num(sub.get("start_date")) or _num(sub.get("created")) or 0)
    if not start:
        return []
    trial_end = int(_num(sub.get("trial_end")) or 0)
    start = max(start, trial_end)
    ended = _num(sub.get("ended_at")) if sub.get("status") == "canceled" else None
    end = int(ended) if ended else None
    logged = sorted(c for c in changes if start < c[0] and (end is None or c[0] < end))
    current, _ = mrr_and_seats(sub)
    base = [(start, logged[0][1] if logged else current)] + [(t, after) for t, _, after in logged]
    active = discounts(sub)
    times = sorted(
        {t for t, _ in base}
        | {
            t
            for s, e, _, _ in active
            for t in (s, e)
            if t and start < t and (end is None or t < end)
        }
    )
    points: list[tuple[int, float]] = []
    for t in times:
        value = [v for bt, v in base if bt <= t][-1]
        points.append((t, round(discounted(value, t, active), 2)))
    if end is not None:
        points.append((max(end, start), 0.0))
    merged: list[tuple[int, float]] = []
    for t, value in points:
        if t > now:
            break
        if merged and merged[-1][0] == t:
            merged[-1] = (t, value)
        elif not merged or merged[-1][1] != value:
            merged.append((t, value))
    if merged and merged[0][1] == 0:
        merged.pop(0)  # a subscription that never billed anything has no history
    return merged


class StripeMrrHistory(Mapping):
    """Stripe subscriptions' MRR history as ``subscription_mrr`` events for the portfolio."""

    name = "stripe_mrr"
    connector = "stripe"
    streams = ["subscriptions", "events"]
    source = SOURCE_INFO
    event_types = EVENT_TYPES

    def map_rows(self, ctx: MappingContext, stream: str, rows: Iterable[dict[str, Any]]) -> None:
        # Stored with the map marker (not kept in memory), so a killed run loses nothing.
        for row in rows:
            if stream == "subscriptions":
                ctx.mark_affected(str(row["id"]))
                continue
            event = row["data"]
            obj = _dict(_dict(event.get("data")).get("object"))
            if obj.get("object") == "subscription" and obj.get("id"):
                ctx.mark_affected(str(obj["id"]))

    def finalize(self, ctx: MappingContext) -> None:
        affected = sorted(ctx.affected())
        prefix = f"{SOURCE}:{EVENT}:"
        now = int(ctx.now.timestamp())
        # Subscriptions a few thousand at a time (a first map changes them all), each read
        # once by id, their log entries through the indexed customer ``ref``.
        for start in range(0, len(affected), CHUNK):
            chunk = affected[start : start + CHUNK]
            subs = ctx.raw_many("subscriptions", chunk)
            changes = self._logged_changes(ctx, subs)
            ctx.flush()
            existing: dict[str, set[str]] = {}
            for sub_id in chunk:
                low = f"{prefix}{sub_id}:"
                for (event_id,) in ctx.store.db.execute(
                    "SELECT id FROM events WHERE id >= ? AND id < ?", [low, low + "\uffff"]
                ):
                    existing.setdefault(sub_id, set()).add(event_id)
            for sub_id in chunk:
                sub = subs.get(sub_id)
                kept = self._emit(ctx, sub_id, sub, changes.get(sub_id, []), now) if sub else set()
                for event_id in existing.get(sub_id, set()) - kept:
                    ctx.retract(event_id)

    @staticmethod
    def _logged_changes(
        ctx: MappingContext, subs: dict[str, dict[str, Any]]
    ) -> dict[str, list[tuple[int, float, float]]]:
        """MRR before/after of every logged update of the given subscriptions: the log rows
        of their customers (the indexed ``ref``; rows stored without one are read too)."""
        table = raw_table_name(ctx.connection, "events")
        out: dict[str, list[tuple[int, float, float]]] = {}
        customers = sorted({c for c in (_id(s.get("customer")) for s in subs.values()) if c})
        if not customers or not ctx.store.db[table].exists():
            return out
        rows = ctx.store.db.execute(
            f"SELECT data FROM [{table}] WHERE deleted = 0 "
            "AND (ref IN (SELECT value FROM json_each(?)) OR ref IS NULL) "
            "AND raw_json(data) LIKE '%customer.subscription.updated%'",
            [json.dumps(customers)],
        )
        for (text,) in rows:
            event = ctx.store.decode_raw(text)
            data = _dict(event.get("data"))
            sub = _dict(data.get("object"))
            sub_id = _id(sub.get("id"))
            when = _num(event.get("created"))
            if event.get("type") != "customer.subscription.updated" or sub_id not in subs:
                continue
            before = _before(sub, _dict(data.get("previous_attributes")))
            if before is None or when is None:
                continue
            after, _ = mrr_and_seats(sub)
            if round(before[0], 2) != round(after, 2):
                out.setdefault(sub_id, []).append((int(when), before[0], after))
        return out

    def _emit(
        self,
        ctx: MappingContext,
        sub_id: str,
        sub: dict[str, Any],
        changes: list[tuple[int, float, float]],
        now: int,
    ) -> set[str]:
        customer = _id(sub.get("customer"))
        if not customer:
            return set()
        entity = ctx.entity_key(SOURCE, "customer", customer)
        plan = plan_name(sub)
        _, seats = mrr_and_seats(sub)
        details = _dict(sub.get("cancellation_details"))
        reason = details.get("feedback") or details.get("reason")
        kept = set()
        previous = 0.0
        for when, cents in subscription_points(sub, changes, now):
            mrr, before = round(cents / 100, 2), round(previous / 100, 2)
            ended = cents == 0
            summary = (
                f"Subscription {sub_id} ended: MRR ${before:,.2f} → $0"
                + (f" ({str(reason).replace('_', ' ')})" if reason else "")
                if ended
                else f"Subscription {sub_id} MRR ${before:,.2f} → ${mrr:,.2f}"
            )
            kept.add(
                ctx.event(
                    entity,
                    EVENT,
                    dt.datetime.fromtimestamp(when, dt.timezone.utc),
                    source_id=sub_id,
                    version=when,
                    summary=summary,
                    attrs={
                        "subscription_id": sub_id,
                        "mrr": mrr,
                        "mrr_before": before,
                        "plan": plan,
                        "seats": seats,
                        "reason": (reason or "unknown") if ended else None,
                    },
                    link=dashboard(sub, f"subscriptions/{sub_id}"),
                )
            )
            previous = cents
        return kept


@hub.hookimpl
def register_mappings(register):
    register(StripeMrrHistory)
