"""Rate budgets shared between processes: one budget per token, however many hubs use it.

An API counts requests per credential, not per process: cron, a manual ``hub sync`` and
``hub run`` (or two workspaces with the same token) must share one budget. ``SharedLimiter``
keeps ``Limiter``'s sliding-window log and pauses in a small SQLite file instead of memory;
every process that uses the same file sees every request and every ``Retry-After`` pause.

Why a file of its own rather than the workspace database: the budget belongs to the token,
and one token can serve several workspaces (databases); and a budget check per request must
not queue behind a page write holding the data's write lock. Why not pyrate-limiter's SQLite
bucket: the hub needs the pause shared too (a 429's ``Retry-After`` holds every process) and
``next_slot`` for HubSpot's rolling window, on the same log; that is forty lines here.

The file (``HUB_BUDGETS``, default ``$XDG_STATE_HOME/hub/budgets.sqlite``) holds only
timestamps and budget names with a token fingerprint, no secret; it is created 0600.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hub.http.ratelimit import Limiter, RateLimit

log = logging.getLogger("hub.http")


def default_budget_path() -> str | None:
    """Where budgets are shared (``HUB_BUDGETS``; ``off`` keeps them in the process)."""
    value = os.environ.get("HUB_BUDGETS")
    if value is not None:
        return None if value.strip().lower() in ("", "off", "none", "0") else value
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return os.path.join(base, "hub", "budgets.sqlite")


_connections: dict[str, sqlite3.Connection] = {}
_connections_lock = threading.Lock()
# One lock per shared connection: limiters of several scopes (and threads) share it, and
# two transactions on one sqlite3 connection must never interleave.
_transaction_locks: dict[str, threading.Lock] = {}


def _connect(path: str) -> sqlite3.Connection:
    with _connections_lock:
        conn = _connections.get(path)
        if conn is None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fresh = not os.path.exists(path)
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            if fresh:
                os.chmod(path, 0o600)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")  # timestamps only: a crash loses nothing
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("CREATE TABLE IF NOT EXISTS hits (scope TEXT NOT NULL, at REAL NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS hits_scope_at ON hits (scope, at)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS pauses (scope TEXT PRIMARY KEY, until REAL NOT NULL)"
            )
            _connections[path] = conn
        return conn


class SharedLimiter(Limiter):
    """A ``Limiter`` whose window log and pauses live in a SQLite file shared by processes.

    Its margin is wider than ``Limiter``'s: between taking a slot and the request reaching
    the server, a process can be descheduled (several busy processes on few cores), which
    moves its request later into the server's window than the log says. 10% longer windows
    gave no 429 with three processes on a busy two-core machine.
    """

    SAFETY = 1.10

    def __init__(
        self,
        rate: RateLimit,
        *,
        path: str,
        scope: str,
        sleep: Callable[[float], None] = time.sleep,
        **_: object,
    ):
        super().__init__(rate, monotonic=time.time, sleep=sleep)
        self.path = path
        self.scope = scope
        self._db = _connect(path)

    def _transaction(
        self, body: Callable[[sqlite3.Connection, float], float | None]
    ) -> float | None:
        with _transaction_locks.setdefault(self.path, threading.Lock()):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = body(self._db, time.time())
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def _try(self, db: sqlite3.Connection, now: float) -> float | None:
        """Take a slot (None) or say how long to wait."""
        row = db.execute("SELECT until FROM pauses WHERE scope = ?", [self.scope]).fetchone()
        if row and row[0] > now:
            return row[0] - now
        db.execute("DELETE FROM hits WHERE scope = ? AND at <= ?", [self.scope, now - self.window])
        count, oldest = db.execute(
            "SELECT count(*), min(at) FROM hits WHERE scope = ?", [self.scope]
        ).fetchone()
        if count < self.rate.limit:
            db.execute("INSERT INTO hits (scope, at) VALUES (?, ?)", [self.scope, now])
            return None
        return self.window - (now - oldest)

    def acquire(self, sleep: Callable[[float], None] | None = None) -> float:
        sleep = sleep or self._sleep
        waited = 0.0
        while True:
            delay = self._transaction(self._try)
            if delay is None:
                self.waited += waited
                return waited
            delay = max(delay, 0.001)
            sleep(delay)
            waited += delay

    def next_slot(self, interval: float) -> float:
        def oldest(db: sqlite3.Connection, now: float) -> float | None:
            row = db.execute(
                "SELECT min(at) FROM hits WHERE scope = ? AND at > ?", [self.scope, now - interval]
            ).fetchone()
            return interval * self.SAFETY - (now - row[0]) if row and row[0] else interval

        return float(self._transaction(oldest) or interval)

    def pause(self, seconds: float) -> None:
        def hold(db: sqlite3.Connection, now: float) -> None:
            db.execute(
                "INSERT INTO pauses (scope, until) VALUES (?, ?) ON CONFLICT(scope) DO UPDATE "
                "SET until = max(until, excluded.until)",
                [self.scope, now + seconds],
            )
            return None

        self._transaction(hold)


__all__ = ["SharedLimiter", "default_budget_path"]
