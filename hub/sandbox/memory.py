"""Memory of big sandbox worlds: keeping the cyclic garbage collector off long-lived records.

A 100k-company world holds millions of records that live as long as the process serving
them, and the fakes make more on demand (Stripe histories, BuiltWith profiles). Every full
collection would rescan them all; ``gc_paused`` keeps the collector off while they are made
and, in big worlds, freezes them out of later collections.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# Worlds this big live as long as the process serving them: what they make on demand is
# frozen out of later garbage collections (a full collection would rescan millions of records).
FREEZE_FROM = 10_000


@contextlib.contextmanager
def gc_paused(freeze: bool = False) -> Iterator[None]:
    """Keep the cyclic GC from rescanning long-lived records while they are made and, with
    ``freeze`` (big worlds), move everything alive into the permanent generation afterwards
    (``gc.freeze``: what a fake made on demand stays until the process ends)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()
