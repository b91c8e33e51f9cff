"""A raw table gets a second, larger dictionary once it holds ``RETRAIN_DOCS`` rows: later
bodies use it, earlier ones stay readable with the dictionary they were written with."""

from __future__ import annotations

from hub.store import RawRecord, Store, rawdoc


def _events(start: int, n: int) -> list[RawRecord]:
    kinds = ["invoice.paid", "customer.subscription.updated", "charge.failed", "customer.updated"]
    return [
        RawRecord(
            id=f"evt_{i:06d}",
            data={
                "id": f"evt_{i:06d}",
                "object": "event",
                "type": kinds[i % 4],
                "created": 1_700_000_000 + i,
                "data": {"object": {"id": f"obj_{i % 97}", "customer": f"cus_{i % 31}"}},
            },
        )
        for i in range(start, start + n)
    ]


def test_second_dictionary_after_enough_rows(tmp_path):
    store = Store(tmp_path / "hub.db")
    try:
        page = 100
        for start in range(0, rawdoc.RETRAIN_DOCS + 2 * page, page):
            store.write_page("billing", "events", _events(start, page), None)
        dicts = store.db.execute(
            "SELECT id, docs FROM _hub_raw_dicts WHERE raw_table = 'raw_billing_events' ORDER BY docs"
        ).fetchall()
        assert [d[1] for d in dicts] == [page, rawdoc.RETRAIN_DOCS]
        first, second = (d[0] for d in dicts)
        used = {
            int.from_bytes(bytes(r[0])[1:5], "big")
            for r in store.db.execute("SELECT data FROM raw_billing_events")
        }
        assert used == {first, second}
        last = store.db.execute(
            "SELECT data FROM raw_billing_events WHERE id = ?",
            [f"evt_{rawdoc.RETRAIN_DOCS + 2 * page - 1:06d}"],
        ).fetchone()[0]
        assert int.from_bytes(bytes(last)[1:5], "big") == second
    finally:
        store.close()
    # A fresh process reads every row and keeps writing with the second dictionary.
    again = Store(tmp_path / "hub.db")
    try:
        rows = list(again.raw_rows("raw_billing_events"))
        assert len(rows) == rawdoc.RETRAIN_DOCS + 2 * page
        assert rows[0]["data"]["type"] == "invoice.paid"
        assert again.codec.table_dict("raw_billing_events") == second
        again.write_page("billing", "events", _events(5000, 20), None)
        count = again.db.execute("SELECT count(*) FROM _hub_raw_dicts").fetchone()[0]
        assert count == 2
    finally:
        again.close()
