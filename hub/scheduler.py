"""Always-on operation: ``hub run`` keeps every connection on its schedule (APScheduler 3.x).

One job per connection from its ``schedule`` (interval or cron); each job syncs its
connection and then runs the downstream steps (map → health → playbooks → push). Jobs run
one at a time (a single worker thread) with ``max_instances=1``, coalescing and a misfire
grace time, so a slow run never piles up. A database lock (``hub.lock``) stops a second
``hub run`` on the same database. SIGINT/SIGTERM finish the page in flight, commit it, and
exit cleanly; the next start resumes from there.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from hub import clock
from hub.config import Config
from hub.lock import HEARTBEAT_SECONDS, DatabaseLock, database_lock
from hub.pipeline import PipelineResult, run_pipeline
from hub.schedule import parse_schedule
from hub.store import Store

log = logging.getLogger("hub.scheduler")

DEFAULT_SCHEDULE = "every 30m"


def trigger_for(schedule: str | None, timezone: str = "UTC") -> Any:
    """An APScheduler trigger; cron lines run in ``timezone`` (``[scheduler] timezone``)."""
    parsed = parse_schedule(schedule or DEFAULT_SCHEDULE)
    if parsed.interval_s:
        return IntervalTrigger(seconds=parsed.interval_s, timezone=dt.timezone.utc)
    return CronTrigger.from_crontab(parsed.cron, timezone=ZoneInfo(timezone))


class HubScheduler:
    """Runs the pipeline per connection on its schedule until ``stop()``."""

    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        transport: httpx.BaseTransport | None = None,
        dry_run: bool = False,
        misfire_grace_s: int | None = None,
        on_result: Callable[[str, PipelineResult], None] | None = None,
    ):
        self.store = store
        self.config = config
        self.transport = transport
        self.dry_run = dry_run or config.scheduler.dry_run
        misfire_grace_s = misfire_grace_s or config.scheduler.misfire_grace_seconds
        self.stop_event = threading.Event()
        self.on_result = on_result
        # The pipeline runs on the worker thread with ``store``; the lock heartbeat and the
        # published schedule are written from other threads, so they get a connection of
        # their own (one sqlite3 connection must not carry two threads' transactions).
        self._side = Store(store.path) if store.path != ":memory:" else store
        self.lock = DatabaseLock(self._side, purpose="hub run", on_lost=self.stop_event.set)
        self._run_lock = threading.Lock()
        self._triggered: set[str] = set()  # connections moved forward by a webhook delivery
        self._publish_lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            # Pipeline jobs one at a time; the lock heartbeat on its own thread so a long
            # sync never lets the lock look stale.
            executors={
                "default": ThreadPoolExecutor(max_workers=1),
                "heartbeat": ThreadPoolExecutor(max_workers=1),
            },
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": misfire_grace_s,
            },
            timezone=dt.timezone.utc,
        )

    def run_connection(self, name: str) -> PipelineResult:
        from hub.store import webhooks as inbox

        with self._run_lock:
            if self.stop_event.is_set():
                # A job the executor had queued before the shutdown: the store may be closed.
                return PipelineResult()
            # Webhook deliveries stored by ``hub serve`` before this run are covered by it
            # (not those the API does not show yet: ``settle_seconds``).
            from hub.web.worker import ready

            deliveries = ready(self.store, self.config).get(name, [])
            result = run_pipeline(
                self.store,
                self.config,
                connections=[name],
                transport=self.transport,
                dry_run=self.dry_run,
                stop=self.stop_event,
            )
            if deliveries:
                failed = name in result.failed_connections or "sync" in result.errors
                inbox.finish(
                    self.store,
                    deliveries,
                    status="pending" if failed else "processed",
                    run_id=self.store.db.execute(
                        "SELECT MAX(id) FROM _hub_runs WHERE kind = 'pipeline'"
                    ).fetchone()[0],
                    error=result.errors.get("sync") if failed else None,
                )
            self._triggered.discard(name)
            self._publish()
            if self.on_result:
                self.on_result(name, result)
            return result

    def _heartbeat(self) -> None:
        with self._publish_lock:
            if not self.lock.heartbeat():
                log.error("another process took the database lock over: hub run stops")

    def run_deliveries(self, name: str) -> None:
        """Webhook deliveries of ``name``: a pipeline run of only the streams they touch
        (``hub.web.worker.process``), on the pipeline executor, under this process's lock."""
        from hub.web.worker import process, ready

        with self._run_lock:
            try:
                if self.stop_event.is_set():
                    return
                ids = ready(self.store, self.config).get(name, [])
                if ids:
                    process(
                        self.store,
                        self.config,
                        name,
                        ids,
                        transport=self.transport,
                        dry_run=self.dry_run,
                        stop=self.stop_event,
                    )
            finally:
                self._triggered.discard(name)

    def _inbox(self) -> None:
        """Webhook deliveries stored by ``hub serve`` (which cannot run while this process
        holds the database lock) run now, narrowed to the streams they touch, instead of
        waiting for the connection's next scheduled run."""
        from hub.web.worker import ready

        if self.stop_event.is_set():
            return
        with self._publish_lock:
            waiting = ready(self._side, self.config)
        for name in waiting:
            if name in self.config.connections and name not in self._triggered:
                self._triggered.add(name)
                self.scheduler.add_job(
                    self.run_deliveries,
                    args=[name],
                    id=f"webhooks:{name}",
                    name=f"webhook deliveries {name}",
                    replace_existing=True,
                )

    def _publish(self) -> None:
        if self.stop_event.is_set():
            return  # the scheduler is shutting down; its job list is not ours to read now
        rows = []
        for job in self.scheduler.get_jobs():
            if job.id.startswith("sync:") and job.next_run_time:
                name = job.id.split(":", 1)[1]
                rows.append(
                    (
                        name,
                        clock.iso(job.next_run_time),
                        self.config.connections[name].schedule or DEFAULT_SCHEDULE,
                        clock.iso(),
                    )
                )
        with self._publish_lock, self._side.db.atomic():
            self._side.db.execute("DELETE FROM _hub_schedule")
            self._side.db.conn.executemany(
                "INSERT INTO _hub_schedule (connection, next_run, schedule, updated_at) VALUES (?,?,?,?)",
                rows,
            )

    def start(self, *, run_now: bool | None = None) -> None:
        if run_now is None:
            run_now = self.config.scheduler.run_on_start
        self.lock.acquire()
        # Every page the pipeline writes checks, in its own transaction, that this process
        # still holds the lock (a takeover while we were suspended stops us before writing).
        self.store.fence = self.lock.check
        names = [n for n, c in self.config.connections.items() if c.enabled]
        now = dt.datetime.now(dt.timezone.utc)
        for i, name in enumerate(names):
            conn = self.config.connections[name]
            first = now + dt.timedelta(seconds=i) if run_now else None
            self.scheduler.add_job(
                self.run_connection,
                trigger_for(conn.schedule, self.config.scheduler.timezone),
                args=[name],
                id=f"sync:{name}",
                name=f"sync {name}",
                next_run_time=first,
            )
        self.scheduler.add_job(
            self._heartbeat,
            IntervalTrigger(seconds=HEARTBEAT_SECONDS),
            id="heartbeat",
            executor="heartbeat",
        )
        self.scheduler.add_job(
            self._inbox, IntervalTrigger(seconds=2), id="webhooks", executor="heartbeat"
        )
        self.scheduler.start()
        self._publish()
        log.info("scheduler started with %d connection jobs", len(names))

    def stop(self) -> None:
        """Stop: the run in flight finishes its current page, commits, and returns."""
        self.stop_event.set()
        try:
            # Not shutdown(wait=True): it holds the scheduler's locks while joining the worker,
            # which may itself be asking the scheduler for its jobs.
            self.scheduler.shutdown(wait=False)
            with self._run_lock:  # the run in flight has committed its page and returned
                pass
        finally:
            with self._publish_lock:
                self.lock.release()
            self.store.fence = None

    def wait(self) -> None:
        """Block until SIGINT/SIGTERM, then stop cleanly."""

        def handle(signum, frame):
            log.warning("signal %s: finishing the current page and stopping", signum)
            self.stop_event.set()

        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not self.stop_event.wait(1.0):
                pass
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self.stop()


def run_once(
    store: Store,
    config: Config,
    *,
    transport: httpx.BaseTransport | None = None,
    dry_run: bool = False,
    **kwargs: Any,
) -> PipelineResult:
    """``hub run --once``: the whole pipeline for every enabled connection, under the lock."""
    stop = kwargs.pop("stop", None) or threading.Event()
    with database_lock(store, "hub run --once", stop=stop):
        return run_pipeline(
            store, config, transport=transport, dry_run=dry_run, stop=stop, **kwargs
        )
