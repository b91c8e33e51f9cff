"""Health runs: ``compute_health`` (incremental or full) and ``backfill_health``.

Incremental runs
----------------
``compute_health(full=False)`` recomputes only accounts whose events were mapped since the
last health run started (``events.mapped_at``), whose ``accounts`` row changed since they
were scored (``_hub_health_dirty``, marked by triggers on ``accounts`` as rows are written;
CRM overrides arrive as the fact ``health_override``), or that have no score yet; an override set in the hub
rescores its account at once (``rescore``).

The clock is the other input. When the day changed since the last run, every account is
recomputed: the windows slide (an event leaves a 60-day window with no new event), ages in
days grow (open tickets, days since the last touch, days to renewal, card expiry), overrides
expire, and both trends move to a new baseline day, so with the built-in measures almost
every account can change overnight and no cheaper test is exact. The same holds when the
``[health]`` config changed, and on the first run. Within a day the windows move by hours
only; an event crossing a window edge then is picked up by the next day's full run, as are
events deleted or moved to another account.

``backfill_health`` recomputes history day by day from the timeline: each past day sees the
events up to that day's end, the account facts *as they are now* (facts have no history), and
overrides set in the hub that were in force then.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from hub import clock
from hub.errors import ConfigError
from hub.health.engine import Writer, run_pass
from hub.health.parallel import full_pass
from hub.health.settings import HealthSettings, load_settings
from hub.store import Store

# ----------------------------------------------------------------------------------------


@dataclass
class HealthResult:
    """What one ``compute_health``/``backfill_health`` call did."""

    accounts: int = 0
    full: bool = False
    reason: str = ""
    bands: dict[str, int] = field(default_factory=dict)
    removed: int = 0
    backfilled_days: int = 0
    duration_s: float = 0.0
    run_id: int | None = None

    @property
    def records(self) -> int:
        return self.accounts


def _meta(store: Store, key: str) -> str | None:
    row = store.db.execute("SELECT value FROM _hub_health_meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def _set_meta(store: Store, key: str, value: str) -> None:
    store.db.execute(
        "INSERT OR REPLACE INTO _hub_health_meta (key, value) VALUES (?, ?)", [key, value]
    )


def _changed_accounts(
    store: Store, settings: HealthSettings, now: dt.datetime, run_id: int
) -> tuple[set[str] | None, str]:
    """Which accounts an incremental run must recompute, or None (all) and why."""
    db = store.db
    last = db.execute(
        "SELECT started_at FROM _hub_runs WHERE kind = 'health' AND status = 'ok' AND id != ? "
        "ORDER BY id DESC LIMIT 1",
        [run_id],
    ).fetchone()
    if last is None:
        return None, "first run"
    last_start = clock.parse(last[0])
    if last_start is None or now < last_start:
        return None, "clock moved back"
    if last_start.date() != now.date():
        return None, "day changed"
    if _meta(store, "config") != settings.fingerprint:
        return None, "config changed"
    # ``>=``: a simulated clock may stamp a mapping and the health run with the same time.
    # No DISTINCT: it would steer SQLite to walk the account index over every event.
    changed = {
        row[0]
        for row in db.execute(
            "SELECT account_id FROM events WHERE mapped_at >= ? AND account_id IS NOT NULL",
            [last[0]],
        )
    }
    # Rows changed since they were scored (marked by triggers as they are written), and
    # accounts without a score.
    changed.update(row[0] for row in db.execute("SELECT account_id FROM _hub_health_dirty"))
    changed.update(
        row[0]
        for row in db.execute(
            "SELECT id FROM accounts WHERE id NOT IN (SELECT account_id FROM health_scores)"
        )
    )
    return changed, "incremental"


def _marks(store: Store) -> int:
    """The newest change mark when a run starts (marks are rewritten with a new rowid each
    time the row changes again, so a change during the run keeps its mark)."""
    row = store.db.execute("SELECT MAX(rowid) FROM _hub_health_dirty").fetchone()
    return int(row[0] or 0)


def _clear_marks(store: Store, upto: int, scored: set[str] | None) -> None:
    """Clear the marks made before the run of the accounts it scored (all: ``None``)."""
    if scored is None:
        store.db.execute("DELETE FROM _hub_health_dirty WHERE rowid <= ?", [upto])
        return
    store.db.conn.executemany(
        "DELETE FROM _hub_health_dirty WHERE account_id = ? AND rowid <= ?",
        ((account_id, upto) for account_id in scored),
    )


HISTORY_MEASURE_DAYS = 40
"""History rows keep each measure's score this long: enough for the 30-day trend's baseline
(30–37 days old) and what moved since; older rows keep only the scores."""


def _prune_measures(store: Store, today: dt.date) -> None:
    """Drop the per-measure scores of history rows superseded before the kept span.

    History keeps a row only when something changed, so an account's latest row before the
    cutoff is still its state inside the span (a baseline may read it): only rows that a
    newer row replaced before the cutoff lose their measures. Each prune handles the rows
    superseded since the last one (a bounded range of days: a daily run never rescans old
    history)."""
    cutoff = (today - dt.timedelta(days=HISTORY_MEASURE_DAYS)).isoformat()
    since = _meta(store, "measures_pruned_before") or "0000-00-00"
    if cutoff <= since:
        return
    store.db.execute(
        "UPDATE health_history SET measures = NULL WHERE measures IS NOT NULL AND rowid IN ("
        "SELECT (SELECT o.rowid FROM health_history o WHERE o.account_id = n.account_id "
        "AND o.day < n.day ORDER BY o.day DESC LIMIT 1) FROM health_history n "
        "WHERE n.day >= ? AND n.day < ?)",
        [since, cutoff],
    )
    _set_meta(store, "measures_pruned_before", cutoff)


def compute_health(store: Store, config: Any = None, *, full: bool = False) -> HealthResult:
    """Recompute health scores (only what changed unless ``full``), write scores and today's
    history rows, and record the run in ``_hub_runs`` (kind ``health``)."""
    settings = load_settings(config)
    started = time.perf_counter()
    now = clock.now()
    with store.recorded_run("health") as run:
        run_id = run.id
        result = HealthResult(run_id=run_id)
        marked = _marks(store)
        targets, reason = (
            (None, "requested") if full else _changed_accounts(store, settings, now, run_id)
        )
        result.full = targets is None
        result.reason = reason
        if targets is None:
            result.accounts, result.bands = full_pass(
                store, settings, now, scores=True, history=True
            )
        elif targets:
            writer = Writer(store, now, scores=True, history=True)
            run_pass(store, settings, now, targets, sink=writer)
            writer.flush()
            result.accounts, result.bands = writer.count, dict(writer.bands)
        result.bands = dict(sorted(result.bands.items()))
        with store.db.atomic():
            result.removed = store.db.execute(
                "DELETE FROM health_scores WHERE account_id NOT IN (SELECT id FROM accounts)"
            ).rowcount
            _clear_marks(store, marked, None if result.full else targets)
            _set_meta(store, "config", settings.fingerprint)
            if result.full:
                _prune_measures(store, now.date())
        result.duration_s = time.perf_counter() - started
        run.records = result.accounts
        run.notes.append(step_note(result.full, reason, result.bands))
    return result


def step_note(full: bool, reason: str, bands: dict[str, int]) -> str:
    """The health step's note in ``hub status``: the mode, why when that says more, and the
    bands of the accounts scored (``full (day changed): 12 green, 3 red``)."""
    mode = "full" if full else "incremental"
    label = mode if reason in ("", mode) else f"{mode} ({reason})"
    scored = ", ".join(f"{n} {b}" for b, n in bands.items() if n)
    return f"{label}: {scored or 'no account changed'}"


def backfill_health(
    store: Store, config: Any = None, days: int = 30, *, every: int = 1
) -> HealthResult:
    """Rebuild ``health_history`` for the ``days`` days before today, then compute today.

    ``every`` > 1 computes only every N-th day (oldest first), enough for trends at a
    fraction of the cost.

    Each past day is computed as of its last moment: events with ``ts`` up to that day's end,
    account facts as they are now, and only overrides set in the hub that were in force then.
    """
    if days < 1:
        raise ConfigError(f"--backfill needs a number of days ≥ 1, not {days}")
    settings = load_settings(config)
    started = time.perf_counter()
    now = clock.now()
    with store.recorded_run("health") as run:
        result = HealthResult(run_id=run.id, full=True, reason=f"backfill {days} days")
        marked = _marks(store)
        # History keeps only changes, so the rebuilt span replaces what was there: each
        # day's row is compared with the latest row before it.
        first = (now.date() - dt.timedelta(days=days)).isoformat()
        with store.db.atomic():
            store.db.execute("DELETE FROM health_history WHERE day >= ?", [first])
            store.db.execute("DELETE FROM health_days WHERE day >= ?", [first])
        for back in range(days, 0, -max(1, every)):
            day = now.date() - dt.timedelta(days=back)
            as_of = dt.datetime.combine(day, dt.time.max, tzinfo=dt.timezone.utc)
            full_pass(
                store,
                settings,
                as_of,
                scores=False,
                history=True,
                historical=True,
                with_trend=False,
            )
            result.backfilled_days += 1
        result.accounts, bands = full_pass(store, settings, now, scores=True, history=True)
        result.bands = dict(sorted(bands.items()))
        with store.db.atomic():
            result.removed = store.db.execute(
                "DELETE FROM health_scores WHERE account_id NOT IN (SELECT id FROM accounts)"
            ).rowcount
            _clear_marks(store, marked, None)
            _set_meta(store, "config", settings.fingerprint)
        result.duration_s = time.perf_counter() - started
        run.records = result.accounts
        run.notes.append(
            f"backfill {days} days, then today: "
            + ", ".join(f"{n} {b}" for b, n in result.bands.items())
        )
    return result


__all__ = ["HISTORY_MEASURE_DAYS", "HealthResult", "backfill_health", "compute_health"]
