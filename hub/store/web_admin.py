"""Read models for the web app's admin pages: portfolio, identity review, runs, datasette.

Split from ``hub.store.web`` (the CS pages) to keep each module readable; the same rules
hold: the pages' SQL lives here, results are plain dicts, the only writes are the identity
overrides a person records on the identity page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub import clock
from hub.store import Store
from hub.store.queries import decode_json
from hub.store.web import _has_column, _rows

# -- portfolio -----------------------------------------------------------------------------


def band_mix_by_owner(store: Store) -> list[dict[str, Any]]:
    """Per owner: accounts, MRR and accounts per band (the book of each CSM)."""
    rows = _rows(
        store,
        "SELECT a.owner_id, MAX(a.owner_name) AS owner_name, h.band, COUNT(*) AS n, "
        "SUM(COALESCE(a.mrr, 0)) AS mrr FROM accounts a LEFT JOIN health_scores h "
        "ON h.account_id = a.id GROUP BY a.owner_id, h.band",
    )
    books: dict[Any, dict[str, Any]] = {}
    for r in rows:
        book = books.setdefault(
            r["owner_id"],
            {
                "owner_id": r["owner_id"],
                "owner_name": r["owner_name"] or "(no owner)",
                "accounts": 0,
                "mrr": 0.0,
                "bands": {},
                "mrr_by_band": {},
            },
        )
        band = r["band"] or "unscored"
        book["accounts"] += r["n"]
        book["mrr"] += r["mrr"] or 0.0
        book["bands"][band] = r["n"]
        book["mrr_by_band"][band] = r["mrr"] or 0.0
    return sorted(books.values(), key=lambda b: (-b["mrr"], b["owner_name"]))


# -- identity ------------------------------------------------------------------------------


def identity_review(store: Store, *, limit: int = 200) -> dict[str, Any]:
    """Records that belong to no account, each with suggested accounts (same name, a shared
    domain), and the overrides made on this page."""
    issues = _rows(
        store,
        "SELECT i.entity, i.issue, i.detail, e.source, e.kind, e.source_id, e.name, e.domains "
        "FROM identity_issues i LEFT JOIN entities e ON e.key = i.entity "
        "WHERE i.issue != 'archived' ORDER BY i.issue, e.source, i.entity LIMIT ?",
        [limit],
    )
    overrides = identity_overrides(store)
    pending = {o["key"]: o for o in overrides}
    index = _AccountIndex(store) if issues else None
    for row in issues:
        row["domains"] = decode_json(row["domains"], [])
        row["suggestions"] = index.suggest(row["name"], row["domains"]) if index else []
        row["pending"] = pending.get(row["entity"])
    return {"issues": issues, "overrides": overrides}


class _AccountIndex:
    """Accounts by lower-case name, by domain and by first word of the name: one scan of
    ``accounts`` per page instead of three queries per unmatched record."""

    def __init__(self, store: Store):
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        self.by_domain: dict[str, list[dict[str, Any]]] = {}
        self.by_word: dict[str, list[dict[str, Any]]] = {}
        for account_id, name, domain in store.db.execute(
            "SELECT id, name, domain FROM accounts ORDER BY name COLLATE NOCASE, id"
        ):
            row = {"id": account_id, "name": name, "domain": domain}
            text = (name or "").strip().lower()
            if text:
                self.by_name.setdefault(text, []).append(row)
                self.by_word.setdefault(text.split()[0], []).append(row)
            if domain:
                self.by_domain.setdefault(domain, []).append(row)

    def suggest(self, name: str | None, domains: list[str]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        text = (name or "").strip().lower()
        for r in self.by_name.get(text, [])[:5]:
            found.setdefault(r["id"], {**r, "why": "same name"})
        for domain in domains:
            for r in self.by_domain.get(domain, [])[:5]:
                found.setdefault(r["id"], {**r, "why": f"domain {domain}"})
        first = text.split()[0] if text else ""
        if len(first) >= 3 and len(found) < 3:
            for r in self.by_word.get(first, [])[:3]:
                found.setdefault(r["id"], {**r, "why": f"name starts with {first}"})
        return list(found.values())[:5]


def identity_overrides(store: Store) -> list[dict[str, Any]]:
    if not store.db["identity_overrides"].exists():
        return []
    return _rows(
        store,
        "SELECT o.key, o.account_id, o.set_at, o.set_by, o.note, a.name AS account "
        "FROM identity_overrides o LEFT JOIN accounts a ON a.id = o.account_id "
        "ORDER BY o.set_at DESC",
    )


def entity_exists(store: Store, key: str) -> bool:
    return store.db.execute("SELECT 1 FROM entities WHERE key = ?", [key]).fetchone() is not None


def account_exists(store: Store, account_id: str) -> bool:
    return (
        store.db.execute("SELECT 1 FROM accounts WHERE id = ?", [account_id]).fetchone() is not None
    )


def set_identity_override(
    store: Store, key: str, account_id: str | None, *, by: str = "web", note: str = ""
) -> None:
    """Record a manual link (``account_id``) or a manual unlink (``None``) of one record;
    identity resolution applies it at the next ``hub map``."""
    with store.db.atomic():
        store.db.execute(
            "INSERT INTO identity_overrides (key, account_id, set_at, set_by, note) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET account_id=excluded.account_id, "
            "set_at=excluded.set_at, set_by=excluded.set_by, note=excluded.note",
            [key, account_id, clock.iso(), by, note],
        )


def remove_identity_override(store: Store, key: str) -> bool:
    with store.db.atomic():
        cursor = store.db.execute("DELETE FROM identity_overrides WHERE key = ?", [key])
    return cursor.rowcount > 0


# -- runs ----------------------------------------------------------------------------------


@dataclass
class RunQuery:
    connection: str = ""
    kind: str = ""
    status: str = ""
    page: int = 1
    per_page: int = 100
    choices: dict[str, list[str]] = field(default_factory=dict)


def runs(store: Store, q: RunQuery) -> dict[str, Any]:
    """Every recorded run, newest first, filtered by connection, step and status."""
    where, args = [], []
    for column, value in (("connection", q.connection), ("kind", q.kind), ("status", q.status)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total = store.db.execute(f"SELECT COUNT(*) FROM _hub_runs{clause}", args).fetchone()[0]
    rows = _rows(
        store,
        f"SELECT * FROM _hub_runs{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*args, q.per_page, (q.page - 1) * q.per_page],
    )
    choices = {
        col: [
            r[0]
            for r in store.db.execute(
                f"SELECT DISTINCT {col} FROM _hub_runs WHERE {col} IS NOT NULL ORDER BY 1"
            )
        ]
        for col in ("connection", "kind", "status")
    }
    return {
        "rows": rows,
        "total": total,
        "pages": max(1, -(-total // q.per_page)),
        "choices": choices,
    }


def run(store: Store, run_id: int) -> dict[str, Any] | None:
    found = _rows(store, "SELECT * FROM _hub_runs WHERE id = ?", [run_id])
    return found[0] if found else None


# -- datasette -----------------------------------------------------------------------------

TABLE_LABELS = {
    "accounts": ("Accounts", "One row per customer company (keyed by the CRM company id)."),
    "account_links": ("Identity links", "Which account each source record belongs to, and how."),
    "entities": ("Source records", "Companies, customers and organizations from each source."),
    "identity_issues": ("Unmatched records", "Source records that belong to no account, and why."),
    "identity_overrides": ("Manual links", "Links and unlinks made by hand on the identity page."),
    "events": ("Events", "The unified timeline: one row per event, per account."),
    "health_scores": ("Health scores", "Current score, band, trend and drivers per account."),
    "health_history": (
        "Health history",
        "A score per account on each day it (or its band or measures) changed.",
    ),
    "health_overrides": ("Health overrides", "Scores set by hand until a date."),
    "tasks": ("Tasks", "Follow-up tasks opened by playbooks."),
}
VIEW_LABELS = {
    "account_health": "Accounts with their current health score and band.",
    "open_tasks": "Tasks still open (not completed, cancelled or reverted), with their account.",
    "timeline": "Every event with the name of its account.",
}


def datasette_metadata(store: Store) -> dict[str, Any]:
    """Metadata for ``datasette hub.db -m metadata.json``: labelled product tables, the
    views described, internal (``_hub_``, ``_sqlite``) and raw tables hidden."""
    tables: dict[str, Any] = {}
    for name in store.db.table_names():
        if name in TABLE_LABELS:
            title, description = TABLE_LABELS[name]
            entry: dict[str, Any] = {"title": title, "description": description}
            if _has_column(store, name, "name"):
                entry["label_column"] = "name"
            if name == "events":
                entry["sort_desc"] = "ts"
            tables[name] = entry
        elif name.startswith(("_", "raw_")):
            tables[name] = {"hidden": True}
    for name, description in VIEW_LABELS.items():
        tables[name] = {"description": description}
    db_name = Path(store.path).stem
    return {
        "title": "hub: customer success data",
        "description": "Accounts, their timeline, health and tasks, as synced by hub.",
        "databases": {db_name: {"tables": tables}},
    }
