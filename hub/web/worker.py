"""The webhook worker: drains the inbox by running incremental syncs, debounced.

One thread in the ``hub serve`` process. When a delivery arrives (or at start, for what a
killed process left pending, or every ``poll`` seconds) it waits ``debounce`` seconds so a
burst makes one run, then for each connection with pending deliveries takes the database
lock (the one ``hub run`` holds while it works: the two never run at once; a busy lock
leaves the deliveries pending for the next round) and runs the pipeline for that connection:
an incremental sync of only the streams the deliveries' event types touch (the connector's
verifier says which: a failed payment syncs Stripe's invoices, charges and events, not its
customers), then map → health → playbooks → push, each incremental, so only the accounts
the new records touched are rescored and written back. The deliveries it covered are marked
processed with the run's id. A connector whose API shows a change only after a while
(Zendesk's exports hide the last minute: ``settle_seconds``) has its younger deliveries
left pending until then, so their sync does not come too early and see nothing.

While ``hub run`` is up it holds that lock for its whole life; then its scheduler looks at
the inbox every two seconds and runs ``process`` itself for what is ready
(``HubScheduler.run_deliveries``: the same narrowed run), and this worker only finds the
lock busy and waits.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from hub.errors import LockedError

log = logging.getLogger("hub.web.worker")


def ready(store: Any, config: Any) -> dict[str, list[int]]:
    """Pending deliveries per connection that may be processed now: all of them, except
    those younger than their connector's ``settle_seconds`` (the API would not show their
    change yet). ``hub run``'s scheduler asks the same when it picks deliveries up."""
    from hub.store import webhooks as inbox

    out: dict[str, list[int]] = {}
    for connection, ids in inbox.pending(store).items():
        settled = _settled(store, config, connection, ids)
        if settled:
            out[connection] = settled
    return out


def _settled(store: Any, config: Any, connection: str, ids: list[int]) -> list[int]:
    import datetime as dt

    from hub import clock
    from hub.store import webhooks as inbox
    from hub.web.webhooks import verifier_for

    settle = float(getattr(verifier_for(config, connection), "settle_seconds", 0) or 0)
    if settle <= 0:
        return ids
    cutoff = clock.iso(clock.now() - dt.timedelta(seconds=settle))
    return inbox.received_by(store, ids, cutoff)


def process(
    store: Any,
    config: Any,
    connection: str,
    ids: list[int],
    *,
    transport: Any = None,
    dry_run: bool = False,
    stop: Any = None,
) -> tuple[bool, list[str] | None]:
    """Run the pipeline for these deliveries of ``connection`` (the streams they touch, then
    map → health → playbooks → push) and close them: processed, or left pending with the
    error when the sync failed. The caller holds the database lock. Returns (ok, streams
    synced, None = all)."""
    from hub.pipeline import run_pipeline
    from hub.store import webhooks as inbox

    streams = _streams(store, config, connection, ids)
    result = run_pipeline(
        store,
        config,
        connections=[connection],
        streams=streams,
        transport=transport,
        dry_run=dry_run,
        stop=stop,
    )
    run_id = inbox.last_pipeline_run(store)
    if connection in result.failed_connections or "sync" in result.errors:
        error = result.errors.get("sync") or "the sync failed (see hub status)"
        inbox.finish(store, ids, status="pending", run_id=run_id, error=error)
        return False, streams
    inbox.finish(store, ids, status="processed", run_id=run_id)
    return True, streams


def _streams(store: Any, config: Any, connection: str, ids: list[int]) -> list[str] | None:
    """The streams the deliveries touch, per the connector's verifier (None = all)."""
    from hub.store import webhooks as inbox
    from hub.web.webhooks import verifier_for

    pick = getattr(verifier_for(config, connection), "streams", None)
    if pick is None:
        return None
    try:
        return pick(inbox.pending_types(store, connection, ids))
    except Exception as exc:  # noqa: BLE001 - a plugin's bug costs a wider sync, not a stall
        log.warning("webhook worker: %s: its streams() failed (%s); syncing all", connection, exc)
        return None


class WebhookWorker:
    """Start with ``start()``; ``notify()`` on each stored delivery; ``stop()`` at shutdown."""

    def __init__(
        self,
        db_path: str,
        config: Any,
        *,
        transport: Any = None,
        debounce: float = 3.0,
        poll: float = 30.0,
        retry: float = 5.0,
    ):
        self.db_path = db_path
        self.config = config
        self.transport = transport
        self.debounce = debounce
        self.poll = poll
        self.retry = retry
        self.runs = 0
        self.last_streams: dict[str, list[str] | None] = {}  # per connection, None = all
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._wake.set()  # drain what a previous process left pending
        self._thread = threading.Thread(target=self._loop, name="hub-webhook-worker", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        self._idle.clear()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Block until the inbox was found empty after the last notify (tests, benchmarks)."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        wait = self.poll
        while not self._stop.is_set():
            self._wake.wait(wait)
            if self._stop.is_set():
                break
            if self._wake.is_set() and self.debounce:
                # Let the burst finish arriving: everything stored by then rides this run.
                self._stop.wait(self.debounce)
            self._wake.clear()
            try:
                left = self.drain()
            except Exception as exc:  # noqa: BLE001 - the worker must outlive one bad round
                log.warning("webhook worker: %s", exc)
                left = True
            if not left:
                self._idle.set()
            wait = self.retry if left else self.poll

    def drain(self) -> bool:
        """Process every pending delivery once; True if some are still pending."""
        from hub.lock import database_lock
        from hub.store import Store
        from hub.store import webhooks as inbox

        store = Store(self.db_path)
        try:
            waiting = inbox.pending(store)
            left = False
            for connection, ids in waiting.items():
                if self.config is None or connection not in self.config.connections:
                    inbox.finish(store, ids, status="ignored", run_id=None, error="not configured")
                    continue
                settled = _settled(store, self.config, connection, ids)
                if len(settled) < len(ids):
                    left = True  # the API does not show those changes yet: next round
                if not settled:
                    continue
                ids = settled
                try:
                    with database_lock(store, "webhook deliveries"):
                        ok, streams = process(
                            store, self.config, connection, ids, transport=self.transport
                        )
                        self.last_streams[connection] = streams
                        self.runs += 1
                        left = left or not ok
                except LockedError:
                    left = True  # hub run is working; it will be our turn soon
            return left or bool(inbox.pending(store))
        finally:
            store.close()
