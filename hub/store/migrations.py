"""Schema of the hub's SQLite database, changed only through ``Migrations("hub")``.

Append new migrations at the end; never edit one that has shipped. Raw tables
(``raw_<connection>_<stream>``) are created on demand by ``hub.store`` with fixed columns,
so they are not listed here.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("hub")


@migrations()
def m001_internal_tables(db: Database) -> None:
    """Runs, bookmarks, push log, sequence counter, lock."""
    db["_hub_runs"].create(
        {
            "id": int,
            "kind": str,  # sync | map | health | playbooks | push | pipeline
            "connection": str,
            "stream": str,
            "status": str,  # running | ok | error | partial
            "started_at": str,
            "finished_at": str,
            "duration_s": float,
            "records": int,
            "requests": int,
            "retries": int,
            "error": str,
            "note": str,
        },
        pk="id",
    )
    db["_hub_runs"].create_index(["connection", "stream", "id"])
    db["_hub_runs"].create_index(["kind", "id"])
    db["_hub_state"].create(
        {"connection": str, "stream": str, "state": str, "updated_at": str},
        pk=("connection", "stream"),
    )
    db["_hub_push_log"].create(
        {
            "target": str,
            "object_type": str,
            "object_id": str,
            "property": str,
            "value": str,
            "pushed_at": str,
        },
        pk=("target", "object_type", "object_id", "property"),
    )
    # One global counter: every page written gets the next value in its rows' ``seq``
    # column, so a mapping can ask for "rows changed since seq N" without trusting clocks.
    db["_hub_seq"].create({"name": str, "value": int}, pk="name")
    db["_hub_seq"].insert({"name": "raw", "value": 0})
    db["_hub_lock"].create(
        {
            "name": str,
            "owner": str,
            "pid": int,
            "host": str,
            "acquired_at": str,
            "heartbeat_at": str,
        },
        pk="name",
    )


@migrations()
def m002_product_tables(db: Database) -> None:
    """Accounts, identity links, entities, events, health, tasks."""
    db["accounts"].create(
        {
            "id": str,  # HubSpot company id where one exists, else "<source>:<kind>:<id>"
            "name": str,
            "domain": str,
            "hubspot_company_id": str,
            "owner_id": str,
            "owner_name": str,
            "owner_email": str,
            "lifecycle_stage": str,
            "mrr": float,
            "plan": str,
            "seats": int,
            "renewal_date": str,
            "customer_since": str,
            "facts": str,  # JSON: everything else the mappings know
            "updated_at": str,
        },
        pk="id",
    )
    db["accounts"].create_index(["domain"])
    # An entity is a source record that can belong to an account: a HubSpot company, a
    # Stripe customer, a Zendesk organization, a BuiltWith domain. Mappings write them;
    # identity resolution links them.
    db["entities"].create(
        {
            "key": str,  # "<source>:<kind>:<source_id>"
            "source": str,
            "kind": str,
            "source_id": str,
            "name": str,
            "domains": str,  # JSON list of normalised domains
            "explicit_account": str,  # HubSpot company id the source itself names
            "is_root": int,  # 1 for HubSpot companies: they define accounts
            "merged_into": str,  # HubSpot company id this one was merged into
            "deleted": int,
            "facts": str,  # JSON
            "updated_at": str,
        },
        pk="key",
    )
    db["account_links"].create(
        {
            "entity": str,
            "account_id": str,
            "source": str,
            "kind": str,
            "source_id": str,
            "method": str,  # root | explicit_id | domain | override | merged
            "detail": str,
            "linked_at": str,
        },
        pk="entity",
    )
    db["account_links"].create_index(["account_id"])
    db["identity_issues"].create(
        {"entity": str, "issue": str, "detail": str, "seen_at": str},
        pk=("entity", "issue"),
    )
    db["events"].create(
        {
            "id": str,  # "<source>:<type>:<source_id>[:<version>]"
            "entity": str,
            "account_id": str,
            "ts": str,  # ISO 8601 UTC
            "source": str,
            "type": str,
            "summary": str,
            "attrs": str,  # JSON
            "link": str,
            "mapped_at": str,
        },
        pk="id",
    )
    db["events"].create_index(["account_id", "ts"])
    db["events"].create_index(["entity"])
    db["events"].create_index(["type", "ts"])
    db["_hub_map_state"].create(
        {"mapping": str, "raw_table": str, "seq": int, "updated_at": str},
        pk=("mapping", "raw_table"),
    )
    db["health_scores"].create(
        {
            "account_id": str,
            "score": int,  # what is shown: the override while it holds, else computed
            "computed_score": int,
            "band": str,
            "model": str,
            "segment": str,
            "measures": str,  # JSON
            "drivers": str,  # JSON list of plain-words strings
            "trend_7d": int,
            "trend_30d": int,
            "override_value": int,
            "override_reason": str,
            "override_until": str,
            "computed_at": str,
        },
        pk="account_id",
    )
    db["health_history"].create(
        {"account_id": str, "day": str, "score": int, "band": str, "computed_score": int},
        pk=("account_id", "day"),
    )
    db["tasks"].create(
        {
            "id": str,
            "account_id": str,
            "playbook": str,
            "reason": str,
            "status": str,  # open | pushing | pushed | completed | cancelled
            "subject": str,
            "body": str,
            "priority": str,
            "due_at": str,
            "owner_id": str,
            "evidence": str,  # JSON
            "hubspot_task_id": str,
            "created_at": str,
            "pushed_at": str,
            "completed_at": str,
            "snoozed_until": str,
        },
        pk="id",
    )
    db["tasks"].create_index(["account_id", "playbook", "reason"])
    db["tasks"].create_index(["status"])


@migrations()
def m003_schedule(db: Database) -> None:
    """Next scheduled run per connection, published by a running ``hub run`` for ``hub status``."""
    db["_hub_schedule"].create(
        {"connection": str, "next_run": str, "schedule": str, "updated_at": str}, pk="connection"
    )


@migrations()
def m004_health(db: Database) -> None:
    """Health engine: CSM overrides, per-account input fingerprints, engine metadata.

    ``health_overrides`` holds overrides set with ``hub health override`` (HubSpot-set ones
    arrive as the account fact ``health_override``). ``_hub_health_state`` remembers a hash
    of each account's row so an incremental run recomputes only accounts that changed;
    ``_hub_health_meta`` keeps the hash of the ``[health]`` config of the last run. The index
    on ``events.mapped_at`` finds the accounts whose events changed since the last run
    without scanning the whole timeline.
    """
    db["health_overrides"].create(
        {
            "account_id": str,
            "value": int,
            "reason": str,
            "until": str,  # ISO date, inclusive
            "set_at": str,
            "set_by": str,
        },
        pk="account_id",
    )
    db["_hub_health_state"].create({"account_id": str, "fingerprint": str}, pk="account_id")
    db["_hub_health_meta"].create({"key": str, "value": str}, pk="key")
    db["events"].create_index(["mapped_at"], if_not_exists=True)


@migrations()
def m005_timeline_origin(db: Database) -> None:
    """Mapping bookkeeping for ``hub.timeline``: which raw row each event came from
    (``events.origin``, "<mapping>/<raw table>:<row id>", so re-mapping a row retracts what it no longer
    says) and the keys a mapping's ``finalize`` still has to redo (``_hub_map_pending``,
    committed with the map marker so a killed run leaves them for the next one).
    """
    db["events"].add_column("origin", str)
    db["events"].create_index(["origin"], if_not_exists=True)
    db["_hub_map_pending"].create(
        {"mapping": str, "connection": str, "key": str}, pk=("mapping", "connection", "key")
    )


@migrations()
def portfolio_m001_mrr(db: Database) -> None:
    """Portfolio: subscription MRR points and per-account MRR movements (``hub.portfolio``).

    Both are rebuilt from the timeline's ``subscription_mrr`` events, so a re-map rebuilds
    them identically. Money is in cents (integers) so that movements add up exactly.
    """
    db["portfolio_mrr_points"].create(
        {
            "account_id": str,
            "entity": str,
            "subscription_id": str,
            "ts": str,
            "day": str,
            "mrr": int,  # cents per month from ``ts`` on
            "plan": str,
            "reason": str,
        },
        pk=("entity", "subscription_id", "ts"),
    )
    db["portfolio_mrr_points"].create_index(["account_id", "ts"])
    db["mrr_movements"].create(
        {
            "account_id": str,
            "day": str,  # YYYY-MM-DD: changes of one account on one day are netted
            "month": str,  # YYYY-MM
            "kind": str,  # new | expansion | contraction | churn | reactivation
            "amount": int,  # signed cents: mrr_after - mrr_before
            "mrr_before": int,
            "mrr_after": int,
            "plan": str,  # the account's largest subscription's plan after the change
            "reason": str,  # cancellation reason(s) of subscriptions that ended that day
        },
        pk=("account_id", "day"),
    )
    db["mrr_movements"].create_index(["day"])
    db["_hub_portfolio_meta"].create({"key": str, "value": str}, pk="key")


# -- the web app (``hub serve``) and a browsable database ---------------------------------

# Views for the common questions; ``hub.store.web`` documents them for datasette.
WEB_VIEWS = {
    "account_health": """
        SELECT a.id AS account_id, a.name, a.domain, a.owner_name, a.lifecycle_stage, a.mrr,
               a.plan, h.score, h.band, h.computed_score, h.trend_7d, h.trend_30d, h.model,
               h.segment, h.drivers, h.computed_at
        FROM accounts a LEFT JOIN health_scores h ON h.account_id = a.id""",
    "open_tasks": """
        SELECT t.id, t.account_id, a.name AS account, t.playbook, t.reason, t.status,
               t.subject, t.priority, t.due_at, t.owner_id, a.owner_name, t.created_at
        FROM tasks t LEFT JOIN accounts a ON a.id = t.account_id
        WHERE t.status IN ('open', 'pushing', 'pushed')""",
    "timeline": """
        SELECT e.ts, e.account_id, a.name AS account, e.source, e.type, e.summary, e.link,
               e.id AS event_id
        FROM events e LEFT JOIN accounts a ON a.id = e.account_id""",
}


@migrations()
def web_browsable_schema(db: Database) -> None:
    """Foreign keys to ``accounts`` (declared, for datasette and readers; SQLite does not
    enforce them unless a connection asks), and views for the common questions.

    ``transform`` rebuilds each table and copies its rows and indexes, so no data is lost.
    """
    for table in ("events", "health_scores", "tasks", "account_links"):
        known = {fk.column for fk in db[table].foreign_keys}
        if "account_id" not in known:
            db[table].transform(add_foreign_keys=[("account_id", "accounts", "id")])
    for name, sql in WEB_VIEWS.items():
        db.execute(f"DROP VIEW IF EXISTS [{name}]")
        db.execute(f"CREATE VIEW [{name}] AS {sql.strip()}")


@migrations()
def web_identity_overrides(db: Database) -> None:
    """Manual identity links made on the web app's identity page.

    ``key`` is an entity key or a domain, like ``[identity] overrides`` in hub.toml;
    ``account_id`` NULL means "never link this record" (an unlink of an automatic match).
    Identity resolution reads this table beside the config.
    """
    db["identity_overrides"].create(
        {"key": str, "account_id": str, "set_at": str, "set_by": str, "note": str},
        pk="key",
        if_not_exists=True,
    )


@migrations()
def engine_m001_outbox_targets(db: Database) -> None:
    """Tasks: the CRM's id under a vendor-neutral name (``remote_id``), the pusher that
    delivered it (``target``) and the merged reasons of a task (``reasons``, JSON list of
    {playbook, reason, detail}: several playbooks firing for one account make one task)."""
    db.execute("ALTER TABLE tasks RENAME COLUMN hubspot_task_id TO remote_id")
    db["tasks"].add_column("target", str)
    db["tasks"].add_column("reasons", str)


@migrations()
def m006_member_domains(db: Database) -> None:
    """``entities.member_domains``: the e-mail domains of an entity's people (a support
    organization's users), JSON; identity links through them when nothing stronger does."""
    db["entities"].add_column("member_domains", str)


@migrations()
def web_webhook_inbox(db: Database) -> None:
    """Webhook deliveries (``hub serve``): a durable inbox written before the 2xx, deduplicated
    on the provider's event id, drained by the worker; and counters of refusals per connection.

    ``status``: pending → processed (or error, retried), ignored (unknown event type) or
    rejected (malformed body after a valid signature, kept for inspection). A delivery with
    a bad signature is never stored: it only bumps ``refused`` in ``_hub_webhook_counters``.
    """
    db["_hub_webhook_inbox"].create(
        {
            "id": int,
            "connection": str,
            "event_id": str,
            "event_type": str,
            "status": str,
            "received_at": str,
            "processed_at": str,
            "run_id": int,
            "attempts": int,
            "error": str,
            "body": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["_hub_webhook_inbox"].create_index(
        ["connection", "event_id"], unique=True, if_not_exists=True
    )
    db["_hub_webhook_inbox"].create_index(["status", "connection"], if_not_exists=True)
    db["_hub_webhook_counters"].create(
        {"connection": str, "name": str, "value": int, "last_at": str},
        pk=("connection", "name"),
        if_not_exists=True,
    )


@migrations()
def health_coverage_and_history(db: Database) -> None:
    """Health: coverage, first scoring, measure history and the hub's own overrides.

    ``health_scores`` gains ``coverage`` (share 0–1 of the model's weight that had data),
    ``low_coverage`` (1 when under ``[health] min_coverage``), ``churned`` (1 for the
    lifecycle state outside the bands) and ``first_scored_at`` (kept from the first scoring:
    playbooks treat that run as a baseline). ``health_history`` keeps, beside the shown and the
    computed score, the coverage and each measure's score (``measures``, JSON, kept for the
    last ``HISTORY_MEASURE_DAYS`` days: what moved from → to). ``health_override_log`` keeps
    every override set in the hub, also after it was cleared, so that the hub recognises its
    own override when the CRM echoes it back.
    """
    scores = db["health_scores"]
    for column, kind in (
        ("coverage", float),
        ("low_coverage", int),
        ("churned", int),
        ("first_scored_at", str),
    ):
        if column not in scores.columns_dict:
            scores.add_column(column, kind)
    history = db["health_history"]
    for column, kind in (("coverage", float), ("measures", str)):
        if column not in history.columns_dict:
            history.add_column(column, kind)
    history.create_index(["day"], if_not_exists=True)
    db["health_override_log"].create(
        {
            "id": int,
            "account_id": str,
            "value": int,
            "reason": str,
            "until": str,
            "set_at": str,
            "cleared_at": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["health_override_log"].create_index(["account_id"], if_not_exists=True)


@migrations()
def m006_lock_owner(db: Database) -> None:
    """The writer lock names what holds it (``hub sync``…) and the holder process's start
    time, so a live holder is told apart from a new process that reused its pid."""
    columns = db["_hub_lock"].columns_dict
    for name in ("purpose", "proc_start"):
        if name not in columns:
            db["_hub_lock"].add_column(name, str)


@migrations()
def portfolio_m002_points_per_event(db: Database) -> None:
    """One MRR point per ``subscription_mrr`` event (no key to collapse two), so the points
    always count exactly the linked events and the portfolio can tell when one vanished.

    Points are derived data: the table is recreated empty and the next read rebuilds it.
    """
    db["portfolio_mrr_points"].drop(ignore=True)
    db["portfolio_mrr_points"].create(
        {
            "event_id": str,
            "account_id": str,
            "entity": str,
            "subscription_id": str,
            "ts": str,
            "day": str,
            "mrr": int,  # cents per month from ``ts`` on
            "plan": str,
            "reason": str,
        },
    )
    db["portfolio_mrr_points"].create_index(["account_id", "ts"])
    db["portfolio_mrr_points"].create_index(["entity", "subscription_id", "ts"])
    db.execute("DELETE FROM _hub_portfolio_meta")


@migrations()
def writeback_push_history(db: Database) -> None:
    """``_hub_push_history``: per push run, each value written with the value it replaced,
    and each task the run created (``property`` = ``""``, ``new`` = the CRM task id), so a
    run can be listed and undone; ``_hub_push_log`` stays the latest-value cache."""
    db["_hub_push_history"].create(
        {
            "run_id": int,
            "object_type": str,
            "object_id": str,
            "account_id": str,
            "property": str,
            "old": str,
            "new": str,
            "task_id": str,
            "at": str,
        },
    )
    db["_hub_push_history"].create_index(["run_id"])


@migrations()
def writeback_history_target_action(db: Database) -> None:
    """``_hub_push_history`` says whose write a row is (``target``: the pusher's push-log
    namespace) and what it was (``action``: set, task_created, task_archived,
    field_archived, group_archived), so revert and uninstall runs sit in the same history.
    Rows from before keep NULL: a property row is a ``set``, an empty one ``task_created``."""
    columns = db["_hub_push_history"].columns_dict
    for name in ("target", "action"):
        if name not in columns:
            db["_hub_push_history"].add_column(name, str)


@migrations()
def health_m002_history_changes(db: Database) -> None:
    """``health_history`` keeps a row only when what it carries changed (the state on a day is
    the account's latest row on or before it); ``health_days`` lists the days health ran, so
    a trend's baseline day is the latest of them in its bounded span. Filled from the days
    the existing history has."""
    db["health_days"].create({"day": str}, pk="day", if_not_exists=True)
    db.execute("INSERT OR IGNORE INTO health_days (day) SELECT DISTINCT day FROM health_history")


@migrations()
def scale_raw_dicts(db: Database) -> None:
    """Compact raw bodies (``hub.store.rawdoc``): one zstd dictionary per raw table, and the
    raw tables whose JSON-text bodies are all converted. Tables that exist now are not listed:
    ``hub map`` converts them in batches (``rawdoc.compact_legacy``)."""
    db["_hub_raw_dicts"].create(
        {"id": int, "raw_table": str, "dict": bytes, "created_at": str}, pk="id"
    )
    db["_hub_raw_dicts"].create_index(["raw_table"], unique=True)
    db["_hub_raw_compacted"].create({"raw_table": str}, pk="raw_table")


# Later migrations live in migrations_scale.py; importing it registers them after these.
from hub.store import migrations_scale as _scale  # noqa: E402, F401


def pending(db: Database) -> list[str]:
    """Names of the migrations not applied yet, in order."""
    return [m.name for m in migrations.pending(db)]


def applied(db: Database) -> list[str]:
    return [m.name for m in migrations.applied(db)]


def apply(db: Database) -> list[str]:
    """Apply every pending migration; returns their names.

    One ``BEGIN IMMEDIATE`` transaction around the whole set: two processes opening a new
    database at once take turns (the second waits on ``busy_timeout``, then finds nothing
    pending) instead of both creating the same tables.
    """
    if not pending(db):
        return []
    with db.atomic():
        todo = pending(db)
        migrations.apply(db)
    return todo
