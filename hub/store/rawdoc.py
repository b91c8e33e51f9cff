"""Compact raw documents: each raw row's JSON body stored zstd-compressed with its table's dictionary.

Source documents repeat the same keys and shapes row after row, so each raw table gets one
zstd dictionary, trained on its first full page and kept in ``_hub_raw_dicts``; every body is
then compressed on its own with it (10–18× smaller on Stripe, Zendesk and HubSpot documents,
about 5 µs to compress and 3 µs to expand one), so any single row can still be read alone.

The ``data`` column holds either form, told apart by type:

- ``TEXT``: the JSON itself (databases written before compaction, until ``compact_legacy``
  converts them);
- ``BLOB``: ``FORMAT_ZSTD`` (one byte), the dictionary id (4 bytes, big-endian; 0 = none), then
  one zstd frame.

Nothing outside ``hub.store`` decodes a body itself: Python code calls ``Store.decode_raw``
(``Store.raw_rows`` and ``MappingContext.raw`` already do) and SQL wraps the column in the
``raw_json(data)`` function every ``Store`` connection registers (``json_extract(raw_json(data),
'$.customer')``).
"""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
from typing import Any

import zstandard

from hub import clock

try:  # 25x faster than json for these documents; the standard library when absent
    import orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    orjson = None  # type: ignore[assignment]

FORMAT_ZSTD = 1
LEVEL = 3
DICT_SIZE = 16 * 1024
TRAIN_MIN_DOCS = 16
"""A table's dictionary is trained on its first page with at least this many documents."""
TRAIN_MAX_DOCS = 200
RETRAIN_DOCS = 1000
"""A table with this many rows, whose dictionary saw fewer documents, gets a second one."""
RETRAIN_DICT_SIZE = 64 * 1024
_HEADER = struct.Struct(">BI")
# Dates and dataclasses go through ``default=str`` as with json.dumps, not orjson's own forms.
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    if orjson is not None
    else 0
)


class RawCodec:
    """Encodes and decodes one database's raw bodies; holds its dictionaries (per thread)."""

    def __init__(self, conn: sqlite3.Connection, path: str):
        self.conn = conn
        self.path = path
        self._dicts: dict[int, zstandard.ZstdCompressionDict] = {}
        self._table_dict: dict[str, tuple[int, int]] = {}  # table → (dict id, documents)
        self._untrainable: set[str] = set()
        self._local = threading.local()
        self._lock = threading.Lock()

    # -- dictionaries ---------------------------------------------------------------------

    def _dict(self, dict_id: int) -> zstandard.ZstdCompressionDict:
        found = self._dicts.get(dict_id)
        if found is None:
            found = self._load(dict_id)
        return found

    def _load(self, dict_id: int) -> zstandard.ZstdCompressionDict:
        # Called from inside ``raw_json`` too, i.e. while a statement runs on ``conn``: a file
        # database is read through a connection of its own; ``:memory:`` dictionaries were
        # all made by this process and are cached already.
        if self.path != ":memory:":
            other = sqlite3.connect(self.path, timeout=30)
            try:
                row = other.execute(
                    "SELECT dict FROM _hub_raw_dicts WHERE id = ?", [dict_id]
                ).fetchone()
            finally:
                other.close()
        else:
            row = self.conn.execute(
                "SELECT dict FROM _hub_raw_dicts WHERE id = ?", [dict_id]
            ).fetchone()
        if row is None:
            raise ValueError(f"raw document dictionary {dict_id} is missing")
        loaded = zstandard.ZstdCompressionDict(bytes(row[0]))
        with self._lock:
            self._dicts[dict_id] = loaded
        return loaded

    def table_dict(self, table: str) -> int:
        """The id of ``table``'s dictionary, or 0 while it has none (call inside the write).

        The one trained on the most documents wins (the second, larger one once it exists)."""
        known = self._table_dict.get(table)
        if known:
            return known[0]
        row = self.conn.execute(
            "SELECT id, dict, COALESCE(docs, 0) FROM _hub_raw_dicts WHERE raw_table = ? "
            "ORDER BY COALESCE(docs, 0) DESC, created_at DESC LIMIT 1",
            [table],
        ).fetchone()
        if row is None:
            return 0
        self._dicts.setdefault(row[0], zstandard.ZstdCompressionDict(bytes(row[1])))
        self._table_dict[table] = (row[0], row[2])
        return row[0]

    def _retrain(self, table: str, bodies: list[bytes]) -> int:
        """The table's second dictionary, trained on its latest ``RETRAIN_DOCS`` documents,
        once it holds that many and its dictionary saw fewer (else the current one)."""
        dict_id = self.table_dict(table)
        if not dict_id or self._table_dict[table][1] >= RETRAIN_DOCS or table in self._untrainable:
            return dict_id
        (rows,) = self.conn.execute(f"SELECT COALESCE(max(rowid), 0) FROM [{table}]").fetchone()
        if rows + len(bodies) < RETRAIN_DOCS:
            return dict_id
        sample = list(bodies[:RETRAIN_DOCS])
        for (value,) in self.conn.execute(
            f"SELECT data FROM [{table}] ORDER BY rowid DESC LIMIT ?",
            [RETRAIN_DOCS - len(sample)],
        ):
            sample.append(self.text(value).encode())
        return self.train(table, sample, size=RETRAIN_DICT_SIZE, limit=RETRAIN_DOCS) or dict_id

    def train(
        self, table: str, bodies: list[bytes], *, size: int = DICT_SIZE, limit: int = TRAIN_MAX_DOCS
    ) -> int:
        """Train and store a dictionary for ``table`` from ``bodies`` (inside the page's
        transaction); 0 when they are too few or too uniform to train on."""
        if len(bodies) < TRAIN_MIN_DOCS or table in self._untrainable:
            return 0
        try:
            # Fixed cover parameters: zstd's search over them costs 5-10x the time (100-250
            # ms a table) for the same ratio on these documents.
            trained = zstandard.train_dictionary(size, bodies[:limit], k=1024, d=8)
        except zstandard.ZstdError:
            self._untrainable.add(table)
            return 0
        data, dict_id = trained.as_bytes(), int(trained.dict_id())
        # The id is zstd's own (drawn from the content), never a row counter: a transaction
        # rolled back cannot leave a cached id that a different dictionary later reuses.
        try:
            self.conn.execute(
                "INSERT INTO _hub_raw_dicts (id, raw_table, dict, created_at, docs) "
                "VALUES (?, ?, ?, ?, ?)",
                [dict_id, table, data, clock.iso(), min(len(bodies), limit)],
            )
        except sqlite3.IntegrityError:
            self._untrainable.add(table)
            return 0
        self._dicts[dict_id] = zstandard.ZstdCompressionDict(data)
        self._table_dict[table] = (dict_id, min(len(bodies), limit))
        return dict_id

    def forget(self) -> None:
        """Drop cached table → dictionary choices (after a rolled-back transaction, which may
        have taken a dictionary it trained with it)."""
        self._table_dict.clear()

    # -- bodies ---------------------------------------------------------------------------

    def _compressor(self, dict_id: int) -> zstandard.ZstdCompressor:
        cache = self._local.__dict__.setdefault("c", {})
        found = cache.get(dict_id)
        if found is None:
            if dict_id:
                found = zstandard.ZstdCompressor(level=LEVEL, dict_data=self._dict(dict_id))
            else:
                found = zstandard.ZstdCompressor(level=LEVEL)
            cache[dict_id] = found
        return found

    def _decompressor(self, dict_id: int) -> zstandard.ZstdDecompressor:
        cache = self._local.__dict__.setdefault("d", {})
        found = cache.get(dict_id)
        if found is None:
            found = (
                zstandard.ZstdDecompressor(dict_data=self._dict(dict_id))
                if dict_id
                else zstandard.ZstdDecompressor()
            )
            cache[dict_id] = found
        return found

    def encode_many(self, table: str, bodies: list[bytes]) -> list[bytes]:
        """Compress a page's bodies with ``table``'s dictionary (trained now if it has none)."""
        dict_id = self._retrain(table, bodies) or self.train(table, bodies)
        # A table's superseded dictionary is never written with again: drop its compressor
        # (about 1 MB of zstd context each, per thread).
        used = self._local.__dict__.setdefault("used", {})
        before = used.get(table)
        if before not in (None, dict_id):
            self._local.__dict__.get("c", {}).pop(before, None)
        used[table] = dict_id
        compressor = self._compressor(dict_id)
        head = _HEADER.pack(FORMAT_ZSTD, dict_id)
        return [head + compressor.compress(b) for b in bodies]

    def expand(self, value: Any) -> bytes | str | None:
        """A stored body as JSON bytes (compressed form) or text (older rows), as stored.

        The last body expanded is remembered (per thread): SQL that reads several fields of a
        row (``json_extract(raw_json(data), '$.a')``, then ``'$.b'``) expands it once."""
        if value is None or isinstance(value, str):
            return value
        local = self._local.__dict__
        if local.get("last_in") == value:
            return local["last_out"]
        raw = bytes(value)
        if not raw or raw[0] != FORMAT_ZSTD:
            return raw
        _, dict_id = _HEADER.unpack_from(raw)
        out = self._decompressor(dict_id).decompress(raw[_HEADER.size :])
        local["last_in"], local["last_out"] = raw, out
        return out

    def text(self, value: Any) -> str:
        """A stored body as JSON text, whichever form it is in."""
        found = self.expand(value)
        return found.decode() if isinstance(found, bytes) else found

    def decode(self, value: Any) -> Any:
        """A stored body as the document (dict) it holds."""
        return loads(self.expand(value))


def loads(text: bytes | str) -> Any:
    """JSON text or bytes → Python (orjson, else the standard library; also for what orjson
    refuses: integers beyond 64 bits, NaN)."""
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def dumps(document: Any) -> bytes:
    """The JSON bytes a document is stored as: compact UTF-8, key order as the API sent it (an
    API renders a record the same way each time, and sorting keys costs a third of the time).
    """
    if orjson is not None:
        try:
            return orjson.dumps(document, default=str, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, say
            pass
    return json.dumps(document, separators=(",", ":"), default=str, ensure_ascii=False).encode()


def compact_legacy(store: Any, *, batch: int = 2000) -> int:
    """Convert raw bodies stored as JSON text into compressed ones; returns rows converted.

    Each batch is its own transaction and rows keep their ``seq`` (the mappings do not see
    them as changed), so a killed conversion leaves every row readable and the next call goes
    on; tables are scanned by rowid once and then remembered in ``_hub_raw_compacted``.
    """
    db = store.db
    done = {r[0] for r in db.execute("SELECT raw_table FROM _hub_raw_compacted")}
    converted = 0
    for table in store.raw_tables():
        if table in done:
            continue
        last = 0
        while True:
            rows = db.execute(
                f"SELECT rowid, data FROM [{table}] WHERE rowid > ? ORDER BY rowid LIMIT ?",
                [last, batch],
            ).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            text = [(rid, data) for rid, data in rows if isinstance(data, str)]
            if text:
                with db.atomic():
                    store.check_fence()
                    blobs = store.codec.encode_many(table, [d.encode() for _, d in text])
                    db.conn.executemany(
                        f"UPDATE [{table}] SET data = ? WHERE rowid = ? AND typeof(data) = 'text'",
                        [(b, rid) for (rid, _), b in zip(text, blobs, strict=True)],
                    )
                converted += len(text)
        with db.atomic():
            db.execute("INSERT OR IGNORE INTO _hub_raw_compacted (raw_table) VALUES (?)", [table])
    return converted


__all__ = ["FORMAT_ZSTD", "RawCodec", "compact_legacy", "dumps"]
