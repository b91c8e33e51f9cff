"""The webhook inbox: deliveries stored before they are answered, drained by the worker.

Every write commits before it returns, so a delivery the receiver answered with 2xx is on
disk even if the process is killed the next instant. Deduplication is the unique
``(connection, event_id)`` index: the same event delivered again is counted, not stored.
"""

from __future__ import annotations

from typing import Any

from hub import clock
from hub.store import Store

INBOX = "_hub_webhook_inbox"
COUNTERS = "_hub_webhook_counters"


def bump(store: Store, connection: str, name: str, by: int = 1) -> None:
    """Add to a per-connection counter (received, duplicate, refused, unknown, rejected...)."""
    with store.db.atomic():
        store.db.execute(
            f"INSERT INTO {COUNTERS} (connection, name, value, last_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(connection, name) DO UPDATE SET value = value + excluded.value, "
            "last_at = excluded.last_at",
            [connection, name, by, clock.iso()],
        )


def store_deliveries(
    store: Store, connection: str, deliveries: list[tuple[str, str, str]], body: str
) -> tuple[int, int]:
    """Insert ``(event_id, event_type, status)`` rows; returns (new, duplicates). One
    transaction with the counters, committed before the caller answers."""
    new = 0
    now = clock.iso()
    with store.db.atomic():
        for event_id, event_type, status in deliveries:
            cursor = store.db.execute(
                f"INSERT OR IGNORE INTO {INBOX} (connection, event_id, event_type, status, "
                "received_at, attempts, body) VALUES (?, ?, ?, ?, ?, 0, ?)",
                [connection, event_id, event_type, status, now, body],
            )
            new += cursor.rowcount
        duplicates = len(deliveries) - new
        for name, count in (("received", new), ("duplicate", duplicates)):
            if count:
                store.db.execute(
                    f"INSERT INTO {COUNTERS} (connection, name, value, last_at) VALUES (?,?,?,?) "
                    "ON CONFLICT(connection, name) DO UPDATE SET value = value + excluded.value, "
                    "last_at = excluded.last_at",
                    [connection, name, count, now],
                )
    return new, duplicates


def pending(store: Store) -> dict[str, list[int]]:
    """Ids of deliveries waiting to be processed, per connection, oldest first."""
    out: dict[str, list[int]] = {}
    for row_id, connection in store.db.execute(
        f"SELECT id, connection FROM {INBOX} WHERE status = 'pending' ORDER BY id"
    ):
        out.setdefault(connection, []).append(row_id)
    return out


def received_by(store: Store, ids: list[int], cutoff: str) -> list[int]:
    """Those of ``ids`` received at or before ``cutoff`` (ISO text, as ``clock.iso``)."""
    out: list[int] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out.extend(
            row_id
            for (row_id,) in store.db.execute(
                f"SELECT id FROM {INBOX} WHERE id IN ({marks}) AND received_at <= ? ORDER BY id",
                [*chunk, cutoff],
            )
        )
    return out


def pending_types(store: Store, connection: str, ids: list[int]) -> list[str]:
    """The distinct event types of these deliveries (what the worker syncs for)."""
    out: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out.update(
            kind
            for (kind,) in store.db.execute(
                f"SELECT DISTINCT event_type FROM {INBOX} WHERE connection = ? AND id IN ({marks})",
                [connection, *chunk],
            )
        )
    return sorted(out)


def finish(
    store: Store, ids: list[int], *, status: str, run_id: int | None, error: str | None = None
) -> None:
    """Close deliveries as processed (or leave them pending with the error, to retry)."""
    now = clock.iso()
    with store.db.atomic():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            store.db.execute(
                f"UPDATE {INBOX} SET status = ?, processed_at = ?, run_id = ?, error = ?, "
                f"attempts = attempts + 1 WHERE id IN ({marks})",
                [status, now, run_id, error, *chunk],
            )


def stats(store: Store) -> list[dict[str, Any]]:
    """Per connection: deliveries by status, counters, and the last delivery."""
    if not store.db[INBOX].exists():
        return []
    out: dict[str, dict[str, Any]] = {}
    for connection, status, count, last in store.db.execute(
        f"SELECT connection, status, COUNT(*), MAX(received_at) FROM {INBOX} "
        "GROUP BY connection, status"
    ):
        row = out.setdefault(connection, {"connection": connection, "last_received": None})
        row[status] = count
        row["last_received"] = max(filter(None, [row["last_received"], last]), default=None)
    for connection, name, value, last in store.db.execute(
        f"SELECT connection, name, value, last_at FROM {COUNTERS}"
    ):
        row = out.setdefault(connection, {"connection": connection, "last_received": None})
        row[f"{name}_total"] = value
        if name == "refused":
            row["last_refused"] = last
    keys = ("pending", "processed", "ignored", "rejected", "error")
    counts = ("received", "duplicate", "refused", "too_large", "unknown")
    for row in out.values():
        for key in keys:
            row.setdefault(key, 0)
        for key in counts:
            row.setdefault(f"{key}_total", 0)
        row.setdefault("last_refused", None)
        last = store.db.execute(
            f"SELECT event_type, status, received_at, error FROM {INBOX} WHERE connection = ? "
            "ORDER BY id DESC LIMIT 1",
            [row["connection"]],
        ).fetchone()
        row["last"] = (
            dict(zip(("event_type", "status", "received_at", "error"), last)) if last else None
        )
    return sorted(out.values(), key=lambda r: r["connection"])


def last_pipeline_run(store: Store) -> int | None:
    """The id of the newest pipeline run (the one a webhook-triggered run just recorded)."""
    return store.db.execute("SELECT MAX(id) FROM _hub_runs WHERE kind = 'pipeline'").fetchone()[0]


def last_run_id(store: Store) -> int:
    """The newest run's id (0 without runs): a mark to ask ``syncs_after`` from."""
    return store.db.execute("SELECT COALESCE(MAX(id), 0) FROM _hub_runs").fetchone()[0]


def syncs_after(store: Store, run_id: int) -> list[tuple[str, str]]:
    """``(connection, stream)`` of each sync run recorded after ``run_id``, in order."""
    return [
        (connection, stream)
        for connection, stream in store.db.execute(
            "SELECT connection, stream FROM _hub_runs WHERE kind = 'sync' AND id > ? ORDER BY id",
            [run_id],
        )
    ]
