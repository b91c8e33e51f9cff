"""What moved: the measures behind a change of score, from → to.

A score changes because measures changed. ``health_history`` keeps each day's measure scores
(for ``HISTORY_MEASURE_DAYS``), so the cause of a move over N days is the difference between
the measures now (``health_scores``) and on the trend's baseline row (the latest row N to
``TREND_BASELINES[N]`` days old, the same row the trend reads). Playbooks name these moves as
a task's evidence; the demo's "biggest movers" shows them as the cause of the move.

- ``moves_between(before, after)``: the measures that moved between two sets of scores;
- ``moves_for(store, days)``: per account, what moved over the last ``days`` days;
- ``biggest_movers(store, days)``: the steepest falls and best climbs with their causes.

A mover's cause reads the way the score moved: a cap that newly set the score (a fall) or
whose lift freed it (a climb) comes first, then only the measures that moved the same way as
the score, largest share of the change first (weight ÷ total weight × the measure's change).
A measure that improved is never given as the reason a score fell, nor one that gained or
lost data (a measure without data is left out of the score, never counted as a value).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hub import clock
from hub.health.rounding import CHURNED
from hub.store import Store, health_queries
from hub.text import round_half_up


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
    # Whole points, as scores are shown everywhere (47.67 → 48); a move is at least one
    # point, so from and to never read the same.
    return "no data" if value is None else str(round_half_up(value))


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
    """The measures that moved the way the score did, the largest share of the change first."""
    lifted: str | None = None
    """A cap that held at the baseline and no longer does (its lift moved the score)."""
    capped: str | None = None
    """A cap that did not hold at the baseline and now sets the score (it made the fall)."""

    @property
    def reasons(self) -> list[str]:
        """The cap that moved the score first (applied or lifted), then the measures."""
        caps = [text for text in (self.capped, self.lifted) if text]
        return caps + [m.text for m in self.moves]

    @property
    def cause(self) -> str:
        """The reasons in plain words (``"Billing cap lifted (invoice past due: was capped at
        39); Billing 55 → 90"``, ``"Billing cap applied (1 invoice past due ($160): capped at
        39); Growth 75 → 0"``)."""
        return "; ".join(self.reasons) or "no measure moved by itself"


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
    weights = _weights(config)
    return [
        Mover(
            account_id=r["account_id"],
            name=r["name"],
            domain=r["domain"],
            score=r["score"],
            computed_score=r["computed_score"],
            band=r["band"],
            trend=r[key],
            moves=_reasons(
                moves.get(r["account_id"], []),
                r,
                weights.get(r.get("model") or ""),
                r[key],
            ),
            lifted=_lifted(base.get(r["account_id"]), r, caps),
            capped=_applied(base.get(r["account_id"]), r, caps),
        )
        for r in chosen
    ]


def _weights(config: Any) -> dict[str, dict[str, float]]:
    """Each model's measure weights (models without weights, such as points, are absent)."""
    from hub.health.settings import load_settings

    out = {}
    for name, resolved in load_settings(config).models.items():
        weights = getattr(resolved.model, "weights", None)
        if isinstance(weights, dict):
            out[name] = {n: float(w) for n, w in weights.items() if w}
    return out


def _mean(scores: dict[str, float | None], weights: dict[str, float]) -> float | None:
    present = {n: w for n, w in weights.items() if scores.get(n) is not None}
    total = sum(present.values())
    return sum(w * (scores[n] or 0.0) for n, w in present.items()) / total if total else None


def _reasons(
    moves: list[Move],
    now: dict[str, Any],
    weights: dict[str, float] | None,
    trend: int,
) -> list[Move]:
    """The moves that pushed the score the way it went (``trend``), the largest share first.

    A measure's share is weight ÷ total weight × its change (the weighted score is Σ weight ·
    measure ÷ Σ weight, over the measures with data). A measure that gained or lost data is
    never a reason: a measure without data is left out of the score, not counted as a value,
    so "CSAT no data → 50" did not drop a score (the other measures' weights renormalised).
    Without weights (a points model) a move counts as its own change. Measures the model
    does not weigh are not reasons.
    """
    if not trend:
        return []
    new = _scores(now.get("measures"))
    ranked = []
    for move in moves:
        if move.before is None or move.after is None:
            continue
        if weights is None:
            share = move.delta
        else:
            weight = weights.get(move.measure)
            if not weight:
                continue
            total = sum(w for n, w in weights.items() if new.get(n) is not None)
            share = weight / total * move.delta if total else 0.0
        if share * trend > 0 and abs(share) >= 0.005:
            ranked.append((share, move))
    ranked.sort(key=lambda pair: (-abs(pair[0]), pair[1].measure))
    return [move for _, move in ranked]


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


def _applied(
    before: dict[str, Any] | None, now: dict[str, Any], caps: list[tuple[Any, dict, str]]
) -> str | None:
    """A cap whose coming made the fall: the score has fallen since the baseline and now
    sits at the cap's ``max`` while the weighted measures are above it. Named with the
    reason the model gave (its driver ``"<reason>: score capped at <max>"``)."""
    if not before or before.get("computed_score") is None:
        return None
    score = now.get("computed_score")
    if score is None or score >= before["computed_score"]:
        return None
    scores = _scores(now.get("measures"))
    drivers = [str(d) for d in now.get("drivers") or []]
    for cap, weights, label in caps:
        if int(cap.max + 0.5) != score:
            continue
        mean = _mean(scores, {n: float(w) for n, w in weights.items() if w})
        if mean is None or mean <= cap.max + 0.5:
            continue
        tail = f": score capped at {cap.max:g}"
        said = next((d[: -len(tail)] for d in drivers if d.endswith(tail)), None)
        what = (
            said
            or cap.label
            or (str(cap.input).partition(".")[2].replace("_", " ") or cap.source_text())
        )
        return f"{label} cap applied ({what}: capped at {cap.max:g})"
    return None


def coverage_change(moves: list[Move]) -> str:
    """``"no measure with data moved; newly scored: CSAT"``: what to say of a move that no
    measure with data before and after explains. A measure without data is left out of the
    score, so gaining or losing data is not a move of that measure: the weights of the
    others renormalised. "" when no measure gained or lost data."""
    gained = [m.label for m in moves if m.before is None and m.after is not None]
    lost = [m.label for m in moves if m.before is not None and m.after is None]
    parts = []
    if gained:
        parts.append("newly scored: " + ", ".join(gained))
    if lost:
        parts.append("no data now: " + ", ".join(lost))
    return "; ".join(["no measure with data moved", *parts]) if parts else ""


__all__ = ["Move", "Mover", "biggest_movers", "coverage_change", "moves_between", "moves_for"]
