"""Event origins: which raw row an event came from, stored compactly.

``events.origin`` is ``#<code>:<row id>``, the code naming one (mapping, raw table) pair in
``_hub_map_origins``; re-mapping a row retracts the events it owned and did not emit again
(``hub.timeline.mapping``). Databases from before hold ``<mapping>/<raw table>:<row id>``:
``convert_legacy`` rewrites them in batches (each its own transaction, so a killed run goes on
where it stopped) before any mapping runs. Legacy origins start with a mapping name (a letter,
digit or ``_``), new ones with ``#``, so one index seek tells whether any are left.
"""

from __future__ import annotations

from hub.store import Store

BATCH = 5000


def origin_code(store: Store, mapping: str, table: str) -> int:
    """The code of (mapping, raw table), made on first use (its own small transaction)."""
    db = store.db
    row = db.execute(
        "SELECT code FROM _hub_map_origins WHERE mapping = ? AND raw_table = ?", [mapping, table]
    ).fetchone()
    if row is not None:
        return int(row[0])
    with db.atomic():
        db.execute(
            "INSERT OR IGNORE INTO _hub_map_origins (mapping, raw_table) VALUES (?, ?)",
            [mapping, table],
        )
        row = db.execute(
            "SELECT code FROM _hub_map_origins WHERE mapping = ? AND raw_table = ?",
            [mapping, table],
        ).fetchone()
    return int(row[0])


def origin_of(store: Store, mapping: str, table: str, record_id: str) -> str:
    """The ``events.origin`` of a raw row as mapped by ``mapping``."""
    return f"#{origin_code(store, mapping, table)}:{record_id}"


def parse_origin(store: Store, origin: str) -> tuple[str, str, str] | None:
    """``(mapping, raw table, row id)`` of an ``events.origin``, or None if unknown."""
    if origin.startswith("#"):
        code, _, record_id = origin[1:].partition(":")
        row = store.db.execute(
            "SELECT mapping, raw_table FROM _hub_map_origins WHERE code = ?", [code]
        ).fetchone()
        return (row[0], row[1], record_id) if row else None
    owner, _, rest = origin.partition("/")
    table, _, record_id = rest.partition(":")
    return (owner, table, record_id) if table else None


def convert_legacy(store: Store) -> int:
    """Rewrite origins stored as ``<mapping>/<raw table>:<id>`` into the coded form, in
    batches; returns the events converted."""
    db = store.db
    converted = 0
    while True:
        row = db.execute(
            "SELECT origin FROM events WHERE origin >= '0' ORDER BY origin LIMIT 1"
        ).fetchone()
        if row is None:
            return converted
        owner, _, rest = str(row[0]).partition("/")
        table, sep, _ = rest.partition(":")
        prefix = f"{owner}/{table}:"
        if not sep:  # not an origin this hub wrote: leave it out of the coded form
            prefix = str(row[0])
            with db.atomic():
                db.execute("UPDATE events SET origin = NULL WHERE origin = ?", [prefix])
            continue
        code = origin_code(store, owner, table)
        with db.atomic():
            store.check_fence()
            cursor = db.execute(
                "UPDATE events SET origin = ? || substr(origin, ?) WHERE rowid IN ("
                "SELECT rowid FROM events WHERE origin >= ? AND origin < ? LIMIT ?)",
                [f"#{code}:", len(prefix) + 1, prefix, prefix + "\uffff", BATCH],
            )
        converted += cursor.rowcount
