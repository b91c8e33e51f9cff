"""The ``accounts`` table: one row per account, rebuilt from linked entities and their facts.

``ACCOUNT_COLUMNS`` is the one list of the account facts that have their own column (the CLI,
health and playbooks read it from here); every other fact goes into the ``facts`` JSON.
"""

from __future__ import annotations

import json
from typing import Any

from hub import clock
from hub.store import Store
from hub.vocabulary import vocabulary

# Account facts with a column of their own in ``accounts``, in display order.
ACCOUNT_COLUMNS: tuple[str, ...] = (
    "name",
    "domain",
    "owner_id",
    "owner_name",
    "owner_email",
    "lifecycle_stage",
    "mrr",
    "plan",
    "seats",
    "renewal_date",
    "customer_since",
)
# Facts that add up across an account's entities (two billing customers → both MRRs count).
SUMMED_FACTS = frozenset({"mrr", "seats", "active_subscriptions"})
# Facts where the latest value across entities wins (ISO times compare as text).
LATEST_FACTS = frozenset({"churned_at"})
# Facts taken from entities (name and domain come from the root entity itself).
_FACT_COLUMNS = tuple(c for c in ACCOUNT_COLUMNS if c not in ("name", "domain"))
_ROW_COLUMNS = ("id", "name", "domain", "hubspot_company_id", *_FACT_COLUMNS, "facts")


def _combine(accounts: dict[str, dict[str, Any]], rows: Any) -> None:
    vocab = vocabulary()
    for row in rows:
        acc = accounts.setdefault(row["account_id"], {"facts": {}, "sources": {}, "_prio": {}})
        facts = json.loads(row["facts"] or "{}")
        if row["is_root"] and row["method"] == "root":
            acc["name"] = row["name"]
            domains = json.loads(row["domains"] or "[]")
            acc["domain"] = domains[0] if domains else None
        acc["sources"][row["source"]] = acc["sources"].get(row["source"], 0) + 1
        # Which source wins for a fact when several entities carry it: the vocabulary's rank.
        prio = vocab.fact_rank(row["source"])
        for key, value in facts.items():
            if (
                key in SUMMED_FACTS
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
            ):
                acc["facts"][key] = acc["facts"].get(key, 0) + value
            elif key in LATEST_FACTS:
                if value and (not acc["facts"].get(key) or str(value) > str(acc["facts"][key])):
                    acc["facts"][key] = value
                else:
                    acc["facts"].setdefault(key, value)
            elif value in (None, ""):
                acc["facts"].setdefault(key, value)  # an empty value never hides a real one
            elif key not in acc["_prio"] or prio < acc["_prio"][key]:
                acc["facts"][key] = value
                acc["_prio"][key] = prio


FULL_MARK = "(accounts)"
"""``_hub_map_versions`` row: every account was rebuilt since dirty tracking began."""


def build_accounts(store: Store, *, only_changed: bool = False) -> int:
    """Rebuild the ``accounts`` table from root entities and their linked entities' facts;
    returns the number of accounts. With ``only_changed`` (what ``hub map`` does), only the
    rows of accounts whose entities, facts or links changed (all of them the first time, or
    after ``hub map --full``).

    Writers mark accounts in ``_hub_dirty_accounts`` in the transaction of their change
    (``MappingContext.flush``, identity's link changes); the rebuilt rows and the clearing of
    those marks commit together, so a killed run leaves them for the next one. Only rows
    that differ are rewritten, so ``updated_at`` tells the health engine which accounts need
    recomputing.
    """
    db = store.db
    full = not only_changed or (
        db.execute(
            "SELECT 1 FROM _hub_map_versions WHERE mapping = ? AND connection = ''", [FULL_MARK]
        ).fetchone()
        is None
    )
    dirty = sorted(r[0] for r in db.execute("SELECT account_id FROM _hub_dirty_accounts"))
    if full:
        _rebuild(store, None)
    else:
        for start in range(0, len(dirty), 2000):
            _rebuild(store, dirty[start : start + 2000])
    with db.atomic():
        for start in range(0, len(dirty), 500):
            chunk = dirty[start : start + 500]
            db.execute(
                f"DELETE FROM _hub_dirty_accounts WHERE account_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
        if full:
            db.execute(
                "INSERT OR REPLACE INTO _hub_map_versions (mapping, connection, version, updated_at) "
                "VALUES (?, '', 1, ?)",
                [FULL_MARK, clock.iso()],
            )
    return db.execute("SELECT count(*) FROM accounts").fetchone()[0]


def _rebuild(store: Store, ids: list[str] | None) -> None:
    """Rebuild the rows of accounts ``ids`` (None: every account) in one transaction."""
    db = store.db
    accounts: dict[str, dict[str, Any]] = {}
    select = (
        "SELECT l.account_id, e.key, e.source, e.name, e.domains, e.facts, e.is_root, l.method "
        "FROM account_links l JOIN entities e ON e.key = l.entity"
    )
    if ids is None:
        _combine(accounts, db.query(select + " ORDER BY l.account_id, e.key"))
    elif ids:
        marks = ",".join("?" * len(ids))
        _combine(
            accounts,
            db.query(
                select + f" WHERE l.account_id IN ({marks}) ORDER BY l.account_id, e.key", ids
            ),
        )
    now = clock.iso()
    out = []
    for account_id, acc in accounts.items():
        if "name" not in acc:
            continue  # only live root entities (CRM companies) are accounts
        facts = acc["facts"]
        if "churned_at" in facts:
            # One live subscription anywhere: the account has not churned, whatever ended.
            live = facts.get("active_subscriptions")
            facts["churned_at"] = None if live else (facts["churned_at"] or None)
        record = {
            "id": account_id,
            "name": acc.get("name"),
            "domain": acc.get("domain"),
            "hubspot_company_id": account_id,
            **{col: facts.get(col) for col in _FACT_COLUMNS},
        }
        extra = {k: v for k, v in facts.items() if k not in ACCOUNT_COLUMNS}
        extra["sources"] = acc["sources"]
        record["facts"] = json.dumps(extra, sort_keys=True, default=str)
        out.append(record)
    columns = ", ".join(_ROW_COLUMNS)
    if ids is None:
        rows = db.execute(f"SELECT {columns} FROM accounts")
    else:
        marks = ",".join("?" * len(ids))
        rows = db.execute(f"SELECT {columns} FROM accounts WHERE id IN ({marks})", ids)
    existing = {row[0]: tuple(row) for row in rows}
    changed = [r for r in out if tuple(r[c] for c in _ROW_COLUMNS) != existing.get(r["id"])]
    keep = {r["id"] for r in out}
    with db.atomic():
        gone = [k for k in existing if k not in keep]
        for start in range(0, len(gone), 500):
            chunk = gone[start : start + 500]
            db.execute(f"DELETE FROM accounts WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        if changed:
            for r in changed:
                r["updated_at"] = now
            db["accounts"].upsert_all(changed, pk="id", batch_size=1000)
