"""Support measures: resolution time and backlog (``support``), urgent tickets and reopens
(``support_load``), satisfaction (``csat``) and ``nps``."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from hub.health import (
    Account,
    Aggregates,
    Measure,
    MeasureParams,
    MeasureResult,
    Window,
    fmt_hours,
    fmt_pct,
    plural,
    scale,
)
from plugins.health_models._common import SEP, OrderedParams, _days, _floats, _median, _num


class SupportParams(OrderedParams):
    ordered = (("open_good_days", "open_bad_days"),)

    window_days: int = Field(90, ge=1, le=3650)
    target_hours: float = Field(24, gt=0)
    zero_at_factor: float = Field(3.0, gt=1)
    min_tickets: int = Field(1, ge=1)
    prior_tickets: float = Field(2, ge=0, le=100)
    backlog_days: int = Field(180, ge=1, le=3650)
    open_good_days: float = Field(7, ge=0)
    open_bad_days: float = Field(30, gt=0)
    breach_field: str = "resolution_hours"
    breach_target_hours: float | None = Field(None, gt=0)

    @field_validator("breach_field")
    @classmethod
    def _field(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("breach_field must be an attribute name of ticket_solved events")
        return value


class SupportMeasure(Measure):
    """How well tickets get resolved, the backlog included.

    Every ticket counts once, scored 0–100 on its own: a ticket solved in the window on its
    resolution time (100 at or under ``target_hours``, 0 at ``target_hours ×
    zero_at_factor``, linear between); a ticket still open (a ``ticket_opened`` or
    ``ticket_reopened`` within ``backlog_days`` without a later ``ticket_solved`` of the same
    ``ticket_id``) on its age so far (100 up to ``open_good_days``, 0 at ``open_bad_days``).
    The measure is their mean, smoothed by ``prior_tickets`` imaginary tickets at 100: with
    the default 2, one slow ticket alone scores (0 + 2 × 100) / 3 = 66.67, never 0, and each
    further ticket moves the measure less. Fewer than ``min_tickets`` tickets: no data.

    ``breach_rate`` is the share of solved tickets whose ``breach_field`` attribute
    (resolution hours by default; any numeric attribute of ``ticket_solved``, e.g. a
    first-reply time if the mapping provides one) exceeds ``breach_target_hours`` (default:
    the target).
    """

    name = "support"
    label = "Support resolution"
    Params = SupportParams
    default_weight = 15
    inputs = {
        "tickets_solved": "tickets solved in the window",
        "median_resolution_hours": "median hours from open to solved",
        "target_hours": "the target",
        "open_tickets": "tickets open now (opened or reopened, not solved since)",
        "oldest_open_days": "age in days of the oldest open ticket",
        "breached": "solved tickets over the breach target",
        "breach_rate": "breached / tickets with the breach field (0-1)",
        "window_days": "window",
    }

    def aggregate(self, p: SupportParams, agg: Aggregates) -> tuple[Any, ...]:
        # ``subject_id`` is the ticket id, ``metric`` the resolution hours (typed columns of
        # ``events``, filled from ``attrs`` when the row was written: no JSON parsed here).
        ticket = "COALESCE(subject_id, '')"
        # One entry per event: s<time>|<ticket>|<resolution hours> for a solve, o|r<time>|
        # <ticket> for an open or a reopen; solves are read over the longer of the two windows.
        cols = [
            agg.concat_each(
                [
                    (
                        ["ticket_solved"],
                        max(p.window_days, p.backlog_days),
                        f"'s' || ts || '|' || {ticket} || '|' || COALESCE(metric, '')",
                    ),
                    (
                        ["ticket_opened", "ticket_reopened"],
                        p.backlog_days,
                        f"substr(type, 8, 1) || ts || '|' || {ticket}",
                    ),
                ]
            )
        ]
        if p.breach_field != "resolution_hours":
            cols.append(
                agg.concat(
                    ["ticket_solved"],
                    p.window_days,
                    "json_extract(attrs, ?)",
                    [f"$.{p.breach_field}"],
                )
            )
        return tuple(cols)

    @staticmethod
    def _tickets(
        entries: str | None, p: SupportParams, window: Window
    ) -> tuple[list[float], list[str]]:
        """Resolution hours of the tickets solved in the window (each ticket once, its latest
        solve, unless it is open again now) and the day each open ticket was (re)opened."""
        if not entries:
            return [], []
        since = window.since(p.window_days)
        opened: dict[str, str] = {}  # ticket -> latest opened or reopened
        solved: dict[str, str] = {}  # ticket -> latest solved
        solves: dict[str, tuple[str, float]] = {}  # ticket -> (time, hours) in the window
        # This loop runs for every ticket event of every account: locals, no helper calls.
        opened_get, solved_get, solves_get = opened.get, solved.get, solves.get
        for i, entry in enumerate(entries.split(SEP)):
            ts, _, rest = entry[1:].partition("|")
            if entry[0] == "s":
                ticket, _, hours = rest.partition("|")
                if ticket and ts > solved_get(ticket, ""):
                    solved[ticket] = ts
                if ts >= since and hours:
                    try:
                        value = float(hours)
                    except ValueError:
                        continue
                    key = ticket or f"#{i}"
                    known = solves_get(key)
                    if known is None or ts > known[0]:
                        solves[key] = (ts, value)
            elif rest and ts > opened_get(rest, ""):
                opened[rest] = ts
        if not opened:
            return [h for _, h in solves.values()], []
        still_open = [t for t, ts in opened.items() if ts > solved_get(t, "")]
        if not still_open:
            return [h for _, h in solves.values()], []
        days = [opened[t][:10] for t in still_open]
        if solves:
            gone = set(still_open)
            return [h for t, (_, h) in solves.items() if t not in gone], days
        return [], days

    def score(self, p: SupportParams, account: Account, row: Any, window: Window) -> MeasureResult:
        hours, days = self._tickets(row[0], p, window) if row else ([], [])
        open_count = len(days)
        if len(hours) + open_count < p.min_tickets:
            return MeasureResult(
                None,
                {"tickets_solved": len(hours), "open_tickets": 0, "window_days": p.window_days},
            )
        target = p.target_hours
        zero_at = target * p.zero_at_factor
        # scale(h, target, zero_at) for each solved ticket, inlined (it runs per ticket).
        span = zero_at - target
        total = sum(
            [
                100.0
                if h <= target
                else 0.0
                if h >= zero_at
                else 100.0 * (1.0 - (h - target) / span)
                for h in hours
            ]
        )
        oldest = None
        if days:
            # An open ticket's score depends only on its day: one per day for the whole run.
            scores = window.memo(("support.open", p.open_good_days, p.open_bad_days))
            for day in days:
                part = scores.get(day)
                if part is None:
                    part = scores[day] = scale(
                        window.days_ago(day), p.open_good_days, p.open_bad_days
                    )
                total += part
            oldest = window.days_ago(min(days))
        value = (total + 100.0 * p.prior_tickets) / (len(hours) + open_count + p.prior_tickets)
        median = _median(hours) if hours else None
        breach_values = (
            (_floats(row[1]) if row else []) if p.breach_field != "resolution_hours" else hours
        )
        breach_target = p.breach_target_hours or target
        breached = sum(1 for h in breach_values if h > breach_target)
        rate = breached / len(breach_values) if breach_values else None
        inputs = {
            "tickets_solved": len(hours),
            "median_resolution_hours": round(median, 1) if median is not None else None,
            "target_hours": target,
            "open_tickets": open_count,
            "oldest_open_days": oldest,
            "breached": breached,
            "breach_rate": round(rate, 4) if rate is not None else None,
            "window_days": p.window_days,
        }

        def words() -> tuple[list[str], dict[str, str]]:
            texts: dict[str, str] = {}
            ranked: list[tuple[float, str]] = []
            if median is not None:
                texts["median_resolution_hours"] = texts["tickets_solved"] = (
                    f"median resolution {fmt_hours(median)} vs {fmt_hours(target)} target "
                    f"({plural(len(hours), 'ticket')} solved {_days(p.window_days)})"
                )
                ranked.append((scale(median, target, zero_at), texts["median_resolution_hours"]))
            if oldest is not None:
                texts["open_tickets"] = texts["oldest_open_days"] = (
                    f"{plural(open_count, 'ticket')} open, the oldest for {plural(oldest, 'day')}"
                )
                ranked.append(
                    (scale(oldest, p.open_good_days, p.open_bad_days), texts["open_tickets"])
                )
            if rate is not None:
                what = p.breach_field.removesuffix("_hours").replace("_", " ")
                texts["breach_rate"] = texts["breached"] = (
                    f"{breached} of {plural(len(breach_values), 'ticket')} ({fmt_pct(rate)}) "
                    f"over the {fmt_hours(breach_target)} {what} target {_days(p.window_days)}"
                )
            ranked.sort(key=lambda d: d[0])
            return [t for _, t in ranked], texts

        return MeasureResult(value, inputs, words=words)


class SupportLoadParams(OrderedParams):
    ordered = (("reopen_good", "reopen_bad"),)

    window_days: int = Field(90, ge=1, le=3650)
    urgent_penalty: float = Field(25, ge=0, le=100)
    reopen_good: float = Field(0.05, ge=0, le=1)
    reopen_bad: float = Field(0.30, ge=0, le=1)


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
                "substr(type, 8, 1) || COALESCE(subject_id, '') || '@' || ts",
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
