"""Read-ahead: the next page's request sent while the caller works on the page before it.

A listing that pages by cursor is a chain of round trips: the server renders a page while the
hub waits, then the hub decodes, normalises and stores it while the server waits. Once a page
is decoded its cursor is known, so the request for the next page can go out on a worker
thread at once, and the server's time overlaps the hub's (SQLite and the socket release the
GIL). ``ReadAhead`` keeps at most one request in flight; the caller takes its answer, in
order, as it would have sent it (an error it raised is raised there, as if sent then).

Only the request moves ahead, never the caller's own work: a listing that reads the database
between pages sees exactly what it saw before.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx

from hub.http.client import HttpClient


class ReadAhead:
    """One GET sent ahead of time on ``client``; ``get`` returns it when asked for."""

    def __init__(self, client: HttpClient):
        self.client = client
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[tuple[str, tuple[tuple[str, str], ...]], Future[Any]] | None = None

    @staticmethod
    def _key(path: str, params: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
        return path, tuple(sorted((k, str(v)) for k, v in params.items()))

    def send(self, path: str, params: dict[str, Any]) -> None:
        """Send ``GET path?params`` now, on the worker; ``get`` with the same arguments takes it."""
        self._settle()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-read-ahead")
        future = self._pool.submit(self.client.get, path, params=params)
        self._pending = (self._key(path, params), future)

    def get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        """The answer to ``GET path?params``: the one sent ahead, or sent now."""
        pending, self._pending = self._pending, None
        if pending is not None:
            key, future = pending
            if key == self._key(path, params):
                return future.result()
            _quiet(future)
        return self.client.get(path, params=params)

    def _settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            _quiet(pending[1])

    def close(self) -> None:
        """Wait for a request still in flight (its answer unused) and stop the worker."""
        self._settle()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quiet(future: Future[Any]) -> None:
    """Wait for an answer nobody will read; its error, if any, is not this caller's."""
    with contextlib.suppress(Exception):
        future.result()
