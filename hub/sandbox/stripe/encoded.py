"""Stripe fake: each object's JSON encoded once per API shape, and list pages joined from it.

A Stripe invoice is a ~3 KB object: building its dict and encoding it was most of a list
page's cost, repeated for every client that pages the same objects. Here an object's encoded
bytes are kept per shape (current or pre-2025-03-31) until anything writes: any request that
is not a read, ``advance()`` and the sandbox's webhook helpers clear them all (rendering
reads other objects, e.g. a draft invoice shows its customer's current e-mail, so one
object's write can change another's bytes). Seeded histories generated later add objects
and change none, so they keep the cache. The cache stops growing at
``encoded_cache_bytes`` (a setting: ``build_sandbox(options={"stripe": {...}})``).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

try:  # several times faster than the standard encoder on a 3 KB invoice (a declared
    # dependency of the project; tolerated missing in an environment installed before it)
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]

_HEADERS = {"content-type": "application/json; charset=utf-8"}
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)  # as ``json_response``
# Anything JSON has no type for goes through ``str`` as in ``json_response``.
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS if orjson else 0


def encode(body: Any) -> bytes:
    """Compact JSON (UTF-8; the standard encoder's ASCII escapes when orjson is missing)."""
    if orjson is not None:
        return orjson.dumps(body, default=str, option=_PASSTHROUGH)
    return _ENCODER.encode(body).encode()


class _Encoded:
    """Encoded objects by (shape, id); list and retrieve answers built from them."""

    encoded_cache_bytes = 256 * 1024 * 1024

    def _encoded_init(self) -> None:
        self._enc: tuple[dict[str, bytes], dict[str, bytes]] = ({}, {})  # current, legacy
        self._enc_size = 0

    def _encoded(self, kind: str, rec: Any, legacy: bool) -> bytes:
        cache = self._enc[legacy]
        data = cache.get(rec.id)
        if data is None:
            data = encode(self._render(kind, rec, legacy))
            if self._enc_size + len(data) <= self.encoded_cache_bytes:
                cache[rec.id] = data
                self._enc_size += len(data)
        return data

    def _invalidate_encoded(self) -> None:
        """Something was written: every object's bytes may have changed."""
        with self._lock:
            self._enc[0].clear()
            self._enc[1].clear()
            self._enc_size = 0


def list_response(parts: list[bytes], has_more: bool, url: str) -> httpx.Response:
    """``{"object": "list", "data": [...], "has_more", "url"}`` from encoded objects (the
    same bytes ``json_response`` gives for the dict)."""
    content = b"".join(
        (
            b'{"object":"list","data":[',
            b",".join(parts),
            b'],"has_more":',
            b"true" if has_more else b"false",
            b',"url":',
            encode(url),
            b"}",
        )
    )
    return httpx.Response(200, content=content, headers=_HEADERS)


def object_response(data: bytes) -> httpx.Response:
    return httpx.Response(200, content=data, headers=_HEADERS)
