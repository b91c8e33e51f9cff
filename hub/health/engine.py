"""One pass of the engine: evaluate accounts as of a moment and write their rows.

``run_pass`` streams the run's one aggregation over ``events`` (ordered by account id, on its
own connection in a thread for a file database, so SQLite works while Python scores) and
merges it with the ``accounts`` rows read in chunks, so memory stays flat however many
accounts there are; each ``Evaluation`` goes to a sink, usually a ``Writer`` that writes
``health_scores``, and ``health_history`` in batches.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

from hub import clock
from hub.errors import ConfigError
from hub.health.evaluate import Evaluation, Plan, evaluate, loads_facts
from hub.health.measures import Account, Aggregates, Window
from hub.health.overrides import override_properties
from hub.health.reader import RowStream, ThreadStream
from hub.health.settings import HealthSettings, load_settings
from hub.store import Store, health_queries

_BATCH = 2000
_CHUNK = 2000  # accounts read per query


def _set_targets(store: Store, targets: Iterable[str] | None) -> None:
    """Fill (or, with None, empty) the temp table of accounts to recompute.

    In a transaction of its own: a bare DML statement would open an implicit transaction
    on the store's connection that later ``atomic()`` blocks only nest into as savepoints,
    leaving the run's writes uncommitted.
    """
    db = store.db
    db.execute("CREATE TEMP TABLE IF NOT EXISTS _health_targets (id TEXT PRIMARY KEY)")
    with db.atomic():
        db.execute("DELETE FROM temp._health_targets")
        if targets is not None:
            db.conn.executemany(
                "INSERT OR IGNORE INTO temp._health_targets (id) VALUES (?)",
                ((t,) for t in targets),
            )


def build_plan(settings: Any, window: Window) -> tuple[Aggregates, Plan]:
    """The one aggregation every used measure reads: each measure's handles and the specs'
    counts over ``window``, finished and ready for ``agg.sql()``."""
    agg = Aggregates(window)
    plan = Plan(agg)
    for resolved in settings.used:
        for name, (params, key) in resolved.params.items():
            if key not in plan.handles:
                plan.handles[key] = tuple(settings.measures[name].aggregate(params, agg))
        for spec in resolved.specs:
            plan.specs[spec] = agg.count(spec[0], spec[1])
    plan.finish()
    return agg, plan


def run_pass(
    store: Store,
    settings: HealthSettings,
    as_of: dt.datetime,
    targets: set[str] | None,
    *,
    sink: Callable[[Evaluation], None],
    historical: bool = False,
    with_trend: bool = True,
    detail: bool = False,
    bounds: tuple[str | None, str | None] = (None, None),
) -> None:
    """Evaluate the accounts (all, ``targets``, or ids within ``bounds``) as of ``as_of``,
    handing each to ``sink``."""
    db = store.db
    scoped = targets is not None
    if scoped:
        _set_targets(store, targets)
    window = Window(as_of)
    agg, plan = build_plan(settings, window)
    stream: RowStream | None = None
    if agg.exprs:
        sql, args = agg.sql(targets=scoped, bounds=bounds)
        if not scoped and store.path != ":memory:":
            stream = ThreadStream(store.path, sql, args)
        else:
            # Fetched whole (a scoped run is small): no read statement stays open on the
            # connection that writes (see the chunked accounts below).
            stream = RowStream(iter(db.execute(sql, args).fetchall()))
    overrides = {
        row[0]: tuple(row[1:])
        for row in db.execute(
            "SELECT account_id, value, reason, until, set_at FROM health_overrides"
        )
    }
    echoes = health_queries.own_override_echoes(store, override_properties())
    # Trends compare computed scores (an override changes only the shown one) with the state
    # on a baseline day of bounded age: the latest day health ran 7–10 (30–37) days ago, else
    # no trend. History keeps only changes: the state on a day is the latest row on or
    # before it.
    day = window.today.isoformat()
    trend_args: list[str] = []
    trend_sql = ""
    for days in (7, 30):
        base = health_queries.baseline_day(store, window.today, days) if with_trend else None
        if base is None:
            trend_sql += ", NULL"
        else:
            trend_sql += (
                ", (SELECT computed_score FROM health_history h WHERE h.account_id = a.id AND "
                "h.day <= ? ORDER BY h.day DESC LIMIT 1)"
            )
            trend_args.append(base)
    # The account's latest history row on or before the day: a row is written only when
    # something it carries changed.
    last_sql = (
        ", p.day, p.score, p.band, p.computed_score, p.coverage, p.measures FROM accounts a "
        "LEFT JOIN health_history p ON p.account_id = a.id AND p.day = (SELECT MAX(day) FROM "
        "health_history WHERE account_id = a.id AND day <= ?)"
    )
    stored = getattr(sink, "compares_stored", False)
    if stored:
        # The account's current ``health_scores`` row, so an unchanged one is not rewritten.
        last_sql = (
            last_sql.replace(
                " FROM accounts a ",
                f", s.account_id, {', '.join('s.' + c for c in STORED)} FROM accounts a ",
            )
            + " LEFT JOIN health_scores s ON s.account_id = a.id"
        )
    conditions, cond_args = [], []
    if scoped:
        conditions.append(f"a.id IN (SELECT id FROM {Aggregates.TARGETS})")
    if bounds[0] is not None:
        conditions.append("a.id >= ?")
        cond_args.append(bounds[0])
    if bounds[1] is not None:
        conditions.append("a.id < ?")
        cond_args.append(bounds[1])
    select = (
        f"SELECT {', '.join('a.' + c for c in Account.COLUMNS)}, a.facts{trend_sql}{last_sql} "
        f"WHERE {' AND '.join([*conditions, 'a.id > ?'])} ORDER BY a.id LIMIT {_CHUNK}"
    )
    args = [*trend_args, day, *cond_args]
    try:
        after = ""
        while True:
            # Accounts are read in chunks, each fully fetched before it is scored: a read
            # statement left open on this connection would pin an old snapshot, and the
            # writes of this run would then fail once another process (a worker) has
            # written ("database is locked").
            chunk = db.execute(select, [*args, after]).fetchall()
            if not chunk:
                break
            after = chunk[-1][0]
            for row in chunk:
                values = row[:10]
                account = Account(values, loads_facts(row[10]))
                evaluation = evaluate(
                    settings,
                    plan,
                    account,
                    stream.get(account.id) if stream is not None else None,
                    window,
                    overrides.get(account.id),
                    historical=historical,
                    detail=detail,
                    echoes=echoes.get(account.id),
                )
                computed = evaluation.computed_score
                if computed is not None:
                    if row[11] is not None:
                        evaluation.trend_7d = computed - row[11]
                    if row[12] is not None:
                        evaluation.trend_30d = computed - row[12]
                if row[13] is not None:
                    evaluation.previous = row[13:19]
                if stored and row[19] is not None:
                    evaluation.stored = row[20:]
                sink(evaluation)
    finally:
        if isinstance(stream, ThreadStream):
            stream.close()
    if scoped:
        _set_targets(store, None)


STORED = tuple(
    c
    for c in health_queries.SCORE_COLUMNS
    if c not in ("account_id", "computed_at", "first_scored_at")
)
"""The ``health_scores`` columns a recompute compares: when none changed, the row (and its
``computed_at``, the time the row last changed) stays as it is."""


class Writer:
    """Buffers score and history rows and writes them in batches.

    A score row whose columns in ``STORED`` are unchanged is not rewritten (a daily full run
    changes few accounts' scores), so ``computed_at`` says when the account's row last
    changed; the time of the latest run is in ``_hub_runs`` (kind ``health``)."""

    def __init__(
        self,
        store: Store,
        as_of: dt.datetime,
        *,
        scores: bool,
        history: bool,
        computed_at: str | None = None,
    ):
        self.db = store.db
        self.day = as_of.date().isoformat()
        self.computed_at = computed_at or clock.iso()
        self.write_scores = scores
        self.compares_stored = scores  # run_pass reads the stored rows for it
        self.write_history = history
        self.scores: list[tuple[Any, ...]] = []
        self.history: list[tuple[Any, ...]] = []
        self.count = 0
        self.bands: dict[str, int] = {}
        self.names: dict[str, str] = {}
        self.day_recorded = False

    def __call__(self, ev: Evaluation) -> None:
        self.count += 1
        band = ev.band or "none"
        self.bands[band] = self.bands.get(band, 0) + 1
        aid = ev.account.id
        # Measure scores as JSON, written by hand because this runs for every account and
        # json.dumps is the slow part of it. Scores: {"<measure>": {"score": 72.5, "weight":
        # 15.0}, ...} (the inputs are for --explain, which recomputes); history: {"<measure>":
        # 72.5, ...}, the baseline of what moved.
        weights = ev.outcome.weights
        names = self.names
        parts = []
        brief = []
        for name, result in ev.results.items():
            key = names.get(name) or names.setdefault(name, json.dumps(name))
            value_h = result.value_h
            score = "null" if value_h is None else repr(value_h / 100)
            brief.append(f"{key}:{score}")
            weight = weights.get(name)
            parts.append(
                f'{key}:{{"score":{score}}}'
                if weight is None
                else f'{key}:{{"score":{score},"weight":{weight!r}}}'
            )
        coverage = None if ev.coverage is None else round(ev.coverage, 4)
        if self.write_scores:
            override = ev.override or {}
            values = (
                ev.score,
                ev.computed_score,
                ev.band,
                ev.model.name,
                ev.segment,
                "{" + ",".join(parts) + "}",
                json.dumps(ev.drivers, ensure_ascii=False),
                ev.trend_7d,
                ev.trend_30d,
                override.get("value"),
                override.get("reason"),
                override.get("until"),
                coverage,
                1 if ev.low_coverage else 0,
                1 if ev.churned else 0,
            )
            if values != ev.stored:
                self.scores.append((aid, *values, self.computed_at, self.computed_at))
        if self.write_history:
            measures = "{" + ",".join(brief) + "}"
            last = ev.previous
            # A row only when something it carries changed since the account's latest row.
            if (
                last is None
                or last[1] != ev.score
                or last[2] != ev.band
                or last[3] != ev.computed_score
                or last[4] != coverage
                or last[5] != measures
            ):
                self.history.append(
                    (aid, self.day, ev.score, ev.band, ev.computed_score, coverage, measures)
                )
        if len(self.history) >= _BATCH or len(self.scores) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self.write_history and not self.day_recorded:
            # The day counts as a day health ran (a trend's baseline day) even when no
            # account's row changed.
            with self.db.atomic():
                self.db.execute("INSERT OR IGNORE INTO health_days (day) VALUES (?)", [self.day])
            self.day_recorded = True
        if not (self.scores or self.history):
            return
        with self.db.atomic():
            if self.scores:
                # An upsert, not a replace: ``first_scored_at`` keeps the first scoring.
                self.db.conn.executemany(
                    "INSERT INTO health_scores (account_id, score, computed_score, band, model, "
                    "segment, measures, drivers, trend_7d, trend_30d, override_value, "
                    "override_reason, override_until, coverage, low_coverage, churned, "
                    "computed_at, first_scored_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(account_id) DO UPDATE SET score = excluded.score, "
                    "computed_score = excluded.computed_score, band = excluded.band, "
                    "model = excluded.model, segment = excluded.segment, "
                    "measures = excluded.measures, drivers = excluded.drivers, "
                    "trend_7d = excluded.trend_7d, trend_30d = excluded.trend_30d, "
                    "override_value = excluded.override_value, "
                    "override_reason = excluded.override_reason, "
                    "override_until = excluded.override_until, "
                    "computed_at = excluded.computed_at, coverage = excluded.coverage, "
                    "low_coverage = excluded.low_coverage, churned = excluded.churned, "
                    "first_scored_at = COALESCE(health_scores.first_scored_at, "
                    "excluded.first_scored_at)",
                    self.scores,
                )
            if self.history:
                self.db.conn.executemany(
                    "INSERT OR REPLACE INTO health_history (account_id, day, score, band, "
                    "computed_score, coverage, measures) VALUES (?,?,?,?,?,?,?)",
                    self.history,
                )
        self.scores.clear()
        self.history.clear()


def resolve_account(store: Store, account: str) -> str:
    from hub.timeline.identity import account_for

    row = store.db.execute("SELECT id FROM accounts WHERE id = ?", [str(account)]).fetchone()
    if row:
        return row[0]
    found = account_for(store, str(account))
    if found is None:
        raise ConfigError(
            f"no account matches {account!r}",
            hint="give an account id, domain or exact name ('hub health --json' lists them)",
        )
    return found["id"]


def evaluate_one(store: Store, settings: HealthSettings, account_id: str) -> Evaluation:
    collected: list[Evaluation] = []
    run_pass(
        store,
        settings,
        clock.now(),
        {account_id},
        sink=collected.append,
        detail=True,
    )
    if not collected:
        raise ConfigError(f"no account {account_id!r}", hint="run 'hub map' first")
    return collected[0]


def rescore(store: Store, account_id: str, config: Any) -> dict[str, Any]:
    """Recompute one account now (scores and today's history) and return its
    ``health_scores`` row."""
    settings = load_settings(config)
    now = clock.now()
    writer = Writer(store, now, scores=True, history=True)
    run_pass(store, settings, now, {account_id}, sink=writer)
    writer.flush()
    row = store.db.execute("SELECT * FROM health_scores WHERE account_id = ?", [account_id])
    names = [d[0] for d in row.description]
    found = row.fetchone()
    return dict(zip(names, found)) if found else {}


__all__ = ["Writer", "evaluate_one", "rescore", "resolve_account", "run_pass"]
