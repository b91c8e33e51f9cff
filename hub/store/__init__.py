"""The hub's SQLite database: opening it, raw tables, bookmarks and run records.

``Store.write_page`` is the only way a stream writes: a page's rows and its bookmark commit in
one ``db.atomic()``, so a crash loses at most the page in flight, which the next run reads
again. Source documents are kept whole in a fixed-column table, so hostile or drifting field
names (``rowid``, ``ID`` vs ``id``, spaces, SQL keywords) never become SQL; their bodies are
compressed (``hub.store.rawdoc``): read them with ``Store.raw_rows``/``Store.decode_raw``, or in
SQL through ``raw_json(data)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from hub import clock
from hub.errors import ConfigError
from hub.store import migrations, rawdoc

RAW_COLUMNS = {
    "id": str,
    "updated_at": str,
    "deleted": int,
    "synced_at": str,
    "seq": int,
    "data": bytes,  # hub.store.rawdoc: compressed JSON (or JSON text in older databases)
    "ref": str,  # RawRecord.ref: the record this one belongs to (indexed), or NULL
}

_NAME_RE = re.compile(r"[^a-z0-9_]+")


def safe_name(value: str) -> str:
    """Lower-case ``value`` and squash anything but ``[a-z0-9_]`` into ``_``."""
    return _NAME_RE.sub("_", value.lower()).strip("_")


def raw_table_name(connection: str, stream: str) -> str:
    """Name of the raw table for one stream of one connection."""
    return f"raw_{safe_name(connection)}_{safe_name(stream)}"


@dataclass
class RawRecord:
    """One source document as stored: its key, change time, tombstone flag and JSON body."""

    id: str
    data: dict[str, Any]
    updated_at: str | None = None
    deleted: bool = False
    ref: str | None = None
    """The id of the record this one belongs to (an invoice's customer), set by connectors
    whose mappings look rows up by it: kept in the indexed ``ref`` column."""


@dataclass
class RunRecord:
    """Counters for one run of one step; written to ``_hub_runs`` by ``Store.recorded_run``."""

    kind: str
    connection: str | None = None
    stream: str | None = None
    id: int = 0
    status: str = "ok"
    records: int = 0
    requests: int = 0
    retries: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class Database(sqlite_utils.Database):
    """``sqlite_utils.Database`` whose transactions take the write lock at once.

    ``BEGIN IMMEDIATE`` (and ``isolation_level="IMMEDIATE"`` for implicit transactions) makes
    a second writer wait on ``busy_timeout`` at BEGIN, instead of failing with "database is
    locked" when its deferred transaction tries to upgrade from read to write.
    """

    @contextmanager
    def atomic(self) -> Iterator[Database]:
        # One connection may be shared by threads (the scheduler, parallel syncs): a
        # re-entrant lock per connection keeps one thread's transaction from interleaving
        # with another's check-then-BEGIN ("cannot start a transaction within a transaction").
        lock = self.__dict__.setdefault("_tx_lock", threading.RLock())
        with lock:
            if self.conn.in_transaction:
                with super().atomic():
                    yield self
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self.rollback()
                raise
            else:
                try:
                    self.conn.execute("COMMIT")
                except BaseException:
                    self.rollback()
                    raise


def _private(path: str) -> None:
    """The database and its WAL/SHM files readable by their owner only (they hold customer
    data). SQLite gives new -wal/-shm files the database file's mode."""
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            if os.stat(path + suffix).st_uid == os.getuid():
                os.chmod(path + suffix, 0o600)
        except OSError:
            pass


class Store:
    """The database: a thin layer over ``sqlite_utils.Database`` with the hub's tables."""

    fence: Callable[[Store], None] | None = None
    """Set by the writer lock: called inside each page's transaction; raises ``LockedError``
    when this process no longer holds the lock (see ``hub.lock``)."""

    def __init__(self, path: str | Path, *, migrate: bool = True):
        self.path = str(path)
        self.fence = None
        self._raw_ready: set[str] = set()  # raw tables known to have today's columns
        if self.path != ":memory:":
            parent = Path(self.path).expanduser().resolve().parent
            if not parent.exists():
                raise ConfigError(
                    f"database folder {parent} does not exist",
                    hint="create it or set [hub] database in hub.toml",
                )
            if Path(self.path).is_dir():
                raise ConfigError(
                    f"database path {self.path} is a folder", hint="point it at a file"
                )
        try:
            if self.path != ":memory:":
                _private(self.path)
            conn = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level="IMMEDIATE"
            )
            self.db = Database(conn)
            if self.path != ":memory:":
                self.db.enable_wal()
            self.codec = rawdoc.RawCodec(conn, self.path)
            # SQL reads raw bodies as ``json_extract(raw_json(data), ...)``, whatever their form.
            conn.create_function("raw_json", 1, self.codec.text, deterministic=True)
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=30000")
            if migrate and migrations.pending(self.db):
                if migrations.applied(self.db) and self.path != ":memory:":
                    # An existing database is about to change shape: keep a copy first.
                    from hub.store.maintenance import backup_before_migration

                    backup_before_migration(self.path)
                # Serialised in one BEGIN IMMEDIATE (see migrations.apply): two processes
                # opening a new database at once never both apply a migration.
                migrations.apply(self.db)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"cannot open database {self.path}: {exc}",
                hint="point [hub] database at a hub database or a new file",
            ) from None

    def __repr__(self) -> str:
        return f"<Store {self.path}>"

    def close(self) -> None:
        self.db.close()

    # -- raw tables -------------------------------------------------------------------

    def raw_table(self, connection: str, stream: str) -> sqlite_utils.db.Table:
        """The raw table for a stream, created with the fixed columns on first use."""
        name = raw_table_name(connection, stream)
        # Not ``self.db[name]``: that asks sqlite_master for the views on every call (once a
        # page), a query over every table, index and trigger of the schema.
        table = sqlite_utils.db.Table(self.db, name)
        if name in self._raw_ready:
            return table
        with self.db.atomic():
            if not table.exists():
                table.create(RAW_COLUMNS, pk="id", if_not_exists=True)
                table.create_index(["seq"], if_not_exists=True)
                # Born compact: ``rawdoc.compact_legacy`` has nothing to convert here.
                self.db.execute(
                    "INSERT OR IGNORE INTO _hub_raw_compacted (raw_table) VALUES (?)", [name]
                )
            elif "ref" not in table.columns_dict:
                # A table from before ``ref``: its rows keep NULL until read again, and the
                # mappings' look-ups fall back to the document for them.
                self.db.execute(f"ALTER TABLE [{name}] ADD COLUMN ref TEXT")
            self.db.execute(f"CREATE INDEX IF NOT EXISTS [idx_{name}_ref] ON [{name}] (ref)")
        self._raw_ready.add(name)
        return table

    def next_seq(self) -> int:
        """Advance and return the global page sequence (call inside a transaction)."""
        self.db.execute("UPDATE _hub_seq SET value = value + 1 WHERE name = 'raw'")
        return self.db.execute("SELECT value FROM _hub_seq WHERE name = 'raw'").fetchone()[0]

    def write_page(
        self,
        connection: str,
        stream: str,
        records: Iterable[RawRecord],
        state: dict[str, Any] | None,
    ) -> int:
        """Upsert a page of records and save the stream's bookmark in one transaction.

        Returns the number of rows that were new or changed. Rows whose JSON body and
        tombstone are unchanged are not rewritten, so a re-read page does not make the
        mappings do work again.
        """
        table = self.raw_table(connection, stream)
        synced_at = clock.iso()
        changed = 0
        # Encoded before the write lock is taken: parallel syncs wait only for the writes.
        rows = [
            (str(r.id), r.updated_at, 1 if r.deleted else 0, rawdoc.dumps(r.data), r.ref)
            for r in records
        ]
        try:
            with self.db.atomic():
                self.check_fence()
                if rows:
                    existing = self._existing(table.name, [r[0] for r in rows])
                    fresh = [r for r in rows if existing.get(r[0]) != (r[2], r[3], r[4])]
                    if fresh:
                        seq = self.next_seq()
                        blobs = self.codec.encode_many(table.name, [r[3] for r in fresh])
                        self.db.conn.executemany(
                            f"INSERT INTO [{table.name}] (id, updated_at, deleted, synced_at, seq, data, ref) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                            "updated_at=excluded.updated_at, deleted=excluded.deleted, "
                            "synced_at=excluded.synced_at, seq=excluded.seq, data=excluded.data, "
                            "ref=excluded.ref",
                            [
                                (i, u, d, synced_at, seq, blob, ref)
                                for (i, u, d, _, ref), blob in zip(fresh, blobs, strict=True)
                            ],
                        )
                        changed = len(fresh)
                if state is not None:
                    self.set_state(connection, stream, state)
        except BaseException:
            self.codec.forget()
            self._raw_ready.clear()
            raise
        return changed

    def check_fence(self) -> None:
        """Inside a write transaction: stop (``LockedError``) if this process lost the
        writer lock. Steps that write outside ``write_page`` call it before committing."""
        if self.fence is not None:
            self.fence(self)

    def _existing(self, table: str, ids: list[str]) -> dict[str, tuple[int, bytes, str | None]]:
        """Stored (tombstone, JSON bytes, ref) of these ids: what a re-read page is compared
        with."""
        found: dict[str, tuple[int, bytes, str | None]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for rid, deleted, data, ref in self.db.execute(
                f"SELECT id, deleted, data, ref FROM [{table}] WHERE id IN ({marks})", chunk
            ):
                body = self.codec.expand(data)
                found[rid] = (deleted, body.encode() if isinstance(body, str) else body, ref)
        return found

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file and truncate it (after a big write: a
        first sync or map otherwise leaves a WAL as large as what it wrote)."""
        if self.path != ":memory:":
            # Busy: SQLite's own checkpoints go on; nothing is lost.
            with contextlib.suppress(sqlite3.OperationalError):
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def compact_legacy_raw(self) -> int:
        """Compress raw bodies still stored as JSON text (databases from before compaction),
        in batches of their own transactions; returns the rows converted."""
        return rawdoc.compact_legacy(self)

    def decode_raw(self, value: Any) -> Any:
        """A raw row's stored ``data`` as the document it holds (compressed or JSON text)."""
        return self.codec.decode(value)

    def raw_rows(
        self,
        table: str,
        *,
        since_seq: int = 0,
        until_seq: int | None = None,
        include_deleted: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Rows of a raw table changed after ``since_seq`` (up to ``until_seq``), oldest change
        first, JSON decoded. Iterate it: rows are decoded one at a time."""
        if not self.db[table].exists():
            return
        where, params = "seq > ?", [since_seq]
        if until_seq is not None:
            where += " AND seq <= ?"
            params.append(until_seq)
        if not include_deleted:
            where += " AND deleted = 0"
        cursor = self.db.execute(
            f"SELECT id, updated_at, deleted, synced_at, seq, data FROM [{table}] "
            f"WHERE {where} ORDER BY seq, id",
            params,
        )
        for rid, updated_at, deleted, synced_at, seq, data in cursor:
            yield {
                "id": rid,
                "updated_at": updated_at,
                "deleted": bool(deleted),
                "synced_at": synced_at,
                "seq": seq,
                "data": self.codec.decode(data),
            }

    def raw_tables(self, connection: str | None = None) -> list[str]:
        """Names of the raw tables, optionally only one connection's."""
        prefix = f"raw_{safe_name(connection)}_" if connection else "raw_"
        return sorted(t for t in self.db.table_names() if t.startswith(prefix))

    # -- bookmarks --------------------------------------------------------------------

    def get_state(self, connection: str, stream: str) -> dict[str, Any] | None:
        """The stream's bookmark, or None before its first committed page."""
        row = self.db.execute(
            "SELECT state FROM _hub_state WHERE connection = ? AND stream = ?",
            [connection, stream],
        ).fetchone()
        return json.loads(row[0]) if row else None

    def set_state(self, connection: str, stream: str, state: dict[str, Any]) -> None:
        """Save a bookmark (callers wrap it in the page's transaction)."""
        self.db.execute(
            "INSERT INTO _hub_state (connection, stream, state, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(connection, stream) DO UPDATE SET state=excluded.state, "
            "updated_at=excluded.updated_at",
            [connection, stream, json.dumps(state, sort_keys=True), clock.iso()],
        )

    def clear_state(self, connection: str, stream: str | None = None) -> None:
        """Forget bookmarks so the next sync re-reads everything."""
        with self.db.atomic():
            if stream is None:
                self.db.execute("DELETE FROM _hub_state WHERE connection = ?", [connection])
            else:
                self.db.execute(
                    "DELETE FROM _hub_state WHERE connection = ? AND stream = ?",
                    [connection, stream],
                )

    # -- runs -------------------------------------------------------------------------

    def start_run(self, kind: str, connection: str | None = None, stream: str | None = None) -> int:
        """Record a run as running and return its id."""
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT INTO _hub_runs (kind, connection, stream, status, started_at, records, "
                "requests, retries) VALUES (?, ?, ?, 'running', ?, 0, 0, 0)",
                [kind, connection, stream, clock.iso()],
            )
            return cursor.lastrowid

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        records: int = 0,
        requests: int = 0,
        retries: int = 0,
        error: str | None = None,
        note: str | None = None,
        duration_s: float | None = None,
    ) -> None:
        """Close a run record with its outcome and counters."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE _hub_runs SET status=?, finished_at=?, duration_s=?, records=?, requests=?, "
                "retries=?, error=?, note=? WHERE id=?",
                [
                    status,
                    clock.iso(),
                    round(duration_s, 3) if duration_s is not None else None,
                    records,
                    requests,
                    retries,
                    error,
                    note,
                    run_id,
                ],
            )

    @contextmanager
    def recorded_run(
        self, kind: str, connection: str | None = None, stream: str | None = None
    ) -> Iterator[RunRecord]:
        """Record a step in ``_hub_runs``: running now, then its outcome and counters.

        The body fills the yielded ``RunRecord``; an exception closes the run as an error
        (with the exception's one-line text) and propagates.
        """
        run = RunRecord(kind, connection, stream)
        run.id = self.start_run(kind, connection, stream)
        started = time.perf_counter()
        try:
            yield run
        except BaseException as exc:
            self.finish_run(
                run.id,
                status="error",
                error=str(exc) or type(exc).__name__,
                duration_s=time.perf_counter() - started,
            )
            raise
        self.finish_run(
            run.id,
            status=run.status,
            records=run.records,
            requests=run.requests,
            retries=run.retries,
            error=run.error,
            note="; ".join(run.notes) or None,
            duration_s=time.perf_counter() - started,
        )

    def runs(self, *, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Most recent runs first."""
        where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
        return list(
            self.db.query(
                f"SELECT * FROM _hub_runs {where} ORDER BY id DESC LIMIT ?", [*params, limit]
            )
        )


def open_store(path: str | Path) -> Store:
    """Open (and migrate) the database at ``path``."""
    return Store(path)
