"""Read model of `hub status`: last run per connection and stream, per pipeline step."""

from __future__ import annotations

from typing import Any

from hub.store import Store

# Run kinds whose latest failure makes `hub status` fail (sync is judged per stream).
PIPELINE_KINDS = ("map", "health", "playbooks", "push", "pipeline")


def collect_status(store: Store, config: Any = None) -> dict[str, Any]:
    """Per (connection, stream): last status, last success, last error and its counters.

    ``failing`` (``hub status`` exits 1, the container turns unhealthy) is true when the
    latest run of any configured connection's stream failed, or the latest run of a pipeline
    step (map, health, playbooks, push, or the pipeline itself) ended ``error`` or ``partial``.
    Manual operations (``revert``, ``uninstall``) do not count: they are reported, not alerted.
    """
    db = store.db
    rows = list(
        db.query(
            """
            WITH latest AS (
              SELECT connection, stream, MAX(id) AS id FROM _hub_runs
              WHERE kind = 'sync' AND status != 'running' GROUP BY connection, stream
            )
            SELECT r.connection, r.stream, r.status, r.records, r.requests, r.duration_s,
                   r.finished_at, r.error, r.note,
                   (SELECT MAX(finished_at) FROM _hub_runs s WHERE s.kind='sync' AND s.status='ok'
                      AND s.connection = r.connection AND s.stream IS r.stream) AS last_success,
                   (SELECT error FROM _hub_runs e WHERE e.kind='sync' AND e.status='error'
                      AND e.connection = r.connection AND e.stream IS r.stream ORDER BY e.id DESC LIMIT 1) AS last_error
            FROM _hub_runs r JOIN latest USING (id) ORDER BY r.connection, r.stream
            """
        )
    )
    # A connection-level failure (stream NULL) is superseded by later stream runs.
    latest_stream_ids: dict[str, int] = {}
    for conn, max_id in db.execute(
        "SELECT connection, MAX(id) FROM _hub_runs WHERE kind='sync' GROUP BY connection"
    ):
        latest_stream_ids[conn] = max_id
    next_runs = _next_runs(store)
    out = []
    for row in rows:
        if row["stream"] is None:
            newest = db.execute(
                "SELECT MAX(id) FROM _hub_runs WHERE kind='sync' AND connection=? AND stream IS NOT NULL",
                [row["connection"]],
            ).fetchone()[0]
            if (
                newest
                and newest
                > db.execute(
                    "SELECT MAX(id) FROM _hub_runs WHERE kind='sync' AND connection=? AND stream IS NULL",
                    [row["connection"]],
                ).fetchone()[0]
            ):
                continue
        row["next_run"] = next_runs.get(row["connection"])
        out.append(row)
    configured = set(config.connections) if config is not None else None
    failing = any(
        r["status"] == "error" and (configured is None or r["connection"] in configured)
        for r in out
    )
    steps = list(
        db.query(
            """
            SELECT kind, status, finished_at, records, duration_s, error, note FROM _hub_runs
            WHERE id IN (SELECT MAX(id) FROM _hub_runs WHERE kind != 'sync' GROUP BY kind)
            ORDER BY kind
            """
        )
    )
    for r in steps:
        r["failing"] = r["kind"] in PIPELINE_KINDS and r["status"] in ("error", "partial")
    failing = failing or any(r["failing"] for r in steps)
    from hub.store.webhooks import stats as webhook_stats

    return {
        "streams": out,
        "steps": steps,
        "failing": failing,
        "webhooks": webhook_stats(store),  # deliveries per connection (hub serve)
    }


def _next_runs(store: Store) -> dict[str, str]:
    """Next scheduled time per connection, as published by a running ``hub run``."""
    if not store.db["_hub_schedule"].exists():
        return {}
    return {r["connection"]: r["next_run"] for r in store.db["_hub_schedule"].rows}
