"""Read model: the web domains of the known accounts (what per-account look-ups ask about).

Connectors never read the ``accounts`` table themselves; the sync host answers
``SyncContext.account_domains()`` from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from hub.store import Store


def account_domains(store: Store) -> list[str]:
    """Distinct non-empty ``accounts.domain`` values, sorted (as stored; callers normalise)."""
    if not store.db["accounts"].exists():
        return []
    return [
        row[0]
        for row in store.db.execute(
            "SELECT DISTINCT domain FROM accounts WHERE domain IS NOT NULL AND domain != '' "
            "ORDER BY domain"
        )
    ]


__all__ = ["account_domains"]
