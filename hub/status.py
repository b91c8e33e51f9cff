"""Compatibility name: the status read model lives in ``hub.store.status``."""

from __future__ import annotations

from hub.store.status import collect_status

__all__ = ["collect_status"]
