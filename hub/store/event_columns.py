"""Typed columns of ``events`` derived from ``attrs`` at write time: ``subject_id``
and ``metric``.

Measures read "which ticket or invoice is this event about" and "how many hours, how much
money" on every one of millions of event rows per run; ``json_extract`` on the JSON text
costs a parse per call. So ``events`` carries two STORED generated columns, computed by
SQLite whenever a row is written (by the mapping writer, a plugin, a test or a benchmark:
no writer has to fill them, and they can never disagree with ``attrs``):

- ``subject_id`` (text): ``attrs.ticket_id``, else ``attrs.invoice_id``, else
  ``attrs.technology`` (the ticket, invoice or technology the event is about);
- ``metric`` (real): ``attrs.resolution_hours``, else ``attrs.amount``, else ``attrs.delta``.

``attrs`` keeps every attribute as before, so ``json_extract(attrs, '$.x')`` keeps working
for every reader. ``instr`` guards each extraction: most events lack most keys, and a
substring test is far cheaper than parsing the JSON to find that out.
"""

from __future__ import annotations

from sqlite_utils import Database

SUBJECT_KEYS = ("ticket_id", "invoice_id", "technology")
"""``subject_id`` is the first of these attributes present (as text)."""
VALUE_KEYS = ("resolution_hours", "amount", "delta")
"""``metric`` is the first of these attributes present (as a number)."""


def _first(keys: tuple[str, ...]) -> str:
    parts = [
        f"CASE WHEN instr(attrs, '\"{k}\"') AND json_valid(attrs) "
        f"THEN json_extract(attrs, '$.{k}') END"
        for k in keys
    ]
    return f"COALESCE({', '.join(parts)})"


SUBJECT_SQL = _first(SUBJECT_KEYS)
VALUE_SQL = _first(VALUE_KEYS)
COLUMNS_SQL = (
    f"subject_id TEXT GENERATED ALWAYS AS ({SUBJECT_SQL}) STORED, "
    f"metric REAL GENERATED ALWAYS AS ({VALUE_SQL}) STORED"
)


def has_typed_columns(db: Database) -> bool:
    names = {row[1] for row in db.execute("PRAGMA table_xinfo(events)")}
    return {"subject_id", "metric"} <= names


def add_typed_columns(db: Database) -> None:
    """Rebuild ``events`` with the generated columns (SQLite can add a STORED generated
    column only by rebuilding the table): same columns, rowids, indexes, planner statistics
    and views; the caller's transaction makes it all or nothing. Linear in the table (one
    copy, one sort per index), so a one-off cost at upgrade."""
    if has_typed_columns(db):
        return
    create = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'"
    ).fetchone()[0]
    columns = [row[1] for row in db.execute("PRAGMA table_info(events)")]
    indexes = [
        sql
        for (sql,) in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
            "AND sql IS NOT NULL"
        )
    ]
    # Views naming events are dropped and made again: renaming a table re-checks every view.
    views = [
        (name, sql)
        for name, sql in db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'view' AND sql LIKE '%events%'"
        )
    ]
    triggers = [
        sql
        for (sql,) in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
        )
    ]
    stats: list[tuple[str, str, str]] = []
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        stats = list(db.execute("SELECT tbl, idx, stat FROM sqlite_stat1 WHERE tbl = 'events'"))
    body = create[create.index("(") + 1 : create.rindex(")")]
    db.execute(f"CREATE TABLE _hub_events_new ({body.rstrip()}, {COLUMNS_SQL})")
    names = ", ".join(f"[{c}]" for c in columns)
    db.execute(
        f"INSERT INTO _hub_events_new (rowid, {names}) SELECT rowid, {names} FROM events "
        "ORDER BY rowid"
    )
    for name, _ in views:
        db.execute(f"DROP VIEW [{name}]")
    db.execute("DROP TABLE events")
    db.execute("ALTER TABLE _hub_events_new RENAME TO events")
    for sql in indexes:
        db.execute(sql)
    for sql in triggers:
        db.execute(sql)
    for _, sql in views:
        db.execute(sql)
    if stats:
        db.conn.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?,?,?)", stats)


__all__ = [
    "COLUMNS_SQL",
    "SUBJECT_KEYS",
    "SUBJECT_SQL",
    "VALUE_KEYS",
    "VALUE_SQL",
    "add_typed_columns",
    "has_typed_columns",
]
