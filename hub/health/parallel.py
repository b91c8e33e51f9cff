"""Full passes over every account, split between processes when there are many.

The per-account Python work is what takes the time, and one process uses one core, so a full
run over many accounts splits the account-id range between this process and worker processes
(``[health] workers``; 0 = two when there are at least ``PARALLEL_MIN_ACCOUNTS`` accounts and
two CPUs). Each process reads its own share of the aggregation and writes its own rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import os
import queue
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from hub import clock
from hub.errors import HubError
from hub.health.engine import Writer, run_pass
from hub.health.settings import HealthSettings
from hub.store import Store

# Below this many accounts one process is faster than starting another.
PARALLEL_MIN_ACCOUNTS = 20_000


def _worker_count(store: Store, settings: HealthSettings) -> int:
    wanted = settings.section.workers
    if store.path == ":memory:" or wanted == 1:
        return 1
    if wanted:
        return wanted
    if (os.cpu_count() or 1) < 2:
        return 1
    accounts = store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
    return 2 if accounts >= PARALLEL_MIN_ACCOUNTS else 1


def full_pass(
    store: Store,
    settings: HealthSettings,
    as_of: dt.datetime,
    *,
    scores: bool,
    history: bool,
    historical: bool = False,
    with_trend: bool = True,
) -> tuple[int, dict[str, int]]:
    """Score every account and write the rows; returns (accounts, count per band).

    With many accounts the id range is split between this process and worker processes
    (``[health] workers``; 0 = two when there are at least 20,000 accounts and two CPUs):
    the per-account Python work is what takes the time, and one process uses one core.
    Each process reads its own share of the aggregation and writes its own rows.
    """
    computed_at = clock.iso()
    workers = _worker_count(store, settings)
    with _big_cache(store):
        return _split_pass(
            store, settings, as_of, workers, computed_at, scores, history, historical, with_trend
        )


@contextlib.contextmanager
def _big_cache(store: Store, kib: int = 32768) -> Iterator[None]:
    """A larger page cache while a full run writes every account's rows (fewer page reads
    and writes on the way), restored afterwards."""
    db = store.db
    before = db.execute("PRAGMA cache_size").fetchone()[0]
    db.execute(f"PRAGMA cache_size = -{kib}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA cache_size = {int(before)}")


def _split_pass(
    store: Store,
    settings: HealthSettings,
    as_of: dt.datetime,
    workers: int,
    computed_at: str,
    scores: bool,
    history: bool,
    historical: bool,
    with_trend: bool,
) -> tuple[int, dict[str, int]]:
    if workers <= 1:
        writer = Writer(store, as_of, scores=scores, history=history, computed_at=computed_at)
        run_pass(
            store, settings, as_of, None, sink=writer, historical=historical, with_trend=with_trend
        )
        writer.flush()
        return writer.count, dict(writer.bands)
    total = store.db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
    cuts: list[str | None] = [None]
    for k in range(1, workers):
        row = store.db.execute(
            "SELECT id FROM accounts ORDER BY id LIMIT 1 OFFSET ?", [total * k // workers]
        ).fetchone()
        if row is not None and row[0] not in cuts:
            cuts.append(row[0])
    cuts.append(None)
    ranges = list(zip(cuts[:-1], cuts[1:]))
    from hub.plugins import _plugin_dists

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    job = (
        store.path,
        settings.raw,
        settings.path,
        clock.iso(as_of),
        scores,
        history,
        historical,
        with_trend,
        computed_at,
        ",".join(sorted(_plugin_dists)),
    )
    procs = [
        context.Process(target=_worker, args=(*job, bounds, results), daemon=True)
        for bounds in ranges[1:]
    ]
    for proc in procs:
        proc.start()
    try:
        writer = Writer(store, as_of, scores=scores, history=history, computed_at=computed_at)
        run_pass(
            store,
            settings,
            as_of,
            None,
            sink=writer,
            historical=historical,
            with_trend=with_trend,
            bounds=ranges[0],
        )
        writer.flush()
        count, bands = writer.count, dict(writer.bands)
        pending = len(procs)
        while pending:
            try:
                item = results.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and results.empty():
                    raise HubError(
                        "a health worker process died without a result",
                        hint="run again with [health] workers = 1 to see the error",
                    ) from None
                continue
            pending -= 1
            if item[0] == "error":
                raise HubError(f"a health worker process failed: {item[1]}")
            count += item[1]
            for band, n in item[2].items():
                bands[band] = bands.get(band, 0) + n
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
    return count, bands


def _worker(
    path: str,
    raw: dict[str, Any],
    config_path: str | None,
    as_of_iso: str,
    scores: bool,
    history: bool,
    historical: bool,
    with_trend: bool,
    computed_at: str,
    plugins: str,
    bounds: tuple[str | None, str | None],
    results: Any,
) -> None:
    """A worker process of ``_full_pass``: scores the accounts within ``bounds``."""
    try:
        # The same plugins as the parent (which skips entry points under tests).
        os.environ["HUB_LOAD_PLUGINS"] = plugins
        settings = HealthSettings(SimpleNamespace(health=raw, path=config_path))
        as_of = clock.parse(as_of_iso)
        assert as_of is not None
        store = Store(path, migrate=False)
        store.db.execute("PRAGMA cache_size = -32768")
        try:
            writer = Writer(store, as_of, scores=scores, history=history, computed_at=computed_at)
            run_pass(
                store,
                settings,
                as_of,
                None,
                sink=writer,
                historical=historical,
                with_trend=with_trend,
                bounds=bounds,
            )
            writer.flush()
        finally:
            store.close()
        results.put(("ok", writer.count, dict(writer.bands)))
    except BaseException as exc:  # reported to the parent, which raises it
        results.put(("error", f"{type(exc).__name__}: {exc}"))


__all__ = ["PARALLEL_MIN_ACCOUNTS", "full_pass"]
