"""The health engine: measures → model → score, band, trend, drivers, overrides, history.

How a score is made
-------------------
A **measure** (``Measure`` subclass, registered with ``register_health_models``) turns one
account's recent events and facts into 0–100, or ``None`` when there is no data. It also
returns its inputs (numbers a person can check) and plain-words driver texts with numbers
("payment failed on 2 invoices in the last 60 days"). Measures compute *set-wise*: each adds its
aggregates (counts, sums, latest values, concatenations, each with its own event types and
window) to one SQL aggregation per run over ``events`` (``GROUP BY account_id``; see
``Aggregates``), never a query per account, and the table is read once. The engine streams
that aggregation ordered by account id (on its own connection in a thread, so SQLite works
while Python scores) and merges it with the ``accounts`` rows, so memory stays flat however
many accounts there are. A full run over many accounts splits the id range between processes
(``[health] workers``), because the per-account Python work is what takes the time.

A **model** (``HealthModel`` subclass) combines measure results. The built-ins (in
``plugins/health_models/``) are ``weighted`` (Σ weight·measure / Σ weight of measures that
have data: a measure without data is left out and the rest renormalise, never counted as 0;
optional caps such as "a cancelled subscription scores at most 20") and ``points`` (start at a
base, rules add or subtract points on measure inputs or event counts, clamp to a range, bands
on the points, scaled to 0–100 for the shared fields). **Segments** pick the model per account
(MRR tiers, plan, lifecycle stage); every model has its own weights, bands and measure
parameters. Everything is configured in ``[health]`` of ``hub.toml`` (see
``config.example.toml``) and validated with one-line errors that name the key.

Rounding (one rule, everywhere)
-------------------------------
Measure values are stated to 2 decimals, rounded half up. A weighted score is computed exactly
in integer hundredths; its exact value is stated to 2 decimals rounded half up (66.666… →
66.67), and each measure's contribution is stated to 2 decimals so that the stated
contributions add up *exactly* to the stated score (largest-remainder allocation). The score
shown everywhere is that stated value rounded half up to an integer (``round_half_up``:
69.50 → 70). ``hub health --explain`` prints exactly these numbers.

Coverage and churn
------------------
A score's *coverage* is the share of its model's weight (points models: of its rules) that
had data; under ``[health] min_coverage`` (default 50%) the score is flagged (``low_coverage``,
a first driver saying what had no data), never silently green. *Churned* is a lifecycle state
outside the bands (every subscription ended, or a former-customer CRM stage): band
``churned``, counted apart from green/yellow/red.

Override, history, trend
------------------------
A CSM override (``set_override`` / ``hub health override``, or the account fact
``health_override`` = ``{"value", "reason", "until"}`` that a CRM mapping fills from the
hub-owned properties) replaces the shown score and band until its ``until`` date (inclusive);
the computed score is always kept beside it. When both exist, the one set in the hub wins; a
CRM value that is the hub's own override read back (see ``hub.health.overrides``) is not a
CSM's. ``health_history`` keeps a row only when what it carries changed (the shown and the
computed score, band, coverage and each measure's score; recomputing the same day replaces
that day's row): an account's state on a day is its latest row on or before it, and
``health_days`` lists the days health ran. ``trend_7d``/``trend_30d`` = computed score now −
computed score on the baseline day, the latest day health ran 7–10 (30–37) days ago; None
when it did not run then or the account had no row by then (``hub.health.moves`` says which
measures moved). ``backfill_health`` recomputes history day by day from the
timeline: each past day sees the events up to that day's end, and the account facts *as they
are now* (facts have no history), and overrides set in the hub that were in force then.

Incremental runs are described in ``hub.health.runs``.

Modules
-------
``rounding`` (hundredths, bands), ``wording`` (driver words; formatters from ``hub.text``),
``measures`` (the measure API), ``rules`` (conditions, tiers, points rules, caps, lookups),
``models`` (the model API), ``settings`` (``[health]``), ``evaluate`` (one account),
``reader``/``engine``/``parallel``/``runs`` (passes, writer, processes, runs), ``explain``,
``overrides``, ``moves`` (what moved, from → to). Read models over the health tables are in
``hub.store.health_queries``. This module re-exports the public names.
"""

from __future__ import annotations

from hub.health.engine import Writer, rescore, resolve_account, run_pass
from hub.health.evaluate import Evaluation, churn_reason
from hub.health.explain import explain
from hub.health.measures import (
    Account,
    Aggregates,
    Measure,
    MeasureParams,
    MeasureResult,
    Window,
    scale,
)
from hub.health.models import Contribution, HealthModel, ModelContext, ModelSettings, Outcome
from hub.health.moves import Move, Mover, biggest_movers, moves_between, moves_for
from hub.health.overrides import clear_override, override_properties, set_override
from hub.health.parallel import PARALLEL_MIN_ACCOUNTS
from hub.health.rounding import (
    CHURNED,
    DEFAULT_BANDS,
    band_for,
    check_bands,
    exact_hundredths,
    from_hundredths,
    hundredths,
    round_half_up,
)
from hub.health.rules import Cap, Condition, Lookup, PointsRule, Tier
from hub.health.runs import HISTORY_MEASURE_DAYS, HealthResult, backfill_health, compute_health
from hub.health.settings import HealthSettings, load_settings, validate_config
from hub.health.wording import (
    days_since,
    event_count_text,
    fmt_hours,
    fmt_money,
    fmt_pct,
    parse_date,
    plural,
)

__all__ = [
    "CHURNED",
    "DEFAULT_BANDS",
    "HISTORY_MEASURE_DAYS",
    "PARALLEL_MIN_ACCOUNTS",
    "Account",
    "Aggregates",
    "Cap",
    "Condition",
    "Contribution",
    "Evaluation",
    "HealthModel",
    "HealthResult",
    "HealthSettings",
    "Lookup",
    "Measure",
    "MeasureParams",
    "MeasureResult",
    "ModelContext",
    "ModelSettings",
    "Move",
    "Mover",
    "Outcome",
    "PointsRule",
    "Tier",
    "Window",
    "Writer",
    "backfill_health",
    "band_for",
    "biggest_movers",
    "check_bands",
    "churn_reason",
    "clear_override",
    "compute_health",
    "days_since",
    "event_count_text",
    "exact_hundredths",
    "explain",
    "fmt_hours",
    "fmt_money",
    "fmt_pct",
    "from_hundredths",
    "hundredths",
    "load_settings",
    "moves_between",
    "moves_for",
    "override_properties",
    "parse_date",
    "plural",
    "rescore",
    "resolve_account",
    "round_half_up",
    "run_pass",
    "scale",
    "set_override",
    "validate_config",
]
