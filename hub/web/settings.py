"""The settings page's view of ``hub.toml``: the loaded configuration with secrets masked.

A value is shown only when it cannot be a secret: references (``env:VAR``, ``file:PATH``,
``secret:NAME``) are shown as written, since they name where a secret lives and not the
secret; any other value under a key that looks secret (key, token, secret, password), or
anywhere inside such a key's table (``[webhooks.secrets]``: one secret per connection), is
masked, and so is any string anywhere that equals one of those values or a resolved secret
of a connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hub.config import SECRET_KEY_HINTS, SECRET_PREFIXES

MASK = "••••••••"


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(hint in lowered for hint in SECRET_KEY_HINTS)


def _mask(value: Any, key: str, secrets: set[str], inside_secret: bool = False) -> Any:
    secretish = inside_secret or _is_secret_key(key)
    if isinstance(value, dict):
        return {k: _mask(v, str(k), secrets, secretish) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(v, key, secrets, secretish) for v in value]
    if isinstance(value, str):
        if value.startswith(SECRET_PREFIXES):
            return value
        if secretish or value in secrets:
            return MASK if value else value
    return value


def _literals(value: Any, key: str, inside_secret: bool = False) -> Iterator[str]:
    """Every literal string under a secret-looking key (so it is masked wherever it recurs)."""
    secretish = inside_secret or _is_secret_key(key)
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _literals(v, str(k), secretish)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _literals(v, key, secretish)
    elif isinstance(value, str) and secretish and value and not value.startswith(SECRET_PREFIXES):
        yield value


def masked_config(config: Any) -> dict[str, Any]:
    """Every section of the config as plain data, secrets masked."""
    data = config.model_dump(mode="json")
    secrets: set[str] = set(_literals(data, ""))
    for name in config.connections:
        try:
            resolved = config.resolved_settings(name)
        except Exception:  # noqa: BLE001 - an unset variable must not break the page
            continue
        for key, value in resolved.items():
            if isinstance(value, str) and _is_secret_key(key) and value:
                secrets.add(value)
    return {section: _mask(value, section, secrets) for section, value in data.items()}
