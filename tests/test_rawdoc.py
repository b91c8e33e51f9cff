"""Raw bodies are stored compressed with a per-table dictionary, read back whole through the
store and through ``raw_json()`` in SQL; databases with JSON-text bodies are converted in
batches without the mappings seeing a change."""

from __future__ import annotations

import json
import sqlite3

from hub.store import RawRecord, Store, rawdoc


def _docs(n: int, start: int = 0) -> list[RawRecord]:
    return [
        RawRecord(
            id=f"in_{i:05d}",
            data={
                "id": f"in_{i:05d}",
                "object": "invoice",
                "customer": f"cus_{i % 7}",
                "status": "open" if i % 3 else "paid",
                "amount_due": 1000 + i,
                "lines": {"data": [{"price": {"id": "price_growth", "unit_amount": 4500}}]},
                "note": "naïve café ✓",
            },
            updated_at=str(1_700_000_000 + i),
        )
        for i in range(start, start + n)
    ]


def test_round_trip_dictionary_and_sql(tmp_path):
    store = Store(tmp_path / "hub.db")
    try:
        docs = _docs(40)
        assert store.write_page("billing", "invoices", docs, {"cursor": 1}) == 40
        table = "raw_billing_invoices"
        (dicts,) = store.db.execute(
            "SELECT count(*) FROM _hub_raw_dicts WHERE raw_table = ?", [table]
        ).fetchone()
        assert dicts == 1
        kinds = {r[0] for r in store.db.execute(f"SELECT typeof(data) FROM [{table}]")}
        assert kinds == {"blob"}
        stored = sum(len(r[0]) for r in store.db.execute(f"SELECT data FROM [{table}]"))
        plain = sum(len(rawdoc.dumps(d.data)) for d in docs)
        assert stored * 3 < plain, (stored, plain)
        rows = list(store.raw_rows(table))
        assert [r["data"] for r in rows] == [d.data for d in docs]
        # SQL reads the documents through raw_json().
        open_for = store.db.execute(
            f"SELECT count(*) FROM [{table}] WHERE json_extract(raw_json(data), '$.status') = 'open' "
            "AND json_extract(raw_json(data), '$.customer') = 'cus_1'"
        ).fetchone()[0]
        expected = sum(
            1 for d in docs if d.data["status"] == "open" and d.data["customer"] == "cus_1"
        )
        assert open_for == expected > 0
        # Re-reading the same page changes nothing; a changed document is rewritten.
        assert store.write_page("billing", "invoices", _docs(40), None) == 0
        changed = _docs(1)
        changed[0].data["status"] = "void"
        assert store.write_page("billing", "invoices", changed, None) == 1
        (text,) = store.db.execute(
            f"SELECT raw_json(data) FROM [{table}] WHERE id = 'in_00000'"
        ).fetchone()
        assert json.loads(text)["status"] == "void"
    finally:
        store.close()
    # Another process (a fresh connection) reads them with the stored dictionary.
    again = Store(tmp_path / "hub.db")
    try:
        (row,) = again.db.execute(
            "SELECT data FROM raw_billing_invoices WHERE id = 'in_00007'"
        ).fetchall()
        assert again.decode_raw(row[0])["amount_due"] == 1007
    finally:
        again.close()


def test_small_first_page_still_compact_and_readable(tmp_path):
    store = Store(tmp_path / "hub.db")
    try:
        store.write_page("crm", "owners", _docs(2), None)
        store.write_page("crm", "owners", _docs(30, start=2), None)
        rows = list(store.raw_rows("raw_crm_owners"))
        assert len(rows) == 32 and rows[0]["data"]["id"] == "in_00000"
    finally:
        store.close()


def test_legacy_text_bodies_converted_in_place(tmp_path):
    path = tmp_path / "hub.db"
    store = Store(path)
    store.write_page("billing", "invoices", _docs(25), None)
    store.close()
    # As an older hub wrote it: JSON text bodies, and the table not yet converted.
    conn = sqlite3.connect(path)
    docs = {d.id: d.data for d in _docs(25)}
    conn.executemany(
        "UPDATE raw_billing_invoices SET data = ? WHERE id = ?",
        [(json.dumps(v), k) for k, v in docs.items()],
    )
    conn.execute("DELETE FROM _hub_raw_compacted")
    conn.execute("DELETE FROM _hub_raw_dicts")
    conn.commit()
    before = conn.execute("SELECT id, seq FROM raw_billing_invoices ORDER BY id").fetchall()
    conn.close()
    store = Store(path)
    try:
        # Text bodies read as well as compressed ones.
        assert {r["id"]: r["data"] for r in store.raw_rows("raw_billing_invoices")} == docs
        assert store.compact_legacy_raw() == 25
        assert store.compact_legacy_raw() == 0  # remembered: no second scan
        kinds = {r[0] for r in store.db.execute("SELECT typeof(data) FROM raw_billing_invoices")}
        assert kinds == {"blob"}
        after = store.db.execute("SELECT id, seq FROM raw_billing_invoices ORDER BY id").fetchall()
        assert after == before  # the mappings see no change
        assert {r["id"]: r["data"] for r in store.raw_rows("raw_billing_invoices")} == docs
    finally:
        store.close()


def test_in_memory_store(tmp_path):
    store = Store(":memory:")
    try:
        store.write_page("billing", "invoices", _docs(20), None)
        (n,) = store.db.execute(
            "SELECT count(*) FROM raw_billing_invoices "
            "WHERE json_extract(raw_json(data), '$.object') = 'invoice'"
        ).fetchone()
        assert n == 20
    finally:
        store.close()


def test_ref_column_indexed_and_added_to_older_tables(tmp_path):
    path = tmp_path / "hub.db"
    store = Store(path)
    try:
        docs = _docs(20)
        for d in docs:
            d.ref = d.data["customer"]
        store.write_page("billing", "invoices", docs, None)
        plan = " ".join(
            str(r[3])
            for r in store.db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM raw_billing_invoices WHERE ref = 'cus_1'"
            )
        )
        assert "idx_raw_billing_invoices_ref" in plan
        (n,) = store.db.execute(
            "SELECT count(*) FROM raw_billing_invoices WHERE ref = 'cus_1'"
        ).fetchone()
        assert n == sum(1 for d in docs if d.data["customer"] == "cus_1")
        # The same documents with their ref: nothing changes; a ref that changes is rewritten.
        assert store.write_page("billing", "invoices", docs, None) == 0
        docs[0].ref = "cus_other"
        assert store.write_page("billing", "invoices", docs, None) == 1
    finally:
        store.close()
    # A table from before the column: opening it for writing adds the column and its index.
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE raw_old_things (id TEXT PRIMARY KEY, updated_at TEXT, deleted "
        "INTEGER, synced_at TEXT, seq INTEGER, data TEXT)"
    )
    conn.execute("INSERT INTO raw_old_things VALUES ('a', NULL, 0, NULL, 1, '{\"x\": 1}')")
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        store.write_page("old", "things", [RawRecord("b", {"x": 2}, ref="r")], None)
        rows = {r["id"]: r["data"] for r in store.raw_rows("raw_old_things")}
        assert rows == {"a": {"x": 1}, "b": {"x": 2}}
        refs = dict(store.db.execute("SELECT id, ref FROM raw_old_things"))
        assert refs == {"a": None, "b": "r"}
    finally:
        store.close()
