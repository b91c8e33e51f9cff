"""Read models: the queries the CLI (and any other front end) shows, as plain dicts.

The CLI holds no SQL: each listing it prints comes from a function here, so the same rows
can be rendered as a table, plain lines or JSON, and a web page can reuse them. JSON columns
(``facts``, ``attrs``, ``domains``, ``drivers``) are decoded here, never left as JSON inside
JSON. Text searches escape ``%`` and ``_`` (``like_pattern``), so a name is matched literally.
"""

from __future__ import annotations

import json
from typing import Any

from hub.store import Store

LIKE_ESCAPE = "\\"


def like_pattern(text: str, *, contains: bool = True) -> str:
    """``text`` as a LIKE pattern that matches it literally (use with ``ESCAPE '\\'``)."""
    escaped = text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if contains else escaped


def decode_json(text: Any, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _limit(limit: int | None) -> tuple[str, list[Any]]:
    return (" LIMIT ?", [int(limit)]) if limit else ("", [])


def find_account(store: Store, text: str, *, domain: str | None = None) -> dict[str, Any] | None:
    """One account by id, then ``domain`` (normalised by the caller), then exact name, then a
    name containing ``text`` literally (``%`` and ``_`` are not wildcards). Several name
    matches are an error listing them, so a command never acts on the wrong account."""
    from hub.errors import ConfigError

    db = store.db
    row = db.execute("SELECT id FROM accounts WHERE id = ?", [text]).fetchone()
    if not row and domain:
        row = db.execute(
            "SELECT id FROM accounts WHERE domain = ? ORDER BY id LIMIT 1", [domain]
        ).fetchone()
    if not row:
        rows = db.execute(
            "SELECT id, name, domain FROM accounts WHERE lower(name) = lower(?) LIMIT 4", [text]
        ).fetchall()
        if not rows:
            rows = db.execute(
                "SELECT id, name, domain FROM accounts "
                "WHERE lower(name) LIKE lower(?) ESCAPE '\\' LIMIT 4",
                [like_pattern(text)],
            ).fetchall()
        if len(rows) > 1:
            shown = "; ".join(f"{name} (id {rid}, {dom})" for rid, name, dom in rows[:3])
            raise ConfigError(
                f"{text!r} matches several accounts: {shown}",
                hint="give the id or the domain instead",
            )
        row = rows[0] if rows else None
    if not row:
        return None
    return next(db.query("SELECT * FROM accounts WHERE id = ?", [row[0]]))


def accounts(
    store: Store,
    *,
    owner: str | None = None,
    search: str | None = None,
    limit: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Accounts by MRR (largest first), with ``facts`` decoded and ``sources`` (source name
    → number of linked records); returns (rows, total matching before the limit)."""
    where, params = [], []
    if owner:
        where.append(
            "(owner_id = ? OR lower(owner_name) LIKE lower(?) ESCAPE '\\' "
            "OR lower(owner_email) = lower(?))"
        )
        params += [owner, like_pattern(owner), owner]
    if search:
        where.append("(lower(name) LIKE lower(?) ESCAPE '\\' OR domain LIKE lower(?) ESCAPE '\\')")
        params += [like_pattern(search), like_pattern(search)]
    clause = " WHERE " + " AND ".join(where) if where else ""
    total = store.db.execute(f"SELECT COUNT(*) FROM accounts{clause}", params).fetchone()[0]
    lim, lim_params = _limit(limit)
    rows = list(
        store.db.query(
            f"SELECT * FROM accounts{clause} ORDER BY mrr DESC NULLS LAST, name, id{lim}",
            params + lim_params,
        )
    )
    for row in rows:
        row["facts"] = decode_json(row["facts"], {})
        row["sources"] = row["facts"].get("sources", {})
    return rows, total


def account_count(store: Store) -> int:
    return store.db["accounts"].count


def account_names(store: Store) -> dict[str, str]:
    """Account id → name, for labelling rows that carry only an id."""
    return {r[0]: r[1] for r in store.db.execute("SELECT id, name FROM accounts")}


def identity_links(store: Store, *, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """How each source record is linked to its account (method and detail)."""
    total = store.db["account_links"].count
    lim, params = _limit(limit)
    rows = list(
        store.db.query(
            "SELECT l.account_id, a.name AS account, l.entity, l.method, l.detail "
            "FROM account_links l LEFT JOIN accounts a ON a.id = l.account_id "
            f"ORDER BY l.account_id, l.method, l.entity{lim}",
            params,
        )
    )
    return rows, total


def unmatched(store: Store, *, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """Source records that belong to no account, and why."""
    total = store.db["identity_issues"].count
    lim, params = _limit(limit)
    rows = list(
        store.db.query(
            "SELECT i.entity, i.issue, i.detail, e.name, e.domains FROM identity_issues i "
            f"LEFT JOIN entities e ON e.key = i.entity ORDER BY i.issue, i.entity{lim}",
            params,
        )
    )
    for row in rows:
        row["domains"] = decode_json(row["domains"], [])
    return rows, total


def account_events(
    store: Store,
    account_id: str,
    *,
    since: str | None = None,
    types: list[str] | None = None,
    limit: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One account's timeline, newest first, ``attrs`` decoded."""
    where, params = ["account_id = ?"], [account_id]
    if since:
        where.append("ts >= ?")
        params.append(since)
    if types:
        where.append(f"type IN ({','.join('?' * len(types))})")
        params += list(types)
    clause = " AND ".join(where)
    total = store.db.execute(f"SELECT COUNT(*) FROM events WHERE {clause}", params).fetchone()[0]
    lim, lim_params = _limit(limit)
    rows = list(
        store.db.query(
            f"SELECT id, ts, source, type, summary, attrs, link FROM events WHERE {clause} "
            f"ORDER BY ts DESC, id DESC{lim}",
            params + lim_params,
        )
    )
    for row in rows:
        row["attrs"] = decode_json(row["attrs"], {})
    return rows, total


def database_overview(store: Store) -> dict[str, Any]:
    """Counts the demo summary and ``hub db status`` show."""
    db = store.db

    def count(table: str) -> int:
        return db[table].count if db[table].exists() else 0

    links = {
        r["method"]: r["n"]
        for r in db.query("SELECT method, COUNT(*) AS n FROM account_links GROUP BY method")
    }
    bands = {}
    if db["health_scores"].exists():
        bands = {
            r["band"]: r["n"]
            for r in db.query("SELECT band, COUNT(*) AS n FROM health_scores GROUP BY band")
        }
    tasks = {
        r["playbook"]: r["n"]
        for r in db.query(
            "SELECT playbook, COUNT(*) AS n FROM tasks GROUP BY playbook ORDER BY n DESC, playbook"
        )
    }
    # Root records (a CRM company, …) deleted at their source: each is an account fewer.
    deleted_roots = 0
    if db["entities"].exists():
        deleted_roots = db.execute(
            "SELECT COUNT(*) FROM entities WHERE is_root = 1 AND deleted = 1"
        ).fetchone()[0]
    return {
        "accounts": count("accounts"),
        "deleted_roots": deleted_roots,
        "events": count("events"),
        "unmatched": count("identity_issues"),
        "links": links,
        "bands": bands,
        "tasks_by_playbook": tasks,
    }


def health_movers(store: Store, *, falls: int = 4, climbs: int = 2) -> list[dict[str, Any]]:
    """The steepest 30-day falls (who needs a call) and the best climbs (who is recovering)."""
    sql = (
        "SELECT a.name, a.domain, h.score, h.band, h.trend_30d, h.drivers FROM health_scores h "
        "JOIN accounts a ON a.id = h.account_id WHERE h.trend_30d {} 0 "
        "ORDER BY h.trend_30d {}, a.name LIMIT ?"
    )
    rows = list(store.db.query(sql.format("<", "ASC"), [falls])) + list(
        store.db.query(sql.format(">", "DESC"), [climbs])
    )
    for row in rows:
        row["drivers"] = decode_json(row["drivers"], [])
    return rows


def steepest_faller_domain(store: Store) -> str | None:
    """The domain of the account whose score fell most (the demo's example account)."""
    row = store.db.execute(
        "SELECT a.domain FROM health_scores h JOIN accounts a ON a.id = h.account_id "
        "WHERE a.domain IS NOT NULL ORDER BY h.trend_30d IS NULL, h.trend_30d, h.score LIMIT 1"
    ).fetchone()
    return row[0] if row else None
