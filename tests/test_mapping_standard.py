"""The standard mapping suite (``hub.testing.mappings``) run against the four built-in mappings.

One small sandbox world is synced twice (before and after the world moves on a few days)
into two template databases; each test copies raw rows from them, so the suite costs a
file copy per test instead of a sync.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import clock
from hub.sandbox.base import COMPETITORS, OUR_TECHNOLOGY
from hub.store import RawRecord, Store
from hub.testing.mappings import MappingTests, write_rows
from hub.timeline import Mapping, MappingSettings
from hub.vocabulary import EventType
from mappings.builtwith import BuiltWithMapping
from mappings.hubspot import HubSpotMapping
from mappings.stripe import StripeMapping
from mappings.zendesk import ZendeskMapping
from tests.helpers import two_syncs


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """(first sync, second sync, the world's clock after the second) as database files."""
    return two_syncs(tmp_path_factory.mktemp("std"), companies=24, seed=7, days=6)


def copy_raw(store: Store, source: Path, *, after: int = 0) -> None:
    """Copy raw rows changed after seq ``after`` from another hub database."""
    db = store.db
    db.execute("ATTACH DATABASE ? AS src", [str(source)])
    try:
        tables = db.execute(
            "SELECT name, sql FROM src.sqlite_master WHERE type = 'table' AND name LIKE 'raw%'"
        ).fetchall()
        with db.atomic():
            for name, sql in tables:
                if not db[name].exists():
                    db.execute(sql)
                db.execute(
                    f"INSERT OR REPLACE INTO main.[{name}] SELECT * FROM src.[{name}] WHERE seq > ?",
                    [after],
                )
            # Compressed bodies name their table's dictionary: it comes along.
            db.execute("INSERT OR IGNORE INTO main._hub_raw_dicts SELECT * FROM src._hub_raw_dicts")
            db.execute(
                "UPDATE main._hub_seq SET value = (SELECT value FROM src._hub_seq WHERE name = 'raw') WHERE name = 'raw'"
            )
    finally:
        db.execute("DETACH DATABASE src")


def first_row(store: Store, table: str, where: str) -> tuple[str, dict]:
    row = store.db.execute(
        f"SELECT id, data FROM [{table}] WHERE deleted = 0 AND {where} ORDER BY id LIMIT 1"
    ).fetchone()
    assert row, f"no row in {table} where {where}"
    return row[0], store.decode_raw(row[1])


class SandboxMappingTests(MappingTests):
    other_mappings = [HubSpotMapping]  # the account roots

    @pytest.fixture(autouse=True)
    def _world(self, templates):
        self._templates = templates
        clock.set_source(lambda: templates[2])
        yield

    def load(self, store: Store) -> None:
        copy_raw(store, self._templates[0])

    def change(self, store: Store) -> None:
        first = Store(self._templates[0])
        seq = first.db.execute("SELECT value FROM _hub_seq WHERE name = 'raw'").fetchone()[0]
        first.close()
        copy_raw(store, self._templates[1], after=seq)


class TestHubSpotMapping(SandboxMappingTests):
    mapping_class = HubSpotMapping
    other_mappings = []

    def retype(self, store):
        deal_id, data = first_row(
            store,
            "raw_hubspot_deals",
            "json_extract(raw_json(data), '$.properties.dealstage') = 'closedwon'",
        )
        data["properties"]["dealstage"] = "closedlost"
        store.write_page("hubspot", "deals", [RawRecord(deal_id, data)], None)
        return "deals", deal_id


class TestStripeMapping(SandboxMappingTests):
    mapping_class = StripeMapping

    def retype(self, store):
        inv_id, data = first_row(
            store, "raw_stripe_invoices", "json_extract(raw_json(data), '$.status') = 'paid'"
        )
        was_late = store.db.execute(
            "SELECT 1 FROM events WHERE id = ?", [f"stripe:invoice_paid_late:{inv_id}"]
        ).fetchone()
        # Paid on time becomes paid ten days late (or the other way round).
        transitions = data["status_transitions"]
        due = data.get("due_date") or transitions.get("finalized_at") or data["created"]
        transitions["paid_at"] = due + (0 if was_late else 10 * 86400)
        store.write_page("stripe", "invoices", [RawRecord(inv_id, data)], None)
        return "invoices", inv_id


class TestZendeskMapping(SandboxMappingTests):
    mapping_class = ZendeskMapping

    def retype(self, store):
        rating_id, data = first_row(
            store,
            "raw_zendesk_satisfaction_ratings",
            "json_extract(raw_json(data), '$.score') = 'good'",
        )
        data["score"] = "bad"
        store.write_page("zendesk", "satisfaction_ratings", [RawRecord(rating_id, data)], None)
        return "satisfaction_ratings", rating_id


class TestBuiltWithMapping(SandboxMappingTests):
    mapping_class = BuiltWithMapping
    settings = {"builtwith": {"our_technologies": [OUR_TECHNOLOGY], "competitors": COMPETITORS}}

    def tombstone(self, store):
        # BuiltWith events are keyed by domain and technology, not by the row: pick a domain
        # with events and delete it.
        (entity,) = store.db.execute(
            "SELECT entity FROM events WHERE source = 'builtwith' ORDER BY id LIMIT 1"
        ).fetchone()
        domain = entity.split(":", 2)[2]
        (data,) = store.db.execute(
            "SELECT data FROM raw_builtwith_domains WHERE id = ?", [domain]
        ).fetchone()
        store.write_page(
            "builtwith", "domains", [RawRecord(domain, store.decode_raw(data), deleted=True)], None
        )
        return "domains", domain


# -- a plugin-style mapping written the naive way, from PLUGINS.md ------------------------------


class RatingsMapping(Mapping):
    """Emits csat_good or csat_bad per rating and never retracts anything itself: the
    framework's ownership rule must keep its timeline right."""

    name = connector = "acme_ratings"
    streams = ["orgs", "ratings"]
    event_types = [
        EventType("csat_good", "good", polarity="positive"),
        EventType("csat_bad", "bad", polarity="negative"),
    ]

    class Settings(MappingSettings):
        good_scores: list[str] = ["good"]

    def map_rows(self, ctx, stream, rows):
        for row in rows:
            data = row["data"]
            if stream == "orgs":
                ctx.entity(
                    "acme",
                    "org",
                    row["id"],
                    name=data["name"],
                    domains=[data["domain"]],
                    deleted=row["deleted"],
                    facts={"plan": data.get("plan")},
                )
            elif not row["deleted"]:
                good = data["score"] in ctx.settings.good_scores
                ctx.event(
                    ctx.entity_key("acme", "org", data["org"]),
                    "csat_good" if good else "csat_bad",
                    data["at"],
                    source="acme",
                    source_id=row["id"],
                    summary=f"CSAT {data['score']}",
                )


class TestNaivePluginMapping(MappingTests):
    mapping_class = RatingsMapping

    def load(self, store):
        write_rows(
            store,
            "acme_ratings",
            "orgs",
            [
                {"id": "o1", "name": "One", "domain": "one.example", "plan": "pro"},
                {"id": "o2", "name": "Two", "domain": "two.example"},
            ],
        )
        write_rows(
            store,
            "acme_ratings",
            "ratings",
            [
                {
                    "id": str(i),
                    "org": f"o{1 + i % 2}",
                    "score": "good" if i % 3 else "bad",
                    "at": f"2026-01-{i + 1:02d}T10:00:00Z",
                }
                for i in range(8)
            ],
        )

    def change(self, store):
        write_rows(
            store,
            "acme_ratings",
            "ratings",
            [
                {"id": "3", "org": "o2", "score": "good", "at": "2026-01-04T10:00:00Z"},
                {"id": "9", "org": "o1", "score": "bad", "at": "2026-01-20T10:00:00Z"},
            ],
        )
        store.write_page(
            "acme_ratings",
            "orgs",
            [RawRecord("o1", {"id": "o1", "name": "One", "domain": "one.example"}, deleted=True)],
            None,
        )

    def retype(self, store):
        write_rows(
            store,
            "acme_ratings",
            "ratings",
            [{"id": "1", "org": "o2", "score": "bad", "at": "2026-01-02T10:00:00Z"}],
        )
        return "ratings", "1"
