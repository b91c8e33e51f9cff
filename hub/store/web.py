"""Read models for the web app (``hub serve``): every query its pages run, and nothing else.

The pages open the database read-only (``ReadOnlyStore``), so ``hub serve`` can run beside
``hub run`` (WAL readers never block the writer). The only writes here are the identity
overrides a person makes on the identity page (``set_identity_override``), through a normal
``Store``. Results are plain dicts and lists, decoded from JSON where the column holds JSON.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from hub import clock
from hub.errors import ConfigError
from hub.store import Store
from hub.store.queries import decode_json

BAND_ORDER = ("green", "yellow", "red", "churned")
LOW_COVERAGE = 0.6  # below this share of the model's weight with data a score is "low coverage"
PAGE_SIZE = 50
SORTS = {
    "name": "a.name COLLATE NOCASE",
    "score": "h.score",
    "trend_7d": "h.trend_7d",
    "trend_30d": "h.trend_30d",
    "mrr": "a.mrr",
    "owner": "a.owner_name COLLATE NOCASE",
    "renewal": "a.renewal_date",
}


class ReadOnlyStore(Store):
    """A ``Store`` on a read-only connection: no migration, no WAL switch, no writes."""

    def __init__(self, path: str | Path):
        self.path = str(Path(path).expanduser().resolve())
        if not Path(self.path).is_file():
            raise ConfigError(
                f"database {self.path} does not exist", hint="run 'hub sync' or 'hub demo' first"
            )
        try:
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, timeout=30, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout=30000")
            self.db = sqlite_utils.Database(conn)
            conn.execute("SELECT 1 FROM accounts LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"cannot read database {self.path}: {exc}",
                hint="point --db at a hub database (run 'hub map' once to create its tables)",
            ) from None


def _rows(store: Store, sql: str, args: Any = ()) -> list[dict[str, Any]]:
    return list(store.db.query(sql, list(args)))


def _has_column(store: Store, table: str, column: str) -> bool:
    return column in {c.name for c in store.db[table].columns}


def _coverage_sql(store: Store) -> str:
    """SQL for a score's coverage: a ``coverage`` column once the engine stores one, else the
    share of measure weight that had data, from the ``measures`` JSON."""
    if _has_column(store, "health_scores", "coverage"):
        return "h.coverage"
    return (
        "(SELECT SUM(CASE WHEN json_extract(m.value, '$.score') IS NOT NULL "
        "THEN json_extract(m.value, '$.weight') ELSE 0 END) * 1.0 / "
        "NULLIF(SUM(json_extract(m.value, '$.weight')), 0) FROM json_each(h.measures) m)"
    )


def band_sort_key(band: str | None) -> tuple[int, str]:
    return (BAND_ORDER.index(band) if band in BAND_ORDER else len(BAND_ORDER), band or "")


# -- overview ------------------------------------------------------------------------------


def overview(store: Store, *, movers: int = 6) -> dict[str, Any]:
    """Accounts per band, the week's biggest movers with their first driver, tasks opened
    this week, the score distribution (10-point bins per band), connections' last runs."""
    from hub.store.status import collect_status

    week_ago = (clock.now() - dt.timedelta(days=7)).isoformat()
    bands = {
        r["band"] or "unscored": r["n"]
        for r in _rows(
            store,
            "SELECT h.band, COUNT(*) AS n FROM accounts a LEFT JOIN health_scores h "
            "ON h.account_id = a.id GROUP BY h.band",
        )
    }
    mover_sql = (
        "SELECT a.id, a.name, a.domain, a.owner_name, h.score, h.band, h.trend_7d, h.drivers "
        "FROM health_scores h JOIN accounts a ON a.id = h.account_id "
        "WHERE h.trend_7d {} 0 ORDER BY h.trend_7d {}, a.name LIMIT ?"
    )
    down = _rows(store, mover_sql.format("<", "ASC"), [movers])
    up = _rows(store, mover_sql.format(">", "DESC"), [max(2, movers // 2)])
    for row in (*down, *up):
        drivers = decode_json(row.pop("drivers"), [])
        row["cause"] = drivers[0] if drivers else ""
    tasks = _rows(
        store,
        "SELECT playbook, COUNT(*) AS n FROM tasks WHERE created_at >= ? "
        "GROUP BY playbook ORDER BY n DESC, playbook",
        [week_ago],
    )
    histogram = _rows(
        store,
        "SELECT MIN(score / 10, 9) AS bin, band, COUNT(*) AS n FROM health_scores "
        "WHERE score IS NOT NULL GROUP BY bin, band",
    )
    status = collect_status(store)
    runs = sorted(
        status["streams"],
        key=lambda r: (r["status"] != "error", r["connection"] or "", r["stream"] or ""),
    )
    return {
        "bands": dict(sorted(bands.items(), key=lambda kv: band_sort_key(kv[0]))),
        "accounts": sum(bands.values()),
        "movers_down": down,
        "movers_up": up,
        "tasks_week": tasks,
        "tasks_week_total": sum(t["n"] for t in tasks),
        "open_tasks": store.db.execute(
            "SELECT COUNT(*) FROM tasks WHERE status IN ('open', 'pushing', 'pushed')"
        ).fetchone()[0],
        "histogram": histogram,
        "runs": runs,
        "steps": status["steps"],
    }


# -- accounts ------------------------------------------------------------------------------


@dataclass
class AccountQuery:
    """The filters, search, sort and page of the accounts list (and its exports)."""

    band: str = ""
    owner: str = ""
    segment: str = ""
    source: str = ""
    coverage: str = ""  # "" | full | partial | low
    q: str = ""
    sort: str = "score"
    desc: bool = False
    page: int = 1
    per_page: int = PAGE_SIZE

    @classmethod
    def from_params(cls, params: Any) -> AccountQuery:
        """Build from query parameters; anything malformed falls back to the default."""

        def text(name: str) -> str:
            return str(params.get(name) or "").strip()[:200]

        try:
            page = max(1, int(params.get("page") or 1))
        except ValueError:
            page = 1
        sort = text("sort")
        return cls(
            band=text("band"),
            owner=text("owner"),
            segment=text("segment"),
            source=text("source"),
            coverage=text("coverage") if text("coverage") in ("full", "partial", "low") else "",
            q=text("q"),
            sort=sort if sort in SORTS else "score",
            desc=text("dir") == "desc",
            page=page,
        )

    def toggle(self, sort: str) -> dict[str, str]:
        """Parameters for sorting by ``sort``: flips the direction when it is the current
        sort; MRR starts with the largest, the rest with the smallest."""
        if sort == self.sort:
            desc = not self.desc
        else:
            desc = sort in ("mrr",)
        return self.params(sort=sort, dir="desc" if desc else "", page="")

    def params(self, **changes: Any) -> dict[str, str]:
        """Query parameters for this view with ``changes`` applied (empty values left out)."""
        values = {
            "band": self.band,
            "owner": self.owner,
            "segment": self.segment,
            "source": self.source,
            "coverage": self.coverage,
            "q": self.q,
            "sort": self.sort,
            "dir": "desc" if self.desc else "",
            "page": str(self.page) if self.page > 1 else "",
        }
        values.update({k: "" if v is None else str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}


def _account_where(store: Store, q: AccountQuery) -> tuple[str, list[Any]]:
    where, args = [], []
    if q.band == "unscored":
        where.append("h.band IS NULL")
    elif q.band:
        where.append("h.band = ?")
        args.append(q.band)
    if q.owner:
        where.append("a.owner_id = ?")
        args.append(q.owner)
    if q.segment:
        where.append("h.segment = ?")
        args.append(q.segment)
    if q.source:
        where.append("json_extract(a.facts, '$.sources.\"' || ? || '\"') IS NOT NULL")
        args.append(q.source.replace('"', ""))
    if q.coverage:
        cov = _coverage_sql(store)
        where.append(
            {
                "full": f"{cov} >= 0.999",
                "partial": f"{cov} < 0.999 AND {cov} >= {LOW_COVERAGE}",
                "low": f"{cov} < {LOW_COVERAGE}",
            }[q.coverage]
        )
    if q.q:
        where.append("(a.name LIKE ? OR a.domain LIKE ?)")
        args += [f"%{q.q}%", f"%{q.q}%"]
    return (" WHERE " + " AND ".join(where)) if where else "", args


def accounts(store: Store, q: AccountQuery, *, everything: bool = False) -> dict[str, Any]:
    """One page of accounts (or, with ``everything``, every matching row) and the total."""
    where, args = _account_where(store, q)
    base = "FROM accounts a LEFT JOIN health_scores h ON h.account_id = a.id" + where
    total = store.db.execute(f"SELECT COUNT(*) {base}", args).fetchone()[0]
    direction = "DESC" if q.desc else "ASC"
    order = f"{SORTS[q.sort]} IS NULL, {SORTS[q.sort]} {direction}, a.name COLLATE NOCASE, a.id"
    limit = "" if everything else f" LIMIT {int(q.per_page)} OFFSET {(q.page - 1) * q.per_page}"
    rows = _rows(
        store,
        "SELECT a.id, a.name, a.domain, a.owner_id, a.owner_name, a.lifecycle_stage, a.mrr, "
        "a.plan, a.renewal_date, h.score, h.band, h.trend_7d, h.trend_30d, h.segment, "
        f"{_coverage_sql(store)} AS coverage, json_extract(a.facts, '$.sources') AS sources "
        f"{base} ORDER BY {order}{limit}",
        args,
    )
    for row in rows:
        row["sources"] = sorted(decode_json(row["sources"], {}))
        if row["coverage"] is not None:
            row["coverage"] = round(row["coverage"], 3)
    pages = max(1, -(-total // q.per_page))
    return {"rows": rows, "total": total, "pages": pages}


def account_choices(store: Store) -> dict[str, list[Any]]:
    """Values the accounts filters offer: bands, owners, segments, sources."""
    owners = _rows(
        store,
        "SELECT owner_id AS id, MAX(owner_name) AS name, COUNT(*) AS n FROM accounts "
        "WHERE owner_id IS NOT NULL AND owner_id != '' GROUP BY owner_id "
        "ORDER BY MAX(owner_name) COLLATE NOCASE",
    )
    bands = [
        r[0]
        for r in store.db.execute("SELECT DISTINCT band FROM health_scores")
        if r[0] is not None
    ]
    segments = [
        r[0]
        for r in store.db.execute(
            "SELECT DISTINCT segment FROM health_scores WHERE segment IS NOT NULL ORDER BY 1"
        )
    ]
    sources = [
        r[0]
        for r in store.db.execute(
            "SELECT DISTINCT source FROM account_links WHERE source IS NOT NULL"
        )
    ]
    return {
        "bands": sorted(bands, key=band_sort_key),
        "owners": owners,
        "segments": segments,
        "sources": sources,
    }


# -- one account ---------------------------------------------------------------------------


def account(store: Store, account_id: str) -> dict[str, Any] | None:
    """The account row (facts decoded), its health row (measures and drivers decoded)."""
    found = _rows(store, "SELECT * FROM accounts WHERE id = ?", [account_id])
    if not found:
        return None
    row = found[0]
    row["facts"] = decode_json(row["facts"], {})
    health = _rows(store, "SELECT * FROM health_scores WHERE account_id = ?", [account_id])
    if health:
        h = health[0]
        h["measures"] = decode_json(h["measures"], {})
        h["drivers"] = decode_json(h["drivers"], [])
        row["health"] = h
    else:
        row["health"] = None
    return row


def health_history(store: Store, account_id: str, days: int = 120) -> list[dict[str, Any]]:
    """The score on every day health ran in the last ``days`` days (history stores only
    the changes: ``health_queries.daily_history`` spreads them over the days)."""
    from hub.store import health_queries

    since = (clock.now().date() - dt.timedelta(days=days)).isoformat()
    return health_queries.daily_history(store, account_id, since)


def timeline(
    store: Store,
    account_id: str,
    *,
    types: list[str] | None = None,
    source: str = "",
    limit: int = 200,
) -> dict[str, Any]:
    """The account's events, newest first, filtered by type and source; with the types and
    sources it has (for the filters) and the count that matched."""
    where, args = ["account_id = ?"], [account_id]
    if types:
        where.append(f"type IN ({','.join('?' * len(types))})")
        args += types
    if source:
        where.append("source = ?")
        args.append(source)
    clause = " AND ".join(where)
    events = _rows(
        store,
        f"SELECT id, ts, source, type, summary, link, attrs FROM events WHERE {clause} "
        "ORDER BY ts DESC, id DESC LIMIT ?",
        [*args, limit],
    )
    facets = _rows(
        store,
        "SELECT source, type, COUNT(*) AS n FROM events WHERE account_id = ? "
        "GROUP BY source, type ORDER BY source, type",
        [account_id],
    )
    total = store.db.execute(f"SELECT COUNT(*) FROM events WHERE {clause}", args).fetchone()[0]
    return {"events": events, "facets": facets, "total": total}


def tasks(store: Store, account_id: str) -> dict[str, list[dict[str, Any]]]:
    rows = _rows(
        store,
        "SELECT id, playbook, reason, status, subject, body, priority, due_at, created_at, "
        "completed_at FROM tasks WHERE account_id = ? ORDER BY created_at DESC",
        [account_id],
    )
    done = ("completed", "cancelled", "reverted")
    return {
        "open": [r for r in rows if r["status"] not in done],
        "past": [r for r in rows if r["status"] in done],
    }


def links(store: Store, account_id: str) -> list[dict[str, Any]]:
    """Source records linked to the account and how each link was made."""
    return _rows(
        store,
        "SELECT l.entity, l.source, l.kind, l.source_id, l.method, l.detail, l.linked_at, e.name "
        "FROM account_links l LEFT JOIN entities e ON e.key = l.entity WHERE l.account_id = ? "
        "ORDER BY l.method = 'root' DESC, l.source, l.entity",
        [account_id],
    )


def mrr_history(store: Store, account_id: str, current: float | None) -> list[dict[str, Any]]:
    """The account's MRR over time: after each of its MRR movements (``hub.portfolio``), or,
    without them, walked back from today's MRR through events carrying an MRR ``delta``."""
    if store.db["mrr_movements"].exists():
        moves = _rows(
            store,
            "SELECT day AS ts, mrr_after / 100.0 AS mrr FROM mrr_movements "
            "WHERE account_id = ? ORDER BY day",
            [account_id],
        )
        if moves:
            return [
                {"ts": moves[0]["ts"], "mrr": 0.0},
                *moves,
                {"ts": clock.iso(), "mrr": moves[-1]["mrr"]},
            ]
    changes = _rows(
        store,
        "SELECT ts, CAST(json_extract(attrs, '$.delta') AS REAL) AS delta FROM events "
        "WHERE account_id = ? AND json_extract(attrs, '$.delta') IS NOT NULL ORDER BY ts",
        [account_id],
    )
    if not changes:
        return []
    level = float(current or 0.0)
    points = [{"ts": clock.iso(), "mrr": round(level, 2)}]
    for change in reversed(changes):
        points.append({"ts": change["ts"], "mrr": round(level, 2)})
        level -= change["delta"] or 0.0
    points.append({"ts": changes[0]["ts"], "mrr": round(max(level, 0.0), 2), "before": True})
    return list(reversed(points))
