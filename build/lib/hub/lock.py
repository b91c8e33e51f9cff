"""A database-level lock so two ``hub run`` processes never work on one database at once.

The lock is a row in ``_hub_lock`` with the holder's pid, host and a heartbeat. A second
process refuses to start while the holder is alive; a lock whose holder died (same host, pid
gone) or whose heartbeat is older than ``stale_after`` seconds is taken over.
"""

from __future__ import annotations

import datetime as dt
import os
import socket

from hub import clock
from hub.errors import LockedError
from hub.store import Store


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DatabaseLock:
    """``with DatabaseLock(store): ...`` holds the named lock or raises ``LockedError``."""

    def __init__(self, store: Store, name: str = "run", *, stale_after: float = 300.0):
        self.store = store
        self.name = name
        self.stale_after = stale_after
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.held = False

    def acquire(self) -> None:
        db = self.store.db
        now = dt.datetime.now(dt.timezone.utc)
        with db.atomic():
            row = db.execute(
                "SELECT pid, host, acquired_at, heartbeat_at FROM _hub_lock WHERE name = ?",
                [self.name],
            ).fetchone()
            if row is not None:
                pid, host, acquired_at, heartbeat_at = row
                beat = clock.parse(heartbeat_at)
                fresh = beat is not None and (now - beat).total_seconds() < self.stale_after
                alive = _alive(pid) if host == self.host else fresh
                if alive and fresh and not (pid == self.pid and host == self.host):
                    raise LockedError(
                        f"another hub process (pid {pid} on {host}, since {acquired_at[:19]}Z) is running on this database",
                        hint="stop it first, or use a different --db",
                    )
            stamp = clock.iso(now)
            db.execute(
                "INSERT INTO _hub_lock (name, owner, pid, host, acquired_at, heartbeat_at) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET owner=excluded.owner, pid=excluded.pid, host=excluded.host, "
                "acquired_at=excluded.acquired_at, heartbeat_at=excluded.heartbeat_at",
                [self.name, f"{self.host}:{self.pid}", self.pid, self.host, stamp, stamp],
            )
        self.held = True

    def heartbeat(self) -> None:
        if self.held:
            with self.store.db.atomic():
                self.store.db.execute(
                    "UPDATE _hub_lock SET heartbeat_at = ? WHERE name = ? AND pid = ? AND host = ?",
                    [clock.iso(dt.datetime.now(dt.timezone.utc)), self.name, self.pid, self.host],
                )

    def release(self) -> None:
        if self.held:
            with self.store.db.atomic():
                self.store.db.execute(
                    "DELETE FROM _hub_lock WHERE name = ? AND pid = ? AND host = ?",
                    [self.name, self.pid, self.host],
                )
            self.held = False

    def __enter__(self) -> DatabaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
