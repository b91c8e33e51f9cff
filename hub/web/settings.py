"""The settings page's view of ``hub.toml``: the loaded configuration with secrets masked.

A value is shown only when it cannot be a secret: references (``env:VAR``, ``file:PATH``,
``secret:NAME``) are shown as written, since they name where a secret lives and not the
secret; any other value under a key that looks secret (key, token, secret, password) is
masked, and so is any string that equals a resolved secret of a connection.
"""

from __future__ import annotations

from typing import Any

from hub.config import SECRET_KEY_HINTS, SECRET_PREFIXES

MASK = "••••••••"


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(hint in lowered for hint in SECRET_KEY_HINTS)


def _mask(value: Any, key: str, secrets: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, str(k), secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(v, key, secrets) for v in value]
    if isinstance(value, str):
        if value.startswith(SECRET_PREFIXES):
            return value
        if _is_secret_key(key) or value in secrets:
            return MASK if value else value
    return value


def masked_config(config: Any) -> dict[str, Any]:
    """Every section of the config as plain data, secrets masked."""
    secrets: set[str] = set()
    for name in config.connections:
        try:
            resolved = config.resolved_settings(name)
        except Exception:  # noqa: BLE001 - an unset variable must not break the page
            continue
        for key, value in resolved.items():
            if isinstance(value, str) and _is_secret_key(key) and value:
                secrets.add(value)
    data = config.model_dump(mode="json")
    return {section: _mask(value, section, secrets) for section, value in data.items()}
