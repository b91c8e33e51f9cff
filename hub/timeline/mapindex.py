"""A mapping's own index over its rows, and batched raw look-ups: what ``finalize`` reads.

``MappingContext`` inherits these. A mapping indexes a record under a kind while its row is
mapped (``index(kind, key, refs, value)``: an open invoice under its customer with its due
date, a deal under its companies); the entries are written with the batch that mapped the
row (``_hub_map_index``, committed with the map marker), so ``finalize`` asks for the
records of the customers or companies that changed, or the ones due by now, through indexed
columns instead of scanning a raw table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hub.store import Store, raw_table_name


class MapIndex:
    """Index and look-up methods of ``MappingContext`` (which provides the attributes)."""

    store: Store
    connection: str
    mapping: Any
    _index: dict[tuple[str, str], tuple[tuple[str, ...], str | None] | None]

    def flush(self) -> None:  # pragma: no cover - MappingContext's
        raise NotImplementedError

    # -- the mapping's own index ------------------------------------------------------------

    @property
    def scope(self) -> str:
        """The mapping's scope in ``_hub_map_index``: one per mapping and connection."""
        return f"{self.mapping.name}/{self.connection}"

    def index(
        self, kind: str, key: Any, refs: Iterable[Any] = (), value: str | None = None
    ) -> None:
        """Index ``key`` under ``kind``: the records it belongs to (``refs``) and one sortable
        ``value`` (a due date). Replaces what ``key`` had; written with the batch."""
        wanted = tuple(sorted({str(r) for r in refs if r not in (None, "")})) or ("",)
        self._index[(kind, str(key))] = (wanted, value)

    def unindex(self, kind: str, key: Any) -> None:
        """Drop ``key`` from ``kind`` (the record is gone or no longer qualifies)."""
        self._index[(kind, str(key))] = None

    def index_refs(self, kind: str, keys: Iterable[Any]) -> dict[str, list[str]]:
        """What ``keys`` are indexed under (flushes first): key → refs (without '')."""
        self.flush()
        out: dict[str, list[str]] = {}
        ordered = sorted({str(k) for k in keys})
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            for key, ref in self.store.db.execute(
                "SELECT key, ref FROM _hub_map_index WHERE scope = ? AND kind = ? "
                f"AND key IN ({','.join('?' * len(chunk))})",
                [self.scope, kind, *chunk],
            ):
                refs = out.setdefault(key, [])
                if ref:
                    refs.append(ref)
        return out

    def indexed(
        self, kind: str, *, refs: Iterable[Any] | None = None, upto: str | None = None
    ) -> list[tuple[str, str, str | None]]:
        """``(key, ref, value)`` of ``kind`` (flushes first): those under any of ``refs``,
        and/or whose ``value`` is at most ``upto``; everything of ``kind`` without either."""
        self.flush()
        base = "SELECT key, ref, value FROM _hub_map_index WHERE scope = ? AND kind = ?"
        args: list[Any] = [self.scope, kind]
        if upto is not None:
            base += " AND value <= ?"
            args.append(upto)
        if refs is None:
            return [tuple(r) for r in self.store.db.execute(base + " ORDER BY key", args)]
        found: list[tuple[str, str, str | None]] = []
        ordered = sorted({str(r) for r in refs})
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            found.extend(
                tuple(r)
                for r in self.store.db.execute(
                    base + f" AND ref IN ({','.join('?' * len(chunk))})", [*args, *chunk]
                )
            )
        return sorted(found)

    def raw_many(self, stream: str, record_ids: Iterable[Any]) -> dict[str, dict[str, Any]]:
        """Live (not deleted) raw rows of a stream of this connection by id: id → document."""
        table = raw_table_name(self.connection, stream)
        out: dict[str, dict[str, Any]] = {}
        if not self.store.db[table].exists():
            return out
        ordered = sorted({str(i) for i in record_ids})
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            for rid, data in self.store.db.execute(
                f"SELECT id, data FROM [{table}] WHERE deleted = 0 "
                f"AND id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                out[rid] = self.store.decode_raw(data)
        return out

    def _flush_index(self) -> None:
        db, scope = self.store.db, self.scope
        db.conn.executemany(
            "DELETE FROM _hub_map_index WHERE scope = ? AND kind = ? AND key = ?",
            [(scope, kind, key) for kind, key in self._index],
        )
        db.conn.executemany(
            "INSERT OR REPLACE INTO _hub_map_index (scope, kind, key, ref, value) VALUES (?,?,?,?,?)",
            [
                (scope, kind, key, ref, entry[1])
                for (kind, key), entry in self._index.items()
                if entry is not None
                for ref in entry[0]
            ],
        )
        self._index.clear()
