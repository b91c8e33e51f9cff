"""What moved: the measures behind a change of score, from → to.

A score changes because measures changed. ``health_history`` keeps each day's measure scores
(for ``HISTORY_MEASURE_DAYS``), so the cause of a move over N days is the difference between
the measures now (``health_scores``) and on the trend's baseline row (the latest row N to
``TREND_BASELINES[N]`` days old, the same row the trend reads). Playbooks name these moves as
a task's evidence; the demo's "biggest movers" shows them as the cause of the move.

- ``moves_between(before, after)``: the measures that moved between two sets of scores;
- ``moves_for(store, days)``: per account, what moved over the last ``days`` days;
- ``biggest_movers(store, days)``: the steepest falls and best climbs with their causes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hub import clock
from hub.health.rounding import CHURNED
from hub.store import Store, health_queries


@dataclass(frozen=True)
class Move:
    """One measure's change: ``before`` → ``after`` (0–100; None = no data then)."""

    measure: str
    label: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float:
        return (self.after or 0.0) - (self.before or 0.0)

    @property
    def text(self) -> str:
        """``"Billing 100 → 50"``, ``"Support resolution no data → 40"``."""
        return f"{self.label} {_shown(self.before)} → {_shown(self.after)}"


def _shown(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:g}" if float(value).is_integer() else f"{value:.2f}".rstrip("0")


@dataclass
class Mover:
    """An account whose computed score moved, and the measures that moved it."""

    account_id: str
    name: str | None
    domain: str | None
    score: int | None
    computed_score: int | None
    band: str | None
    trend: int
    moves: list[Move] = field(default_factory=list)
    lifted: str | None = None
    """A cap that held at the baseline and no longer does (its lift moved the score)."""

    @property
    def cause(self) -> str:
        """The moves in plain words, a lifted cap first, then the measures biggest first
        (``"Billing cap lifted (invoice past due: was capped at 39); Billing 55 → 90"``)."""
        parts = ([self.lifted] if self.lifted else []) + [m.text for m in self.moves]
        return "; ".join(parts) or "no measure moved by itself"


def _scores(measures: Any) -> dict[str, float | None]:
    """Measure scores from a ``health_scores`` (``{"m": {"score": x}}``) or a history
    (``{"m": x}``) JSON value."""
    out: dict[str, float | None] = {}
    if not isinstance(measures, dict):
        return out
    for name, value in measures.items():
        out[name] = value.get("score") if isinstance(value, dict) else value
    return out


def moves_between(
    before: dict[str, Any],
    after: dict[str, Any],
    labels: dict[str, str] | None = None,
    *,
    min_points: float = 1.0,
) -> list[Move]:
    """Measures whose score changed by at least ``min_points`` (or gained or lost data)
    between ``before`` and ``after``, the biggest change first (falls before rises when equal)."""
    labels = labels or {}
    old, new = _scores(before), _scores(after)
    moves = []
    for name in dict.fromkeys([*old, *new]):
        a, b = old.get(name), new.get(name)
        if a is None and b is None:
            continue
        if a is not None and b is not None and abs(b - a) < min_points:
            continue
        moves.append(Move(name, labels.get(name) or name, a, b))
    moves.sort(key=lambda m: (-abs(m.delta), m.delta, m.measure))
    return moves


def _labels(config: Any) -> dict[str, str]:
    from hub.health.settings import load_settings

    settings = load_settings(config)
    return {name: m.label or name for name, m in settings.measures.items()}


def moves_for(
    store: Store,
    days: int = 7,
    *,
    account_ids: Iterable[str] | None = None,
    config: Any = None,
    today: dt.date | None = None,
    min_points: float = 1.0,
) -> dict[str, list[Move]]:
    """Per account, the measures that moved over the last ``days`` days (now vs the trend's
    baseline row); accounts without a baseline with measure scores are absent."""
    today = today or clock.now().date()
    ids = None if account_ids is None else list(account_ids)
    base = health_queries.baselines(store, today, days, ids)
    labels = _labels(config)
    out: dict[str, list[Move]] = {}
    for row in health_queries.score_rows(store, account_ids=ids):
        before = base.get(row["account_id"])
        if before is None or not before.get("measures"):
            continue
        out[row["account_id"]] = moves_between(
            before["measures"], row["measures"], labels, min_points=min_points
        )
    return out


def biggest_movers(
    store: Store,
    days: int = 30,
    *,
    falls: int = 4,
    climbs: int = 2,
    config: Any = None,
) -> list[Mover]:
    """The ``falls`` steepest falls and ``climbs`` best climbs of the computed score over
    ``days`` days (7 or 30: the stored trends), churned accounts left out, each with the
    measures that moved it (from → to)."""
    key = {7: "trend_7d", 30: "trend_30d"}.get(days)
    if key is None:
        raise ValueError("biggest_movers reads the stored 7- or 30-day trends")
    rows = [r for r in health_queries.score_rows(store) if r[key] and r["band"] != CHURNED]
    down = sorted((r for r in rows if r[key] < 0), key=lambda r: (r[key], r["name"] or ""))
    up = sorted((r for r in rows if r[key] > 0), key=lambda r: (-r[key], r["name"] or ""))
    chosen = down[:falls] + up[:climbs]
    ids = [r["account_id"] for r in chosen]
    moves = moves_for(store, days, account_ids=ids, config=config)
    base = health_queries.baselines(store, clock.now().date(), days, ids)
    caps = _caps(config)
    return [
        Mover(
            account_id=r["account_id"],
            name=r["name"],
            domain=r["domain"],
            score=r["score"],
            computed_score=r["computed_score"],
            band=r["band"],
            trend=r[key],
            moves=moves.get(r["account_id"], []),
            lifted=_lifted(base.get(r["account_id"]), r, caps),
        )
        for r in chosen
    ]


def _caps(config: Any) -> list[tuple[Any, dict[str, float], str]]:
    """Every model's caps with that model's weights and the capped measure's label."""
    from hub.health.rules import Cap
    from hub.health.settings import load_settings

    settings = load_settings(config)
    out = []
    for resolved in settings.models.values():
        weights = getattr(resolved.model, "weights", None)
        conditions = getattr(resolved.model, "conditions", None)
        if not isinstance(weights, dict) or conditions is None:
            continue
        for cap in conditions():
            if isinstance(cap, Cap):
                head = str(cap.input or "").partition(".")[0]
                measure = settings.measures.get(head)
                out.append((cap, weights, (measure.label if measure else None) or head))
    return out


def _lifted(
    before: dict[str, Any] | None, now: dict[str, Any], caps: list[tuple[Any, dict, str]]
) -> str | None:
    """A cap whose lift moved the score: the baseline's computed score sat at the cap's
    ``max`` while its weighted measures were above it, and the score has risen since."""
    if not before or before.get("computed_score") is None or not before.get("measures"):
        return None
    was, scores = before["computed_score"], _scores(before["measures"])
    if (now.get("computed_score") or 0) <= was:
        return None
    for cap, weights, label in caps:
        if int(cap.max + 0.5) != was:
            continue
        present = {n: w for n, w in weights.items() if scores.get(n) is not None and w}
        total = sum(present.values())
        if total and sum(w * scores[n] for n, w in present.items()) / total > cap.max + 0.5:
            what = cap.label or (
                str(cap.input).partition(".")[2].replace("_", " ") or cap.source_text()
            )
            return f"{label} cap lifted ({what}: was capped at {cap.max:g})"
    return None


__all__ = ["Move", "Mover", "biggest_movers", "moves_between", "moves_for"]
