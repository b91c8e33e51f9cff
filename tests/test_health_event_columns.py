"""The typed columns of ``events`` the measures read (``subject_id``, ``metric``): filled from
``attrs`` whoever writes the row, kept in step on update, and made for an existing database
by a one-off rebuild that keeps its rows, rowids, indexes, statistics and views. The scores
read through them are worked by hand."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_health)

from __future__ import annotations

import json
import sqlite3

from sqlite_utils import Database

from hub.health import compute_health
from hub.store.event_columns import add_typed_columns, has_typed_columns
from tests.test_health import (  # noqa: F401 (clk, db: fixtures)
    HAND,
    add_account,
    add_event,
    clk,
    config,
    db,
    score_row,
)

OLD_EVENTS = """CREATE TABLE "events" (
   "id" TEXT PRIMARY KEY,
   "entity" TEXT,
   "account_id" TEXT REFERENCES "accounts"("id"),
   "ts" TEXT,
   "source" TEXT,
   "type" TEXT,
   "summary" TEXT,
   "attrs" TEXT,
   "link" TEXT,
   "mapped_at" TEXT,
   "origin" TEXT
)"""


def _columns(store, event_id: str) -> tuple:
    return store.db.execute(
        "SELECT subject_id, metric FROM events WHERE id = ?", [event_id]
    ).fetchone()


def test_subject_id_and_metric_come_from_attrs_whoever_writes(db, clk):
    add_account(db, "a")
    solved = add_event(db, "a", "ticket_solved", 1, ticket_id=7, resolution_hours=30)
    failed = add_event(db, "a", "payment_failed", 1, invoice_id="in_1", amount=450.5)
    moved = add_event(db, "a", "mrr_changed", 1, delta=-120)
    seen = add_event(db, "a", "competitor_detected", 1, technology="Intercom")
    other = add_event(db, "a", "csat_good", 1)
    # An integer id reads as the text json_extract gave before; numbers are reals.
    assert _columns(db, solved) == ("7", 30.0)
    assert _columns(db, failed) == ("in_1", 450.5)
    assert _columns(db, moved) == (None, -120.0)
    assert _columns(db, seen) == ("Intercom", None)
    assert _columns(db, other) == (None, None)
    # A writer that changes attrs changes the columns (the mapping writer's upsert included).
    db.db.execute(
        "UPDATE events SET attrs = ? WHERE id = ?",
        [json.dumps({"ticket_id": "8", "resolution_hours": 2.5}), solved],
    )
    assert _columns(db, solved) == ("8", 2.5)
    # attrs that are not JSON (or empty) give no value and no error.
    for attrs in ("", None, 'not json "ticket_id" "amount"'):
        db.db.execute("UPDATE events SET attrs = ? WHERE id = ?", [attrs, other])
        assert _columns(db, other) == (None, None)
    # json_extract on attrs keeps working for every other reader.
    assert db.db.execute(
        "SELECT json_extract(attrs, '$.ticket_id') FROM events WHERE id = ?", [solved]
    ).fetchone() == ("8",)


def _old_database(path) -> Database:
    """A database as the previous release left it: events without the typed columns."""
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT);"
        + OLD_EVENTS
        + ";"
        + 'CREATE INDEX "idx_events_account_id_ts" ON "events" ("account_id", "ts");'
        + 'CREATE INDEX "idx_events_type_ts" ON "events" ("type", "ts");'
        + "CREATE INDEX idx_events_origin ON events (origin) WHERE origin IS NOT NULL;"
        + "CREATE VIEW timeline AS SELECT e.ts, e.type, a.name FROM events e "
        + "LEFT JOIN accounts a ON a.id = e.account_id;"
    )
    conn.execute("INSERT INTO accounts VALUES ('a', 'Acme')")
    rows = [
        (11, "z:ticket_solved:1", "a", "ticket_solved", '{"resolution_hours":48,"ticket_id":1}'),
        (12, "z:ticket_solved:2", "a", "ticket_solved", '{"resolution_hours":60,"ticket_id":2}'),
        (40, "s:payment_failed:1", "a", "payment_failed", '{"amount":99,"invoice_id":"in_9"}'),
        (41, "s:invoice_paid:1", "a", "invoice_paid", "{}"),
    ]
    conn.executemany(
        "INSERT INTO events (rowid, id, entity, account_id, ts, source, type, summary, attrs, "
        "mapped_at) VALUES (?, ?, 'e', ?, '2026-11-15T00:00:00.000000Z', 'x', ?, 's', ?, "
        "'2026-11-15T00:00:00.000000Z')",
        rows,
    )
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return Database(path)


def test_rebuild_keeps_rows_rowids_indexes_stats_and_views(tmp_path):
    path = tmp_path / "old.db"
    db = _old_database(path)
    assert not has_typed_columns(db)
    indexes = sorted(
        db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
        ).fetchall()
    )
    stats = sorted(db.execute("SELECT * FROM sqlite_stat1 WHERE tbl = 'events'").fetchall())
    with db.conn:
        add_typed_columns(db)
    db.close()
    db = Database(path)  # a new connection reads the rebuilt schema and statistics
    assert has_typed_columns(db)
    assert db.execute("SELECT rowid, subject_id, metric FROM events ORDER BY rowid").fetchall() == [
        (11, "1", 48.0),
        (12, "2", 60.0),
        (40, "in_9", 99.0),
        (41, None, None),
    ]
    assert (
        sorted(
            db.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
            ).fetchall()
        )
        == indexes
    )
    assert sorted(db.execute("SELECT * FROM sqlite_stat1 WHERE tbl = 'events'").fetchall()) == stats
    assert db.execute("SELECT count(*), min(name) FROM timeline").fetchone() == (4, "Acme")
    assert [fk.column for fk in db["events"].foreign_keys] == ["account_id"]
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with db.conn:
        add_typed_columns(db)  # done once: a second call changes nothing
    assert db.execute("SELECT count(*) FROM events").fetchone() == (4,)


def test_scores_read_the_typed_columns_as_they_read_attrs(db, clk):
    """The hand model (support ×3, billing ×1, csat ×2) on events written as plain SQL rows,
    so the typed columns come from SQLite alone."""
    add_account(db, "a")
    # support: ticket 3 in 48 h → 100 × (1 − (48 − 24) / 48) = 50; ticket 7, solved twice,
    # counts once, by its latest solve (12 h → 100): (50 + 100 + 2·100) / (2 + 2) = 87.50
    add_event(db, "a", "ticket_solved", 5, ticket_id=3, resolution_hours=48)
    add_event(db, "a", "ticket_solved", 3, ticket_id=7, resolution_hours=70)
    add_event(db, "a", "ticket_solved", 1, ticket_id=7, resolution_hours=12)
    # billing: two failed attempts on invoice in_1 are one invoice (−25); a third on in_2
    # (−25): 100 − 50 = 50.00, amount 450 + 99.5 on the two
    add_event(db, "a", "payment_failed", 4, invoice_id="in_1", amount=450)
    add_event(db, "a", "payment_failed", 2, invoice_id="in_1", amount=450)
    add_event(db, "a", "payment_failed", 2, invoice_id="in_2", amount=99.5)
    # csat: 1 good → 100.00
    add_event(db, "a", "csat_good", 2)
    compute_health(db, config(HAND))
    row = score_row(db, "a")
    assert row["measures"] == {
        "support": {"score": 87.5, "weight": 3.0},
        "billing": {"score": 50.0, "weight": 1.0},
        "csat": {"score": 100.0, "weight": 2.0},
    }
    # (3·87.5 + 1·50 + 2·100) / 6 = 512.5 / 6 = 85.42 → 85
    assert row["computed_score"] == 85
    assert any("payment failed on 2 invoices ($549.50)" in d for d in row["drivers"])


def test_open_tickets_of_one_day_score_alike_across_accounts(db, clk):
    """Support scores an open ticket by its day, once per run for every account: two
    accounts with a ticket open since the same day get the same part for it."""
    add_account(db, "a")
    add_account(db, "b")
    add_event(db, "a", "ticket_opened", 10, ticket_id=1)
    add_event(db, "b", "ticket_opened", 10, ticket_id=2)
    add_event(db, "b", "ticket_reopened", 40, ticket_id=3)
    compute_health(db, config({"model": "s", "models": {"s": {"weights": {"support": 1}}}}))
    # Open 10 days: 100 at 7 days, 0 at 30: 100 × (1 − 3 / 23) = 86.9565…
    # a: (86.9565 + 2·100) / (1 + 2) = 95.652… → 95.65 → 96
    # b: open 40 days → 0; (86.9565 + 0 + 2·100) / (2 + 2) = 71.739… → 71.74 → 72
    a, b = score_row(db, "a"), score_row(db, "b")
    assert (a["measures"]["support"]["score"], a["computed_score"]) == (95.65, 96)
    assert (b["measures"]["support"]["score"], b["computed_score"]) == (71.74, 72)
    assert "2 tickets open, the oldest for 40 days" in b["drivers"]


def test_columns_first_shipped_as_subject_and_value_are_renamed_in_place(db, clk):
    # A database migrated while the columns were named subject/value: the next migration
    # renames them without a rebuild, and the values read through the new names.
    from hub.store.migrations_scale import events_m002_typed_column_names

    add_account(db, "acme")
    event_id = add_event(db, "acme", "ticket_solved", 1, ticket_id=7, resolution_hours=3.5)
    db.db.execute("ALTER TABLE events RENAME COLUMN subject_id TO subject")
    db.db.execute("ALTER TABLE events RENAME COLUMN metric TO value")
    events_m002_typed_column_names(db.db)
    assert _columns(db, event_id) == ("7", 3.5)
    events_m002_typed_column_names(db.db)  # again: nothing to do
    assert has_typed_columns(db.db)
