"""Reading the run's aggregation in step with the accounts (both ordered by account id)."""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from typing import Any


class RowStream:
    """An aggregation cursor ordered by account id, read in step with the accounts."""

    __slots__ = ("cursor", "row")

    def __init__(self, cursor: Any):
        self.cursor = cursor
        self.row = next(cursor, None)

    def get(self, key: str) -> tuple[Any, ...] | None:
        row = self.row
        while row is not None and (row[0] is None or row[0] < key):
            row = next(self.cursor, None)
        self.row = row
        if row is not None and row[0] == key:
            return row
        return None


class ThreadStream(RowStream):
    """The aggregation read on its own connection in a thread, so that SQLite computes the
    next groups (it releases the GIL) while Python scores the previous accounts: a full run
    uses both cores. Only for file databases (a second connection to ``:memory:`` would be
    another database)."""

    __slots__ = ("queue", "batch", "pos", "thread", "stop")

    def __init__(self, path: str, sql: str, args: list[Any]):
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=16)
        self.stop = threading.Event()
        self.batch: list[tuple[Any, ...]] = []
        self.pos = 0
        self.thread = threading.Thread(
            target=self._read, args=(path, sql, args), name="hub-health-reader", daemon=True
        )
        self.thread.start()
        self.row = self._next()

    def _read(self, path: str, sql: str, args: list[Any]) -> None:
        try:
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
            try:
                conn.execute("PRAGMA busy_timeout=30000")
                cursor = conn.execute(sql, args)
                while not self.stop.is_set():
                    rows = cursor.fetchmany(500)
                    if not rows:
                        break
                    self.queue.put(rows)
            finally:
                conn.close()
            self.queue.put(None)
        except BaseException as exc:  # handed to the consuming thread, which re-raises it
            self.queue.put(exc)

    def _next(self) -> tuple[Any, ...] | None:
        if self.pos >= len(self.batch):
            if self.batch is None:
                return None
            item = self.queue.get()
            if item is None:
                self.batch = None  # type: ignore[assignment]
                return None
            if isinstance(item, BaseException):
                raise item
            self.batch, self.pos = item, 0
        row = self.batch[self.pos]
        self.pos += 1
        return row

    def get(self, key: str) -> tuple[Any, ...] | None:
        row = self.row
        while row is not None and (row[0] is None or row[0] < key):
            row = self._next()
        self.row = row
        if row is not None and row[0] == key:
            return row
        return None

    def close(self) -> None:
        self.stop.set()
        while self.thread.is_alive():
            # Drain so a reader blocked on a full queue sees the stop flag.
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.1)
        self.thread.join()


__all__ = ["RowStream", "ThreadStream"]
