"""Injected faults of the sandbox fakes: what to break (``Fault``) and the per-fake queue that
hands them out (``FaultInjector``), and the parsing of list-valued fault params;
``hub.sandbox.base`` re-exports ``Fault`` and ``FaultInjector``."""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Fault:
    """One injected fault: ``kind`` applies to requests whose path matches ``path``."""

    kind: str  # 429 | 500 | 502 | 503 | timeout | slow | drop | cursor_expired | partial_207 | drift | ...
    count: int = 1  # how many matching requests it hits; -1 = until cleared
    path: str | None = None  # regex searched in the request path; None = any
    method: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # e.g. retry_after, delay, text_body
    after: int = 0  # let this many matching requests through first (fail mid-stream)


class FaultInjector:
    """Per-API queue of faults; generic kinds are applied by ``FakeAPI``, others by the fake."""

    GENERIC = {"429", "500", "502", "503", "504", "timeout", "slow", "drop"}

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.fired: Counter[str] = Counter()

    def inject(
        self,
        kind: str,
        *,
        count: int = 1,
        path: str | None = None,
        method: str | None = None,
        after: int = 0,
        **params: Any,
    ) -> Fault:
        fault = Fault(
            kind=str(kind), count=count, path=path, method=method, params=params, after=after
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, request: httpx.Request, kinds: set[str] | None = None) -> Fault | None:
        """Consume and return the first fault matching ``request`` (and one of ``kinds``)."""
        with self._lock:
            for fault in self._faults:
                if kinds is not None and fault.kind not in kinds:
                    continue
                if fault.method and fault.method.upper() != request.method:
                    continue
                if fault.path and not re.search(fault.path, request.url.path):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                self.fired[fault.kind] += 1
                return fault
        return None


def whole(value: Any) -> bool:
    """An int (or a float/str that is one), never a bool."""
    if isinstance(value, bool):
        return False
    try:
        return float(value) == int(float(value))
    except (TypeError, ValueError):
        return False


def list_param(key: str, value: Any) -> list[Any] | None:
    """A list-valued fault param given as a list, one value, or ``"a,b"`` (the ``--fault``
    ``k=v`` form arrives as a string or, for one number, a float). ``indexes`` are whole
    numbers; ``ids`` and scopes are strings."""
    if value is None:
        return None
    if isinstance(value, str):
        items: list[Any] = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    if key == "indexes":
        if not all(whole(i) for i in items):
            raise ValueError(
                f'"indexes" must be whole numbers (input positions), e.g. "0,2", not {value!r}'
            )
        return [int(float(i)) for i in items]
    # A number-looking id from ``ids=123`` arrives as 123.0: keep it the id it was typed as.
    return [str(int(i)) if isinstance(i, float) and i.is_integer() else str(i) for i in items]
