"""Read models for ``hub portfolio``: finding an account by what the user typed."""

from __future__ import annotations

from typing import Any

from hub.errors import ConfigError


def find_account(store: Any, text: str) -> dict[str, Any]:
    """The account whose id, domain or (unique) name is ``text``; a one-line error otherwise."""
    from hub.timeline.identity import account_for

    found = account_for(store, text)
    if found is None:
        raise ConfigError(
            f"no account matches {text!r}",
            hint="give an account id, domain or exact name ('hub accounts' lists them)",
        )
    return found
