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


def build_accounts(store: Store) -> int:
    """Rebuild the ``accounts`` table from root entities and their linked entities' facts.

    Only accounts whose row changed are rewritten, so ``updated_at`` tells the health engine
    which accounts need recomputing. Returns the number of accounts.
    """
    db = store.db
    accounts: dict[str, dict[str, Any]] = {}
    _combine(
        accounts,
        db.query(
            "SELECT l.account_id, e.key, e.source, e.name, e.domains, e.facts, e.is_root, l.method "
            "FROM account_links l JOIN entities e ON e.key = l.entity "
            "ORDER BY l.account_id, e.key"
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
    existing = {
        row[0]: tuple(row) for row in db.execute(f"SELECT {', '.join(_ROW_COLUMNS)} FROM accounts")
    }
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
    return len(out)
