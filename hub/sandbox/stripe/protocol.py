"""Stripe fake: request parsing, key masking, the API error and the newest-first page selection."""

from __future__ import annotations

import bisect
import re
from typing import Any

from hub.sandbox.stripe.constants import _NICE_NAME

# -- request helpers -------------------------------------------------------------------------


def parse_form(items: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding to nested values: ``a[b]=1``, ``expand[]=x``, ``expand[0]=x``."""
    root: dict[str, Any] = {}
    for key, value in items:
        name, _, rest = key.partition("[")
        parts = [name] + (re.findall(r"([^\]]*)\]", rest) if rest else [])
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # "expand[]": append
                part = str(len(node))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def _mask_key(key: str) -> str:
    """Stripe shows the key's prefix and last four characters: ``sk_test_********1234``."""
    match = re.match(r"^((?:sk|rk|pk)_(?:test|live)_)(.*)$", key)
    prefix, rest = (match.group(1), match.group(2)) if match else ("", key)
    if len(rest) <= 4:
        return prefix + "*" * len(rest)
    return prefix + "*" * (len(rest) - 4) + rest[-4:]


class _ApiError(Exception):
    """Raised inside handlers; turned into Stripe's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ):  # noqa: A002
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param


def _missing(kind: str, obj_id: str, param: str | None = "id", status: int = 404) -> _ApiError:
    return _ApiError(
        status, f"No such {_NICE_NAME[kind]}: '{obj_id}'", code="resource_missing", param=param
    )


def _select(
    keys: list[int],
    lo: int,
    hi: int,
    *,
    after_key: int | None,
    before_key: int | None,
    limit: int,
    predicate: Any,
    store: dict[str, Any],
    id_of: Any,
) -> tuple[list[str], bool, int | None]:
    """One newest-first page out of ascending ``keys[lo:hi]`` in O(page) (plus filtered-out rows).

    ``starting_after`` walks down from just below its key; ``ending_before`` walks up from
    just above its key and returns the page nearest to it, still newest first. The third
    value is the lowest key the page depends on (None: down to ``lo``), for lazy listing.
    """
    if after_key is not None and lo < hi:
        hi = bisect.bisect_left(keys, after_key, lo, hi)
    if before_key is not None and lo < hi:
        lo = bisect.bisect_right(keys, before_key, lo, hi)
    out: list[str] = []
    step, i, stop = (1, lo, hi) if before_key is not None else (-1, hi - 1, lo - 1)
    while i != stop and len(out) <= limit:
        obj_id = id_of(keys[i])
        if predicate is None or predicate(store[obj_id]):
            out.append(obj_id)
        i += step
    has_more = len(out) > limit
    out = out[:limit]
    floor = before_key
    if step == 1:
        out.reverse()
    elif i != stop:
        floor = keys[i + 1]
    return out, has_more, floor
