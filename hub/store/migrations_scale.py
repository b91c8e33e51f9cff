"""The hub's schema migrations from the scale round, registered on ``hub.store.migrations``.

Split from ``hub/store/migrations.py`` to keep modules small; they run after every migration
there, in the order written here. Append new migrations at the end of this module.
"""

from __future__ import annotations

from sqlite_utils import Database

from hub.store.event_columns import add_typed_columns
from hub.store.migrations import WEB_VIEWS, migrations


@migrations()
def push_history_removed(db: Database) -> None:
    """Push history names no CRM's nouns: what an uninstall removed is action ``removed`` with
    the pusher's own noun in ``kind`` (``field``, ``group``…). Rows written as
    ``field_archived`` / ``group_archived`` are rewritten in the same transaction."""
    if "kind" not in db["_hub_push_history"].columns_dict:
        db["_hub_push_history"].add_column("kind", str)
    for old, kind in (("field_archived", "field"), ("group_archived", "group")):
        db.execute(
            "UPDATE _hub_push_history SET action = 'removed', kind = ? WHERE action = ?",
            [kind, old],
        )


@migrations()
def health_m003_change_marks(db: Database) -> None:
    """``_hub_health_dirty`` lists the accounts whose row changed since health last scored
    them, kept by triggers on ``accounts`` at write time (a new row; an update that changes
    a column measures read or the facts), so an incremental run reads the marks instead of
    hashing every account (``_hub_health_state``, dropped). Every account starts marked:
    the first run after the upgrade rescores them all."""
    db["_hub_health_dirty"].create({"account_id": str}, pk="account_id", if_not_exists=True)
    # The columns health reads (``hub.health.Account.COLUMNS``) and the facts.
    read = (
        "id name domain owner_id lifecycle_stage mrr plan seats renewal_date customer_since facts"
    )
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in read.split())
    # Delete, then insert: a new rowid for every mark (a run clears only the marks older
    # than its start), and no conflict clause, which the writing statement's own
    # (``INSERT OR IGNORE``, an upsert) would override inside the trigger.
    mark = (
        "DELETE FROM _hub_health_dirty WHERE account_id = new.id; "
        "INSERT INTO _hub_health_dirty (account_id) VALUES (new.id);"
    )
    db.execute(
        "CREATE TRIGGER IF NOT EXISTS health_mark_inserted AFTER INSERT ON accounts "
        f"BEGIN {mark} END"
    )
    db.execute(
        f"CREATE TRIGGER IF NOT EXISTS health_mark_updated AFTER UPDATE ON accounts WHEN {changed} "
        f"BEGIN {mark} END"
    )
    db.execute("INSERT OR REPLACE INTO _hub_health_dirty (account_id) SELECT id FROM accounts")
    db["_hub_health_state"].drop(ignore=True)


@migrations()
def mapstore_m001_raw_dicts_retrained(db: Database) -> None:
    """A raw table may hold a second, larger zstd dictionary (``hub.store.rawdoc``): the
    one-per-table index goes, and ``docs`` says how many documents each was trained on (the
    most-trained one compresses new bodies)."""
    if "docs" not in db["_hub_raw_dicts"].columns_dict:
        db["_hub_raw_dicts"].add_column("docs", int)
    db.execute("DROP INDEX IF EXISTS idx__hub_raw_dicts_raw_table")
    db["_hub_raw_dicts"].create_index(["raw_table", "docs"], if_not_exists=True)


@migrations()
def mapstore_m002_map_index(db: Database) -> None:
    """A mapping's own index over its rows (``MappingContext.index``), so ``finalize`` reads
    only what a run touched through indexed columns: ``scope`` is "<mapping>/<connection>",
    ``kind`` the mapping's name for the list (open invoices, renewal deals…), ``key`` the
    record, ``ref`` what it belongs to ('' for nothing), ``value`` one sortable text (a due
    date). ``_hub_map_versions`` holds the ``Mapping.version`` each mapping last mapped
    with: a mapping whose version changed maps its rows again from the start."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _hub_map_index (scope TEXT NOT NULL, kind TEXT NOT NULL, "
        "key TEXT NOT NULL, ref TEXT NOT NULL, value TEXT, "
        "PRIMARY KEY (scope, kind, key, ref)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx__hub_map_index_ref ON _hub_map_index (scope, kind, ref)"
    )
    db["_hub_map_versions"].create(
        {"mapping": str, "connection": str, "version": int, "updated_at": str},
        pk=("mapping", "connection"),
        if_not_exists=True,
    )


@migrations()
def mapstore_m003_dirty_accounts(db: Database) -> None:
    """Accounts whose row must be rebuilt (``hub.timeline.accounts``): written with the entity
    and link changes that affect them, cleared with the rebuilt rows, so ``hub map`` rebuilds
    only the accounts that changed. Empty at first: the next map rebuilds every account once
    (``_hub_map_versions`` row ``(accounts)`` says that happened)."""
    db["_hub_dirty_accounts"].create({"account_id": str}, pk="account_id", if_not_exists=True)


@migrations()
def mapstore_m004_origin_codes(db: Database) -> None:
    """``events.origin`` names its (mapping, raw table) by a short code: ``#<code>:<row id>``
    instead of ``<mapping>/<raw table>:<row id>`` (half the bytes, in the table and in its
    index). Origins written before are converted by ``hub map`` in batches
    (``hub.timeline.origins``)."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _hub_map_origins (code INTEGER PRIMARY KEY, "
        "mapping TEXT NOT NULL, raw_table TEXT NOT NULL, UNIQUE (mapping, raw_table))"
    )


@migrations()
def mapstore_m005_push_history_groups(db: Database) -> None:
    """``_hub_push_history`` stores what every row of a run shares once: a row names its
    group (``_hub_push_groups``: run, target, action, object type, property, time) and keeps
    only its object, account (NULL: the object itself; ``PUSH_NO_ACCOUNT``: none), old and
    new values and task id (``hub.store.push_history`` reads them back whole). Existing rows
    are converted here, in this migration's one transaction."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _hub_push_groups (id INTEGER PRIMARY KEY, run_id INTEGER, "
        "target TEXT, action TEXT, object_type TEXT, property TEXT, kind TEXT, at TEXT)"
    )
    if "kind" not in db["_hub_push_history"].columns_dict:
        db["_hub_push_history"].add_column("kind", str)
    db.execute("CREATE INDEX IF NOT EXISTS idx__hub_push_groups_run ON _hub_push_groups (run_id)")
    db.execute(
        "CREATE TABLE _hub_push_rows (group_id INTEGER NOT NULL, object_id TEXT, account_id TEXT, "
        "old TEXT, new TEXT, task_id TEXT)"
    )
    db.execute("CREATE INDEX idx__hub_push_rows_group ON _hub_push_rows (group_id)")
    action = "COALESCE(action, CASE WHEN property != '' THEN 'set' ELSE 'task_created' END)"
    db.execute(
        "INSERT INTO _hub_push_groups (run_id, target, action, object_type, property, kind, at) "
        f"SELECT run_id, target, {action}, object_type, property, kind, at FROM _hub_push_history "
        "GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY min(rowid)"
    )
    db.execute(
        "INSERT INTO _hub_push_rows (group_id, object_id, account_id, old, new, task_id) "
        "SELECT g.id, h.object_id, CASE WHEN h.account_id IS NULL THEN char(0) "
        "WHEN h.account_id = h.object_id THEN NULL ELSE h.account_id END, h.old, h.new, h.task_id "
        "FROM _hub_push_history h JOIN _hub_push_groups g ON g.run_id IS h.run_id "
        "AND g.target IS h.target AND g.action IS COALESCE(h.action, CASE WHEN h.property != '' "
        "THEN 'set' ELSE 'task_created' END) "
        "AND g.object_type IS h.object_type AND g.property IS h.property AND g.kind IS h.kind "
        "AND g.at IS h.at "
        "ORDER BY h.rowid"
    )
    db.execute("DROP TABLE _hub_push_history")
    db.execute("ALTER TABLE _hub_push_rows RENAME TO _hub_push_history")


@migrations()
def mapstore_m006_identity_marks(db: Database) -> None:
    """Entities whose identity inputs changed since identity was last resolved, marked by
    triggers on ``entities`` (a new row, a deleted one, or a change of domains, explicit id,
    root, merge, deletion or member domains), and the fingerprint of the overrides it was
    resolved with (``_hub_identity_meta``): ``hub map`` skips resolving when neither moved."""
    db.execute("CREATE TABLE IF NOT EXISTS _hub_identity_dirty (key TEXT PRIMARY KEY)")
    db["_hub_identity_meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
    inputs = "key source kind source_id domains explicit_account is_root merged_into deleted"
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in (*inputs.split(), "member_domains"))
    # Delete, then insert: no conflict clause, which an upsert's own would override.
    for event, row in (("INSERT", "new"), ("DELETE", "old")):
        db.execute(
            f"CREATE TRIGGER IF NOT EXISTS identity_mark_{event.lower()} AFTER {event} ON entities "
            f"BEGIN DELETE FROM _hub_identity_dirty WHERE key = {row}.key; "
            f"INSERT INTO _hub_identity_dirty (key) VALUES ({row}.key); END"
        )
    db.execute(
        "CREATE TRIGGER IF NOT EXISTS identity_mark_update AFTER UPDATE ON entities "
        f"WHEN {changed} BEGIN DELETE FROM _hub_identity_dirty WHERE key = new.key; "
        "INSERT INTO _hub_identity_dirty (key) VALUES (new.key); END"
    )


@migrations()
def mapstore_m007_event_indexes(db: Database) -> None:
    """``events``: the index on ``entity`` goes (identity finds an entity's events through
    the ``(account_id, ts)`` index by the account they carry; the mappings by type), and the
    index on ``origin`` covers only events that have one."""
    db.execute("DROP INDEX IF EXISTS idx_events_entity")
    db.execute("DROP INDEX IF EXISTS idx_events_origin")
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_events_origin ON events (origin) WHERE origin IS NOT NULL"
    )


@migrations()
def tasks_reverted_status(db: Database) -> None:
    """``open_tasks`` lists the active statuses only, so a ``reverted`` task (archived by
    ``hub push revert``) is not shown as open."""
    db.execute("DROP VIEW IF EXISTS [open_tasks]")
    db.execute(f"CREATE VIEW [open_tasks] AS {WEB_VIEWS['open_tasks'].strip()}")


@migrations()
def events_m001_typed_columns(db: Database) -> None:
    """``events.subject_id`` (the ticket, invoice or technology an event is about) and
    ``events.metric`` (resolution hours, amount, MRR delta): STORED generated columns filled
    from ``attrs`` whenever a row is written, so health's aggregation reads typed columns
    instead of parsing JSON on every event row (``hub.store.event_columns``). The table is
    rebuilt once, with its rows, rowids, indexes and views."""
    add_typed_columns(db)


@migrations()
def events_m002_typed_column_names(db: Database) -> None:
    """The typed columns as first shipped were named ``subject`` and ``value``: ``value``
    made ``SELECT value FROM events, json_each(...)`` ambiguous and ``subject`` read like
    ``attrs.subject`` (a ticket's subject line). Renamed in place (no rebuild)."""
    names = {row[1] for row in db.execute("PRAGMA table_xinfo(events)")}
    if "subject" in names and "subject_id" not in names:
        db.execute("ALTER TABLE events RENAME COLUMN subject TO subject_id")
    if "value" in names and "metric" not in names:
        db.execute("ALTER TABLE events RENAME COLUMN value TO metric")
