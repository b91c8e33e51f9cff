"""One writer per database: the lock every command that writes takes.

The lock is a row in ``_hub_lock`` (name ``writer``) with the holder's pid, the process's
start time, host, purpose (``hub sync``, ``hub run``…) and a heartbeat. Readers (``hub
status``, ``hub accounts``…) never take it and never wait. Rules:

- A live process on the same host is never taken over, however old its heartbeat (a laptop
  suspend or SIGSTOP stops heartbeats, not the process); the process start time tells a
  live holder from a new process that reused its pid.
- A holder on another host is taken over only once its heartbeat is older than
  ``stale_after`` seconds.
- A holder that finds at its heartbeat (or before a write, ``check()``) that the row no
  longer names it has lost the lock: it stops (``on_lost``) and writes nothing more;
  ``Store`` checks the fence inside each page's transaction.
- Whoever acquires the lock marks runs left ``running`` by a killed process as
  ``interrupted``: with the lock held, nobody else can be running them.

``database_lock(store, "hub sync")`` is the context manager commands use; it is re-entrant
within one process (``hub run --once`` → pipeline → push takes it once).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hub import clock
from hub.errors import LockedError
from hub.store import Store

log = logging.getLogger("hub.lock")

WRITER = "writer"
HEARTBEAT_SECONDS = float(os.environ.get("HUB_LOCK_HEARTBEAT", "30"))
STALE_AFTER_SECONDS = float(os.environ.get("HUB_LOCK_STALE_AFTER", "300"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start(pid: int) -> str:
    """The kernel's start time of ``pid`` (Linux), "" where unknown: with the pid it
    identifies one process even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[19]  # field 22 of stat(5); two fields were before the ")"
    except (OSError, IndexError):
        return ""


def _holder_alive(pid: int, started: str | None) -> bool:
    if not _alive(pid):
        return False
    current = process_start(pid)
    return not (started and current and current != started)


class DatabaseLock:
    """``with DatabaseLock(store): ...`` holds the writer lock or raises ``LockedError``."""

    def __init__(
        self,
        store: Store,
        name: str = WRITER,
        *,
        purpose: str = "hub",
        stale_after: float = STALE_AFTER_SECONDS,
        on_lost: Callable[[], None] | None = None,
    ):
        self.store = store
        self.name = name
        self.purpose = purpose
        self.stale_after = stale_after
        self.on_lost = on_lost
        self.pid = os.getpid()
        self.started = process_start(self.pid)
        self.host = socket.gethostname()
        self.held = False
        self.lost = False

    def _holder(self) -> tuple | None:
        return self.store.db.execute(
            "SELECT pid, host, acquired_at, heartbeat_at, purpose, proc_start FROM _hub_lock "
            "WHERE name = ?",
            [self.name],
        ).fetchone()

    def acquire(self) -> None:
        db = self.store.db
        now = dt.datetime.now(dt.timezone.utc)
        with db.atomic():
            row = self._holder()
            if row is not None:
                pid, host, acquired_at, heartbeat_at, purpose, started = row
                mine = pid == self.pid and host == self.host
                if not mine:
                    if host == self.host:
                        alive = _holder_alive(pid, started)
                    else:
                        beat = clock.parse(heartbeat_at)
                        alive = beat is not None and (
                            (now - beat).total_seconds() < self.stale_after
                        )
                    if alive:
                        raise LockedError(
                            f"another hub process ({purpose or 'hub'}, pid {pid} on {host}, "
                            f"since {(acquired_at or '')[:19]}Z) is writing to this database",
                            hint="wait for it to finish or stop it; readers such as "
                            "'hub status' work meanwhile",
                        )
                    log.warning(
                        "taking over the database lock of %s (pid %s on %s): it is gone",
                        purpose or "hub",
                        pid,
                        host,
                    )
            stamp = clock.iso(now)
            db.execute(
                "INSERT INTO _hub_lock (name, owner, pid, host, acquired_at, heartbeat_at, "
                "purpose, proc_start) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
                "owner=excluded.owner, pid=excluded.pid, host=excluded.host, "
                "acquired_at=excluded.acquired_at, heartbeat_at=excluded.heartbeat_at, "
                "purpose=excluded.purpose, proc_start=excluded.proc_start",
                [
                    self.name,
                    f"{self.host}:{self.pid}",
                    self.pid,
                    self.host,
                    stamp,
                    stamp,
                    self.purpose,
                    self.started,
                ],
            )
            # Nobody else can be running anything now: runs still marked running were
            # left by a process that was killed.
            db.execute(
                "UPDATE _hub_runs SET status = 'interrupted', finished_at = ?, "
                "error = COALESCE(error, 'the process stopped before the run finished "
                "(killed or crashed); the next run resumes from the last committed page') "
                "WHERE status = 'running'",
                [stamp],
            )
        self.held = True
        self.lost = False
        self.store.fence = self.check

    def check(self, store: Store | None = None) -> None:
        """Raise ``LockedError`` unless the lock row still names this holder (call inside
        the transaction that is about to write, on that transaction's ``store``)."""
        if not self.held:
            return
        row = (
            (store or self.store)
            .db.execute("SELECT pid, host FROM _hub_lock WHERE name = ?", [self.name])
            .fetchone()
        )
        if row is None or row[0] != self.pid or row[1] != self.host:
            self._lose()
            raise LockedError(
                "this process lost the database lock to another hub process; stopping "
                "before writing",
                hint="see 'hub status'; only one process may write at a time",
            )

    def _lose(self) -> None:
        if not self.lost:
            self.lost = True
            log.error("the database lock was taken over by another process: stopping")
            if self.on_lost:
                self.on_lost()

    def heartbeat(self) -> bool:
        """Refresh the heartbeat; False (and ``on_lost``) when the lock was taken over."""
        if not self.held or self.lost:
            return not self.lost
        with self.store.db.atomic():
            updated = self.store.db.execute(
                "UPDATE _hub_lock SET heartbeat_at = ? WHERE name = ? AND pid = ? AND host = ?",
                [clock.iso(dt.datetime.now(dt.timezone.utc)), self.name, self.pid, self.host],
            ).rowcount
        if updated == 0:
            self._lose()
            return False
        return True

    def release(self) -> None:
        if self.held:
            with self.store.db.atomic():
                self.store.db.execute(
                    "DELETE FROM _hub_lock WHERE name = ? AND pid = ? AND host = ?",
                    [self.name, self.pid, self.host],
                )
            self.held = False
            if getattr(self.store, "fence", None) == self.check:
                self.store.fence = None

    def __enter__(self) -> DatabaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_held: dict[str, int] = {}  # database path -> nesting depth in this process
_held_guard = threading.Lock()


@contextmanager
def database_lock(
    store: Store,
    purpose: str,
    *,
    wait: float = 0.0,
    stop: threading.Event | None = None,
) -> Iterator[DatabaseLock | None]:
    """Hold the writer lock for the block (re-entrant per database within one process).

    While held, a heartbeat thread refreshes it every ``HUB_LOCK_HEARTBEAT`` seconds; if the
    lock is lost, ``stop`` is set and every later write raises ``LockedError``. ``wait``
    seconds are spent retrying while another process holds it.
    """
    key = os.path.abspath(store.path) if store.path != ":memory:" else f"memory:{id(store)}"
    with _held_guard:
        depth = _held.get(key, 0)
        _held[key] = depth + 1
    if depth:
        try:
            yield None
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    lock = DatabaseLock(store, purpose=purpose, on_lost=(stop.set if stop is not None else None))
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                lock.acquire()
                break
            except LockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        beats = _Heartbeat(store, lock)
        beats.start()
        try:
            yield lock
        finally:
            beats.stop()
            lock.release()
    finally:
        with _held_guard:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]


class _Heartbeat:
    """Refreshes a lock from its own thread and connection (one sqlite3 connection must not
    carry two threads' transactions)."""

    def __init__(self, store: Store, lock: DatabaseLock, every: float = HEARTBEAT_SECONDS):
        self.every = every
        self.lock = lock
        self.path = store.path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hub-lock-heartbeat", daemon=True)

    def start(self) -> None:
        if self.path != ":memory:":
            self._thread.start()

    def _run(self) -> None:
        side = Store(self.path, migrate=False)
        beat = DatabaseLock(side, self.lock.name, purpose=self.lock.purpose)
        beat.pid, beat.host, beat.held = self.lock.pid, self.lock.host, True
        beat.on_lost = self.lock._lose
        try:
            while not self._stop.wait(self.every):
                if not beat.heartbeat():
                    return
        finally:
            side.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
