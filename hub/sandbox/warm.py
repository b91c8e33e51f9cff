"""Background warm-up for a served sandbox: once every fake is seeded, each fake that makes
records on demand (``warm_up(stop)``: the Stripe fake's billing histories) makes the rest
ahead of the clients, so a first pass over a list reads records instead of generating them.

Requests that arrive first still generate what they need on demand; a fake's ``warm_up``
holds its lock only a few milliseconds at a time. ``hub sandbox serve`` starts it unless
``--no-warm``; in-process sandboxes (tests, ``hub demo``) do not, so they stay deterministic
in time and cost only what they read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class WarmUp:
    """A running warm-up: ``done`` is set when it finished or was stopped; ``figures`` holds
    (companies generated, wall seconds, CPU seconds of the warming thread) per fake."""

    thread: threading.Thread
    stop_event: threading.Event
    done: threading.Event
    figures: dict[str, tuple[int, float, float]] = field(default_factory=dict)

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def start_warm_up(sandbox: Any, on_done: Callable[[WarmUp], None] | None = None) -> WarmUp:
    """Seed what is not seeded yet, then warm every fake that can, one after another, in a
    daemon thread (``on_done`` is called from it at the end, unless stopped)."""
    stop, done = threading.Event(), threading.Event()

    def run() -> None:
        try:
            sandbox.start_seeding().join()
            for name, api in sandbox.apis.items():
                warm = getattr(api, "warm_up", None)
                if warm is None or stop.is_set():
                    continue
                wall, cpu = time.perf_counter(), time.thread_time()
                made = warm(stop)
                state.figures[name] = (
                    made,
                    time.perf_counter() - wall,
                    time.thread_time() - cpu,
                )
            if on_done is not None and not stop.is_set():
                on_done(state)
        finally:
            done.set()

    thread = threading.Thread(target=run, name="hub-sandbox-warm", daemon=True)
    state = WarmUp(thread, stop, done)
    thread.start()
    return state
